"""On-disk caches that make a rerun of an unchanged tagger on an unchanged dataset cost almost nothing,
bounded in size, shared safely by several processes.

Two kinds of entries, both content-addressed (a key is the sha256 of everything the value depends on):

* prepared inputs, keyed by how the tagger prepares images (its ``prepare`` implementation, the
  :class:`Preprocessing` spec and the input size) and the stored image's md5: taggers that share a
  preprocessing (every WD14 model at 448) share them, and a new model skips decoding. An 8-bit image
  is stored as uint8: 602 kB for a 448 input, 263 kB at 299, 786 kB at 512 (DeepDanbooru);
* predictions, keyed by the model files' hashes, the preprocessing and the image md5, **not** the
  cut-offs: an entry is the post's probability row in the compact form the dataset metrics keep
  (:func:`probabilities.compact_row`: the tags at or above 0.01, float16; a few hundred bytes), with
  the preprocessing and inference times measured when it was computed. Cut-offs, MCut and the
  threshold sweep are applied after reading, so a new ``--showdown-threshold`` re-scores a cached run
  without loading the model.

Layout under the cache folder (``.showdown_cache/`` beside the ini file unless ``--showdown-cache-dir``)::

    v2/inputs/ab/abcdef....entry        prepared input arrays, one file each (600 kB)
    v2/predictions.sqlite               probability rows, one SQLite row each (with -wal, -shm)
    v2/taggers/abcdef....json           a tagger's model fingerprint, valid while its files are unchanged

Predictions live in one SQLite database (table ``predictions``: ``key`` TEXT PRIMARY KEY, ``value``
BLOB, ``used`` REAL, the last use in epoch seconds): a row costs a fifth to a tenth of the CPU of a
file of its own, kernel writeback included (measured through :meth:`ShowdownCache.put_prediction`
on 2 cores: 0.11 against 0.5-1.0 ms per write, encoding included), and a 30,000-post run makes no
30,000 tiny files. An earlier layout's ``v2/predictions/`` folder of files is
never read again: it counts as stale, like other versions' folders.

Several pytest-xdist workers (or several runs) may share a folder. A prepared input is written to a
unique temporary file beside its final name and moved into place with ``os.replace``, which is atomic
on one file system, so a reader sees a whole entry or none; two writers of one key write the same
content, and the last rename wins. The database runs in WAL mode (readers never wait for the writer;
where WAL cannot be set, on a network file system, SQLite's default journal stays) with
``synchronous=NORMAL`` and a :data:`BUSY_TIMEOUT_S` wait for another process's write; each
:class:`ShowdownCache` opens one connection on first use, shared by its threads under a lock, until
:meth:`ShowdownCache.close`. Each entry (a file, a BLOB) carries a checksum; one that does not read
back whole (a disk that filled up, an edited file) is treated as missing and recomputed. A database
file that is not one (or a corrupt one) is the cache's own: it is removed and made again. A read error
is a miss and a write error is ignored: an unusable cache only costs the speed-up. Failures are never
cached.

Size limit (``--showdown-cache-max-size``, default 10 GB), least recently used first: a hit marks the
entry used (an input file's mtime set by one ``utime`` call, atime being unreliable under
``noatime``/``relatime``; a prediction's ``used`` column), and eviction deletes the prepared inputs
with the oldest mtimes, and predictions (about 1 kB each, and all a rerun with new cut-offs needs)
only once no input is left, oldest ``used`` first; the database file is then rewritten to give the
room back (``VACUUM``). What counts is the disk: input files and the database file (its log, moved
into the file every :data:`WAL_PAGES` pages and before any row is evicted, and its 32 kB index live
only while connections are open and come on top). A prepared input never displaces predictions: a write of one
evicts inputs only, and an input that would not fit beside the predictions is not stored. Eviction
is amortised:
before a write that takes a process past :data:`RESCAN_FRACTION` of the limit since its last scan, it
rescans the folder and the database and deletes down to :data:`PRUNE_TO` of the limit less that entry;
so with up to five processes writing at once the cache never exceeds the limit (each adds at most 4%
of it, or one entry, between its scans to the 80% left by the last one) as long as an entry is small
against the limit (602 kB against 10 GB). Deleting is safe beside readers: a reader that opened an
input file reads it whole (POSIX keeps an unlinked file's data until it is closed), a database read
is one transaction; one that comes later finds nothing, a miss. An entry used since the scan is spared
(an input's mtime, a prediction's ``used``, is checked again as it is deleted)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from . import atomic
from .errors import ShowdownError
from .probabilities import FLOOR, compact_row, expand_row, index_dtype

#: Bump when what an entry means changes (scoring-relevant code, the entry format); old entries are
#: then simply never looked up again.
CACHE_VERSION: Final = "v2"
DEFAULT_DIR_NAME: Final = ".showdown_cache"
#: The kinds of entries that count against the size limit and are evicted.
KINDS: Final = ("inputs", "predictions")
#: The default size limit: 10 GB holds about 16,000 posts' prepared inputs at 448.
DEFAULT_MAX_SIZE: Final = 10 * 1000**3
#: A process rescans the folder after writing this fraction of the limit...
RESCAN_FRACTION: Final = 0.04
#: ...and then evicts down to this fraction of it (room for other writers until their next scan).
PRUNE_TO: Final = 0.8
#: Temporary files older than this are a killed writer's leftovers (seconds).
STALE_PARTIAL_S: Final = 3600.0
#: The prediction database, in the version folder.
PREDICTIONS_DB: Final = "predictions.sqlite"
#: The prediction database's log is moved into the file after this many pages (4 kB each).
WAL_PAGES: Final = 100
#: How long a process waits for another's write to the prediction database (seconds).
BUSY_TIMEOUT_S: Final = 30.0
#: SQLite's default page, the unit the database file grows and shrinks by (bytes).
_PAGE: Final = 4096
_MAGIC: Final = b"TSC1"
_HEADER: Final = struct.Struct("<4sIQI")  # magic, crc32, payload length, json length
_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class CachedInput:
    """A prepared input and how long preparing it took when it was computed."""

    array: npt.NDArray[np.float32]
    preprocess_s: float


@dataclass(frozen=True)
class CachedPrediction:
    """A post's probability row ``[T]`` float32 (float16 precision, 0 below the floor) with the times
    measured when it was computed (reported as such, marked cached)."""

    probabilities: npt.NDArray[np.float32]
    preprocess_s: float
    inference_s: float


@dataclass(frozen=True)
class KindUsage:
    """What one kind of entry holds: entries, bytes, and the least recent use (epoch seconds)."""

    entries: int = 0
    bytes: int = 0
    oldest_use: float | None = None


@dataclass(frozen=True)
class PruneOutcome:
    """What a prune found and left: bytes before and after, entries deleted."""

    before: int
    after: int
    deleted: int


_SIZE_UNITS: Final = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str, name: str = "size") -> int:
    """Bytes from ``10GB``, ``500MB``, ``1.5GiB`` or a plain number of bytes (decimal units as
    disks count, ``KiB``... binary); raises ValueError naming the option ``name`` and the text."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{name} must be a size such as 10GB, 500MB or bytes, got {text!r}")
    value = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if value < 1:
        raise ValueError(f"{name} must be more than 0 bytes, got {text!r}")
    return value


def format_size(size: float) -> str:
    """``602.1 kB``, ``2.9 GB``: decimal units, as :func:`parse_size` reads them."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def digest(*parts: object) -> str:
    """A cache key: the sha256 of the parts' text, separated so that ('ab', 'c') != ('a', 'bc')."""
    hasher = hashlib.sha256()
    for part in parts:
        text = str(part).encode("utf-8")
        hasher.update(len(text).to_bytes(8, "little"))
        hasher.update(text)
    return hasher.hexdigest()


_file_hashes: dict[tuple[str, int, int, int], Future[str]] = {}
_file_hashes_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """The sha256 of a file, computed once per process for each (path, size, mtime, inode); a second
    caller of a file being hashed waits for that hash instead of starting another."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _file_hashes_lock:
        pending = _file_hashes.get(key)
        if pending is None:
            pending = _file_hashes[key] = Future()
            owner = True
        else:
            owner = False
    if owner:
        try:
            hasher = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    hasher.update(chunk)
            pending.set_result(hasher.hexdigest())
        except BaseException as exc:
            with _file_hashes_lock:
                del _file_hashes[key]
            pending.set_exception(exc)
    return pending.result()


def prehash_folder(folder: Path) -> None:
    """Hash a model folder's files in the background, so that the hash is ready when the model has
    loaded: loading leaves a core idle, hashing 400 MB takes half a second."""

    def run() -> None:
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                try:
                    file_sha256(path)
                except OSError:
                    continue

    threading.Thread(target=run, name="showdown-prehash", daemon=True).start()


def _stat_row(path: Path) -> list[Any]:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _encode(header: Mapping[str, Any], payload: bytes) -> bytes:
    meta = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    crc = zlib.crc32(payload, zlib.crc32(meta))
    return _HEADER.pack(_MAGIC, crc, len(payload), len(meta)) + meta + payload


def _decode(data: bytes) -> tuple[dict[str, Any], memoryview] | None:
    """The header and payload of an entry (a view of ``data``: a prepared input is 0.6 MB, and
    slicing ``bytes`` copied it twice), or None when the entry is not whole and intact."""
    if len(data) < _HEADER.size:
        return None
    magic, crc, payload_length, meta_length = _HEADER.unpack_from(data)
    body = memoryview(data)[_HEADER.size :]
    if magic != _MAGIC or len(body) != meta_length + payload_length:
        return None
    meta, payload = body[:meta_length], body[meta_length:]
    if zlib.crc32(payload, zlib.crc32(meta)) != crc:
        return None
    try:
        header = json.loads(bytes(meta))
    except ValueError:
        return None
    return (header, payload) if isinstance(header, dict) else None


def _array_entry(array: npt.NDArray[Any]) -> tuple[dict[str, Any], bytes]:
    """Store an array exactly; float arrays holding only 0..255 integers (an 8-bit image scaled by 1)
    are stored as uint8, a quarter of the size, and come back bit-identical."""
    stored = array
    if array.dtype == np.float32 and array.size:
        as_bytes = array.astype(np.uint8)
        if np.array_equal(as_bytes, array):
            stored = as_bytes
    contiguous = np.ascontiguousarray(stored)
    header = {"dtype": contiguous.dtype.str, "as": array.dtype.str, "shape": list(array.shape)}
    return header, contiguous.tobytes()


def _array_from(header: Mapping[str, Any], payload: memoryview) -> npt.NDArray[Any]:
    stored = np.frombuffer(payload, dtype=np.dtype(str(header["dtype"])))
    shape = tuple(int(n) for n in header["shape"])
    return stored.reshape(shape).astype(np.dtype(str(header["as"])))


class ShowdownCache:
    """The cache folder; thread-safe and safe for concurrent processes (see the module docstring).

    ``max_size`` (bytes) bounds what the entries take; None leaves the folder unbounded."""

    def __init__(self, root: Path, max_size: int | None = DEFAULT_MAX_SIZE) -> None:
        self.root = Path(root)
        self.max_size = max_size
        self._base = self.root / CACHE_VERSION
        self._lock = threading.Lock()
        self._pruning = threading.Lock()
        #: Bytes this process wrote since its last scan; starts full so that the first write scans.
        self._unscanned = float("inf")
        #: What the entries took after this process's last scan (bytes).
        self._after_scan = 0
        self._db_path = self._base / PREDICTIONS_DB
        #: The prediction database's connection, opened on first use; used under ``_db_lock``.
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()

    def close(self) -> None:
        """Close the prediction database (the last connection to it checkpoints its log into the
        file); a later use opens it again."""
        with self._db_lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None

    # -- entries ---------------------------------------------------------------------------------

    def _input_path(self, key: str) -> Path:
        return self._base / "inputs" / key[:2] / f"{key}.entry"

    def _read_input(self, key: str) -> tuple[dict[str, Any], memoryview] | None:
        path = self._input_path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        entry = _decode(data)
        if entry is not None:
            # A use: least recently used entries are evicted first. Evicted meanwhile: this read
            # still got the entry whole.
            with contextlib.suppress(OSError):
                os.utime(path)
        return entry

    def _write(self, path: Path, data: bytes, *, prepared_input: bool = False) -> None:
        """Write ``data`` at ``path`` atomically; an unwritable cache only costs the speed-up."""
        try:
            if not self.root.is_dir():
                self._mark_folder()
            if self._make_room(len(data), displaces_predictions=not prepared_input):
                atomic.write_bytes(path, data)
        except OSError:
            return

    def _predictions(self, *, create: bool) -> sqlite3.Connection | None:
        """The prediction database's connection (call holding ``_db_lock``), opened on first use;
        None when there is no database and ``create`` is false. Raises OSError, sqlite3.Error."""
        if self._db is None:
            if not create and not self._db_path.is_file():
                return None
            if create:
                self._base.mkdir(parents=True, exist_ok=True)
            try:
                self._db = _open_predictions(self._db_path)
            except sqlite3.OperationalError as exc:
                # Only a folder this process cannot write is read as an immutable file; before, a
                # busy database was too, and the process wrote nothing to it for the rest of the run.
                if create or exc.sqlite_errorcode & 0xFF not in _CANNOT_WRITE:
                    raise
                self._db = _open_read_only(self._db_path)
        return self._db

    def _read_prediction(self, key: str) -> tuple[dict[str, Any], memoryview] | None:
        try:
            with self._db_lock:
                db = self._predictions(create=False)
                if db is None:
                    return None
                found = db.execute(_SELECT, (key,)).fetchone()
                if found is None or not isinstance(found[0], bytes):
                    return None
                entry = _decode(found[0])
                if entry is not None:
                    # A use: least recently used entries are evicted first. A database that
                    # cannot be written to still serves the hit.
                    with contextlib.suppress(sqlite3.Error):
                        db.execute(_TOUCH, (time.time(), key))
                return entry
        except (OSError, sqlite3.Error):
            return None

    def _write_prediction(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``; an unwritable cache only costs the speed-up."""
        try:
            if not self.root.is_dir():
                self._mark_folder()
            self._make_room(len(key) + len(value), displaces_predictions=True)
            with self._db_lock:
                db = self._predictions(create=True)
                if db is not None:
                    db.execute(_INSERT, (key, value, time.time()))
        except (OSError, sqlite3.Error):
            return

    def _make_room(self, incoming: int, *, displaces_predictions: bool) -> bool:
        """Count a write before it happens; past :data:`RESCAN_FRACTION` of the limit, scan and
        evict down to :data:`PRUNE_TO` of it less the entry about to be written (one thread).

        Returns whether to write it. A prepared input never displaces predictions (they are all a
        rerun with new cut-offs needs, a thousandth of an input's size): its scan evicts inputs
        only, and an input that would not fit beside the predictions is not stored. Before, two
        xdist workers writing inputs into a small cache evicted 597 of 600 predictions."""
        if self.max_size is None:
            return True
        with self._lock:
            self._unscanned += incoming
            due = self._unscanned >= RESCAN_FRACTION * self.max_size
        if due and self._pruning.acquire(blocking=False):
            try:
                with self._lock:
                    self._unscanned = incoming
                outcome = self.prune(
                    max(0, int(PRUNE_TO * self.max_size) - incoming), inputs_only=not displaces_predictions
                )
                with self._lock:
                    self._after_scan = outcome.after
            finally:
                self._pruning.release()
        if displaces_predictions:
            return True
        with self._lock:
            fits = self._after_scan + self._unscanned <= self.max_size
            if not fits:
                self._unscanned -= incoming
        return fits

    def _mark_folder(self) -> None:
        """Keep the cache out of version control and backups, as pytest does with .pytest_cache."""
        self.root.mkdir(parents=True, exist_ok=True)
        for name, text in (
            (".gitignore", "# created by pytest-tagger-showdown\n*\n"),
            ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n"),
        ):
            target = self.root / name
            if not target.exists():
                target.write_text(text, encoding="utf-8")

    # -- size: usage, eviction, clearing ---------------------------------------------------------

    def _input_files(self) -> list[tuple[int, int, Path]]:
        """(mtime in ns, size, path) of every whole prepared input; deletes stale partial files."""
        found: list[tuple[int, int, Path]] = []
        now = time.time()
        try:
            shards = list(os.scandir(self._base / "inputs"))
        except OSError:
            return found
        for shard in shards:
            try:
                files = list(os.scandir(shard.path))
            except OSError:
                continue
            for item in files:
                try:
                    stat = item.stat()
                except OSError:
                    continue  # evicted by another process meanwhile
                if item.name.endswith(".entry"):
                    found.append((stat.st_mtime_ns, stat.st_size, Path(item.path)))
                elif item.name.endswith(".partial") and now - stat.st_mtime > STALE_PARTIAL_S:
                    Path(item.path).unlink(missing_ok=True)
        return found

    def _prediction_rows(self) -> list[tuple[float, int, str]]:
        """(last use in epoch seconds, bytes, key) of every prediction, least recently used first;
        none when the database cannot be read."""
        try:
            with self._db_lock:
                db = self._predictions(create=False)
                return [] if db is None else db.execute(_SCAN).fetchall()
        except (OSError, sqlite3.Error):
            return []

    def _delete_predictions(self, rows: Iterable[tuple[float, int, str]], excess: int) -> int:
        """Delete ``rows`` in order, in one transaction, until they held ``excess`` bytes; a row
        used since the scan (its ``used`` changed) is spared. Returns the rows deleted."""
        freed = deleted = 0
        try:
            with self._db_lock:
                db = self._predictions(create=False)
                if db is None:
                    return 0
                db.execute("BEGIN IMMEDIATE")
                try:
                    for used, size, key in rows:
                        if freed >= excess:
                            break
                        if db.execute(_DELETE, (key, used)).rowcount == 1:
                            freed, deleted = freed + size, deleted + 1
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                # Give the room back to the file system: deleting rows leaves pages part full
                # (incremental_vacuum frees only empty ones: 3,000 rows pruned to 94 left 50
                # pages), so the file is rewritten, then the log that holds it moved in and cut.
                with contextlib.suppress(sqlite3.Error):
                    db.execute("VACUUM")
            self._checkpoint()
        except (OSError, sqlite3.Error):
            return 0
        return deleted

    def _stale_folders(self) -> list[Path]:
        """Folders of other cache versions (``v1``... holding this layout's kinds) and this
        version's earlier ``predictions/`` folder of files: never read again, so evicted first.
        Nothing else in the folder is ever touched."""
        try:
            folders = [p for p in self.root.iterdir() if p.is_dir() and p.name != CACHE_VERSION]
        except OSError:
            return []
        stale = [p for p in folders if _VERSION_NAME.fullmatch(p.name) and _holds_cache_kinds(p)]
        earlier = self._base / "predictions"
        return [*stale, earlier] if earlier.is_dir() else stale

    def usage(self) -> dict[str, KindUsage]:
        """Entries, bytes on disk and least recent use per kind (``stale`` = other cache versions'
        files); the predictions' bytes are the database's files."""
        inputs = self._input_files()
        oldest = min((mtime for mtime, _, _ in inputs), default=None)
        predictions = self._prediction_rows()
        result = {
            "inputs": KindUsage(
                len(inputs), sum(size for _, size, _ in inputs), None if oldest is None else oldest / 1e9
            ),
            "predictions": KindUsage(
                len(predictions), self._database_bytes(), predictions[0][0] if predictions else None
            ),
        }
        stale = [p for folder in self._stale_folders() for p in folder.rglob("*") if p.is_file()]
        result["stale"] = KindUsage(len(stale), sum(_size(p) for p in stale))
        return result

    def prune(self, max_size: int, *, inputs_only: bool = False) -> PruneOutcome:
        """Delete other versions' folders, then the least recently used prepared inputs, then (unless
        ``inputs_only``) the least recently used predictions, until the cache takes at most
        ``max_size`` bytes on disk (the prediction database's files as they are). Safe while other
        processes read and write the cache."""
        stale = sum(_size(p) for folder in self._stale_folders() for p in folder.rglob("*") if p.is_file())
        for folder in self._stale_folders():
            shutil.rmtree(folder, ignore_errors=True)
        # Prepared inputs go first, least recently used first: a prediction is about 1 kB against
        # 0.6 MB, and it alone lets a rerun with new cut-offs skip the model.
        inputs = sorted(self._input_files())
        database = self._database_bytes()
        total = sum(size for _, size, _ in inputs) + database
        before, deleted = total + stale, 0
        for mtime, size, path in inputs:
            if total <= max_size:
                break
            try:
                if path.stat().st_mtime_ns != mtime:
                    continue  # used since the scan: no longer among the least recently used
                path.unlink()
            except OSError:
                continue  # evicted by another process meanwhile
            total -= size
            deleted += 1
        self._remove_empty_shards()
        # Rows are deleted by what they hold; the file also holds the key index and free room, so
        # the excess on disk is scaled to row bytes and the file measured again after; a second
        # pass, with the file compact, takes what the first fell short by.
        if total > max_size and not inputs_only:
            # The log is transient (up to WAL_PAGES pages): moved into the file first, so that no
            # prediction is evicted for room that the checkpoint gives back.
            self._checkpoint()
            now = self._database_bytes()
            total, database = total + now - database, now
        for _ in range(0 if inputs_only else 2):
            predictions = self._prediction_rows()
            if total <= max_size or not predictions:
                break
            stored = sum(size for _, size, _ in predictions)
            excess = (total - max_size + _PAGE) * stored // max(database, 1)
            deleted += self._delete_predictions(predictions, excess)
            now = self._database_bytes()
            total, database = total + now - database, now
        return PruneOutcome(before, total, deleted)

    def _checkpoint(self) -> None:
        """Move the prediction database's log into its file and cut the log to nothing."""
        with contextlib.suppress(OSError, sqlite3.Error), self._db_lock:
            db = self._predictions(create=False)
            if db is not None:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _database_bytes(self) -> int:
        """What the prediction database's file takes on disk. Its log (up to :data:`WAL_PAGES`
        pages, moved into the file before any row is evicted) and shared-memory index (32 kB) live
        only while connections are open and are not counted: a second trial found predictions
        evicted for them when another xdist worker's read held the log."""
        return _size(self._db_path)

    def _remove_empty_shards(self) -> None:
        """Shard folders that eviction emptied (a writer that just made one makes it again)."""
        with contextlib.suppress(OSError):
            for shard in os.scandir(self._base / "inputs"):
                with contextlib.suppress(OSError):
                    os.rmdir(shard.path)

    def clear(self) -> int:
        """Delete every entry and record of the layout: prepared inputs, the prediction database
        with its ``-wal`` and ``-shm`` files, fingerprint records, other versions' folders. Other
        files, the folder and its markers stay. Returns the bytes freed; raises ShowdownError
        naming what could not be deleted (after deleting the rest)."""
        self.close()
        doomed = [
            *(path for _, _, path in self._input_files()),
            *(Path(f"{self._db_path}{suffix}") for suffix in ("", "-wal", "-shm")),
            *(self._base / "taggers").glob("*.json"),
        ]
        freed, failed = 0, []
        stale = [path for folder in self._stale_folders() for path in folder.rglob("*") if path.is_file()]
        for path in [*doomed, *stale]:
            size = _size(path)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                failed.append(f"{path}: {exc.strerror or exc}")
                continue
            freed += size
        for folder in self._stale_folders():
            inner = [path for path in folder.rglob("*") if path.is_dir()]
            for path in sorted(inner, key=lambda path: len(path.parts), reverse=True):
                with contextlib.suppress(OSError):
                    path.rmdir()
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._remove_empty_shards()
        for folder in (self._base / "inputs", self._base / "taggers", self._base):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if failed:
            more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
            raise ShowdownError(f"cleared {format_size(freed)}, but could not delete {failed[0]}{more}")
        return freed

    # -- prepared inputs -------------------------------------------------------------------------

    def has_input(self, key: str) -> bool:
        """Whether a prepared input is stored under ``key`` (not read, not checked)."""
        return self._input_path(key).is_file()

    def get_input(self, key: str) -> CachedInput | None:
        entry = self._read_input(key)
        if entry is None:
            return None
        header, payload = entry
        try:
            return CachedInput(_array_from(header, payload), float(header["preprocess_s"]))
        except (KeyError, TypeError, ValueError):
            return None

    def put_input(self, key: str, array: npt.NDArray[Any], preprocess_s: float) -> None:
        header, payload = _array_entry(array)
        self._write(
            self._input_path(key),
            _encode({**header, "preprocess_s": preprocess_s}, payload),
            prepared_input=True,
        )

    # -- predictions -----------------------------------------------------------------------------

    def get_prediction(self, key: str) -> CachedPrediction | None:
        """The probability row stored under ``key``, or None (missing, evicted, corrupt, or the
        database unreadable)."""
        entry = self._read_prediction(key)
        if entry is None:
            return None
        header, payload = entry
        try:
            size, count = int(header["size"]), int(header["count"])
            index = np.dtype(str(header["index_dtype"]))
            if len(payload) != count * (index.itemsize + 2):
                return None
            columns = np.frombuffer(payload, dtype=index, count=count)
            values = np.frombuffer(payload, dtype="<f2", offset=count * index.itemsize)
            if count and int(columns.max()) >= size:
                return None
            row = expand_row(size, columns, values)
            return CachedPrediction(row, float(header["preprocess_s"]), float(header["inference_s"]))
        except (KeyError, TypeError, ValueError):
            return None

    def put_prediction(
        self,
        key: str,
        probabilities: npt.ArrayLike,
        preprocess_s: float,
        inference_s: float,
        columns: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Store a post's probability row ``[T]`` compactly (the tags at or above the floor, float16);
        ``columns``: those tags' columns when known (``Prediction.stored_columns``)."""
        row = np.asarray(probabilities, dtype=np.float32).ravel()
        columns, values = compact_row(row, FLOOR, columns)
        dtype = index_dtype(row.size)
        header = {
            "size": int(row.size),
            "count": int(columns.size),
            "floor": FLOOR,
            "index_dtype": dtype,
            "preprocess_s": preprocess_s,
            "inference_s": inference_s,
        }
        payload = columns.astype(dtype).tobytes() + values.tobytes()
        self._write_prediction(key, _encode(header, payload))

    # -- tagger fingerprints ---------------------------------------------------------------------

    def fingerprint(self, tagger_key: str) -> dict[str, Any] | None:
        """What :meth:`remember_fingerprint` stored for a tagger, if its model files are unchanged
        since (same path, size, mtime and inode): lets a warm run skip loading the model at all."""
        try:
            record = json.loads((self._base / "taggers" / f"{tagger_key}.json").read_text("utf-8"))
            files = record["files"]
            if not files or any(_stat_row(Path(row[0])) != row for row in files):
                return None
            values = record["values"]
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
        return values if isinstance(values, dict) else None

    def remember_fingerprint(self, tagger_key: str, files: Iterable[Path], values: Mapping[str, Any]) -> None:
        record = {"files": [_stat_row(Path(path)) for path in files], "values": dict(values)}
        data = json.dumps(record, sort_keys=True).encode("utf-8")
        self._write(self._base / "taggers" / f"{tagger_key}.json", data)


_VERSION_NAME: Final = re.compile(r"v\d+")


def _holds_cache_kinds(folder: Path) -> bool:
    return (folder / PREDICTIONS_DB).is_file() or any(
        (folder / kind).is_dir() for kind in (*KINDS, "taggers")
    )


_SELECT: Final = "SELECT value FROM predictions WHERE key = ?"
_TOUCH: Final = "UPDATE predictions SET used = ? WHERE key = ?"
_INSERT: Final = "INSERT OR REPLACE INTO predictions (key, value, used) VALUES (?, ?, ?)"
_SCAN: Final = "SELECT used, length(key) + length(value), key FROM predictions ORDER BY used"
_DELETE: Final = "DELETE FROM predictions WHERE key = ? AND used = ?"
#: SQLite's primary result codes for a file that is not a database, or a damaged one.
_NOT_A_DATABASE: Final = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
#: SQLite's primary result codes for a database this process may read but not write.
_CANNOT_WRITE: Final = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)
#: How often the switch to WAL is tried again while another connection holds the write lock (seconds).
_WAL_RETRY_S: Final = 0.005


def _use_wal(db: sqlite3.Connection) -> None:
    """Put the database in WAL mode: readers never wait for the writer. A network file system
    refuses WAL (SQLite's documentation), and the default journal then stays.

    SQLite answers the switch with SQLITE_BUSY at once, without waiting out the busy timeout, while
    another connection holds the write lock of a file still in the default journal mode: the moment
    two xdist workers make the database together (CI lost one write of 600 to it). So the switch is
    tried again for up to :data:`BUSY_TIMEOUT_S`. Raises sqlite3.Error."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY_S)


def _connect(path: Path) -> sqlite3.Connection:
    """Open the prediction database, making it (and its table) if need be. Raises sqlite3.Error."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        _use_wal(db)
        db.execute("PRAGMA synchronous = NORMAL")
        # The log counts against the size limit: moved into the file every 100 pages (400 kB; the
        # default is 1,000) and cut back to nothing after.
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
        db.execute("PRAGMA journal_size_limit = 0").fetchall()
        db.execute(
            "CREATE TABLE IF NOT EXISTS predictions "
            "(key TEXT PRIMARY KEY, value BLOB NOT NULL, used REAL NOT NULL) WITHOUT ROWID"
        )
    except BaseException:
        db.close()
        raise
    return db


def _open_read_only(path: Path) -> sqlite3.Connection:
    """The database opened read-only as an immutable file, for a cache folder this process cannot
    write: SQLite cannot otherwise read a WAL database there (it must make its ``-shm`` index, as its
    documentation of WAL says). It then skips the ``-wal`` log, which the last connection of the run
    that wrote it has moved into the file. Raises sqlite3.Error."""
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?immutable=1",
        uri=True,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=False,
    )


def _open_predictions(path: Path) -> sqlite3.Connection:
    """:func:`_connect`; a file at ``path`` that is not a database (or a damaged one) is the cache's
    own, so it is removed with its ``-wal``/``-shm`` files and made again, unless another process
    has replaced it meanwhile. Raises OSError, sqlite3.Error."""
    try:
        inode = path.stat().st_ino
    except OSError:
        inode = None
    try:
        return _connect(path)
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode & 0xFF not in _NOT_A_DATABASE:
            raise
    with contextlib.suppress(OSError):
        if path.stat().st_ino == inode:
            for suffix in ("-wal", "-shm", ""):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    return _connect(path)


def is_cache_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a showdown cache (its ``CACHEDIR.TAG`` marker, or a version folder of
    this layout): the ``cache`` commands clear and prune nothing else."""
    return (folder / "CACHEDIR.TAG").is_file() or (
        (folder / CACHE_VERSION).is_dir() and _holds_cache_kinds(folder / CACHE_VERSION)
    )


def check_cache_dir(folder: Path) -> None:
    """A cache folder must be new, empty or a cache already: the cache writes its own layout and
    evicts within it, and a project folder (``showdown_cache_dir = .``) is none of those. Raises
    ValueError."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--showdown-cache-dir: {folder} is a file, not a folder")
    reason = atomic.unwritable_reason(folder)
    if reason is not None:
        raise ValueError(f"--showdown-cache-dir: {folder} cannot be written ({reason})")
    if folder.is_dir() and not is_cache_folder(folder) and any(folder.iterdir()):
        raise ValueError(
            f"--showdown-cache-dir: {folder} holds other files and no showdown cache: "
            "choose a new or empty folder"
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def model_fingerprint(files: Sequence[Path]) -> str:
    """One hash for a model's files (weights, tag list, ...): a change to any of them changes it."""
    return digest(*(f"{Path(path).name}={file_sha256(Path(path))}" for path in files))


# -- the ``tagger-showdown cache`` command ---------------------------------------------------------

#: pytest's configuration files: the plugin's default cache lives beside the one pytest reads.
_ROOT_MARKERS: Final = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def default_dir(start: Path) -> Path:
    """The plugin's default cache folder seen from ``start``: ``.showdown_cache`` in the nearest
    folder up from ``start`` holding a pytest configuration file (where pytest finds its ini file),
    else in ``start`` (the folder pytest was started in)."""
    for folder in (start, *start.parents):
        if any((folder / name).is_file() for name in _ROOT_MARKERS):
            return folder / DEFAULT_DIR_NAME
    return start / DEFAULT_DIR_NAME
