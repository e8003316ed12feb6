"""``tagger-showdown taggers [PATTERN ...]``: every tagger this installation knows (or those a glob
pattern matches), what it is, where its model comes from, and whether it can run here (backend
installed, model cached, server configured), loading no model.

The registry is the one a pytest run in the current folder would have: built-in taggers, those
installed packages register by entry point and those the rootdir ``conftest.py`` registers through
the ``pytest_tagger_showdown_register`` hook (``cli.py`` asks pytest for it).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

from tabulate import tabulate

from ..errors import TaggerLoadError, TaggerRunError
from . import hub, remote
from .base import LoadOptions
from .registry import TaggerRegistry, match_names
from .spec import TaggerSpec

HEADERS = ("tagger", "backend", "source", "can run here", "description")
#: The argument each built-in prefix takes, and the module its backend needs.
PREFIXES = {"onnx": ("PATH", "onnxruntime"), "deepdanbooru": ("PATH", "keras"), "sdwebui": ("MODEL", None)}


@dataclass(frozen=True)
class TaggerRow:
    name: str
    backend: str
    source: str
    can_run: str
    description: str = ""

    def cells(self) -> tuple[str, str, str, str, str]:
        return (self.name, self.backend, self.source or "-", self.can_run, self.description)


def _verdict(reason: str | None) -> str:
    return "yes" if reason is None else f"no: {reason}"


def _source(spec: TaggerSpec) -> str:
    if spec.backend == hub.BACKEND:
        return f"{spec.source}@{spec.revision or 'main'}"
    if spec.backend == "control":
        return "built in"
    return spec.source


def _as_configured(spec: TaggerSpec, options: LoadOptions) -> TaggerSpec:
    """A remote spec with the URL the options or the environment give it, as it would run."""
    if spec.backend not in (remote.SDWEBUI, remote.HYDRUS_DD):
        return spec
    return dataclasses.replace(spec, source=remote.configured_url(spec, options) or "")


def _prefix_row(registry: TaggerRegistry, prefix: str, options: LoadOptions) -> TaggerRow:
    argument, module = PREFIXES.get(prefix, ("ARG", None))
    spec = _as_configured(registry.resolve(f"{prefix}:{argument}"), options)
    if spec.backend == remote.SDWEBUI:
        return TaggerRow(spec.name, spec.backend, spec.source, _verdict(registry.unavailable_reason(spec)))
    if module is not None and importlib.util.find_spec(module) is None:
        return TaggerRow(spec.name, spec.backend, argument, f"no: {module} is not installed")
    return TaggerRow(spec.name, spec.backend, argument, f"given a {argument}")


def served_webui_models(options: LoadOptions) -> list[TaggerRow]:
    """One row per model a configured webui serves, or one row saying why it could not be asked."""
    spec = remote.sdwebui_spec("MODEL")
    if remote.configured_url(spec, options) is None:
        return []
    try:
        client = remote.SdWebuiClient(spec, dataclasses.replace(options, http_timeout=10.0))
        models = client.served_models()
    except (TaggerLoadError, TaggerRunError) as exc:
        return [TaggerRow(spec.name, spec.backend, remote.configured_url(spec, options) or "", f"no: {exc}")]
    return [TaggerRow(f"{remote.SDWEBUI}:{model}", remote.SDWEBUI, client.url, "yes") for model in models]


def tagger_rows(registry: TaggerRegistry, options: LoadOptions | None = None) -> list[TaggerRow]:
    """Named taggers (alphabetically), one row per prefix, then the models a configured webui serves."""
    options = options or LoadOptions()
    rows = []
    for spec in registry:
        configured = _as_configured(spec, options)
        verdict = _verdict(registry.unavailable_reason(configured))
        rows.append(TaggerRow(spec.name, spec.backend, _source(configured), verdict, spec.description))
    rows += [_prefix_row(registry, prefix, options) for prefix in registry.prefixes()]
    return rows + served_webui_models(options)


def matching_rows(rows: Sequence[TaggerRow], patterns: Sequence[str]) -> list[TaggerRow]:
    """The rows whose name one of the glob patterns matches (all rows without patterns), in order;
    raises :class:`UnknownTaggerError` for a pattern that matches no row."""
    if not patterns:
        return list(rows)
    names = {name for pattern in patterns for name in match_names(pattern, [row.name for row in rows])}
    return [row for row in rows if row.name in names]


def format_rows(rows: Sequence[TaggerRow]) -> str:
    """The listing as a Markdown-style table."""
    return tabulate([row.cells() for row in rows], headers=HEADERS, tablefmt="github", disable_numparse=True)
