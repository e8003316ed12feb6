"""Aggregation per tagger and the JSON round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tagger_showdown.report.table import format_table
from pytest_tagger_showdown.results import (
    PostResult,
    read_results,
    results_document,
    summarize,
    summarize_all,
    write_results,
)
from tests.helpers.results import result


def test_a_tagger_without_rating_outputs_has_no_rating_accuracy() -> None:
    """Not 0.000: the tagger cannot rate, so the figure does not apply (the table shows "-")."""
    no_rating = summarize("t", [result(1, 2, 1, 3, rating_ok=None), result(2, 1, 0, 3, rating_ok=None)])
    assert no_rating.rating_accuracy is None
    row = format_table([no_rating]).splitlines()[2].split("|")
    assert row[10].strip() == "-"
    one_missed = summarize("t", [result(1, 3, 0, 3), result(2, 1, 0, 3, rating_ok=None)])
    assert one_missed.rating_accuracy == 0.5


def test_summary_numbers() -> None:
    results = [
        result(1, 4, 0, 4),  # score 1.0
        result(2, 2, 2, 4, rating_ok=False),  # score 0.0, one of the incorrect is the rating
        result(3, 1, 3, 2),  # score -1.0
        PostResult(tagger="t", post_id=4, rating="e", score=None, error="post4-e: cannot decode"),
    ]
    summary = summarize("t", reversed(results))
    assert (summary.images, summary.errors) == (3, 1)
    assert summary.avg_score == pytest.approx(0.0)
    assert summary.median_score == pytest.approx(0.0)
    assert summary.precision == pytest.approx(7 / 12)
    assert summary.recall == pytest.approx(7 / 10)
    assert summary.f1 == pytest.approx(2 * (7 / 12) * 0.7 / (7 / 12 + 0.7))
    assert summary.rating_accuracy == pytest.approx(2 / 3)
    assert summary.incorrect_per_image == pytest.approx(5 / 3)
    assert summary.practical_per_image == pytest.approx(4 / 3)
    assert summary.avg_runtime_s == pytest.approx(0.04)
    assert summary.worst[0] == ("post3-g", -1.0)


def test_summarize_all_ranks_best_first_and_errors_only_last() -> None:
    results = [
        result(1, 1, 1, 4, tagger="weak"),
        result(1, 4, 0, 4, tagger="strong"),
        PostResult(tagger="broken", post_id=1, rating="g", score=None, error="boom"),
    ]
    assert [s.tagger for s in summarize_all(results)] == ["strong", "weak", "broken"]


def test_json_round_trip(tmp_path: Path) -> None:
    results = [result(1, 3, 1, 4), result(2, 1, 0, 5, tagger="u")]
    path = tmp_path / "out" / "results.json"
    write_results(
        path, results_document(results, summarize_all(results), dataset="d.db", categories=["general"])
    )
    assert read_results(path) == sorted(results, key=lambda r: (r.tagger, r.post_id))
