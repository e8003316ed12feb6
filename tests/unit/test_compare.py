"""The paired bootstrap and the compare gate: noise passes, a real drop fails."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_tagger_showdown.compare import (
    DEFAULT_MARGIN,
    NOTHING_COMPARED,
    compare_runs,
    detectable_drop,
    format_comparison,
    gate_against,
    holm_adjusted,
    paired_bootstrap,
    posts_needed,
    regression_failures,
)
from pytest_tagger_showdown.dataset.post import Post
from pytest_tagger_showdown.errors import ShowdownError
from pytest_tagger_showdown.session import dataset_fingerprint
from pytest_tagger_showdown.settings import build_settings
from pytest_tagger_showdown.tags import TagCategory


def document(scores: dict[str, list[float]], **extra: dict[str, Any]) -> dict[str, Any]:
    """A results document with one post per score (post ids 0..n-1)."""
    posts = [
        {"tagger": tagger, "post_id": i, "rating": "g", "score": float(s), **extra.get(tagger, {})}
        for tagger, values in scores.items()
        for i, s in enumerate(values)
    ]
    return {"posts": posts, "taggers": {}, "categories": ["general"]}


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
    # Both taggers are compared: Holm doubles the smallest p-value (1 / 2001 resamples, none >= 0).
    assert "p 0.0010, Holm-adjusted over 2 tagger(s) 0.0020 <= 0.05; margin 0.020" in failure


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
    # Before: c, scored only in the later run, went ungated (the gate passed having judged nothing).
    no_common, absent = regression_failures(comparison, 0.02, "run 1")
    assert no_common.startswith("b: cannot compare against run 1: no post was scored in both runs")
    assert absent == "c: cannot compare against run 1: it scored no post there (that run has a, b)"
    gate = gate_against(before, after, label="run 1", margin=0.02)
    assert gate.verdicts == {"b": no_common, "c": absent}
    text = format_comparison(comparison, 0.02)
    assert "only in the first run: a" in text
    assert "only in the second run: c" in text


def test_a_comparison_of_no_tagger_fails_the_gate() -> None:
    # Before: "Holm over 0 tagger(s)", no failure: the gate passed having compared nothing.
    before = document({"a": [0.5]})
    after: dict[str, Any] = {"posts": [], "categories": ["general"]}
    gate = gate_against(before, after, label="run 1", margin=0.02)
    failure = "no tagger was compared against run 1: the later run scored no post"
    assert gate.failures == (failure,)
    assert gate.verdicts == {NOTHING_COMPARED: failure}


def test_tags_that_gained_and_lost_most() -> None:
    def posts(predicted: list[list[str]], ratings: list[str]) -> dict[str, Any]:
        return {
            "posts": [
                {
                    "tagger": "t", "post_id": i, "rating": "g", "score": 0.0, "truth": ["cat", "rating:g"],
                    "predicted": tags, "predicted_rating": rating,
                }
                for i, (tags, rating) in enumerate(zip(predicted, ratings, strict=True))
            ],
            "categories": ["general"],
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
    with pytest.raises(ValueError, match="a finite number >= 0"):
        build_settings(compare_margin="-0.1")


def test_holm_adjusts_step_down_and_keeps_the_input_order() -> None:
    # Sorted 0.01, 0.02, 0.04: times 3, 2, 1 -> 0.03, 0.04, 0.04 (monotone), back in input order.
    assert holm_adjusted([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm_adjusted([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjusted([]) == []


def test_bootstrap_p_value_is_studentized() -> None:
    differences = np.array([-0.3, 0.1, -0.2, 0.05, -0.1, -0.15, 0.0, -0.05])
    result = paired_bootstrap(np.zeros(8), differences, resamples=4000, seed=7)
    picks = differences[np.random.default_rng(7).integers(0, 8, size=(4000, 8))]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_star = np.nan_to_num((picks.mean(axis=1) - differences.mean()) / picks.std(axis=1, ddof=1))
    t_observed = differences.mean() / differences.std(ddof=1)
    assert result.p_drop == pytest.approx((1 + np.count_nonzero(t_star <= t_observed)) / 4001)
    assert result.p_gain == pytest.approx((1 + np.count_nonzero(t_star >= t_observed)) / 4001)
    assert result.p_value == pytest.approx(2 * result.p_drop)
    assert 0.01 < result.p_drop < 0.2  # a drop of 0.081 over 8 noisy posts: suggestive, not certain
    assert result.sd == pytest.approx(float(np.std(differences, ddof=1)))
    certain = paired_bootstrap(np.zeros(5), np.full(5, -0.1), resamples=999)
    assert certain.p_drop == 1 / 1000


def test_power_figures_follow_the_normal_approximation() -> None:
    # z(0.95) + z(0.8) = 1.6449 + 0.8416 = 2.4865; sd 0.2 over 48 posts: 2.4865 * 0.2 / 6.928 = 0.0718.
    assert detectable_drop(0.2, 48, 0.05) == pytest.approx(0.07178, abs=1e-4)
    # (2.4865 * 0.2 / 0.02)^2 = 618.3 -> 619 posts.
    assert posts_needed(0.2, 0.02, 0.05) == 619
    assert posts_needed(0.2, 0.0, 0.05) is None


def test_the_table_shows_pairing_power_and_what_differs() -> None:
    before = post_scores(11, count=48)
    noise = np.random.default_rng(12).normal(0.0, 0.2, size=48)
    old = document({"a": before.tolist(), "b": before.tolist()})
    new = document({"a": (before + noise).tolist(), "b": before[:40].tolist()})
    old["taggers"] = {"a": {"thresholds": {"general": 0.35}, "provider": "CPUExecutionProvider"}}
    new["taggers"] = {"a": {"thresholds": {"general": 0.5}, "provider": "CPUExecutionProvider"}}
    old["dataset_fingerprint"], new["dataset_fingerprint"] = "1" * 64, "2" * 64
    comparison = compare_runs(old, new)
    a, b = comparison.taggers
    assert (a.posts, a.unpaired, b.posts, b.unpaired) == (48, 0, 40, 8)
    assert a.family == b.family == 2
    assert a.differences == (
        "thresholds general=0.35 -> general=0.5",
        "dataset fingerprint 111111111111 -> 222222222222",
    )
    # One-sided level 0.05 / 2 taggers / 2 sides = 0.0125: z(0.9875) + z(0.8) = 2.2414 + 0.8416 = 3.0830.
    assert a.detectable == pytest.approx(3.0830 * a.change.sd / np.sqrt(48), rel=1e-3)
    text = format_comparison(comparison, 0.02)
    assert "40 (8 unpaired)" in text
    # What differs follows the table on its tagger's own line, so the table stays narrow.
    assert (
        "a: differs: thresholds general=0.35 -> general=0.5; dataset fingerprint 111111111111 -> 222222222222"
        in text.splitlines()
    )
    table = text.split("\na: differs")[0]
    assert max(map(len, table.splitlines())) <= 140  # 258 with what differs in it
    assert "differs" not in table
    assert "~ (underpowered)" in text
    assert (
        f"note: a: margin 0.020 is below what this run can detect: detects drops of {a.detectable:.3f}"
        in text
    )


def test_runs_over_different_categories_are_refused() -> None:
    old = {
        **document({"a": [0.1, 0.2]}),
        "categories": ["artist", "character", "copyright", "general", "meta"],
    }
    new = {**document({"a": [0.3, 0.4]}), "categories": ["character", "general"]}
    # Before: compared, and reported as a change (here a gain; the other way round a DROP).
    with pytest.raises(ShowdownError, match="different tag categories cannot be compared"):
        compare_runs(old, new)


def _false_alarms_and_hits(trials: int, posts: int, drop: float, seed: int) -> tuple[float, float]:
    """Synthetic before/after runs of 3 taggers, per-post noise SD 0.2: the share of runs the gate
    fails (any tagger) and the share of gated taggers it fails."""
    rng = np.random.default_rng(seed)
    failed_runs = failed_taggers = 0
    for _ in range(trials):
        scores = {}
        after = {}
        for tagger in ("a", "b", "c"):
            base = rng.normal(0.3, 0.25, size=posts)
            scores[tagger] = base.tolist()
            after[tagger] = (base - drop + rng.normal(0.0, 0.2, size=posts)).tolist()
        gate = gate_against(document(scores), document(after), label="saved", margin=DEFAULT_MARGIN)
        failed_runs += bool(gate.failures)
        failed_taggers += len(gate.failures)
    return failed_runs / trials, failed_taggers / (3 * trials)


def test_noise_alone_fails_at_most_five_percent_of_runs_with_three_taggers() -> None:
    """No true change, 48 posts, SD 0.2: family-wise false alarms (docs/metrics.md has the figures)."""
    false_alarms, _ = _false_alarms_and_hits(trials=400, posts=48, drop=0.0, seed=2024)
    assert false_alarms <= 0.05


def test_a_true_drop_of_a_tenth_is_caught_at_200_posts() -> None:
    _, caught = _false_alarms_and_hits(trials=200, posts=200, drop=0.10, seed=2025)
    assert caught >= 0.90


def test_a_run_that_does_not_say_its_categories_is_refused() -> None:
    """Before: a saved run without ``categories`` was taken to match whatever the other run scored."""
    old, new = document({"a": [0.1, 0.2]}), document({"a": [0.3, 0.4]})
    del old["categories"]
    for pair in ((old, new), (new, old)):
        with pytest.raises(ShowdownError, match="does not record which tag categories it scored"):
            compare_runs(*pair)


def test_posts_whose_ground_truth_changed_are_not_paired_and_fail_the_gate() -> None:
    """Before: 19 posts retagged in the dataset were compared as if nothing but the tagger changed."""
    scores = post_scores(3, count=40).tolist()
    old = document({"a": scores}, a={"truth": ["cat", "rating:g"]})
    new = document({"a": scores}, a={"truth": ["cat", "rating:g"]})
    for post in new["posts"][:19]:
        post["truth"] = ["dog", "rating:g"]
    new["posts"][19]["rating"] = "s"
    comparison = compare_runs(old, new)
    (a,) = comparison.taggers
    assert a.posts == 20  # the 20 posts scored against the same truth
    assert comparison.changed_truth == {"a": tuple(range(20))}
    (failure,) = regression_failures(comparison, 0.02, "run 1")
    assert failure == (
        "a: cannot compare against run 1: 20 post(s) scored in both runs have different ground truth "
        "(tags or rating changed in the dataset; post(s) 0, 1, 2, 3, 4, ...): compare runs of one dataset"
    )
    gate = gate_against(old, new, label="run 1", margin=0.02)
    assert gate.verdicts == {"a": failure}
    # Every paired post changed: one failure, for the truth, not "no post in common" as well.
    for post in new["posts"]:
        post["truth"] = ["dog"]
    every = compare_runs(old, new)
    assert every.no_common_posts == ("a",)
    assert [f.split(": ")[2][:3] for f in regression_failures(every, 0.02, "run 1")] == ["40 "]


def test_posts_that_all_changed_alike_have_unknown_power_and_a_certain_change() -> None:
    """Before: posts that all changed alike printed "detectable 0.000, posts for margin 2" and no
    underpowered flag: artefacts of an SD of 0. Their float differences (0.4 - 0.5 is -0.09999999999999998)
    have an SD of 1e-17, not 0: the same certain change as an SD of exactly 0, not a t of 1e16."""
    comparison = compare_runs(document({"a": [0.5, 0.2, 0.1]}), document({"a": [0.4, 0.1, 0.0]}))
    (a,) = comparison.taggers
    assert (a.detectable, a.posts_for(0.02), a.underpowered(0.02)) == (None, None, True)
    # A consistent shift of every post is a real change: the smallest p-value 2,000 resamples give.
    assert (a.change.p_drop, a.change.p_gain, a.change.p_value) == (1 / 2001, 1.0, 2 / 2001)
    assert a.regressed(0.02)
    text = format_comparison(comparison, 0.2)  # a margin the change of -0.1 stays within
    row = next(line for line in text.splitlines() if line.startswith("a "))
    assert row.split()[-4:] == ["-", "-", "~", "(underpowered)"]
    assert (
        "note: a: margin 0.200 may be below what this run can detect: power unknown: no spread of "
        "per-post changes to estimate it from (all 3 paired posts changed by -0.100)"
    ) in text


def test_one_paired_post_cannot_be_judged() -> None:
    """Before: one paired post whose score fell 0.1 was a DROP at p 0.0010 (a zero-variance bootstrap
    over one post), failing as a significant regression; with its score unchanged it passed."""
    for after in (0.2, 0.3):
        comparison = compare_runs(
            document({"a": [0.3], "b": [0.5, 0.1]}), document({"a": [after], "b": [0.5, 0.1]})
        )
        a, b = comparison.taggers
        assert (a.change.p_value, a.adjusted_p, a.regressed(0.02), a.is_gain) == (1.0, 1.0, False, False)
        assert (a.family, b.family) == (1, 1)  # Holm's family is the taggers a change can be tested for
        failure = "a: cannot judge against run 1: 1 post scored in both runs, at least 2 needed"
        assert regression_failures(comparison, 0.02, "run 1") == [
            f"{failure} (one post's change has no spread to test it by)"
        ]
        text = format_comparison(comparison, 0.02)
        row = next(line for line in text.splitlines() if line.startswith("a "))
        assert row.split()[-6:] == ["-", "1.0000", "-", "-", "cannot", "judge"]  # no interval over one post
        assert "note: a:" not in text  # its failure says it
        assert "DROP" not in text
        assert (
            gate_against(document({"a": [0.3]}), document({"a": [after]}), label="run 1", margin=0.02)
            .verdicts["a"]
            .startswith(failure)
        )


def test_every_post_unchanged_is_unchanged_without_a_power_note() -> None:
    """Before: rerunning the same model (every paired change exactly 0) showed "~ (underpowered)" and
    a note "power unknown ... all 48 paired posts changed by +0.000" on every compare."""
    scores = post_scores(21, count=48).tolist()
    comparison = compare_runs(document({"a": scores}), document({"a": scores}))
    (a,) = comparison.taggers
    assert (a.unchanged, a.underpowered(0.02), a.regressed(0.0), a.is_gain) == (True, False, False, False)
    assert regression_failures(comparison, 0.0, "run 1") == []
    text = format_comparison(comparison, 0.02)
    row = next(line for line in text.splitlines() if line.startswith("a "))
    assert row.split()[-4:] == ["1.0000", "-", "-", "unchanged"]
    assert "note" not in text
    # One post changed: no longer unchanged, and the power comes from the spread.
    changed = compare_runs(document({"a": scores}), document({"a": [scores[0] - 0.1, *scores[1:]]}))
    assert not changed.taggers[0].unchanged
    assert changed.taggers[0].detectable is not None


def test_the_dataset_fingerprint_covers_the_ground_truth() -> None:
    """Before: it was sha256 over ``id:md5`` only, so retagging posts left it unchanged."""

    def post(md5: str = "a" * 32, rating: str = "g", **tags: TagCategory) -> Post:
        return Post(id=7, md5=md5, rating=rating, file_ext="png", tags=tags)

    base = post(cat=TagCategory.GENERAL, miku=TagCategory.CHARACTER)
    variants = [
        post(dog=TagCategory.GENERAL, miku=TagCategory.CHARACTER),  # a tag renamed
        post(cat=TagCategory.GENERAL, miku=TagCategory.GENERAL),  # a tag re-categorised
        post(rating="s", cat=TagCategory.GENERAL, miku=TagCategory.CHARACTER),
        post(md5="b" * 32, cat=TagCategory.GENERAL, miku=TagCategory.CHARACTER),
    ]
    prints = {dataset_fingerprint([p]) for p in [base, *variants]}
    assert len(prints) == 5
    reordered = post(miku=TagCategory.CHARACTER, cat=TagCategory.GENERAL)
    assert dataset_fingerprint([reordered]) == dataset_fingerprint([base])
