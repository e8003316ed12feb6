"""What the gates must judge: every tagger a gate names is judged or the run fails, whatever chose the
taggers (``--tagger`` or marks) and whatever the selected tests left out; a gate that judged nothing,
or was stopped before judging, never exits 0. Each scenario in three xdist modes."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.cli import main as cli_main
from tests.helpers.brightness import install_brightness_tagger
from tests.helpers.runs import XDIST_MODES, ShowdownRun

UNMARKED = "def test_unmarked(post, tagger, showdown):\n    showdown.run(post, tagger)\n"
EMPTY_MARK = (
    "import pytest\n\n@pytest.mark.tagger()\ndef test_empty(post, tagger, showdown):\n"
    "    showdown.run(post, tagger)\n"
)
MARKED = """
import pytest

@pytest.mark.tagger("bright", "control")
def test_marked(post, tagger, showdown):
    showdown.run(post, tagger)
"""
NO_TEST_RAN = (
    "FAIL scored: bright: no post was scored: no test ran it: no --tagger selects it and no collected "
    "test is marked for it (pass --tagger bright, or mark a test @pytest.mark.tagger('bright'))"
)
LEFT_OUT = (
    "FAIL scored: bright: no post was scored: none of its 8 posts ran: the selected tests (-k, -m, "
    "--deselect, paths, a skip) left them out"
)


def _save_base(run_showdown: ShowdownRun, db: str, taggers: str, name: str = "base.json") -> None:
    """A results document of ``taggers`` over the 8 posts, to compare against."""
    first, _ = run_showdown("--tagger", taggers, "--showdown-db", db, json_file=name, distribute=False)
    assert first.ret == 0


@pytest.mark.parametrize(
    ("test_file", "gate"),
    [
        (UNMARKED, ("--showdown-baseline", "bright=0.1")),
        (UNMARKED, ("-o", "showdown_baselines=bright=0.1")),
        (EMPTY_MARK, ("--showdown-baseline", "bright=0.1")),
    ],
    ids=["unmarked", "ini", "empty-mark"],
)
def test_a_baseline_of_a_tagger_no_test_ran_fails_without_tagger(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, test_file: str, gate: tuple[str, ...]
) -> None:
    db = install_brightness_tagger(pytester)
    pytester.makepyfile(test_user=test_file)
    # Before: 8 skipped, exit 0, nothing said about the gate.
    result, document = run_showdown("--showdown-db", str(db), *gate)
    assert result.ret == 1
    result.assert_outcomes(skipped=8, failed=1)
    result.stdout.fnmatch_lines([NO_TEST_RAN, "*FAILED tagger-showdown::gate[[]scored-bright[]]*"])
    assert document["gates"] == [
        {"gate": "scored", "tagger": "bright", "failure": NO_TEST_RAN.removeprefix("FAIL scored: ")}
    ]


def test_a_baseline_without_tagger_and_without_tests_fails_saying_no_test_ran_it(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    # Before: exit 5, "no tests ran", the baseline never mentioned.
    result, _ = run_showdown("--showdown-db", str(db), "--showdown-baseline", "bright=0.1")
    assert result.ret == 1
    result.stdout.fnmatch_lines([NO_TEST_RAN, "*= 1 failed in *"])


def test_a_compare_gate_that_compared_no_tagger_fails(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    _save_base(run_showdown, str(db), "bright")
    pytester.makepyfile(test_user=UNMARKED)
    # Before: 8 skipped, exit 0.
    result, _ = run_showdown("--showdown-db", str(db), "--showdown-compare", "base.json")
    assert result.ret == 1
    result.assert_outcomes(skipped=8, failed=1)
    result.stdout.fnmatch_lines(
        [
            "FAIL compare: no tagger was compared against saved run base: the later run scored no post; "
            "no tagger selected: pass --tagger NAME or mark the test @pytest.mark.tagger('NAME')",
            "*FAILED tagger-showdown::gate[[]compare-no-tagger[]]*",
        ]
    )


@pytest.mark.parametrize(
    ("gate", "select", "line"),
    [
        (("--showdown-baseline", "bright=0.1"), ("-k", "other"), LEFT_OUT),
        (("--showdown-baseline", "bright=0.1"), ("test_other.py",), NO_TEST_RAN),
        (("--showdown-compare", "base.json"), ("-k", "other"), LEFT_OUT),
        # Marks chose bright and control; only control's items ran: bright, collected, is still judged.
        (("--showdown-compare", "base.json"), ("-k", "control"), LEFT_OUT),
    ],
    ids=["baseline-k", "baseline-path", "compare-k", "compare-one-tagger"],
)
def test_deselecting_a_marked_taggers_items_does_not_drop_its_gate(
    pytester: pytest.Pytester,
    run_showdown: ShowdownRun,
    gate: tuple[str, ...],
    select: tuple[str, ...],
    line: str,
) -> None:
    db = install_brightness_tagger(pytester)
    _save_base(run_showdown, str(db), "bright,control")
    pytester.makepyfile(test_marked=MARKED, test_other="def test_other():\n    pass\n")
    # Before: "1 passed, 16 deselected" (8 passed for control), exit 0: the gate was dropped.
    result, _ = run_showdown("--showdown-db", str(db), *gate, *select)
    assert result.ret == 1
    result.stdout.fnmatch_lines([line, "*FAILED tagger-showdown::gate[[]scored-bright[]]*"])
    result.stdout.no_fnmatch_line("FAIL compare:*")  # one cause, one failure


def test_a_tagger_missing_from_the_compared_run_fails_the_compare_gate_and_the_cli(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, capsys: pytest.CaptureFixture[str]
) -> None:
    db = install_brightness_tagger(pytester)
    _save_base(run_showdown, str(db), "bright")
    # Before: control went ungated, exit 0 ("Holm over 0 tagger(s)" with --tagger control alone).
    for taggers, passed in (("control", 8), ("bright,control", 17)):
        result, _ = run_showdown(
            "--tagger",
            taggers,
            "--showdown-db",
            str(db),
            "--showdown-compare",
            "base.json",
            json_file="new.json",
        )
        assert result.ret == 1
        result.assert_outcomes(passed=passed, failed=1)
        result.stdout.fnmatch_lines(
            [
                "FAIL compare: control: cannot compare against saved run base: it scored no post there "
                "(that run has bright)",
                "*FAILED tagger-showdown::gate[[]compare-control[]]*",
            ]
        )
    capsys.readouterr()
    # The same two runs from the command line: exit 1 (before: 0).
    assert cli_main(["compare", str(pytester.path / "base.json"), str(pytester.path / "new.json")]) == 1
    assert (
        "REGRESSION control: cannot compare against base: it scored no post there" in capsys.readouterr().out
    )


def test_a_gate_judged_over_some_posts_says_over_how_many(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    common = ("--tagger", "bright", "--showdown-db", str(db))
    # post200 is rated g: 2/3, above the baseline. Before: "2 passed, 7 deselected", no word of the 1 of 8.
    passed, _ = run_showdown(*common, "--showdown-baseline", "bright=0.1", "-k", "post200")
    assert passed.ret == 0
    passed.stdout.fnmatch_lines(
        [
            "note: bright was judged over 1 of 8 posts: the selected tests (-k, -m, --deselect, paths, a "
            "skip) left the others out",
        ]
    )
    failed, _ = run_showdown(*common, "--showdown-baseline", "bright=0.5", "-k", "post200 or post201")
    assert failed.ret == 1
    failed.stdout.fnmatch_lines(
        ["FAIL baseline: bright: average score 0.333 is below its baseline 0.500 over 2 of 8 posts; *"]
    )
    whole, _ = run_showdown(*common, "--showdown-baseline", "bright=0.1")
    assert whole.ret == 0
    whole.stdout.no_fnmatch_line("note: bright was judged*")


@pytest.mark.parametrize("mode", ["no-xdist", "n0"])
def test_pytest_exit_with_code_0_under_a_gate_exits_2(pytester: pytest.Pytester, mode: str) -> None:
    """Under ``-n 2`` pytest-xdist itself turns a worker's pytest.exit into an internal error (exit 3)."""
    db = install_brightness_tagger(pytester)
    pytester.makepyfile(
        test_stop="""
        import pytest

        @pytest.mark.tagger("bright")
        def test_score(post, tagger, showdown):
            showdown.run(post, tagger)
            if post.id == 202:
                pytest.exit("enough", returncode=0)
        """
    )
    run = ShowdownRun(pytester, XDIST_MODES[mode])
    # Before: exit 0 with the baseline unjudged.
    gated, _ = run("--showdown-db", str(db), "--showdown-baseline", "bright=0.1")
    assert gated.ret == pytest.ExitCode.INTERRUPTED
    gated.stdout.fnmatch_lines(
        [
            "interrupted: outputs marked interrupted; not gated, not saved as history; a gate is "
            "configured: exit code 2, never 0"
        ]
    )
    # Without a gate, the test's own exit code stands.
    ungated, _ = run("--showdown-db", str(db))
    assert ungated.ret == 0


def test_a_gated_tagger_whose_tests_score_no_post_fails_saying_so(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    pytester.makepyfile(test_user="def test_takes(post, tagger):\n    assert tagger.spec.name == 'bright'\n")
    common = ("--tagger", "bright", "--showdown-db", str(db))
    # Without a gate, a test of the user's own that takes a tagger is theirs to judge.
    ungated, _ = run_showdown(*common)
    assert ungated.ret == 0
    ungated.assert_outcomes(passed=8)
    # Before: failed, but said "none of its 8 posts ran: the selected tests (-k, -m, ...) left them out".
    gated, _ = run_showdown(*common, "--showdown-baseline", "bright=0.1")
    assert gated.ret == 1
    gated.assert_outcomes(passed=8, failed=1)
    gated.stdout.fnmatch_lines(
        [
            "FAIL scored: bright: no post was scored: its tests ran but recorded no post: a gate judges the "
            "posts a test scores with showdown.run(post, tagger)"
        ]
    )


#: A conftest hook that ends the run with ``pytest.exit(returncode=0)``, by where it stops the run.
EXITS = {
    "configure-before-plugin": "@pytest.hookimpl(tryfirst=True)\ndef pytest_configure(config):",
    "configure-after-plugin": "@pytest.hookimpl(trylast=True)\ndef pytest_configure(config):",
    "sessionstart": "def pytest_sessionstart(session):",
    "collection": "def pytest_collection_modifyitems(items):",
}
STOPPED = (
    "tagger-showdown: the run ended before its gates were judged; a gate is configured: exit code 2, never 0"
)


def _exit_in(pytester: pytest.Pytester, hook: str) -> None:
    """Append to the conftest a hook that calls ``pytest.exit("stop", returncode=0)``."""
    conftest = pytester.path / "conftest.py"
    conftest.write_text(
        f'{conftest.read_text()}\nimport pytest\n\n{hook}\n    pytest.exit("stop", returncode=0)\n'
    )


@pytest.mark.parametrize("hook", list(EXITS))
@pytest.mark.parametrize(
    "gate",
    [("--showdown-baseline", "bright=0.1"), ("--showdown-compare", "base.json")],
    ids=["baseline", "compare"],
)
def test_pytest_exit_0_before_the_gates_were_judged_exits_2(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, hook: str, gate: tuple[str, ...]
) -> None:
    db = install_brightness_tagger(pytester)
    _save_base(run_showdown, str(db), "bright")
    _exit_in(pytester, EXITS[hook])
    common = ("--tagger", "bright", "--showdown-db", str(db))
    # Before: exit 0 with the gate never judged (a collection hook's exit gave 2 already).
    result, _ = run_showdown(*common, *gate)
    if hook == "collection" and run_showdown.workers:
        # pytest-xdist turns a worker's pytest.exit into an internal error itself.
        assert result.ret == pytest.ExitCode.INTERNAL_ERROR
        return
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert (STOPPED in result.stderr.lines) != (hook == "collection")  # a summary line says it there
    # Without a gate, the conftest's exit code stands.
    ungated, _ = run_showdown(*common)
    assert ungated.ret == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--collect-only",),
        ("--fixtures",),
        ("--fixtures-per-test",),
        ("--markers",),
        ("--setup-only",),
        ("--setup-plan",),
        ("--help",),
        ("--version",),
    ],
    ids=lambda args: args[0].lstrip("-"),
)
@pytest.mark.parametrize("stop", [True, False], ids=["pytest-exit", "no-exit"])
def test_runs_that_mean_to_run_no_test_keep_their_exit_code_under_a_gate(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, args: tuple[str, ...], stop: bool
) -> None:
    db = install_brightness_tagger(pytester)
    if stop:
        _exit_in(pytester, EXITS["sessionstart"])
    # Before: --setup-only and --setup-plan were gated (no post scored: exit 1).
    result, _ = run_showdown(
        "--tagger", "bright", "--showdown-db", str(db), "--showdown-baseline", "bright=0.1", *args
    )
    assert result.ret == 0, result.stdout.str()
    assert STOPPED not in result.stderr.lines


@pytest.mark.parametrize(("baseline", "code"), [("0.9", 1), ("0.1", 0)], ids=["failed", "passed"])
def test_pytest_exit_0_after_the_gates_keeps_a_failed_gates_exit_code(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, baseline: str, code: int
) -> None:
    db = install_brightness_tagger(pytester)
    _exit_in(pytester, "@pytest.hookimpl(tryfirst=True)\ndef pytest_sessionfinish(session):")
    # Before: exit 0 with bright below its baseline.
    result, _ = run_showdown(
        "--tagger", "bright", "--showdown-db", str(db), "--showdown-baseline", f"bright={baseline}"
    )
    assert result.ret == code
