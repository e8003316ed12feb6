"""A saved pytest-benchmark run stays small per (tagger, post) and readable by pytest-benchmark itself
and by the showdown's history and compare (issue 13)."""

from __future__ import annotations

import json

import pytest

from pytest_tagger_showdown.columns import post_rows
from pytest_tagger_showdown.history import DOCUMENT_KEY, find_run, history_rows
from tests.helpers.runs import ShowdownRun

COMMON = ("--tagger", "demo-large,control", "--showdown-limit", "16", "--showdown-no-cache")


def entry_bytes(bench: dict[str, object]) -> int:
    """A benchmark's bytes as pytest-benchmark writes it: indent 4, inside ``benchmarks`` (8 spaces)."""
    lines = json.dumps(bench, indent=4, ensure_ascii=True).splitlines()
    return sum(8 + len(line) + 1 for line in lines) + 1


def test_a_saved_run_is_compact_and_records_every_item(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    # pytest-benchmark saves nothing under xdist: the saved run is always made without -n.
    first, document = run_showdown(*COMMON, "--benchmark-save", "base", distribute=False)
    assert first.ret == 0
    (path,) = (pytester.path / ".benchmarks").glob("*/0001_base.json")
    text = path.read_text()
    assert "UNSERIALIZABLE" not in text
    saved = json.loads(text)
    benchmarks = saved["benchmarks"]
    assert len(benchmarks) == 32  # every item's benchmark is recorded
    scores = {(row["tagger"], row["post_id"]): row["score"] for row in post_rows(document)}
    for bench in benchmarks:
        tagger, post = bench["params"]["tagger"], bench["params"]["post"]
        assert bench["param"].startswith(f"{tagger}-post{post}-")
        assert bench["extra_info"] == {"score": scores[tagger, post]}
        assert bench["stats"]["rounds"] == 1
        assert bench["stats"]["mean"] > 0
        assert "options" not in bench  # said once, in the document
        assert "q1" not in bench["stats"]  # the one time
    # Per item, its benchmark and its share of the packed per-post results: under 1 kB (before issue
    # 13: 3.8 kB, the post's repr in params and every score field in extra_info and in the results;
    # 930 bytes before the redundant quartiles and the repeated options left).
    # Packing pays more with more posts: about 35 bytes a result at 2,000 posts, 70 here.
    packed = len(json.dumps(saved[DOCUMENT_KEY]["posts"]))
    assert sum(map(entry_bytes, benchmarks)) / len(benchmarks) < 780
    assert packed / len(benchmarks) < 80
    assert post_rows(saved[DOCUMENT_KEY]) == post_rows(document)
    assert saved[DOCUMENT_KEY]["benchmark_options"]["timer"] == "perf_counter"

    # The showdown's readers and pytest-benchmark's own comparison read it back.
    run = find_run("latest", pytester.path / ".benchmarks")
    assert [row["images"] for row in history_rows([run])] == [16, 16]
    again, _ = run_showdown(
        *COMMON, "--benchmark-compare", "0001", "--benchmark-compare-fail", "mean:100000%"
    )
    assert again.ret == 0
    if run_showdown.workers == 0:  # pytest-benchmark compares only where it benchmarks: without workers
        # The terminal table has one row per tagger (its statistics over the saved run's items).
        again.stdout.fnmatch_lines(["demo-large (0001_base) *"])
        verbose, _ = run_showdown(*COMMON, "--benchmark-compare", "0001", "--benchmark-verbose")
        assert verbose.ret == 0
        verbose.stdout.fnmatch_lines(["test_showdown?demo-large-post*(0001_base)*"])
