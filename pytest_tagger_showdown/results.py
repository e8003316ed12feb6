"""Result records of a showdown, their aggregation per tagger, and the JSON they are saved as.

A :class:`PostResult` is a plain dict on the wire (``to_dict``/``from_dict``), which is how results
travel from pytest-xdist workers to the controller and into saved files.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import atomic
from .columns import dumps, post_rows, to_columns
from .dataset.post import Post
from .prediction import Prediction
from .scoring import ShowdownScore, predicted_tags, renamed_tags, score_tags
from .tags import TagCategory, rating_tag

#: 2: ``posts`` stored column-wise (:mod:`columns`); 1: a list of dicts, still read.
JSON_FORMAT_VERSION = 2
#: The ``user_properties`` key a result travels under (to the controller under pytest-xdist, too).
RESULT_PROPERTY = "tagger_showdown"


@dataclass(frozen=True)
class PostResult:
    """What one tagger did on one post: the score (None if the post errored) and the times."""

    tagger: str
    post_id: int
    rating: str
    score: ShowdownScore | None
    predicted: tuple[str, ...] = ()
    predicted_rating: str | None = None
    truth: tuple[str, ...] = ()
    preprocess_s: float | None = None
    inference_s: float | None = None
    error: str | None = None
    cached: bool = False
    #: How many predicted tags the dataset's aliases renamed to current names (``predicted`` has the
    #: current names).
    renamed: int = 0
    #: The model's full output row (vocabulary order) where it has one; not part of the dict form:
    #: it travels compactly through :mod:`pytest_tagger_showdown.probabilities` instead.
    probabilities: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)
    #: ``Prediction.stored_columns``: the columns of ``probabilities`` at or above the floor, when
    #: known (the row message reuses them); not part of the dict form either.
    stored_columns: npt.NDArray[np.int64] | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"post{self.post_id}-{self.rating}"

    @property
    def runtime_s(self) -> float | None:
        """Preprocessing plus inference: the cost of tagging this image."""
        if self.preprocess_s is None or self.inference_s is None:
            return None
        return self.preprocess_s + self.inference_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "tagger": self.tagger,
            "post_id": self.post_id,
            "rating": self.rating,
            **(self.score.to_dict() if self.score else {"score": None}),
            "predicted": list(self.predicted),
            "predicted_rating": self.predicted_rating,
            "truth": list(self.truth),
            "preprocess_s": self.preprocess_s,
            "inference_s": self.inference_s,
            "error": self.error,
            "cached": self.cached,
            "renamed_by_aliases": self.renamed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PostResult:
        return cls(
            tagger=str(data["tagger"]),
            post_id=int(data["post_id"]),
            rating=str(data["rating"]),
            score=None if data.get("score") is None else ShowdownScore.from_dict(data),
            predicted=tuple(data.get("predicted", ())),
            predicted_rating=data.get("predicted_rating"),
            truth=tuple(data.get("truth", ())),
            preprocess_s=data.get("preprocess_s"),
            inference_s=data.get("inference_s"),
            error=data.get("error"),
            cached=bool(data.get("cached", False)),
            renamed=int(data.get("renamed_by_aliases", 0)),
        )


def truth_tags(post: Post, categories: Iterable[TagCategory]) -> tuple[str, ...]:
    """The ground truth a score is computed against: scored tags plus the rating pseudo-tag."""
    return (*sorted(post.tags_in(categories)), rating_tag(post.rating))


def post_result(
    tagger: str,
    post: Post,
    categories: Iterable[TagCategory],
    prediction: Prediction | None,
    *,
    error: str | None = None,
    preprocess_s: float | None = None,
    inference_s: float | None = None,
    cached: bool = False,
    aliases: Mapping[str, str] | None = None,
) -> PostResult:
    """The one place a :class:`PostResult` is built: ``prediction`` scored against ``post`` over
    ``categories`` plus the rating, or (``prediction`` None) the post's failure, ``error``."""
    scored = frozenset(categories)
    truth = truth_tags(post, scored)
    if prediction is None:
        return PostResult(
            tagger=tagger,
            post_id=post.id,
            rating=post.rating,
            score=None,
            truth=truth,
            preprocess_s=preprocess_s,
            error=error or f"{post.label}: no prediction",
        )
    predicted = predicted_tags(prediction, aliases)
    return PostResult(
        tagger=tagger,
        post_id=post.id,
        rating=post.rating,
        score=score_tags(post, predicted, prediction.rating, scored),
        predicted=tuple(sorted(predicted)),
        renamed=renamed_tags(prediction, aliases),
        predicted_rating=prediction.rating,
        truth=truth,
        preprocess_s=preprocess_s,
        inference_s=inference_s,
        cached=cached,
        probabilities=prediction.probabilities,
        stored_columns=prediction.stored_columns,
    )


@dataclass(frozen=True)
class TaggerSummary:
    """A tagger's aggregates over the posts it scored; errored posts are counted, not averaged.

    Precision, recall and F1 are micro-averaged (pooled counts over all posts). Error rates are per
    image, as in the study: incorrect tags, and "practical" errors (incorrect tags minus a wrong rating).
    """

    tagger: str
    images: int
    errors: int
    avg_score: float | None
    median_score: float | None
    avg_runtime_s: float | None
    avg_preprocess_s: float | None
    avg_inference_s: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    rating_accuracy: float | None
    incorrect_per_image: float | None
    practical_per_image: float | None
    cached: int
    #: The lowest-scoring posts, ``(label, score)``, worst first.
    worst: tuple[tuple[str, float], ...]
    #: Predicted tags the dataset's aliases renamed to current names, over all posts.
    renamed_by_aliases: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["worst"] = [list(pair) for pair in self.worst]
        return data


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(tagger: str, results: Iterable[PostResult], worst: int = 5) -> TaggerSummary:
    """Aggregate one tagger's results; order does not matter (results are sorted by post first)."""
    ordered = sorted(results, key=lambda r: r.post_id)
    scored = [r for r in ordered if r.score is not None]
    scores = [r.score for r in scored if r.score is not None]
    correct = sum(s.correct for s in scores)
    predicted = sum(s.predicted for s in scores)
    truth = sum(s.truth_size for s in scores)
    precision = correct / predicted if predicted else (0.0 if scores else None)
    recall = correct / truth if truth else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall
        else (0.0 if scores else None)
    )
    runtimes = [r.runtime_s for r in scored if r.runtime_s is not None]
    by_score = sorted(scored, key=lambda r: (r.score.score if r.score else 0.0, r.post_id))
    return TaggerSummary(
        tagger=tagger,
        images=len(scored),
        errors=len(ordered) - len(scored),
        avg_score=_mean([s.score for s in scores]),
        median_score=statistics.median([s.score for s in scores]) if scores else None,
        avg_runtime_s=_mean(runtimes),
        avg_preprocess_s=_mean([r.preprocess_s for r in scored if r.preprocess_s is not None]),
        avg_inference_s=_mean([r.inference_s for r in scored if r.inference_s is not None]),
        precision=precision,
        recall=recall,
        f1=f1,
        # Not applicable (None, shown "-") to a tagger that never predicts a rating (no rating outputs).
        rating_accuracy=(
            _mean([1.0 if s.rating_correct else 0.0 for s in scores])
            if any(s.rating_correct is not None for s in scores)
            else None
        ),
        incorrect_per_image=_mean([float(s.incorrect) for s in scores]),
        practical_per_image=_mean([float(s.practical_errors) for s in scores]),
        cached=sum(1 for r in scored if r.cached),
        worst=tuple((r.label, r.score.score) for r in by_score[:worst] if r.score),
        renamed_by_aliases=sum(r.renamed for r in scored),
    )


def summarize_all(results: Iterable[PostResult], taggers: Iterable[str] = ()) -> list[TaggerSummary]:
    """One summary per tagger, best average score first (taggers with no scored post last);
    ``taggers`` get one even without a result (a selected tagger that ran on no post)."""
    by_tagger: dict[str, list[PostResult]] = {name: [] for name in taggers}
    for result in results:
        by_tagger.setdefault(result.tagger, []).append(result)
    summaries = [summarize(name, group) for name, group in by_tagger.items()]
    return sorted(
        summaries,
        key=lambda s: (s.avg_score is None, -(s.avg_score or 0.0), s.tagger),
    )


def results_document(
    results: Sequence[PostResult],
    summaries: Iterable[TaggerSummary],
    *,
    dataset: str,
    categories: Sequence[str],
    distance_scores: Mapping[tuple[str, int], float] | None = None,
) -> dict[str, Any]:
    """The ``--showdown-json`` document: the run's summaries (from :func:`summarize_all`, computed
    once per run by the caller) and every post's result with its distance-aware score, column-wise
    (:mod:`pytest_tagger_showdown.columns`)."""
    ordered = sorted(results, key=lambda r: (r.tagger, r.post_id))
    distance = distance_scores or {}
    rows = ({**r.to_dict(), "distance_score": distance.get((r.tagger, r.post_id))} for r in ordered)
    return {
        "format": JSON_FORMAT_VERSION,
        "dataset": dataset,
        "categories": list(categories),
        "taggers": {s.tagger: s.to_dict() for s in summaries},
        "posts": to_columns(rows),
    }


def package_version() -> str:
    """The installed version of this package, recorded in every results document."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-tagger-showdown")
    except PackageNotFoundError:
        return "unknown"


def write_results(path: Path, document: Mapping[str, Any]) -> None:
    """Write a results document atomically (a reader never sees half a file): indented, with each
    per-post column on one line (:func:`columns.dumps`)."""
    atomic.write_text(path, dumps(document))


def read_results(path: Path) -> list[PostResult]:
    """The post results of a saved ``--showdown-json`` document (either format)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return [PostResult.from_dict(item) for item in post_rows(document)]
