"""The built-in backends: how a spec's ``backend`` name turns into a loaded :class:`Tagger`, and whether
it can run here. Third-party backends register the same way (:meth:`TaggerRegistry.register_backend`).

Backends import their heavy libraries (onnxruntime, tensorflow, ...) only when a tagger is loaded, so
listing taggers or running the control tagger needs none of them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

from . import deepdanbooru, hub, remote, wd14
from .base import LoadOptions, Tagger
from .control import ControlTagger
from .registry import TaggerRegistry
from .spec import TaggerSpec


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


def _load_control(spec: TaggerSpec, options: LoadOptions) -> Tagger:
    return ControlTagger(spec)


#: The backends that run through onnxruntime, on the ``--showdown-providers``.
ONNX_BACKENDS = frozenset({"onnx", hub.BACKEND})


def register_backends(registry: TaggerRegistry) -> None:
    """Add the control, local ONNX folders, hub WD14 models, DeepDanbooru, the webui and hydrus-dd."""
    registry.register_backend("control", _load_control)
    registry.register_backend("onnx", wd14.load_folder, _local_folder_unavailable)
    registry.register_backend(hub.BACKEND, hub.load, hub.unavailable)
    registry.register_backend(deepdanbooru.BACKEND, deepdanbooru.load, deepdanbooru.unavailable)
    registry.register_backend(remote.SDWEBUI, remote.load_sdwebui, remote.unavailable)
    registry.register_backend(remote.HYDRUS_DD, remote.load_hydrus_dd, remote.unavailable)


def check_servers(specs: Iterable[TaggerSpec], options: LoadOptions) -> None:
    """The server each of ``specs`` would talk to, checked before the run (at configure time): the
    webui's and hydrus-dd's URL (spec, option or environment) and the hub's ``HF_ENDPOINT``. Raises
    TaggerLoadError for a URL that is not http(s) or holds a password (:mod:`..server_url`)."""
    for spec in specs:
        if spec.backend in (remote.SDWEBUI, remote.HYDRUS_DD):
            remote.configured_url(spec, options)
        elif spec.backend == hub.BACKEND:
            hub.HubSettings.from_environment()
