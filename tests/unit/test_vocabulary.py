"""One vocabulary type: a model's tag list, the same columns spelled as the ground truth, the labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tagger_showdown.errors import TaggerLoadError
from pytest_tagger_showdown.vocabulary import Vocabulary

#: A WD14-style tag list: four ratings (category 9), general tags (0), a character (4).
NAMES = ("general", "sensitive", "questionable", "explicit", "long hair", "cat", "hatsune_miku")
CATEGORIES = (9, 9, 9, 9, 0, 0, 4)


def test_ground_truth_spelling_of_a_model_tag_list() -> None:
    vocabulary = Vocabulary(NAMES, CATEGORIES).as_ground_truth()
    assert vocabulary.names == (
        "rating:g",
        "rating:s",
        "rating:q",
        "rating:e",
        "long_hair",
        "cat",
        "hatsune_miku",
    )
    assert vocabulary.categories == CATEGORIES
    assert vocabulary.labels == ("rating",) * 4 + ("general", "general", "character")
    assert vocabulary.index["cat"] == 5


def test_digest_is_the_one_row_messages_carried_before_the_types_merged() -> None:
    """Rows name their vocabulary by digest: the merge must not change it (values from the former
    ``TagVocabulary.from_model``)."""
    assert Vocabulary(NAMES, CATEGORIES).as_ground_truth().digest == "cbbf6feb0d7a109d"
    assert Vocabulary(("rating:safe", "x"), (9, 2)).as_ground_truth().digest == "9a9b78a3ef6c443c"


def test_a_category_danbooru_lacks_reads_as_general() -> None:
    vocabulary = Vocabulary(("rating:safe", "old tag"), (9, 2))
    assert vocabulary.labels == ("rating", "general")
    truth = vocabulary.as_ground_truth()
    assert truth.names == ("rating:safe", "old_tag")
    assert truth.categories == (9, 0)


def test_labels_round_trip_and_unknown_labels_are_refused() -> None:
    vocabulary = Vocabulary(NAMES, CATEGORIES)
    assert Vocabulary.from_labels(vocabulary.names, vocabulary.labels) == vocabulary
    with pytest.raises(ValueError, match="unknown tag category label 'species'"):
        Vocabulary.from_labels(["cat"], ["species"])
    with pytest.raises(ValueError, match="one category per name"):
        Vocabulary(("cat", "dog"), (0,))


def test_index_names_the_first_column_of_a_repeated_name() -> None:
    assert dict(Vocabulary(("cat", "dog", "cat"), (0, 0, 0)).index) == {"cat": 0, "dog": 1}


def test_from_csv_reads_selected_tags_and_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "selected_tags.csv"
    path.write_text("tag_id,name,category,count\n9999999,general,9,1\n1,long hair,0,5\n", encoding="utf-8")
    assert Vocabulary.from_csv(path) == Vocabulary(("general", "long hair"), (9, 0))
    path.write_text("tag_id,name,category,count\n1,long hair,general,5\n", encoding="utf-8")
    with pytest.raises(TaggerLoadError, match="a category is not a number"):
        Vocabulary.from_csv(path)
    path.write_text("tag,count\nlong hair,5\n", encoding="utf-8")
    with pytest.raises(TaggerLoadError, match="no name,category columns"):
        Vocabulary.from_csv(path)
    with pytest.raises(TaggerLoadError, match="cannot read the tag list"):
        Vocabulary.from_csv(tmp_path / "missing.csv")
