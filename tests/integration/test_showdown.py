"""The built-in showdown end to end: control, the table, JSON, the gate, ini values and usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tagger_showdown.columns import post_rows
from tests.helpers.brightness import brightness_dataset, install_brightness_tagger
from tests.helpers.datasets import four_ratings
from tests.helpers.runs import ShowdownRun, table_rows


def test_control_scores_one_on_every_demo_post(run_showdown: ShowdownRun) -> None:
    result, document = run_showdown("--tagger", "control")
    assert result.ret == 0
    scores = [post["score"] for post in post_rows(document)]
    assert len(scores) >= 40
    assert set(scores) == {1.0}
    result.stdout.fnmatch_lines(["tagger-showdown: * posts from the bundled demo dataset*"])
    assert table_rows(result)["control"][3] == "1.000"


def test_control_scores_one_over_general_and_character(run_showdown: ShowdownRun) -> None:
    result, document = run_showdown("--tagger", "control", "--showdown-categories", "general+character")
    assert result.ret == 0
    assert {post["score"] for post in post_rows(document)} == {1.0}
    assert document["categories"] == ["character", "general"]
    result.stdout.fnmatch_lines(["scored over general+character tags"])


def test_baseline_gate_passes_and_fails_with_a_clear_message(run_showdown: ShowdownRun) -> None:
    db = install_brightness_tagger(run_showdown.pytester)  # averages 0.167 (tests/helpers/brightness.py)
    passing, _ = run_showdown(
        "--tagger", "bright", "--showdown-db", str(db), "--showdown-baseline", "bright=0.1"
    )
    assert passing.ret == 0
    passing.assert_outcomes(passed=9)  # 8 posts and gate[baseline-bright]
    failing, _ = run_showdown(
        "--tagger", "bright", "--showdown-db", str(db), "--showdown-baseline", "bright=0.5"
    )
    assert failing.ret == 1
    failing.assert_outcomes(passed=8, failed=1)
    failing.stdout.fnmatch_lines(
        ["FAIL baseline: bright: average score 0.167 is below its baseline 0.500 over 8 posts; worst*"]
    )


def test_ids_name_tagger_and_post_and_limit_spreads_ratings(
    run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    db = four_ratings(tmp_path / "data.db")
    result, _ = run_showdown(
        "--tagger", "control", "--showdown-db", str(db), "--showdown-limit", "4", "--collect-only", "-q"
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "tagger-showdown::test_showdown[[]control-post100-g[]]",
            "tagger-showdown::test_showdown[[]control-post102-s[]]",
            "tagger-showdown::test_showdown[[]control-post104-q[]]",
            "tagger-showdown::test_showdown[[]control-post106-e[]]",
        ]
    )


def test_ratings_option_filters_posts(run_showdown: ShowdownRun, tmp_path: Path) -> None:
    db = four_ratings(tmp_path / "data.db")
    result, document = run_showdown(
        "--tagger", "control", "--showdown-db", str(db), "--showdown-ratings", "q,e"
    )
    assert result.ret == 0
    assert sorted({post["rating"] for post in post_rows(document)}) == ["e", "q"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tagger", "no-such-tagger"], "*tagger-showdown: unknown tagger 'no-such-tagger'; known: *"),
        (
            ["--tagger", "control", "--showdown-db", "missing.db"],
            "*tagger-showdown: --showdown-db: dataset missing.db does not exist*",
        ),
        (["--tagger", "control", "--showdown-ratings", "x"], "*--showdown-ratings: unknown rating(s) x*"),
        (
            ["--tagger", "control", "--showdown-baseline", "control"],
            "*--showdown-baseline: cannot read 'control': expected NAME=SCORE*",
        ),
        (
            ["--tagger", "control", "--showdown-baseline", "control=2.0"],
            "*--showdown-baseline 'control=2.0': a baseline is an average score, a finite number at most 1",
        ),
        (["--tagger", ","], "ERROR: tagger-showdown: empty tagger name in ',': name a tagger, or 'all'"),
        (["--tagger", "control,,demo-small"], "*empty tagger name in 'control,,demo-small'*"),
    ],
)
def test_bad_options_are_usage_errors(run_showdown: ShowdownRun, args: list[str], message: str) -> None:
    result, _ = run_showdown(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_ini_configuration(pytester: pytest.Pytester, run_showdown: ShowdownRun) -> None:
    install_brightness_tagger(pytester)
    brightness_dataset(pytester.path / "data" / "posts.db")
    pytester.makeini(
        """
        [pytest]
        showdown_db = data/posts.db
        showdown_json = out/results.json
        showdown_baselines =
            bright = 0.5
        """
    )
    result, _ = run_showdown("--tagger", "bright", json_file=None)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*8 posts from */data/posts.db*", "FAIL baseline: bright: *baseline 0.500*"])
    assert (pytester.path / "out" / "results.json").is_file()


def test_demo_table_ranks_the_taggers_and_json_holds_the_same_numbers(run_showdown: ShowdownRun) -> None:
    result, document = run_showdown("--tagger", "demo-small,control,demo-large")
    assert result.ret == 0
    rows = table_rows(result)
    assert list(rows) == ["control", "demo-large", "demo-small"]
    assert float(rows["demo-large"][3]) > float(rows["demo-small"][3]) + 0.15
    columns = {
        "images": (1, "{}"),
        "errors": (2, "{}"),
        "avg_score": (3, "{:.3f}"),
        "median_score": (4, "{:.3f}"),
        "precision": (6, "{:.3f}"),
        "recall": (7, "{:.3f}"),
        "f1": (8, "{:.3f}"),
        "rating_accuracy": (9, "{:.3f}"),
        "incorrect_per_image": (10, "{:.2f}"),
        "practical_per_image": (11, "{:.2f}"),
    }
    for tagger, cells in rows.items():
        aggregates = document["taggers"][tagger]
        for key, (column, form) in columns.items():
            assert cells[column] == form.format(aggregates[key]), (tagger, key)
        posts = [p for p in post_rows(document) if p["tagger"] == tagger]
        assert len(posts) == aggregates["images"] == 48
        assert sum(p["score"] for p in posts) / 48 == pytest.approx(aggregates["avg_score"])
