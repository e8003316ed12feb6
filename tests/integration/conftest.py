"""Integration runs: each scenario runs pytest with the plugin in a subprocess, in three xdist modes."""

from __future__ import annotations

import pytest

from tests.helpers.runs import XDIST_MODES, ShowdownRun


@pytest.fixture(params=list(XDIST_MODES.values()), ids=list(XDIST_MODES))
def xdist_mode(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """One xdist mode's extra arguments: every scenario runs once in each mode."""
    mode: tuple[str, ...] = request.param
    return mode


@pytest.fixture
def run_showdown(
    pytester: pytest.Pytester, xdist_mode: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> ShowdownRun:
    """Runs pytest with the plugin in ``pytester``'s folder, in this test's xdist mode."""
    # A suite itself run under xdist must not make the runs under test look like xdist workers
    # (pytest-benchmark reads this variable and would save nothing).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    return ShowdownRun(pytester, xdist_mode)
