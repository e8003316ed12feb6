"""Option and ini text parsed into settings: every bad value a ValueError naming the option and the value."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pytest_tagger_showdown.settings import (
    build_settings,
    check_output_paths,
    check_tagger_names,
    parse_baselines,
    parse_margin,
    parse_thresholds,
)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["0.5"], [(None, {"all": "0.5"})]),
        (["general=0.4,character=0.9"], [(None, {"general": "0.4", "character": "0.9"})]),
        (["wd14-vit-v2:general=0.4"], [("wd14-vit-v2", {"general": "0.4"})]),
        (["wd14-vit-v2:0.6"], [("wd14-vit-v2", {"all": "0.6"})]),
        (["onnx:/tmp/m:mcut=true"], [("onnx:/tmp/m", {"mcut": "true"})]),
        # Several per-tagger specs in one value: before, one spec for a tagger "demo-large:0.6,demo-small".
        (["demo-large:0.6,demo-small:0.2"], [("demo-large", {"all": "0.6"}), ("demo-small", {"all": "0.2"})]),
        (["a:general=0.4, character=0.9"], [("a", {"general": "0.4", "character": "0.9"})]),
        (["0.5, b:0.2"], [(None, {"all": "0.5"}), ("b", {"all": "0.2"})]),
        (["a:0.3\nb:0.4", ""], [("a", {"all": "0.3"}), ("b", {"all": "0.4"})]),
    ],
)
def test_thresholds_parse(lines: list[str], expected: list[tuple[str | None, dict[str, str]]]) -> None:
    assert list(parse_thresholds(lines)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "--showdown-threshold 'abc': threshold 'abc' is not a number between 0 and 1"),
        ("1.5", "--showdown-threshold '1.5': threshold 1.5 is not between 0 and 1"),
        ("nan", "--showdown-threshold 'nan': threshold nan is not between 0 and 1"),
        ("-0.1", "--showdown-threshold '-0.1': threshold -0.1 is not between 0 and 1"),
        ("demo-large:", "--showdown-threshold 'demo-large:': threshold '' is not a number"),
        ("copyright=0.5", "--showdown-threshold 'copyright=0.5': unknown threshold 'copyright'"),
        ("mcut=maybe", "--showdown-threshold 'mcut=maybe': mcut='maybe': use true or false"),
        (":0.3", "--showdown-threshold ':0.3': empty tagger name"),
    ],
)
def test_bad_thresholds_are_errors_naming_the_option(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^--showdown-threshold ") as error:
        parse_thresholds([text])
    assert str(error.value).startswith(message)


def test_baselines_are_separated_by_commas_or_newlines_in_both_forms() -> None:
    # Before: ONE baseline for a tagger named "demo-large = 0.20, demo-small".
    assert parse_baselines(["demo-large = 0.20, demo-small = 0.20"]) == {"demo-large": 0.2, "demo-small": 0.2}
    assert parse_baselines(["demo-large=0.2,demo-small=0.3"]) == {"demo-large": 0.2, "demo-small": 0.3}
    assert parse_baselines(["a = 0.1\nb = -0.25", " , ", "# note"]) == {"a": 0.1, "b": -0.25}


def test_the_command_line_baselines_win_over_the_ini() -> None:
    settings = build_settings(ini_baselines=["a = 0.1, b = 0.2"], baselines=["a=0.3"])
    assert settings.baselines == {"a": 0.3, "b": 0.2}


TWO_BASELINES = "demo-large is given two baselines (0.9 and 0.2); give it one"


@pytest.mark.parametrize("lines", [["demo-large=0.9", "demo-large=0.2"], ["demo-large=0.9,demo-large=0.2"]])
def test_a_tagger_given_two_baselines_in_one_place_is_an_error(lines: list[str]) -> None:
    """Before: the last one won, silently (a gate at 0.2 where 0.9 was meant passes)."""
    with pytest.raises(ValueError, match=re.escape(f"--showdown-baseline: {TWO_BASELINES}")):
        build_settings(baselines=lines)
    with pytest.raises(ValueError, match=re.escape(f"showdown_baselines: {TWO_BASELINES}")):
        build_settings(ini_baselines=lines)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["a:0.5", "a:0.6"], "general for a is given twice ('a:0.5' and 'a:0.6')"),
        (["a:0.5,a:0.6"], "general for a is given twice ('a:0.5' and 'a:0.6')"),
        (["general=0.4", "0.5"], "general for every tagger is given twice ('general=0.4' and '0.5')"),
        (["a:mcut=true,mcut=false"], "mcut for a is given twice ('a:mcut=true' and 'mcut=false')"),
    ],
)
def test_a_threshold_given_twice_in_one_place_is_an_error(lines: list[str], message: str) -> None:
    """Before: the last one won, silently."""
    with pytest.raises(ValueError, match=re.escape(f"--showdown-threshold: {message}; give it once")):
        build_settings(thresholds=lines)
    with pytest.raises(ValueError, match=re.escape(f"showdown_threshold: {message}; give it once")):
        build_settings(ini_thresholds=lines)


def test_thresholds_refine_and_the_command_line_comes_last() -> None:
    settings = build_settings(ini_thresholds=["0.5", "a:0.6"], thresholds=["a:0.7", "general=0.4"])
    assert settings.thresholds == (
        (None, {"all": "0.5"}),
        ("a", {"all": "0.6"}),
        ("a", {"all": "0.7"}),
        (None, {"general": "0.4"}),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("demo-large=nan", "a baseline is an average score, a finite number at most 1"),
        ("demo-large=inf", "a baseline is an average score, a finite number at most 1"),
        ("demo-large=1.5", "a baseline is an average score, a finite number at most 1"),
        ("demo-large=", "'' is not a number"),
        ("demo-large=high", "'high' is not a number"),
        ("=0.2", "cannot read '=0.2': expected NAME=SCORE"),
        ("demo-large", "cannot read 'demo-large': expected NAME=SCORE"),
    ],
)
def test_bad_baselines_are_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="--showdown-baseline") as error:
        parse_baselines([text])
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nan", "a finite number >= 0; got nan"),
        ("inf", "a finite number >= 0; got inf"),
        ("-0.1", "a finite number >= 0; got -0.1"),
        ("two", "--showdown-margin must be a number, got 'two'"),
    ],
)
def test_bad_margins_are_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="--showdown-margin") as error:
        parse_margin(text)
    assert message in str(error.value)


def test_limit_text_is_an_error_naming_the_option() -> None:
    with pytest.raises(ValueError, match="--showdown-limit must be a whole number, got 'ten'"):
        build_settings(limit="ten")


def _unknown(name: str) -> object:
    raise LookupError(f"unknown tagger {name!r}")


def test_baselines_and_thresholds_must_name_a_selected_tagger() -> None:
    settings = build_settings(baselines=["demo-large=0.2"], thresholds=["nosuch:0.5"])
    with pytest.raises(ValueError, match=r"^--showdown-threshold: ") as error:
        check_tagger_names(settings, ("demo-large", "demo-small"), _unknown)
    assert str(error.value) == (
        "--showdown-threshold: nosuch is not a selected tagger (selected: demo-large, demo-small)"
    )
    typo = build_settings(baselines=["demo-smal=0.2"])
    with pytest.raises(ValueError, match="--showdown-baseline: demo-smal is not a selected tagger"):
        check_tagger_names(typo, ("demo-large", "demo-small"), _unknown)
    check_tagger_names(settings.__class__(baselines={"demo-large": 0.2}), ("demo-large",), _unknown)
    # No --tagger (tests choose with marks): the name must be one the registry knows.
    with pytest.raises(ValueError, match="--showdown-baseline: unknown tagger 'demo-smal'"):
        check_tagger_names(typo, (), _unknown)


def _outputs(**options: Any) -> None:
    check_output_paths(build_settings(**options))


def test_no_output_overwrites_an_input_or_another_output(tmp_path: Path) -> None:
    db = tmp_path / "data.db"
    db.write_bytes(b"")
    with pytest.raises(ValueError, match=r"--showdown-json .*data.db is the same file as --showdown-db"):
        _outputs(db=db, json_path=tmp_path / "sub" / ".." / "data.db")
    with pytest.raises(ValueError, match=r"--showdown-report .*out.csv is the same file as --showdown-csv"):
        _outputs(db=db, csv_path=tmp_path / "out.csv", report_path=tmp_path / "out.csv")
    with pytest.raises(ValueError, match=r"--showdown-csv .*run.probabilities.npz is the same file as"):
        _outputs(db=db, json_path=tmp_path / "run.json", csv_path=tmp_path / "run.probabilities.npz")
    with pytest.raises(ValueError, match=r"--showdown-json .* is a folder"):
        _outputs(db=db, json_path=tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="cannot write there"):
        _outputs(db=db, csv_path=tmp_path / "file" / "deeper" / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.db", "file"], "the probe leaves nothing"
    settings = build_settings(db=db, json_path=tmp_path / "new" / "folder" / "run.json")
    with pytest.raises(
        ValueError, match=r"--showdown-json .*base.json is the same file as --showdown-compare"
    ):
        check_output_paths(
            build_settings(db=db, json_path=tmp_path / "base.json"),
            {"--showdown-compare": tmp_path / "base.json"},
        )
    assert settings.json_path == tmp_path / "new" / "folder" / "run.json"
    # Another dataset than the run's (before: replaced by the JSON, while merge refused the same).
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ValueError, match=r"--showdown-json .*other\.db is a dataset \(an SQLite file\)"):
        _outputs(db=db, json_path=other)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("option", ["json_path", "csv_path", "report_path"])
def test_an_output_in_a_folder_that_takes_no_file_is_refused(option: str) -> None:
    """Before: ``os.access`` said /proc was writable (it says yes to root everywhere): the run went
    on and failed at the very end."""
    with pytest.raises(
        ValueError, match=r"/proc/x\.out: cannot write there \(/proc is not a writable folder"
    ):
        check_output_paths(build_settings(**{option: Path("/proc/x.out")}))


@pytest.mark.parametrize("option", ["json_path", "csv_path", "report_path"])
def test_an_output_that_is_a_symlink_loop_is_a_usage_error(tmp_path: Path, option: str) -> None:
    """Before: pathlib's RuntimeError on the loop became an INTERNALERROR (exit 3)."""
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    with pytest.raises(ValueError, match=r"^--showdown-\w+ .*loop1 cannot be followed to a file \(.*loop"):
        check_output_paths(build_settings(**{option: tmp_path / "loop1"}))
