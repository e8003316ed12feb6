"""WD14 preprocessing is pixel-for-pixel the official demo's, on the images that tend to break it.

``reference`` below is the demo's steps written out plainly, independently of the package; every case
compares the package's array with it for exact equality (no tolerance).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageOps

from pytest_tagger_showdown.errors import ImageError
from pytest_tagger_showdown.taggers.preprocess import (
    HARD_PIXEL_LIMIT,
    ImageTooLargeError,
    decode_image,
    preprocess,
)
from pytest_tagger_showdown.taggers.spec import Preprocessing
from tests.helpers.datasets import bilevel_png


def reference(data: bytes, size: int = 448) -> npt.NDArray[np.float32]:
    """The official WD14 demo: RGBA, composite over white, pad to a white square, BICUBIC, BGR."""
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    canvas = Image.new("RGBA", image.size, (255, 255, 255))
    canvas.alpha_composite(image)
    image = canvas.convert("RGB")
    max_dim = max(image.size)
    pad_left = (max_dim - image.size[0]) // 2
    pad_top = (max_dim - image.size[1]) // 2
    padded = Image.new("RGB", (max_dim, max_dim), (255, 255, 255))
    padded.paste(image, (pad_left, pad_top))
    if max_dim != size:
        padded = padded.resize((size, size), Image.BICUBIC)
    array = np.asarray(padded, dtype=np.float32)
    return array[:, :, ::-1]


def package(data: bytes, size: int = 448) -> npt.NDArray[np.float32]:
    return preprocess(decode_image(data), Preprocessing(), size)


def _gradient(width: int, height: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=-1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _save(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def rgba(width: int = 300, height: int = 200) -> bytes:
    pixels = _gradient(width, height)
    alpha = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, axis=0)
    return _save(Image.fromarray(np.dstack([pixels, alpha]), "RGBA"))


def palette_transparent_index() -> bytes:
    image = Image.fromarray(_gradient(120, 90)).quantize(16)
    return _save(image, transparency=3)


def palette_alpha_table() -> bytes:
    image = Image.fromarray(_gradient(90, 120)).quantize(16)
    return _save(image, transparency=bytes(range(0, 256, 16)))


def rgb_colour_key() -> bytes:
    pixels = _gradient(80, 60)
    pixels[10:30, 10:30] = (1, 2, 3)
    return _save(Image.fromarray(pixels), transparency=(1, 2, 3))


def greyscale() -> bytes:
    return _save(Image.fromarray(_gradient(150, 100)[..., 0], "L"))


def greyscale_alpha() -> bytes:
    pixels = _gradient(100, 150)
    return _save(Image.fromarray(np.dstack([pixels[..., 0], pixels[..., 1]]), "LA"))


def sixteen_bit() -> bytes:
    values = np.linspace(0, 65535, 200 * 120).reshape(120, 200).astype(np.uint16)
    image = Image.fromarray(values)
    data = _save(image)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    return data


def cmyk_jpeg() -> bytes:
    image = Image.fromarray(_gradient(160, 100)).convert("CMYK")
    data = _save(image, "JPEG", quality=90)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    return data


def bilevel() -> bytes:
    return _save(Image.fromarray(_gradient(64, 32)).convert("1"))


def gif_transparent() -> bytes:
    image = Image.fromarray(_gradient(50, 70)).quantize(32)
    return _save(image, "GIF", transparency=5)


def webp_alpha() -> bytes:
    return _save(Image.open(io.BytesIO(rgba(120, 80))), "WEBP", lossless=True)


def solid(width: int, height: int) -> Callable[[], bytes]:
    return lambda: _save(Image.fromarray(_gradient(width, height, seed=width * height)))


CASES: dict[str, Callable[[], bytes]] = {
    "rgba": rgba,
    "palette-transparent-index": palette_transparent_index,
    "palette-alpha-table": palette_alpha_table,
    "rgb-colour-key": rgb_colour_key,
    "L": greyscale,
    "LA": greyscale_alpha,
    "I;16": sixteen_bit,
    "cmyk-jpeg": cmyk_jpeg,
    "bilevel": bilevel,
    "gif-transparent": gif_transparent,
    "webp-alpha": webp_alpha,
    "1x1": solid(1, 1),
    "3x2000": solid(3, 2000),
    "2000x3": solid(2000, 3),
    "448x448": solid(448, 448),
    "odd-padding-449x300": solid(449, 300),
}


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_matches_the_reference_exactly(make: Callable[[], bytes]) -> None:
    data = make()
    ours, theirs = package(data), reference(data)
    assert ours.dtype == np.float32
    assert ours.shape == theirs.shape == (448, 448, 3)
    assert np.array_equal(ours, theirs)


def test_model_size_comes_from_the_caller() -> None:
    data = rgba(50, 30)
    assert np.array_equal(package(data, 384), reference(data, 384))


def test_sixteen_bit_greyscale_is_converted_as_the_reference_does() -> None:
    """Pillow clips 16-bit values at 255 when converting: lossy, but what the models were scored on."""
    values = np.array([[0, 100, 255, 4000]], dtype=np.uint16)
    array = preprocess(decode_image(_save(Image.fromarray(values))), Preprocessing(size=4), 4)
    assert array[1, :, 0].tolist() == [0.0, 100.0, 255.0, 255.0]


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 700),
    height=st.integers(1, 700),
    mode=st.sampled_from(["RGB", "RGBA", "L", "LA", "P"]),
    seed=st.integers(0, 2**16),
)
def test_random_sizes_and_modes_match_the_reference(width: int, height: int, mode: str, seed: int) -> None:
    pixels = _gradient(width, height, seed)
    if mode in ("RGBA", "LA"):
        alpha = np.random.default_rng(seed).integers(0, 256, size=(height, width), dtype=np.uint8)
        image = Image.fromarray(np.dstack([pixels, alpha]), "RGBA").convert(mode)
    else:
        image = Image.fromarray(pixels).convert(mode)
    data = _save(image)
    assert np.array_equal(package(data), reference(data))


def _oriented_jpeg(orientation: int) -> tuple[bytes, npt.NDArray[np.uint8]]:
    """A 60x40 JPEG stored sideways with EXIF ``orientation``, and its upright pixels as decoded."""
    stored = Image.fromarray(_gradient(60, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = _save(stored, "JPEG", quality=95, exif=exif)
    decoded = Image.open(io.BytesIO(data))
    return data, np.asarray(ImageOps.exif_transpose(decoded))


def test_exif_orientation_is_applied_before_the_reference_steps() -> None:
    """Orientation=6 (rotate 90 clockwise to view): the model sees the 40x60 upright picture."""
    data, upright = _oriented_jpeg(6)
    assert upright.shape == (60, 40, 3)
    ours = preprocess(decode_image(data), Preprocessing(size=60), 60)
    # The reference steps on the upright pixels: pad 40 wide to 60 with white, 10 columns each side.
    expected = np.full((60, 60, 3), 255, dtype=np.float32)
    expected[:, 10:50] = upright
    assert np.array_equal(ours, expected[:, :, ::-1])
    sideways = preprocess(decode_image(data), Preprocessing(size=60, exif_orientation=False), 60)
    assert not np.array_equal(sideways, ours)
    assert Preprocessing() != Preprocessing(exif_orientation=False)  # so the cache keys differ


def test_images_up_to_pillows_hard_limit_decode_and_larger_ones_fail_naming_the_size() -> None:
    """8420x12092 (101.8 MP, a real Danbooru original) is above Pillow's warning (89.5 MP) only."""
    data = bilevel_png(8420, 12092)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing leaks out either
        image = decode_image(data)
    assert image.size == (8420, 12092)
    assert image.getpixel((0, 0)) == 0
    assert image.getpixel((8419, 12091)) == 255
    assert HARD_PIXEL_LIMIT == 2 * Image.MAX_IMAGE_PIXELS
    too_large = bilevel_png(13400, 13400)  # 179.6 MP, above 2 x 89,478,485
    with pytest.raises(ImageTooLargeError, match=r"179560000 pixels.*178,956,970 pixels"):
        decode_image(too_large)


@pytest.mark.parametrize("data", [b"", b"not an image", rgba()[:200]], ids=["empty", "garbage", "truncated"])
def test_undecodable_images_raise_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        package(data)
