"""A run of thousands of items prints a progress line per twentieth of the run instead of pytest's
character per item (850 lines at 30,000 posts x 2 taggers), and pytest's own accounting stays."""

from __future__ import annotations

import re

import pytest

from tests.helpers.runs import ShowdownRun

#: 2,001 items of the user's own next to the 48 demo posts of the control tagger: 2,049 items.
MANY = """
import pytest

@pytest.mark.parametrize("i", range(2001))
def test_item(i):
    assert i != 1234
"""
PROGRESS = re.compile(r"tagger-showdown: [\d,]+/2,049 items \(\d+%\), \d+ failed, ")
#: A line of pytest's progress characters (``-q``).
CHARACTERS = re.compile(r"[.FEsxX]+ *(\[ *\d+%\])?")


def test_a_long_run_prints_progress_lines_and_keeps_pytests_counts(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    pytester.makepyfile(test_many=MANY)
    result, document = run_showdown("-q", "--tagger", "control")
    assert result.ret == 1
    progress = [line for line in result.outlines if PROGRESS.match(line)]
    assert len(progress) == 20
    assert progress[-1].startswith("tagger-showdown: 2,049/2,049 items (100%), 1 failed, ")
    assert not [line for line in result.outlines if CHARACTERS.fullmatch(line)]
    assert len(result.outlines) < 120
    assert "FAILED test_many.py::test_item[1234] - assert 1234 != 1234" in result.stdout.str()
    result.assert_outcomes(passed=2048, failed=1)
    assert document["taggers"]["control"]["images"] == 48


def test_a_long_run_without_the_showdown_is_left_as_pytest_prints_it(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    pytester.makepyfile(test_many=MANY)
    result, _ = run_showdown("-q", json_file=None)
    assert not [line for line in result.outlines if line.startswith("tagger-showdown:")]
    assert len([line for line in result.outlines if CHARACTERS.fullmatch(line)]) > 25
    result.assert_outcomes(passed=2000, failed=1)


def test_verbose_still_prints_a_line_per_item(pytester: pytest.Pytester, run_showdown: ShowdownRun) -> None:
    pytester.makepyfile(test_many=MANY)
    result, _ = run_showdown("-v", "--tagger", "control")
    assert len([line for line in result.outlines if "PASSED" in line]) == 2048
    assert not [line for line in result.outlines if PROGRESS.match(line)]
