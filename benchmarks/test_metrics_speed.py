"""Dataset metrics of a 30,000-post x 10,861-tag run against scikit-learn computing the same numbers.

The run is synthetic but shaped like a real one: ~30 true tags per post drawn by a Zipf-like
popularity, ~200 tags per post with a probability above the storage floor, a few dozen above 0.35.
The showdown's metrics take the sparse matrices the plugin stores; scikit-learn takes what it needs
(sparse label matrices for precision/recall/F1, dense ones for average precision). Both must agree;
the showdown's should be >= 10x faster. Peak memory is reported for both (tracemalloc, untimed passes).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from pytest_tagger_showdown.metrics import SliceMetrics, average_precision, evaluate
from pytest_tagger_showdown.sparse import SparseRows

scipy_sparse = pytest.importorskip("scipy.sparse")
sklearn_metrics = pytest.importorskip("sklearn.metrics")

POSTS = 30_000
TAGS = 10_861
#: scikit-learn's average precision loops over tags in Python (about 20 ms a tag here): it computes
#: this many random tags and its time is scaled to all of them; ``SHOWDOWN_BENCH_SKLEARN_TAGS=all``
#: makes it compute every tag (several minutes).
SKLEARN_AP_TAGS = os.environ.get("SHOWDOWN_BENCH_SKLEARN_TAGS", "500")
#: Tags in scikit-learn's (separate, traced) memory pass.
MEMORY_TAGS = 50
T = TypeVar("T")


def _rows(keys: npt.NDArray[np.int64], values: npt.NDArray[np.float32] | None) -> SparseRows:
    """Sorted unique cell keys (row * TAGS + column) as a SparseRows matrix."""
    rows, cols = np.divmod(keys, TAGS)
    indptr = np.zeros(POSTS + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=POSTS), out=indptr[1:])
    return SparseRows((POSTS, TAGS), indptr, cols, values)


def synthetic_run(seed: int = 0) -> tuple[SparseRows, SparseRows, SparseRows]:
    """(truth, scores, predicted) of a plausible tagger on a plausible dataset."""
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(1 / np.arange(1, TAGS + 1) ** 0.8)

    def tags_for(per_post: int) -> npt.NDArray[np.int64]:
        """Cell keys of ``per_post`` popularity-weighted draws per post (repeats merged)."""
        posts = np.repeat(np.arange(POSTS, dtype=np.int64), per_post)
        drawn = np.searchsorted(cumulative, rng.random(posts.size) * cumulative[-1])
        return np.unique(posts * TAGS + np.minimum(drawn, TAGS - 1))

    truth_keys = tags_for(30)
    noise_keys = np.setdiff1d(tags_for(200), truth_keys, assume_unique=True)
    found = truth_keys[rng.random(truth_keys.size) < 0.9]  # a tenth of the true tags scores below the floor
    score_keys = np.concatenate([found, noise_keys])
    score_values = np.concatenate(
        [rng.beta(3, 2, found.size), 0.01 + 0.9 * rng.beta(1, 8, noise_keys.size)]
    ).astype(np.float32)
    order = np.argsort(score_keys)
    score_keys, score_values = score_keys[order], score_values[order]
    kept = score_keys[score_values > 0.35]
    return _rows(truth_keys, None), _rows(score_keys, score_values), _rows(kept, None)


def timed(compute: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    value = compute()
    return value, time.perf_counter() - began


def peak_bytes(compute: Callable[[], object]) -> int:
    """The most memory ``compute`` had allocated at once (tracemalloc sees numpy's buffers too); a
    separate, untimed pass, since tracing slows Python code down."""
    tracemalloc.start()
    try:
        compute()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def csr(matrix: SparseRows) -> Any:
    return scipy_sparse.csr_matrix((matrix.data(), matrix.indices, matrix.indptr), shape=matrix.shape)


def sklearn_numbers(
    truth: SparseRows, scores: SparseRows, predicted: SparseRows, ap_tags: npt.NDArray[np.int64]
) -> dict[str, Any]:
    """The same numbers from scikit-learn: P/R/F1 on sparse labels, MCC from its 2x2 confusion of all
    cells, AP of the tags ``ap_tags`` on dense columns (it has no sparse path)."""
    y_true, y_pred = csr(truth).astype(bool), csr(predicted).astype(bool)
    micro = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    seen = np.flatnonzero(np.asarray(y_true.sum(axis=0) + y_pred.sum(axis=0)).ravel() > 0)
    macro = sklearn_metrics.precision_recall_fscore_support(
        y_true, y_pred, average="macro", labels=seen, zero_division=0
    )
    (tn, fp), (fn, tp) = sklearn_metrics.multilabel_confusion_matrix(y_true, y_pred).sum(axis=0)
    mcc = sklearn_metrics.matthews_corrcoef([0, 0, 1, 1], [0, 1, 0, 1], sample_weight=[tn, fp, fn, tp])
    began = time.perf_counter()
    dense_truth = np.asfortranarray(y_true[:, ap_tags].toarray())
    dense_scores = np.asfortranarray(csr(scores)[:, ap_tags].toarray())
    ap = sklearn_metrics.average_precision_score(dense_truth, dense_scores, average=None)
    ap_s = time.perf_counter() - began
    return {"micro": micro[:3], "macro": macro[:3], "mcc": mcc, "ap": np.asarray(ap), "ap_s": ap_s}


def ours(truth: SparseRows, scores: SparseRows, predicted: SparseRows) -> tuple[SliceMetrics, Any]:
    """Every metric of the run, and the per-tag AP it averaged."""
    ap = average_precision(truth, scores)
    return evaluate(truth, scores, predicted, ap=ap), ap


def test_metrics_match_scikit_learn_and_are_faster(benchmark: Any) -> None:
    benchmark.group = "metrics: 30,000 posts x 10,861 tags"
    truth, scores, predicted = synthetic_run()
    (result, ap), our_s = benchmark.pedantic(
        lambda: timed(lambda: ours(truth, scores, predicted)), rounds=1, iterations=1, warmup_rounds=0
    )
    our_peak = peak_bytes(lambda: ours(truth, scores, predicted))
    positive = np.flatnonzero(~np.isnan(ap))
    sample = positive
    if SKLEARN_AP_TAGS != "all" and int(SKLEARN_AP_TAGS) < positive.size:
        sample = np.sort(np.random.default_rng(1).choice(positive, int(SKLEARN_AP_TAGS), replace=False))
    reference, sklearn_s = timed(lambda: sklearn_numbers(truth, scores, predicted, sample))
    sklearn_peak = peak_bytes(lambda: sklearn_numbers(truth, scores, predicted, sample[:MEMORY_TAGS]))
    # Scale the AP part of scikit-learn's time from the sampled tags to every tag with a positive.
    sklearn_all_s = sklearn_s + reference["ap_s"] * (positive.size / sample.size - 1)
    micro, macro = result.micro, result.macro
    np.testing.assert_allclose([micro.precision, micro.recall, micro.f1], reference["micro"], rtol=1e-12)
    np.testing.assert_allclose([macro.precision, macro.recall, macro.f1], reference["macro"], rtol=1e-12)
    assert result.mcc == pytest.approx(reference["mcc"], rel=1e-12)
    np.testing.assert_allclose(ap[sample], reference["ap"], rtol=1e-9)
    figures = {
        "posts": POSTS,
        "tags": TAGS,
        "truth_cells": truth.nnz,
        "score_cells": scores.nnz,
        "sklearn_ap_tags": f"{sample.size} of {positive.size}",
        "showdown_s": round(our_s, 3),
        "sklearn_s": round(sklearn_all_s, 3),
        "speedup": round(sklearn_all_s / our_s, 1),
        "showdown_peak_mb": round(our_peak / 2**20, 1),
        f"sklearn_peak_mb_{MEMORY_TAGS}_ap_tags": round(sklearn_peak / 2**20, 1),
        # What average_precision_score needs as input for every tag: dense bool truth, float32 scores.
        "sklearn_dense_inputs_all_tags_mb": round(POSTS * positive.size * 5 / 2**20, 1),
        "micro_f1": round(micro.f1, 6),
        "map": round(float(result.mean_average_precision or 0.0), 6),
        "f1_at_equal_pr": None if result.equal_point is None else round(result.equal_point.f1, 6),
    }
    benchmark.extra_info.update(figures)
    print(f"\nmetrics: {figures}")
