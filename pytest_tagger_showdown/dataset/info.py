"""What a dataset holds (``tagger-showdown info``), so a user can check a fetch before a showdown."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ImageError
from ..taggers.preprocess import decode_image
from ..tags import RATING_NAMES, RATINGS, TagCategory
from .fetch import QUERY_KEY
from .store import Dataset


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's summary: posts per rating, distinct tags per category, images, skipped posts."""

    path: Path
    posts_per_rating: dict[str, int]
    tags_per_category: dict[str, int]
    #: Stored images that decode.
    images_present: int
    images_missing: int
    #: Stored images that do not decode, by post id, with the decoder's reason.
    images_broken: dict[int, str]
    #: Decodable images per variant (``original``, ``sample``).
    images_per_variant: dict[str, int]
    #: Post ids the fetcher left out, grouped by reason.
    skipped: dict[str, list[int]]
    tag_relations: dict[str, int]
    #: The options the dataset was fetched with (None for a dataset not made by ``fetch``).
    fetch_query: dict[str, Any] | None

    @property
    def posts(self) -> int:
        return sum(self.posts_per_rating.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "posts": self.posts,
            "posts_per_rating": self.posts_per_rating,
            "tags_per_category": self.tags_per_category,
            "images_present": self.images_present,
            "images_missing": self.images_missing,
            "images_broken": [{"post_id": i, "reason": r} for i, r in self.images_broken.items()],
            "images_per_variant": self.images_per_variant,
            "skipped": self.skipped,
            "tag_relations": self.tag_relations,
            "fetch_query": self.fetch_query,
        }


def dataset_info(path: str | Path) -> DatasetInfo:
    """Summarise the dataset at ``path`` (opened read-only), checking every stored image's md5 and
    decoding it once.

    Raises :class:`DatasetError` for a missing file or one that is not a dataset of this schema.
    """
    with Dataset(path) as dataset:
        posts = dataset.posts()
        variants = dataset.image_variants()
        broken: dict[int, str] = {}
        for post_id in variants:
            try:
                data = dataset.image(post_id)
                if hashlib.md5(data, usedforsecurity=False).hexdigest() != dataset.image_md5(post_id):
                    # The caches key on the recorded md5: they would serve the old image's results.
                    raise ImageError(
                        "the stored bytes do not match their recorded md5 (changed after fetching)"
                    )
                decode_image(data)
            except ImageError as exc:
                broken[post_id] = str(exc)
        skipped: dict[str, list[int]] = {}
        for post_id, reason in dataset.skipped().items():
            skipped.setdefault(reason, []).append(post_id)
        query = dataset.meta(QUERY_KEY)
        relations = {kind: len(dataset.tag_relations(kind)) for kind in ("alias", "implication")}
    ratings = Counter(post.rating for post in posts)
    categories: dict[TagCategory, set[str]] = {category: set() for category in TagCategory}
    for post in posts:
        for tag, category in post.tags.items():
            categories[category].add(tag)
    stored = [post.id for post in posts if post.id in variants]
    decodable = [post_id for post_id in stored if post_id not in broken]
    return DatasetInfo(
        path=Path(path),
        posts_per_rating={rating: ratings[rating] for rating in RATINGS},
        tags_per_category={category.value: len(tags) for category, tags in categories.items()},
        images_present=len(decodable),
        images_missing=len(posts) - len(stored),
        images_broken={post_id: broken[post_id] for post_id in stored if post_id in broken},
        images_per_variant=dict(sorted(Counter(variants[i] for i in decodable).items())),
        skipped=dict(sorted(skipped.items())),
        tag_relations=relations,
        fetch_query=None if query is None else json.loads(query),
    )


def format_info(info: DatasetInfo) -> str:
    """The summary as the ``info`` command prints it."""
    lines = [f"{info.path}: {info.posts} posts"]
    for rating, count in info.posts_per_rating.items():
        lines.append(f"  {rating} ({RATING_NAMES[rating]}): {count}")
    lines.append(f"tags (distinct): {sum(info.tags_per_category.values())}")
    for category, count in info.tags_per_category.items():
        lines.append(f"  {category}: {count}")
    variants = ", ".join(f"{variant} {n}" for variant, n in info.images_per_variant.items())
    lines.append(
        f"images: {info.images_present} present"
        + (f" ({variants})" if variants else "")
        + (f", {len(info.images_broken)} broken" if info.images_broken else "")
        + f", {info.images_missing} missing"
    )
    for post_id, reason in info.images_broken.items():
        lines.append(f"  broken: post {post_id}: {reason}")
    lines.append(f"skipped posts: {sum(len(ids) for ids in info.skipped.values())}")
    for reason, ids in info.skipped.items():
        shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
        lines.append(f"  {reason}: {len(ids)} (posts {shown})")
    lines.append(
        f"tag relations: {info.tag_relations['alias']} aliases, "
        f"{info.tag_relations['implication']} implications"
    )
    if info.fetch_query is not None:
        query = info.fetch_query
        tags = f"extra tags {query['tags']!r}" if query["tags"] else "no extra tags"
        lines.append(
            f"fetched from {query['api_url']} with {tags}, "
            f"page skip {query['page_skip']} x {query['page_size']}, variant {query['variant']}"
        )
    return "\n".join(lines)
