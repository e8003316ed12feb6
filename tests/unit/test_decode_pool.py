"""The decode pool: worker processes give the model input bit for bit as the in-process steps do."""

from __future__ import annotations

import io
import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_tagger_showdown import Dataset
from pytest_tagger_showdown.decode_pool import MIN_CORES, MIN_POSTS, DecodePool, Recipe, recipe, worker_count
from pytest_tagger_showdown.errors import DecodeWorkerError, ImageError
from pytest_tagger_showdown.taggers.base import LoadOptions
from pytest_tagger_showdown.taggers.control import ControlTagger
from pytest_tagger_showdown.taggers.preprocess import decode_image, preprocess
from pytest_tagger_showdown.taggers.spec import Preprocessing, TaggerSpec
from pytest_tagger_showdown.taggers.wd14 import WD14Tagger
from tests.helpers.datasets import PostSpec, make_dataset
from tests.helpers.modelmaker import write_tiny_tagger


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def pictures() -> list[bytes]:
    """A JPEG, a transparent PNG, a palette PNG, an EXIF-rotated JPEG, greyscale; odd shapes."""
    rng = np.random.default_rng(3)
    noisy = Image.fromarray(rng.integers(0, 256, (301, 517, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (200, 90, 4), dtype=np.uint8), "RGBA")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return [
        encoded(noisy, "JPEG", quality=85),
        encoded(rgba, "PNG"),
        encoded(noisy.convert("P"), "PNG"),
        encoded(noisy, "JPEG", exif=exif.tobytes()),
        encoded(noisy.convert("L"), "PNG"),
        encoded(Image.new("RGB", (448, 448), (10, 200, 30)), "PNG"),
    ]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pool") / "data.db"
    specs = [PostSpec(id=1 + i, rating="g", tags={}, image=data) for i, data in enumerate(pictures())]
    specs.append(PostSpec(id=99, rating="g", tags={}, image=b"not an image"))
    return make_dataset(path, specs)


@pytest.fixture(scope="module")
def pool(db: Path) -> Iterator[DecodePool]:
    decode = DecodePool(db, 2)
    yield decode
    decode.close()


@pytest.mark.parametrize(
    "steps",
    [Recipe(Preprocessing(), 448), Recipe(Preprocessing(channel_order="RGB", scale=1 / 255), 224)],
    ids=["wd14", "rgb-0..1-224"],
)
def test_worker_inputs_equal_the_in_process_steps_bit_for_bit(
    db: Path, pool: DecodePool, steps: Recipe
) -> None:
    with Dataset(db) as dataset:
        for post_id in range(1, len(pictures()) + 1):
            expected = preprocess(decode_image(dataset.image(post_id)), steps.preprocessing, steps.size)
            array, seconds = pool.prepare(post_id, steps)
            assert array.dtype == np.float32
            assert array.shape == (steps.size, steps.size, 3)
            np.testing.assert_array_equal(array, expected)
            assert array.tobytes() == expected.tobytes()
            assert 0 < seconds < 60


def test_a_corrupt_image_raises_the_same_error_as_in_process(db: Path, pool: DecodePool) -> None:
    with Dataset(db) as dataset, pytest.raises(ImageError) as in_process:
        decode_image(dataset.image(99))
    with pytest.raises(ImageError) as from_worker:
        pool.prepare(99, Recipe(Preprocessing(), 448))
    # Pillow names its buffer object by address, which differs between processes.
    assert re.sub("0x[0-9a-f]+", "", str(from_worker.value)) == re.sub(
        "0x[0-9a-f]+", "", str(in_process.value)
    )
    with pytest.raises(ImageError, match="post 12345 has no image"):
        pool.prepare(12345, Recipe(Preprocessing(), 448))


@pytest.mark.parametrize(
    ("cores", "xdist", "planned", "expected"),
    [
        (1, 1, 1000, 0),  # one core: processes only add copies
        (MIN_CORES, 1, MIN_POSTS - 1, 0),  # a handful of posts: starting workers costs more
        (MIN_CORES, 1, MIN_POSTS, MIN_CORES),
        (2, 1, 30_000, 0),  # two cores: threads decode faster (measured, issue 14)
        (16, 1, 30_000, 16),
        (16, 4, 30_000, 4),  # each of 4 xdist workers its share
        (16, 8, 30_000, 0),  # a share of 2 cores: threads
    ],
)
def test_worker_count_follows_the_machine(cores: int, xdist: int, planned: int, expected: int) -> None:
    assert worker_count(cores, xdist, planned) == expected


def test_only_taggers_with_the_wd14_steps_get_a_recipe(tmp_path: Path) -> None:
    folder = write_tiny_tagger(tmp_path / "model")
    spec = TaggerSpec(name="tiny", backend="onnx", source=str(folder))
    wd14 = WD14Tagger(spec, folder, LoadOptions())
    assert recipe(wd14) == Recipe(Preprocessing(), 448)

    class OwnSteps(WD14Tagger):
        def prepare(self, post: object, image: bytes) -> object:
            return np.zeros((448, 448, 3), np.float32)

    assert recipe(OwnSteps(spec, folder, LoadOptions())) is None
    assert recipe(ControlTagger(TaggerSpec(name="control", backend="control"))) is None


def worker_pids(pool: DecodePool) -> list[int]:
    """The pool's processes (the standard library's executor keeps them by pid)."""
    return list(pool._executor._processes)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:  # a zombie is gone too
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_concurrent_requests_each_get_their_own_posts_input(db: Path, pool: DecodePool) -> None:
    """Many threads asking at once, in shuffled order: every answer is its own post's (issue 14)."""
    steps = Recipe(Preprocessing(), 448)
    ids = [6, 1, 4, 2, 5, 3] * 3
    with Dataset(db) as dataset:
        expected = {i: preprocess(decode_image(dataset.image(i)), steps.preprocessing, 448) for i in set(ids)}
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda post_id: pool.prepare(post_id, steps)[0], ids))
    for post_id, array in zip(ids, answers, strict=True):
        assert array.tobytes() == expected[post_id].tobytes()


def prepare_until_it_fails(decode: DecodePool, steps: Recipe) -> None:
    for _ in range(50):  # the executor notices a death within a few calls
        decode.prepare(2, steps)
        time.sleep(0.05)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_a_killed_process_fails_the_posts_in_hand_and_fresh_processes_take_the_next(db: Path) -> None:
    """Before: the broken executor failed every later post with BrokenProcessPool, not a ShowdownError."""
    steps = Recipe(Preprocessing(), 448)
    decode = DecodePool(db, 2)
    try:
        decode.prepare(1, steps)
        first = worker_pids(decode)
        os.kill(first[0], signal.SIGKILL)
        with pytest.raises(DecodeWorkerError, match="a decoding process stopped while this image"):
            prepare_until_it_fails(decode, steps)
        with Dataset(db) as dataset:
            expected = preprocess(decode_image(dataset.image(3)), steps.preprocessing, 448)
        assert decode.prepare(3, steps)[0].tobytes() == expected.tobytes()
        assert not set(worker_pids(decode)) & set(first)
    finally:
        decode.close()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_closing_leaves_no_process_behind(db: Path) -> None:
    decode = DecodePool(db, 2)
    decode.prepare(1, Recipe(Preprocessing(), 448))
    pids = worker_pids(decode)
    assert len(pids) == 2
    assert all(alive(pid) for pid in pids)
    decode.close()
    assert not any(alive(pid) for pid in pids)
