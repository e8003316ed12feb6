"""The interface every loaded tagger offers: prepare one post, then infer a batch of prepared inputs.

The split is what lets the showdown time preprocessing and inference separately, and batch inference.
Optional capabilities (a tag list, execution providers, a fixed batch size, the model files the cache
keys on) are declared here with the value a tagger without them has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..dataset.post import Post
from ..prediction import Prediction
from ..vocabulary import Vocabulary
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
    #: The CUDA device an ONNX tagger runs on (``devices.worker_device``); None: onnxruntime's default.
    cuda_device: int | None = None


@runtime_checkable
class Tagger(Protocol):
    """A loaded tagger: ``prepare`` and ``infer``, and the optional capabilities the engine, the cache
    and the dataset metrics read.

    A capability is read-only here, so a plain attribute of a narrower type fits (``size: int``).
    :class:`TaggerBase` gives each the value a tagger without it has; a class that does not subclass
    it must offer every member (:meth:`TaggerRegistry.load` checks, so a missing one is a load error,
    not a failure mid-run).
    """

    spec: TaggerSpec

    @property
    def vocabulary(self) -> Vocabulary | None:
        """The tag of each output, in output order, ratings included (category 9); None when the
        tagger gives no probabilities (HTTP taggers, the control): dataset metrics then use its kept
        tags, and a rating comes only from the prediction."""
        ...

    @property
    def providers(self) -> tuple[str, ...]:
        """The onnxruntime execution providers in use, most preferred first: the engine batches only
        on an accelerator. Empty for taggers that do not run through onnxruntime."""
        ...

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model insists on (WD14 v2 exports fix N = 1), or None: any size runs."""
        ...

    @property
    def model_files(self) -> tuple[Path, ...]:
        """Every file the predictions depend on; the prediction cache is keyed by their hash. Empty:
        the tagger is not cached (HTTP taggers, whose model the showdown cannot see; the control)."""
        ...

    @property
    def size(self) -> int | None:
        """The square input side in pixels the model takes, or None; part of the input cache key."""
        ...

    @property
    def row_tags(self) -> bool:
        """Whether the kept tags and rating are decided from the output row over :attr:`vocabulary`
        by ``wd14.OutputLayout`` (WD14, DeepDanbooru): then a cached row is re-cut at new thresholds
        without loading the model."""
        ...

    def prepare(self, post: Post, image: bytes) -> object:
        """Turn a post and its image bytes into the input ``infer`` takes; raises ImageError on bad images."""
        ...

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        """One prediction per prepared input, in order."""
        ...


class TaggerBase:
    """The optional capabilities of :class:`Tagger` as a tagger without them has them: subclass it
    and set (or override) only those the tagger has."""

    vocabulary: Vocabulary | None = None
    providers: tuple[str, ...] = ()
    fixed_batch: int | None = None
    model_files: tuple[Path, ...] = ()
    size: int | None = None
    row_tags: bool = False
