"""Tag and rating normalisation across the vocabularies taggers use."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.tags import (
    TagCategory,
    normalize_rating,
    normalize_tag,
    parse_categories,
    predicted_rating_tag,
    rating_is_right,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("long hair", "long_hair"),
        ("  Long Hair ", "long_hair"),
        (">_<", ">_<"),
        ("star_(symbol)", "star_(symbol)"),
    ],
)
def test_normalize_tag(raw: str, expected: str) -> None:
    assert normalize_tag(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("g", "g"),
        ("general", "g"),
        ("rating:general", "g"),
        ("Rating: Sensitive", "s"),
        ("rating: general", "g"),
        (" rating_ questionable ", "q"),
        ("rating_questionable", "q"),
        ("explicit", "e"),
        ("rating:safe", "safe"),
        ("long_hair", None),
    ],
)
def test_normalize_rating(raw: str, expected: str | None) -> None:
    assert normalize_rating(raw) == expected


@pytest.mark.parametrize(
    ("predicted", "truth", "right", "tag"),
    [
        ("g", "g", True, "rating:g"),
        ("g", "s", False, "rating:g"),
        ("safe", "g", True, "rating:g"),
        ("safe", "s", True, "rating:s"),
        ("safe", "q", False, "rating:safe"),
        ("general", "g", True, "rating:g"),
        ("e", "q", False, "rating:e"),
    ],
)
def test_the_rating_rule(predicted: str, truth: str, right: bool, tag: str) -> None:
    assert rating_is_right(predicted, truth) is right
    assert predicted_rating_tag(predicted, truth) == tag


def test_parse_categories() -> None:
    assert parse_categories("all") == frozenset(TagCategory)
    assert parse_categories("general+character") == {TagCategory.GENERAL, TagCategory.CHARACTER}
    assert parse_categories("general, meta") == {TagCategory.GENERAL, TagCategory.META}
    with pytest.raises(ValueError, match="unknown tag category"):
        parse_categories("general+rating")
