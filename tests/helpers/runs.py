"""pytest runs of the plugin in a subprocess, in one xdist mode, and what they print and write."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

#: The three ways a user runs the plugin: without pytest-xdist, with it but no workers, with 2 workers.
XDIST_MODES = {"no-xdist": ("-p", "no:xdist"), "n0": ("-n", "0"), "n2": ("-n", "2")}

#: Plugins a run under test does not need: hypothesis costs seconds per start, and pytest's cache
#: would write into the test's folder.
LEAN = ("-p", "no:hypothesispytest", "-p", "no:cacheprovider")


@dataclass(frozen=True)
class ShowdownRun:
    """Runs pytest with the plugin in a subprocess of ``pytester``'s folder, in one xdist mode."""

    pytester: pytest.Pytester
    #: The mode's extra arguments, one of :data:`XDIST_MODES`.
    mode: tuple[str, ...]

    @property
    def workers(self) -> int:
        """How many xdist workers the runs use (0: the items run in the main process)."""
        return int(self.mode[1]) if self.mode[0] == "-n" else 0

    def __call__(
        self, *args: str, json_file: str | None = "showdown.json", distribute: bool = True
    ) -> tuple[pytest.RunResult, dict[str, Any]]:
        """The run's result and the document it wrote to ``json_file`` (``{}`` if none; ``None`` passes no
        ``--showdown-json``). ``distribute=False`` runs without the mode's arguments, for a setup run
        that must not be distributed."""
        extra: tuple[str, ...] = ()
        out = None
        if json_file is not None:
            out = self.pytester.path / json_file
            out.unlink(missing_ok=True)
            extra = ("--showdown-json", str(out))
        mode = self.mode if distribute else ()
        result = self.pytester.runpytest_subprocess(*LEAN, *mode, *extra, *args)
        document = json.loads(out.read_text()) if out is not None and out.exists() else {}
        return result, document


def table_rows(result: pytest.RunResult) -> dict[str, list[str]]:
    """The showdown table printed at the end, as cells by tagger name."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "tagger showdown" in line)
    rows: dict[str, list[str]] = {}
    for line in lines[start:]:
        if line.startswith("| ") and not line.startswith("| tagger"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows
