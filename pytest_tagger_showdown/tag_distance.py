"""The tag-distance-aware score, the study's open question: a wrong tag close to a true tag costs less.

Closeness of two tags is their cosine similarity over posts, ``|A and B| / sqrt(|A| |B|)`` where
``A`` and ``B`` are the posts carrying each tag: 1 for tags that always appear together, 0 for tags
never seen on one post. A run takes it from Danbooru's related tags (:class:`RelatedTags`, the
``/related_tag.json`` cosine that ``fetch --with-tag-relations`` stores) when the dataset has them,
and from the dataset's own human tags (:class:`Cooccurrence`) otherwise; :data:`SOURCES` names both.

A wrong tag's cost is ``1 - closeness`` to the nearest true tag of the post, and

    distance score = (correct - sum of the wrong tags' costs - wrong rating) / len(ground truth)

A wrong rating always costs 1. With every closeness 0 this is exactly the study's score; it can only
be higher. See ``docs/metrics.md`` for a worked example.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from .results import PostResult
from .tags import normalize_tag

#: Where closeness comes from (a :class:`TagSimilarity`'s ``source``), as the terminal and report say it.
SOURCES: Final = {
    "related_tags": "closeness from Danbooru's related tags (cosine, fetched with --with-tag-relations)",
    "cooccurrence": "closeness from co-occurrence in the dataset's tags (no related tags fetched)",
}


class TagSimilarity(Protocol):
    """Anything that says how close each of some tags is to its nearest tag in a set."""

    @property
    def source(self) -> str:
        """Where the closeness comes from: a key of :data:`SOURCES`."""
        ...

    def closeness(self, tags: Sequence[str], truth: Collection[str]) -> npt.NDArray[np.float64]:
        """For each of ``tags``, its highest similarity (0..1) to any tag of ``truth``."""
        ...


@lru_cache(maxsize=256)
def _pairs(size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    first, second = np.triu_indices(size, k=1)
    return first, second


class Cooccurrence:
    """Tag similarity from how often tags share a post in a set of posts (e.g. the dataset)."""

    source = "cooccurrence"

    def __init__(self, tag_sets: Iterable[Collection[str]]) -> None:
        ids: dict[str, int] = {}
        per_post: list[npt.NDArray[np.int64]] = []
        for tags in tag_sets:
            unique = {normalize_tag(t) for t in tags}
            per_post.append(np.sort(np.asarray([ids.setdefault(t, len(ids)) for t in unique], np.int64)))
        self._ids = ids
        self._size = max(len(ids), 1)
        self._posts_with = np.zeros(self._size, dtype=np.int64)
        keys: list[npt.NDArray[np.int64]] = []
        for tag_ids in per_post:
            self._posts_with[tag_ids] += 1
            first, second = _pairs(tag_ids.size)
            keys.append(tag_ids[first] * self._size + tag_ids[second])
        flat = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        self._pair_keys, self._pair_counts = np.unique(flat, return_counts=True)

    def posts_with(self, tag: str) -> int:
        """How many posts carry ``tag``."""
        at = self._ids.get(normalize_tag(tag))
        return 0 if at is None else int(self._posts_with[at])

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two tags (1 for a tag with itself when it occurs at all)."""
        return float(self.closeness([a], [b])[0])

    def closeness(self, tags: Sequence[str], truth: Collection[str]) -> npt.NDArray[np.float64]:
        result = np.zeros(len(tags), dtype=np.float64)
        known_truth = np.asarray(
            [self._ids[t] for t in map(normalize_tag, truth) if t in self._ids], dtype=np.int64
        )
        looked_up = [self._ids.get(normalize_tag(tag), -1) for tag in tags]
        positions = np.flatnonzero(np.asarray(looked_up, dtype=np.int64) >= 0)
        if not known_truth.size or not positions.size:
            return result
        # Every (tag, true tag) pair at once: a row per tag, a column per true tag.
        tag_ids = np.asarray(looked_up, dtype=np.int64)[positions][:, np.newaxis]
        low, high = np.minimum(tag_ids, known_truth), np.maximum(tag_ids, known_truth)
        keys = low * self._size + high
        shared = np.zeros(keys.shape, dtype=np.int64)
        if self._pair_keys.size:
            found = np.minimum(np.searchsorted(self._pair_keys, keys), self._pair_keys.size - 1)
            hit = self._pair_keys[found] == keys
            shared[hit] = self._pair_counts[found[hit]]
        shared = np.where(tag_ids == known_truth, self._posts_with[tag_ids], shared)
        cosine = shared / np.sqrt(self._posts_with[tag_ids] * self._posts_with[known_truth])
        result[positions] = cosine.max(axis=1)
        return result


class RelatedTags:
    """Tag similarity from Danbooru's ``/related_tag.json`` answers (their ``cosine_similarity``),
    as :meth:`Dataset.related_tags <pytest_tagger_showdown.dataset.store.Dataset.related_tags>` gives
    them: queried tag -> {related tag: cosine}.

    A pair missing from every answer counts as unrelated (0); answers are read both ways, the higher
    value winning; values are clipped to 0..1 (Danbooru estimates them from a sample of posts).
    """

    source = "related_tags"

    def __init__(self, similarities: Mapping[str, Mapping[str, float]]) -> None:
        self._similarity: dict[tuple[str, str], float] = {}
        for query, related in similarities.items():
            for other, value in related.items():
                first, second = sorted((normalize_tag(query), normalize_tag(other)))
                known = self._similarity.get((first, second), 0.0)
                self._similarity[first, second] = max(min(max(float(value), 0.0), 1.0), known)

    def similarity(self, a: str, b: str) -> float:
        first, second = sorted((normalize_tag(a), normalize_tag(b)))
        return 1.0 if first == second else self._similarity.get((first, second), 0.0)

    def closeness(self, tags: Sequence[str], truth: Collection[str]) -> npt.NDArray[np.float64]:
        return np.asarray(
            [max((self.similarity(tag, t) for t in truth), default=0.0) for tag in tags], dtype=np.float64
        )


def distance_aware_score(
    result: PostResult, similarity: TagSimilarity, post_tags: Collection[str] | None = None
) -> float | None:
    """The distance-aware score of one result (None for an errored post).

    ``post_tags`` are all the post's tags: a predicted tag the post has in an unscored category is
    neither right nor wrong, as in the study's score. Without them, every predicted tag outside the
    ground truth is wrong.
    """
    score = result.score
    if score is None:
        return None
    truth = {t for t in result.truth if not t.startswith("rating:")}
    known = truth if post_tags is None else truth | {normalize_tag(t) for t in post_tags}
    wrong = sorted({normalize_tag(t) for t in result.predicted} - known)
    cost = float((1.0 - similarity.closeness(wrong, truth)).sum()) if wrong else 0.0
    return (score.correct - cost - score.incorrect_ratings) / score.truth_size
