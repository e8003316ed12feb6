"""The two shipped demo taggers: they know every demo tag, were trained on other pictures, load, stay small
and rank as documented (demo-large clearly above demo-small)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fixtures.generators.make_demo_dataset import demo_post_ids
from fixtures.generators.synthetic import GENERAL_TAGS
from fixtures.generators.train_demo_models import LARGE, SMALL, TRAIN_SEEDS, vocabulary
from pytest_tagger_showdown.dataset.post import Post
from pytest_tagger_showdown.demo import DEMO_MODELS
from pytest_tagger_showdown.scoring import score_prediction
from pytest_tagger_showdown.taggers import load_tagger
from pytest_tagger_showdown.taggers.builtin import DEMO_TAGGERS
from pytest_tagger_showdown.taggers.wd14 import WD14Tagger
from pytest_tagger_showdown.tags import TagCategory

pytest.importorskip("onnxruntime")

#: How far demo-large's average score must stay above demo-small's (see fixtures/README.md).
MARGIN = 0.15
GENERAL_AND_CHARACTER = frozenset({TagCategory.GENERAL, TagCategory.CHARACTER})


def test_the_models_know_every_demo_tag(posts: list[Post]) -> None:
    for spec in DEMO_TAGGERS:
        with (Path(spec.source) / "selected_tags.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["tag_id", "name", "category", "count"]
        assert [row["name"] for row in rows] == vocabulary()
        assert [row["category"] for row in rows[:4]] == ["9"] * 4
        assert {row["category"] for row in rows[4:]} == {"0", "4"}
        known = {row["name"] for row in rows}
        for post in posts:
            assert post.tags_in(GENERAL_AND_CHARACTER) <= known
    assert set(GENERAL_TAGS) <= set(vocabulary())


def test_training_pictures_are_not_demo_pictures() -> None:
    assert not set(TRAIN_SEEDS) & set(demo_post_ids())


@pytest.fixture(scope="module")
def averages(posts: list[Post], images: dict[int, bytes]) -> dict[str, tuple[float, float]]:
    """Each demo tagger's average score over all categories and over general+character."""
    result = {}
    for spec in DEMO_TAGGERS:
        tagger = load_tagger(spec)
        predictions = tagger.infer([tagger.prepare(post, images[post.id]) for post in posts])
        every = [score_prediction(p, pr).score for p, pr in zip(posts, predictions, strict=True)]
        some = [
            score_prediction(p, pr, GENERAL_AND_CHARACTER).score
            for p, pr in zip(posts, predictions, strict=True)
        ]
        result[spec.name] = (float(np.mean(every)), float(np.mean(some)))
    return result


def test_the_demo_models_load_as_documented() -> None:
    by_name = {spec.name: spec for spec in DEMO_TAGGERS}
    for recipe in (LARGE, SMALL):
        tagger = load_tagger(by_name[recipe.name])
        assert isinstance(tagger, WD14Tagger)
        assert tagger.size == 448
        assert tagger.fixed_batch == recipe.fixed_batch
        assert (DEMO_MODELS / recipe.name / "model.onnx").stat().st_size < 1_000_000


def test_demo_large_beats_demo_small(averages: dict[str, tuple[float, float]]) -> None:
    large, small = averages["demo-large"], averages["demo-small"]
    for category_choice in (0, 1):
        assert large[category_choice] >= small[category_choice] + MARGIN, averages
        assert 0 < small[category_choice] < large[category_choice] < 1, averages
