"""The report's plots: one colour per tagger on every plot, and legends that cover no data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pytest_tagger_showdown.report import plots

# The ranking (best first) differs from the alphabetical order, as in a real run.
RANKED = ("zeta", "alpha", "mid")
SCORES = {"zeta": [0.9, 0.8, 1.0, -0.2], "alpha": [0.5, 0.4, 0.1, 0.0], "mid": [0.2, -0.5, 0.3, 0.6]}
CURVES = {
    # Metrics come by name, the other plots by rank: the colours must not follow either order.
    name: ([0.1, 0.5, 0.9], [0.95, 0.7, 0.3 + i / 10])
    for i, name in enumerate(sorted(RANKED))
}


def figures() -> Iterator[tuple[str, Figure]]:
    colours = plots.tagger_colours(RANKED)
    ranked = {name: SCORES[name] for name in RANKED}
    yield "histogram", plots.score_histogram(ranked, colours)
    yield "histogram cut at 0", plots.score_histogram(ranked, colours, cut_at_zero=True)
    bars = {name: [1.0, 0.2, 0.5] for name in RANKED}
    yield "bars", plots.grouped_bars(bars, ["a", "b", "c"], colours, title="t", ylabel="y")
    yield "curves", plots.pr_curves(CURVES, colours, {"alpha": (0.5, 0.5)})


def legend_colours(figure: Figure) -> dict[str, str]:
    legend = figure.axes[0].get_legend()
    assert legend is not None
    found = {}
    for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
        if isinstance(handle, Line2D):
            colour = handle.get_color()
        else:
            assert isinstance(handle, Patch)
            colour = handle.get_facecolor() if handle.get_fill() else handle.get_edgecolor()
        found[text.get_text()] = to_hex(colour)
    return found


def test_tagger_colours_follow_the_name_not_the_rank() -> None:
    assert plots.tagger_colours(["b", "a", "c"]) == {"a": "#1f77b4", "b": "#ff7f0e", "c": "#2ca02c"}
    assert plots.tagger_colours(["c", "a", "b"]) == plots.tagger_colours(["a", "b", "c"])
    assert len(set(plots.tagger_colours([f"t{i:02d}" for i in range(10)]).values())) == 10


@pytest.mark.parametrize(("kind", "figure"), list(figures()), ids=[kind for kind, _ in figures()])
def test_every_plot_gives_a_tagger_its_one_colour(kind: str, figure: Figure) -> None:
    assert legend_colours(figure) == plots.tagger_colours(RANKED), kind


@pytest.mark.parametrize(("kind", "figure"), list(figures()), ids=[kind for kind, _ in figures()])
def test_legends_lie_outside_the_axes(kind: str, figure: Figure) -> None:
    renderer = FigureCanvasAgg(figure).get_renderer()
    axes = figure.axes[0]
    legend = axes.get_legend()
    assert legend is not None
    box = legend.get_window_extent(renderer)
    frame = axes.get_window_extent(renderer)
    assert not box.overlaps(frame), (kind, box, frame)
    # ... and inside the picture, so nothing is cut off.
    assert figure.bbox.contains(box.x1 - 1, box.y0 + 1), kind
    assert plots.png(figure).startswith(b"\x89PNG")
