"""Pure functions from image bytes to a model's input array; no model, no I/O beyond decoding."""

from __future__ import annotations

import io
import threading
import warnings
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError
from .spec import Preprocessing

#: Pillow's hard limit: it refuses (``DecompressionBombError``) above twice ``MAX_IMAGE_PIXELS``
#: (2 x 89,478,485); between the two it only warns. Real Danbooru originals reach 100 MP (8420 x 12092).
HARD_PIXEL_LIMIT: Final = 2 * (Image.MAX_IMAGE_PIXELS or 89_478_485)
#: One image above Pillow's warning size is decoded at a time per process, so that decoding threads
#: cannot hold several 300 MB bitmaps at once.
_LARGE_DECODE = threading.Lock()
#: The transposition that turns an image upright for each EXIF Orientation value (Pillow's own
#: table in ``ImageOps.exif_transpose``), for pixels decoded by something other than Pillow.
ORIENTATION_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageTooLargeError(ImageError):
    """An image above Pillow's hard pixel limit: refused before decoding."""


def decode_image(data: bytes) -> Image.Image:
    """Decode image bytes fully (the first frame of an animation), or raise :class:`ImageError`.

    Images up to Pillow's hard limit (:data:`HARD_PIXEL_LIMIT` pixels) decode; above it this raises
    :class:`ImageTooLargeError` naming the size, without decoding. Pillow's warning in between is
    not an error: a 100 MP original is a real image, and the reference steps handle it.
    """
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.seek(0)
            if image.width * image.height > (Image.MAX_IMAGE_PIXELS or HARD_PIXEL_LIMIT):
                with _LARGE_DECODE:
                    image.load()
            else:
                image.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"the image is too large to decode: {exc} (Pillow's limit is {HARD_PIXEL_LIMIT:,} pixels)"
        ) from exc
    except UnidentifiedImageError as exc:  # its message names the in-memory file object, not the image
        raise ImageError(
            f"cannot decode the image ({len(data)} bytes): not in an image format Pillow reads"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot decode the image ({len(data)} bytes): {exc}") from exc
    return image


def exif_orientation(image: Image.Image) -> int:
    """The image's EXIF Orientation (1..8; 1, upright, when absent or unreadable)."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, SyntaxError):
        return 1
    return value if isinstance(value, int) and value in ORIENTATION_TRANSPOSE else 1


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF Orientation says (``PIL.ImageOps.exif_transpose``); the image
    itself when it is upright already (no copy of a large bitmap for nothing)."""
    if exif_orientation(image) == 1:
        return image
    return ImageOps.exif_transpose(image)


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


def pad_to_square(image: Image.Image) -> Image.Image:
    """Centre ``image`` on a white square of side max(w, h) (offsets rounded down, as the demo)."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def preprocess(image: Image.Image, spec: Preprocessing, size: int) -> npt.NDArray[np.float32]:
    """The model input for one image by the WD14 reference steps: ``[size, size, 3]`` float32 in the
    spec's channel order and scale (``[448, 448, 3]`` BGR 0..255 for WD14), C-contiguous.

    Steps (REFERENCE 2): EXIF orientation (when the spec says so), composite over white, pad to a
    white square, BICUBIC to ``size``. DeepDanbooru's steps decode differently and live in
    ``taggers.deepdanbooru``; a spec with ``steps="deepdanbooru"`` raises ``ValueError`` here.
    """
    if spec.steps != "wd14":
        raise ValueError(f"preprocess() runs the WD14 steps, not {spec.steps!r}")
    if spec.exif_orientation:
        image = upright(image)
    square = pad_to_square(composite_on_white(image))
    if square.size[0] != size:
        square = square.resize((size, size), Image.Resampling.BICUBIC)
    pixels = np.asarray(square, dtype=np.uint8)
    if spec.channel_order == "BGR":
        pixels = pixels[:, :, ::-1]
    # Channels flipped on the 8-bit pixels and cast in one pass: 4x faster than flipping the float
    # array, and the same values (the cast is exact).
    array = np.ascontiguousarray(pixels, dtype=np.float32)
    return array * np.float32(spec.scale) if spec.scale != 1.0 else array
