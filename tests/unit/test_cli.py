"""The ``tagger-showdown`` command run as a user runs it: a real process, real files, real pipes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tagger_showdown.cli import EXIT_BROKEN_PIPE
from pytest_tagger_showdown.dataset import Dataset
from pytest_tagger_showdown.dataset.schema import SCHEMA_VERSION
from tests.helpers.datasets import four_ratings


def command(*args: str | Path, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_tagger_showdown.cli", *map(str, args)],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


# -- migrate ---------------------------------------------------------------------------------------


def test_migrate_refuses_a_missing_path_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    done = command("migrate", "--db", missing)
    assert done.returncode == 2
    assert done.stderr == (
        f"tagger-showdown: error: dataset {missing} does not exist (migrate never creates one; fetch does)\n"
    )
    assert done.stdout == ""
    assert not missing.exists()


def test_migrate_refuses_an_unrelated_sqlite_file_and_leaves_it_alone(tmp_path: Path) -> None:
    other = tmp_path / "app.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    done = command("migrate", "--db", other)
    assert done.returncode == 2
    assert done.stderr == (
        f"tagger-showdown: error: {other} is not a tagger-showdown dataset "
        "(a SQLite file with other tables: users)\n"
    )
    assert other.read_bytes() == before


def test_migrate_refuses_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    done = command("migrate", "--db", empty)
    assert (done.returncode, done.stderr) == (
        2,
        f"tagger-showdown: error: {empty} is an empty file, not a dataset\n",
    )
    assert empty.stat().st_size == 0


def test_migrate_says_what_it_did(tmp_path: Path) -> None:
    db = four_ratings(tmp_path / "data.db")
    done = command("migrate", "--db", db)
    assert (done.returncode, done.stdout) == (0, f"{db}: schema version {SCHEMA_VERSION} is up to date\n")
    with Dataset(db) as dataset:
        assert dataset.count() == 8


def test_a_newer_dataset_says_to_upgrade_the_package_never_to_migrate(tmp_path: Path) -> None:
    db = four_ratings(tmp_path / "data.db")
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    for args in (("info", "--db", db), ("migrate", "--db", db)):
        done = command(*args)
        assert done.returncode == 2
        assert "upgrade the package" in done.stderr
        assert "run `tagger-showdown migrate" not in done.stderr
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


# -- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("taggers", "--sdwebui-url", "http://bob:SECRETPW@127.0.0.1:9"),
            "--sdwebui-url http://***@127.0.0.1:9: a URL must not contain a user or password",
        ),
        (
            ("fetch", "--db", "new.db", "--api-url", "http://bob:SECRETPW@127.0.0.1:99999"),
            "--api-url http://***@127.0.0.1:99999: a URL must not contain a user or password",
        ),
    ],
)
def test_a_password_in_a_server_url_is_refused_and_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], line: str
) -> None:
    """Before: ``taggers`` listed the webui row with the URL as its source, password and all; a bad
    port in ``--api-url`` was reported with the URL quoted whole."""
    monkeypatch.chdir(tmp_path)
    done = command(*args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"tagger-showdown: error: {line}")
    assert "SECRETPW" not in done.stdout + done.stderr
    assert not (tmp_path / "new.db").exists()


# -- output into a closed pipe ---------------------------------------------------------------------


def closed_pipe_run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader is already gone, as after ``| head`` has read its lines."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return command(*args, stdout=write_end)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
def test_info_into_a_closed_pipe_ends_quietly(tmp_path: Path, json_flag: tuple[str, ...]) -> None:
    db = four_ratings(tmp_path / "data.db")
    done = closed_pipe_run("info", "--db", db, *json_flag)
    assert done.stderr == ""
    assert done.returncode == EXIT_BROKEN_PIPE


def test_history_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    storage = tmp_path / ".benchmarks"
    document = {"posts": [], "taggers": {"a": {"images": 2, "avg_score": 0.3}}}
    (storage / "Linux-CPython-3.11-64bit").mkdir(parents=True)
    (storage / "Linux-CPython-3.11-64bit" / "0001_first.json").write_text(
        json.dumps({"benchmarks": [], "tagger_showdown": document})
    )
    done = closed_pipe_run("history", "--storage", storage)
    assert (done.returncode, done.stderr) == (EXIT_BROKEN_PIPE, "")


def test_info_into_head_prints_the_first_lines_and_no_traceback(tmp_path: Path) -> None:
    db = four_ratings(tmp_path / "data.db")
    info = subprocess.Popen(
        [sys.executable, "-m", "pytest_tagger_showdown.cli", "info", "--db", str(db), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert info.stdout is not None
    assert info.stderr is not None
    head = subprocess.run(["head", "-n", "2"], stdin=info.stdout, capture_output=True, text=True, check=True)
    info.stdout.close()
    assert info.wait(timeout=60) in (0, EXIT_BROKEN_PIPE)
    assert info.stderr.read() == b""
    assert head.stdout.splitlines() == ["{", f'  "path": {json.dumps(str(db))},']


@pytest.mark.parametrize("empty", ["", ",", "# later"])
def test_merge_refuses_an_empty_baseline(tmp_path: Path, empty: str) -> None:
    # Before: --baseline "$LIMIT" with LIMIT unset merged ungated and exited 0.
    done = command("merge", tmp_path / "s1.json", "-o", tmp_path / "out.json", "--baseline", empty)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "tagger-showdown merge: error: argument --baseline: --baseline was given an empty value "
        "(expected NAME=SCORE)"
    )
    assert not (tmp_path / "out.json").exists()


def test_merge_refuses_an_output_that_is_a_symlink_loop(tmp_path: Path) -> None:
    # Before: a bare "RuntimeError: Symlink loop from ..." traceback and exit 1.
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    done = command("merge", tmp_path / "s1.json", "-o", tmp_path / "loop1")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith(
        f"tagger-showdown: error: {tmp_path / 'loop1'} cannot be followed"
    )
    assert "Traceback" not in done.stderr
