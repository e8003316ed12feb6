"""The atomic writer never replaces what is not a regular file (a device, a fifo) and writes a symlink
through. Nodes are made under tmp_path, never the real /dev/null."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tagger_showdown import atomic


def test_a_fifo_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """Before: ``os.replace`` swapped a regular file over the fifo."""
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"out\.json is a fifo \(named pipe\), not a regular file"):
        atomic.write_text(fifo, "{}")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no partial file left


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_a_character_device_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """Before: a node made like /dev/null (``mknod X c 1 3``) became a regular file."""
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with pytest.raises(OSError, match="is a character device"):
        atomic.write_bytes(node, b"data")
    assert stat.S_ISCHR(node.lstat().st_mode)


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    """Before: the link was replaced by a regular file and its target kept the old content."""
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "report.html"
    target.write_text("old")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    atomic.write_text(link, "new")
    assert link.is_symlink()
    assert link.readlink() == target
    assert target.read_text() == "new"


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "sub" / "out.csv")
    atomic.write_text(link, "a,b\n")
    assert link.is_symlink()
    assert (tmp_path / "sub" / "out.csv").read_text() == "a,b\n"


@pytest.mark.parametrize(("make", "kind"), [(os.mkfifo, "a fifo (named pipe)"), (os.mkdir, "a folder")])
def test_not_a_file_reason_names_the_kind(tmp_path: Path, make: Callable[[Path], None], kind: str) -> None:
    path = tmp_path / "x"
    make(path)
    link = tmp_path / "link"
    link.symlink_to(path)
    assert atomic.not_a_file_reason(path) == kind
    assert atomic.not_a_file_reason(link) == kind  # followed
    assert atomic.not_a_file_reason(tmp_path / "missing") is None
