"""Taggers: specs, the registry of names, backends that load them, and preprocessing."""

from ..vocabulary import Vocabulary
from .base import LoadOptions, Tagger, TaggerBase
from .builtin import default_registry, load_tagger, unavailable_reason
from .registry import TaggerRegistry
from .spec import Preprocessing, TaggerSpec, Thresholds

__all__ = [
    "LoadOptions",
    "Preprocessing",
    "Tagger",
    "TaggerBase",
    "TaggerRegistry",
    "TaggerSpec",
    "Thresholds",
    "Vocabulary",
    "default_registry",
    "load_tagger",
    "unavailable_reason",
]
