"""What a tagger says about one image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Prediction:
    """Tags a tagger kept (normalised names, with confidence) and the rating it chose.

    ``rating`` is a code from :data:`pytest_tagger_showdown.tags.RATING_MATCHES` (``g``, ``s``, ``q``,
    ``e``, or ``safe`` for pre-2022 models) or None when the tagger gives no rating.
    ``probabilities`` is the model's full output row ``[T]``, aligned with the tagger's vocabulary, where
    the backend has one, as the run stores it (float16 precision, 0 below 0.01: see
    :func:`probabilities.stored_row`); the tags were decided from it, dataset metrics are computed from
    it, and the prediction cache keeps it, so a fresh and a cached prediction are the same.
    """

    tags: Mapping[str, float] = field(hash=False)
    rating: str | None = None
    rating_confidences: Mapping[str, float] = field(default_factory=dict, hash=False)
    probabilities: npt.NDArray[np.float32] | None = field(default=None, compare=False, hash=False)
    #: The columns of ``probabilities`` at or above the floor, ascending (its compact form's columns,
    #: :func:`probabilities.stored_row_and_columns`) where the backend found them: recording and
    #: caching the row reuse them instead of scanning it again. None: found when needed.
    stored_columns: npt.NDArray[np.int64] | None = field(default=None, compare=False, hash=False, repr=False)
    #: Output columns (tag names) that held NaN or an infinity: such a prediction has no tags and
    #: no rating, and the engine fails its post naming them.
    non_finite: tuple[str, ...] = ()
