"""``--showdown-csv``: every post's result as one CSV row, for spreadsheets and pandas.

The rows are :func:`~pytest_tagger_showdown.dataframe.results_frame`'s, so the CSV, a notebook's
``load_results_frame`` and the JSON agree; tag lists are space-separated (tags contain no spaces).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from .. import atomic
from ..dataframe import results_frame
from ..results import PostResult

#: How floats are written: 6 significant digits, which keeps timings (seconds) to under 1 µs
#: below 1 s and scores to 1e-6, without binary noise such as ``0.30000000000000004``.
FLOAT_FORMAT: Final = "%.6g"


def write_csv(
    path: Path,
    results: Sequence[PostResult],
    distance_scores: Mapping[tuple[str, int], float] | None = None,
) -> None:
    """One row per (tagger, post), sorted by tagger then post id; written atomically."""
    scores = distance_scores or {}
    frame = results_frame(
        {**result.to_dict(), "distance_score": scores.get((result.tagger, result.post_id))}
        for result in results
    )
    for column in ("predicted", "truth"):
        frame[column] = frame[column].map(" ".join)
    with atomic.atomic_path(path) as partial:
        frame.to_csv(partial, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
