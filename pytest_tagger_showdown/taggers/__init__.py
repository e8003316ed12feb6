"""Taggers: specs, the registry of names, backends that load them, and preprocessing."""

from .backends import load_tagger, unavailable_reason
from .base import LoadOptions, Tagger
from .builtin import default_registry
from .registry import TaggerRegistry
from .spec import Preprocessing, TaggerSpec, Thresholds

__all__ = [
    "LoadOptions",
    "Preprocessing",
    "Tagger",
    "TaggerRegistry",
    "TaggerSpec",
    "Thresholds",
    "default_registry",
    "load_tagger",
    "unavailable_reason",
]
