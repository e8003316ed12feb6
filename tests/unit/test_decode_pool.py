"""The decode pool: worker processes give the model input bit for bit as the in-process steps do."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_tagger_showdown import Dataset
from pytest_tagger_showdown.decode_pool import MIN_POSTS, DecodePool, Recipe, recipe, worker_count
from pytest_tagger_showdown.errors import ImageError
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
        (2, 1, MIN_POSTS - 1, 0),  # a handful of posts: starting workers costs more
        (2, 1, MIN_POSTS, 2),
        (16, 1, 30_000, 16),
        (16, 4, 30_000, 4),  # each of 4 xdist workers its share
        (2, 4, 30_000, 1),  # at least one
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
