"""The on-disk cache: exact round trips, corrupt entries, fingerprints, and several writer processes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pytest_tagger_showdown.cache import (
    CACHE_VERSION,
    PREDICTIONS_DB,
    PRUNE_TO,
    ShowdownCache,
    check_cache_dir,
    digest,
    file_sha256,
    is_cache_folder,
    model_fingerprint,
    parse_size,
)
from pytest_tagger_showdown.errors import ShowdownError
from pytest_tagger_showdown.probabilities import FLOOR, encode_row, stored_row


def row(seed: int, size: int = 1000) -> npt.NDArray[np.float32]:
    """A probability row like a tagger's: most tags far below the floor, some plausible ones."""
    rng = np.random.default_rng(seed)
    values = rng.random(size, dtype=np.float32) ** 8
    values[:3] = (0.35, 0.3500001, 0.0099999)  # at a cut-off, just above it, just below the floor
    return values


def stored(root: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Rows of a query on the prediction database, read with a connection of its own."""
    with contextlib.closing(sqlite3.connect(root / CACHE_VERSION / PREDICTIONS_DB)) as db:
        rows = db.execute(sql, args).fetchall()
        db.commit()
        return rows


def test_a_prediction_is_stored_as_its_compact_row_with_its_times(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path)
    original = row(3)
    cache.put_prediction("k" * 64, original, 0.125, 0.9375)
    hit = cache.get_prediction("k" * 64)
    assert hit is not None
    assert hit.probabilities.dtype == np.float32
    # Exactly what the dataset metrics keep: float16 values at or above the floor, 0 below it.
    expected = np.where(original >= FLOOR, original.astype(np.float16), 0).astype(np.float32)
    np.testing.assert_array_equal(hit.probabilities, expected)
    np.testing.assert_array_equal(hit.probabilities, stored_row(original))
    assert encode_row(hit.probabilities) == encode_row(original)
    assert (hit.preprocess_s, hit.inference_s) == (0.125, 0.9375)
    assert cache.get_prediction("j" * 64) is None
    # One row of the database, no file of its own.
    ((key, size),) = stored(tmp_path, "SELECT key, length(value) FROM predictions")
    kept = int(np.count_nonzero(original >= FLOOR))
    assert key == "k" * 64
    assert isinstance(size, int)
    assert size < 200 + kept * 4  # 2 bytes of column and 2 of value per kept tag
    # What the database's files take on disk: the limit is about the disk (a trial found it checked
    # against the rows alone, with the file half as large again).
    # The log and the shared-memory index come and go with connections: not counted (a second trial
    # found predictions evicted for them under -n 2).
    on_disk = (tmp_path / CACHE_VERSION / PREDICTIONS_DB).stat().st_size
    cache._checkpoint()
    assert cache.usage()["predictions"].bytes == (tmp_path / CACHE_VERSION / PREDICTIONS_DB).stat().st_size
    assert cache.usage()["predictions"].bytes >= on_disk
    assert not (tmp_path / CACHE_VERSION / "predictions").exists()


@pytest.mark.parametrize("scale", [1.0, 1 / 255])
def test_inputs_round_trip_bit_identical(tmp_path: Path, scale: float) -> None:
    cache = ShowdownCache(tmp_path)
    pixels = np.random.default_rng(0).integers(0, 256, (448, 448, 3)).astype(np.float32)
    array = pixels * np.float32(scale)
    cache.put_input("b" * 64, array, 0.03)
    hit = cache.get_input("b" * 64)
    assert hit is not None
    assert hit.array.dtype == np.float32
    np.testing.assert_array_equal(hit.array, array)
    assert hit.preprocess_s == 0.03
    # 8-bit pixels are stored as bytes, a quarter of the float32 size; anything else as is.
    (entry,) = (tmp_path / CACHE_VERSION / "inputs").rglob("*.entry")
    assert (entry.stat().st_size < 448 * 448 * 3 * 2) == (scale == 1.0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),
        lambda data: b"garbage",
        lambda data: b"",
    ],
    ids=["truncated", "flipped-bit", "garbage", "empty"],
)
def test_a_damaged_entry_reads_as_missing_and_is_rewritten(tmp_path: Path, damage: object) -> None:
    cache = ShowdownCache(tmp_path)
    cache.put_prediction("c" * 64, row(1), 0.1, 0.2)
    ((value,),) = stored(tmp_path, "SELECT value FROM predictions")
    assert callable(damage)
    assert isinstance(value, bytes)
    stored(tmp_path, "UPDATE predictions SET value = ?", damage(value))
    assert cache.get_prediction("c" * 64) is None
    cache.put_prediction("c" * 64, row(1), 0.1, 0.2)
    hit = cache.get_prediction("c" * 64)
    assert hit is not None
    np.testing.assert_array_equal(hit.probabilities, stored_row(row(1)))


def test_the_folder_is_marked_as_a_cache(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path / "cache")
    cache.put_input("d" * 64, np.zeros((2, 2, 3), np.float32), 0.0)
    assert (tmp_path / "cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (tmp_path / "cache" / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )


def test_an_unwritable_cache_only_costs_the_speed_up(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ShowdownCache(blocker / "cache")
    cache.put_prediction("e" * 64, row(2), 0.1, 0.2)
    assert cache.get_prediction("e" * 64) is None


def test_digest_separates_its_parts() -> None:
    assert digest("ab", "c") != digest("a", "bc")
    assert digest("a", None) != digest("a", "")
    assert digest("x", 1) == digest("x", "1")


def test_file_hashes_follow_the_content(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"weights-1")
    assert file_sha256(path) == hashlib.sha256(b"weights-1").hexdigest()
    tags = tmp_path / "selected_tags.csv"
    tags.write_text("tag_id,name,category,count\n")
    before = model_fingerprint([path, tags])
    path.write_bytes(b"weights-2")  # same size, new content
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) == hashlib.sha256(b"weights-2").hexdigest()
    assert model_fingerprint([path, tags]) != before


def test_a_fingerprint_record_holds_while_the_files_are_unchanged(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path / "cache")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights")
    cache.remember_fingerprint("t" * 64, [model], {"model": "abc", "vocabulary": [["x"], [0]]})
    assert cache.fingerprint("t" * 64) == {"model": "abc", "vocabulary": [["x"], [0]]}
    os.utime(model, ns=(5, 5))
    assert cache.fingerprint("t" * 64) is None
    model.unlink()
    assert cache.fingerprint("t" * 64) is None


def _hammer(root: str, worker: int, rounds: int) -> list[str]:
    """Write and read the same few keys as the other processes do; return every problem seen.

    Once this process has written a key, every read of it must find a whole, right entry, however
    the other processes' writes of that key interleave (a torn write would read as missing)."""
    cache = ShowdownCache(Path(root))
    problems: list[str] = []
    for i in range(rounds):
        cache.put_prediction(f"{i % 5:064d}", row(i % 5), float(i % 5), 1.0)
        cache.put_input(f"{i % 5:064d}", np.full((64, 64, 3), i % 5, np.float32), 0.5)
        for key in range(min(i + 1, 5)):
            hit = cache.get_prediction(f"{key:064d}")
            if hit is None or not np.array_equal(hit.probabilities, stored_row(row(key))):
                problems.append(f"worker {worker}, round {i}: prediction {key} is {hit}")
            got = cache.get_input(f"{key:064d}")
            if got is None or not np.all(got.array == key):
                problems.append(f"worker {worker}, round {i}: input {key} is {got}")
    return problems


def test_several_processes_share_one_cache(tmp_path: Path) -> None:
    # Spawned, not forked: a fork of a process that runs threads (onnxruntime's, earlier tests') can
    # inherit a lock held by one of them and hang.
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        reports = pool.starmap(_hammer, [(str(tmp_path), worker, 60) for worker in range(4)])
    assert [problem for report in reports for problem in report] == []
    cache = ShowdownCache(tmp_path)
    for key in range(5):
        hit = cache.get_prediction(f"{key:064d}")
        assert hit is not None
        np.testing.assert_array_equal(hit.probabilities, stored_row(row(key)))
    assert list(tmp_path.rglob("*.partial")) == []


# -- the size limit --------------------------------------------------------------------------------


def entry_bytes(root: Path) -> int:
    """What the entries take now (entries deleted by another process while counting count as 0)."""
    return sum(ShowdownCache(root, max_size=None).usage()[kind].bytes for kind in ("inputs", "predictions"))


def put_inputs(cache: ShowdownCache, keys: range, *, pixels: int = 100) -> int:
    """Inputs of random bytes (uint8-valued, as 8-bit images are); returns one entry's file size."""
    for key in keys:
        array = np.random.default_rng(key).integers(0, 256, (pixels, pixels, 3)).astype(np.float32)
        cache.put_input(f"{key:064d}", array, 0.0)
    return next((cache.root / CACHE_VERSION / "inputs").rglob("*.entry")).stat().st_size


def test_eviction_takes_the_least_recently_used_entries_first(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path, max_size=None)
    size = put_inputs(cache, range(6))
    for key in range(6):  # written at t = 1000, 1010, ... seconds: key 0 oldest
        path = cache._input_path(f"{key:064d}")
        os.utime(path, ns=(0, (1000 + 10 * key) * 10**9))
    assert cache.get_input(f"{0:064d}") is not None  # a use makes the oldest the most recent
    assert cache.get_input(f"{2:064d}") is not None
    outcome = cache.prune(3 * size)
    assert (outcome.before, outcome.after, outcome.deleted) == (6 * size, 3 * size, 3)
    left = [key for key in range(6) if cache.get_input(f"{key:064d}") is not None]
    assert left == [0, 2, 5]


def test_an_entry_used_after_the_scan_is_spared(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path, max_size=None)
    size = put_inputs(cache, range(3))
    for key in range(3):
        os.utime(cache._input_path(f"{key:064d}"), ns=(0, (1000 + key) * 10**9))
    entries = sorted(cache._input_files())
    os.utime(entries[0][2])  # key 0 read by another process between the scan and the deletion
    cache._input_files = lambda: entries  # type: ignore[method-assign]
    outcome = cache.prune(2 * size)
    assert outcome.deleted == 1
    assert cache.get_input(f"{0:064d}") is not None
    assert cache.get_input(f"{1:064d}") is None


def test_writes_keep_the_cache_under_its_limit(tmp_path: Path) -> None:
    size = put_inputs(ShowdownCache(tmp_path / "probe", max_size=None), range(1))
    limit = 10 * size
    cache = ShowdownCache(tmp_path / "cache", max_size=limit)
    high = 0
    for key in range(60):
        put_inputs(cache, range(key, key + 1))
        high = max(high, entry_bytes(tmp_path / "cache"))
    assert high <= limit
    assert entry_bytes(tmp_path / "cache") >= 0.7 * limit, "it evicts down to 80% of the limit, not to 0"
    assert cache.get_input(f"{59:064d}") is not None, "the newest entries stay"
    assert cache.get_input(f"{0:064d}") is None


def _write_many(root: str, first: int, count: int, limit: int) -> None:
    put_inputs(ShowdownCache(Path(root), max_size=limit), range(first, first + count))


def test_several_writing_processes_keep_the_cache_under_its_limit(tmp_path: Path) -> None:
    size = put_inputs(ShowdownCache(tmp_path / "probe", max_size=None), range(1))
    limit = 12 * size
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        pending = pool.starmap_async(
            _write_many, [(str(tmp_path / "c"), 100 * w, 40, limit) for w in range(3)]
        )
        high = 0
        while not pending.ready():
            high = max(high, entry_bytes(tmp_path / "c") if (tmp_path / "c").exists() else 0)
        pending.get()
    assert high <= limit
    assert entry_bytes(tmp_path / "c") <= limit


def _use_while_pruned(root: str, seconds: float) -> list[str]:
    """Write and read entries until ``seconds`` have passed; a read must give the right array or
    nothing (evicted), never a wrong or torn one."""
    cache = ShowdownCache(Path(root), max_size=None)
    problems: list[str] = []
    deadline = time.monotonic() + seconds
    key = 0
    while time.monotonic() < deadline:
        cache.put_input(f"{key:064d}", np.full((80, 80, 3), key % 256, np.float32), 0.0)
        for back in range(max(0, key - 5), key + 1):
            got = cache.get_input(f"{back:064d}")
            if got is not None and not np.all(got.array == back % 256):
                problems.append(f"input {back} read back wrong")
        key += 1
    return problems


def test_cache_prune_brings_a_cache_in_use_under_its_limit(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    size = put_inputs(ShowdownCache(root, max_size=None), range(1000, 1040), pixels=80)
    limit = 10 * size
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        user = pool.apply_async(_use_while_pruned, (str(root), 6.0))
        time.sleep(2.0)  # the user is writing and reading by now
        outputs = []
        for _ in range(3):
            done = subprocess.run(
                [sys.executable, "-m", "pytest_tagger_showdown.cli", "cache", "prune",
                 "--dir", str(root), "--max-size", str(limit)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
        problems = user.get()
    assert problems == []
    # Each prune reports the size it left, at most the limit, while the other process kept writing.
    for line in outputs:
        after = line.split("-> ")[1].split(",")[0]
        assert parse_size(after.replace(" ", "")) <= limit, line
    assert all("entries evicted" in line and " 0 entries" not in line for line in outputs[:1])


def test_a_torn_write_left_by_a_killed_writer_is_never_read_and_is_cleaned_up(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path, max_size=None)
    cache.put_input("f" * 64, np.ones((4, 4, 3), np.float32), 0.1)
    entry = cache._input_path("f" * 64)
    partial = entry.with_name(f".{entry.name}.999.deadbeef.partial")
    partial.write_bytes(entry.read_bytes()[:40])
    entry.unlink()
    assert cache.get_input("f" * 64) is None
    os.utime(partial, (0, 0))  # an hour old: its writer is gone
    cache.prune(10**9)
    assert not partial.exists()


def test_other_cache_versions_are_evicted_first_and_counted(tmp_path: Path) -> None:
    old = tmp_path / "v1" / "inputs" / "ab"
    old.mkdir(parents=True)
    (old / "x.entry").write_bytes(b"0" * 5000)
    cache = ShowdownCache(tmp_path, max_size=None)
    size = put_inputs(cache, range(2))
    usage = cache.usage()
    assert (usage["stale"].entries, usage["stale"].bytes) == (1, 5000)
    assert (usage["inputs"].entries, usage["inputs"].bytes) == (2, 2 * size)
    assert cache.prune(2 * size).deleted == 0
    assert not (tmp_path / "v1").exists()
    assert cache.clear() == 2 * size
    assert cache.usage()["inputs"].entries == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10GB", 10 * 1000**3),
        ("500MB", 500 * 1000**2),
        ("1.5GiB", 1536 * 1024**2),
        ("4096", 4096),
        (" 2 kb", 2000),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "10XB", "-1GB", "0", "ten"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="--max-size must be"):
        parse_size(text, "--max-size")


def _project(root: Path) -> dict[Path, bytes]:
    """A folder a user might point the cache at by mistake: source, data, a ``v1`` of their own."""
    files = {
        root / "src" / "pkg" / "mod.py": b"print('mine')\n",
        root / "data" / "important.bin": b"\x00" * 100_000,
        root / "v1" / "notes.txt": b"release notes\n",
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_eviction_and_clearing_touch_nothing_but_the_caches_own_layout(tmp_path: Path) -> None:
    """Before: every folder beside ``v2`` counted as an old cache version: pruning, clearing and a
    run's own eviction deleted a project's ``src/`` and ``data/``."""
    files = _project(tmp_path)
    cache = ShowdownCache(tmp_path, max_size=None)
    size = put_inputs(cache, range(3))
    assert cache.usage()["stale"].entries == 0
    assert cache.prune(size).deleted == 2
    assert cache.clear() == size
    assert {path: path.read_bytes() for path in files} == files


def test_the_cache_commands_refuse_a_folder_that_is_not_a_cache(tmp_path: Path) -> None:
    files = _project(tmp_path)
    for action in (["clear"], ["prune", "--max-size", "1MB"], ["info"]):
        done = subprocess.run(
            [sys.executable, "-m", "pytest_tagger_showdown.cli", "cache", *action, "--dir", str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2
        assert done.stderr.strip().endswith(
            f"{tmp_path} is not a tagger-showdown cache (no CACHEDIR.TAG, no v2/): left as it is"
        )
    missing = subprocess.run(
        [sys.executable, "-m", "pytest_tagger_showdown.cli", "cache", "info", "--dir", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "no cache at" in missing.stderr
    assert {path: path.read_bytes() for path in files} == files


def test_a_cache_folder_must_be_new_empty_or_a_cache(tmp_path: Path) -> None:
    check_cache_dir(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_cache_dir(tmp_path / "empty")
    ShowdownCache(tmp_path / "made", max_size=None).put_input("ab" * 32, np.zeros((2, 2, 3), np.uint8), 0.0)
    check_cache_dir(tmp_path / "made")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_cache_dir(tmp_path / "file")
    _project(tmp_path / "project")
    with pytest.raises(
        ValueError, match="holds other files and no showdown cache: choose a new or empty folder"
    ):
        check_cache_dir(tmp_path / "project")


def test_eviction_keeps_predictions_until_no_prepared_input_is_left(tmp_path: Path) -> None:
    """Before: least recently used first whatever the kind, so a capped cache held 276 of 3,000 tiny
    predictions and a rerun with new cut-offs ran the model again."""
    cache = ShowdownCache(tmp_path, max_size=None)
    for key in range(400):
        cache.put_prediction(digest("p", key), row(key), 0.1, 0.2)
    time.sleep(0.01)  # the inputs are used later than the predictions
    size = put_inputs(cache, range(3))
    predictions = cache.usage()["predictions"].bytes
    assert cache.prune(predictions + size).deleted == 2  # two inputs, though the predictions are older
    usage = cache.usage()
    assert (usage["inputs"].entries, usage["predictions"].entries) == (1, 400)
    cache.prune(predictions // 2)
    assert cache.usage()["inputs"].entries == 0
    assert 0 < cache.usage()["predictions"].entries < 400


def test_a_cache_folder_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    """Before: a folder under a file (``a.txt/sub``) was accepted and the run silently cached nothing."""
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match=r"a\.txt/sub cannot be written \(.*a\.txt is not a folder\)"):
        check_cache_dir(tmp_path / "a.txt" / "sub")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_cache_folder_where_no_file_can_be_made_is_refused() -> None:
    """Before: ``os.access`` said yes (to root, everywhere), and the run cached nothing."""
    with pytest.raises(
        ValueError, match=r"/proc/showdown-cache cannot be written \(/proc is not a writable folder"
    ):
        check_cache_dir(Path("/proc/showdown-cache"))


# -- the prediction database -----------------------------------------------------------------------


def _write_keys(root: str, worker: int, count: int, barrier: Any) -> None:
    cache = ShowdownCache(Path(root))
    barrier.wait()  # both make the database and write at the same moment
    for i in range(count):
        cache.put_prediction(digest(worker, i), row(i, 50), float(worker), float(i))
    cache.close()


def test_two_processes_writing_different_keys_at_once_lose_none(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    writers = [
        context.Process(target=_write_keys, args=(str(tmp_path), worker, 300, barrier)) for worker in range(2)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    assert [writer.exitcode for writer in writers] == [0, 0]
    cache = ShowdownCache(tmp_path)
    assert cache.usage()["predictions"].entries == 600
    for worker in range(2):
        for i in range(300):
            hit = cache.get_prediction(digest(worker, i))
            assert hit is not None, (worker, i)
            assert (hit.preprocess_s, hit.inference_s) == (worker, i)
            np.testing.assert_array_equal(hit.probabilities, stored_row(row(i, 50)))


@pytest.mark.parametrize("max_size", [None, 10**9], ids=["unbounded", "bounded"])
def test_writes_wait_for_another_connection_making_the_database(tmp_path: Path, max_size: int | None) -> None:
    """Before: while another connection held the write lock of the new database, still in the default
    journal mode, SQLite refused the switch to WAL at once (no busy wait), so the first write was lost
    (CI: 599 of 600 under two processes); a bounded cache, whose first write opens the database to
    scan it, then read it as an immutable file and lost every later write too."""
    path = tmp_path / CACHE_VERSION / PREDICTIONS_DB
    path.parent.mkdir(parents=True)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    releases = threading.Timer(0.3, holder.execute, ("COMMIT",))
    releases.start()
    cache = ShowdownCache(tmp_path, max_size=max_size)
    try:
        for key in range(2):
            cache.put_prediction(digest("busy", key), row(key, 50), 0.0, float(key))
    finally:
        releases.join()
        holder.close()
    hits = [cache.get_prediction(digest("busy", key)) for key in range(2)]
    assert [hit.inference_s if hit else None for hit in hits] == [0.0, 1.0]
    cache.close()
    assert stored(tmp_path, "PRAGMA journal_mode") == [("wal",)]


@pytest.mark.parametrize(
    "garbage",
    [b"not a database, just text\n" * 200, b"SQLite format 3\0" + bytes(range(256)) * 16],
    ids=["text", "damaged-header"],
)
def test_a_file_that_is_not_a_database_is_made_again_and_the_cache_works(
    tmp_path: Path, garbage: bytes
) -> None:
    cache = ShowdownCache(tmp_path)
    cache.put_prediction("a" * 64, row(1), 0.1, 0.2)
    cache.close()
    (tmp_path / CACHE_VERSION / PREDICTIONS_DB).write_bytes(garbage)
    again = ShowdownCache(tmp_path)
    assert again.get_prediction("a" * 64) is None
    assert again.usage()["predictions"].entries == 0
    again.put_prediction("b" * 64, row(2), 0.3, 0.4)
    hit = again.get_prediction("b" * 64)
    assert hit is not None
    np.testing.assert_array_equal(hit.probabilities, stored_row(row(2)))
    assert stored(tmp_path, "SELECT key FROM predictions") == [("b" * 64,)]


_READ_ONLY_PROBE = """
import json, os, sys
from pathlib import Path
import numpy as np
from pytest_tagger_showdown.cache import ShowdownCache
if os.geteuid() == 0:  # root may write anywhere: run on as another user (imports done)
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
cache = ShowdownCache(Path(sys.argv[1]), max_size=1000)
hit = cache.get_prediction("a" * 64)
cache.put_prediction("b" * 64, np.ones(5, np.float32), 0.1, 0.2)
cache.put_input("c" * 64, np.ones((4, 4, 3), np.float32), 0.1)
outcome = cache.prune(0)
print(json.dumps({
    "hit": None if hit is None else hit.probabilities.tolist(),
    "written": [cache.get_prediction("b" * 64) is not None, cache.get_input("c" * 64) is not None],
    "entries": cache.usage()["predictions"].entries,
}))
cache.close()
"""


def test_a_read_only_cache_folder_costs_nothing_but_the_speed_up() -> None:
    """The probe drops to another user when the tests run as root; the cache is under /tmp, as
    pytest's own folders are closed to other users."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "cache"
        cache = ShowdownCache(root)
        cache.put_prediction("a" * 64, np.array([0.5, 0.25, 0.001, 1.0], np.float32), 0.1, 0.2)
        cache.close()
        before = {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        Path(folder).chmod(0o755)
        done = subprocess.run(
            [sys.executable, "-c", _READ_ONLY_PROBE, str(root)],
            capture_output=True, text=True, check=False, cwd=folder,
        )  # fmt: skip
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        after = {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    # Served from the database although the folder cannot be written (before: a miss, and `cache
    # info` listed no prediction).
    assert result["hit"] == [0.5, 0.25, 0.0, 1.0], result
    assert result["entries"] == 1
    assert result["written"] == [False, False]
    assert after == before


def test_predictions_are_evicted_least_recently_used_first_sparing_one_used_since_the_scan(
    tmp_path: Path,
) -> None:
    cache = ShowdownCache(tmp_path, max_size=None)
    keys = [digest("lru", n) for n in range(6)]
    for key in keys:
        cache.put_prediction(key, row(1, 50), 0.0, 0.0)
    for n, key in enumerate(keys):  # used at t = 1000, 1001, ... seconds: key 0 oldest
        stored(tmp_path, "UPDATE predictions SET used = ? WHERE key = ?", 1000.0 + n, key)
    assert cache.get_prediction(keys[0]) is not None  # a use makes the oldest the most recent
    scan = cache._prediction_rows()
    assert [key for _, _, key in scan] == [*keys[1:], keys[0]]
    assert cache.get_prediction(keys[1]) is not None  # read by another process after the scan
    # Rows worth three rows' bytes go, oldest first, the one used since the scan spared.
    assert cache._delete_predictions(scan, 3 * scan[0][1]) == 3
    assert [n for n, key in enumerate(keys) if cache.get_prediction(key) is not None] == [0, 1, 5]


def test_the_database_file_shrinks_after_a_prune_and_clear_deletes_it(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path, max_size=None)
    for key in range(2000):
        cache.put_prediction(digest("s", key), row(key, 300), 0.0, 0.0)
    cache.close()
    path = tmp_path / CACHE_VERSION / PREDICTIONS_DB
    full = path.stat().st_size
    assert cache.prune(cache.usage()["predictions"].bytes // 10).deleted >= 1790
    cache.close()
    pruned = path.stat().st_size
    assert pruned < full / 5
    assert cache.usage()["predictions"].entries <= 210
    assert cache.clear() >= pruned
    assert sorted(tmp_path.rglob("predictions.sqlite*")) == []


def test_the_earlier_layouts_prediction_files_are_stale_and_a_cache_of_one_database_is_a_cache(
    tmp_path: Path,
) -> None:
    old = tmp_path / CACHE_VERSION / "predictions" / "ab"
    old.mkdir(parents=True)
    (old / f"{'ab' * 32}.entry").write_bytes(b"0" * 700)
    assert is_cache_folder(tmp_path)
    cache = ShowdownCache(tmp_path, max_size=None)
    cache.put_prediction("ab" * 32, row(5), 0.1, 0.2)
    usage = cache.usage()
    assert (usage["stale"].entries, usage["stale"].bytes) == (1, 700)
    assert usage["predictions"].entries == 1
    assert cache.prune(10**9).deleted == 0
    assert not (tmp_path / CACHE_VERSION / "predictions").exists()
    assert cache.get_prediction("ab" * 32) is not None
    cache.close()
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        CACHE_VERSION,
        f"{CACHE_VERSION}/{PREDICTIONS_DB}",
    ]
    assert is_cache_folder(tmp_path)
    check_cache_dir(tmp_path)


def test_close_moves_the_log_into_the_database_and_a_later_use_opens_it_again(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path)
    cache.put_prediction("a" * 64, row(1), 0.1, 0.2)
    log = tmp_path / CACHE_VERSION / f"{PREDICTIONS_DB}-wal"
    assert log.stat().st_size > 0  # WAL mode: the row is in the log until a checkpoint
    cache.close()
    assert not log.exists()
    assert cache.get_prediction("a" * 64) is not None


def test_prepared_inputs_never_displace_predictions_even_from_two_processes(tmp_path: Path) -> None:
    """A trial: two xdist workers writing 600 kB inputs into a 1 MB cache evicted 597 of 600
    predictions, and a rerun with new cut-offs ran the model again. Two caches on one folder stand
    for the two processes."""
    limit = 2_000_000
    first, second = ShowdownCache(tmp_path, max_size=limit), ShowdownCache(tmp_path, max_size=limit)
    for key in range(60):
        (first if key % 2 else second).put_prediction(digest("p", key), row(key), 0.0, 0.0)
    pixels = np.random.default_rng(0).integers(0, 256, (100, 100, 3)).astype(np.float32)
    for key in range(80):  # 30 kB each: the two processes fill the room left, and more
        (first if key % 2 else second).put_input(f"{key:064d}", pixels, 0.0)
    assert first.usage()["predictions"].entries == 60
    assert all(first.get_prediction(digest("p", key)) is not None for key in range(60))
    usage = first.usage()
    assert 0 < usage["inputs"].entries < 80
    assert usage["inputs"].bytes + usage["predictions"].bytes <= limit
    # An input that cannot fit beside the predictions is not stored at all.
    tight = ShowdownCache(tmp_path, max_size=usage["predictions"].bytes + 1000)
    tight.put_input(f"{100:064d}", pixels, 0.0)
    assert tight.get_input(f"{100:064d}") is None
    assert tight.usage()["predictions"].entries == 60


def test_a_prune_brings_the_files_on_disk_under_the_size_and_leaves_no_empty_folder(tmp_path: Path) -> None:
    """A trial: after `prune --max-size 100kB` the database alone took 180 kB, and 184 emptied shard
    folders stayed."""
    cache = ShowdownCache(tmp_path, max_size=None)
    put_inputs(cache, range(40))
    for key in range(3000):
        cache.put_prediction(digest("p", key), row(key, 300), 0.0, 0.0)
    limit = 150_000
    outcome = cache.prune(limit)
    cache.close()
    on_disk = sum(path.stat().st_size for path in (tmp_path / CACHE_VERSION).rglob("*") if path.is_file())
    assert outcome.after <= limit
    assert on_disk <= limit
    assert cache.usage()["predictions"].entries > 0
    assert [p for p in (tmp_path / CACHE_VERSION / "inputs").iterdir() if not any(p.iterdir())] == []


def test_clear_deletes_the_layout_only_and_says_what_it_could_not_delete(tmp_path: Path) -> None:
    """A trial: `cache clear` deleted a user's files under v2/, and said `cleared` with the database
    still there (immutable)."""
    cache = ShowdownCache(tmp_path, max_size=None)
    put_inputs(cache, range(3))
    cache.put_prediction("a" * 64, row(1), 0.0, 0.0)
    mine = [tmp_path / CACHE_VERSION / "mine.txt", tmp_path / CACHE_VERSION / "inputs" / "mine.txt"]
    for path in mine:
        path.write_text("mine\n")
    assert cache.clear() > 0
    assert all(path.read_text() == "mine\n" for path in mine)
    assert sorted(p.name for p in (tmp_path / CACHE_VERSION).rglob("*") if p.is_file()) == ["mine.txt"] * 2
    # A file that cannot be deleted (here a folder where the log would be) is named, the rest goes.
    cache.put_prediction("b" * 64, row(2), 0.0, 0.0)
    cache.close()
    stuck = tmp_path / CACHE_VERSION / f"{PREDICTIONS_DB}-wal"
    (stuck / "x").mkdir(parents=True)
    with pytest.raises(ShowdownError, match=f"could not delete {stuck}"):
        cache.clear()
    assert not (tmp_path / CACHE_VERSION / PREDICTIONS_DB).exists()


def test_the_databases_log_never_costs_a_prediction(tmp_path: Path) -> None:
    """A trial: a 1 MB cache shared by two xdist workers kept 457 of 600 predictions: the log (up to
    400 kB before it is moved into the file) counted against the limit, and rows were deleted for
    room that a checkpoint gives back."""
    limit = 700_000  # the rows take about 470 kB in the file, the log up to 400 kB more
    cache = ShowdownCache(tmp_path, max_size=limit)
    for key in range(400):
        cache.put_prediction(digest("w", key), row(key, 300), 0.0, 0.0)
    assert cache.usage()["predictions"].entries == 400
    cache.close()
    assert (tmp_path / CACHE_VERSION / PREDICTIONS_DB).stat().st_size < PRUNE_TO * limit


_CLEAR_PROBE = """
import os, sys
from pathlib import Path
from pytest_tagger_showdown.cache import ShowdownCache
from pytest_tagger_showdown.errors import ShowdownError
if os.geteuid() == 0:  # root may delete anything: run on as another user (imports done)
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
try:
    print("cleared", ShowdownCache(Path(sys.argv[1])).clear())
except ShowdownError as exc:
    print("error", exc)
"""


def test_clear_names_a_file_of_an_older_version_it_could_not_delete() -> None:
    """A second trial: `cache clear` said `cleared 28.9 MB` and exited 0 with a file of `v1/` left."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "cache"
        cache = ShowdownCache(root)
        cache.put_prediction("a" * 64, row(1), 0.0, 0.0)
        cache.close()
        stuck = root / "v1" / "inputs" / "aa" / "x.entry"
        stuck.parent.mkdir(parents=True)
        stuck.write_text("old")
        for path in [root, *root.rglob("*")]:
            with contextlib.suppress(PermissionError):
                os.chown(path, 65534, 65534)
        if os.geteuid() == 0:
            os.chown(stuck.parent, 0, 0)
        stuck.parent.chmod(0o555)
        Path(folder).chmod(0o755)
        done = subprocess.run(
            [sys.executable, "-c", _CLEAR_PROBE, str(root)], capture_output=True, text=True, check=False
        )
        stuck.parent.chmod(0o755)
        left = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("error cleared "), done.stdout
    assert f"could not delete {stuck}: Permission denied" in done.stdout
    assert left == [".gitignore", "CACHEDIR.TAG", "v1/inputs/aa/x.entry"]
