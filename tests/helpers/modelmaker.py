"""Tiny real-format WD14 taggers for tests, built in a temporary folder in milliseconds.

The models are genuine ``model.onnx`` + ``selected_tags.csv`` pairs in SmilingWolf's layout (written by
the same builder as the demo models), so tests exercise the real loading and inference code. Their
output is a known function of the input: the picture is averaged to one colour (mean blue, green and
red in 0..1, after the WD14 reference preprocessing) and each tag's probability is
``sigmoid(mean_bgr @ weight + bias)``. A square solid-colour picture therefore gives probabilities a
test can compute by hand, and :meth:`TinyWD14.expected` computes them for any picture.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from fixtures.generators.onnx_model import (
    Dense,
    build_wd14_onnx,
    forward,
    write_selected_tags,
)
from pytest_tagger_showdown.taggers.preprocess import decode_image, preprocess
from pytest_tagger_showdown.taggers.spec import Preprocessing, TaggerSpec, Thresholds

Array = npt.NDArray[np.float32]

#: The tags of :func:`write_tiny_tagger`'s model (after the 4 ratings).
TINY_GENERAL = ("simple_background", "red_background", "blue_background", "solo", "1girl", "smile")
TINY_CHARACTERS = ("hatsune_miku", "someone_else")


@dataclass(frozen=True)
class TinyWD14:
    """A model folder and what it computes."""

    folder: Path
    #: ``selected_tags.csv`` names in output order: general, sensitive, questionable, explicit, then tags.
    names: tuple[str, ...]
    layer: Dense
    size: int

    def spec(self, name: str = "tiny-wd14", thresholds: Thresholds | None = None) -> TaggerSpec:
        """A spec that loads this folder through the ``onnx`` backend (default WD14 thresholds)."""
        return TaggerSpec(
            name=name,
            backend="onnx",
            source=str(self.folder),
            thresholds=thresholds or Thresholds(),
        )

    def expected(self, image: bytes) -> dict[str, float]:
        """The probability the model gives each tag for ``image`` (reference preprocessing)."""
        pixels = preprocess(decode_image(image), Preprocessing(), self.size)[np.newaxis]
        row = forward(pixels, [self.layer], self.size)[0]
        return dict(zip(self.names, (float(p) for p in row), strict=True))


def logit(probability: float) -> float:
    """The bias that makes a zero-weight output exactly ``probability``."""
    return math.log(probability / (1 - probability))


def make_wd14_folder(
    directory: Path,
    general: Sequence[str] = ("white_background", "black_background"),
    characters: Sequence[str] = (),
    *,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    fixed_batch: int | None = None,
    size: int = 448,
    input_name: str = "input",
    output_name: str = "output",
) -> TinyWD14:
    """Write a tiny WD14 model into ``directory`` (created if needed).

    ``weight`` is ``[3, n]`` over the mean (blue, green, red) in 0..1, ``bias`` ``[n]``, where ``n`` is
    4 ratings + general + characters; both default to zeros (every probability 0.5).
    ``fixed_batch=1`` makes a v2-style model; ``size`` below 448 makes inference cheaper still.
    """
    directory.mkdir(parents=True, exist_ok=True)
    names = write_selected_tags(directory / "selected_tags.csv", general, characters)
    count = len(names)
    layer = Dense(
        np.zeros((3, count), np.float32) if weight is None else np.asarray(weight, np.float32),
        np.zeros(count, np.float32) if bias is None else np.asarray(bias, np.float32),
    )
    build_wd14_onnx(
        directory / "model.onnx",
        [layer],
        pool=size,
        size=size,
        fixed_batch=fixed_batch,
        input_name=input_name,
        output_name=output_name,
    )
    return TinyWD14(folder=directory, names=tuple(names), layer=layer, size=size)


def make_constant_folder(
    directory: Path,
    probabilities: Mapping[str, float],
    characters: Sequence[str] = (),
    *,
    fixed_batch: int | None = None,
    size: int = 448,
) -> TinyWD14:
    """A model that outputs ``probabilities`` for every picture, whatever it shows.

    Keys are rating names (``general``, ...) or tags; tags not in ``characters`` are general. Outputs
    not mentioned get probability 0.01.
    """
    general = [
        name
        for name in probabilities
        if name not in characters and name not in ("general", "sensitive", "questionable", "explicit")
    ]
    names = ["general", "sensitive", "questionable", "explicit", *general, *characters]
    bias = [logit(probabilities.get(name, 0.01)) for name in names]
    return make_wd14_folder(directory, general, characters, bias=bias, fixed_batch=fixed_batch, size=size)


def make_brightness_folder(directory: Path, *, fixed_batch: int | None = None, size: int = 448) -> TinyWD14:
    """A model that sees brightness: ``white_background`` on bright pictures, ``black_background`` on dark.

    On a square solid picture of grey level ``v`` (0..255): ``white_background`` is
    ``sigmoid(20 * (v / 255 - 0.5))``, ``black_background`` its mirror image; the rating is always
    ``general`` (0.9, the others 0.1).
    """
    per_channel = 20 / 3
    weight = np.zeros((3, 6), np.float32)
    weight[:, 4] = per_channel
    weight[:, 5] = -per_channel
    bias = [logit(0.9), logit(0.1), logit(0.1), logit(0.1), -10.0, 10.0]
    return make_wd14_folder(
        directory,
        ("white_background", "black_background"),
        weight=weight,
        bias=bias,
        fixed_batch=fixed_batch,
        size=size,
    )


def solid_png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    """A solid-colour RGB PNG (keep it square to avoid the white padding the WD14 steps add)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def write_tiny_tagger(folder: Path, seed: int = 0, *, fixed_batch: int | None = None) -> Path:
    """A real WD14-format model (pools 448x448 to 8x8, one dense layer): fast, and its predictions
    vary with the image, so a wrong image-to-result pairing changes scores."""
    folder.mkdir(parents=True, exist_ok=True)
    names = write_selected_tags(folder / "selected_tags.csv", TINY_GENERAL, TINY_CHARACTERS)
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.6, (3 * 8 * 8, len(names))).astype(np.float32)
    bias = rng.normal(-0.5, 1.0, len(names)).astype(np.float32)
    build_wd14_onnx(folder / "model.onnx", [Dense(weight, bias)], pool=56, fixed_batch=fixed_batch)
    return folder
