"""The per-tagger runtime table printed beside the score table: what tagging one image cost.

One row per tagger, whatever the dataset's size: pytest-benchmark's own table is collapsed to one
row per tagger too (see :mod:`pytest_tagger_showdown.benchmark_rows`), so nothing here grows per post.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tabulate import tabulate

from ..results import PostResult, TaggerSummary

HEADERS = (
    "tagger",
    "timed",
    "mean s/img",
    "median",
    "p95",
    "preprocess",
    "inference",
    "cached",
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def runtime_row(summary: TaggerSummary, results: Sequence[PostResult]) -> tuple[object, ...]:
    """One tagger's runtime cells: per image (seconds) the mean, median and 95th percentile of
    preprocessing + inference, the mean of each part, and the share of predictions served from the
    cache (their times are those measured when they were computed)."""
    runtimes = np.array([r.runtime_s for r in results if r.runtime_s is not None], dtype=np.float64)
    has = runtimes.size > 0
    scored = summary.images
    return (
        summary.tagger,
        runtimes.size,
        _seconds(float(runtimes.mean()) if has else None),
        _seconds(float(np.median(runtimes)) if has else None),
        _seconds(float(np.percentile(runtimes, 95)) if has else None),
        _seconds(summary.avg_preprocess_s),
        _seconds(summary.avg_inference_s),
        f"{summary.cached / scored:.0%}" if scored else "-",
    )


def format_runtimes(summaries: Sequence[TaggerSummary], results: Sequence[PostResult]) -> str:
    """A plain-text table, one row per tagger, in the score table's order."""
    by_tagger: dict[str, list[PostResult]] = {}
    for result in results:
        if result.score is not None:
            by_tagger.setdefault(result.tagger, []).append(result)
    rows = [runtime_row(s, by_tagger.get(s.tagger, [])) for s in summaries]
    return tabulate(rows, headers=HEADERS, tablefmt="simple", disable_numparse=True)
