"""--showdown-compare end to end: a saved run, the same tagger passing, a weakened one failing the run."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3

import pytest

from pytest_tagger_showdown.columns import post_rows
from tests.helpers.brightness import install_brightness_tagger
from tests.helpers.datasets import four_ratings
from tests.helpers.runs import ShowdownRun


def test_compare_gate_passes_on_the_same_tagger_and_fails_on_a_drop(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    common = ["--tagger", "bright", "--showdown-db", str(db)]
    # The saved run: pytest-benchmark saves nothing under xdist, so it is always made without -n.
    first, base = run_showdown(*common, "--benchmark-autosave", json_file="base.json", distribute=False)
    assert first.ret == 0
    # General posts: background and rating right, >_< missed (2/3); other ratings: the rating is wrong (0).
    assert [p["score"] for p in post_rows(base)] == pytest.approx([2 / 3, 0, 0, 0] * 2)
    (saved,) = (pytester.path / ".benchmarks").glob("*/0001_*.json")
    assert post_rows(json.loads(saved.read_text())["tagger_showdown"]) == post_rows(base)
    assert (pytester.path / "base.probabilities.npz").is_file()
    same, _ = run_showdown(*common, "--showdown-compare", "latest")
    assert same.ret == 0
    same.stdout.fnmatch_lines(
        [
            "compared with saved run 0001_* (paired bootstrap, 95% CI; Holm over 1 tagger(s), "
            "family-wise 5%):",
            "bright * 8 * +0.000 * unchanged",
        ]
    )
    # Before: every rerun of an unchanged tagger said "~ (underpowered)" with a "power unknown" note.
    assert "note:" not in same.stdout.str()
    assert "underpowered" not in same.stdout.str()
    same.assert_outcomes(passed=9)  # 8 posts and the gate of bright

    # A cut-off above every probability drops the right background: one correct tag fewer, 1/3 less on
    # every post. (A cut-off of 0 does not add the wrong one: its probability, 3e-4, is below the 0.01
    # floor of the stored rows, which cut-offs are applied to.)
    worse, document = run_showdown(
        *common,
        "--showdown-compare",
        "latest",
        "--showdown-threshold",
        "bright:0.9999",
        json_file="worse.json",
    )
    assert worse.ret == 1
    worse.assert_outcomes(passed=8, failed=1)  # every post ran fine: the comparison fails the run
    worse.stdout.fnmatch_lines(
        [
            "FAIL compare: bright: average score dropped by 0.333 against saved run 0001_* "
            "(0.167 -> -0.167 over 8 paired posts; p 0.0010, Holm-adjusted over 1 tagger(s) 0.0010 <= 0.05; "
            "margin 0.020); lost most: black_background (-4), white_background (-4); "
            "differs: thresholds character=0.85,general=0.35,mcut=False -> "
            "character=0.9999,general=0.9999,mcut=False",
            "FAILED tagger-showdown::gate[[]compare-bright[]] - bright: average score*",
        ]
    )
    metrics = document["metrics"]["bright"]
    assert metrics["source"] == "probabilities"  # the rows travelled (from the workers under xdist)
    assert metrics["overall"]["posts"] == 8
    assert metrics["by_rating"]["g"]["posts"] == 2
    # Only the 8 ratings kept, 2 of them right.
    assert metrics["overall"]["micro"]["precision"] == pytest.approx(2 / 8)


def test_an_unknown_run_is_a_usage_error(pytester: pytest.Pytester, run_showdown: ShowdownRun) -> None:
    db = install_brightness_tagger(pytester)
    result, _ = run_showdown("--tagger", "bright", "--showdown-db", str(db), "--showdown-compare", "0042")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tagger-showdown: --showdown-compare: no saved run '0042'*"])


def test_a_failed_run_saved_by_autosave_never_becomes_latest(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    """Before: the README's setup (--benchmark-autosave with --showdown-compare latest) saved a red
    run as the newest, and rerunning the red build compared with it and passed."""
    db = install_brightness_tagger(pytester)
    common = ["--tagger", "bright", "--showdown-db", str(db), "--benchmark-autosave"]
    first, _ = run_showdown(*common, json_file=None, distribute=False)
    assert first.ret == 0
    worse = [*common, "--showdown-compare", "latest", "--showdown-threshold", "bright:0.9999"]
    red, _ = run_showdown(*worse, json_file=None)
    assert red.ret == 1
    saved = sorted(p.name for p in (pytester.path / ".benchmarks").glob("*/*.json"))
    assert [name[:5] for name in saved] == ["0001_", "0002_"]  # the red run is saved, as asked
    again, _ = run_showdown(*worse, "--showdown-report", "again.html", json_file=None)
    assert again.ret == 1
    assert "which failed their gates" in (pytester.path / "again.html").read_text()
    again.stdout.fnmatch_lines(
        [
            "compared with saved run 0001_* (paired bootstrap*",
            "note: latest is 0001_*: skipped 0002_*, which failed their gates",
            "FAIL compare: bright: average score dropped by 0.333 against saved run 0001_*",
        ]
    )


def test_saved_runs_the_gate_cannot_judge_are_usage_errors(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    """Before: an interrupted run and a run without ``categories`` were compared with (and hid
    drops), and an output named like the compared run's probability store replaced it."""
    db = install_brightness_tagger(pytester)
    common = ["--tagger", "bright", "--showdown-db", str(db)]
    first, base = run_showdown(*common, json_file="base.json", distribute=False)
    assert first.ret == 0
    store = pytester.path / "base.probabilities.npz"
    stored = store.read_bytes()
    for option in ("--showdown-report", "--showdown-json"):
        result, _ = run_showdown(
            *common, "--showdown-compare", "base.json", option, str(store), json_file=None
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                f"*tagger-showdown: {option} {store} is the same file as "
                "--showdown-compare's probability store*"
            ]
        )
        assert store.read_bytes() == stored
    (pytester.path / "ki.json").write_text(json.dumps({**base, "interrupted": True}))
    partial, _ = run_showdown(*common, "--showdown-compare", "ki.json")
    assert partial.ret == pytest.ExitCode.USAGE_ERROR
    partial.stderr.fnmatch_lines(["*tagger-showdown: --showdown-compare: ki.json is an interrupted run*"])
    (pytester.path / "nocat.json").write_text(
        json.dumps({k: v for k, v in base.items() if k != "categories"})
    )
    unknown, _ = run_showdown(*common, "--showdown-compare", "nocat.json")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*--showdown-compare: the saved run does not record which tag categories*"])


def test_posts_retagged_since_the_saved_run_fail_the_compare_gate(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    """Before: the dataset fingerprint ignored tags, and retagged posts were compared as if only the
    tagger had changed (here the retagging makes the same tagger look worse)."""
    db = install_brightness_tagger(pytester)
    first, _ = run_showdown(
        "--tagger", "bright", "--showdown-db", str(db), json_file="base.json", distribute=False
    )
    assert first.ret == 0
    retagged = pytester.path / "retagged.db"
    shutil.copy(db, retagged)
    with contextlib.closing(sqlite3.connect(retagged)) as connection, connection:
        connection.execute("UPDATE post_tags SET tag = 'grey_background' WHERE tag = 'white_background'")
    result, _ = run_showdown(
        "--tagger", "bright", "--showdown-db", str(retagged), "--showdown-compare", "base.json"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "FAIL compare: bright: cannot compare against saved run base: 4 post(s) scored in both runs have "
            "different ground truth (tags or rating changed in the dataset; post(s) 200, 202, 204, 206): "
            "compare runs of one dataset"
        ]
    )


def test_one_paired_post_cannot_be_judged_by_the_compare_gate(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    """Before: one paired post whose score fell was a significant DROP at p 0.0010 (a bootstrap over
    one post has no spread): a claim noise alone makes whenever one post scores lower."""
    db = install_brightness_tagger(pytester)
    common = ["--tagger", "bright", "--showdown-db", str(db)]
    first, _ = run_showdown(*common, json_file="base.json", distribute=False)
    assert first.ret == 0
    for threshold, in_table in (("0.9999", "* -0.333 *cannot judge"), ("0.35", "* +0.000 *cannot judge")):
        result, _ = run_showdown(
            *common,
            "--showdown-compare",
            "base.json",
            "--showdown-threshold",
            f"bright:{threshold}",
            "-k",
            "post200",
        )
        assert result.ret == 1
        result.stdout.fnmatch_lines(
            [
                f"bright * 1 (7 unpaired) {in_table}",
                "FAIL compare: bright: cannot judge against saved run base: 1 post scored in both runs, "
                "at least 2 needed (one post's change has no spread to test it by)",
            ]
        )
        assert "DROP" not in result.stdout.str()
        assert "p 0.0010" not in result.stdout.str()


def test_an_ini_compare_path_is_relative_to_the_ini_file(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``showdown_compare = ../base.json`` in proj3/pytest.ini, run from proj3/sub, read
    sub/../base.json (proj3/base.json, here a planted non-run: a usage error) while the JSON went
    to proj3/out/run2.json, relative to the ini as the README says."""
    db = four_ratings(pytester.path / "data.db")
    first, _ = run_showdown(
        "--tagger",
        "control",
        "--showdown-db",
        str(db),
        "--benchmark-autosave",
        json_file="base.json",
        distribute=False,
    )
    assert first.ret == 0
    project = pytester.path / "proj3"
    (project / "sub").mkdir(parents=True)
    (project / "base.json").write_text("not the run the ini means")
    (project / "pytest.ini").write_text(
        "[pytest]\nshowdown_compare = ../base.json\nshowdown_json = out/run2.json\n"
    )
    monkeypatch.chdir(project / "sub")
    # ``=``: a space-separated path would be taken for a test path, moving the rootdir and ini file.
    result, _ = run_showdown("--tagger=control", f"--showdown-db={db}", json_file=None)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["compared with saved run base *"])
    assert (project / "out" / "run2.json").is_file()
    # A saved run's number or ``latest`` stays a name, looked up in the benchmark storage.
    storage = f"--benchmark-storage={pytester.path / '.benchmarks'}"
    for name in ("1", "latest"):
        named, _ = run_showdown(
            "--tagger=control", f"--showdown-db={db}", storage, "-o", f"showdown_compare={name}"
        )
        assert named.ret == 0, named.stdout.str() + named.stderr.str()
        named.stdout.fnmatch_lines(["compared with saved run 0001_* *"])
