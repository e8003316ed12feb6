"""On-disk caches that make a rerun of an unchanged tagger on an unchanged dataset cost almost nothing.

Two kinds of entries, both content-addressed (a key is the sha256 of everything the value depends on):

* prepared inputs, keyed by how the tagger prepares images (its ``prepare`` implementation, the
  :class:`Preprocessing` spec and the input size) and the stored image's md5: taggers that share a
  preprocessing (every WD14 model at 448) share them, and a new model skips decoding;
* predictions, keyed by the model files' hashes, the preprocessing, the image md5 and the thresholds
  (a prediction keeps only the tags above the cut-offs), with the preprocessing and inference times
  measured when they were computed.

Layout under the cache folder (``.showdown_cache/`` in the rootdir unless ``--showdown-cache-dir``)::

    v1/inputs/ab/abcdef....entry        prepared input arrays
    v1/predictions/ab/abcdef....entry   predictions
    v1/taggers/abcdef....json           a tagger's model fingerprint, valid while its files are unchanged

Several pytest-xdist workers (or several runs) may share a folder: every entry is written to a unique
temporary file beside its final name and moved into place with ``os.replace``, which is atomic on one
file system, so a reader sees a whole entry or none. Two writers of one key write the same content, and
the last rename wins. Each entry carries a checksum; an entry that does not read back whole (a disk that
filled up, an edited file) is treated as missing and recomputed. Failures are never cached.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from . import atomic
from .prediction import Prediction

#: Bump when what an entry means changes (scoring-relevant code, the entry format); old entries are
#: then simply never looked up again.
CACHE_VERSION: Final = "v1"
DEFAULT_DIR_NAME: Final = ".showdown_cache"
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
    """A prediction with the times measured when it was computed (reported as such, marked cached)."""

    prediction: Prediction
    preprocess_s: float
    inference_s: float


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


def _decode(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """The header and payload of an entry, or None when the entry is not whole and intact."""
    if len(data) < _HEADER.size:
        return None
    magic, crc, payload_length, meta_length = _HEADER.unpack_from(data)
    body = data[_HEADER.size :]
    if magic != _MAGIC or len(body) != meta_length + payload_length:
        return None
    meta, payload = body[:meta_length], body[meta_length:]
    if zlib.crc32(payload, zlib.crc32(meta)) != crc:
        return None
    try:
        header = json.loads(meta)
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


def _array_from(header: Mapping[str, Any], payload: bytes) -> npt.NDArray[Any]:
    stored = np.frombuffer(payload, dtype=np.dtype(str(header["dtype"])))
    shape = tuple(int(n) for n in header["shape"])
    return stored.reshape(shape).astype(np.dtype(str(header["as"])))


class ShowdownCache:
    """The cache folder; thread-safe and safe for concurrent processes (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._base = self.root / CACHE_VERSION

    # -- entries ---------------------------------------------------------------------------------

    def _path(self, kind: str, key: str) -> Path:
        return self._base / kind / key[:2] / f"{key}.entry"

    def _read(self, kind: str, key: str) -> tuple[dict[str, Any], bytes] | None:
        try:
            data = self._path(kind, key).read_bytes()
        except OSError:
            return None
        return _decode(data)

    def _write(self, path: Path, data: bytes) -> None:
        """Write ``data`` at ``path`` atomically; an unwritable cache only costs the speed-up."""
        try:
            if not self.root.is_dir():
                self._mark_folder()
            atomic.write_bytes(path, data)
        except OSError:
            return

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

    # -- prepared inputs -------------------------------------------------------------------------

    def get_input(self, key: str) -> CachedInput | None:
        entry = self._read("inputs", key)
        if entry is None:
            return None
        header, payload = entry
        try:
            return CachedInput(_array_from(header, payload), float(header["preprocess_s"]))
        except (KeyError, TypeError, ValueError):
            return None

    def put_input(self, key: str, array: npt.NDArray[Any], preprocess_s: float) -> None:
        header, payload = _array_entry(array)
        self._write(self._path("inputs", key), _encode({**header, "preprocess_s": preprocess_s}, payload))

    # -- predictions -----------------------------------------------------------------------------

    def get_prediction(self, key: str) -> CachedPrediction | None:
        entry = self._read("predictions", key)
        if entry is None:
            return None
        header, payload = entry
        try:
            probabilities = _array_from(header["probabilities"], payload) if payload else None
            prediction = Prediction(
                tags={str(k): float(v) for k, v in header["tags"].items()},
                rating=header["rating"],
                rating_confidences={str(k): float(v) for k, v in header["rating_confidences"].items()},
                probabilities=probabilities,
            )
            return CachedPrediction(prediction, float(header["preprocess_s"]), float(header["inference_s"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def put_prediction(
        self, key: str, prediction: Prediction, preprocess_s: float, inference_s: float
    ) -> None:
        header: dict[str, Any] = {
            "tags": dict(prediction.tags),
            "rating": prediction.rating,
            "rating_confidences": dict(prediction.rating_confidences),
            "preprocess_s": preprocess_s,
            "inference_s": inference_s,
        }
        payload = b""
        if prediction.probabilities is not None:
            row = np.asarray(prediction.probabilities, dtype=np.float32)
            header["probabilities"] = {"dtype": row.dtype.str, "as": row.dtype.str, "shape": list(row.shape)}
            payload = np.ascontiguousarray(row).tobytes()
        self._write(self._path("predictions", key), _encode(header, payload))

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


def model_fingerprint(files: Sequence[Path]) -> str:
    """One hash for a model's files (weights, tag list, ...): a change to any of them changes it."""
    return digest(*(f"{Path(path).name}={file_sha256(Path(path))}" for path in files))
