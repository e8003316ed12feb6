"""A cheap model, so that decoding is the bottleneck: the showdown against the machine's limits.

The model (``cheap_model``) is WD14-shaped at 448 but does little: it pools the picture to 28x28 and
runs one dense layer to 2,000 tags, a few milliseconds on a CPU core, while decoding and preprocessing
a Danbooru-sized image takes tens of milliseconds. Two comparisons, in one run, side by side:

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
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.conftest import RunPytest, ShowdownRun, write_dataset
from benchmarks.test_throughput import raw_model, ready_tensors
from fixtures.generators.onnx_model import Dense, build_wd14_onnx, write_selected_tags
from pytest_tagger_showdown import Dataset
from pytest_tagger_showdown.cache import CACHE_VERSION
from pytest_tagger_showdown.decode_pool import available_cores
from pytest_tagger_showdown.taggers.preprocess import decode_image, preprocess
from pytest_tagger_showdown.taggers.spec import Preprocessing

#: Images: 1500x1500 JPEGs and 1200x900 PNGs, as many Danbooru originals.
IMAGES = int(os.environ.get("SHOWDOWN_BENCH_DECODE_IMAGES", "48"))
SHAPES = ((1500, 1500, "JPEG"), (1200, 900, "PNG"))
#: Alternating rounds; the fastest of each side is compared.
ROUNDS = 2
#: The cheap model: 448 pooled by 16 to 28x28x3 features, one dense layer to this many tags.
POOL, TAGS = 16, 2000


@pytest.fixture(scope="module")
def cheap_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cheap")
    general = [f"tag_{i:04d}" for i in range(TAGS - 4)]
    write_selected_tags(folder / "selected_tags.csv", general)
    rng = np.random.default_rng(5)
    features = 3 * (448 // POOL) ** 2
    weight = rng.normal(0, 0.05, (features, TAGS)).astype(np.float32)
    bias = rng.normal(-4, 1, TAGS).astype(np.float32)  # most tags unlikely, a few dozen above 0.35
    build_wd14_onnx(folder / "model.onnx", [Dense(weight, bias)], pool=POOL)
    return folder


@pytest.fixture(scope="module")
def decode_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tags = [f"tag_{i:04d}" for i in range(TAGS - 4)]
    return write_dataset(tmp_path_factory.mktemp("decode") / "data.db", IMAGES, tags, shapes=SHAPES)


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
        shutil.rmtree(cache / CACHE_VERSION / "predictions", ignore_errors=True)
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
