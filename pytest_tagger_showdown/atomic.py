"""Writing a file atomically: a reader sees the old file or the whole new one, never half of one.

The data goes to a temporary file beside the target (same folder, so the same file system, named per
process and call so concurrent writers never share one) and is moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows (Python documentation of ``os.replace``).

``os.replace`` swaps the new file over whatever the name holds. So a symlink is written through (its
target is replaced; the link stays), and a name that holds no regular file (``/dev/null``, any
device, a fifo, a socket, a folder) is refused, never replaced: as root, replacing ``/dev/null``
would break the machine for every other program.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ShowdownError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write; on leaving the block without an error it replaces ``path`` (a
    symlink's target, the link left as it is).

    The parent folder is created. On an error the temporary file is removed and ``path`` is left
    as it was; ``OSError`` from writing or replacing propagates, and is raised before anything is
    written when ``path`` holds something other than a regular file (:func:`not_a_file_reason`).
    """
    target = Path(os.path.realpath(path))
    reason = not_a_file_reason(target)
    if reason is not None:
        raise OSError(f"{path} is {reason}, not a regular file: it is never replaced")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.partial")
    try:
        yield partial
        os.replace(partial, target)
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


def followed(path: Path) -> Path:
    """``path`` made absolute with its symlinks followed: the file a write replaces. Raises
    ShowdownError for a symlink loop (pathlib raises RuntimeError for one in Python 3.12, OSError
    from 3.13; before, a loop given as an output was an INTERNALERROR)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:
        raise ShowdownError(f"{path} cannot be followed to a file ({exc})") from None


def not_a_file_reason(path: Path) -> str | None:
    """What ``path`` (symlinks followed) holds when that is not a regular file, e.g. ``a character
    device`` for ``/dev/null``; None when it is a regular file or nothing is there yet (a write may
    create it). Such a path is never replaced by a file (see the module's docstring)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # nothing there (or a dangling link, a loop): writing creates it or says why not
        return None
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a fifo (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((kind for test, kind in kinds if test(mode)), "a special file")


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
