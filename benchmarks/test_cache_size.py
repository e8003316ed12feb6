"""What the bounded cache costs and saves, measured against a baseline in the same process.

* A rerun of the stand-in ViT with only a new ``--showdown-threshold`` against its cold run: the
  prediction cache keeps probability rows keyed without cut-offs, so the rerun never loads the model.
  Target: >= 5x faster.
* Prepared inputs stored losslessly compressed (zlib, as a candidate) against stored raw: bytes per
  entry, and the time to read an entry back, which a cached run pays per image. Compression is kept
  only if reading does not get slower.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.conftest import RunPytest, mean_entry_bytes, vocabulary, write_dataset
from pytest_tagger_showdown import Dataset
from pytest_tagger_showdown.cache import ShowdownCache, _array_from, _decode
from pytest_tagger_showdown.taggers.preprocess import decode_image, preprocess
from pytest_tagger_showdown.taggers.spec import Preprocessing

#: Images of the threshold benchmark: few, so that the cold run takes about a minute here.
THRESHOLD_IMAGES = int(os.environ.get("SHOWDOWN_BENCH_THRESHOLD_IMAGES", "8"))


def test_a_new_threshold_reruns_without_the_model(
    benchmark: Any, run_pytest: RunPytest, standin: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    benchmark.group = "cache: new threshold, stand-in ViT-B/16@448, CPU"
    folder = tmp_path_factory.mktemp("threshold")
    db = write_dataset(folder / "data.db", THRESHOLD_IMAGES, vocabulary(standin))
    args = [
        "--tagger",
        f"onnx:{standin}",
        "--showdown-db",
        str(db),
        "--showdown-cache-dir",
        str(folder / "c"),
    ]
    cold = run_pytest(*args)
    cold.result.assert_outcomes(passed=THRESHOLD_IMAGES)
    rerun = benchmark.pedantic(
        lambda: run_pytest(*args, "--showdown-threshold", "general=0.5,character=0.9"),
        rounds=1,
        iterations=1,
        warmup_rounds=0,
    )
    rerun.result.assert_outcomes(passed=THRESHOLD_IMAGES)
    rerun.result.stdout.fnmatch_lines(["*(cached)*"])
    figures = {
        "images": THRESHOLD_IMAGES,
        "cold_wall_s": round(cold.wall_s, 3),
        "rerun_wall_s": round(rerun.wall_s, 3),
        "speedup": round(cold.wall_s / rerun.wall_s, 1),
        "prediction_entry_bytes": round(mean_entry_bytes(folder / "c", "predictions")),
        "input_entry_bytes": round(mean_entry_bytes(folder / "c", "inputs")),
    }
    benchmark.extra_info.update(figures)
    print(f"\nthreshold rerun: {figures}")


def test_compressed_inputs_against_raw(
    benchmark: Any, images_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    benchmark.group = "cache: prepared inputs, raw vs zlib"
    cache = ShowdownCache(tmp_path_factory.mktemp("inputs"), max_size=None)
    with Dataset(images_db) as dataset:
        arrays = [
            preprocess(decode_image(dataset.image(post.id)), Preprocessing(), 448) for post in dataset.posts()
        ]
    keys = [f"{index:064d}" for index in range(len(arrays))]
    for key, array in zip(keys, arrays, strict=True):
        cache.put_input(key, array, 0.0)
    raw = [cache._input_path(key).read_bytes() for key in keys]
    packed = []
    for data in raw:
        header, payload = _decode(data) or ({}, b"")
        packed.append((header, zlib.compress(payload, 1)))

    def read_raw() -> None:
        for key in keys:
            cache.get_input(key)

    def read_packed() -> None:
        for (header, payload), data in zip(packed, raw, strict=True):
            _decode(data)  # the same checksum work as a raw read, then the inflate
            _array_from(header, zlib.decompress(payload))

    timings: dict[str, list[float]] = {"raw": [], "zlib": []}
    for _ in range(3):  # alternating, fastest of each
        for name, read in (("raw", read_raw), ("zlib", read_packed)):
            began = time.perf_counter()
            read()
            timings[name].append(time.perf_counter() - began)
    benchmark.pedantic(read_raw, rounds=1, iterations=1, warmup_rounds=0)
    raw_bytes = sum(len(data) for data in raw)
    zlib_bytes = sum(len(payload) for _, payload in packed)
    figures = {
        "images": len(arrays),
        "raw_bytes_per_entry": raw_bytes // len(raw),
        "zlib_bytes_per_entry": zlib_bytes // len(raw),
        "size_ratio": round(zlib_bytes / raw_bytes, 3),
        "raw_read_ms": round(1000 * min(timings["raw"]) / len(raw), 3),
        "zlib_read_ms": round(1000 * min(timings["zlib"]) / len(raw), 3),
        "read_slowdown": round(min(timings["zlib"]) / min(timings["raw"]), 2),
        "zlib_write_ms": round(_compress_ms(arrays), 2),
    }
    assert np.array_equal(_array_from(packed[0][0], zlib.decompress(packed[0][1])), arrays[0])
    benchmark.extra_info.update(figures)
    print(f"\ncompressed inputs: {figures}")


def _compress_ms(arrays: list[Any]) -> float:
    began = time.perf_counter()
    for array in arrays:
        zlib.compress(np.asarray(array, np.uint8).tobytes(), 1)
    return 1000 * (time.perf_counter() - began) / len(arrays)
