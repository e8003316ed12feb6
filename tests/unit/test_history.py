"""Saved runs in pytest-benchmark's storage and as --showdown-json files; the history and compare commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_tagger_showdown.cli import main
from pytest_tagger_showdown.errors import ShowdownError
from pytest_tagger_showdown.history import (
    find_run,
    format_history,
    history_rows,
    machine_id,
    read_run,
    saved_runs,
    storage_path,
)

MACHINE = "Linux-CPython-3.11-64bit"


def showdown_document(scores: dict[str, list[float]], runtime: float = 0.5) -> dict[str, Any]:
    posts = [
        {"tagger": t, "post_id": i, "rating": "g", "score": s, "predicted": [], "truth": ["rating:g"]}
        for t, values in scores.items()
        for i, s in enumerate(values)
    ]
    taggers = {
        t: {"images": len(v), "avg_score": sum(v) / len(v), "f1": 0.5, "avg_runtime_s": runtime}
        for t, v in scores.items()
    }
    metrics = {t: {"overall": {"f1_at_equal_pr": 0.61, "map": 0.42}, "distance_score": 0.3} for t in scores}
    return {"format": 1, "posts": posts, "taggers": taggers, "metrics": metrics, "categories": ["general"]}


def save(storage: Path, name: str, document: dict[str, Any] | None, machine: str = MACHINE) -> Path:
    """A file as pytest-benchmark saves it, with the showdown's document added by the plugin's hook."""
    path = storage / machine / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "machine_info": {},
        "commit_info": {"id": "0123456789abcdef", "dirty": True},
        "benchmarks": [],
        "datetime": "2026-11-25T10:11:12.123456+00:00",
        "version": "5.1.0",
    }
    if document is not None:
        data["tagger_showdown"] = document
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    root = tmp_path / ".benchmarks"
    save(root, "0001_first", showdown_document({"a": [0.2, 0.4], "b": [0.1, 0.1]}))
    save(root, "0002_plain", None)  # a benchmark run without the showdown
    save(root, "0003_second", showdown_document({"a": [0.3, 0.5]}, runtime=0.25))
    return root


def test_saved_runs_skip_files_without_showdown_results(storage: Path) -> None:
    runs = saved_runs(storage)
    assert [r.name for r in runs] == ["0001_first", "0003_second"]
    assert runs[0].commit == "01234567+"
    assert runs[0].datetime is not None


def test_find_run_by_number_prefix_name_file_and_latest(storage: Path, tmp_path: Path) -> None:
    assert find_run("0003", storage).name == "0003_second"
    assert find_run("3", storage).name == "0003_second"  # the run number as a person says it
    assert find_run("1", storage).name == "0001_first"
    assert find_run("0001_fi", storage).name == "0001_first"
    assert find_run("latest", storage).name == "0003_second"
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(showdown_document({"c": [1.0]})))
    assert list(find_run(str(plain), storage).document["taggers"]) == ["c"]
    with pytest.raises(ShowdownError, match="saved without tagger-showdown results"):
        find_run("0002", storage)
    with pytest.raises(ShowdownError, match=r"no saved run '0009'.*0001_first, 0002_plain, 0003_second"):
        find_run("0009", storage)
    with pytest.raises(ShowdownError, match="no saved run with showdown results"):
        find_run("latest", tmp_path / "empty")


def test_a_run_number_on_two_machines_is_ambiguous_unless_one_is_this_machine(tmp_path: Path) -> None:
    storage = tmp_path / ".benchmarks"
    for machine in ("Other-PyPy-3.10-32bit", "Another-CPython-3.9-64bit"):
        save(storage, "0003_run", showdown_document({"a": [0.0]}), machine=machine)
    with pytest.raises(ShowdownError, match="matches several saved runs"):
        find_run("0003", storage)
    save(storage, "0003_here", showdown_document({"a": [0.0]}), machine=machine_id())
    assert find_run("0003", storage).name == "0003_here"


def test_unreadable_files_say_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ShowdownError, match="cannot read the saved run"):
        read_run(bad)
    bad.write_text("[]")
    with pytest.raises(ShowdownError, match="not a saved run"):
        read_run(bad)
    bad.write_text("{}")
    with pytest.raises(ShowdownError, match="neither a saved benchmark run nor a --showdown-json file"):
        read_run(bad)


def test_storage_path_reads_pytest_benchmark_option() -> None:
    assert storage_path(None) == Path(".benchmarks")
    assert storage_path("file://./somewhere") == Path("somewhere")
    with pytest.raises(ShowdownError, match="file storage"):
        storage_path("elasticsearch+https://host/index")


def test_history_lists_runs_by_tagger(storage: Path) -> None:
    rows = history_rows(saved_runs(storage))
    assert [(r["tagger"], r["run"], r["avg score"]) for r in rows] == [
        ("a", "0001_first", pytest.approx(0.3)),
        ("b", "0001_first", pytest.approx(0.1)),
        ("a", "0003_second", pytest.approx(0.4)),
    ]
    table = format_history(saved_runs(storage)).splitlines()
    assert [c.strip() for c in table[0].split("|")[1:-1]] == [
        "tagger", "run", "date", "commit", "images", "avg score", "F1", "F1@P=R", "mAP", "distance score",
        "avg s/img",
    ]  # fmt: skip
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in table[2:]]
    assert [c[:2] for c in cells] == [["a", "0001_first"], ["a", "0003_second"], ["b", "0001_first"]]
    assert cells[1][5:] == ["0.400", "0.500", "0.610", "0.420", "0.300", "0.2500"]
    assert cells[0][2:4] == ["2026-11-25 10:11:12", "01234567+"]
    assert format_history(saved_runs(storage), "zzz") == "no saved run with showdown results for zzz"


@pytest.mark.parametrize(
    ("commit_info", "shown"),
    [
        ({"id": "unversioned", "dirty": False}, "unversioned"),  # pytest-benchmark outside git
        ({"id": "unknown", "dirty": True}, "unknown+"),
        ({"id": "1234e567" + "0" * 32, "dirty": False}, "1234e567"),  # not the number 1234e567
    ],
)
def test_history_writes_every_cell_whole(tmp_path: Path, commit_info: dict[str, Any], shown: str) -> None:
    path = save(tmp_path, "0001_unversioned_1e3", showdown_document({"a_long_tagger_name": [0.25]}))
    data = json.loads(path.read_text())
    data["commit_info"] = commit_info
    path.write_text(json.dumps(data))
    lines = format_history([read_run(path)]).splitlines()
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert cells[:2] == ["a_long_tagger_name", "0001_unversioned_1e3"]
    assert cells[3:6] == [shown, "1", "0.250"]


def test_history_command(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--storage", str(storage), "--tagger", "a"]) == 0
    out = capsys.readouterr().out
    assert "0001_first" in out
    assert "0003_second" in out
    assert "| b " not in out


def test_compare_command_exit_status(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(storage, "0004_worse", showdown_document({"a": [s - 0.3 for s in [0.2, 0.4] * 20]}))
    save(storage, "0005_base", showdown_document({"a": [0.2, 0.4] * 20}))
    assert main(["compare", "0005", "0004", "--storage", str(storage)]) == 1
    out = capsys.readouterr().out
    assert "0005_base -> 0004_worse" in out
    assert "REGRESSION a: average score dropped by 0.300 against 0005_base" in out
    assert main(["compare", "0005", "0005", "--storage", str(storage)]) == 0
    assert main(["compare", "0005", "0042", "--storage", str(storage)]) == 2
    assert "no saved run '0042'" in capsys.readouterr().err


def gated(document: dict[str, Any], failure: str | None) -> dict[str, Any]:
    """The document as the plugin saves a gated run: its gates' verdicts recorded."""
    return {**document, "gates": [{"gate": "compare", "tagger": "a", "failure": failure}]}


def test_latest_is_the_newest_run_that_passed_its_gates(storage: Path) -> None:
    """Before: a red build saved by --benchmark-autosave became ``latest``, so its rerun compared
    with itself and passed."""
    save(storage, "0004_red", gated(showdown_document({"a": [0.0, 0.1]}), "a: average score dropped"))
    save(storage, "0005_red", gated(showdown_document({"a": [0.0, 0.0]}), "a: average score dropped"))
    latest = find_run("latest", storage)
    assert latest.name == "0003_second"
    assert latest.remark == "latest is 0003_second: skipped 0004_red, 0005_red, which failed their gates"
    save(storage, "0006_green", gated(showdown_document({"a": [0.3, 0.5]}), None))
    assert find_run("latest", storage).name == "0006_green"
    assert find_run("latest", storage).remark is None
    # Named explicitly, a failed run may still be the target; the remark says what it is.
    named = find_run("4", storage)
    assert named.name == "0004_red"
    assert named.remark == "0004_red failed its own gates (compare a)"


def test_latest_with_no_run_that_passed_is_an_error(tmp_path: Path) -> None:
    storage = tmp_path / ".benchmarks"
    save(storage, "0001_red", gated(showdown_document({"a": [0.0]}), "a: dropped"))
    with pytest.raises(ShowdownError, match=r"no saved run in .* passed its gates \(0001_red failed\)"):
        find_run("latest", storage)


def test_history_says_which_runs_failed_their_gates(storage: Path) -> None:
    save(storage, "0004_red", gated(showdown_document({"a": [0.0, 0.1]}), "a: dropped"))
    rows = {row["run"]: row["gates"] for row in history_rows(saved_runs(storage), "a")}
    assert rows == {"0001_first": None, "0003_second": None, "0004_red": "failed"}
    assert "| failed" in format_history(saved_runs(storage), "a")


def test_an_ungated_run_is_not_marked_passed_but_can_be_latest(storage: Path) -> None:
    """Before: a run saved without a gate option (the plugin records ``gates: []``) was marked
    ``passed``, though it judged nothing."""
    save(storage, "0004_ungated", {**showdown_document({"a": [0.3, 0.5]}), "gates": []})
    save(storage, "0005_green", gated(showdown_document({"a": [0.3, 0.5]}), None))
    rows = {row["run"]: row["gates"] for row in history_rows(saved_runs(storage), "a")}
    assert (rows["0004_ungated"], rows["0005_green"]) == (None, "passed")
    table = format_history(saved_runs(storage), "a").splitlines()
    assert next(line for line in table if "0004_ungated" in line).rstrip(" |").endswith("-")
    # An ungated run failed nothing: its scores are a baseline, so it can be latest.
    save(storage, "0006_ungated", {**showdown_document({"a": [0.3, 0.5]}), "gates": []})
    latest = find_run("latest", storage)
    assert (latest.name, latest.remark) == ("0006_ungated", None)


def test_an_interrupted_run_is_refused_as_an_input(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a run stopped after 4 posts was a compare target, and its 4 posts hid a real drop."""
    partial = tmp_path / "ki.json"
    partial.write_text(json.dumps({**showdown_document({"a": [0.9, 0.9]}), "interrupted": True}))
    with pytest.raises(ShowdownError, match=r"ki.json is an interrupted run .*: it can be neither compared"):
        find_run(str(partial), storage)
    assert main(["compare", str(partial), "3", "--storage", str(storage)]) == 2
    assert main(["compare", "3", str(partial), "--storage", str(storage)]) == 2
    assert "ki.json is an interrupted run" in capsys.readouterr().err
