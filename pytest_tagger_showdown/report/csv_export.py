"""``--showdown-csv``: every post's result as one CSV row, for spreadsheets and pandas."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from .. import atomic
from ..results import PostResult

COLUMNS: Final = (
    "tagger",
    "post_id",
    "rating",
    "score",
    "distance_score",
    "correct",
    "incorrect",
    "missed",
    "truth_size",
    "rating_correct",
    "practical_errors",
    "precision",
    "recall",
    "f1",
    "predicted_rating",
    "preprocess_s",
    "inference_s",
    "cached",
    "error",
    "predicted",
    "truth",
)


def write_csv(
    path: Path,
    results: Sequence[PostResult],
    distance_scores: Mapping[tuple[str, int], float] | None = None,
) -> None:
    """One row per (tagger, post), sorted; tag lists are space-separated (tags contain no spaces)."""
    with atomic.atomic_path(path) as partial, partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for result in sorted(results, key=lambda r: (r.tagger, r.post_id)):
            row = result.to_dict()
            row["distance_score"] = (distance_scores or {}).get((result.tagger, result.post_id))
            row["predicted"] = " ".join(result.predicted)
            row["truth"] = " ".join(result.truth)
            writer.writerow(row)
