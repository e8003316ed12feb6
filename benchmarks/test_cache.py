"""A rerun of an unchanged tagger on an unchanged dataset, with warm caches, against the cold run.

The cold run is the throughput benchmark's (a default run: it writes the caches) when that ran in
this session, else it is made here. Both are whole in-process pytest runs: collection, the table,
the dataset metrics and all. Target: the warm run >= 50x faster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import RunPytest, ShowdownRun


def test_a_warm_rerun_costs_almost_nothing(
    benchmark: Any,
    run_pytest: RunPytest,
    standin: Path,
    images_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
    cold_runs: dict[str, ShowdownRun],
) -> None:
    benchmark.group = "cache: stand-in ViT-B/16@448, CPU"
    args = ["--tagger", f"onnx:{standin}", "--showdown-db", str(images_db)]
    cold = cold_runs.get("vit")
    if cold is None:
        cache = tmp_path_factory.mktemp("cache")
        cold = run_pytest(*args, "--showdown-cache-dir", str(cache))
        cold.extra["cache"] = cache
    warm = benchmark.pedantic(
        lambda: run_pytest(*args, "--showdown-cache-dir", str(cold.extra["cache"])),
        rounds=1,
        iterations=1,
        warmup_rounds=0,
    )
    warm.result.assert_outcomes(passed=cold.timer.items)
    warm.result.stdout.fnmatch_lines(["*(cached)*"])
    figures = {
        "images": cold.timer.items,
        "cold_wall_s": round(cold.wall_s, 3),
        "warm_wall_s": round(warm.wall_s, 3),
        "warm_items_s": round(warm.timer.loop_s, 4),
        "speedup": round(cold.wall_s / warm.wall_s, 1),
        "items_speedup": round(cold.timer.loop_s / warm.timer.loop_s, 1),
    }
    benchmark.extra_info.update(figures)
    print(f"\ncache: {figures}")
