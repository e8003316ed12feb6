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


def format_table(summaries: Sequence[TaggerSummary]) -> str:
    """A plain-text table, one row per tagger, in the order given (best first from summarize_all)."""
    rows = [
        (
            s.tagger,
            s.images,
            s.errors,
            _number(s.avg_score),
            _number(s.median_score),
            _number(s.avg_runtime_s, 4) + (" (cached)" if s.cached and s.cached == s.images else ""),
            _number(s.precision),
            _number(s.recall),
            _number(s.f1),
            _number(s.rating_accuracy),
            _number(s.incorrect_per_image, 2),
            _number(s.practical_per_image, 2),
        )
        for s in summaries
    ]
    return tabulate(rows, headers=HEADERS, tablefmt="github", disable_numparse=True)
