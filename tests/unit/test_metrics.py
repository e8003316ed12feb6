"""Dataset metrics against scikit-learn (the oracle) on random data, edge cases included."""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    average_precision_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
)

from pytest_tagger_showdown.metrics import (
    average_precision,
    evaluate,
    f1_at_equal_precision_recall,
    macro_prf,
    matthews,
    micro_prf,
    tag_counts,
    threshold_sweep,
)
from pytest_tagger_showdown.sparse import SparseRows

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float32]


def random_case(seed: int, rows: int = 60, cols: int = 12) -> tuple[Bools, Floats]:
    """Truth and float16-rounded scores (ties happen) with a tag never true and one never scored."""
    rng = np.random.default_rng(seed)
    truth = rng.random((rows, cols)) < rng.uniform(0.05, 0.4, size=cols)
    signal = truth * rng.uniform(0.0, 0.5, size=cols)
    scores = np.clip(rng.random((rows, cols)) * 0.7 + signal, 0, 1).astype(np.float16).astype(np.float32)
    scores[rng.random((rows, cols)) < 0.3] = 0.0  # below the floor: not stored
    truth[:, 0] = False  # never true
    scores[:, 1] = 0.0  # never scored
    return truth, scores


def sklearn_ap(truth: Bools, scores: Floats) -> list[float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", UserWarning)
        return [
            average_precision_score(truth[:, j], scores[:, j]) if truth[:, j].any() else np.nan
            for j in range(truth.shape[1])
        ]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_average_precision_matches_sklearn(seed: int, sparse: bool) -> None:
    truth, scores = random_case(seed)
    matrix = SparseRows.from_dense(scores) if sparse else scores
    ours = average_precision(SparseRows.from_dense(truth, binary=True), matrix)
    np.testing.assert_allclose(ours, sklearn_ap(truth, scores), rtol=0, atol=1e-12)
    assert np.isnan(ours[0])  # a tag never true has no AP
    assert ours[1] == pytest.approx(truth[:, 1].mean())  # all tied: AP = prevalence


def test_average_precision_by_hand() -> None:
    # Ranked 0.9 (true), 0.8, 0.7 (true), 0.6: AP = (1/1 + 2/3) / 2.
    truth = np.array([[1], [0], [1], [0]], dtype=bool)
    scores = np.array([[0.9], [0.8], [0.7], [0.6]], dtype=np.float32)
    assert average_precision(truth, scores)[0] == pytest.approx(5 / 6)
    # A tie between a true and a false cell at the top counts both at once: (1/2 + 2/3) / 2.
    scores[1, 0] = 0.9
    before = scores.copy()
    assert average_precision(truth, scores)[0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    np.testing.assert_array_equal(scores, before)  # the caller's matrix is not sorted in place
    assert average_precision(truth, SparseRows.from_dense(scores))[0] == pytest.approx((1 / 2 + 2 / 3) / 2)


@given(
    st.integers(1, 12),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_average_precision_matches_sklearn_on_any_shape(rows: int, cols: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random((rows, cols)) < 0.4
    scores = rng.integers(-2, 4, size=(rows, cols)).astype(np.float32) / 4  # ties, negatives, zeros
    for matrix in (scores, SparseRows.from_dense(scores)):
        np.testing.assert_allclose(average_precision(truth, matrix), sklearn_ap(truth, scores), atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_decision_metrics_match_sklearn(seed: int) -> None:
    truth, scores = random_case(seed)
    predicted = scores > 0.45
    predicted[:, 2] = False  # never predicted
    counts = tag_counts(
        SparseRows.from_dense(truth, binary=True), SparseRows.from_dense(predicted, binary=True)
    )
    micro = precision_recall_fscore_support(truth, predicted, average="micro", zero_division=0)
    assert (micro_prf(counts).precision, micro_prf(counts).recall, micro_prf(counts).f1) == pytest.approx(
        micro[:3]
    )
    present = np.flatnonzero(truth.any(axis=0) | predicted.any(axis=0))
    macro = precision_recall_fscore_support(
        truth, predicted, average="macro", labels=present, zero_division=0
    )
    ours = macro_prf(counts)
    assert (ours.precision, ours.recall, ours.f1) == pytest.approx(macro[:3])
    assert matthews(counts) == pytest.approx(matthews_corrcoef(truth.ravel(), predicted.ravel()))


def test_matthews_is_zero_when_undefined_and_one_when_perfect() -> None:
    truth = np.zeros((3, 2), dtype=bool)
    assert matthews(tag_counts(truth, truth)) == 0.0
    truth[0, 1] = True
    assert matthews(tag_counts(truth, truth)) == 1.0
    assert macro_prf(tag_counts(np.zeros((2, 2), bool), np.zeros((2, 2), bool))).f1 == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_sweep_matches_sklearn_at_every_threshold(seed: int) -> None:
    truth, scores = random_case(seed)
    cuts = [0.0, 0.1, 0.35, 0.5, 0.77, 0.99, 1.0]
    sweep = threshold_sweep(truth, SparseRows.from_dense(scores), cuts)
    for i, cut in enumerate(cuts):
        predicted = scores > np.float32(cut)
        p, r, f, _ = precision_recall_fscore_support(truth, predicted, average="micro", zero_division=0)
        if predicted.any():
            assert sweep.precision[i] == pytest.approx(p)
        else:
            assert np.isnan(sweep.precision[i])
        assert (sweep.recall[i], sweep.f1[i]) == pytest.approx((r, f))


def test_f1_where_precision_equals_recall() -> None:
    rng = np.random.default_rng(7)
    truth = rng.random((200, 30)) < 0.1
    scores = (rng.random((200, 30)) * 0.6 + truth * 0.3).astype(np.float32)  # no ties
    point = f1_at_equal_precision_recall(truth, scores)
    assert point is not None
    predicted = scores > point.threshold
    assert predicted.sum() == truth.sum()  # as many predicted as true: precision = recall
    p, r, f, _ = precision_recall_fscore_support(truth, predicted, average="micro", zero_division=0)
    assert point.precision == point.recall == pytest.approx(p) == pytest.approx(r)
    assert point.f1 == pytest.approx(f)
    assert f1_at_equal_precision_recall(np.zeros((2, 2), bool), scores[:2, :2]) is None


@pytest.mark.parametrize("value", [0.0, 0.5], ids=["all-zeros", "half-everywhere"])
def test_no_f1_at_equal_precision_recall_where_precision_never_reaches_recall(value: float) -> None:
    """Every threshold predicts all 20 cells (P 0.25, R 1) or none: no P = R to report (was 0.4,
    the F1 of predicting every cell)."""
    truth = np.zeros((4, 5), bool)
    truth[:, 0] = True
    scores = np.full((4, 5), value, dtype=np.float32)
    assert f1_at_equal_precision_recall(truth, scores) is None
    assert f1_at_equal_precision_recall(truth, SparseRows.from_dense(scores)) is None
    assert evaluate(truth, scores, scores > 0.35).to_dict()["f1_at_equal_pr"] is None


def test_f1_at_equal_precision_recall_with_ties_takes_the_closest_count() -> None:
    # 2 true cells; the scores allow 1 (>0.8) or 3 (>0.5) predictions: both 1 away, the higher cut wins.
    truth = np.array([[True, False], [True, False]])
    scores = np.array([[0.9, 0.6], [0.6, 0.6]], dtype=np.float32)
    point = f1_at_equal_precision_recall(truth, scores)
    assert point is not None
    assert point.threshold == pytest.approx(0.75)
    assert (point.precision, point.recall, point.f1) == pytest.approx((1.0, 0.5, 2 / 3))


def test_sparse_rows_round_trip_and_slicing() -> None:
    dense = np.array([[0, 0.5, 0], [0.25, 0, 0.75], [0, 0, 0]], dtype=np.float32)
    matrix = SparseRows.from_dense(dense)
    np.testing.assert_array_equal(matrix.to_dense(), dense)
    np.testing.assert_array_equal(matrix.take_rows([2, 1]).to_dense(), dense[[2, 1]])
    np.testing.assert_array_equal(matrix.take_columns([2, 0]).to_dense(), dense[:, [0, 2]])
    built = SparseRows.from_rows(3, [([1], [0.5]), ([2, 0, 2], [0.75, 0.25, 0.75]), ([], [])])
    np.testing.assert_array_equal(built.to_dense(), dense)
    with pytest.raises(ValueError, match="outside"):
        SparseRows.from_rows(3, [([3], None)], binary=True)


def test_evaluate_slice_numbers() -> None:
    truth, scores = random_case(11)
    predicted = scores > 0.5
    result = evaluate(SparseRows.from_dense(truth, binary=True), SparseRows.from_dense(scores), predicted)
    assert result.posts == 60
    assert result.tags == int(truth.any(axis=0).sum())
    assert result.positives == int(truth.sum())
    expected_map = np.nanmean(sklearn_ap(truth, scores))
    assert result.mean_average_precision == pytest.approx(expected_map)
    assert result.micro.f1 == pytest.approx(
        precision_recall_fscore_support(truth, predicted, average="micro", zero_division=0)[2]
    )


def test_shapes_must_agree() -> None:
    with pytest.raises(ValueError, match="shape"):
        average_precision(np.zeros((2, 3), bool), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        average_precision(np.ones((2, 1), bool), np.array([[np.nan], [0.5]], np.float32))
