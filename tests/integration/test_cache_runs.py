"""The cache inside pytest runs: a new cut-off re-scores a cached run without the model, and a size
limit below what the run would cache holds while the run finishes correctly (with and without xdist)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  (imported here, not inside an in-process run that would unload it)
import pytest

from pytest_tagger_showdown.cache import ShowdownCache
from pytest_tagger_showdown.columns import post_rows
from pytest_tagger_showdown.outputs import probabilities_path
from pytest_tagger_showdown.probabilities import load_stores
from pytest_tagger_showdown.taggers.spec import Thresholds
from pytest_tagger_showdown.taggers.wd14 import OutputLayout
from pytest_tagger_showdown.vocabulary import Vocabulary
from tests.helpers.datasets import varied_dataset
from tests.helpers.modelmaker import write_tiny_tagger
from tests.helpers.runs import ShowdownRun

TAGGER = "onnx:model"


@pytest.fixture
def showdown_files(pytester: pytest.Pytester) -> Path:
    write_tiny_tagger(pytester.path / "model")
    return varied_dataset(pytester.path / "data.db", 16)


def run(run_showdown: ShowdownRun, *args: str) -> tuple[pytest.RunResult, list[dict[str, Any]]]:
    result, document = run_showdown(
        "--tagger", TAGGER, "--showdown-db", "data.db", "--showdown-cache-dir", "cache", *args,
        json_file="out.json",
    )  # fmt: skip
    return result, post_rows(document)


def break_in_place(path: Path) -> None:
    """Overwrite a file with zeros, keeping its size, inode and mtime: the cache's record of the
    model still holds, but loading the model now fails."""
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.write(b"\0" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_new_threshold_rescores_a_cached_run_without_loading_the_model(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, showdown_files: Path
) -> None:
    cold, first = run(run_showdown)
    cold.assert_outcomes(passed=16)
    vocabulary = Vocabulary.from_csv(pytester.path / "model" / "selected_tags.csv")
    (store,) = load_stores(probabilities_path(pytester.path / "out.json"))
    break_in_place(pytester.path / "model" / "model.onnx")
    broken, _ = run(run_showdown, "--showdown-no-cache")
    broken.assert_outcomes(failed=17)  # the model cannot load any more: 16 posts, and no post scored
    for spec, thresholds in (("0.6", Thresholds(0.6, 0.6)), ("mcut=true", Thresholds(mcut=True))):
        warm, posts = run(run_showdown, "--showdown-threshold", spec)
        warm.assert_outcomes(passed=16)
        assert all(post["cached"] for post in posts)
        # The tags are the stored probabilities cut at the new thresholds.
        layout = OutputLayout(vocabulary)
        scores = store.scores
        assert scores.values is not None
        for index, post_id in enumerate(store.post_ids.tolist()):
            row = np.zeros(len(vocabulary), np.float32)
            span = slice(scores.indptr[index], scores.indptr[index + 1])
            row[scores.indices[span]] = scores.values[span]
            expected = layout.prediction(row, thresholds)
            (post,) = [p for p in posts if p["post_id"] == post_id]
            assert post["predicted"] == sorted(expected.tags), post_id
            assert post["predicted_rating"] == expected.rating
        assert [p["predicted"] for p in posts] != [p["predicted"] for p in first]


def _cache_size_plugin() -> str:
    """A conftest plugin measuring the cache folder after each item report (on the controller under
    xdist, while the workers keep writing) and the largest size it saw."""
    return """
from pathlib import Path

from pytest_tagger_showdown.cache import ShowdownCache


class Sampler:
    # Registered as a plugin: a conftest's own hooks only see items under its folder, and the
    # showdown's items live in the installed package.
    high = 0

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            cache = ShowdownCache(Path("cache"), max_size=None)
            usage = cache.usage()
            cache.close()
            self.high = max(self.high, usage["inputs"].bytes + usage["predictions"].bytes)

    def pytest_sessionfinish(self, session):
        if not hasattr(session.config, "workerinput"):
            Path("high.txt").write_text(str(self.high))


def pytest_configure(config):
    config.pluginmanager.register(Sampler(), "cache-sampler")
"""


def test_a_limit_below_the_runs_cache_holds_and_the_run_finishes_correctly(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, showdown_files: Path
) -> None:
    reference, expected = run(run_showdown, "--showdown-no-cache")
    reference.assert_outcomes(passed=16)
    full, _ = run(run_showdown, "--showdown-cache-dir", "full")
    full.assert_outcomes(passed=16)
    usage = ShowdownCache(pytester.path / "full", max_size=None).usage()
    full_size = usage["inputs"].bytes + usage["predictions"].bytes
    limit = full_size // 2  # 8 inputs of 16: an entry is 1/8 of the limit
    pytester.makeconftest(_cache_size_plugin())
    for _ in range(2):  # a second run over an evicted cache: hits and misses mixed
        bounded, posts = run(run_showdown, "--showdown-cache-max-size", str(limit))
        bounded.assert_outcomes(passed=16)
        assert [(p["post_id"], p["score"], p["predicted"]) for p in posts] == [
            (p["post_id"], p["score"], p["predicted"]) for p in expected
        ]
        assert 0 < int((pytester.path / "high.txt").read_text()) <= limit
        final = ShowdownCache(pytester.path / "cache", max_size=None).usage()
        assert 0 < final["inputs"].bytes + final["predictions"].bytes <= limit


def test_a_bad_cache_size_is_a_usage_error(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, showdown_files: Path
) -> None:
    for option in (["--showdown-cache-max-size", "10XB"], []):
        if not option:
            pytester.makeini("[pytest]\nshowdown_cache_max_size = lots\n")
        result, _ = run(run_showdown, *option)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        where = "--showdown-cache-max-size" if option else "showdown_cache_max_size in tox.ini"
        bad = "10XB" if option else "lots"
        result.stderr.fnmatch_lines([f"ERROR: tagger-showdown: {where} must be a size *{bad}*"])
        assert "INTERNALERROR" not in result.stderr.str()
