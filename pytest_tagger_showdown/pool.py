"""The taggers of a run by name: resolved through the registry, ``--showdown-threshold`` applied,
each loaded once per process."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from .errors import TaggerLoadError
from .taggers.base import LoadOptions, Tagger
from .taggers.registry import TaggerRegistry
from .taggers.spec import TaggerSpec

#: ``--showdown-threshold`` values: (tagger name or None for every tagger, overrides).
ThresholdOverride = tuple[str | None, Mapping[str, str]]


class TaggerPool:
    """Resolves names through the registry and loads each tagger once per process.

    A load failure is remembered, so every post of that tagger fails with the same clear reason
    instead of retrying a slow or broken load.
    """

    def __init__(
        self,
        registry: TaggerRegistry,
        options: LoadOptions | None = None,
        thresholds: Sequence[ThresholdOverride] = (),
    ) -> None:
        self.registry = registry
        self.options = options or LoadOptions()
        self.thresholds = tuple(thresholds)
        self._loaded: dict[str, Tagger | TaggerLoadError] = {}

    def spec(self, name: str) -> TaggerSpec:
        """The registry's spec with ``--showdown-threshold`` overrides applied (global ones first)."""
        spec = self.registry.resolve(name)
        thresholds = spec.thresholds
        for target, overrides in sorted(self.thresholds, key=lambda item: item[0] is not None):
            if target is None or target == name:
                thresholds = thresholds.with_overrides(overrides)
        return dataclasses.replace(spec, thresholds=thresholds)

    def get(self, name: str) -> Tagger:
        if name not in self._loaded:
            try:
                self._loaded[name] = self.registry.load(self.spec(name), self.options)
            except TaggerLoadError as exc:
                self._loaded[name] = exc
        loaded = self._loaded[name]
        if isinstance(loaded, TaggerLoadError):
            raise loaded
        return loaded
