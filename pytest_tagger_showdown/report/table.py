"""The per-tagger table printed at the end of a showdown."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from ..results import TaggerSummary

HEADERS = (
    "tagger",
    "images",
    "errors",
    "avg score",
    "median",
    "avg s/img",
    "precision",
    "recall",
    "F1",
    "rating acc",
    "incorrect/img",
    "practical/img",
)


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_row(s: TaggerSummary, *, mark_cached: bool = True) -> tuple[object, ...]:
    """One tagger's cells under :data:`HEADERS`, for the terminal and the HTML report alike;
    ``mark_cached`` notes a runtime that came wholly from the cache."""
    cached = " (cached)" if mark_cached and s.cached and s.cached == s.images else ""
    return (
        s.tagger,
        s.images,
        s.errors,
        _number(s.avg_score),
        _number(s.median_score),
        _number(s.avg_runtime_s, 4) + cached,
        _number(s.precision),
        _number(s.recall),
        _number(s.f1),
        _number(s.rating_accuracy),
        _number(s.incorrect_per_image, 2),
        _number(s.practical_per_image, 2),
    )


def format_table(summaries: Sequence[TaggerSummary]) -> str:
    """A plain-text table, one row per tagger, in the order given (best first from summarize_all)."""
    rows = [summary_row(s) for s in summaries]
    return tabulate(rows, headers=HEADERS, tablefmt="github", disable_numparse=True)
