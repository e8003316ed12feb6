"""The baseline gate: baselines parsed from the command line or ini, and the failures they give."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.gate import baseline_failures, baseline_verdicts
from pytest_tagger_showdown.results import summarize_all
from pytest_tagger_showdown.settings import parse_baselines
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


def test_a_baseline_for_a_tagger_that_scored_nothing_fails() -> None:
    summaries = summarize_all([result(1, 4, 0, 4, tagger="strong")], taggers=["idle"])
    verdicts = baseline_verdicts(summaries, {"strong": 0.5, "idle": 0.1, "absent": 0.1})
    assert verdicts["strong"] is None
    assert verdicts["idle"] == "idle: no post was scored (0 errors), baseline 0.100 not met"
    assert verdicts["absent"] == "absent: no post was scored, baseline 0.100 not met"


def test_a_baseline_judged_over_some_posts_only_says_over_how_many_of_the_run() -> None:
    summaries = summarize_all([result(1, 1, 1, 4, tagger="weak"), result(2, 1, 1, 4, tagger="weak")])
    narrowed = baseline_verdicts(summaries, {"weak": 0.5}, posts=48)["weak"]
    assert narrowed is not None
    assert " over 2 of 48 posts; " in narrowed  # before: "over 2 posts", as if that were the run
    whole = baseline_verdicts(summaries, {"weak": 0.5}, posts=2)["weak"]
    assert whole is not None
    assert " over 2 posts; " in whole
