"""The gates CI trusts: bad settings stop the run at configure (exit 4, one line), a failed gate is a
failed test case in pytest's final line and the JUnit XML, no post scored is no pass, every run is
history, and an interrupted run is neither gated nor saved. Each scenario in three xdist modes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_tagger_showdown.cli import main as cli_main
from pytest_tagger_showdown.columns import post_rows
from tests.helpers.brightness import install_brightness_tagger
from tests.helpers.runs import XDIST_MODES, ShowdownRun

E = "ERROR: tagger-showdown: "


def _usage_error(result: pytest.RunResult, line: str) -> None:
    """Exit code 4 with one ``ERROR: tagger-showdown: ...`` line and no traceback."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [text for text in result.errlines if text.strip()]
    assert errors == [line], errors
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_comma_separated_baselines_in_the_ini_fail_the_weak_tagger_in_junit_and_the_final_line(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    # Before: read as ONE baseline for a tagger named "bright = 0.5, control": exit 0.
    pytester.makeini("[pytest]\nshowdown_baselines = bright = 0.5, control = 0.9\n")
    xml = pytester.path / "junit.xml"
    result, document = run_showdown(
        "--tagger", "bright,control", "--showdown-db", str(db), f"--junitxml={xml}"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "FAIL baseline: bright: average score 0.167 is below its baseline 0.500 over 8 posts;*",
            "*FAILED tagger-showdown::gate[[]baseline-bright[]] - bright: average score 0.167*",
            "*= 1 failed, 17 passed in *",
        ]
    )
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("18", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failure = cases["gate[baseline-bright]"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("bright: average score 0.167")
    assert cases["gate[baseline-control]"].find("failure") is None
    assert document["gates"] == [
        {"gate": "baseline", "tagger": "bright", "failure": failure.get("message")},
        {"gate": "baseline", "tagger": "control", "failure": None},
    ]
    # The same from the command line, comma-separated.
    cli, _ = run_showdown(
        "--tagger",
        "bright,control",
        "--showdown-db",
        str(db),
        "--showdown-baseline",
        "bright=0.1,control=0.9",
    )
    assert cli.ret == 0
    cli.stdout.fnmatch_lines(["*= 18 passed in *"])


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("--showdown-threshold", "abc"),
            E + "--showdown-threshold 'abc': threshold 'abc' is not a number between 0 and 1",
        ),
        (
            ("--showdown-threshold", "1.5"),
            E + "--showdown-threshold '1.5': threshold 1.5 is not between 0 and 1",
        ),
        (
            ("--showdown-threshold", "nosuch:0.5"),
            E + "--showdown-threshold: nosuch is not a selected tagger (selected: bright, control)",
        ),
        (
            ("--showdown-threshold", "bright:0.6,contrl:0.2"),
            E + "--showdown-threshold: contrl is not a selected tagger (selected: bright, control)",
        ),
        (
            ("--showdown-baseline", "bright=nan"),
            E + "--showdown-baseline 'bright=nan': a baseline is an average score, a finite number at most 1",
        ),
        (
            ("--showdown-baseline", "brigth=0.2"),
            E + "--showdown-baseline: brigth is not a selected tagger (selected: bright, control)",
        ),
        (
            ("--showdown-margin", "nan"),
            E + "--showdown-margin is a drop in average score, a finite number >= 0; got nan",
        ),
        (
            ("--showdown-json", "data.db"),
            "ERROR: tagger-showdown: --showdown-json data.db is the same file as --showdown-db: it would be "
            "overwritten",
        ),
    ],
    ids=[
        "threshold-text",
        "threshold-range",
        "threshold-name",
        "threshold-two",
        "nan",
        "typo",
        "margin",
        "path",
    ],
)
def test_bad_settings_stop_the_run_at_configure(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, args: tuple[str, ...], line: str
) -> None:
    """Before: thresholds failed in the run loop (INTERNALERROR, exit 3), the rest were ignored."""
    install_brightness_tagger(pytester)
    before = (pytester.path / "data.db").read_bytes()
    result, _ = run_showdown("--tagger", "bright,control", "--showdown-db", "data.db", *args, json_file=None)
    _usage_error(result, line)
    assert (pytester.path / "data.db").read_bytes() == before


@pytest.mark.parametrize(
    ("ini", "line"),
    [
        ("showdown_limit = 0", E + "showdown_limit in tox.ini must be at least 1, got 0"),
        (
            "showdown_baselines = brigth = 0.2",
            E + "showdown_baselines in tox.ini: brigth is not a selected tagger (selected: bright, control)",
        ),
        (
            "showdown_margin = -1",
            E + "showdown_margin in tox.ini is a drop in average score, a finite number >= 0; got -1",
        ),
        ("showdown_no_cache = maybe", E + "showdown_no_cache in tox.ini: invalid truth value 'maybe'"),
        ("showdown_ratings = x", E + "showdown_ratings in tox.ini: unknown rating(s) x: use g, s, q, e"),
    ],
    ids=["limit", "baseline", "margin", "bool", "ratings"],
)
def test_a_bad_ini_value_is_named_by_its_ini_key_and_file(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, ini: str, line: str
) -> None:
    """Before: the error named the command-line option the user never typed (``--showdown-limit``)."""
    install_brightness_tagger(pytester)
    pytester.makefile(".ini", tox=f"[pytest]\n{ini}\n")
    result, _ = run_showdown("--tagger", "bright,control", "--showdown-db", "data.db", json_file=None)
    _usage_error(result, line)


def test_no_output_overwrites_the_ini_file(pytester: pytest.Pytester, run_showdown: ShowdownRun) -> None:
    """Before: ``showdown_json = tox.ini`` replaced the configuration with the results."""
    install_brightness_tagger(pytester)
    ini = pytester.makefile(".ini", tox="[pytest]\nshowdown_json = tox.ini\n")
    before = ini.read_bytes()
    result, _ = run_showdown("--tagger", "bright", "--showdown-db", "data.db", json_file=None)
    _usage_error(
        result,
        E
        + f"showdown_json in tox.ini {ini} is the same file as the ini file tox.ini: it would be overwritten",
    )
    assert ini.read_bytes() == before


def test_a_run_that_scores_no_post_fails_and_says_why(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    # Before: "skipped", exit 0, no JSON. The dataset has no post rated q and e ... with a filter to g only
    # and -k matching nothing, no item of bright runs at all.
    result, document = run_showdown(
        "--tagger", "bright", "--showdown-db", str(db), "--showdown-baseline", "bright=0.1", "-k", "nomatch"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "FAIL scored: bright: no post was scored: none of its 8 posts ran: the selected tests (-k, -m, "
            "--deselect, paths, a skip) left them out",
        ]
    )
    # One cause, one failure: the baseline cannot judge a tagger that scored nothing, and says no more.
    result.stdout.no_fnmatch_line("FAIL baseline:*")
    assert document["taggers"]["bright"]["images"] == 0
    assert [gate["gate"] for gate in document["gates"]] == ["scored"]


def test_an_output_that_cannot_be_written_still_shows_the_verdict_and_fails(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    # The CSV path becomes a folder after configure time: writing it fails at the end.
    pytester.makeconftest(
        pytester.path.joinpath("conftest.py").read_text()
        + "\n\ndef pytest_sessionstart(session):\n"
        + "    import os\n    os.makedirs('posts.csv', exist_ok=True)\n"
    )
    result, document = run_showdown(
        "--tagger", "bright", "--showdown-db", str(db), "--showdown-csv", "posts.csv"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*tagger showdown*",
            "| bright *",
            "FAIL output: cannot write posts.csv: *posts.csv is a folder, not a regular file*",
        ]
    )
    assert document["taggers"]["bright"]["images"] == 8  # the other outputs are written


def test_comparing_runs_over_other_categories_is_a_usage_error(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    db = install_brightness_tagger(pytester)
    first, _ = run_showdown("--tagger", "bright", "--showdown-db", str(db), json_file="base.json")
    assert first.ret == 0
    # Before: compared, and reported as a DROP or a gain that is no change.
    result, _ = run_showdown(
        "--tagger",
        "bright",
        "--showdown-db",
        str(db),
        "--showdown-compare",
        "base.json",
        "--showdown-categories",
        "general+character",
        json_file=None,
    )
    _usage_error(
        result,
        "ERROR: tagger-showdown: --showdown-compare: runs scored over different tag categories cannot be "
        "compared: the saved run scored artist+character+copyright+general+meta, the other character+general "
        "(use the same --showdown-categories)",
    )


def test_history_grows_with_every_run_cached_or_distributed(pytester: pytest.Pytester) -> None:
    """Three warm autosaved reruns and one under -n 2: four saved runs, latest the last one."""
    db = install_brightness_tagger(pytester)
    plain = ShowdownRun(pytester, XDIST_MODES["no-xdist"])
    common = ("--tagger", "bright", "--showdown-db", str(db), "--benchmark-autosave")
    warm, _ = plain("--tagger", "bright", "--showdown-db", str(db), json_file=None)  # fills the cache
    assert warm.ret == 0
    for _ in range(3):
        rerun, document = plain(*common)
        assert rerun.ret == 0
        assert document["taggers"]["bright"]["cached"] == 8  # every prediction from the cache
    distributed, _ = ShowdownRun(pytester, XDIST_MODES["n2"])(*common)
    assert distributed.ret == 0
    saved = sorted(path.name[:4] for path in (pytester.path / ".benchmarks").glob("*/*.json"))
    assert saved == ["0001", "0002", "0003", "0004"]  # before: none (cached), none (xdist)
    for path in (pytester.path / ".benchmarks").glob("*/*.json"):
        document = json.loads(path.read_text())["tagger_showdown"]
        assert document["interrupted"] is False
        assert document["taggers"]["bright"]["model_fingerprint"]
        assert document["taggers"]["bright"]["thresholds"] == {
            "general": 0.35,
            "character": 0.85,
            "mcut": False,
        }
    compared, _ = plain("--tagger", "bright", "--showdown-db", str(db), "--showdown-compare", "latest")
    compared.stdout.fnmatch_lines(["compared with saved run 0004_*"])


def test_history_lists_four_runs(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    test_history_grows_with_every_run_cached_or_distributed(pytester)
    capsys.readouterr()
    assert cli_main(["history", "--storage", str(pytester.path / ".benchmarks")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| bright")]
    assert [row.split("|")[2].strip()[:4] for row in rows] == ["0001", "0002", "0003", "0004"]


def test_an_interrupted_run_is_written_marked_and_neither_gated_nor_saved(pytester: pytest.Pytester) -> None:
    db = install_brightness_tagger(pytester)
    pytester.makepyfile(
        test_stop="""
        import pytest

        @pytest.mark.tagger("bright")
        def test_score(post, tagger, showdown):
            showdown.run(post, tagger)
            if post.id == 203:
                raise KeyboardInterrupt
        """
    )
    plain = ShowdownRun(pytester, XDIST_MODES["no-xdist"])
    result, document = plain(
        "--tagger",
        "bright",
        "--showdown-db",
        str(db),
        "--benchmark-autosave",
        "--showdown-baseline",
        "bright=0.9",
        "--showdown-report",
        "report.html",
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert document["interrupted"] is True
    # The report says so too (before: it looked like a whole run).
    assert "interrupted (Ctrl-C): only the posts that ran" in (pytester.path / "report.html").read_text()
    assert len(post_rows(document)) == 3  # the interrupted item recorded nothing
    assert "gates" not in document
    # Neither this plugin nor pytest-benchmark saved the interrupted run (before: pytest-benchmark did).
    assert not list((pytester.path / ".benchmarks").glob("*/*.json"))
