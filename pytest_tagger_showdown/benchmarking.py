"""How the showdown meets pytest-benchmark: its items are benchmarks, and its table is per tagger.

Each showdown item records one image's inference through pytest-benchmark (one round), so saved runs
and ``--benchmark-compare`` keep every image. One round per image makes a per-item row meaningless,
so the terminal table gets one row per tagger instead, its statistics taken over the images (rounds
= images); ``--benchmark-verbose`` keeps pytest-benchmark's own per-item table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import pytest

#: The ``benchmark.group`` of a showdown item: this prefix and the tagger's name.
GROUP_PREFIX: Final = "showdown: "
#: The one group the collapsed rows are shown under.
TAGGER_GROUP: Final = "tagger showdown: one row per tagger, rounds = images"

#: The statistics of a one-round benchmark that a saved run leaves out (each equals its one time)
#: and pytest-benchmark's histograms still read.
ONE_ROUND_QUARTILES: Final = ("q1", "q3", "ld15iqr", "hd15iqr")

#: pytest-benchmark's flat benchmark dicts, grouped: ``(group name, benchmarks)``.
Groups = list[tuple[str | None, list[dict[str, Any]]]]


def is_active(config: pytest.Config) -> bool:
    """Whether items record through pytest-benchmark (installed, not ``-p no:benchmark``, not
    ``--benchmark-skip``, which would skip every item declaring the fixture)."""
    return config.pluginmanager.hasplugin("benchmark") and not config.getoption("benchmark_skip", False)


def declare(config: pytest.Config, items: Iterable[pytest.Item]) -> None:
    """Make items using the ``showdown`` fixture ask for ``benchmark`` up front, as pytest-benchmark
    expects of a benchmark: it decides ``--benchmark-only`` from the fixtures an item declares, and
    the showdown otherwise asks for the fixture only on a cache miss. First in the list, so it is set
    up first and torn down last, after the recorder has said whether it was used."""
    if not is_active(config):
        return
    for item in items:
        names = getattr(item, "fixturenames", None)
        if isinstance(names, list) and "showdown" in names and "benchmark" not in names:
            names.insert(0, "benchmark")


def per_tagger(groups: Groups) -> Groups:
    """The showdown's benchmarks merged into one row per tagger (and per compared saved run): the
    statistics of its images' times, each image one round; other benchmarks are left as they are."""
    from pytest_benchmark.stats import Stats

    kept: Groups = []
    merged: dict[tuple[str, Any, Any], tuple[dict[str, Any], Any]] = {}
    for name, benchmarks in groups:
        others = []
        for bench in benchmarks:
            group = str(bench.get("group") or "")
            if not group.startswith(GROUP_PREFIX):
                others.append(bench)
                continue
            tagger = group.removeprefix(GROUP_PREFIX)
            key = (tagger, bench.get("source"), bench.get("path"))
            # pytest-benchmark's own statistics, so the row's columns mean what its others do (it
            # ships no type hints for them).
            stats = merged.setdefault(key, (bench, Stats()))[1]  # type: ignore[no-untyped-call]
            stats.update(bench["mean"])
        if others:
            kept.append((name, others))
    rows = [_row(tagger, template, stats) for (tagger, _, _), (template, stats) in merged.items()]
    if rows:
        kept.append((TAGGER_GROUP, rows))
    return sorted(kept, key=lambda pair: pair[0] or "")


def _row(tagger: str, template: dict[str, Any], stats: Any) -> dict[str, Any]:
    return {
        **template,
        **stats.as_dict(),
        "name": tagger,
        "fullname": f"{GROUP_PREFIX}{tagger}",
        "param": tagger,
        "params": {"tagger": tagger},
        "iterations": 1,
        "extra_info": {},
    }


def collapsed(config: pytest.Config, groups: Sequence[tuple[str | None, list[dict[str, Any]]]]) -> Groups:
    """pytest-benchmark's groups as the terminal shows them: per tagger, unless ``--benchmark-verbose``."""
    if config.getoption("benchmark_verbose", False):
        return [(name, [_with_quartiles(bench) for bench in benchmarks]) for name, benchmarks in groups]
    return per_tagger(list(groups))


def _with_quartiles(bench: dict[str, Any]) -> dict[str, Any]:
    """A one-round benchmark of a saved run with the quartiles it was saved without."""
    if bench.get("rounds") != 1 or "mean" not in bench:
        return bench
    return {name: bench["mean"] for name in ONE_ROUND_QUARTILES} | bench
