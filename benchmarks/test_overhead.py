"""The plugin's own cost per item: a showdown item served from the cache against a plain pytest item.

Both runs have the same number of items in the same pytest, with the same plugins loaded; the
difference per item is everything the showdown adds to an item when the model has nothing to do:
fixtures, the cache lookup, scoring, recording (result and probability row in ``user_properties``),
reporting. The tagger is a small model with the real vocabulary size (10,861 outputs, a few dozen
tags kept per image), so a cached prediction is as big as a real one. Target: <= 1 ms per item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.conftest import RunPytest, vocabulary, write_dataset
from benchmarks.standin_vit import PLAUSIBLE_TAGS, RATINGS, TAGS
from fixtures.generators.onnx_model import Dense, build_wd14_onnx

ITEMS = 500
ROUNDS = 3


@pytest.fixture(scope="module")
def fast_model(tmp_path_factory: pytest.TempPathFactory, standin: Path) -> Path:
    """A pooled linear model over the stand-in's tag list, with its realistic output distribution."""
    folder = tmp_path_factory.mktemp("fast-model")
    (folder / "selected_tags.csv").write_bytes((standin / "selected_tags.csv").read_bytes())
    rng = np.random.default_rng(3)
    features = 3 * 8 * 8
    weight = rng.normal(0, features**-0.5, (features, TAGS)).astype(np.float32)
    bias = np.full(TAGS, -7.0, np.float32)
    bias[: len(RATINGS)] = 0.0
    plausible = rng.choice(np.arange(len(RATINGS), TAGS), PLAUSIBLE_TAGS, replace=False)
    bias[plausible] = rng.normal(-1.0, 1.0, PLAUSIBLE_TAGS)
    build_wd14_onnx(folder / "model.onnx", [Dense(weight, bias)], pool=56)
    return folder


def test_per_item_overhead_of_a_cached_prediction(
    benchmark: Any,
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    fast_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    benchmark.group = "overhead per item"
    db = write_dataset(
        tmp_path_factory.mktemp("small") / "data.db", ITEMS, vocabulary(fast_model), small=True
    )
    args = ["--tagger", f"onnx:{fast_model}", "--showdown-db", str(db), "--showdown-cache-dir", "cache"]
    run_pytest(*args).result.assert_outcomes(passed=ITEMS)  # the cold run fills the cache
    plain_test = (
        f"import pytest\n\n@pytest.mark.parametrize('i', range({ITEMS}))\ndef test_plain(i):\n    pass\n"
    )
    plain_s, showdown_s = [], []
    for _ in range(ROUNDS):
        # Alternating, and the fastest of each, so that other load on the machine hurts neither side.
        plain = pytester.makepyfile(test_plain=plain_test)
        baseline = run_pytest(str(plain))
        baseline.result.assert_outcomes(passed=ITEMS)
        plain_s.append(baseline.timer.loop_s)
        plain.unlink()
        warm = run_pytest(*args)
        warm.result.assert_outcomes(passed=ITEMS)
        warm.result.stdout.fnmatch_lines(["*(cached)*"])
        showdown_s.append(warm.timer.loop_s)
    benchmark.pedantic(lambda: run_pytest(*args), rounds=1, iterations=1, warmup_rounds=0)
    figures = {
        "items": ITEMS,
        "plain_item_ms": round(1000 * min(plain_s) / ITEMS, 3),
        "showdown_item_ms": round(1000 * min(showdown_s) / ITEMS, 3),
        "overhead_ms": round(1000 * (min(showdown_s) - min(plain_s)) / ITEMS, 3),
    }
    benchmark.extra_info.update(figures)
    print(f"\noverhead: {figures}")
