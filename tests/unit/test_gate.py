"""The baseline gate: baselines parsed from the command line or ini, and the failures they give."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.gate import baseline_failures, parse_baselines
from pytest_tagger_showdown.results import summarize_all
from tests.helpers.results import result


def test_baselines_parse_and_gate() -> None:
    baselines = parse_baselines(["strong = 0.5", "", "# a comment", "weak=0.5"])
    assert baselines == {"strong": 0.5, "weak": 0.5}
    summaries = summarize_all([result(1, 4, 0, 4, tagger="strong"), result(1, 1, 1, 4, tagger="weak")])
    (failure,) = baseline_failures(summaries, baselines)
    assert failure.startswith("weak: average score 0.000 is below its baseline 0.500 over 1 posts")
    assert "post1-g (+0.000)" in failure
    with pytest.raises(ValueError, match="not a number"):
        parse_baselines(["weak = high"])
