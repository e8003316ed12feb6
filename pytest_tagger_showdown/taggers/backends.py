"""Backends: how a spec's ``backend`` name turns into a loaded :class:`Tagger`, and whether it can run here.

Backends import their heavy libraries (onnxruntime, tensorflow, ...) only when a tagger is loaded, so
listing taggers or running the control tagger needs none of them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import TaggerLoadError
from . import deepdanbooru, hub, remote, wd14
from .base import LoadOptions, Tagger
from .control import ControlTagger
from .spec import TaggerSpec


@dataclass(frozen=True)
class Backend:
    """A loader plus a cheap check of whether a spec could be loaded here."""

    load: Callable[[TaggerSpec, LoadOptions], Tagger]
    unavailable: Callable[[TaggerSpec], str | None]


def _needs_module(module: str, extra: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install 'pytest-tagger-showdown[{extra}]')"
    return None


def _local_folder_unavailable(spec: TaggerSpec) -> str | None:
    missing = _needs_module("onnxruntime", "onnx")
    if missing:
        return missing
    folder = Path(spec.source).expanduser()
    for name in ("model.onnx", "selected_tags.csv"):
        if not (folder / name).is_file():
            return f"{folder / name} does not exist"
    return None


BACKENDS: dict[str, Backend] = {
    "control": Backend(load=lambda spec, _: ControlTagger(spec), unavailable=lambda _: None),
    "onnx": Backend(load=wd14.load_folder, unavailable=_local_folder_unavailable),
    hub.BACKEND: Backend(load=hub.load, unavailable=hub.unavailable),
    deepdanbooru.BACKEND: Backend(load=deepdanbooru.load, unavailable=deepdanbooru.unavailable),
    remote.SDWEBUI: Backend(load=remote.load_sdwebui, unavailable=remote.unavailable),
    remote.HYDRUS_DD: Backend(load=remote.load_hydrus_dd, unavailable=remote.unavailable),
}


def backend_for(spec: TaggerSpec) -> Backend:
    try:
        return BACKENDS[spec.backend]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise TaggerLoadError(
            f"tagger {spec.name} uses backend {spec.backend!r}, which is not known (known: {known})"
        ) from None


def load_tagger(spec: TaggerSpec, options: LoadOptions | None = None) -> Tagger:
    """Load a tagger, raising :class:`TaggerLoadError` with the reason when it cannot run here."""
    return backend_for(spec).load(spec, options or LoadOptions())


def unavailable_reason(spec: TaggerSpec) -> str | None:
    """Why ``spec`` cannot run here, or None if it can (without loading the model)."""
    try:
        return backend_for(spec).unavailable(spec)
    except TaggerLoadError as exc:
        return str(exc)
