"""The taggers that ship with the package: the control, the demo models, the WD14 hub models, hydrus-dd,
the ``onnx:PATH``, ``deepdanbooru:PATH`` and ``sdwebui:MODEL`` prefixes, and their backends."""

from __future__ import annotations

from pathlib import Path

from ..bundled import DEMO_MODELS
from . import deepdanbooru, hub, remote
from .backends import register_backends
from .base import LoadOptions, Tagger
from .registry import TaggerRegistry, load_entry_points
from .spec import TaggerSpec

CONTROL = TaggerSpec(
    name="control",
    backend="control",
    description="answers each post's own tags; must score exactly 1.0 (checks the scoring)",
)

#: The demo taggers: tiny ONNX models in the WD14 layout, trained by
#: fixtures/generators/train_demo_models.py.
DEMO_TAGGERS = (
    TaggerSpec(
        name="demo-large",
        backend="onnx",
        source=str(DEMO_MODELS / "demo-large"),
        description="demo: a small MLP on 32x32 pooled pixels (the stronger demo tagger)",
    ),
    TaggerSpec(
        name="demo-small",
        backend="onnx",
        source=str(DEMO_MODELS / "demo-small"),
        description="demo: a linear model on 4x4 pooled pixels (the weaker demo tagger)",
    ),
)


def onnx_folder(path: str) -> TaggerSpec:
    """``onnx:PATH``: a local folder with ``model.onnx`` and ``selected_tags.csv``."""
    folder = Path(path).expanduser()
    return TaggerSpec(name=f"onnx:{path}", backend="onnx", source=str(folder))


def default_registry() -> TaggerRegistry:
    """Every built-in tagger, prefix and backend, plus those installed packages register by entry point."""
    registry = TaggerRegistry()
    register_backends(registry)
    registry.register(CONTROL)
    for spec in DEMO_TAGGERS:
        registry.register(spec)
    registry.register_prefix("onnx", onnx_folder)
    for spec in hub.hub_specs():
        registry.register(spec)
    registry.register(remote.HYDRUS_DD_SPEC)
    registry.register_prefix(deepdanbooru.BACKEND, deepdanbooru.project_spec)
    registry.register_prefix(remote.SDWEBUI, remote.sdwebui_spec)
    load_entry_points(registry)
    return registry


def load_tagger(spec: TaggerSpec, options: LoadOptions | None = None) -> Tagger:
    """Load a tagger through the default registry's backends (:meth:`TaggerRegistry.load`)."""
    return default_registry().load(spec, options)


def unavailable_reason(spec: TaggerSpec) -> str | None:
    """Why ``spec`` cannot run here through the default registry's backends, or None if it can."""
    return default_registry().unavailable_reason(spec)
