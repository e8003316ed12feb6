"""The showdown's side of pytest-benchmark's table."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.benchmarking import ONE_ROUND_QUARTILES, collapsed


def test_a_saved_one_round_benchmark_gets_its_quartiles_back_for_the_per_item_table(
    pytester: pytest.Pytester,
) -> None:
    """A saved run leaves out the quartiles of a one-round benchmark (its one time); pytest-benchmark's
    histograms read them, so the per-item table (``--benchmark-verbose``) restores them from the mean."""
    config = pytester.parseconfig("--benchmark-verbose")
    saved = {"group": "showdown: demo-large", "name": "a", "rounds": 1, "mean": 0.25, "min": 0.25}
    timed = {"group": "other", "name": "b", "rounds": 5, "mean": 0.5, "q1": 0.4}
    ((_, rows),) = collapsed(config, [("g", [saved, timed])])
    assert {name: rows[0][name] for name in ONE_ROUND_QUARTILES} == dict.fromkeys(ONE_ROUND_QUARTILES, 0.25)
    assert rows[0]["min"] == 0.25
    assert rows[1] == timed  # a benchmark of several rounds is left as it is
