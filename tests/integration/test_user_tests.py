"""A user's own tests with the post, tagger and showdown fixtures, and tagger marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tagger_showdown.columns import post_rows
from tests.helpers.datasets import four_ratings
from tests.helpers.runs import ShowdownRun

USER_TEST = """
import pytest

@pytest.mark.tagger("control")
def test_control_finds_every_general_tag(post, tagger, showdown):
    result = showdown.run(post, tagger)
    assert post.tags_in({"general"}) <= set(result.predicted)
    assert result.score.score == 1.0

def test_uses_the_command_line_taggers(post, tagger):
    assert tagger.spec.name == "control"
"""


def test_marked_and_option_taggers_parametrize_user_tests(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    db = four_ratings(tmp_path / "data.db")
    result, document = run_showdown("--tagger", "control", "--showdown-db", str(db), "-v")
    assert result.ret == 0
    # 8 posts x (marked test + option test); the built-in showdown is not added.
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["*test_control_finds_every_general_tag[[]control-post100-g[]]*"])
    result.stdout.no_fnmatch_line("*tagger-showdown::test_showdown*")
    # Only the test that recorded through the showdown fixture shows up in the results.
    assert len(post_rows(document)) == 8


def test_a_test_without_any_tagger_is_skipped_with_the_reason(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    db = four_ratings(tmp_path / "data.db")
    result, _ = run_showdown("--showdown-db", str(db), "-rs")
    result.assert_outcomes(passed=8, skipped=8)
    result.stdout.fnmatch_lines(["*no tagger selected: pass --tagger NAME or mark the test*"])


def test_unknown_tagger_in_a_mark_is_a_collection_error(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tagger("nope")
        def test_x(tagger):
            pass
        """
    )
    result, _ = run_showdown()
    # Like an unknown mark under --strict-markers: an error collecting that file, in every xdist mode;
    # pytest stops the run (2), pytest-xdist's workers report it as a failed run (1).
    expected = pytest.ExitCode.TESTS_FAILED if run_showdown.workers else pytest.ExitCode.INTERRUPTED
    assert result.ret == expected
    result.stdout.fnmatch_lines(["*ERROR collecting*", "tagger-showdown: unknown tagger 'nope'*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_plugin_is_inert_without_a_showdown(pytester: pytest.Pytester, run_showdown: ShowdownRun) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result, _ = run_showdown(json_file=None)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("tagger-showdown:*")
    result.stdout.no_fnmatch_line("*tagger showdown*")


def test_the_command_line_narrows_marked_tests_to_its_taggers(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    pytester.makepyfile(
        test_marks="""
        import pytest

        @pytest.mark.tagger("control", "demo-small")
        def test_both(post, tagger, showdown):
            showdown.run(post, tagger)

        @pytest.mark.tagger("demo-large")
        def test_large_only(post, tagger):
            pass
        """
    )
    db = four_ratings(tmp_path / "data.db")
    result, document = run_showdown("--tagger", "control", "--showdown-db", str(db), "-rs")
    # test_both runs control only (8 posts); test_large_only names none of --tagger's: its 8 items skipped.
    result.assert_outcomes(passed=8, skipped=8)
    assert {post["tagger"] for post in post_rows(document)} == {"control"}
    result.stdout.fnmatch_lines(
        [
            "tagger-showdown: 8 posts from *; taggers: control; *",
            "SKIPPED*marked for demo-large, but --tagger selects control",
        ]
    )
