"""Shared pieces of the benchmarks: the stand-in ViT, a dataset of realistic images, and in-process
showdown runs timed from the first item's start to the last item's end.

The benchmarks compare the showdown with the raw model in the same process, one after the other, so
the ratios hold on any machine; absolute times are recorded, never asserted.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  (imported once here: an in-process run would unload it again)
import pytest
from PIL import Image

from benchmarks.item_clock import ItemTimer
from benchmarks.standin_vit import ensure_model
from pytest_tagger_showdown import Dataset, Post, TagCategory
from pytest_tagger_showdown.cache import ShowdownCache

#: Images in the throughput and cache benchmarks: about a second each for the stand-in ViT here.
IMAGES = int(os.environ.get("SHOWDOWN_BENCH_IMAGES", "24"))


def realistic_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Smooth shapes plus grain: compresses like an illustration, not like noise or a flat colour."""
    coarse = rng.integers(0, 256, (height // 64 + 2, width // 64 + 2, 3), dtype=np.uint8)
    smooth = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    grain = rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(smooth, np.float64) + grain, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


#: Sizes and formats of Danbooru originals: mostly multi-megapixel JPEGs, some PNGs.
SHAPES = ((2000, 3000, "JPEG"), (1500, 1500, "JPEG"), (1600, 1200, "PNG"))


def write_dataset(
    path: Path,
    count: int,
    tags: list[str],
    *,
    seed: int = 7,
    small: bool = False,
    shapes: tuple[tuple[int, int, str], ...] = SHAPES,
) -> Path:
    """``count`` posts with realistic images (or 64x64 ones when ``small``; else ``shapes`` in turn)
    and 30 tags each (all of ``tags`` when fewer)."""
    rng = np.random.default_rng(seed)
    with Dataset(path, writable=True) as dataset:
        for i in range(count):
            width, height, fmt = (64, 64, "PNG") if small else shapes[i % len(shapes)]
            data = encode(realistic_image(rng, width, height), fmt)
            chosen = rng.choice(len(tags), size=min(30, len(tags)), replace=False)
            post = Post(
                id=1000 + i,
                md5=hashlib.md5(data).hexdigest(),
                rating="gsqe"[i % 4],
                file_ext=fmt.lower().replace("jpeg", "jpg"),
                tags={tags[j]: TagCategory.GENERAL for j in chosen},
            )
            dataset.add_post(post, {"id": post.id}, data)
    return path


def mean_entry_bytes(folder: Path, kind: str) -> float:
    """The mean size of one entry of ``kind`` (``inputs``, ``predictions``) in a cache folder, as
    the cache counts it (a prediction: its key and value in the database)."""
    cache = ShowdownCache(folder, max_size=None)
    usage = cache.usage()[kind]
    cache.close()
    return usage.bytes / usage.entries if usage.entries else 0.0


def vocabulary(folder: Path) -> list[str]:
    """The general and character tag names of a model's selected_tags.csv (ratings left out)."""
    lines = (folder / "selected_tags.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split(",")[1] for line in lines if line.split(",")[2] != "9"]


@pytest.fixture(scope="session")
def standin() -> Path:
    """The ViT-B/16@448 stand-in's folder (built on first use, a few seconds)."""
    return ensure_model()


@pytest.fixture(scope="session")
def images_db(tmp_path_factory: pytest.TempPathFactory, standin: Path) -> Path:
    return write_dataset(tmp_path_factory.mktemp("images") / "data.db", IMAGES, vocabulary(standin))


@dataclass
class ShowdownRun:
    """One in-process pytest run: its result, the item loop's time and the whole run's time."""

    result: pytest.RunResult
    timer: ItemTimer
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


RunPytest = Callable[..., ShowdownRun]


#: Plugins of this environment that have nothing to do with a showdown but cost every pytest run
#: time (hypothesis imports itself at the end of every run: about 2 s here).
UNRELATED_PLUGINS = ("hypothesispytest", "pytest_httpserver", "anyio")


@pytest.fixture
def run_pytest(pytester: pytest.Pytester) -> RunPytest:
    """Run pytest in this process (as a user's ``pytest`` command would, minus interpreter start),
    with this plugin and pytest-benchmark, without unrelated plugins."""

    def run(*args: str) -> ShowdownRun:
        timer = ItemTimer()
        blocked = [arg for name in UNRELATED_PLUGINS for arg in ("-p", f"no:{name}")]
        began = time.perf_counter()
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", *blocked, "-q", *args, plugins=[timer]
        )
        return ShowdownRun(result, timer, time.perf_counter() - began)

    return run


@pytest.fixture(scope="session")
def cold_runs() -> dict[str, ShowdownRun]:
    """The throughput benchmark's cold run (cache written), reused by the cache benchmark."""
    return {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The throughput benchmark first: its cold run is the cache benchmark's cold run."""
    items.sort(key=lambda item: item.path.name != "test_throughput.py")
