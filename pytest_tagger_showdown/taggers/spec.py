"""A tagger as data: where its model comes from, how images are prepared for it, and where it cuts off."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..tags import TagCategory

ChannelOrder = Literal["RGB", "BGR"]
#: Which reference's steps turn the decoded image into the model's pixels (see ``preprocess``).
Steps = Literal["wd14", "deepdanbooru"]


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input array.

    The defaults are the WD14 reference steps: composite over white, pad to a white square, BICUBIC to
    448, BGR, float32 0..255. ``steps="deepdanbooru"`` are DeepDanbooru's own evaluation steps
    (``taggers.deepdanbooru.model_input``). ``size=None`` means: read it from the model.
    ``exif_orientation``: turn the image upright by its EXIF Orientation first, as browsers (and so the
    people who tagged the post) and the WD14 demo's image component do. Every field is part of the
    cache key of prepared inputs and predictions.
    """

    size: int | None = 448
    channel_order: ChannelOrder = "BGR"
    scale: float = 1.0
    steps: Steps = "wd14"
    exif_orientation: bool = True


@dataclass(frozen=True)
class Thresholds:
    """Per-category confidence cut-offs (strict ``>``), or MCut (largest gap) per category."""

    general: float = 0.35
    character: float = 0.85
    mcut: bool = False

    def for_category(self, category: TagCategory) -> float:
        return self.character if category is TagCategory.CHARACTER else self.general

    def with_overrides(self, overrides: Mapping[str, str]) -> Thresholds:
        """A copy with ``general``, ``character``, ``all`` or ``mcut`` replaced from option text."""
        changes: dict[str, float | bool] = {}
        for key, value in overrides.items():
            if key == "mcut":
                changes["mcut"] = _switch(value)
            elif key in ("general", "character"):
                changes[key] = _probability(value)
            elif key == "all":
                changes["general"] = changes["character"] = _probability(value)
            else:
                raise ValueError(f"unknown threshold {key!r}: use general, character, all or mcut")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"threshold {text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise ValueError(f"threshold {text} is not between 0 and 1")
    return value


_SWITCHES = {"true": True, "1": True, "yes": True, "on": True}
_SWITCHES |= {"false": False, "0": False, "no": False, "off": False}


def _switch(text: str) -> bool:
    """``mcut=true``/``false`` (also 1/0, yes/no, on/off); anything else is an error, not "off"."""
    try:
        return _SWITCHES[text.strip().lower()]
    except KeyError:
        raise ValueError(f"mcut={text!r}: use true or false") from None


@dataclass(frozen=True)
class TaggerSpec:
    """A named tagger: ``backend`` says which loader runs it, ``source`` where its model lives.

    ``source`` is a folder for local models, a hub repo id for hub models (with ``revision``), or a
    URL for taggers behind an HTTP API; ``options`` carries backend-specific settings (the model name
    an API serves, for instance).
    """

    name: str
    backend: str
    source: str = ""
    revision: str | None = None
    preprocessing: Preprocessing = Preprocessing()
    thresholds: Thresholds = Thresholds()
    options: Mapping[str, str] = field(default_factory=dict, hash=False)
    description: str = ""
