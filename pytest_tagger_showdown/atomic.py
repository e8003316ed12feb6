"""Writing a file atomically: a reader sees the old file or the whole new one, never half of one.

The data goes to a temporary file beside the target (same folder, so the same file system, named per
process and call so concurrent writers never share one) and is moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows (Python documentation of ``os.replace``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write; on leaving the block without an error it replaces ``path``.

    The parent folder is created. On an error the temporary file is removed and ``path`` is left
    as it was; ``OSError`` from writing or replacing propagates.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as partial:
        partial.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, as UTF-8."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")


def unwritable_reason(folder: Path) -> str | None:
    """Why no file can be written in ``folder`` (or, when it does not exist yet, in the nearest
    existing folder above it, under which :func:`atomic_path` creates the rest), or None when one can.

    The only sure test is to try: a probe file is created and removed at once. ``os.access`` says yes
    to root everywhere (``/proc`` included) and knows nothing of read-only mounts. Nothing is left
    behind, and no target file is created.
    """
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        return f"{existing} is not a folder"
    probe = existing / f".showdown-probe.{os.getpid()}.{uuid.uuid4().hex}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        return f"{existing} is not a writable folder ({exc.strerror or exc})"
    probe.unlink(missing_ok=True)
    return None
