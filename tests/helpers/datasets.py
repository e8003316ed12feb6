"""Small datasets in the real schema, written through the package's own store, for tests."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from pytest_tagger_showdown import Dataset, Post, TagCategory

G, C, CO, A, M = (
    TagCategory.GENERAL,
    TagCategory.CHARACTER,
    TagCategory.COPYRIGHT,
    TagCategory.ARTIST,
    TagCategory.META,
)


def png_bytes(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def bilevel_png(width: int, height: int) -> bytes:
    """A 1-bit PNG, black top-left quarter on white: 100 MP compresses to a few dozen kB, so tests
    can use real images around Pillow's pixel limits without a large file."""
    image = Image.new("1", (width, height), 1)
    image.paste(0, (0, 0, width // 2, height // 2))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class PostSpec:
    id: int
    rating: str
    tags: Mapping[str, TagCategory] = field(
        default_factory=lambda: {"simple_background": G, "red_background": G, "original": CO, "someone": A}
    )
    image: bytes | None = None


def make_dataset(path: Path, posts: Iterable[PostSpec]) -> Path:
    """Write ``posts`` (a red PNG each unless given other bytes) into a new dataset at ``path``."""
    with Dataset(path, writable=True) as dataset:
        for spec in posts:
            image = png_bytes() if spec.image is None else spec.image
            post = Post(
                id=spec.id,
                md5=hashlib.md5(image).hexdigest(),
                rating=spec.rating,
                file_ext="png",
                tags=dict(spec.tags),
            )
            dataset.add_post(post, {"id": spec.id, "rating": spec.rating}, image)
    return path


def four_ratings(path: Path, *, corrupt: int | None = None) -> Path:
    """Eight posts, two per rating; ``corrupt`` names a post whose image bytes are garbage."""
    specs = [
        PostSpec(id=100 + i, rating=rating, image=b"not an image" if 100 + i == corrupt else None)
        for i, rating in enumerate("ggssqqee")
    ]
    return make_dataset(path, specs)


def varied_dataset(path: Path, count: int = 10, *, corrupt: int | None = None) -> Path:
    """Posts with images of different colours and shapes; ``corrupt`` names a post with garbage bytes."""
    specs = []
    for i in range(count):
        colour = ((37 * i) % 256, (91 * i + 40) % 256, (53 * i + 200) % 256)
        image = b"not an image" if 100 + i == corrupt else png_bytes((40 + 7 * i, 30 + 11 * (i % 4)), colour)
        tags = {"simple_background": G, "solo": G} if i % 2 else {"red_background": G, "smile": G}
        specs.append(PostSpec(id=100 + i, rating="gsqe"[i % 4], tags=tags, image=image))
    return make_dataset(path, specs)
