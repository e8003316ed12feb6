"""A Danbooru post as the showdown sees it: identity, rating and the human tags with their categories."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..tags import TagCategory


@dataclass(frozen=True)
class Post:
    """One post of a dataset; its image bytes stay in the dataset until a tagger asks for them."""

    id: int
    md5: str
    rating: str
    file_ext: str
    tags: Mapping[str, TagCategory] = field(hash=False)
    file_size: int | None = None
    width: int | None = None
    height: int | None = None

    @property
    def label(self) -> str:
        """Short, stable name used in test ids and tables: ``post123-g``."""
        return f"post{self.id}-{self.rating}"

    def tags_in(self, categories: Iterable[TagCategory]) -> frozenset[str]:
        """The post's tags whose category is one of ``categories``."""
        wanted = frozenset(categories)
        return frozenset(tag for tag, category in self.tags.items() if category in wanted)
