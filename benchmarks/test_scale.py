"""A validation set of SmilingWolf's size on one machine: 30,000 posts x (demo-large + control).

Both runs are real ``pytest`` commands in a subprocess (peak RSS is a process's own), in an empty
folder, as a user types them: the showdown with ``--benchmark-save`` and its caches, and as the raw
baseline the same number of plain parametrized ``pass`` items in the same pytest. Reported (in the
saved benchmark's ``extra_info``, and printed with ``-s``): wall time per item of each and their
ratio, peak RSS, cache bytes per post, saved-run bytes per item and the lines the terminal printed.
Targets (issue 13): exit 0, RSS <= 1 GB, saved run <= 1 kB per item, terminal <= 150 lines.

``SHOWDOWN_BENCH_SCALE_POSTS=N`` changes the post count (the dataset takes about 1 min per 30,000).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scale_dataset import write_scale_dataset

POSTS = int(os.environ.get("SHOWDOWN_BENCH_SCALE_POSTS", "30000"))
TAGGERS = ("demo-large", "control")
LEAN = ("-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:hypothesispytest", "-q")


def run_measured(command: list[str], cwd: Path) -> dict[str, Any]:
    """Run ``command``; its exit code, wall time, peak RSS (bytes) and output lines."""
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    text = output.decode("utf-8", "replace")
    return {
        "exit": process.returncode,
        "wall_s": time.perf_counter() - began,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports kilobytes
        "lines": len(text.splitlines()),
        "tail": text[-3000:],
    }


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_a_30000_post_run(benchmark: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    benchmark.group = "scale"
    root = tmp_path_factory.mktemp("scale")
    began = time.perf_counter()
    db = write_scale_dataset(root / "posts.db", POSTS)
    dataset_s = time.perf_counter() - began
    items = POSTS * len(TAGGERS)

    plain = root / "plain"
    plain.mkdir()
    (plain / "test_plain.py").write_text(
        f"import pytest\n\n@pytest.mark.parametrize('i', range({items}))\ndef test_plain(i):\n    pass\n"
    )
    baseline = run_measured([sys.executable, "-m", "pytest", *LEAN], plain)

    work = root / "run"
    work.mkdir()
    command = [
        sys.executable, "-m", "pytest", *LEAN, "--tagger", ",".join(TAGGERS), "--showdown-db", str(db),
        "--showdown-cache-dir", "cache", "--benchmark-save", "scale", "--benchmark-storage", "file://saved",
    ]  # fmt: skip

    def showdown() -> dict[str, Any]:
        return run_measured(command, work)

    measured = benchmark.pedantic(showdown, rounds=1, iterations=1, warmup_rounds=0)
    assert measured["exit"] == 0, measured["tail"]
    (saved,) = (work / "saved").glob("*/0001_scale.json")
    figures = {
        "posts": POSTS,
        "items": items,
        "dataset_build_s": round(dataset_s, 1),
        "wall_s": round(measured["wall_s"], 1),
        "wall_ms_per_item": round(1000 * measured["wall_s"] / items, 3),
        "plain_wall_s": round(baseline["wall_s"], 1),
        "plain_ms_per_item": round(1000 * baseline["wall_s"] / items, 3),
        "ratio_to_plain": round(measured["wall_s"] / baseline["wall_s"], 2),
        "peak_rss_mb": round(measured["peak_rss_bytes"] / 2**20),
        "plain_peak_rss_mb": round(baseline["peak_rss_bytes"] / 2**20),
        "cache_bytes_per_post": round(folder_bytes(work / "cache") / POSTS),
        "saved_run_bytes_per_item": round(saved.stat().st_size / items),
        "output_lines": measured["lines"],
    }
    benchmark.extra_info.update(figures)
    print(figures)
