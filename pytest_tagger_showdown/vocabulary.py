"""A tagger's tag vocabulary: the tag of each output column, with its category.

One type for every form a vocabulary takes: the model's own tag list (``selected_tags.csv`` names, or
DeepDanbooru's ``tags.txt``), the same columns spelled as the ground truth spells them (``rating:g``,
``long_hair``), and the columns of a probability store. Categories are Danbooru's numeric ids
(``tags.DANBOORU_CATEGORY_IDS``) plus :data:`RATING_CATEGORY` for the rating columns, as in
``selected_tags.csv``; the labels (``general``, ``rating``) are read and written only where text
carries them (row messages, store files, metrics by category).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .errors import TaggerLoadError
from .tags import DANBOORU_CATEGORY_IDS, TagCategory, normalize_rating, normalize_tag, rating_tag

#: ``selected_tags.csv``'s category for the rating columns (not a Danbooru tag category).
RATING_CATEGORY: Final = 9
#: The category label of the rating columns.
RATING_LABEL: Final = "rating"
_LABELS: Final[dict[int, str]] = {
    RATING_CATEGORY: RATING_LABEL,
    **{number: category.value for number, category in DANBOORU_CATEGORY_IDS.items()},
}
_IDS: Final[dict[str, int]] = {label: number for number, label in _LABELS.items()}
_GENERAL: Final = _IDS[TagCategory.GENERAL.value]


@dataclass(frozen=True)
class Vocabulary:
    """The tag of each output column, in column order, with its numeric category (ratings 9).

    Raises ValueError when ``names`` and ``categories`` differ in length.
    """

    names: tuple[str, ...]
    categories: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.categories):
            raise ValueError("a vocabulary needs one category per name")

    @classmethod
    def from_csv(cls, path: Path) -> Vocabulary:
        """Read ``selected_tags.csv`` (``tag_id,name,category,count``; name and category are used);
        raises TaggerLoadError when it cannot be read or has no such columns."""
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except OSError as exc:
            raise TaggerLoadError(f"cannot read the tag list {path}: {exc}") from exc
        if not rows or not {"name", "category"} <= set(rows[0]):
            raise TaggerLoadError(f"{path} has no name,category columns (expected selected_tags.csv)")
        try:
            return cls(
                names=tuple(row["name"] for row in rows),
                categories=tuple(int(row["category"]) for row in rows),
            )
        except ValueError as exc:
            raise TaggerLoadError(f"{path}: a category is not a number: {exc}") from exc

    @classmethod
    def from_labels(cls, names: Sequence[str], labels: Sequence[str]) -> Vocabulary:
        """From names and category labels (``general``, ``rating``: the spelling of row messages and
        store files); raises ValueError for a label that is not a category."""
        try:
            return cls(tuple(names), tuple(_IDS[label] for label in labels))
        except KeyError as exc:
            raise ValueError(f"unknown tag category label {exc}") from None

    def as_ground_truth(self) -> Vocabulary:
        """The same columns spelled as the ground truth spells them: a rating column becomes its
        rating tag (``general`` -> ``rating:g``, ``rating:safe`` stays), other names are normalised
        (``long hair`` -> ``long_hair``), and a category Danbooru does not have reads as general."""
        names: list[str] = []
        categories: list[int] = []
        for name, number in zip(self.names, self.categories, strict=True):
            category = number if number in _LABELS else _GENERAL
            code = normalize_rating(name) if category == RATING_CATEGORY else None
            names.append(rating_tag(code) if code else normalize_tag(name))
            categories.append(category)
        return Vocabulary(tuple(names), tuple(categories))

    @functools.cached_property
    def labels(self) -> tuple[str, ...]:
        """Each column's category label (``general``, ``character``, ..., ``rating``); a category
        Danbooru does not have reads as general."""
        return tuple(_LABELS.get(number, TagCategory.GENERAL.value) for number in self.categories)

    @functools.cached_property
    def index(self) -> Mapping[str, int]:
        """Each name's column (its first, when a name repeats)."""
        index: dict[str, int] = {}
        for position, name in enumerate(self.names):
            index.setdefault(name, position)
        return index

    @functools.cached_property
    def digest(self) -> str:
        """Of the names and labels, computed once: every recorded row names its vocabulary by it."""
        text = json.dumps([self.names, self.labels])
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.names)
