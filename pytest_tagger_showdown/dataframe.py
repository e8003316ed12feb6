"""A run's per-post results as a pandas DataFrame: for notebooks, and the one table the CSV writes.

pandas is imported only when a frame is built, so a showdown that writes no CSV never loads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .columns import post_rows
from .history import DEFAULT_STORAGE, find_run, storage_path

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # pandas ships no type information

#: The frame's columns and their pandas dtypes, in order. Nullable dtypes (``Int64``, ``boolean``)
#: hold the missing values of posts that errored.
COLUMNS: Final[Mapping[str, str]] = {
    "tagger": "string",
    "post_id": "int64",
    "rating": "string",
    "score": "float64",
    "distance_score": "float64",
    "correct": "Int64",
    "incorrect": "Int64",
    "missed": "Int64",
    "truth_size": "Int64",
    "rating_correct": "boolean",
    "practical_errors": "Int64",
    "precision": "float64",
    "recall": "float64",
    "f1": "float64",
    "predicted_rating": "string",
    "preprocess_s": "float64",
    "inference_s": "float64",
    "cached": "bool",
    "error": "string",
    "predicted": "object",
    "truth": "object",
}


def results_frame(posts: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Per-post result dicts (a results document's ``posts``) as a frame sorted by tagger and post.

    Columns (:data:`COLUMNS`): ``tagger``; ``post_id``; ``rating`` (the true one: g, s, q, e);
    ``score`` (the study's score, -inf..1, NaN where the post errored); ``distance_score`` (0..1);
    tag counts ``correct``, ``incorrect``, ``missed``, ``truth_size``, ``practical_errors``;
    ``rating_correct``; ``precision``, ``recall``, ``f1`` (0..1, of this post); ``predicted_rating``;
    ``preprocess_s`` and ``inference_s`` (seconds for this image); ``cached`` (the prediction came
    from the cache); ``error`` (why the post failed, else missing); ``predicted`` and ``truth``
    (tuples of tag names, the rating as ``rating:X`` in ``truth``).
    """
    import pandas as pd

    records = [{column: post.get(column) for column in COLUMNS} for post in posts]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for column in ("predicted", "truth"):
        frame[column] = frame[column].map(lambda tags: tuple(tags or ()))
    frame["cached"] = frame["cached"].fillna(False)
    frame = frame.astype({c: t for c, t in COLUMNS.items() if t != "object"})
    return frame.sort_values(["tagger", "post_id"], kind="stable", ignore_index=True)


def load_results_frame(run: str | Path, storage: str | Path = DEFAULT_STORAGE) -> pd.DataFrame:
    """The per-post results of a saved run as a DataFrame (columns as in :func:`results_frame`).

    ``run`` is a ``--showdown-json`` file, a pytest-benchmark JSON saved with showdown results
    (``--benchmark-save``/``--benchmark-autosave``), or a saved run's number, name prefix or
    ``latest`` in ``storage`` (``--benchmark-storage``, default ``.benchmarks``). Raises
    :class:`ShowdownError` when the run cannot be found or carries no showdown results.

    >>> frame = load_results_frame("latest")  # doctest: +SKIP
    >>> frame.groupby("tagger")["score"].mean()  # doctest: +SKIP
    """
    saved = find_run(str(run), storage_path(str(storage)))
    return results_frame(post_rows(saved.document))
