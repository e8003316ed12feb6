"""The registry of named taggers and of the backends that load them, open the way timm's model
registry is: built-in specs, prefixes such as ``onnx:PATH``, backends, and third-party ones of each.

Third-party packages register through the ``pytest_tagger_showdown.taggers`` entry-point group (a
callable that takes the registry) or, inside a test suite, the ``pytest_tagger_showdown_register``
hook; neither edits this module. Names can be chosen by glob pattern (``wd-*-v3``), as timm's
``list_models`` filters.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points

from ..errors import TaggerLoadError, UnknownTaggerError
from .base import LoadOptions, Tagger
from .spec import TaggerSpec

ENTRY_POINT_GROUP = "pytest_tagger_showdown.taggers"
#: Characters that make a ``--tagger`` entry a glob pattern (:mod:`fnmatch`).
PATTERN_CHARACTERS = frozenset("*?[")
#: How many close names a pattern that matches nothing suggests.
CLOSE_NAMES = 5

#: Turns the part after ``prefix:`` into a spec (``onnx:/models/vit`` -> a local ONNX folder).
Resolver = Callable[[str], TaggerSpec]
#: Loads a spec's model; raises :class:`TaggerLoadError` with the reason when it cannot.
Loader = Callable[[TaggerSpec, LoadOptions], Tagger]
#: Why a spec cannot run here (library missing, file absent, no server configured), or None; cheap:
#: it must not load the model.
AvailabilityCheck = Callable[[TaggerSpec], str | None]


def _always_available(spec: TaggerSpec) -> str | None:
    return None


@dataclass(frozen=True)
class Backend:
    """A loader plus a cheap check of whether a spec could be loaded here."""

    load: Loader
    unavailable: AvailabilityCheck = _always_available


def is_pattern(name: str) -> bool:
    return not PATTERN_CHARACTERS.isdisjoint(name)


def match_names(pattern: str, names: Iterable[str]) -> list[str]:
    """The names ``pattern`` matches (:func:`fnmatch.fnmatchcase`), in the order given.

    Raises :class:`UnknownTaggerError` naming the pattern and the closest names when none matches.
    """
    candidates = list(names)
    matched = [name for name in candidates if fnmatch.fnmatchcase(name, pattern)]
    if matched:
        return matched
    # Close: the names that share the pattern's literal start, then the most alike (difflib).
    start = pattern[: min((pattern.find(c) for c in PATTERN_CHARACTERS if c in pattern), default=0)]
    literal = "".join(char for char in pattern if char not in PATTERN_CHARACTERS)
    alike = difflib.get_close_matches(literal, candidates, n=CLOSE_NAMES, cutoff=0.5)
    same_start = sorted(name for name in candidates if start and name.startswith(start))
    close = list(dict.fromkeys([*same_start, *alike]))[:CLOSE_NAMES]
    hint = f"; close names: {', '.join(close)}" if close else ""
    raise UnknownTaggerError(f"no tagger matches the pattern {pattern!r}{hint}")


class TaggerRegistry:
    """Names to specs and backend names to backends; ``resolve`` also understands ``PREFIX:ARGUMENT``."""

    def __init__(self) -> None:
        self._specs: dict[str, TaggerSpec] = {}
        self._resolvers: dict[str, Resolver] = {}
        self._backends: dict[str, Backend] = {}

    def register(self, spec: TaggerSpec, *, replace: bool = False) -> None:
        """Add a spec; a second spec of the same name is an error unless ``replace``."""
        if spec.name in self._specs and not replace and self._specs[spec.name] != spec:
            raise ValueError(f"a tagger named {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def register_prefix(self, prefix: str, resolver: Resolver) -> None:
        """Make names ``prefix:ARGUMENT`` resolve through ``resolver(ARGUMENT)``."""
        self._resolvers[prefix] = resolver

    def register_backend(
        self,
        name: str,
        load: Loader,
        unavailable: AvailabilityCheck = _always_available,
        *,
        replace: bool = False,
    ) -> None:
        """Make specs with ``backend=name`` load through ``load(spec, options)``.

        ``unavailable(spec)`` says cheaply why such a spec cannot run here (None: it can); it decides
        what ``--tagger all`` picks and what ``tagger-showdown taggers`` reports. A second backend of
        the same name is a ValueError unless ``replace``.
        """
        backend = Backend(load, unavailable)
        if name in self._backends and not replace and self._backends[name] != backend:
            raise ValueError(f"a backend named {name!r} is already registered")
        self._backends[name] = backend

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

    def backend(self, spec: TaggerSpec) -> Backend:
        """The backend ``spec.backend`` names; raises :class:`TaggerLoadError` for an unknown one."""
        try:
            return self._backends[spec.backend]
        except KeyError:
            known = ", ".join(sorted(self._backends))
            raise TaggerLoadError(
                f"tagger {spec.name} uses backend {spec.backend!r}, which is not known (known: {known})"
            ) from None

    def load(self, spec: TaggerSpec, options: LoadOptions | None = None) -> Tagger:
        """Load a tagger through its backend.

        Raises :class:`TaggerLoadError` with the reason when it cannot run here, or when what the
        backend returns does not offer every attribute of the :class:`Tagger` protocol.
        """
        tagger = self.backend(spec).load(spec, options or LoadOptions())
        if not isinstance(tagger, Tagger):
            members = {name for name in (*Tagger.__annotations__, *vars(Tagger)) if not name.startswith("_")}
            missing = sorted(name for name in members if not hasattr(tagger, name))
            raise TaggerLoadError(
                f"tagger {spec.name}: backend {spec.backend!r} gave a {type(tagger).__name__}, which "
                f"lacks {', '.join(missing)} of the Tagger protocol (TaggerBase has the defaults)"
            )
        return tagger

    def unavailable_reason(self, spec: TaggerSpec) -> str | None:
        """Why ``spec`` cannot run here, or None if it can (without loading the model)."""
        try:
            return self.backend(spec).unavailable(spec)
        except TaggerLoadError as exc:
            return str(exc)

    def __iter__(self) -> Iterator[TaggerSpec]:
        return iter(sorted(self._specs.values(), key=lambda spec: spec.name))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def prefixes(self) -> list[str]:
        return sorted(self._resolvers)

    def backends(self) -> list[str]:
        return sorted(self._backends)

    def match(self, pattern: str) -> list[str]:
        """The registered names a glob pattern matches, alphabetically (``wd-*-v3``); raises
        :class:`UnknownTaggerError` naming the pattern and close names when none does."""
        return match_names(pattern, (spec.name for spec in self))

    def select(self, names: Iterable[str]) -> list[str]:
        """Expand a ``--tagger`` selection: commas split, ``all`` means every tagger that can run here,
        a glob pattern every registered name it matches (whether it can run here or not, as if each
        were named).

        Order is kept and duplicates dropped; every name is checked so typos fail early, and an
        empty name (``--tagger ,``, ``--tagger a,,b``) raises :class:`UnknownTaggerError` too.
        """
        chosen: list[str] = []
        for entry in names:
            for name in (part.strip() for part in entry.split(",")):
                if not name:
                    raise UnknownTaggerError(f"empty tagger name in {entry!r}: name a tagger, or 'all'")
                if name == "all":
                    expanded = [spec.name for spec in self if self.unavailable_reason(spec) is None]
                elif is_pattern(name):
                    expanded = self.match(name)
                else:
                    self.resolve(name)
                    expanded = [name]
                chosen.extend(n for n in expanded if n not in chosen)
        return chosen


def load_entry_points(registry: TaggerRegistry) -> None:
    """Let installed packages add their taggers and backends: each entry point is a callable taking
    the registry."""
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()(registry)
