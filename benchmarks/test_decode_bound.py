"""A cheap model, so that decoding is the bottleneck: the showdown against the machine's limits.

The model (:func:`build_cheap_model`) is WD14-shaped (``[N, 448, 448, 3]`` BGR 0..255 in, 2,000
sigmoid outputs) and runs a few operations: three strided 3x3 convolutions (32, 64, 128 channels), a
global average and one dense layer: about 2.3 ms of wall time (4.6 ms of CPU, two threads) per image
on the 2-core machine, 0.6% of the stand-in ViT. The images are 2000x3000 JPEGs, the issue's largest
shape, whose decoding and reference preprocessing costs about 80 ms of CPU each.

Why that cost: on a machine whose cores are all busy, a cold showdown does the decoding, the model
and its per-item work on the same cores, so it reaches at best decode / (decode + model CPU +
per-item CPU) of a pool that only decodes: the model must be cheap against decoding, a few percent
of it, for 0.9. The inputs-cached run reaches at best model / (model + per-item work) of the raw
model: the model must cost four times the per-item work (pytest's own item is 0.3 ms; the
showdown's item, scoring, recording and cache write about 1.7 ms here) for 0.8. On 2 cores both
cannot hold at once while the per-item work is 1.7 ms; this model keeps the cold comparison about
decoding, as the issue asks, and ``SHOWDOWN_BENCH_CHEAP_CHANNELS=48,96,192`` (5 ms) or
``64,128,256`` (8 ms) moves the balance towards the cached one (benchmarks/README.md).

Two comparisons, in one run, side by side:

* cold: the whole showdown with ``--showdown-no-cache`` (reading, decoding, preprocessing, inference,
  scoring, recording) against a process pool of one process per core doing only the decoding and the
  reference preprocessing of the same images (started, run, shut down): the machine's decode limit.
  Target: >= 0.9.
* inputs cached: a rerun whose prepared inputs are cached and whose predictions are not (as for a new
  model with the same preprocessing) against the raw ``session.run`` on ready tensors, one image at a
  time as the showdown runs them on a CPU, both loading the model. Target: >= 0.8.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.conftest import SHAPES, RunPytest, ShowdownRun, write_dataset
from benchmarks.test_throughput import raw_model, ready_tensors
from fixtures.generators.onnx_model import write_selected_tags
from pytest_tagger_showdown import Dataset
from pytest_tagger_showdown.cache import CACHE_VERSION, PREDICTIONS_DB
from pytest_tagger_showdown.decode_pool import available_cores
from pytest_tagger_showdown.taggers.preprocess import decode_image, preprocess
from pytest_tagger_showdown.taggers.spec import Preprocessing

#: Images: 2000x3000 JPEGs (the issue's largest shape).
IMAGES = int(os.environ.get("SHOWDOWN_BENCH_DECODE_IMAGES", "48"))
#: Alternating rounds; the fastest of each side is compared.
ROUNDS = int(os.environ.get("SHOWDOWN_BENCH_DECODE_ROUNDS", "4"))
#: The cheap model's convolution widths (each 3x3, stride 2) and its number of tags.
CHANNELS = tuple(int(c) for c in os.environ.get("SHOWDOWN_BENCH_CHEAP_CHANNELS", "32,64,128").split(","))
TAGS = 2000


def build_cheap_model(path: Path, seed: int = 5) -> None:
    """Write the cheap WD14-convention model: ``[N, 448, 448, 3]`` float32 0..255 in, ``[N, TAGS]``
    sigmoid out; most tags below 0.01, a few dozen above 0.35 per image, as a trained tagger."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["nchw", "inv_255"], ["x0"]),
    ]
    weights = [numpy_helper.from_array(np.array(1 / 255, np.float32), "inv_255")]
    previous, width = "x0", 3
    for i, channels in enumerate(CHANNELS):
        kernel = rng.normal(0, (2 / (9 * width)) ** 0.5, (channels, width, 3, 3)).astype(np.float32)
        weights += [
            numpy_helper.from_array(kernel, f"conv{i}_w"),
            numpy_helper.from_array(np.zeros(channels, np.float32), f"conv{i}_b"),
        ]
        nodes += [
            helper.make_node(
                "Conv",
                [previous, f"conv{i}_w", f"conv{i}_b"],
                [f"c{i}"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
            ),
            helper.make_node("Relu", [f"c{i}"], [f"x{i + 1}"]),
        ]
        previous, width = f"x{i + 1}", channels
    weights += [
        numpy_helper.from_array(rng.normal(0, 0.1, (width, TAGS)).astype(np.float32), "dense_w"),
        numpy_helper.from_array(rng.normal(-6.5, 2.3, TAGS).astype(np.float32), "dense_b"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [previous], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "dense_w", "dense_b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cheap_wd14",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 448, 448, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", TAGS])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def cheap_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cheap")
    write_selected_tags(folder / "selected_tags.csv", [f"tag_{i:04d}" for i in range(TAGS - 4)])
    build_cheap_model(folder / "model.onnx")
    return folder


@pytest.fixture(scope="module")
def decode_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tags = [f"tag_{i:04d}" for i in range(TAGS - 4)]
    return write_dataset(tmp_path_factory.mktemp("decode") / "data.db", IMAGES, tags, shapes=SHAPES[:1])


def _reference_input(data: bytes) -> int:
    return int(preprocess(decode_image(data), Preprocessing(), 448).shape[0])


def decode_pool(images: list[bytes]) -> float:
    """Seconds for one process per core to start, decode and preprocess every image, and stop."""
    began = time.perf_counter()
    with ProcessPoolExecutor(available_cores()) as pool:
        assert all(side == 448 for side in pool.map(_reference_input, images))
    return time.perf_counter() - began


def test_cold_and_cached_runs_keep_up_with_the_decode_limit_and_the_model(
    benchmark: Any,
    run_pytest: RunPytest,
    cheap_model: Path,
    decode_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    benchmark.group = "decode-bound: cheap WD14 model at 448, CPU"
    with Dataset(decode_db) as dataset:
        images = [dataset.image(post.id) for post in dataset.posts()]
    tensors = ready_tensors(decode_db)
    tagger = ("--tagger", f"onnx:{cheap_model}", "--showdown-db", str(decode_db))

    def cold() -> ShowdownRun:
        run = run_pytest(*tagger, "--showdown-no-cache")
        run.result.assert_outcomes(passed=IMAGES)
        return run

    def inputs_cached(cache: Path) -> ShowdownRun:
        for suffix in ("", "-wal", "-shm"):  # the prediction database (no run has it open now)
            Path(f"{cache / CACHE_VERSION / PREDICTIONS_DB}{suffix}").unlink(missing_ok=True)
        run = run_pytest(*tagger, "--showdown-cache-dir", str(cache))
        run.result.assert_outcomes(passed=IMAGES)
        return run

    cache = tmp_path_factory.mktemp("cache")
    run_pytest(*tagger, "--showdown-cache-dir", str(cache)).result.assert_outcomes(passed=IMAGES)
    raw_model(cheap_model / "model.onnx", tensors[:1])  # the model file into the page cache
    pools, colds, raws, cached = [], [], [], []
    for round_ in range(ROUNDS):
        pools.append(decode_pool(images))
        colds.append(cold() if round_ < ROUNDS - 1 else benchmark.pedantic(cold, rounds=1, iterations=1))
        raws.append(raw_model(cheap_model / "model.onnx", tensors)[0])
        cached.append(inputs_cached(cache))
    pool_s, raw_s = min(pools), min(raws)
    cold_items = min(run.timer.loop_s for run in colds)
    cached_items = min(run.timer.loop_s for run in cached)
    figures = {
        "images": IMAGES,
        "cores": available_cores(),
        "rounds": ROUNDS,
        "pool_s": round(pool_s, 3),
        "pool_images_per_s": round(IMAGES / pool_s, 1),
        "cold_items_s": round(cold_items, 3),
        "cold_wall_s": round(min(run.wall_s for run in colds), 3),
        "cold_images_per_s": round(IMAGES / cold_items, 1),
        "cold_ratio": round(pool_s / cold_items, 3),
        "raw_s_per_image": round(raw_s / IMAGES, 5),
        "raw_images_per_s": round(IMAGES / raw_s, 1),
        "cached_items_s": round(cached_items, 3),
        "cached_images_per_s": round(IMAGES / cached_items, 1),
        "cached_ratio": round(raw_s / cached_items, 3),
        "all_pool_s": [round(s, 3) for s in pools],
        "all_cold_items_s": [round(run.timer.loop_s, 3) for run in colds],
        "all_raw_s": [round(s, 3) for s in raws],
        "all_cached_items_s": [round(run.timer.loop_s, 3) for run in cached],
    }
    benchmark.extra_info.update(figures)
    print(f"\ndecode-bound: {figures}")
