"""The package's own exceptions: each message says what went wrong and what to do about it."""

from __future__ import annotations


class ShowdownError(Exception):
    """Base class: the plugin turns these into a failed item or a usage error, never a deep traceback."""


class DatasetError(ShowdownError):
    """The dataset file is missing, unreadable, or of a schema this version cannot use."""


class ImageError(ShowdownError):
    """A post's image is missing, corrupt or undecodable; fails that post only."""


class UnknownTaggerError(ShowdownError, LookupError):
    """A tagger name that no registry entry, prefix or plugin knows."""


class TaggerLoadError(ShowdownError):
    """A tagger is known but cannot be loaded here (backend not installed, model files missing)."""


class TaggerRunError(ShowdownError):
    """A loaded tagger failed on one input (server down, garbage answer, wrong output shape)."""


class DecodeWorkerError(ShowdownError):
    """A decoding process stopped while preparing a post's image (killed, out of memory, a crash in
    a codec); fails the posts it had in hand, later posts go to fresh processes."""
