"""DeepDanbooru (KichangKim) project folders, run with Keras: ``--tagger deepdanbooru:PATH``.

A project folder holds ``model-<name>.h5`` (or ``.keras``), ``tags.txt`` (one tag a line, in output
order) and optionally ``project.json`` (its ``model`` names the model file) and ``tags-character.txt``.
Keras and TensorFlow are imported only when such a tagger is loaded (``[deepdanbooru]`` extra).

Ratings are the ``rating:safe``, ``rating:questionable`` and ``rating:explicit`` outputs; the highest is
the prediction's rating. These models predate Danbooru's 2022 split of *safe* into *general* and
*sensitive*, so a predicted ``safe`` is scored correct on a g or an s post (``tags.RATING_MATCHES``):
it cannot tell the two apart, and counting it wrong on either would punish the model for a label it
never had. The price is that it cannot be wrong between g and s, which flatters it slightly there.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from ..dataset.post import Post
from ..errors import TaggerLoadError, TaggerRunError
from ..prediction import Prediction
from ..tags import normalize_rating
from ..vocabulary import RATING_CATEGORY, Vocabulary
from .base import LoadOptions, TaggerBase
from .preprocess import ORIENTATION_TRANSPOSE, decode_image, exif_orientation
from .spec import Preprocessing, TaggerSpec, Thresholds
from .wd14 import CHARACTER_CATEGORY, OutputLayout

BACKEND: Final = "deepdanbooru"
#: DeepDanbooru's ``load_image_for_evaluate`` (:func:`model_input`): RGB, values / 255; the size comes
#: from ``model.input_shape``.
PREPROCESSING: Final = Preprocessing(size=None, channel_order="RGB", scale=1 / 255, steps="deepdanbooru")
#: hydrus-dd's default cut-off, for every category.
THRESHOLDS: Final = Thresholds(general=0.5, character=0.5)
GENERAL_CATEGORY: Final = 0


def project_spec(path: str) -> TaggerSpec:
    """``deepdanbooru:PATH``: a project folder (or its model file, with ``tags.txt`` beside it)."""
    return TaggerSpec(
        name=f"{BACKEND}:{path}",
        backend=BACKEND,
        source=str(Path(path).expanduser()),
        preprocessing=PREPROCESSING,
        thresholds=THRESHOLDS,
        description="a DeepDanbooru project folder, run with Keras",
    )


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaggerLoadError(f"cannot read {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def find_model(source: Path) -> Path:
    """The model file of a project: the file itself, ``project.json``'s ``model``, or the only
    ``model-*.h5`` / ``model-*.keras``."""
    if source.is_file():
        return source
    if not source.is_dir():
        raise TaggerLoadError(f"{source} does not exist (expected a DeepDanbooru project folder)")
    project_file = source / "project.json"
    if project_file.is_file():
        try:
            name = json.loads(project_file.read_text(encoding="utf-8")).get("model")
        except (OSError, ValueError, AttributeError) as exc:
            raise TaggerLoadError(f"cannot read {project_file}: {exc}") from exc
        for suffix in (".h5", ".keras"):
            if name and (source / f"model-{name}{suffix}").is_file():
                return source / f"model-{name}{suffix}"
    found = sorted([*source.glob("model-*.h5"), *source.glob("model-*.keras")])
    if len(found) != 1:
        listed = ", ".join(path.name for path in found) or "none"
        raise TaggerLoadError(
            f"{source}: expected one model-*.h5 or model-*.keras (found: {listed}); "
            'name the one to use in project.json\'s "model"'
        )
    return found[0]


def project_vocabulary(folder: Path) -> Vocabulary:
    """``tags.txt`` in output order, with WD14's category codes: ratings 9, ``tags-character.txt`` 4."""
    names = _read_lines(folder / "tags.txt")
    characters_file = folder / "tags-character.txt"
    characters = set(_read_lines(characters_file)) if characters_file.is_file() else set()
    categories = tuple(
        RATING_CATEGORY
        if name.startswith("rating:") and normalize_rating(name)
        else CHARACTER_CATEGORY
        if name in characters
        else GENERAL_CATEGORY
        for name in names
    )
    return Vocabulary(names=tuple(names), categories=categories)


def _import_tensorflow() -> Any:
    # TensorFlow's C++ start-up chatter is noise in a test run; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def model_input(data: bytes, spec: Preprocessing, size: int) -> npt.NDArray[np.float32]:
    """DeepDanbooru's own evaluation steps, with its own libraries: ``[size, size, 3]`` float32 RGB 0..1.

    As ``load_image_for_evaluate`` (``deepdanbooru/data/__init__.py``) and ``transform_and_pad_image``
    (``deepdanbooru/image/__init__.py``) in KichangKim/DeepDanbooru do:

    1. TensorFlow decodes asking for 3 channels (``tf.io.decode_png(raw, channels=3)``, which reads
       JPEG too): alpha is dropped, not composited, so transparent pixels keep their stored colour.
       Formats it cannot read (GIF, WebP: the original tries tensorflow-io there) are decoded by Pillow
       and converted to RGB, which drops alpha the same way.
    2. ``tf.image.resize(size x size, AREA, preserve_aspect_ratio=True)``.
    3. A scikit-image affine warp centres the result on the ``size x size`` canvas (translate by minus
       half its size, then plus half the canvas: fractional offsets), bilinear (``order=1``),
       ``mode="edge"`` (edge pixels repeated into the border).
    4. ``/ 255``.

    Before step 1 the EXIF orientation is applied when the spec says so (the original does not; the
    people who tagged the post saw it upright). The bytes are first decoded by Pillow too, so that a
    corrupt or oversized image fails with the same :class:`ImageError` as for every other tagger.
    Needs tensorflow and scikit-image (the ``[deepdanbooru]`` extra).
    """
    # scikit-image is untyped: its module is used as Any.
    skimage_transform: Any = importlib.import_module("skimage.transform")
    image = decode_image(data)
    orientation = exif_orientation(image) if spec.exif_orientation else 1
    tf = _import_tensorflow()
    try:
        pixels = np.asarray(tf.io.decode_png(data, channels=3))
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        pixels = np.asarray(image.convert("RGB"))
    del image
    if orientation != 1:
        pixels = np.asarray(Image.fromarray(pixels).transpose(ORIENTATION_TRANSPOSE[orientation]))
    resized = tf.image.resize(
        pixels, size=(size, size), method=tf.image.ResizeMethod.AREA, preserve_aspect_ratio=True
    ).numpy()
    height, width = resized.shape[:2]
    transform = skimage_transform.AffineTransform(translation=(-width * 0.5, -height * 0.5))
    transform += skimage_transform.AffineTransform(translation=(size * 0.5, size * 0.5))
    warped = skimage_transform.warp(
        resized, transform.inverse, output_shape=(size, size), order=1, mode="edge"
    )
    # The original divides by 255.0 in float64; scaling in float32 would differ by an ulp.
    scaled = warped / (1 / spec.scale) if spec.scale != 1.0 else warped
    array: npt.NDArray[np.float32] = np.ascontiguousarray(scaled, dtype=np.float32)
    return array


def _import_keras() -> Any:
    # TensorFlow's C++ start-up chatter is noise in a test run; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


class DeepDanbooruTagger(TaggerBase):
    """Runs a DeepDanbooru Keras model: NHWC RGB 0..1 in, one sigmoid per ``tags.txt`` line out."""

    def __init__(self, spec: TaggerSpec, options: LoadOptions) -> None:
        self.spec = spec
        model_path = find_model(Path(spec.source))
        self.vocabulary: Vocabulary = project_vocabulary(model_path.parent)
        try:
            keras = _import_keras()
        except ImportError as exc:
            raise TaggerLoadError(
                f"tagger {spec.name} needs Keras with TensorFlow: "
                "pip install 'pytest-tagger-showdown[deepdanbooru]'"
            ) from exc
        try:
            self._model = keras.models.load_model(model_path, compile=False)
        except Exception as exc:  # Keras raises many unrelated types for unreadable files
            raise TaggerLoadError(f"tagger {spec.name}: cannot load {model_path}: {exc}") from exc
        shape = tuple(self._model.input_shape)
        if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
            raise TaggerLoadError(
                f"tagger {spec.name}: input shape {shape} is not a fixed square NHWC RGB image"
            )
        self.size: int = int(shape[1])
        outputs = self._model.output_shape[-1]
        if outputs != len(self.vocabulary):
            raise TaggerLoadError(
                f"tagger {spec.name}: tags.txt lists {len(self.vocabulary)} tags but the model has "
                f"{outputs} outputs"
            )
        #: How an output row becomes tags and a rating: the engine applies it to cached rows too.
        self.layout = OutputLayout(self.vocabulary)
        self.row_tags = True
        #: Every file the predictions depend on: the engine's prediction cache is keyed by their hash.
        self.model_files: tuple[Path, ...] = tuple(
            path
            for path in (model_path, model_path.parent / "tags.txt", model_path.parent / "tags-character.txt")
            if path.is_file()
        )
        # Keras traces its predict function on the first call (seconds): do it here, so that the
        # first post's inference time measures the model, not the tracing.
        try:
            self.infer([np.zeros((self.size, self.size, 3), dtype=np.float32)])
        except TaggerRunError as exc:
            raise TaggerLoadError(str(exc)) from exc

    def prepare(self, post: Post, image: bytes) -> object:
        return model_input(image, self.spec.preprocessing, self.size)

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        chunk = np.stack([np.asarray(item, dtype=np.float32) for item in batch])
        try:
            output = self._model.predict_on_batch(chunk)
        except Exception as exc:  # TensorFlow's errors carry no common type
            raise TaggerRunError(f"tagger {self.spec.name}: inference failed: {exc}") from exc
        rows: npt.NDArray[np.float32] = np.asarray(output, dtype=np.float32)
        return [self.layout.prediction(row, self.spec.thresholds) for row in rows]


def load(spec: TaggerSpec, options: LoadOptions) -> DeepDanbooruTagger:
    return DeepDanbooruTagger(spec, options)


def unavailable(spec: TaggerSpec) -> str | None:
    """Keras missing or the project incomplete; the model itself is not opened (that takes seconds)."""
    if importlib.util.find_spec("keras") is None:
        return "keras is not installed (pip install 'pytest-tagger-showdown[deepdanbooru]')"
    try:
        model = find_model(Path(spec.source))
    except TaggerLoadError as exc:
        return str(exc)
    if not (model.parent / "tags.txt").is_file():
        return f"{model.parent / 'tags.txt'} does not exist"
    return None
