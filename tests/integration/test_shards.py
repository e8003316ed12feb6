"""A run split with --showdown-shard K/N over machines, joined by ``tagger-showdown merge``: the same
run as on one machine (issue 13)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from pytest_tagger_showdown.cli import main
from pytest_tagger_showdown.columns import post_rows
from pytest_tagger_showdown.history import read_run
from tests.helpers.runs import ShowdownRun

COMMON = ("--tagger", "demo-large,control", "--showdown-limit", "20", "--showdown-no-cache")
#: What depends on the clock, not on the posts: left out of the comparison.
TIMES = ("preprocess_s", "inference_s", "avg_runtime_s", "avg_preprocess_s", "avg_inference_s")


def timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def test_three_shards_merged_equal_one_run(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, capsys: pytest.CaptureFixture[str]
) -> None:
    whole_run, whole = run_showdown(*COMMON, json_file="whole.json")
    assert whole_run.ret == 0
    shards = []
    for index in (1, 2, 3):
        result, document = run_showdown(*COMMON, "--showdown-shard", f"{index}/3", json_file=f"s{index}.json")
        assert result.ret == 0
        assert document["shard"] == f"{index}/3"
        shards.append(document)
    ids = [{row["post_id"] for row in post_rows(document)} for document in shards]
    assert sorted(len(i) for i in ids) == [6, 7, 7]  # 20 posts: balanced over the shards
    assert set.union(*ids) == {row["post_id"] for row in post_rows(whole)}

    out = pytester.path / "merged.json"
    capsys.readouterr()  # the runs' own output
    assert main(["merge", *(str(pytester.path / f"s{i}.json") for i in (1, 2, 3)), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    merged = read_run(out).document
    # Bit for bit on every post's score and counts (float equality, not approx).
    assert timeless(post_rows(merged)) == timeless(post_rows(whole))
    assert merged["metrics"] == whole["metrics"]
    assert timeless(merged["taggers"]) == timeless(whole["taggers"])
    assert (pytester.path / "merged.probabilities.npz").is_file()
    # The table the merge prints is the run's, row for row (but the time column).
    table = [line.split("|")[1:6] for line in printed.splitlines() if line.startswith("| demo-large")]
    assert table == [line.split("|")[1:6] for line in whole_run.outlines if line.startswith("| demo-large")]


def test_a_baseline_gates_the_merged_run(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, capsys: pytest.CaptureFixture[str]
) -> None:
    for index in (1, 2):
        result, _ = run_showdown(*COMMON, "--showdown-shard", f"{index}/2", json_file=f"s{index}.json")
        assert result.ret == 0
    shards = [str(pytester.path / f"s{i}.json") for i in (1, 2)]
    assert main(["merge", *shards, "-o", str(pytester.path / "ok.json"), "--baseline", "control=1.0"]) == 0
    assert main(["merge", *shards, "-o", str(pytester.path / "no.json"), "--baseline", "demo-large=0.9"]) == 1
    # Before: of "a=x,b=y" only a counted (exit 0), and a name given twice took its last score (exit 0).
    both = "control=1.0,demo-large=0.9"
    assert main(["merge", *shards, "-o", str(pytester.path / "both.json"), "--baseline", both]) == 1
    capsys.readouterr()
    twice = ["--baseline", "demo-large=0.9", "--baseline", "demo-large=0.2"]
    assert main(["merge", *shards, "-o", str(pytester.path / "twice.json"), *twice]) == 2
    assert capsys.readouterr().err == (
        "tagger-showdown: error: --baseline: demo-large is given two baselines (0.9 and 0.2); give it one\n"
    )
    assert not (pytester.path / "twice.json").exists()
    # Before: merged, then failed to write at the very end (exit 1).
    if Path("/proc/self").is_dir():
        assert main(["merge", *shards, "-o", "/proc/merged.json"]) == 2
        assert capsys.readouterr().err == (
            "tagger-showdown: error: /proc/merged.json: cannot write there "
            "(/proc is not a writable folder (No such file or directory))\n"
        )
    # Before: the merged run replaced a fifo (or a device, as root: /dev/null) with a regular file.
    for flag in ("-o", "--report", "--csv"):
        node = pytester.path / f"node{flag.strip('-')}"
        os.mkfifo(node)
        out = ["-o", str(pytester.path / "m.json")] if flag != "-o" else []
        assert main(["merge", *shards, *out, flag, str(node)]) == 2
        assert capsys.readouterr().err == (
            f"tagger-showdown: error: {node} is a fifo (named pipe), not a regular file "
            "(it would be replaced); name a file\n"
        )
        assert stat.S_ISFIFO(node.lstat().st_mode)
    assert not (pytester.path / "m.json").exists()


def test_merge_refuses_a_shard_narrowed_by_k(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a shard run with -k "not postN" merged without a word (the merged run judged 19 of 20
    posts), and one whose -k left out a whole tagger was refused as "differ in thresholds"."""
    documents = []
    for index in (1, 2):
        result, document = run_showdown(*COMMON, "--showdown-shard", f"{index}/2", json_file=f"s{index}.json")
        assert result.ret == 0
        documents.append(document)
    assert [d["shard_posts"] for d in documents] == [10, 10]
    left_out = post_rows(documents[1])[0]["post_id"]
    narrowed, _ = run_showdown(
        *COMMON, "--showdown-shard", "2/2", "-k", f"not post{left_out}", json_file="s2k.json"
    )
    assert narrowed.ret == 0
    one_tagger, _ = run_showdown(
        *COMMON, "--showdown-shard", "2/2", "-k", "not control", json_file="s2t.json"
    )
    assert one_tagger.ret == 0  # every item of control was deselected: no gate judges it
    capsys.readouterr()
    first = str(pytester.path / "s1.json")
    assert main(["merge", first, str(pytester.path / "s2k.json"), "-o", str(pytester.path / "m.json")]) == 2
    assert capsys.readouterr().err == (
        f"tagger-showdown: error: {pytester.path / 's2k.json'} (shard 2/2): control ran 9 of the shard's "
        "10 posts (1 missing: deselected by -k, -m, --deselect or a skip); merge needs whole shards: "
        "run the shard again without narrowing it\n"
    )
    assert not (pytester.path / "m.json").exists()
    assert main(["merge", first, str(pytester.path / "s2t.json"), "-o", str(pytester.path / "m.json")]) == 2
    assert "(shard 2/2): control ran 0 of the shard's 10 posts (10 missing" in capsys.readouterr().err
    assert main(["merge", first, str(pytester.path / "s2.json"), "-o", str(pytester.path / "m.json")]) == 0


@pytest.mark.parametrize("shard", ["0/3", "4/3", "three"])
def test_a_malformed_shard_is_a_usage_error(run_showdown: ShowdownRun, shard: str) -> None:
    result, _ = run_showdown("--tagger", "control", "--showdown-shard", shard)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tagger-showdown: --showdown-shard*"])
    assert "INTERNALERROR" not in result.stderr.str()


def test_a_shard_runs_only_its_posts(run_showdown: ShowdownRun, tmp_path: Path) -> None:
    result, document = run_showdown(
        "--tagger", "control", "--showdown-limit", "8", "--showdown-shard", "2/4", "-v"
    )
    assert result.ret == 0
    result.assert_outcomes(passed=2)  # 8 posts (2 of each rating) over 4 shards
    # By rating (e, g, q, s), then id: the 2nd and the 6th post, an e and a q.
    assert sorted(row["rating"] for row in post_rows(document)) == ["e", "q"]
