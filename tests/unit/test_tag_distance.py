"""The tag-distance-aware score: co-occurrence similarity and the worked example of docs/metrics.md."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pytest_tagger_showdown.dataset.danbooru import RelatedTag, RelatedTagAnswer
from pytest_tagger_showdown.dataset.post import Post
from pytest_tagger_showdown.dataset.store import Dataset
from pytest_tagger_showdown.prediction import Prediction
from pytest_tagger_showdown.results import PostResult, truth_tags
from pytest_tagger_showdown.scoring import score_prediction
from pytest_tagger_showdown.tag_distance import Cooccurrence, RelatedTags, distance_aware_score
from pytest_tagger_showdown.tags import TagCategory

#: The six posts of the worked example in docs/metrics.md.
EXAMPLE_POSTS = [
    {"1girl", "long_hair", "very_long_hair"},
    {"1girl", "long_hair", "very_long_hair"},
    {"1girl", "long_hair"},
    {"1girl", "short_hair"},
    {"cat", "no_humans"},
    {"1girl", "cat"},
]


def scored(post: Post, prediction: Prediction) -> PostResult:
    score = score_prediction(post, prediction)
    return PostResult(
        tagger="t",
        post_id=post.id,
        rating=post.rating,
        score=score,
        predicted=tuple(sorted(prediction.tags)),
        predicted_rating=prediction.rating,
        truth=truth_tags(post, set(TagCategory)),
    )


def test_cosine_similarity_from_cooccurrence() -> None:
    index = Cooccurrence(EXAMPLE_POSTS)
    assert index.posts_with("1girl") == 5
    assert index.similarity("very_long_hair", "long_hair") == pytest.approx(2 / math.sqrt(2 * 3))
    assert index.similarity("long_hair", "very_long_hair") == index.similarity("very_long_hair", "long_hair")
    assert index.similarity("cat", "1girl") == pytest.approx(1 / math.sqrt(10))
    assert index.similarity("cat", "long_hair") == 0.0
    assert index.similarity("cat", "cat") == 1.0
    assert index.similarity("cat", "unheard_of") == 0.0
    closeness = index.closeness(["very_long_hair", "cat", "unheard_of"], {"1girl", "long_hair"})
    np.testing.assert_allclose(closeness, [2 / math.sqrt(6), 1 / math.sqrt(10), 0.0])


def test_worked_example_of_the_docs() -> None:
    index = Cooccurrence(EXAMPLE_POSTS)
    post = Post(
        id=1, md5="x", rating="g", file_ext="png",
        tags={"1girl": TagCategory.GENERAL, "long_hair": TagCategory.GENERAL},
    )  # fmt: skip
    tags = dict.fromkeys(["1girl", "long_hair", "very_long_hair", "cat"], 0.9)
    right_rating = scored(post, Prediction(tags=tags, rating="g"))
    assert right_rating.score is not None
    assert right_rating.score.score == pytest.approx(1 / 3)
    assert distance_aware_score(right_rating, index, post.tags.keys()) == pytest.approx(0.71091, abs=1e-5)
    wrong_rating = scored(post, Prediction(tags=tags, rating="s"))
    assert wrong_rating.score is not None
    assert wrong_rating.score.score == pytest.approx(-1 / 3)
    assert distance_aware_score(wrong_rating, index, post.tags.keys()) == pytest.approx(0.04424, abs=1e-5)


def test_with_unrelated_tags_it_is_the_study_score() -> None:
    post = Post(
        id=2, md5="x", rating="q", file_ext="png",
        tags={"cat": TagCategory.GENERAL, "someone": TagCategory.ARTIST},
    )  # fmt: skip
    result = scored(post, Prediction(tags={"cat": 1.0, "dog": 0.9, "tree": 0.8}, rating="e"))
    assert result.score is not None
    unrelated = Cooccurrence([])
    assert distance_aware_score(result, unrelated, post.tags.keys()) == pytest.approx(result.score.score)
    errored = PostResult(tagger="t", post_id=2, rating="q", score=None, error="broken")
    assert distance_aware_score(errored, unrelated) is None


def test_a_tag_the_post_has_in_an_unscored_category_is_not_wrong() -> None:
    post = Post(
        id=3, md5="x", rating="g", file_ext="png",
        tags={"cat": TagCategory.GENERAL, "original": TagCategory.COPYRIGHT},
    )  # fmt: skip
    prediction = Prediction(tags={"cat": 1.0, "original": 0.9}, rating="g")
    score = score_prediction(post, prediction, {TagCategory.GENERAL})
    result = PostResult(
        tagger="t", post_id=3, rating="g", score=score, predicted=("cat", "original"),
        predicted_rating="g", truth=truth_tags(post, {TagCategory.GENERAL}),
    )  # fmt: skip
    assert score.score == 1.0
    assert distance_aware_score(result, Cooccurrence([]), post.tags.keys()) == 1.0
    assert distance_aware_score(result, Cooccurrence([])) == pytest.approx(0.5)  # no post tags: wrong


def test_related_tags_are_read_both_ways_and_clipped() -> None:
    related = RelatedTags(
        {
            "long_hair": {"very_long_hair": 0.6, "1girl": 0.4},
            "very long hair": {"long_hair": 0.7},
            "solo": {"1girl": 1.02, "cat": -0.1},  # sampling error beyond 0..1
        }
    )
    assert related.source == "related_tags"
    assert related.similarity("long_hair", "very_long_hair") == 0.7  # the higher of both directions
    assert related.similarity("1girl", "long_hair") == 0.4
    assert related.similarity("cat", "long_hair") == 0.0
    assert related.similarity("1girl", "solo") == 1.0
    assert related.similarity("cat", "solo") == 0.0
    np.testing.assert_allclose(
        related.closeness(["very_long_hair", "cat"], {"long_hair", "1girl"}), [0.7, 0.0]
    )


def test_the_worked_example_with_danbooru_related_tags_stored_in_the_dataset(tmp_path: Path) -> None:
    """Danbooru finds very_long_hair closer to long_hair (0.9) and cat closer to 1girl (0.4) than the
    six posts do (0.816, 0.316): (3 - (1 - 0.9) - (1 - 0.4)) / 3 = 2.3 / 3, above co-occurrence's 0.711."""
    with Dataset(tmp_path / "data.db", writable=True) as dataset:
        dataset.add_related_tags(
            RelatedTagAnswer(
                "long_hair", 9, (RelatedTag("long_hair", 1.0), RelatedTag("very_long_hair", 0.9))
            )
        )
        dataset.add_related_tags(RelatedTagAnswer("cat", 4, (RelatedTag("1girl", 0.4),)))
        related = RelatedTags(dataset.related_tags())
    post = Post(
        id=1, md5="x", rating="g", file_ext="png",
        tags={"1girl": TagCategory.GENERAL, "long_hair": TagCategory.GENERAL},
    )  # fmt: skip
    tags = dict.fromkeys(["1girl", "long_hair", "very_long_hair", "cat"], 0.9)
    result = scored(post, Prediction(tags=tags, rating="g"))
    assert distance_aware_score(result, related, post.tags.keys()) == pytest.approx(2.3 / 3)
    assert distance_aware_score(result, Cooccurrence(EXAMPLE_POSTS), post.tags.keys()) == pytest.approx(
        0.71091, abs=1e-5
    )
