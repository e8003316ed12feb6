"""The interface every loaded tagger offers: prepare one post, then infer a batch of prepared inputs.

The split is what lets the showdown time preprocessing and inference separately, and batch inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..dataset.post import Post
from ..prediction import Prediction
from .spec import TaggerSpec


@dataclass(frozen=True)
class LoadOptions:
    """Settings that apply to how a tagger is loaded rather than to what it is."""

    #: onnxruntime execution providers, in order of preference; None means: choose from what is installed.
    providers: tuple[str, ...] | None = None
    #: Base URL of a stable-diffusion-webui with the tagger extension (else env ``SDWEBUI_URL``).
    sdwebui_url: str | None = None
    #: ``user:password`` for the webui's ``--api-auth`` (else env ``SDWEBUI_AUTH``, not a command line).
    sdwebui_auth: str | None = None
    #: Base URL of a hydrus-dd ``run-server`` (else env ``HYDRUS_DD_URL``).
    hydrus_dd_url: str | None = None
    #: Seconds an HTTP tagger may take to answer one image (the model may be loading on first use).
    http_timeout: float = 120.0


@runtime_checkable
class Tagger(Protocol):
    """A loaded tagger."""

    spec: TaggerSpec

    def prepare(self, post: Post, image: bytes) -> object:
        """Turn a post and its image bytes into the input ``infer`` takes; raises ImageError on bad images."""
        ...

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        """One prediction per prepared input, in order."""
        ...
