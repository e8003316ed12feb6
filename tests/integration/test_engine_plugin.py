"""The engine inside pytest: caches across runs, --showdown-no-cache, batch sizes, pytest-xdist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_tagger_showdown.cache import CACHE_VERSION, PREDICTIONS_DB
from pytest_tagger_showdown.columns import post_rows
from tests.helpers.datasets import varied_dataset
from tests.helpers.modelmaker import write_tiny_tagger
from tests.helpers.runs import ShowdownRun, table_rows

TAGGER = "onnx:model"


@pytest.fixture
def showdown_files(pytester: pytest.Pytester) -> Path:
    """A tiny WD14 model and a dataset with one corrupt image (post 105) in the test's folder."""
    write_tiny_tagger(pytester.path / "model")
    return varied_dataset(pytester.path / "data.db", 12, corrupt=105)


def run(
    run_showdown: ShowdownRun, *args: str, distribute: bool = True
) -> tuple[pytest.RunResult, dict[int, dict[str, Any]]]:
    """One showdown of the tiny tagger; its per-post results from --showdown-json, by post id."""
    result, document = run_showdown(
        "--tagger", TAGGER, "--showdown-db", "data.db", *args, distribute=distribute
    )  # fmt: skip
    return result, {post["post_id"]: post for post in post_rows(document)}


def scores(posts: dict[int, dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    """What must not depend on how a run was done (the error text names a Python object's address)."""
    return {
        pid: (p["score"], p["predicted"], p["predicted_rating"], bool(p["error"])) for pid, p in posts.items()
    }


def cached(posts: dict[int, dict[str, Any]]) -> list[bool]:
    return [post["cached"] for post in posts.values() if not post["error"]]


def test_a_rerun_is_served_from_the_cache_and_no_cache_bypasses_it(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, showdown_files: Path
) -> None:
    uncached, reference = run(run_showdown, "--showdown-no-cache")
    uncached.assert_outcomes(passed=11, failed=1)
    assert not (pytester.path / ".showdown_cache").exists(), "--showdown-no-cache writes nothing"
    cold, first = run(run_showdown)
    assert cached(first) == [False] * 11
    assert "(cached)" not in table_rows(cold)[TAGGER][5]
    assert (pytester.path / ".showdown_cache" / CACHE_VERSION / PREDICTIONS_DB).is_file()
    warm, second = run(run_showdown)
    warm.assert_outcomes(passed=11, failed=1)
    assert scores(second) == scores(first) == scores(reference)
    assert cached(second) == [True] * 11
    # Times are those measured on the cold run, and the table marks them as cached.
    assert [(p["preprocess_s"], p["inference_s"]) for p in second.values()] == [
        (p["preprocess_s"], p["inference_s"]) for p in first.values()
    ]
    assert table_rows(warm)[TAGGER][5].endswith("(cached)")
    # The corrupt image still fails its own item, with the reason, on the warm run too.
    warm.stdout.fnmatch_lines(["post105-s: cannot decode the image (12 bytes): *"])
    _, bypassed = run(run_showdown, "--showdown-no-cache")
    assert cached(bypassed) == [False] * 11
    assert scores(bypassed) == scores(reference)


def test_cache_dir_option_and_ini(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, showdown_files: Path
) -> None:
    run(run_showdown, "--showdown-cache-dir", "elsewhere")
    assert (pytester.path / "elsewhere" / CACHE_VERSION / PREDICTIONS_DB).is_file()
    assert not (pytester.path / ".showdown_cache").exists()
    pytester.makeini("[pytest]\nshowdown_cache_dir = from-ini\n")
    run(run_showdown)
    assert (pytester.path / "from-ini" / CACHE_VERSION / PREDICTIONS_DB).is_file()
    pytester.makeini("[pytest]\nshowdown_no_cache = true\n")
    _, posts = run(run_showdown, "--showdown-cache-dir", "elsewhere")
    assert cached(posts) == [False] * 11


def test_batches_and_xdist_give_the_scores_of_one_process(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, showdown_files: Path
) -> None:
    reference, expected = run(
        run_showdown, "--showdown-no-cache", "--showdown-batch-size", "1", distribute=False
    )
    reference.assert_outcomes(passed=11, failed=1)
    batched, posts = run(run_showdown, "--showdown-no-cache", "--showdown-batch-size", "4")
    batched.assert_outcomes(passed=11, failed=1)
    assert scores(posts) == scores(expected)
    for round_ in range(2):
        sharded, posts = run(run_showdown, "--showdown-batch-size", "3")
        sharded.assert_outcomes(passed=11, failed=1)
        assert scores(posts) == scores(expected)
        # The workers (under -n 2) share one cache: the second run is served from it.
        assert cached(posts) == [round_ == 1] * 11


def test_a_bad_batch_size_is_a_usage_error(run_showdown: ShowdownRun, showdown_files: Path) -> None:
    result, _ = run(run_showdown, "--showdown-batch-size", "zero")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--showdown-batch-size must be a number or auto, got 'zero'*"])


USER_TEST = """
import pytest

@pytest.mark.tagger("onnx:model")
def test_my_own(post, tagger, showdown):
    result = showdown.run(post, tagger)
    assert result.score is not None

def test_direct(tagger):
    assert tagger.size == 448
"""


def test_a_users_own_tests_go_through_the_engine(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, showdown_files: Path
) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    run(run_showdown)
    result, posts = run(run_showdown)
    result.assert_outcomes(passed=12, failed=1)
    assert cached(posts) == [True] * 11
