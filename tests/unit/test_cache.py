"""The on-disk cache: exact round trips, corrupt entries, fingerprints, and several writer processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from pytest_tagger_showdown import Prediction
from pytest_tagger_showdown.cache import ShowdownCache, digest, file_sha256, model_fingerprint


def prediction(seed: int) -> Prediction:
    rng = np.random.default_rng(seed)
    return Prediction(
        tags={f"tag_{seed}": 0.75, "solo": 0.5 + seed / 1000},
        rating="q",
        rating_confidences={"g": 0.1, "s": 0.2, "q": 0.6, "e": 0.1},
        probabilities=rng.random(1000, dtype=np.float32),
    )


def same_prediction(left: Prediction, right: Prediction) -> bool:
    assert left.probabilities is not None
    assert right.probabilities is not None
    return left == right and np.array_equal(left.probabilities, right.probabilities)


def test_predictions_round_trip_exactly_with_their_times(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path)
    original = prediction(3)
    cache.put_prediction("k" * 64, original, 0.125, 0.9375)
    hit = cache.get_prediction("k" * 64)
    assert hit is not None
    assert same_prediction(hit.prediction, original)
    assert hit.prediction.probabilities is not None
    assert hit.prediction.probabilities.dtype == np.float32
    assert (hit.preprocess_s, hit.inference_s) == (0.125, 0.9375)
    assert cache.get_prediction("j" * 64) is None


def test_a_prediction_without_probabilities(tmp_path: Path) -> None:
    cache = ShowdownCache(tmp_path)
    cache.put_prediction("a" * 64, Prediction(tags={"x": 1.0}, rating=None), 0.0, 0.5)
    hit = cache.get_prediction("a" * 64)
    assert hit is not None
    assert hit.prediction == Prediction(tags={"x": 1.0}, rating=None)
    assert hit.prediction.probabilities is None


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
    (entry,) = (tmp_path / "v1" / "inputs").rglob("*.entry")
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
    cache.put_prediction("c" * 64, prediction(1), 0.1, 0.2)
    (entry,) = (tmp_path / "v1" / "predictions").rglob("*.entry")
    assert callable(damage)
    entry.write_bytes(damage(entry.read_bytes()))
    assert cache.get_prediction("c" * 64) is None
    cache.put_prediction("c" * 64, prediction(1), 0.1, 0.2)
    hit = cache.get_prediction("c" * 64)
    assert hit is not None
    assert same_prediction(hit.prediction, prediction(1))


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
    cache.put_prediction("e" * 64, prediction(2), 0.1, 0.2)
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
        cache.put_prediction(f"{i % 5:064d}", prediction(i % 5), float(i % 5), 1.0)
        cache.put_input(f"{i % 5:064d}", np.full((64, 64, 3), i % 5, np.float32), 0.5)
        for key in range(min(i + 1, 5)):
            hit = cache.get_prediction(f"{key:064d}")
            if hit is None or not same_prediction(hit.prediction, prediction(key)):
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
        assert same_prediction(hit.prediction, prediction(key))
    assert list(tmp_path.rglob("*.partial")) == []
