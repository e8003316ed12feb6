"""The paired bootstrap and the compare gate: noise passes, a real drop fails."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_tagger_showdown.compare import (
    DEFAULT_MARGIN,
    compare_runs,
    format_comparison,
    gate_against,
    paired_bootstrap,
    regression_failures,
)
from pytest_tagger_showdown.settings import build_settings


def document(scores: dict[str, list[float]], **extra: dict[str, Any]) -> dict[str, Any]:
    """A results document with one post per score (post ids 0..n-1)."""
    posts = [
        {"tagger": tagger, "post_id": i, "rating": "g", "score": float(s), **extra.get(tagger, {})}
        for tagger, values in scores.items()
        for i, s in enumerate(values)
    ]
    return {"posts": posts, "taggers": {}}


def post_scores(seed: int, count: int = 200) -> np.ndarray:
    """Per-post scores spread like the study's (posts differ a lot from one another)."""
    return np.random.default_rng(seed).normal(0.2, 0.25, size=count)


def test_bootstrap_interval_is_reproducible_and_covers_the_mean() -> None:
    before = post_scores(1)
    after = before + np.random.default_rng(2).normal(0.05, 0.05, size=before.size)
    result = paired_bootstrap(before, after)
    assert result.mean == pytest.approx(float(np.mean(after - before)))
    assert result.low < result.mean < result.high
    assert result.low > 0  # a consistent gain of 0.05 with noise 0.05 over 200 posts is significant
    # The standard error of the mean change is 0.05 / sqrt(200) = 0.0035: the 95% interval is about +-0.007.
    assert result.high - result.low == pytest.approx(2 * 1.96 * 0.05 / np.sqrt(200), rel=0.2)
    assert paired_bootstrap(before, after) == result  # seeded
    assert paired_bootstrap(before, after, seed=5) != result
    with pytest.raises(ValueError, match="no pairs"):
        paired_bootstrap([], [])


@pytest.mark.parametrize("seed", range(20))
def test_noise_alone_never_fails_the_gate(seed: int) -> None:
    before = post_scores(seed)
    after = before + np.random.default_rng(100 + seed).normal(0.0, 0.05, size=before.size)
    gate = gate_against(
        document({"t": before.tolist()}), document({"t": after.tolist()}), label="run 1", margin=0.02
    )
    assert gate.failures == ()


def test_a_real_drop_fails_with_a_clear_message() -> None:
    before = post_scores(3)
    after = before - 0.1 + np.random.default_rng(4).normal(0.0, 0.05, size=before.size)
    gate = gate_against(
        document({"t": before.tolist(), "same": before.tolist()}),
        document({"t": after.tolist(), "same": before.tolist()}),
        label="saved run 0001",
        margin=0.02,
    )
    (failure,) = gate.failures
    assert failure.startswith("t: average score dropped by 0.09")
    assert "against saved run 0001" in failure
    assert "over 200 paired posts" in failure
    assert "excludes 0; margin 0.020" in failure


def test_a_drop_within_the_margin_or_not_significant_passes() -> None:
    before = post_scores(5)
    small = before - 0.01  # certain, but smaller than the margin
    comparison = compare_runs(document({"t": before.tolist()}), document({"t": small.tolist()}))
    (tagger,) = comparison.taggers
    assert tagger.change.high < 0
    assert not tagger.regressed(0.02)
    assert tagger.regressed(0.005)
    # A big average drop carried by 2 posts of 10: the interval reaches 0, so it is noise.
    few = np.zeros(10)
    dropped = few.copy()
    dropped[:2] = -0.6
    (noisy,) = compare_runs(document({"t": few.tolist()}), document({"t": dropped.tolist()})).taggers
    assert noisy.change.mean == pytest.approx(-0.12)
    assert noisy.change.high >= 0
    assert not noisy.regressed(0.02)


def test_only_posts_scored_in_both_runs_are_paired() -> None:
    before = document({"t": [0.5, 0.5, 0.5]})
    after = document({"t": [0.1, 0.2]})
    after["posts"].append({"tagger": "t", "post_id": 2, "rating": "g", "score": None})
    (tagger,) = compare_runs(before, after).taggers
    assert tagger.posts == 2
    assert (tagger.before, tagger.after) == pytest.approx((0.5, 0.15))


def test_taggers_in_one_run_only_and_without_common_posts() -> None:
    before = document({"a": [0.5], "b": [0.5]})
    after = document({"b": [0.4], "c": [0.5]})
    after["posts"][0]["post_id"] = 99
    comparison = compare_runs(before, after)
    assert comparison.taggers == ()
    assert comparison.only_before == ("a",)
    assert comparison.only_after == ("c",)
    assert comparison.no_common_posts == ("b",)
    (failure,) = regression_failures(comparison, 0.02, "run 1")
    assert failure.startswith("b: cannot compare against run 1: no post was scored in both runs")
    text = format_comparison(comparison, 0.02)
    assert "only in the first run: a" in text
    assert "only in the second run: c" in text


def test_tags_that_gained_and_lost_most() -> None:
    def posts(predicted: list[list[str]], ratings: list[str]) -> dict[str, Any]:
        return {
            "posts": [
                {
                    "tagger": "t", "post_id": i, "rating": "g", "score": 0.0, "truth": ["cat", "rating:g"],
                    "predicted": tags, "predicted_rating": rating,
                }
                for i, (tags, rating) in enumerate(zip(predicted, ratings, strict=True))
            ]
        }  # fmt: skip

    before = posts([["dog"], ["dog"], []], ["g", "g", "g"])
    after = posts([["cat"], ["cat", "dog"], ["tree"]], ["g", "s", "g"])
    (tagger,) = compare_runs(before, after, resamples=200).taggers
    assert [(c.tag, c.before, c.after) for c in tagger.gained] == [("cat", 0, 2), ("dog", -2, -1)]
    assert [(c.tag, c.change) for c in tagger.lost] == [("rating:g", -1), ("rating:s", -1), ("tree", -1)]
    assert "cat (+2), dog (+1)" in format_comparison(compare_runs(before, after), 0.02)


def test_margin_option() -> None:
    assert build_settings().compare_margin == DEFAULT_MARGIN == 0.02
    assert build_settings(compare_margin="0.4").compare_margin == 0.4
    assert build_settings(compare_run="latest").compare_run == "latest"
    with pytest.raises(ValueError, match="at least 0"):
        build_settings(compare_margin="-0.1")
