"""The study's score, hand-computed, and the counts behind it against scikit-learn."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import f1_score, precision_score, recall_score

from pytest_tagger_showdown import Post, Prediction, ShowdownScore, TagCategory, score_prediction
from pytest_tagger_showdown.results import post_result
from tests.helpers.datasets import CO, A, C, G, M

POST = Post(
    id=1,
    md5="0" * 32,
    rating="s",
    file_ext="png",
    tags={
        "1girl": G,
        "long_hair": G,
        "smile": G,
        "hatsune_miku": C,
        "vocaloid": CO,
        "some_artist": A,
        "highres": M,
    },
)
GENERAL_CHARACTER = {TagCategory.GENERAL, TagCategory.CHARACTER}


def test_hand_computed_score_over_all_categories() -> None:
    # truth: 7 tags + rating = 8; predicted: 1girl, smile (correct), red_eyes, twintails (incorrect),
    # rating q (incorrect).
    prediction = Prediction(tags={"1girl": 0.9, "smile": 0.5, "red_eyes": 0.4, "twintails": 0.8}, rating="q")
    score = score_prediction(POST, prediction)
    assert (score.correct, score.incorrect, score.missed, score.truth_size) == (2, 3, 6, 8)
    assert score.score == pytest.approx((2 - 3) / 8)
    assert score.rating_correct is False
    assert score.practical_errors == 2
    assert score.precision == pytest.approx(2 / 5)
    assert score.recall == pytest.approx(2 / 8)
    assert score.f1 == pytest.approx(2 * 0.4 * 0.25 / 0.65)


def test_general_character_ignores_true_tags_of_other_categories() -> None:
    # vocaloid is a true copyright tag: not scored, so neither correct nor incorrect; truth = 4 + rating.
    prediction = Prediction(tags={"1girl": 1.0, "vocaloid": 1.0, "hat": 1.0}, rating="s")
    score = score_prediction(POST, prediction, GENERAL_CHARACTER)
    assert (score.correct, score.incorrect, score.truth_size) == (2, 1, 5)
    assert score.score == pytest.approx(1 / 5)


def test_tag_spelling_is_normalised() -> None:
    prediction = Prediction(tags={"Long Hair": 0.9, " 1girl ": 0.9}, rating="sensitive")
    score = score_prediction(POST, prediction)
    assert (score.correct, score.incorrect) == (3, 0)
    assert score.rating_correct is True


def test_safe_counts_as_general_or_sensitive() -> None:
    safe = Prediction(tags={}, rating="safe")
    assert score_prediction(POST, safe).rating_correct is True
    explicit_post = Post(id=2, md5="1" * 32, rating="e", file_ext="png", tags={"nude": G})
    assert score_prediction(explicit_post, safe).rating_correct is False


def test_no_rating_is_missed_not_incorrect() -> None:
    score = score_prediction(POST, Prediction(tags={"1girl": 1.0}))
    assert score.rating_correct is None
    assert (score.correct, score.incorrect, score.missed) == (1, 0, 7)
    assert score.practical_errors == 0


def test_control_prediction_scores_exactly_one() -> None:
    control = Prediction(tags=dict.fromkeys(POST.tags, 1.0), rating=POST.rating)
    assert score_prediction(POST, control).score == 1.0
    assert score_prediction(POST, control, GENERAL_CHARACTER).score == 1.0


VOCABULARY = [f"tag_{i}" for i in range(12)]


@given(
    truth=st.sets(st.sampled_from(VOCABULARY), min_size=1),
    predicted=st.sets(st.sampled_from(VOCABULARY)),
)
def test_counts_match_scikit_learn(truth: set[str], predicted: set[str]) -> None:
    post = Post(id=3, md5="2" * 32, rating="g", file_ext="png", tags=dict.fromkeys(truth, G))
    score = score_prediction(post, Prediction(tags=dict.fromkeys(predicted, 1.0), rating="g"))
    y_true = [1] + [int(tag in truth) for tag in VOCABULARY]  # the rating is the first "tag"
    y_pred = [1] + [int(tag in predicted) for tag in VOCABULARY]
    assert score.precision == pytest.approx(precision_score(y_true, y_pred, zero_division=0))
    assert score.recall == pytest.approx(recall_score(y_true, y_pred))
    assert score.f1 == pytest.approx(f1_score(y_true, y_pred))
    assert score.score == pytest.approx((score.correct - score.incorrect) / (len(truth) + 1))


@given(
    post_tags=st.dictionaries(st.sampled_from(VOCABULARY), st.sampled_from(list(TagCategory)), min_size=1),
    predicted=st.sets(st.sampled_from([*VOCABULARY, "Tag 1", " tag_2 "])),
    categories=st.sets(st.sampled_from(list(TagCategory)), min_size=1),
    rating=st.sampled_from([None, "g", "s", "safe", "e"]),
    aliases=st.dictionaries(st.sampled_from(VOCABULARY), st.sampled_from(VOCABULARY), max_size=3),
)
def test_a_post_result_scores_and_lists_tags_by_the_rule_over_scored_categories(
    post_tags: dict[str, TagCategory],
    predicted: set[str],
    categories: set[TagCategory],
    rating: str | None,
    aliases: dict[str, str],
) -> None:
    """Counted from the definition, tag by tag: a predicted tag is correct when the post has it in a
    scored category, ignored when in another one, else incorrect; the rating is one more tag."""
    post = Post(id=4, md5="3" * 32, rating="s", file_ext="png", tags=post_tags)
    prediction = Prediction(tags=dict.fromkeys(predicted, 1.0), rating=rating)
    spelled = {
        aliases.get(name, name) for name in (tag.strip().lower().replace(" ", "_") for tag in predicted)
    }
    truth = {tag for tag, category in post_tags.items() if category in categories}
    right_rating = None if rating is None else rating in ("s", "safe")
    correct = sum(1 for tag in spelled if tag in truth) + (right_rating is True)
    incorrect = sum(1 for tag in spelled if tag not in post_tags) + (right_rating is False)
    expected = ShowdownScore(correct, incorrect, len(truth) + 1 - correct, len(truth) + 1, right_rating)
    result = post_result("t", post, categories, prediction, aliases=aliases)
    assert result.score == expected
    assert score_prediction(post, prediction, categories, aliases) == expected
    assert result.predicted == tuple(sorted(spelled))
    assert result.truth == (*sorted(truth), "rating:s")


def test_the_dict_form_holds_every_field_and_the_derived_numbers() -> None:
    score = ShowdownScore(correct=3, incorrect=2, missed=4, truth_size=7, rating_correct=False)
    assert score.to_dict() == {
        "correct": 3,
        "incorrect": 2,
        "missed": 4,
        "truth_size": 7,
        "rating_correct": False,
        "score": pytest.approx(1 / 7),
        "precision": pytest.approx(3 / 5),
        "recall": pytest.approx(3 / 7),
        "f1": pytest.approx(2 * 0.6 * (3 / 7) / (0.6 + 3 / 7)),
        "practical_errors": 1,
    }
    assert set(score.to_dict()) >= {field.name for field in dataclasses.fields(ShowdownScore)}
    assert ShowdownScore.from_dict(score.to_dict()) == score
