"""The engine inside pytest: caches across runs, --showdown-no-cache, batch sizes, pytest-xdist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnxruntime  # noqa: F401  (imported here, not inside an in-process run that would unload it)
import pytest

from pytest_tagger_showdown.cache import CACHE_VERSION
from tests.integration.conftest import table_rows
from tests.unit.test_engine import varied_dataset, write_tiny_tagger

TAGGER = "onnx:model"


@pytest.fixture
def showdown_files(pytester: pytest.Pytester) -> Path:
    """A tiny WD14 model and a dataset with one corrupt image (post 105) in the test's folder."""
    write_tiny_tagger(pytester.path / "model")
    return varied_dataset(pytester.path / "data.db", 12, corrupt=105)


def run(
    pytester: pytest.Pytester, *args: str, subprocess: bool = False
) -> tuple[pytest.RunResult, dict[int, dict[str, Any]]]:
    """One showdown (in this process unless it needs its own, as pytest-xdist does); its per-post
    results from --showdown-json, by post id."""
    out = pytester.path / "out.json"
    out.unlink(missing_ok=True)
    runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest_inprocess
    result = runner(
        "-p", "no:cacheprovider", "--tagger", TAGGER, "--showdown-db", "data.db",
        "--showdown-json", str(out), *args,
    )  # fmt: skip
    posts = json.loads(out.read_text())["posts"] if out.exists() else []
    return result, {post["post_id"]: post for post in posts}


def scores(posts: dict[int, dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    """What must not depend on how a run was done (the error text names a Python object's address)."""
    return {
        pid: (p["score"], p["predicted"], p["predicted_rating"], bool(p["error"])) for pid, p in posts.items()
    }


def cached(posts: dict[int, dict[str, Any]]) -> list[bool]:
    return [post["cached"] for post in posts.values() if not post["error"]]


def test_a_rerun_is_served_from_the_cache_and_no_cache_bypasses_it(
    pytester: pytest.Pytester, showdown_files: Path
) -> None:
    uncached, reference = run(pytester, "--showdown-no-cache")
    uncached.assert_outcomes(passed=11, failed=1)
    assert not (pytester.path / ".showdown_cache").exists(), "--showdown-no-cache writes nothing"
    cold, first = run(pytester)
    assert cached(first) == [False] * 11
    assert "(cached)" not in table_rows(cold)[TAGGER][5]
    assert (pytester.path / ".showdown_cache" / CACHE_VERSION / "predictions").is_dir()
    warm, second = run(pytester)
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
    _, bypassed = run(pytester, "--showdown-no-cache")
    assert cached(bypassed) == [False] * 11
    assert scores(bypassed) == scores(reference)


def test_cache_dir_option_and_ini(pytester: pytest.Pytester, showdown_files: Path) -> None:
    run(pytester, "--showdown-cache-dir", "elsewhere")
    assert (pytester.path / "elsewhere" / CACHE_VERSION / "predictions").is_dir()
    assert not (pytester.path / ".showdown_cache").exists()
    pytester.makeini("[pytest]\nshowdown_cache_dir = from-ini\n")
    run(pytester)
    assert (pytester.path / "from-ini" / CACHE_VERSION / "predictions").is_dir()
    pytester.makeini("[pytest]\nshowdown_no_cache = true\n")
    _, posts = run(pytester, "--showdown-cache-dir", "elsewhere")
    assert cached(posts) == [False] * 11


def test_batches_and_xdist_give_the_scores_of_one_process(
    pytester: pytest.Pytester, showdown_files: Path
) -> None:
    reference, expected = run(pytester, "--showdown-no-cache", "--showdown-batch-size", "1")
    reference.assert_outcomes(passed=11, failed=1)
    batched, posts = run(pytester, "--showdown-no-cache", "--showdown-batch-size", "4")
    batched.assert_outcomes(passed=11, failed=1)
    assert scores(posts) == scores(expected)
    for round_ in range(2):
        sharded, posts = run(pytester, "-n", "2", "--showdown-batch-size", "3", subprocess=True)
        sharded.assert_outcomes(passed=11, failed=1)
        assert scores(posts) == scores(expected)
        # The workers share one cache: the second sharded run is served from it.
        assert cached(posts) == [round_ == 1] * 11


def test_a_bad_batch_size_is_a_usage_error(pytester: pytest.Pytester, showdown_files: Path) -> None:
    result, _ = run(pytester, "--showdown-batch-size", "zero")
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


def test_a_users_own_tests_go_through_the_engine(pytester: pytest.Pytester, showdown_files: Path) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    run(pytester)
    result, posts = run(pytester)
    result.assert_outcomes(passed=12, failed=1)
    assert cached(posts) == [True] * 11
