"""The report's plots, drawn with matplotlib's object API (no pyplot state).

The study's plots (score histogram per tagger, the same cut at zero, error-rate bars) plus the
per-rating scores and precision-recall curves. Every plot takes the same tagger -> colour mapping
(:func:`tagger_colours`), so a tagger has one colour on the whole page, and puts its legend to the
right of the axes, where it covers no data. matplotlib is imported only when a report is drawn.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Bin width of the score histograms (the score runs from below 0 up to 1).
BIN_WIDTH: Final = 0.05
#: matplotlib's default qualitative palette ("tab10"), so the colours look as users know them.
PALETTE: Final = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip

Colours = Mapping[str, str]


def tagger_colours(names: Iterable[str]) -> dict[str, str]:
    """One colour per tagger, by name in alphabetical order, so it does not depend on the ranking.

    Beyond ten taggers the palette repeats (with a different line style in the curves).
    """
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(names)))}


def _label(name: str) -> str:
    """A tagger name as literal text (matplotlib reads ``$...$`` as maths)."""
    return name.replace("$", r"\$")


def _figure(width: float = 7.4, height: float = 3.4) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    # Fixed margins (a layout engine would draw every figure twice); the right quarter holds the legend.
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(left=0.08, right=0.74, bottom=0.14, top=0.9)
    return figure, figure.subplots()


def _legend(axes: Axes) -> None:
    """The legend outside the axes, on the right: it never hides a bar, a step or a curve."""
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes (100 dpi)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def score_histogram(
    scores: Mapping[str, Sequence[float]], colours: Colours, *, cut_at_zero: bool = False
) -> Figure:
    """One step histogram per tagger; ``cut_at_zero`` drops negative scores to show the rest larger."""
    figure, axes = _figure()
    values = [v for group in scores.values() for v in group]
    low = 0.0 if cut_at_zero or not values else min(0.0, math.floor(min(values) / BIN_WIDTH) * BIN_WIDTH)
    count = max(1, round((1.0 - low) / BIN_WIDTH))
    edges = [low + i * (1.0 - low) / count for i in range(count + 1)]
    for name, group in scores.items():
        kept = [v for v in group if v >= 0] if cut_at_zero else list(group)
        axes.hist(kept, bins=edges, histtype="step", linewidth=1.6, label=_label(name), color=colours[name])
    axes.set_xlabel("score per image" + (" (scores below 0 left out)" if cut_at_zero else ""))
    axes.set_ylabel("images")
    axes.set_title("score distribution" + (", cut at 0" if cut_at_zero else ""))
    _legend(axes)
    return figure


def grouped_bars(
    values: Mapping[str, Sequence[float | None]],
    groups: Sequence[str],
    colours: Colours,
    *,
    title: str,
    ylabel: str,
) -> Figure:
    """Bars per tagger (its colour) within each group: error rates, scores per rating."""
    figure, axes = _figure()
    width = 0.8 / max(len(values), 1)
    for i, (name, row) in enumerate(values.items()):
        positions = [g + (i - (len(values) - 1) / 2) * width for g in range(len(groups))]
        heights = [math.nan if v is None else v for v in row]
        axes.bar(positions, heights, width=width, label=_label(name), color=colours[name])
    axes.set_xticks(range(len(groups)), labels=list(groups))
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.axhline(0, color="black", linewidth=0.6)
    _legend(axes)
    return figure


def pr_curves(
    curves: Mapping[str, tuple[Sequence[float | None], Sequence[float | None]]],
    colours: Colours,
    points: Mapping[str, tuple[float, float]] | None = None,
) -> Figure:
    """Micro precision against recall over the threshold sweep; ``points`` marks P = R per tagger."""
    figure, axes = _figure(7.4, 4.4)
    order = {name: i for i, name in enumerate(sorted(colours))}
    for name, (recall, precision) in curves.items():
        pairs = [(r, p) for r, p in zip(recall, precision, strict=True) if r is not None and p is not None]
        if not pairs:
            continue
        style = ("-", "--", ":")[order.get(name, 0) // len(PALETTE) % 3]
        axes.plot(
            [r for r, _ in pairs],
            [p for _, p in pairs],
            label=_label(name),
            color=colours[name],
            linestyle=style,
        )
        if points and name in points:
            axes.plot(*points[name], marker="o", color=colours[name])
    axes.plot([0, 1], [0, 1], color="grey", linewidth=0.6, linestyle=":")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title("precision-recall (micro; dot: precision = recall)")
    _legend(axes)
    return figure
