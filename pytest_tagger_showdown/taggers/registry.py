"""The registry of named taggers: built-in specs, prefixes such as ``onnx:PATH``, and third-party ones.

Third-party packages register through the ``pytest_tagger_showdown.taggers`` entry-point group (a
callable that takes the registry) or, inside a test suite, the ``pytest_tagger_showdown_register``
hook; neither edits this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import entry_points

from ..errors import UnknownTaggerError
from .backends import unavailable_reason
from .spec import TaggerSpec

ENTRY_POINT_GROUP = "pytest_tagger_showdown.taggers"

#: Turns the part after ``prefix:`` into a spec (``onnx:/models/vit`` -> a local ONNX folder).
Resolver = Callable[[str], TaggerSpec]


class TaggerRegistry:
    """Names to specs; ``resolve`` also understands ``PREFIX:ARGUMENT`` names."""

    def __init__(self) -> None:
        self._specs: dict[str, TaggerSpec] = {}
        self._resolvers: dict[str, Resolver] = {}

    def register(self, spec: TaggerSpec, *, replace: bool = False) -> None:
        """Add a spec; a second spec of the same name is an error unless ``replace``."""
        if spec.name in self._specs and not replace and self._specs[spec.name] != spec:
            raise ValueError(f"a tagger named {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def register_prefix(self, prefix: str, resolver: Resolver) -> None:
        """Make names ``prefix:ARGUMENT`` resolve through ``resolver(ARGUMENT)``."""
        self._resolvers[prefix] = resolver

    def resolve(self, name: str) -> TaggerSpec:
        """The spec a name means."""
        if name in self._specs:
            return self._specs[name]
        prefix, sep, argument = name.partition(":")
        if sep and prefix in self._resolvers:
            return self._resolvers[prefix](argument)
        known = ", ".join(sorted(self._specs))
        prefixes = ", ".join(f"{p}:..." for p in sorted(self._resolvers))
        raise UnknownTaggerError(f"unknown tagger {name!r}; known: {known}; or {prefixes}")

    def __iter__(self) -> Iterator[TaggerSpec]:
        return iter(sorted(self._specs.values(), key=lambda spec: spec.name))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def prefixes(self) -> list[str]:
        return sorted(self._resolvers)

    def select(self, names: Iterable[str]) -> list[str]:
        """Expand a ``--tagger`` selection: commas split, ``all`` means every tagger that can run here.

        Order is kept and duplicates dropped; every name is checked so typos fail early.
        """
        chosen: list[str] = []
        for entry in names:
            for name in (part.strip() for part in entry.split(",")):
                if not name:
                    continue
                if name == "all":
                    expanded = [spec.name for spec in self if unavailable_reason(spec) is None]
                else:
                    self.resolve(name)
                    expanded = [name]
                chosen.extend(n for n in expanded if n not in chosen)
        return chosen


def load_entry_points(registry: TaggerRegistry) -> None:
    """Let installed packages add their taggers: each entry point is a callable taking the registry."""
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()(registry)
