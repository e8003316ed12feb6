"""WD14 taggers (SmilingWolf's layout): ``model.onnx`` plus ``selected_tags.csv``, run with onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ..dataset.post import Post
from ..devices import provider_list
from ..errors import TaggerLoadError, TaggerRunError
from ..prediction import Prediction
from ..probabilities import stored_row_and_columns
from ..tags import TagCategory, normalize_rating, normalize_tag
from ..vocabulary import RATING_CATEGORY, Vocabulary
from .base import LoadOptions, TaggerBase
from .preprocess import decode_image, preprocess
from .spec import TaggerSpec, Thresholds

#: ``selected_tags.csv`` marks characters with 4 (the rating rows with ``RATING_CATEGORY``, 9).
CHARACTER_CATEGORY = 4
#: The official demo's lower bound on an MCut character threshold.
MCUT_CHARACTER_FLOOR = 0.15


def mcut_threshold(probabilities: npt.NDArray[np.float32]) -> float:
    """Maximum Cut Thresholding: the midpoint of the largest gap between sorted neighbours."""
    if probabilities.size < 2:
        return 0.0
    ordered = np.sort(probabilities)[::-1]
    gaps = ordered[:-1] - ordered[1:]
    at = int(np.argmax(gaps))
    return float(ordered[at] + ordered[at + 1]) / 2


#: Installed providers not used unless asked for: TensorRT builds an engine per model on first use,
#: which takes minutes; Azure runs remote endpoints, not a local model.
NOT_BY_DEFAULT: Final = frozenset({"TensorrtExecutionProvider", "AzureExecutionProvider"})


def default_providers(available: Sequence[str]) -> list[str]:
    """What is installed, in onnxruntime's order (CUDA first with onnxruntime-gpu), but
    :data:`NOT_BY_DEFAULT`."""
    return [name for name in available if name not in NOT_BY_DEFAULT]


def resolve_providers(
    requested: Sequence[str] | None, available: Sequence[str]
) -> tuple[list[str], list[str]]:
    """``(providers to use, requested ones this onnxruntime lacks)``: the requested ones it has, in
    order, else the defaults (a request for CUDA on a CPU-only machine runs on CPU, and says so)."""
    if not requested:
        return default_providers(available), []
    missing = [name for name in requested if name not in available]
    use = [name for name in requested if name in available]
    return use or default_providers(available), missing


def execution_providers(requested: Sequence[str] | None) -> tuple[list[str], list[str]] | None:
    """:func:`resolve_providers` for the installed onnxruntime; None when it is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return resolve_providers(requested, ort.get_available_providers())


class OutputLayout:
    """Which outputs are general tags, characters and ratings, and how one output row becomes a
    :class:`Prediction`; shared by every backend whose tag list maps onto WD14's categories."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self._names = tuple(normalize_tag(name) for name in vocabulary.names)
        categories = np.asarray(vocabulary.categories)
        self._rating_index = np.flatnonzero(categories == RATING_CATEGORY)
        self._rating_codes = [normalize_rating(vocabulary.names[i]) for i in self._rating_index]
        self._character_index = np.flatnonzero(categories == CHARACTER_CATEGORY)
        general = (categories != RATING_CATEGORY) & (categories != CHARACTER_CATEGORY)
        self._general_index = np.flatnonzero(general)
        #: Per category: all its columns (for MCut) and, per column, whether it is one of them.
        self._groups = (
            (TagCategory.GENERAL, self._general_index, general),
            (TagCategory.CHARACTER, self._character_index, categories == CHARACTER_CATEGORY),
        )

    def prediction(self, row: npt.NDArray[np.float32], thresholds: Thresholds) -> Prediction:
        """Tags and rating from an output row ``[T]``, decided on the row as the run stores it
        (:func:`probabilities.stored_row`: float16, 0 below 0.01), so that cut-offs applied later to
        a cached row keep exactly the tags a fresh run keeps, and agree with the threshold sweep. A
        row with NaN or infinite outputs gives neither tags nor a rating (``argmax`` over NaN is not
        a rating), only the columns that held them."""
        if not np.isfinite(row).all():
            broken = np.flatnonzero(~np.isfinite(row))
            return Prediction(tags={}, non_finite=tuple(self._names[i] for i in broken))
        row, stored = stored_row_and_columns(row)
        kept: dict[str, float] = {}
        for category, index, member in self._groups:
            cut = thresholds.for_category(category)
            if thresholds.mcut:
                # As the official demo: MCut per category, never below 0.15 for characters.
                floor = MCUT_CHARACTER_FLOOR if category is TagCategory.CHARACTER else 0.0
                cut = max(floor, mcut_threshold(row[index]))
            # Outside the stored columns every value is 0, above no cut >= 0: only they can pass
            # (a few hundred columns, not the whole row; issue 14).
            candidates = stored[member[stored]] if cut >= 0 else index
            passed = candidates[row[candidates] > cut]
            kept.update(zip([self._names[i] for i in passed.tolist()], row[passed].tolist(), strict=True))
        rating: str | None = None
        confidences: dict[str, float] = {}
        if self._rating_index.size:
            values = row[self._rating_index].tolist()  # four values: plain floats beat numpy calls
            codes = self._rating_codes
            confidences = {code: value for code, value in zip(codes, values, strict=True) if code is not None}
            rating = self._rating_codes[values.index(max(values))]  # the first maximum, as argmax
        return Prediction(
            tags=kept,
            rating=rating,
            rating_confidences=confidences,
            probabilities=row,
            stored_columns=stored,
        )


class WD14Tagger(TaggerBase):
    """Runs a WD14-convention ONNX model: NHWC BGR float 0..255 in, one sigmoid per tag out."""

    def __init__(self, spec: TaggerSpec, folder: Path, options: LoadOptions) -> None:
        self.spec = spec
        model_path, tags_path = folder / "model.onnx", folder / "selected_tags.csv"
        for path in (model_path, tags_path):
            if not path.is_file():
                raise TaggerLoadError(f"tagger {spec.name}: {path} does not exist")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise TaggerLoadError(
                f"tagger {spec.name} needs onnxruntime: pip install 'pytest-tagger-showdown[onnx]'"
            ) from exc
        chosen, _ = resolve_providers(options.providers, ort.get_available_providers())
        providers = provider_list(chosen, options.cuda_device)
        sess_options = ort.SessionOptions()
        sess_options.log_severity_level = 3
        # onnxruntime's threads busy-wait for work after each operator, and by default after each
        # run too; between runs that spinning takes the CPU the engine's decoding needs (issue 14:
        # a cold run with a cheap model on 2 cores), so it stops when a run ends. Within a run it
        # stays: without it the stand-in ViT ran 10% slower beside decoding threads.
        sess_options.add_session_config_entry("session.force_spinning_stop", "1")
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=sess_options, providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors on bad files
            raise TaggerLoadError(f"tagger {spec.name}: cannot load {model_path}: {exc}") from exc
        model_input = self._session.get_inputs()[0]
        self._input_name: str = model_input.name
        shape = model_input.shape
        if len(shape) != 4 or shape[3] != 3:
            raise TaggerLoadError(
                f"tagger {spec.name}: input {model_input.name} has shape {shape}, expected NHWC [N, H, W, 3]"
            )
        height = shape[1] if isinstance(shape[1], int) else spec.preprocessing.size
        if height is None:
            raise TaggerLoadError(f"tagger {spec.name}: the model does not fix its input size")
        self.size: int = height
        #: The batch size the model insists on (v2 exports fix N = 1), or None when dynamic.
        self.fixed_batch: int | None = shape[0] if isinstance(shape[0], int) else None
        #: The execution providers in use, most preferred first (the engine batches on a GPU).
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        #: Every file the predictions depend on: the engine's prediction cache is keyed by their hash.
        self.model_files: tuple[Path, ...] = (model_path, tags_path)
        self.vocabulary: Vocabulary = Vocabulary.from_csv(tags_path)
        outputs = self._session.get_outputs()[0].shape
        if isinstance(outputs[-1], int) and outputs[-1] != len(self.vocabulary):
            raise TaggerLoadError(
                f"tagger {spec.name}: {tags_path.name} lists {len(self.vocabulary)} tags but the "
                f"model has {outputs[-1]} outputs"
            )
        #: How an output row becomes tags and a rating: the engine applies it to cached rows too.
        self.layout = OutputLayout(self.vocabulary)
        self.row_tags = True
        self._buffer: npt.NDArray[np.float32] | None = None

    def prepare(self, post: Post, image: bytes) -> object:
        return preprocess(decode_image(image), self.spec.preprocessing, self.size)

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        arrays = [np.asarray(item, dtype=np.float32) for item in batch]
        step = self.fixed_batch or max(1, len(arrays))
        rows: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(arrays), step):
            chunk = self._batch(arrays[start : start + step])
            try:
                (probabilities,) = self._session.run(None, {self._input_name: chunk})[:1]
            except Exception as exc:  # onnxruntime's errors carry no common type
                raise TaggerRunError(f"tagger {self.spec.name}: inference failed: {exc}") from exc
            if probabilities.shape[-1] != len(self.vocabulary):
                raise TaggerRunError(
                    f"tagger {self.spec.name}: the model gave {probabilities.shape[-1]} outputs for "
                    f"{len(self.vocabulary)} tags in selected_tags.csv"
                )
            rows.extend(np.asarray(probabilities, dtype=np.float32))
        return [self._to_prediction(row) for row in rows]

    def _batch(self, arrays: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """The model's ``[N, H, W, 3]`` input: one image as a view of itself (no copy), several
        copied into one host buffer kept between calls (issue 14: a 32-image batch at 448 is 77 MB,
        allocated anew for every batch before); ``session.run`` is done with its inputs when it
        returns, so the next batch may overwrite them."""
        if len(arrays) == 1 and arrays[0].flags.c_contiguous:
            return arrays[0][None]
        shape = (len(arrays), *arrays[0].shape)
        if self._buffer is None or self._buffer.shape[0] < shape[0] or self._buffer.shape[1:] != shape[1:]:
            self._buffer = np.empty(shape, np.float32)
        return np.stack(arrays, out=self._buffer[: shape[0]])

    def _to_prediction(self, row: npt.NDArray[np.float32]) -> Prediction:
        return self.layout.prediction(row, self.spec.thresholds)


def load_folder(spec: TaggerSpec, options: LoadOptions) -> WD14Tagger:
    """Load a local model folder (``spec.source``)."""
    return WD14Tagger(spec, Path(spec.source).expanduser(), options)
