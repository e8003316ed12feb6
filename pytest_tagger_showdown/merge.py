"""``tagger-showdown merge``: the runs of ``--showdown-shard 1/N`` ... ``N/N`` joined into one run.

Each shard is a ``--showdown-json`` file with its probability store (``NAME.probabilities.npz``,
written beside it), because the dataset metrics need every post's probabilities. The merged run goes
through :func:`analysis.assemble_run`, the same code a single-machine run ends in, so its table,
metrics, report and gates are that run's: per-post results are copied bit for bit (each shard scored
its posts with the whole run's tag closeness), summaries and metrics are recomputed over all posts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from .analysis import RunAnalysis, assemble_run
from .columns import post_rows
from .errors import ShowdownError
from .history import SavedRun
from .probabilities import load_stores, merge_stores, probabilities_path
from .results import PostResult
from .tag_distance import Cooccurrence

#: Document fields every shard of one run shares; a difference means they are not one run.
SHARED: Final = ("dataset", "categories", "thresholds", "dataset_fingerprint")
#: What the merged run keeps of the first shard's document and of its taggers' entries: how the run
#: ran (the facts :mod:`pytest_tagger_showdown.compare` tells runs apart by), not what it scored.
RUN_FACTS: Final = ("dataset_fingerprint", "package_version")
TAGGER_FACTS: Final = (
    "thresholds",
    "backend",
    "source",
    "revision",
    "model_fingerprint",
    "provider",
    "categories",
)


def _shard(run: SavedRun) -> tuple[int, int]:
    label = run.document.get("shard")
    if not isinstance(label, str) or "/" not in label:
        raise ShowdownError(f"{run.path} is not a shard's run (run it with --showdown-shard K/N)")
    index, count = label.split("/")
    return int(index), int(count)


def _check_whole(run: SavedRun, first: SavedRun, label: str) -> None:
    """Refuse a shard that ran other taggers than ``first`` or whose tagger scored fewer posts than
    the shard planned (``shard_posts``): a shard narrowed by -k, -m or --deselect would make the
    merged run judge a part of the dataset as if it were all of it."""
    ours, theirs = set(run.document.get("taggers", {})), set(first.document.get("taggers", {}))
    if ours != theirs:
        lacks = f"has no {', '.join(sorted(theirs - ours))}" if theirs - ours else ""
        extra = f"has {', '.join(sorted(ours - theirs))}" if ours - theirs else ""
        raise ShowdownError(
            f"{run.path} (shard {label}) {' and '.join(filter(None, (lacks, extra)))}, unlike "
            f"{first.path}: the shards ran different taggers, not one run"
        )
    planned = run.document.get("shard_posts")
    if not isinstance(planned, int):
        raise ShowdownError(
            f"{run.path} (shard {label}) does not record how many posts its shard planned "
            "(no 'shard_posts'): run the shard again with this version"
        )
    for tagger, entry in sorted(run.document.get("taggers", {}).items()):
        ran = int(entry.get("images") or 0) + int(entry.get("errors") or 0)
        if ran < planned:
            raise ShowdownError(
                f"{run.path} (shard {label}): {tagger} ran {ran} of the shard's {planned} posts "
                f"({planned - ran} missing: deselected by -k, -m, --deselect or a skip); "
                "merge needs whole shards: run the shard again without narrowing it"
            )


def check_shards(runs: Sequence[SavedRun]) -> None:
    """Refuse runs that are not the shards of one run, each once, all there, each whole
    (:func:`_check_whole`); raises ShowdownError naming the difference."""
    if not runs:
        raise ShowdownError("nothing to merge: name the shards' --showdown-json files")
    first = runs[0]
    shards = [_shard(run) for run in runs]
    counts = {count for _, count in shards}
    if len(counts) > 1:
        raise ShowdownError(f"the runs are shards of different splits: {sorted(counts)} shards")
    seen: dict[int, Path] = {}
    for run, (index, count) in zip(runs, shards, strict=True):
        if index in seen:
            raise ShowdownError(f"{run.path} and {seen[index]} are both shard {index}/{count}: they overlap")
        seen[index] = run.path
        _check_whole(run, first, f"{index}/{count}")
        for name in SHARED:
            if run.document.get(name) != first.document.get(name):
                raise ShowdownError(
                    f"{run.path} and {first.path} differ in {name} "
                    f"({run.document.get(name)!r} vs {first.document.get(name)!r}): not one run"
                )
    count = counts.pop()
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise ShowdownError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing")


def merge_runs(runs: Sequence[SavedRun]) -> RunAnalysis:
    """The one run the shards ``runs`` make (:func:`check_shards` first); raises ShowdownError."""
    check_shards(runs)
    rows = [row for run in runs for row in post_rows(run.document)]
    keys = [(row["tagger"], row["post_id"]) for row in rows]
    if len(set(keys)) != len(keys):
        raise ShowdownError("the shards overlap: a post was scored in two of them")
    results = [PostResult.from_dict(row) for row in rows]
    distance = {
        key: row["distance_score"]
        for key, row in zip(keys, rows, strict=True)
        if row["distance_score"] is not None
    }
    by_tagger: dict[str, list[Any]] = {}
    for run in runs:
        path = probabilities_path(run.path)
        if not path.is_file():
            raise ShowdownError(f"{run.path} has no probability store beside it ({path.name})")
        for store in load_stores(path):
            by_tagger.setdefault(store.tagger, []).append(store)
    first: Mapping[str, Any] = runs[0].document
    aliases = first.get("aliases", {})
    return assemble_run(
        results,
        [merge_stores(stores) for _, stores in sorted(by_tagger.items())],
        distance,
        dataset=str(first.get("dataset")),
        categories=list(first.get("categories", ())),
        aliases={"applied": aliases.get("applied", False), "count": aliases.get("count", 0)},
        distance_source=str(first.get("distance_source", Cooccurrence.source)),
        selected=sorted(first.get("taggers", {})),
        facts={
            name: {fact: entry[fact] for fact in TAGGER_FACTS if fact in entry}
            for name, entry in first.get("taggers", {}).items()
        },
        extra={
            **{name: first[name] for name in RUN_FACTS if name in first},
            "interrupted": False,  # read_run refuses an interrupted shard
            "shard": None,
            "shard_posts": None,
            "thresholds": first.get("thresholds"),
            "merged_from": [str(r.path) for r in runs],
        },
    )
