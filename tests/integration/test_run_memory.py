"""What a run keeps per item until its end stays small: the result and probability row an item
sends to the controller leave the item and its reports once every plugin has seen them (issue 13)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_tagger_showdown.probabilities import ROW_PROPERTY
from pytest_tagger_showdown.results import RESULT_PROPERTY
from tests.helpers.runs import ShowdownRun

CONFTEST = """
import json

def pytest_sessionfinish(session):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    kept = [name for report in reporter.stats.get("passed", []) for name, _ in report.user_properties]
    kept += [name for item in session.items for name, _ in item.user_properties]
    with open("kept.json", "w") as handle:
        json.dump(kept, handle)
"""


def test_results_leave_items_and_reports_after_every_plugin_saw_them(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    pytester.makeconftest(CONFTEST)
    result, document = run_showdown(
        "--tagger", "demo-large", "--showdown-limit", "8", "--junitxml", "junit.xml"
    )
    assert result.ret == 0
    assert document["taggers"]["demo-large"]["images"] == 8  # the controller got every result
    kept = json.loads((pytester.path / "kept.json").read_text())
    assert RESULT_PROPERTY not in kept
    assert ROW_PROPERTY not in kept
    # junitxml (a plugin reading user_properties as reports arrive) still saw each result.
    names = [p.get("name") for p in ET.parse(pytester.path / "junit.xml").iter("property")]
    assert names.count(RESULT_PROPERTY) == 8


UNSHOWN = """
import json

def pytest_sessionfinish(session):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    unshown = [(report.nodeid.split("::")[0], report.when) for report in reporter.stats.get("", [])]
    passed = [report.nodeid.split("::")[0] for report in reporter.stats.get("passed", [])]
    with open("stats.json", "w") as handle:
        json.dump({"unshown": unshown, "passed": passed}, handle)
"""


def test_showdown_setup_and_teardown_reports_are_not_kept_to_the_end(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    """pytest's terminal keeps every report until the run ends; a showdown item's passed setup and
    teardown reports, which no summary shows, are let go (1.5 kB per item). The user's own items and
    every call report stay as pytest keeps them."""
    pytester.makeconftest(UNSHOWN)
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    result, _ = run_showdown("--tagger", "control", "--showdown-limit", "6")
    assert result.ret == 0
    stats = json.loads((pytester.path / "stats.json").read_text())
    assert sorted(stats["unshown"]) == [["test_own.py", "setup"], ["test_own.py", "teardown"]]
    assert sorted(stats["passed"]) == ["tagger-showdown"] * 6 + ["test_own.py"]
