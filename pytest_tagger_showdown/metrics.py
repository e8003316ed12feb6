"""Dataset-level metrics of a tagger, from its kept tags and its stored probabilities: pure numpy.

Every metric treats the run as a posts x tags matrix of decisions (or scores) against a posts x tags
matrix of truths, as scikit-learn's multilabel metrics do, and gives the same numbers as scikit-learn:

- micro and macro precision, recall and F1 at the tagger's own thresholds (macro over the tags that
  are true or predicted somewhere: a tag nobody has and nobody predicted has no F1);
- Matthews' correlation over every (post, tag) cell;
- a threshold sweep of micro precision, recall and F1 (a tag counts as predicted when its score is
  strictly above the threshold, as WD14 does);
- F1 at the threshold where micro precision equals recall, how the WD14 author reports a model;
- average precision per tag (scikit-learn's step-wise definition, no interpolation) and its mean
  over the tags that are true at least once.

Nothing loops over tags in Python: matrices are kept sparse (:class:`~.sparse.SparseRows`, the stored
probabilities are mostly below a floor) and each metric is one sort plus cumulative counts, so a
30,000 x 10,861 run takes seconds where a per-tag scikit-learn loop takes minutes. Dense numpy
arrays are accepted too (column blocks are sorted one at a time to bound memory).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .probabilities import ProbabilityStore
from .sparse import Float32Array, IntArray, Matrix, SparseRows, take
from .tags import RATINGS

FloatArray = npt.NDArray[np.float64]

#: The thresholds of the stored precision-recall sweep (and the report's curves).
SWEEP_THRESHOLDS: Float32Array = np.round(np.linspace(0.0, 0.99, 100), 2).astype(np.float32)

#: Cells per column block when a dense score matrix is sorted (64 MB of float32).
_BLOCK_CELLS = 1 << 24


def _shape(matrix: Matrix) -> tuple[int, int]:
    if isinstance(matrix, SparseRows):
        return matrix.shape
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-d matrix, got shape {matrix.shape}")
    return int(matrix.shape[0]), int(matrix.shape[1])


def _cells(matrix: Matrix) -> tuple[IntArray, IntArray]:
    """Rows and columns of the nonzero cells, in row-major order."""
    if isinstance(matrix, SparseRows):
        return matrix.row_ids(), matrix.indices
    rows, cols = np.nonzero(matrix)
    return rows.astype(np.int64), cols.astype(np.int64)


def _lookup(scores: Matrix, rows: IntArray, cols: IntArray) -> Float32Array:
    """The scores of some cells (0 where a sparse matrix stores nothing)."""
    if not isinstance(scores, SparseRows):
        return np.asarray(scores[rows, cols], dtype=np.float32)
    n_cols = scores.shape[1]
    stored = scores.row_ids() * n_cols + scores.indices
    wanted = rows * n_cols + cols
    at = np.searchsorted(stored, wanted)
    clipped = np.minimum(at, max(stored.size - 1, 0))
    found = (at < stored.size) & (stored[clipped] == wanted) if stored.size else np.zeros(0, bool)
    result = np.zeros(wanted.size, dtype=np.float32)
    if stored.size:
        result[found] = scores.data()[clipped[found]]
    return result


def _sortable(values: Float32Array) -> npt.NDArray[np.uint64]:
    """float32 -> uint32 (as uint64) with the same order, so (column, value) packs into one sort key."""
    clean = np.asarray(values, dtype=np.float32) + np.float32(0.0)  # -0.0 becomes 0.0
    if np.isnan(clean).any():
        raise ValueError("scores contain NaN")
    bits = clean.view(np.uint32)
    flip = np.where(bits >> np.uint32(31), np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
    return (bits ^ flip).astype(np.uint64)


def _keys(columns: IntArray, values: Float32Array) -> npt.NDArray[np.uint64]:
    return (columns.astype(np.uint64) << np.uint64(32)) | _sortable(values)


def _at_least_in_column(scores: Matrix, cols: IntArray, vals: Float32Array) -> IntArray:
    """For each query (column c, value v): how many cells of column c score at least v."""
    n_rows, n_cols = _shape(scores)
    counts = np.zeros(cols.size, dtype=np.int64)
    if isinstance(scores, SparseRows):
        stored = np.sort(_keys(scores.indices, scores.data()))
        per_column = np.bincount(scores.indices, minlength=n_cols)
        column_end = np.cumsum(per_column)
        counts = column_end[cols] - np.searchsorted(stored, _keys(cols, vals), side="left")
        # Cells a sparse matrix leaves out score 0, which is at least v when v <= 0.
        implicit = n_rows - per_column[cols]
        return counts + np.where(vals <= 0, implicit, 0)
    # Dense: sort a block of columns at a time, then look each positive up in its sorted column.
    order = np.argsort(cols, kind="stable")
    present, first = np.unique(cols[order], return_index=True)
    bounds = np.append(first, order.size)
    block = max(1, _BLOCK_CELLS // max(n_rows, 1))
    for start in range(0, n_cols, block):
        stop = min(n_cols, start + block)
        wanted = np.flatnonzero((present >= start) & (present < stop))
        if not wanted.size:
            continue
        # A copy (never a view: it is sorted in place, and the caller's matrix must stay as it was).
        columns = np.array(scores[:, start:stop].T, dtype=np.float32, order="C", copy=True)
        if np.isnan(columns).any():
            raise ValueError("scores contain NaN")
        columns.sort(axis=1)
        for at in wanted.tolist():
            queries = order[bounds[at] : bounds[at + 1]]
            column = columns[int(present[at]) - start]
            counts[queries] = n_rows - np.searchsorted(column, vals[queries], side="left")
    return counts


def average_precision(truth: Matrix, scores: Matrix) -> FloatArray:
    """Average precision per tag (column), as scikit-learn's ``average_precision_score``; NaN for a
    tag that is never true (its AP is undefined).

    AP = sum over the positives p of a tag of precision(score >= score_p) / positives: tied positives
    share one precision, which is scikit-learn's sum over distinct thresholds of recall step x precision.
    """
    shape = _check_same_shape(truth, scores)
    rows, cols = _cells(truth)
    vals = _lookup(scores, rows, cols)
    positives = np.bincount(cols, minlength=shape[1])
    at_or_above = _at_least_in_column(scores, cols, vals)
    own = np.sort(_keys(cols, vals))
    true_at_or_above = np.cumsum(positives)[cols] - np.searchsorted(own, _keys(cols, vals), side="left")
    precision = true_at_or_above / at_or_above
    total = np.bincount(cols, weights=precision, minlength=shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positives > 0, total / positives, np.nan)


def _check_same_shape(truth: Matrix, other: Matrix) -> tuple[int, int]:
    shape = _shape(truth)
    if _shape(other) != shape:
        raise ValueError(f"truth has shape {shape} but the other matrix {_shape(other)}")
    return shape


@dataclass(frozen=True)
class TagCounts:
    """Per-tag confusion counts of a run's decisions, plus the number of posts."""

    true_positives: IntArray
    false_positives: IntArray
    false_negatives: IntArray
    posts: int

    @property
    def cells(self) -> int:
        return self.posts * int(self.true_positives.size)


def tag_counts(truth: Matrix, predicted: Matrix) -> TagCounts:
    """True positives, false positives and false negatives per tag (cells compared as sets)."""
    n_rows, n_cols = _check_same_shape(truth, predicted)
    truth_rows, truth_cols = _cells(truth)
    pred_rows, pred_cols = _cells(predicted)
    hit = np.isin(pred_rows * n_cols + pred_cols, truth_rows * n_cols + truth_cols, assume_unique=True)
    tp = np.bincount(pred_cols[hit], minlength=n_cols)
    return TagCounts(
        true_positives=tp,
        false_positives=np.bincount(pred_cols, minlength=n_cols) - tp,
        false_negatives=np.bincount(truth_cols, minlength=n_cols) - tp,
        posts=n_rows,
    )


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 (0 where undefined, scikit-learn's ``zero_division=0``)."""

    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def micro_prf(counts: TagCounts) -> PRF:
    """Pooled over every cell: the WD14 author's micro average."""
    tp = float(counts.true_positives.sum())
    fp = float(counts.false_positives.sum())
    fn = float(counts.false_negatives.sum())
    return PRF(_ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn))


def macro_prf(counts: TagCounts) -> PRF:
    """Mean of the per-tag values over tags true or predicted at least once (rare tags weigh as much
    as common ones, which is why the v3 WD14 cards report it)."""
    tp, fp, fn = counts.true_positives, counts.false_positives, counts.false_negatives
    present = (tp + fp + fn) > 0
    if not present.any():
        return PRF(0.0, 0.0, 0.0)
    tp, fp, fn = tp[present], fp[present], fn[present]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = 2 * tp / (2 * tp + fp + fn)
    return PRF(float(precision.mean()), float(recall.mean()), float(f1.mean()))


def matthews(counts: TagCounts) -> float:
    """Matthews' correlation coefficient over every (post, tag) cell; 0 when undefined."""
    tp = float(counts.true_positives.sum())
    fp = float(counts.false_positives.sum())
    fn = float(counts.false_negatives.sum())
    tn = counts.cells - tp - fp - fn
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


@dataclass(frozen=True)
class Sweep:
    """Micro precision, recall and F1 when every cell scoring above each threshold is predicted.

    Precision is NaN at a threshold nothing scores above (no prediction, no precision).
    """

    thresholds: FloatArray
    precision: FloatArray
    recall: FloatArray
    f1: FloatArray

    def to_dict(self) -> dict[str, list[float | None]]:
        def clean(values: FloatArray) -> list[float | None]:
            return [None if math.isnan(v) else round(float(v), 6) for v in values]

        return {
            "thresholds": clean(self.thresholds),
            "precision": clean(self.precision),
            "recall": clean(self.recall),
            "f1": clean(self.f1),
        }


def _sorted_scores(scores: Matrix) -> tuple[Float32Array, int]:
    """Every stored score sorted ascending, and how many cells a sparse matrix leaves out (zeros)."""
    n_rows, n_cols = _shape(scores)
    if isinstance(scores, SparseRows):
        return np.sort(scores.data()), n_rows * n_cols - scores.nnz
    return np.sort(np.asarray(scores, dtype=np.float32), axis=None), 0


def _above(sorted_values: Float32Array, implicit: int, thresholds: Float32Array) -> IntArray:
    """How many values are strictly above each threshold (``implicit`` extra zeros included)."""
    count = sorted_values.size - np.searchsorted(sorted_values, thresholds, side="right")
    return count + np.where(thresholds < 0, implicit, 0)


def threshold_sweep(truth: Matrix, scores: Matrix, thresholds: npt.ArrayLike = SWEEP_THRESHOLDS) -> Sweep:
    """Micro precision/recall/F1 at each threshold from one sort of all scores."""
    _check_same_shape(truth, scores)
    cuts = np.asarray(thresholds, dtype=np.float32)
    all_sorted, implicit = _sorted_scores(scores)
    rows, cols = _cells(truth)
    positive_scores = np.sort(_lookup(scores, rows, cols))
    predicted = _above(all_sorted, implicit, cuts).astype(np.float64)
    hits = _above(positive_scores, 0, cuts).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, np.nan)
        recall = hits / positive_scores.size if positive_scores.size else np.zeros_like(hits)
        f1 = np.where(
            predicted + positive_scores.size > 0, 2 * hits / (predicted + positive_scores.size), 0.0
        )
    return Sweep(cuts.astype(np.float64), precision, recall, f1)


@dataclass(frozen=True)
class EqualPoint:
    """The threshold where micro precision equals recall (as nearly as ties allow) and F1 there."""

    threshold: float
    precision: float
    recall: float
    f1: float


def f1_at_equal_precision_recall(truth: Matrix, scores: Matrix) -> EqualPoint | None:
    """F1 where precision = recall, the WD14 author's headline number; None without true cells, and
    None when precision stays below recall at every threshold that predicts anything.

    Precision = TP / predicted and recall = TP / positives are equal exactly when as many cells are
    predicted as are true, so no bisection is needed: the cut is at the positives-th highest score.
    With ties there, the distinct cut whose prediction count is closest wins (the point a bisection
    on the threshold closes in on). When even the highest score is shared by more cells than are true
    (a tagger answering all zeros, or 0.5 everywhere), no threshold brings precision up to recall:
    a bisection finds no crossing, and there is nothing to report. The threshold returned works with
    the strict ``score > threshold`` rule (midway to the next lower score).
    """
    _check_same_shape(truth, scores)
    all_sorted, implicit = _sorted_scores(scores)
    rows, cols = _cells(truth)
    positives = rows.size
    if positives == 0:
        return None
    positive_scores = np.sort(_lookup(scores, rows, cols))
    candidates = np.unique(all_sorted)
    if implicit:
        candidates = np.union1d(candidates, np.zeros(1, dtype=np.float32))
    at_least = all_sorted.size - np.searchsorted(all_sorted, candidates, side="left")
    at_least = at_least + np.where(candidates <= 0, implicit, 0)
    top_hits = positive_scores.size - np.searchsorted(positive_scores, candidates[-1], side="left")
    if int(at_least[-1]) > positives and top_hits > 0:
        return None  # 0 < precision < recall = 1 wherever anything is predicted: P never equals R
    best = int(np.argmin(np.abs(at_least - positives)[::-1]))
    best = candidates.size - 1 - best  # the highest cut among equally close ones
    cut = candidates[best]
    predicted = int(at_least[best])
    hits = int(positive_scores.size - np.searchsorted(positive_scores, cut, side="left"))
    lower = float(candidates[best - 1]) if best > 0 else float(np.nextafter(cut, np.float32(-np.inf)))
    precision, recall = _ratio(hits, predicted), _ratio(hits, positives)
    return EqualPoint(
        threshold=(float(cut) + lower) / 2,
        precision=precision,
        recall=recall,
        f1=_ratio(2 * hits, predicted + positives),
    )


@dataclass(frozen=True)
class SliceMetrics:
    """Every metric of one slice of a run (all posts, one rating, one tag category)."""

    posts: int
    tags: int
    positives: int
    micro: PRF
    macro: PRF
    mcc: float
    equal_point: EqualPoint | None
    mean_average_precision: float | None

    def to_dict(self) -> dict[str, Any]:
        point = self.equal_point
        return {
            "posts": self.posts,
            "tags": self.tags,
            "positives": self.positives,
            "micro": self.micro.to_dict(),
            "macro": self.macro.to_dict(),
            "mcc": self.mcc,
            "f1_at_equal_pr": None if point is None else point.f1,
            "threshold_at_equal_pr": None if point is None else point.threshold,
            "map": self.mean_average_precision,
        }


def evaluate(
    truth: Matrix, scores: Matrix, predicted: Matrix, *, ap: FloatArray | None = None
) -> SliceMetrics:
    """All metrics of one slice: decisions from ``predicted``, rankings from ``scores`` (``ap``: the
    per-tag average precision when the caller has it already)."""
    _check_same_shape(truth, scores)
    counts = tag_counts(truth, predicted)
    if ap is None:
        ap = average_precision(truth, scores)
    with_positives = ap[~np.isnan(ap)]
    positives = counts.true_positives + counts.false_negatives
    return SliceMetrics(
        posts=counts.posts,
        tags=int((positives > 0).sum()),
        positives=int(positives.sum()),
        micro=micro_prf(counts),
        macro=macro_prf(counts),
        mcc=matthews(counts),
        equal_point=f1_at_equal_precision_recall(truth, scores),
        mean_average_precision=float(with_positives.mean()) if with_positives.size else None,
    )


@dataclass(frozen=True)
class TaggerMetrics:
    """A tagger's metrics over a run: overall, per rating, per tag category; AP per tag; the sweep."""

    tagger: str
    source: str
    floor: float
    vocabulary: int
    truth_outside_vocabulary: int
    overall: SliceMetrics
    by_rating: Mapping[str, SliceMetrics]
    by_category: Mapping[str, SliceMetrics]
    average_precision: Mapping[str, float]
    sweep: Sweep

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "floor": self.floor,
            "vocabulary": self.vocabulary,
            "truth_outside_vocabulary": self.truth_outside_vocabulary,
            "overall": self.overall.to_dict(),
            "by_rating": {k: v.to_dict() for k, v in self.by_rating.items()},
            "by_category": {k: v.to_dict() for k, v in self.by_category.items()},
            "average_precision": {k: round(v, 6) for k, v in self.average_precision.items()},
            "sweep": self.sweep.to_dict(),
        }


def evaluate_store(store: ProbabilityStore) -> TaggerMetrics:
    """Every metric of a tagger's stored run, sliced by the posts' ratings and the tags' categories."""
    ratings = np.asarray(store.ratings)
    vocabulary = store.vocabulary
    categories = np.asarray(vocabulary.labels)
    present = set(store.ratings)
    by_rating = {
        rating: evaluate(*(take(m, rows=np.flatnonzero(ratings == rating)) for m in store.matrices))
        for rating in (*[r for r in RATINGS if r in present], *sorted(present - set(RATINGS)))
    }
    by_category = {
        category: evaluate(*(take(m, columns=np.flatnonzero(categories == category)) for m in store.matrices))
        for category in sorted(set(vocabulary.labels))
    }
    ap = average_precision(store.truth, store.scores)
    return TaggerMetrics(
        tagger=store.tagger,
        source=store.source,
        floor=store.floor,
        vocabulary=len(vocabulary),
        truth_outside_vocabulary=store.truth_outside,
        overall=evaluate(*store.matrices, ap=ap),
        by_rating=by_rating,
        by_category=by_category,
        average_precision={vocabulary.names[i]: float(ap[i]) for i in np.flatnonzero(~np.isnan(ap)).tolist()},
        sweep=threshold_sweep(store.truth, store.scores),
    )
