"""Everything a finished run yields beyond the per-post scores, computed once on the controller.

Summaries, each tagger's probability store and dataset metrics, the distance-aware scores, and the
results document that ``--showdown-json`` writes and a saved pytest-benchmark run carries. The gates,
the JSON, the CSV, the HTML report and the terminal all read this one analysis; writing them is
:mod:`pytest_tagger_showdown.outputs`' job, so this module writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import fmean
from typing import Any

from .columns import pack
from .dataset.post import Post
from .metrics import TaggerMetrics, evaluate_store
from .probabilities import ProbabilityCollector, ProbabilityStore
from .results import PostResult, TaggerSummary, results_document, summarize_all
from .tag_distance import Cooccurrence, TagSimilarity, distance_aware_score


@dataclass(frozen=True)
class RunAnalysis:
    """A finished run, analysed; ``document`` is its JSON form."""

    results: tuple[PostResult, ...]
    summaries: tuple[TaggerSummary, ...]
    stores: tuple[ProbabilityStore, ...]
    metrics: Mapping[str, TaggerMetrics]
    distance_scores: Mapping[tuple[str, int], float]
    document: Mapping[str, Any]
    #: Each tagger's average distance-aware score.
    distance_averages: Mapping[str, float]
    #: Where the distance score's closeness came from: a key of :data:`tag_distance.SOURCES`.
    distance_source: str

    def released(self) -> RunAnalysis:
        """What is left once the run's files and terminal tables are rendered: the summaries,
        metrics, average distance-aware scores and document (its per-post columns packed, as a saved
        run holds them), without the per-post results, probability stores and distance-aware scores,
        which at 30,000 posts x 2 taggers hold about 80 MB (issue 13: peak RSS <= 1 GB;
        pytest-benchmark builds its saved run in memory after this)."""
        return replace(
            self,
            results=(),
            stores=(),
            distance_scores={},
            document={**self.document, "posts": pack(self.document["posts"])},
        )

    def distance_score(self, tagger: str) -> float | None:
        """A tagger's average distance-aware score."""
        return self.distance_averages.get(tagger)


def analyse_run(
    results: Sequence[PostResult],
    collector: ProbabilityCollector,
    posts: Sequence[Post],
    *,
    dataset: str,
    categories: Collection[str],
    similarity: TagSimilarity | None = None,
    aliases: Mapping[str, str] | None = None,
    providers: Mapping[str, str] | None = None,
    selected: Sequence[str] = (),
    facts: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RunAnalysis:
    """Analyse a run's results; tag closeness comes from ``posts`` (every post of the run, a shard's
    or not) unless given (``similarity``: the dataset's related tags, when fetched).
    ``aliases`` (old -> current tag name) are the ones scoring applied: the metrics apply them too.
    ``selected`` taggers get a summary even with no result; ``facts`` (per tagger: thresholds, model
    fingerprint, provider...) go into each tagger's entry and ``extra`` (shard, fingerprints...) into
    the document, so two runs can be checked for being alike (:mod:`pytest_tagger_showdown.compare`)
    and shards for being one run (:mod:`pytest_tagger_showdown.merge`). ``providers``: the
    onnxruntime execution provider each ONNX tagger runs on, chosen at configure time, for taggers
    whose facts name none (a run served from the cache never loads the model)."""
    tag_categories = {tag: category.value for post in posts for tag, category in post.tags.items()}
    taggers = sorted({r.tagger for r in results})
    stores = tuple(
        collector.build(
            tagger, results, scored_categories=categories, tag_categories=tag_categories, aliases=aliases
        )
        for tagger in taggers
    )
    closeness = similarity or Cooccurrence(post.tags.keys() for post in posts)
    post_tags = {post.id: post.tags.keys() for post in posts}
    distance: dict[tuple[str, int], float] = {}
    for result in results:
        value = distance_aware_score(result, closeness, post_tags.get(result.post_id))
        if value is not None:
            distance[result.tagger, result.post_id] = value
    return assemble_run(
        results,
        stores,
        distance,
        dataset=dataset,
        categories=categories,
        aliases={"applied": bool(aliases), "count": len(aliases or {})},
        distance_source=closeness.source,
        providers=providers,
        selected=selected,
        facts=facts,
        extra=extra,
    )


def assemble_run(
    results: Sequence[PostResult],
    stores: Sequence[ProbabilityStore],
    distance: Mapping[tuple[str, int], float],
    *,
    dataset: str,
    categories: Collection[str],
    aliases: Mapping[str, Any],
    distance_source: str,
    providers: Mapping[str, str] | None = None,
    selected: Sequence[str] = (),
    facts: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RunAnalysis:
    """The analysis of results whose stores and distance-aware scores are known: the summaries,
    dataset metrics and document (the other arguments as :func:`analyse_run`'s). A run and the
    merge of its shards both end here, so they agree."""
    metrics = {store.tagger: evaluate_store(store) for store in stores if store.post_ids.size}
    summaries = tuple(summarize_all(results, selected))
    document = results_document(
        results, summaries, dataset=dataset, categories=sorted(categories), distance_scores=distance
    )
    document["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document["distance_source"] = distance_source
    document.update(extra or {})
    for name, entry in document["taggers"].items():
        entry.update((facts or {}).get(name, {}))
        if entry.get("provider") is None and name in (providers or {}):
            entry["provider"] = (providers or {})[name]
    renamed: dict[str, int] = {}
    for result in results:
        renamed[result.tagger] = renamed.get(result.tagger, 0) + result.renamed
    document["aliases"] = {**aliases, "renamed_predictions": renamed}
    averages = _averages_by_tagger(distance)
    document["metrics"] = {
        name: {**m.to_dict(), "distance_score": averages.get(name)} for name, m in metrics.items()
    }
    return RunAnalysis(
        results=tuple(results),
        summaries=summaries,
        stores=tuple(stores),
        metrics=metrics,
        distance_scores=distance,
        document=document,
        distance_averages=averages,
        distance_source=distance_source,
    )


def _averages_by_tagger(values: Mapping[tuple[str, int], float]) -> dict[str, float]:
    by_tagger: dict[str, list[float]] = {}
    for (tagger, _), value in values.items():
        by_tagger.setdefault(tagger, []).append(value)
    return {tagger: fmean(group) for tagger, group in by_tagger.items()}
