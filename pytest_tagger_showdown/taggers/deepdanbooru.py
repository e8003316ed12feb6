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

from ..dataset.post import Post
from ..errors import TaggerLoadError, TaggerRunError
from ..prediction import Prediction
from ..tags import normalize_rating
from .base import LoadOptions
from .preprocess import decode_image, preprocess
from .spec import Preprocessing, TaggerSpec, Thresholds
from .wd14 import CHARACTER_CATEGORY, RATING_CATEGORY, OutputLayout, Vocabulary

BACKEND: Final = "deepdanbooru"
#: DeepDanbooru's ``load_image_for_evaluate``: fit keeping the aspect ratio with AREA, centre-pad by
#: repeating edge pixels, RGB, values / 255; the size comes from ``model.input_shape``.
PREPROCESSING: Final = Preprocessing(
    size=None, channel_order="RGB", scale=1 / 255, padding="edge", resize="area"
)
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


def _import_keras() -> Any:
    # TensorFlow's C++ start-up chatter is noise in a test run; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


class DeepDanbooruTagger:
    """Runs a DeepDanbooru Keras model: NHWC RGB 0..1 in, one sigmoid per ``tags.txt`` line out."""

    def __init__(self, spec: TaggerSpec, options: LoadOptions) -> None:
        self.spec = spec
        model_path = find_model(Path(spec.source))
        self.vocabulary = project_vocabulary(model_path.parent)
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
        return preprocess(decode_image(image), self.spec.preprocessing, self.size)

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
