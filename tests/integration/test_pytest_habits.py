"""What a pytest user expects of the plugin: quiet output per tagger, pytest-benchmark's options,
rerunnable node ids, selection by -k and -m, and path options that leave the rootdir alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tagger_showdown.benchmarking import TAGGER_GROUP
from pytest_tagger_showdown.columns import post_rows
from tests.helpers.datasets import four_ratings
from tests.helpers.runs import ShowdownRun

DEMO = str(Path(__file__).parents[2] / "fixtures" / "demo")


def test_the_demo_prints_one_row_per_tagger_in_at_most_60_lines(run_showdown: ShowdownRun) -> None:
    # No cache: every image is inferred, so pytest-benchmark has 144 items to tabulate.
    result, _ = run_showdown("--tagger", "all", DEMO, "--showdown-no-cache", json_file=None)
    assert result.ret == 0
    lines = result.outlines
    assert len(lines) <= 60, "\n".join(lines)
    output = "\n".join(lines)
    assert "runtime per image (seconds: preprocessing + inference):" in output
    assert "dataset metrics" in output
    assert "test_showdown[" not in output, "no per-item row from us or pytest-benchmark"
    if not run_showdown.workers:  # pytest-benchmark disables itself under pytest-xdist
        result.stdout.fnmatch_lines([f"*benchmark '{TAGGER_GROUP}': 3 tests*"])
        start = next(i for i, line in enumerate(lines) if TAGGER_GROUP in line)
        rows = {line.split()[0]: line.split() for line in lines[start : start + 7] if line[:1].isalpha()}
        # One round per image: each tagger's row is over its 48 images.
        assert {name: row[-2:] for name, row in rows.items() if name != "Name"} == {
            name: ["48", "1"] for name in ("control", "demo-large", "demo-small")
        }


def test_benchmark_verbose_keeps_pytest_benchmarks_per_item_table(
    run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    if run_showdown.workers:
        pytest.skip("pytest-benchmark disables itself under pytest-xdist workers")
    db = four_ratings(tmp_path / "data.db")
    args = ("--tagger", "control", "--showdown-db", str(db), "--showdown-no-cache")
    result, _ = run_showdown(*args, "--benchmark-verbose", json_file=None)
    result.stdout.fnmatch_lines(["*benchmark 'showdown: control': 8 tests*"])
    assert sum("test_showdown[control-post" in line for line in result.outlines) == 8


def test_benchmark_only_runs_the_showdown_and_warns_of_nothing(
    run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    if run_showdown.workers:
        pytest.skip("--benchmark-only with pytest-xdist workers is pytest-benchmark's usage error")
    db = four_ratings(tmp_path / "data.db")
    args = ("--tagger", "control", "--showdown-db", str(db), "--benchmark-only")
    # The second run is served from the cache: the declared benchmark fixture goes unused, silently.
    for _ in range(2):
        result, document = run_showdown(*args)
        result.assert_outcomes(passed=8)
        assert len(post_rows(document)) == 8
        result.stdout.no_fnmatch_line("*not used at all*")


def test_a_path_option_given_space_separated_leaves_the_cache_in_the_invocation_folder(
    pytester: pytest.Pytester, run_showdown: ShowdownRun
) -> None:
    # No ini file: pytest guesses its rootdir from the arguments, and before the plugin's options
    # are known it takes "../<name>.db" for one, so its guess is the parent folder.
    name = f"{pytester.path.name}.db"
    four_ratings(pytester.path.parent / name)
    result, _ = run_showdown("--tagger", "demo-small", "--showdown-db", f"../{name}", json_file=None)
    result.assert_outcomes(passed=8)
    assert (pytester.path / ".showdown_cache").is_dir()
    assert not (pytester.path.parent / ".showdown_cache").exists()


@pytest.mark.parametrize(
    ("selection", "taggers"),
    [(("-k", "demo-small"), {"demo-small"}), (("-m", "showdown"), {"control", "demo-small"})],
)
def test_the_showdown_is_selected_by_tagger_name_and_mark(
    pytester: pytest.Pytester,
    run_showdown: ShowdownRun,
    tmp_path: Path,
    selection: tuple[str, str],
    taggers: set[str],
) -> None:
    db = four_ratings(tmp_path / "data.db")
    result, document = run_showdown(
        "--tagger", "control,demo-small", "--showdown-db", str(db), "--showdown-no-cache", *selection
    )
    result.assert_outcomes(passed=8 * len(taggers))
    assert {post["tagger"] for post in post_rows(document)} == taggers


def test_a_printed_node_id_reruns_that_item(run_showdown: ShowdownRun, tmp_path: Path) -> None:
    db = four_ratings(tmp_path / "data.db")
    common = ("--tagger", "control,demo-small", "--showdown-db", str(db), "--showdown-no-cache")
    node = "tagger-showdown::test_showdown[demo-small-post102-s]"
    result, document = run_showdown(*common, node, "-v")
    assert result.ret == 0, result.stdout.str()  # not "file or directory not found"
    result.assert_outcomes(passed=1)
    assert [(p["tagger"], p["post_id"]) for p in post_rows(document)] == [("demo-small", 102)]
    # The function without parameters selects every item of the showdown, as in any test file.
    everything, _ = run_showdown(*common, "tagger-showdown::test_showdown")
    everything.assert_outcomes(passed=16)
    # As pytest prints it when the rootdir is another folder (a dataset path outside this one).
    relative, _ = run_showdown(*common, f"../{node}")
    relative.assert_outcomes(passed=1)
    # Without the --tagger that made the item there is no such item: say so, not "no tests ran".
    alone, _ = run_showdown("--showdown-db", str(db), node)
    assert alone.ret == pytest.ExitCode.USAGE_ERROR
    alone.stderr.fnmatch_lines(
        [f"ERROR: tagger-showdown: {node.replace('[', '[[]')} is an item of the built-in*"]
    )
    # A mistyped one names nothing: pytest's "not found" (before: every item deselected, exit 5).
    typo = node.replace("post102", "post1020")
    wrong, _ = run_showdown(*common, typo)
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR
    wrong.stderr.fnmatch_lines(
        [f"ERROR: tagger-showdown: not found: {typo.replace('[', '[[]')} (the built-in*"]
    )


def test_a_gated_tagger_left_out_by_the_selection_fails_once(
    run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    """Without a gate, leaving a tagger out (-k) narrows the run; with a baseline, the gate cannot
    judge it: one failed test case saying why (not a second one for the baseline)."""
    db = four_ratings(tmp_path / "data.db")
    common = ("--tagger", "control,demo-small", "--showdown-db", str(db), "--showdown-no-cache")
    result, _ = run_showdown(*common, "-k", "demo-small", "--showdown-baseline", "control=0.5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(
        ["FAIL scored: control: no post was scored: none of its 8 posts ran: the selected tests*"]
    )
    result.stdout.no_fnmatch_line("*gate[[]baseline-control[]]*")


def test_a_requested_provider_that_is_missing_is_a_warning_naming_what_runs(
    run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    # The test machine's onnxruntime is the CPU build (CUDA is what users ask for and may lack).
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    db = four_ratings(tmp_path / "data.db")
    result, document = run_showdown(
        "--tagger",
        "demo-small,control",
        "--showdown-db",
        str(db),
        "--showdown-providers",
        "CUDAExecutionProvider",
    )
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(
        [
            "tagger-showdown: warning: CUDAExecutionProvider requested but not available here; "
            "ONNX taggers run on CPUExecutionProvider",
            "scored over all tag categories (the study's choice); ONNX taggers on CPUExecutionProvider",
        ]
    )
    assert document["taggers"]["demo-small"]["provider"] == "CPUExecutionProvider"
    assert document["taggers"]["control"].get("provider") is None  # the control runs no model
