"""A run's per-post results stored column-wise: one list per field rather than one dict per post.

Results documents of format 2 hold ``posts`` as ``{"columns": {field: [value per result]}}`` (results
ordered by tagger, then post id). Only what cannot be derived is stored: the score, precision, recall,
F1 and practical errors are recomputed from the counts by :class:`ShowdownScore` when read, so they are
the very floats a run computed. Inside a saved pytest-benchmark run, which pytest-benchmark writes with
one line per list element, the columns travel packed (``{"packed": base64(zlib(compact JSON))}``).
Format 1 documents (``posts`` a list of dicts) are read as they are.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .errors import ShowdownError
from .scoring import ShowdownScore

#: The fields stored per result, in order (the derived score fields are left out).
STORED: Final[tuple[str, ...]] = (
    "tagger",
    "post_id",
    "rating",
    "correct",
    "incorrect",
    "missed",
    "truth_size",
    "rating_correct",
    "predicted",
    "predicted_rating",
    "truth",
    "preprocess_s",
    "inference_s",
    "error",
    "cached",
    "renamed_by_aliases",
    "distance_score",
)
#: The score's stored fields: None in every one of them marks a post without a score (it errored).
_COUNTS: Final = ("correct", "incorrect", "missed", "truth_size", "rating_correct")


def to_columns(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Result dicts (:meth:`PostResult.to_dict` plus ``distance_score``) as format 2's ``posts``, in
    one pass: a generator of rows is never held whole (60,000 dicts: 60 MB at the end of a run)."""
    columns: dict[str, list[Any]] = {name: [] for name in STORED}
    for row in rows:
        for name, column in columns.items():
            column.append(row.get(name))
    return {"columns": columns}


def pack(posts: Mapping[str, Any]) -> dict[str, Any]:
    """Format 2's ``posts`` as one string: a few bytes per result in pytest-benchmark's indented JSON."""
    if "packed" in posts:
        return dict(posts)
    text = json.dumps(posts["columns"], separators=(",", ":"), allow_nan=False)
    return {"packed": base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")}


def dumps(document: Mapping[str, Any]) -> str:
    """A results document as indented JSON with each column of ``posts`` on one line (one line per
    value would make 30,000 posts x 17 fields half a million lines)."""
    posts = document.get("posts")
    if not isinstance(posts, Mapping) or "columns" not in posts:
        return json.dumps(document, indent=2, sort_keys=True)
    columns = posts["columns"]
    marks = {name: f"@column:{name}@" for name in columns}
    text = json.dumps({**document, "posts": {"columns": marks}}, indent=2, sort_keys=True)
    for name, mark in marks.items():
        text = text.replace(json.dumps(mark), json.dumps(columns[name], separators=(",", ":")), 1)
    return text


def columns_of(posts: Any) -> dict[str, list[Any]]:
    """The columns of a format 2 ``posts`` value, packed or not; raises ShowdownError when corrupt."""
    if "columns" in posts:
        return dict(posts["columns"])
    try:
        columns = json.loads(zlib.decompress(base64.b64decode(str(posts["packed"]))))
    except (KeyError, ValueError, zlib.error) as exc:
        raise ShowdownError(f"the saved run's per-post results are corrupt: {exc}") from exc
    if not isinstance(columns, dict):
        raise ShowdownError("the saved run's per-post results are corrupt (no columns)")
    return columns


def post_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A results document's per-post results as dicts (format 1 or 2), each with the derived score
    fields of :meth:`ShowdownScore.to_dict` (``score`` None for a post that errored)."""
    posts = document.get("posts")
    if not posts:
        return []
    if isinstance(posts, list):
        return [dict(row) for row in posts]
    columns = columns_of(posts)
    names = [name for name in STORED if name in columns]
    count = len(columns[names[0]]) if names else 0
    rows = []
    for index in range(count):
        row = {name: columns[name][index] for name in names}
        if row.get(_COUNTS[0]) is None:  # errored: no counts, as format 1 wrote it
            for name in _COUNTS:
                row.pop(name, None)
            row["score"] = None
        else:
            row.update(ShowdownScore.from_dict(row).to_dict())
        rows.append(row)
    return rows
