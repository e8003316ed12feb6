"""The per-post score of the study, with the counts behind it and the usual retrieval metrics.

``score = (correct - incorrect) / len(ground_truth)``, where the rating counts as one tag of the ground
truth: a right rating is one correct tag, a wrong one one incorrect tag. The ground truth is the post's
tags in the scored categories; a predicted tag the post has in an unscored category (say, a copyright
tag while scoring general+character) is neither correct nor incorrect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .dataset.post import Post
from .prediction import Prediction
from .tags import TagCategory, normalize_tag, rating_is_right


@dataclass(frozen=True)
class ShowdownScore:
    """How one prediction fares against one post's human tags (the rating counted as a tag)."""

    correct: int
    incorrect: int
    missed: int
    truth_size: int
    #: None when the tagger predicted no rating (then the rating is missed, not incorrect).
    rating_correct: bool | None

    @property
    def score(self) -> float:
        """The study's score: (correct - incorrect) / len(ground truth); 1.0 is perfect, can be negative."""
        return (self.correct - self.incorrect) / self.truth_size

    @property
    def predicted(self) -> int:
        return self.correct + self.incorrect

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.truth_size

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def incorrect_ratings(self) -> int:
        return 1 if self.rating_correct is False else 0

    @property
    def practical_errors(self) -> int:
        """Incorrect tags not counting a wrong rating (the study's "practical" error)."""
        return self.incorrect - self.incorrect_ratings

    def to_dict(self) -> dict[str, Any]:
        # Fields spelled out: ``dataclasses.asdict`` deep-copies and took half this time (issue 14).
        return {
            "correct": self.correct,
            "incorrect": self.incorrect,
            "missed": self.missed,
            "truth_size": self.truth_size,
            "rating_correct": self.rating_correct,
            "score": self.score,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "practical_errors": self.practical_errors,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShowdownScore:
        return cls(
            correct=int(data["correct"]),
            incorrect=int(data["incorrect"]),
            missed=int(data["missed"]),
            truth_size=int(data["truth_size"]),
            rating_correct=None if data["rating_correct"] is None else bool(data["rating_correct"]),
        )


def predicted_tags(prediction: Prediction, aliases: Mapping[str, str] | None = None) -> frozenset[str]:
    """The prediction's tags in Danbooru spelling, aliases resolved (``aliases`` maps old -> new name:
    Danbooru's tag aliases, antecedent -> consequent, so a tagger trained before a rename is not
    punished for the old name of a right tag)."""
    names: Iterable[str] = map(normalize_tag, prediction.tags)
    if aliases:
        names = (aliases.get(name, name) for name in names)
    return frozenset(names)


def renamed_tags(prediction: Prediction, aliases: Mapping[str, str] | None) -> int:
    """How many of the prediction's tags ``aliases`` gives a current name."""
    if not aliases:
        return 0
    return sum(1 for tag in prediction.tags if normalize_tag(tag) in aliases)


def score_prediction(
    post: Post,
    prediction: Prediction,
    categories: Iterable[TagCategory] = tuple(TagCategory),
    aliases: Mapping[str, str] | None = None,
) -> ShowdownScore:
    """Score one prediction against one post over the tags of ``categories`` plus the rating."""
    return score_tags(post, predicted_tags(prediction, aliases), prediction.rating, categories)


def score_tags(
    post: Post,
    predicted: frozenset[str],
    rating: str | None,
    categories: Iterable[TagCategory] = tuple(TagCategory),
) -> ShowdownScore:
    """:func:`score_prediction` of a prediction's :func:`predicted_tags` and rating, for a caller that
    needs those tags itself and finds them once."""
    scored = frozenset(categories)
    truth = post.tags_in(scored)
    unscored = post.tags.keys() - truth  # the post's tags in the other categories
    predicted = predicted - unscored
    correct = len(predicted & truth)
    incorrect = len(predicted - truth)
    rating_correct: bool | None = None
    if rating is not None:
        rating_correct = rating_is_right(rating, post.rating)
        if rating_correct:
            correct += 1
        else:
            incorrect += 1
    truth_size = len(truth) + 1
    return ShowdownScore(
        correct=correct,
        incorrect=incorrect,
        missed=truth_size - correct,
        truth_size=truth_size,
        rating_correct=rating_correct,
    )
