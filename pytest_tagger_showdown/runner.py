"""Running one tagger on one post: load the image, prepare, infer, score, time; no pytest involved."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from .dataset.post import Post
from .dataset.store import Dataset
from .errors import ImageError, ShowdownError, TaggerLoadError
from .prediction import Prediction
from .results import PostResult
from .scoring import predicted_tags, renamed_tags, score_prediction
from .taggers.backends import load_tagger
from .taggers.base import LoadOptions, Tagger
from .taggers.registry import TaggerRegistry
from .taggers.spec import TaggerSpec
from .tags import TagCategory, rating_tag

#: Calls the inference it is given and returns its predictions; pytest-benchmark's pedantic runner
#: fits here, so the inference is what a saved benchmark records.
InferenceMeter = Callable[[Callable[[], list[Prediction]]], list[Prediction]]

#: ``--showdown-threshold`` values: (tagger name or None for every tagger, overrides).
ThresholdOverride = tuple[str | None, Mapping[str, str]]


def _call(infer: Callable[[], list[Prediction]]) -> list[Prediction]:
    return infer()


class TaggerPool:
    """Resolves names through the registry and loads each tagger once per process.

    A load failure is remembered, so every post of that tagger fails with the same clear reason
    instead of retrying a slow or broken load.
    """

    def __init__(
        self,
        registry: TaggerRegistry,
        options: LoadOptions | None = None,
        thresholds: Sequence[ThresholdOverride] = (),
    ) -> None:
        self.registry = registry
        self.options = options or LoadOptions()
        self.thresholds = tuple(thresholds)
        self._loaded: dict[str, Tagger | TaggerLoadError] = {}

    def spec(self, name: str) -> TaggerSpec:
        """The registry's spec with ``--showdown-threshold`` overrides applied (global ones first)."""
        spec = self.registry.resolve(name)
        thresholds = spec.thresholds
        for target, overrides in sorted(self.thresholds, key=lambda item: item[0] is not None):
            if target is None or target == name:
                thresholds = thresholds.with_overrides(overrides)
        return dataclasses.replace(spec, thresholds=thresholds)

    def get(self, name: str) -> Tagger:
        if name not in self._loaded:
            try:
                self._loaded[name] = load_tagger(self.spec(name), self.options)
            except TaggerLoadError as exc:
                self._loaded[name] = exc
        loaded = self._loaded[name]
        if isinstance(loaded, TaggerLoadError):
            raise loaded
        return loaded


def truth_tags(post: Post, categories: Iterable[TagCategory]) -> tuple[str, ...]:
    """The ground truth a score is computed against: scored tags plus the rating pseudo-tag."""
    return (*sorted(post.tags_in(categories)), rating_tag(post.rating))


def run_post(
    tagger: Tagger,
    post: Post,
    dataset: Dataset,
    categories: Iterable[TagCategory] = tuple(TagCategory),
    *,
    measure: InferenceMeter = _call,
    aliases: Mapping[str, str] | None = None,
) -> PostResult:
    """Tag one post and score it. Errors of this post (bad image, failed inference) come back as a
    result with ``error`` set, so the caller can record them and fail just this post."""
    scored = frozenset(categories)
    base = PostResult(
        tagger=tagger.spec.name,
        post_id=post.id,
        rating=post.rating,
        score=None,
        truth=truth_tags(post, scored),
    )
    started = time.perf_counter()
    try:
        prepared = tagger.prepare(post, dataset.image(post.id))
    except ImageError as exc:
        return dataclasses.replace(base, error=f"{post.label}: {exc}")
    preprocess_s = time.perf_counter() - started
    inference_s = 0.0

    def infer() -> list[Prediction]:
        nonlocal inference_s
        began = time.perf_counter()
        predictions = tagger.infer([prepared])
        inference_s = time.perf_counter() - began
        return predictions

    try:
        (prediction,) = measure(infer)
    except ShowdownError as exc:
        return dataclasses.replace(base, preprocess_s=preprocess_s, error=f"{post.label}: {exc}")
    return dataclasses.replace(
        base,
        score=score_prediction(post, prediction, scored, aliases),
        predicted=tuple(sorted(predicted_tags(prediction, aliases))),
        renamed=renamed_tags(prediction, aliases),
        predicted_rating=prediction.rating,
        preprocess_s=preprocess_s,
        inference_s=inference_s,
        probabilities=prediction.probabilities,
    )
