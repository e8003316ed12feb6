"""Threshold options and the tagger registry's name handling."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown import (
    TaggerLoadError,
    TaggerRegistry,
    TaggerSpec,
    Thresholds,
    UnknownTaggerError,
    default_registry,
)
from pytest_tagger_showdown.pool import TaggerPool
from pytest_tagger_showdown.taggers.backends import register_backends
from pytest_tagger_showdown.taggers.control import ControlTagger


def test_threshold_overrides_validate() -> None:
    assert Thresholds().with_overrides({"all": "0.2"}) == Thresholds(general=0.2, character=0.2)
    assert Thresholds().with_overrides({"mcut": "yes"}).mcut is True
    with pytest.raises(ValueError, match="between 0 and 1"):
        Thresholds().with_overrides({"general": "1.5"})
    with pytest.raises(ValueError, match="unknown threshold"):
        Thresholds().with_overrides({"copyright": "0.5"})
    # Before: anything but true/1/yes/on silently meant "off"; NaN and text gave Python's own message.
    assert Thresholds().with_overrides({"mcut": "off"}).mcut is False
    with pytest.raises(ValueError, match="mcut='maybe': use true or false"):
        Thresholds().with_overrides({"mcut": "maybe"})
    with pytest.raises(ValueError, match="threshold nan is not between 0 and 1"):
        Thresholds().with_overrides({"all": "nan"})
    with pytest.raises(ValueError, match="threshold 'abc' is not a number between 0 and 1"):
        Thresholds().with_overrides({"general": "abc"})


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


def test_a_glob_pattern_selects_every_registered_name_it_matches() -> None:
    registry = default_registry()
    v3 = ["wd-convnext-v3", "wd-eva02-large-v3", "wd-swinv2-v3", "wd-vit-large-v3", "wd-vit-v3"]
    assert registry.select(["wd-*-v3"]) == v3
    # Kept in order with plain names, duplicates dropped; [] and ? are globs too.
    assert registry.select(["control,wd-vit-v3", "wd-*-v3"]) == ["control", "wd-vit-v3", *v3[:-1]]
    assert registry.select(["demo-[ls]*"]) == ["demo-large", "demo-small"]
    assert registry.select(["wd14-vit-v?"]) == ["wd14-vit-v2"]


def test_a_pattern_that_matches_nothing_names_itself_and_close_names() -> None:
    with pytest.raises(UnknownTaggerError) as caught:
        default_registry().select(["control", "wd-vit-*-v4"])
    assert str(caught.value) == (
        "no tagger matches the pattern 'wd-vit-*-v4'; close names: "
        "wd-vit-large-v3, wd-vit-v3, wd14-vit-v2, wd14-vit, wd14-vit-v2-git"
    )
    with pytest.raises(UnknownTaggerError, match=r"^no tagger matches the pattern 'zzz\*'$"):
        default_registry().select(["zzz*"])


def test_loading_checks_the_tagger_protocol() -> None:
    """A backend whose tagger lacks a declared capability fails at load, naming what is missing."""

    class Bare:
        def __init__(self, spec: TaggerSpec) -> None:
            self.spec = spec
            self.vocabulary = None

        def prepare(self, post: object, image: bytes) -> object:
            return image

        def infer(self, batch: object) -> list[object]:
            return []

    registry = _registry()
    registry.register_backend("bare", lambda spec, options: Bare(spec))  # type: ignore[arg-type,return-value]
    with pytest.raises(TaggerLoadError) as caught:
        registry.load(TaggerSpec(name="x", backend="bare"))
    assert str(caught.value) == (
        "tagger x: backend 'bare' gave a Bare, which lacks fixed_batch, model_files, providers, row_tags, "
        "size of the Tagger protocol (TaggerBase has the defaults)"
    )
    control = registry.load(TaggerSpec(name="c", backend="control"))
    capabilities = (control.vocabulary, control.providers, control.fixed_batch, control.model_files)
    assert (*capabilities, control.size) == (None, (), None, (), None)


def test_backends_register_once_and_unknown_ones_say_which_exist() -> None:
    registry = _registry()
    with pytest.raises(ValueError, match="a backend named 'control' is already registered"):
        registry.register_backend("control", lambda spec, options: ControlTagger(spec))
    unknown = r"uses backend 'nonexistent', which is not known \(known: .*control"
    with pytest.raises(TaggerLoadError, match=unknown):
        registry.load(registry.resolve("b"))
    assert registry.unavailable_reason(registry.resolve("b")) is not None
