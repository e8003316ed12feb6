"""Pure functions from image bytes to a model's input array; no model, no I/O beyond decoding."""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError
from .spec import Preprocessing

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "area": Image.Resampling.BOX}


def decode_image(data: bytes) -> Image.Image:
    """Decode image bytes fully (the first frame of an animation), or raise :class:`ImageError`."""
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.seek(0)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot decode the image ({len(data)} bytes): {exc}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"refusing a decompression bomb: {exc}") from exc
    return image


def composite_on_white(image: Image.Image) -> Image.Image:
    """Flatten any mode (palette transparency, LA, 16-bit, CMYK) to RGB over an opaque white canvas.

    Every mode goes through Pillow's own ``convert("RGBA")``, exactly as the official WD14 demo does, even
    where that is lossy (16-bit greyscale clips at 255): the models were scored with those pixels.
    An RGB image without a transparent colour comes back as it is: compositing it is the identity, and
    skipping it saves a third of preprocessing a photo-sized JPEG.
    """
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    try:
        rgba = image.convert("RGBA")
    except ValueError as exc:
        raise ImageError(f"cannot convert a {image.mode} image to RGBA: {exc}") from exc
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def pad_to_square(image: Image.Image, padding: str) -> Image.Image:
    """Centre ``image`` on a square of side max(w, h), filled with white, black or repeated edges."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    left, top = (side - width) // 2, (side - height) // 2
    if padding == "edge":
        array = np.asarray(image)
        pads = ((top, side - height - top), (left, side - width - left), (0, 0))
        return Image.fromarray(np.pad(array, pads, mode="edge"))
    fill = (255, 255, 255) if padding == "white" else (0, 0, 0)
    square = Image.new("RGB", (side, side), fill)
    square.paste(image, (left, top))
    return square


def preprocess(image: Image.Image, spec: Preprocessing, size: int) -> npt.NDArray[np.float32]:
    """The model input for one image: ``[size, size, 3]`` float32 in the spec's channel order and scale.

    White padding follows the WD14 reference (pad the full image, then resize); edge and zero padding
    follow DeepDanbooru (resize to fit keeping the aspect ratio, then pad).
    """
    rgb = composite_on_white(image)
    resample = _RESAMPLE[spec.resize]
    if spec.padding == "white":
        square = pad_to_square(rgb, "white")
        if square.size[0] != size:
            square = square.resize((size, size), resample)
    else:
        width, height = rgb.size
        ratio = size / max(width, height)
        fitted = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        if fitted != rgb.size:
            rgb = rgb.resize(fitted, resample)
        square = pad_to_square(rgb, spec.padding)
    array = np.asarray(square, dtype=np.float32)
    if spec.channel_order == "BGR":
        array = array[:, :, ::-1]
    if spec.scale != 1.0:
        array = array * np.float32(spec.scale)
    return np.ascontiguousarray(array)
