"""Each run's probabilities, kept compactly so dataset metrics never need the model again.

A tagger's output row (one sigmoid per vocabulary tag) is kept as the tags scoring at least
:data:`FLOOR`, their probabilities in float16: a WD14 row of 10,861 floats (43 kB) shrinks to the
few dozen to few hundred tags a model finds plausible (a few hundred bytes). Below the floor every tag
reads as 0: metrics rank those cells as ties at the bottom, and a sweep below the floor means nothing.

Transport under pytest-xdist: a row travels in the test report's ``user_properties`` (key
:data:`ROW_PROPERTY`) beside the post's result, base64 of the column indices and float16 values. That
is the road results already take, so a row reaches the controller exactly when its result does, with
no shard files, temporary folders or end-of-session merges to coordinate, and nothing lost when a
worker crashes after reporting. The vocabulary (10,861 names) travels once per worker and tagger; the
other rows name it by digest.

At the end of a run the controller turns rows and results into one :class:`ProbabilityStore` per tagger
(scores, truths and kept tags as sparse posts x tags matrices) and saves them in one ``.npz``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from . import atomic
from .errors import ShowdownError
from .results import PostResult
from .sparse import SparseRows
from .taggers.base import Tagger
from .tags import RATING_MATCHES, SAFE, TagCategory, rating_tag
from .vocabulary import RATING_LABEL, Vocabulary

#: The user_properties key a probability row travels under.
ROW_PROPERTY: Final = "tagger_showdown_probabilities"
#: Probabilities below this are not kept (read back as 0).
FLOOR: Final = 0.01
STORE_FORMAT: Final = 1

SOURCE_PROBABILITIES: Final = "probabilities"
SOURCE_KEPT_TAGS: Final = "kept tags"


def probabilities_path(json_path: Path) -> Path:
    """Where the probability store of a ``--showdown-json`` file goes: ``NAME.probabilities.npz``."""
    return json_path.with_name(f"{json_path.stem}.probabilities.npz")


def _b64(array: npt.NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> npt.NDArray[Any]:
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype))


def index_dtype(size: int) -> str:
    return "<u2" if size <= 1 << 16 else "<u4"


def compact_row(
    probabilities: npt.ArrayLike, floor: float = FLOOR, columns: npt.NDArray[np.int64] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float16]]:
    """The compact form of a probability row ``[T]``: the columns at or above ``floor`` and their
    values in float16 (``<f2``). What the dataset metrics and the prediction cache keep.

    ``columns``: those columns when already known (a stored row's ``stored_columns``, see
    :func:`stored_row_and_columns`), which saves scanning the whole row again (issue 14)."""
    row = np.asarray(probabilities, dtype=np.float32).ravel()
    if columns is None:
        columns = np.flatnonzero(row >= floor)
    return columns, row[columns].astype("<f2")


def expand_row(size: int, columns: npt.NDArray[Any], values: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """A dense float32 row ``[size]`` from its compact form; the columns left out read as 0.

    Compacting the expanded row again gives the same columns and values: float16 values at or above
    the floor stay at or above it, so metrics computed from either are identical."""
    row = np.zeros(size, dtype=np.float32)
    row[columns] = values
    return row


def stored_row_and_columns(
    probabilities: npt.ArrayLike, floor: float = FLOOR
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """:func:`stored_row` ``[T]`` float32 and its columns at or above ``floor`` (its compact form's
    columns), which recording and caching the row reuse instead of finding them again."""
    row = np.asarray(probabilities, dtype=np.float32).ravel()
    columns, values = compact_row(row, floor)
    return expand_row(row.size, columns, values), columns


def stored_row(probabilities: npt.ArrayLike, floor: float = FLOOR) -> npt.NDArray[np.float32]:
    """The row as the run keeps it (compacted and expanded again): what cut-offs are applied to, so
    that a run served from the cache keeps exactly the tags of the run that computed it."""
    return stored_row_and_columns(probabilities, floor)[0]


def encode_row(
    probabilities: npt.ArrayLike, floor: float = FLOOR, columns: npt.NDArray[np.int64] | None = None
) -> dict[str, Any]:
    """A probability row as JSON-safe text: the columns at or above ``floor`` and their float16 values
    (``columns``: those columns when already known, as in :func:`compact_row`)."""
    row = np.asarray(probabilities, dtype=np.float32).ravel()
    columns, values = compact_row(row, floor, columns)
    dtype = index_dtype(row.size)
    return {
        "size": int(row.size),
        "floor": floor,
        "index_dtype": dtype,
        "columns": _b64(columns.astype(dtype)),
        "values": _b64(values),
    }


def decode_row(encoded: Mapping[str, Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The kept columns and their values (float16 precision) of an :func:`encode_row` row."""
    columns = _unb64(str(encoded["columns"]), str(encoded["index_dtype"])).astype(np.int64)
    values = _unb64(str(encoded["values"]), "<f2").astype(np.float32)
    if columns.size != values.size or (columns.size and int(columns.max()) >= int(encoded["size"])):
        raise ShowdownError("a probability row is corrupt (columns and values do not match)")
    return columns, values


class RowEncoder:
    """Turns a result's probabilities into a row message; sends each vocabulary once per process."""

    def __init__(self, floor: float = FLOOR) -> None:
        self.floor = floor
        self._vocabularies: dict[str, Vocabulary] = {}
        self._sent: set[str] = set()

    def encode(self, tagger: Tagger, result: PostResult) -> dict[str, Any] | None:
        """The message for ``result``, or None when the tagger has no probabilities or vocabulary
        (the control tagger, HTTP taggers): metrics then fall back to its kept tags."""
        if result.probabilities is None:
            return None  # checked first: asking a lazy tagger for its vocabulary may load it
        vocabulary = self._vocabularies.get(result.tagger)
        if vocabulary is None:
            try:
                model_vocabulary = tagger.vocabulary
            except ShowdownError:
                return None
            if model_vocabulary is None:
                return None
            vocabulary = model_vocabulary.as_ground_truth()
            self._vocabularies[result.tagger] = vocabulary
        if result.probabilities.size != len(vocabulary):
            return None
        # The stored columns are those at or above FLOOR: of no use for another floor.
        columns = result.stored_columns if self.floor == FLOOR else None
        message: dict[str, Any] = {
            "tagger": result.tagger,
            "post_id": result.post_id,
            "vocabulary": vocabulary.digest,
            "row": encode_row(result.probabilities, self.floor, columns),
        }
        if result.tagger not in self._sent:
            message["names"] = list(vocabulary.names)
            message["categories"] = list(vocabulary.labels)
            self._sent.add(result.tagger)
        return message


@dataclass(frozen=True)
class ProbabilityStore:
    """One tagger's run as posts x tags matrices over its vocabulary (rows in ``post_ids`` order,
    columns in ``vocabulary`` order, spelled as the ground truth spells them).

    ``source`` says where scores come from: the model's probabilities, or (for taggers without a
    vocabulary) the kept tags as 0/1 scores, which makes AP and the sweep degenerate but defined.
    ``truth_outside`` counts true tags the vocabulary cannot express (artists, unknown tags): the
    study's score counts them as missed, these metrics cannot.
    """

    tagger: str
    source: str
    floor: float
    vocabulary: Vocabulary
    post_ids: npt.NDArray[np.int64]
    ratings: tuple[str, ...]
    scores: SparseRows
    truth: SparseRows
    predicted: SparseRows
    truth_outside: int = 0

    @property
    def matrices(self) -> tuple[SparseRows, SparseRows, SparseRows]:
        """(truth, scores, predicted): the arguments of :func:`metrics.evaluate`."""
        return self.truth, self.scores, self.predicted


#: A pre-2022 ``rating:safe`` column: today's general and sensitive merged into one class.
SAFE_COLUMN: Final = rating_tag(SAFE)
_MERGED_INTO_SAFE: Final = frozenset(rating_tag(code) for code in RATING_MATCHES[SAFE])


def _predicted_keys(result: PostResult) -> list[str]:
    """Kept tags plus the rating, spelled as the truth spells it (``rating:safe`` for a safe)."""
    keys = list(result.predicted)
    if result.predicted_rating is not None:
        keys.append(rating_tag(result.predicted_rating))
    return keys


def _truth_keys(result: PostResult, merged_safe: bool) -> tuple[str, ...]:
    """The true tags and rating; for a tagger with the pre-2022 ``safe`` class, a g or s post's rating
    is that merged class, so a right ``safe`` is a true positive as in the per-post score
    (``tags.RATING_MATCHES``) and a wrong one a false positive."""
    if not merged_safe:
        return result.truth
    return tuple(SAFE_COLUMN if key in _MERGED_INTO_SAFE else key for key in result.truth)


class ProbabilityCollector:
    """Gathers row messages on the controller and builds each tagger's :class:`ProbabilityStore`."""

    def __init__(self) -> None:
        self._vocabularies: dict[str, Vocabulary] = {}
        self._rows: dict[str, dict[int, tuple[str, Mapping[str, Any]]]] = {}

    def add(self, message: Mapping[str, Any]) -> None:
        digest = str(message["vocabulary"])
        if "names" in message and digest not in self._vocabularies:
            self._vocabularies[digest] = Vocabulary.from_labels(message["names"], message["categories"])
        tagger = str(message["tagger"])
        self._rows.setdefault(tagger, {})[int(message["post_id"])] = (digest, message["row"])

    def build(
        self,
        tagger: str,
        results: Sequence[PostResult],
        *,
        scored_categories: Collection[str] | None = None,
        tag_categories: Mapping[str, str] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> ProbabilityStore:
        """The store of ``tagger``'s scored posts; columns outside ``scored_categories`` are dropped
        (ratings always stay), so metrics judge what the score judges. ``aliases`` (old -> current
        name) rename the model's columns as scoring renamed its predictions (results carry current
        names already); where a model has both names, the truth lands on the first column."""
        scored = sorted(
            (r for r in results if r.tagger == tagger and r.score is not None), key=lambda r: r.post_id
        )
        rows = self._rows.get(tagger, {})
        digests = {rows[r.post_id][0] for r in scored if r.post_id in rows}
        complete = bool(scored) and all(r.post_id in rows for r in scored)
        if complete and len(digests) == 1 and (digest := digests.pop()) in self._vocabularies:
            vocabulary = self._vocabularies[digest]
            if aliases:
                names = tuple(aliases.get(name, name) for name in vocabulary.names)
                vocabulary = Vocabulary(names, vocabulary.categories)
            merged_safe = SAFE_COLUMN in vocabulary.index
            encoded = [rows[r.post_id][1] for r in scored]
            floor = float(encoded[0]["floor"])
            score_rows = [decode_row(row) for row in encoded]
            source = SOURCE_PROBABILITIES
        else:
            merged_safe = any(r.predicted_rating == SAFE for r in scored)
            vocabulary = _fallback_vocabulary(scored, tag_categories or {}, merged_safe)
            score_rows = []
            floor = 0.0
            source = SOURCE_KEPT_TAGS
        truth_rows: list[tuple[list[int], None]] = []
        predicted_rows: list[tuple[list[int], None]] = []
        outside = 0
        for result in scored:
            true_keys = _truth_keys(result, merged_safe)
            truth_columns = [vocabulary.index[t] for t in true_keys if t in vocabulary.index]
            outside += len(set(true_keys)) - len(set(truth_columns))
            truth_rows.append((truth_columns, None))
            keys = _predicted_keys(result)
            predicted_rows.append(([vocabulary.index[k] for k in keys if k in vocabulary.index], None))
        size = len(vocabulary)
        truth = SparseRows.from_rows(size, truth_rows, binary=True)
        predicted = SparseRows.from_rows(size, predicted_rows, binary=True)
        scores = (
            SparseRows.from_rows(size, score_rows)
            if source == SOURCE_PROBABILITIES
            else SparseRows(predicted.shape, predicted.indptr, predicted.indices, predicted.data())
        )
        store = ProbabilityStore(
            tagger=tagger,
            source=source,
            floor=floor,
            vocabulary=vocabulary,
            post_ids=np.asarray([r.post_id for r in scored], dtype=np.int64),
            ratings=tuple(r.rating for r in scored),
            scores=scores,
            truth=truth,
            predicted=predicted,
            truth_outside=outside,
        )
        return _restrict(store, scored_categories)


def _fallback_vocabulary(
    results: Sequence[PostResult], tag_categories: Mapping[str, str], merged_safe: bool
) -> Vocabulary:
    """Every tag seen true or predicted, for taggers with no vocabulary of their own."""
    names = sorted({t for r in results for t in (*_truth_keys(r, merged_safe), *_predicted_keys(r))})
    labels = [
        RATING_LABEL if name.startswith("rating:") else tag_categories.get(name, TagCategory.GENERAL.value)
        for name in names
    ]
    return Vocabulary.from_labels(names, labels)


def _restrict(store: ProbabilityStore, scored_categories: Collection[str] | None) -> ProbabilityStore:
    if scored_categories is None:
        return store
    wanted = {*scored_categories, RATING_LABEL}
    vocabulary = store.vocabulary
    keep = [i for i, label in enumerate(vocabulary.labels) if label in wanted]
    if len(keep) == len(vocabulary):
        return store
    columns = np.asarray(keep, dtype=np.int64)
    return ProbabilityStore(
        tagger=store.tagger,
        source=store.source,
        floor=store.floor,
        vocabulary=Vocabulary(
            tuple(vocabulary.names[i] for i in keep), tuple(vocabulary.categories[i] for i in keep)
        ),
        post_ids=store.post_ids,
        ratings=store.ratings,
        scores=store.scores.take_columns(columns),
        truth=store.truth.take_columns(columns),
        predicted=store.predicted.take_columns(columns),
        truth_outside=store.truth_outside,
    )


def _pack(prefix: str, matrix: SparseRows, arrays: dict[str, npt.NDArray[Any]]) -> None:
    arrays[f"{prefix}_indptr"] = matrix.indptr
    arrays[f"{prefix}_indices"] = matrix.indices.astype(index_dtype(matrix.shape[1]))
    if matrix.values is not None:
        arrays[f"{prefix}_values"] = matrix.values.astype("<f2")


def _unpack(prefix: str, shape: tuple[int, int], data: Mapping[str, npt.NDArray[Any]]) -> SparseRows:
    values = data.get(f"{prefix}_values")
    return SparseRows(
        shape,
        data[f"{prefix}_indptr"].astype(np.int64),
        data[f"{prefix}_indices"].astype(np.int64),
        None if values is None else values.astype(np.float32),
    )


def save_stores(path: Path, stores: Sequence[ProbabilityStore]) -> None:
    """Write every tagger's store into one compressed ``.npz`` (no pickles), atomically."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    meta: list[dict[str, Any]] = []
    for number, store in enumerate(stores):
        prefix = f"t{number}"
        meta.append(
            {
                "tagger": store.tagger,
                "source": store.source,
                "floor": store.floor,
                "truth_outside": store.truth_outside,
                "shape": list(store.truth.shape),
            }
        )
        arrays[f"{prefix}_names"] = np.asarray(store.vocabulary.names, dtype=str)
        arrays[f"{prefix}_categories"] = np.asarray(store.vocabulary.labels, dtype=str)
        arrays[f"{prefix}_post_ids"] = store.post_ids
        arrays[f"{prefix}_ratings"] = np.asarray(store.ratings, dtype=str)
        _pack(f"{prefix}_scores", store.scores, arrays)
        _pack(f"{prefix}_truth", store.truth, arrays)
        _pack(f"{prefix}_predicted", store.predicted, arrays)
    arrays["meta"] = np.asarray(json.dumps({"format": STORE_FORMAT, "taggers": meta}))
    with atomic.atomic_path(path) as partial, partial.open("wb") as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]


def load_stores(path: Path) -> list[ProbabilityStore]:
    """Read the stores :func:`save_stores` wrote."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise ShowdownError(f"cannot read the probability store {path}: {exc}") from exc
    meta = json.loads(str(data["meta"]))
    if meta.get("format") != STORE_FORMAT:
        raise ShowdownError(f"{path} has store format {meta.get('format')}, expected {STORE_FORMAT}")
    stores: list[ProbabilityStore] = []
    for number, entry in enumerate(meta["taggers"]):
        prefix = f"t{number}"
        rows, cols = entry["shape"]
        names = [str(name) for name in data[f"{prefix}_names"]]
        try:
            vocabulary = Vocabulary.from_labels(names, [str(label) for label in data[f"{prefix}_categories"]])
        except ValueError as exc:
            raise ShowdownError(f"{path}: {exc}") from exc
        stores.append(
            ProbabilityStore(
                tagger=entry["tagger"],
                source=entry["source"],
                floor=float(entry["floor"]),
                vocabulary=vocabulary,
                post_ids=data[f"{prefix}_post_ids"].astype(np.int64),
                ratings=tuple(str(r) for r in data[f"{prefix}_ratings"]),
                scores=_unpack(f"{prefix}_scores", (rows, cols), data),
                truth=_unpack(f"{prefix}_truth", (rows, cols), data),
                predicted=_unpack(f"{prefix}_predicted", (rows, cols), data),
                truth_outside=int(entry["truth_outside"]),
            )
        )
    return stores


def merge_stores(stores: Sequence[ProbabilityStore]) -> ProbabilityStore:
    """One tagger's stores from disjoint sets of posts (shards of a run) as the store the whole run
    builds: rows in post id order over the union of the vocabularies (a model's vocabulary is the
    same in every shard; the kept-tags fallback's is each shard's tags, sorted, so their sorted union
    is the whole run's). Raises ShowdownError when they cannot be one tagger's run."""
    first = stores[0]
    if len({(s.tagger, s.source, s.floor) for s in stores}) > 1:
        raise ShowdownError(f"the stores of {first.tagger} differ in tagger, score source or floor")
    if all(s.vocabulary == first.vocabulary for s in stores):
        vocabulary = first.vocabulary
    elif first.source == SOURCE_KEPT_TAGS:
        by_name = {
            n: c for s in stores for n, c in zip(s.vocabulary.names, s.vocabulary.categories, strict=True)
        }
        vocabulary = Vocabulary(tuple(sorted(by_name)), tuple(by_name[n] for n in sorted(by_name)))
    else:
        raise ShowdownError(f"the shards of {first.tagger} were scored over different vocabularies")
    names = vocabulary.names
    position = {name: i for i, name in enumerate(names)}
    post_ids = np.concatenate([s.post_ids for s in stores])
    if np.unique(post_ids).size != post_ids.size:
        raise ShowdownError(f"the shards of {first.tagger} overlap: a post was scored twice")
    order = np.argsort(post_ids, kind="stable")

    def stacked(part: str) -> SparseRows:
        matrices = [getattr(s, part) for s in stores]
        remap = [np.asarray([position[n] for n in s.vocabulary.names], dtype=np.int64) for s in stores]
        indices = np.concatenate([m[matrix.indices] for m, matrix in zip(remap, matrices, strict=True)])
        offsets = np.cumsum([0, *(matrix.nnz for matrix in matrices)])
        indptr = np.concatenate(
            [[0], *(matrix.indptr[1:] + offset for matrix, offset in zip(matrices, offsets, strict=False))]
        ).astype(np.int64)
        values = (
            None
            if any(matrix.values is None for matrix in matrices)
            else np.concatenate([matrix.values for matrix in matrices if matrix.values is not None])
        )
        return SparseRows((post_ids.size, len(names)), indptr, indices, values).take_rows(order)

    ratings = [rating for s in stores for rating in s.ratings]
    return ProbabilityStore(
        tagger=first.tagger,
        source=first.source,
        floor=first.floor,
        vocabulary=vocabulary,
        post_ids=post_ids[order],
        ratings=tuple(ratings[i] for i in order.tolist()),
        scores=stacked("scores"),
        truth=stacked("truth"),
        predicted=stacked("predicted"),
        truth_outside=sum(s.truth_outside for s in stores),
    )
