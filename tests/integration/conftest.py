"""Integration runs: each key scenario runs pytest in a subprocess, without and with pytest-xdist."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _lean_subprocess_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Runs under test need no hypothesis (its plugin costs seconds per start) nor pytest's cache, and
    keep their prediction cache to this test (their rootdir can be a shared parent folder)."""
    # A suite itself run under xdist must not make the runs under test look like xdist workers
    # (pytest-benchmark reads this variable and would save nothing).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv(
        "PYTEST_ADDOPTS",
        f"-p no:hypothesispytest -p no:cacheprovider --showdown-cache-dir={tmp_path / 'showdown-cache'}",
    )


@pytest.fixture(params=[pytest.param([], id="no-xdist"), pytest.param(["-n", "2"], id="xdist")])
def xdist_args(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


RunShowdown = Callable[..., tuple[pytest.RunResult, dict[str, Any]]]


@pytest.fixture
def run_showdown(pytester: pytest.Pytester, xdist_args: list[str]) -> RunShowdown:
    """Run pytest with the plugin in a subprocess and return the result and its --showdown-json."""

    def run(*args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
        out = pytester.path / "showdown.json"
        out.unlink(missing_ok=True)
        result = pytester.runpytest_subprocess(*xdist_args, "--showdown-json", str(out), *args)
        document = json.loads(out.read_text()) if out.exists() else {}
        return result, document

    return run


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
