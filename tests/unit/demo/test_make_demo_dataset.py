"""The bundled demo dataset: it is what its generator makes, and its tags are honest."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import Image

from fixtures.generators.make_demo_dataset import demo_post_ids, write_demo_dataset
from fixtures.generators.synthetic import COLOURS, RATING_CORNERS, badge_box
from pytest_tagger_showdown.dataset.post import Post
from pytest_tagger_showdown.dataset.store import Dataset
from pytest_tagger_showdown.tags import RATINGS, TagCategory


def test_the_demo_has_twelve_posts_per_rating(posts: list[Post]) -> None:
    assert Counter(post.rating for post in posts) == dict.fromkeys(RATINGS, 12)
    assert [post.id for post in posts] == demo_post_ids()


def test_every_image_decodes_and_matches_its_post(
    dataset: Dataset, posts: list[Post], images: dict[int, bytes]
) -> None:
    formats = {"png": "PNG", "jpg": "JPEG"}
    for post in posts:
        data = images[post.id]
        assert hashlib.md5(data).hexdigest() == post.md5
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.format == formats[post.file_ext]
            assert image.size == (post.width, post.height)
        raw = dataset.raw_post(post.id)
        assert (raw["id"], raw["md5"], raw["rating"], raw["file_size"]) == (
            post.id,
            post.md5,
            post.rating,
            len(data),
        )
        assert raw["tag_string"].split() == sorted(post.tags)
        for category in TagCategory:
            assert raw[f"tag_string_{category.value}"].split() == sorted(post.tags_in({category}))


def test_the_demo_mixes_image_kinds(posts: list[Post], images: dict[int, bytes]) -> None:
    modes = {Image.open(io.BytesIO(images[post.id])).mode for post in posts}
    assert {"RGB", "RGBA", "L", "P"} <= modes
    assert {post.file_ext for post in posts} == {"png", "jpg"}
    shapes = {(post.width or 0) - (post.height or 0) for post in posts}
    assert min(shapes) < 0 < max(shapes)
    assert sum(TagCategory.CHARACTER in post.tags.values() for post in posts) >= 6


def test_regenerating_the_dataset_gives_the_same_images(
    tmp_path: Path, dataset: Dataset, posts: list[Post], images: dict[int, bytes]
) -> None:
    if dataset.meta("pillow_version") != PIL.__version__:
        pytest.skip(f"the demo was encoded with Pillow {dataset.meta('pillow_version')}")
    copy = tmp_path / "data.db"
    write_demo_dataset(copy)
    with Dataset(copy) as regenerated:
        assert [(p.id, p.md5, p.rating, dict(p.tags)) for p in regenerated.posts()] == [
            (p.id, p.md5, p.rating, dict(p.tags)) for p in posts
        ]
        for post in posts:
            assert regenerated.image(post.id) == images[post.id]
            assert regenerated.raw_post(post.id) == dataset.raw_post(post.id)


def _rgba(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"), dtype=np.int16)


def _looks_like_badge(pixels: np.ndarray, box: tuple[int, int, int, int], tolerance: int) -> bool:
    left, top, right, bottom = box
    centre = pixels[(top + bottom) // 2, (left + right) // 2, :3]
    edge = pixels[top + 2, (left + right) // 2, :3]
    return bool((centre >= 255 - tolerance).all() and (edge <= tolerance).all())


def test_tags_describe_the_pictures(posts: list[Post], images: dict[int, bytes]) -> None:
    for post in posts:
        pixels = _rgba(images[post.id])
        tags = post.tags
        tolerance = 40 if post.file_ext == "jpg" else 0
        width, height = pixels.shape[1], pixels.shape[0]
        # The synthetic rating rule: the badge sits in the rating's corner and nowhere else.
        for rating in RATINGS:
            badge = _looks_like_badge(pixels, badge_box(width, height, rating), tolerance)
            assert badge == (rating == post.rating), (post.label, rating, RATING_CORNERS[rating])
        if "greyscale" in tags:
            assert "monochrome" in tags
            assert (pixels[..., 0] == pixels[..., 1]).all()
            assert (pixels[..., 1] == pixels[..., 2]).all()
        assert ("transparent_background" in tags) == bool((pixels[..., 3] == 0).any())
        solid = [name for name in COLOURS if f"{name}_background" in tags]
        if solid:
            # Right beside the badge lies background only (shapes keep away from the margins).
            left, top, right, _ = badge_box(width, height, post.rating)
            x = right + 3 if right + 3 < width // 2 else left - 4
            colour = np.asarray(COLOURS[solid[0]])
            assert np.abs(pixels[top + 2, x, :3] - colour).max() <= tolerance, post.label
        assert ("highres" in tags) == (width >= 1600 or height >= 1200)
        assert ("lowres" in tags) == (width <= 500 and height <= 500)
        if "jpeg_artifacts" in tags:
            assert post.file_ext == "jpg"
        assert tags["no_humans"] is TagCategory.GENERAL
        for category in (TagCategory.ARTIST, TagCategory.COPYRIGHT):
            assert len(post.tags_in({category})) == 1


def test_raw_posts_are_json_objects_like_danbooru(dataset: Dataset) -> None:
    raw = dataset.raw_post(demo_post_ids()[0])
    for key in ("id", "md5", "rating", "file_ext", "image_width", "image_height", "created_at"):
        assert key in raw
    assert json.loads(json.dumps(raw)) == raw
