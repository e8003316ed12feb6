"""Threshold options and the tagger registry's name handling."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown import TaggerRegistry, TaggerSpec, Thresholds, UnknownTaggerError
from pytest_tagger_showdown.runner import TaggerPool
from pytest_tagger_showdown.taggers.backends import register_backends
from pytest_tagger_showdown.taggers.spec import parse_threshold_option


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5", (None, {"all": "0.5"})),
        ("general=0.4,character=0.9", (None, {"general": "0.4", "character": "0.9"})),
        ("wd14-vit-v2:general=0.4", ("wd14-vit-v2", {"general": "0.4"})),
        ("wd14-vit-v2:0.6", ("wd14-vit-v2", {"all": "0.6"})),
        ("onnx:/tmp/m:mcut=true", ("onnx:/tmp/m", {"mcut": "true"})),
    ],
)
def test_parse_threshold_option(text: str, expected: tuple[str | None, dict[str, str]]) -> None:
    assert parse_threshold_option(text) == expected


def test_threshold_overrides_validate() -> None:
    assert Thresholds().with_overrides({"all": "0.2"}) == Thresholds(general=0.2, character=0.2)
    assert Thresholds().with_overrides({"mcut": "yes"}).mcut is True
    with pytest.raises(ValueError, match="between 0 and 1"):
        Thresholds().with_overrides({"general": "1.5"})
    with pytest.raises(ValueError, match="unknown threshold"):
        Thresholds().with_overrides({"copyright": "0.5"})


def _registry() -> TaggerRegistry:
    registry = TaggerRegistry()
    register_backends(registry)
    registry.register(TaggerSpec(name="a", backend="control"))
    registry.register(TaggerSpec(name="b", backend="nonexistent"))
    registry.register_prefix(
        "folder", lambda arg: TaggerSpec(name=f"folder:{arg}", backend="onnx", source=arg)
    )
    return registry


def test_select_expands_commas_all_and_prefixes() -> None:
    registry = _registry()
    assert registry.select(["a,folder:/x", "a"]) == ["a", "folder:/x"]
    # 'all' keeps the taggers that can run here; backend "nonexistent" cannot.
    assert registry.select(["all"]) == ["a"]
    with pytest.raises(UnknownTaggerError, match=r"unknown tagger 'c'.*known: a, b.*folder:"):
        registry.select(["c"])


def test_registering_a_different_spec_under_a_taken_name_is_an_error() -> None:
    registry = _registry()
    registry.register(TaggerSpec(name="a", backend="control"))  # the same spec again is fine
    with pytest.raises(ValueError, match="already registered"):
        registry.register(TaggerSpec(name="a", backend="onnx"))
    registry.register(TaggerSpec(name="a", backend="onnx"), replace=True)
    assert registry.resolve("a").backend == "onnx"


def test_pool_applies_global_then_per_tagger_thresholds() -> None:
    pool = TaggerPool(_registry(), thresholds=[("a", {"general": "0.9"}), (None, {"all": "0.1"})])
    assert pool.spec("a").thresholds == Thresholds(general=0.9, character=0.1)
    assert pool.spec("folder:/x").thresholds == Thresholds(general=0.1, character=0.1)
