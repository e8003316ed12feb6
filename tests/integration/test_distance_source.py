"""The distance score takes closeness from the dataset's related tags when it has them, and says so."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_tagger_showdown import Dataset
from pytest_tagger_showdown.columns import post_rows
from pytest_tagger_showdown.dataset.danbooru import RelatedTag, RelatedTagAnswer
from pytest_tagger_showdown.tags import TagCategory
from tests.helpers.brightness import install_brightness_tagger
from tests.helpers.datasets import PostSpec, make_dataset
from tests.helpers.modelmaker import solid_png
from tests.helpers.runs import ShowdownRun

G = TagCategory.GENERAL


def backgrounds_dataset(path: Path, *, related: bool) -> Path:
    """Three general posts; the bright tagger says white_background on 300 and 302, black_background on
    301. Post 300 is tagged simple_background only, so its white_background is wrong."""
    bright, dark = solid_png((230,) * 3), solid_png((25,) * 3)
    make_dataset(
        path,
        [
            PostSpec(id=300, rating="g", tags={"simple_background": G}, image=bright),
            PostSpec(id=301, rating="g", tags={"black_background": G, "simple_background": G}, image=dark),
            PostSpec(id=302, rating="g", tags={"white_background": G, "simple_background": G}, image=bright),
        ],
    )
    if related:
        with Dataset(path, writable=True) as dataset:
            dataset.add_related_tags(
                RelatedTagAnswer("simple_background", 1000, (RelatedTag("white_background", 0.9),))
            )
    return path


@pytest.mark.parametrize("related", [True, False], ids=["related-tags", "cooccurrence"])
def test_the_distance_score_uses_the_related_tags_of_the_dataset_and_names_its_source(
    pytester: pytest.Pytester, run_showdown: ShowdownRun, related: bool
) -> None:
    install_brightness_tagger(pytester)
    db = backgrounds_dataset(pytester.path / "backgrounds.db", related=related)

    result, document = run_showdown("--tagger", "bright", "--showdown-db", str(db))

    assert result.ret == 0, result.stdout.str()
    # Post 300: the rating is right (1 of a ground truth of 2), white_background wrong. Its closeness to
    # simple_background is Danbooru's 0.9, or in the dataset 1 shared post / sqrt(1 * 3) = 0.577.
    closeness = 0.9 if related else 1 / math.sqrt(3)
    expected = (1 - (1 - closeness)) / 2
    distance = {post["post_id"]: post["distance_score"] for post in post_rows(document)}
    # Posts 301 and 302: background and rating right, simple_background missed: 2 / 3 either way.
    assert distance == {300: pytest.approx(expected), 301: pytest.approx(2 / 3), 302: pytest.approx(2 / 3)}
    assert document["metrics"]["bright"]["distance_score"] == pytest.approx((expected + 4 / 3) / 3)
    source = "related_tags" if related else "cooccurrence"
    assert document["distance_source"] == source
    described = {
        "related_tags": "distance score: closeness from Danbooru's related tags",
        "cooccurrence": "distance score: closeness from co-occurrence in the dataset's tags",
    }
    result.stdout.fnmatch_lines([f"{described[source]}*"])
