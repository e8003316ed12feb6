"""How a WD14-layout output row becomes tags and a rating (:class:`OutputLayout`), against the plain
dense reading of the rule: every column of a category compared with its cut-off on the stored row."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from pytest_tagger_showdown.probabilities import FLOOR, compact_row, stored_row
from pytest_tagger_showdown.taggers.spec import Thresholds
from pytest_tagger_showdown.taggers.wd14 import (
    CHARACTER_CATEGORY,
    MCUT_CHARACTER_FLOOR,
    OutputLayout,
    mcut_threshold,
)
from pytest_tagger_showdown.tags import normalize_rating, normalize_tag
from pytest_tagger_showdown.vocabulary import RATING_CATEGORY, Vocabulary

#: Values on and around the floor and the default cut-offs, where a strict ``>`` or float16 rounding
#: could tip a tag either way.
EDGES = (0.0, 0.005, 0.0099, 0.01, 0.0101, 0.15, 0.35, 0.3501, 0.85, 1.0)
VALUES = st.one_of(st.sampled_from(EDGES), st.floats(0.0, 1.0, width=32))
#: Ratings (9), general (0), characters (4) and categories WD14 reads as general (1 artist, 3
#: copyright, 5 meta); names repeat and differ only in spelling, as real tag lists can.
COLUMNS = st.one_of(
    st.tuples(
        st.sampled_from(("general", "sensitive", "questionable", "explicit", "rating:safe")), st.just(9)
    ),
    st.tuples(
        st.sampled_from(("long hair", "long_hair", "cat", "Smile", "hatsune_miku")),
        st.sampled_from((0, 1, 3, 4, 5)),
    ),
)
CUTS = st.one_of(st.sampled_from(EDGES), st.floats(0.0, 1.0))


def dense_reference(
    vocabulary: Vocabulary, row: npt.NDArray[np.float32], thresholds: Thresholds
) -> tuple[list[tuple[str, float]], str | None, dict[str, float]]:
    """Kept tags (in order), rating and rating confidences, column by column over the whole row."""
    stored = stored_row(row)
    names = [normalize_tag(name) for name in vocabulary.names]
    categories = np.asarray(vocabulary.categories)
    kept: dict[str, float] = {}
    general = np.flatnonzero((categories != RATING_CATEGORY) & (categories != CHARACTER_CATEGORY))
    for index, character in ((general, False), (np.flatnonzero(categories == CHARACTER_CATEGORY), True)):
        values = stored[index]
        cut = thresholds.character if character else thresholds.general
        if thresholds.mcut:
            cut = max(MCUT_CHARACTER_FLOOR if character else 0.0, mcut_threshold(values))
        for position in range(index.size):
            if values[position] > cut:
                kept[names[index[position]]] = float(values[position])
    ratings = np.flatnonzero(categories == RATING_CATEGORY)
    codes = [normalize_rating(vocabulary.names[i]) for i in ratings]
    confidences = {code: float(stored[i]) for code, i in zip(codes, ratings, strict=True) if code is not None}
    rating = codes[int(np.argmax(stored[ratings]))] if ratings.size else None
    return list(kept.items()), rating, confidences


@given(
    columns=st.lists(st.tuples(COLUMNS, VALUES), min_size=1, max_size=40),
    general=CUTS,
    character=CUTS,
    mcut=st.booleans(),
)
def test_tags_decided_on_the_stored_columns_equal_the_dense_rule(
    columns: list[tuple[tuple[str, int], float]], general: float, character: float, mcut: bool
) -> None:
    vocabulary = Vocabulary(tuple(name for (name, _), _ in columns), tuple(cat for (_, cat), _ in columns))
    row = np.asarray([value for _, value in columns], dtype=np.float32)
    thresholds = Thresholds(general=general, character=character, mcut=mcut)
    layout = OutputLayout(vocabulary)
    expected = dense_reference(vocabulary, row, thresholds)
    for given_row in (row, stored_row(row)):  # a fresh row, and the same row read from the cache
        prediction = layout.prediction(given_row, thresholds)
        assert (list(prediction.tags.items()), prediction.rating, prediction.rating_confidences) == expected
        assert prediction.probabilities is not None
        np.testing.assert_array_equal(prediction.probabilities, stored_row(row))
        np.testing.assert_array_equal(prediction.stored_columns, compact_row(row)[0])


def test_a_cut_off_below_zero_keeps_every_column_of_its_category() -> None:
    """Below the floor the stored row holds zeros, which pass a negative cut-off (a Thresholds built
    in code; options take 0..1 only)."""
    vocabulary = Vocabulary(("general", "sensitive", "cat", "dog", "miku"), (9, 9, 0, 0, 4))
    row = np.asarray([0.9, 0.1, 0.5, 0.001, 0.002], dtype=np.float32)
    prediction = OutputLayout(vocabulary).prediction(row, Thresholds(general=-0.5, character=0.85))
    assert dict(prediction.tags) == {"cat": 0.5, "dog": 0.0}
    assert prediction.rating == "g"


def test_non_finite_outputs_give_no_tags_and_name_their_columns() -> None:
    vocabulary = Vocabulary(("general", "sensitive", "long hair", "cat"), (9, 9, 0, 0))
    row = np.asarray([0.9, np.nan, 0.8, np.inf], dtype=np.float32)
    prediction = OutputLayout(vocabulary).prediction(row, Thresholds())
    assert (dict(prediction.tags), prediction.rating, prediction.non_finite) == (
        {},
        None,
        ("sensitive", "cat"),
    )
    assert prediction.stored_columns is None


def test_stored_columns_are_those_at_or_above_the_floor() -> None:
    vocabulary = Vocabulary(("general", "a", "b", "c", "d"), (9, 0, 0, 4, 0))
    row = np.asarray([0.7, FLOOR, 0.0099, 0.9, 0.02], dtype=np.float32)
    prediction = OutputLayout(vocabulary).prediction(row, Thresholds())
    assert prediction.stored_columns is not None
    assert prediction.stored_columns.tolist() == [0, 1, 3, 4]
