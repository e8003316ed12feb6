"""Which runs ``tagger-showdown merge`` refuses: not the shards of one run, each once, all there."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pytest_tagger_showdown.cli import main
from pytest_tagger_showdown.errors import ShowdownError
from pytest_tagger_showdown.history import SavedRun
from pytest_tagger_showdown.merge import check_shards


def shard(index: int, count: int = 3, **changes: Any) -> SavedRun:
    document = {
        "format": 2,
        "dataset": "posts.db",
        "categories": ["general"],
        "thresholds": {"t": {"general": 0.35, "character": 0.85, "mcut": False}},
        "taggers": {"t": {"images": 9, "errors": 1}},
        "shard": f"{index}/{count}",
        "shard_posts": 10,
        **changes,
    }
    return SavedRun(name=f"s{index}", path=Path(f"s{index}.json"), document=document)


def test_the_shards_of_one_run_pass() -> None:
    check_shards([shard(2), shard(1), shard(3)])


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ([shard(1), shard(1), shard(3)], "s1.json and s1.json are both shard 1/3: they overlap"),
        ([shard(1), shard(2)], r"shard\(s\) 3/3 missing"),
        ([shard(1), shard(2, 2)], "shards of different splits"),
        ([shard(1), shard(2, categories=["general", "character"]), shard(3)], "differ in categories"),
        ([shard(1), shard(2, dataset="other.db"), shard(3)], "differ in dataset"),
        ([shard(1), shard(2), shard(3, thresholds={"t": {"general": 0.5}})], "differ in thresholds"),
        (
            [shard(1), shard(2, taggers={"t": {"images": 10}, "u": {"images": 10}}), shard(3)],
            r"s2.json \(shard 2/3\) has u, unlike s1.json: the shards ran different taggers",
        ),
        # Before: a shard whose -k deselected a whole tagger was refused as "differ in thresholds".
        (
            [shard(1), shard(2, taggers={}, thresholds={}), shard(3)],
            r"s2.json \(shard 2/3\) has no t, unlike s1.json: the shards ran different taggers",
        ),
        # Before: a shard narrowed by -k merged without a word, and the merged run judged 9 of 10 posts.
        (
            [shard(1), shard(2, taggers={"t": {"images": 8, "errors": 1}}), shard(3)],
            r"s2.json \(shard 2/3\): t ran 9 of the shard's 10 posts \(1 missing: deselected by -k, -m, "
            r"--deselect or a skip\); merge needs whole shards",
        ),
        (
            [shard(1), shard(2, taggers={"t": {"images": 0, "errors": 0}}, thresholds={}), shard(3)],
            r"t ran 0 of the shard's 10 posts \(10 missing",
        ),
        ([shard(1), shard(2, shard_posts=None), shard(3)], r"s2.json \(shard 2/3\) does not record how many"),
        ([shard(1), shard(2, shard=None), shard(3)], "not a shard's run"),
    ],
)
def test_runs_that_are_not_one_run_split_are_refused(runs: list[SavedRun], message: str) -> None:
    with pytest.raises(ShowdownError, match=message):
        check_shards(runs)


def test_the_command_refuses_with_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for run in (shard(1), shard(1)):
        path = tmp_path / f"{len(paths)}.json"
        path.write_text(json.dumps({**run.document, "posts": {"columns": {}}}))
        paths.append(str(path))
    assert main(["merge", *paths, "-o", str(tmp_path / "out.json")]) == 2
    assert "are both shard 1/3: they overlap" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_the_command_never_overwrites_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s1.json"
    path.write_text(json.dumps(shard(1).document))
    assert main(["merge", str(path), "-o", str(path)]) == 2
    assert "never overwrites an input" in capsys.readouterr().err


def test_the_command_never_overwrites_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``merge shard-*.json -o big.db`` replaced the dataset with the merged JSON."""
    dataset = tmp_path / "big.db"
    sqlite3.connect(dataset).execute("CREATE TABLE posts (id INTEGER)").connection.commit()
    before = dataset.read_bytes()
    path = tmp_path / "s1.json"
    path.write_text(json.dumps({**shard(1).document, "dataset": str(dataset), "posts": {"columns": {}}}))
    for target in (dataset, tmp_path / "renamed.sqlite"):
        if target != dataset:
            target.write_bytes(before)  # a dataset under another name: found by its content
        assert main(["merge", str(path), "-o", str(target)]) == 2
        assert f"never overwrites an input ({target} is a shard or a dataset)" in capsys.readouterr().err
        assert target.read_bytes() == before
    assert main(["merge", str(path), "-o", str(tmp_path / "o.json"), "--csv", str(tmp_path / "o.json")]) == 2
    assert "--report and --csv must be different files" in capsys.readouterr().err


def test_the_command_never_overwrites_a_shards_probability_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``-o s1`` wrote the merged store over shard 1's ``s1.probabilities.npz``, and
    ``--report out.probabilities.npz`` wrote the report over the merged run's own store."""
    path = tmp_path / "s1.json"
    path.write_text(json.dumps({**shard(1).document, "posts": {"columns": {}}}))
    store = tmp_path / "s1.probabilities.npz"
    store.write_bytes(b"the shard's store")
    for output in (tmp_path / "s1", store):
        assert main(["merge", str(path), "-o", str(output)]) == 2
        assert "never overwrites an input" in capsys.readouterr().err
    assert store.read_bytes() == b"the shard's store"
    out = tmp_path / "out.json"
    assert (
        main(["merge", str(path), "-o", str(out), "--report", str(tmp_path / "out.probabilities.npz")]) == 2
    )
    assert f"its probability store {tmp_path / 'out.probabilities.npz'}" in capsys.readouterr().err


def test_the_command_refuses_an_interrupted_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a shard stopped after 29 of its posts was merged, and the baseline judged partial data."""
    paths = []
    for index in (1, 2):
        path = tmp_path / f"s{index}.json"
        document = {**shard(index, 2).document, "posts": {"columns": {}}, "interrupted": index == 2}
        path.write_text(json.dumps(document))
        paths.append(str(path))
    out = tmp_path / "out.json"
    assert main(["merge", *paths, "-o", str(out)]) == 2
    assert f"{tmp_path / 's2.json'} is an interrupted run" in capsys.readouterr().err
    assert not out.exists()
