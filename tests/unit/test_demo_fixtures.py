"""The bundled demo: the shipped dataset is what its generator makes, its tags are honest, and the two
shipped demo taggers load, stay small and rank as documented (demo-large clearly above demo-small)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import Image

from pytest_tagger_showdown.dataset.post import Post
from pytest_tagger_showdown.dataset.store import Dataset
from pytest_tagger_showdown.demo import DEMO_DB, DEMO_MODELS
from pytest_tagger_showdown.demo.make_demo_dataset import demo_post_ids, write_demo_dataset
from pytest_tagger_showdown.demo.onnx_model import Dense, build_wd14_onnx, pool_features, sigmoid
from pytest_tagger_showdown.demo.synthetic import COLOURS, GENERAL_TAGS, RATING_CORNERS, badge_box
from pytest_tagger_showdown.demo.train_demo_models import (
    LARGE,
    SMALL,
    TRAIN_SEEDS,
    model_input,
    vocabulary,
)
from pytest_tagger_showdown.scoring import score_prediction
from pytest_tagger_showdown.taggers import load_tagger
from pytest_tagger_showdown.taggers.builtin import DEMO_TAGGERS
from pytest_tagger_showdown.taggers.wd14 import WD14Tagger
from pytest_tagger_showdown.tags import RATINGS, TagCategory
from tests.modelmaker import make_brightness_folder, solid_png

ort = pytest.importorskip("onnxruntime")

#: How far demo-large's average score must stay above demo-small's (see fixtures/README.md).
MARGIN = 0.15
GENERAL_AND_CHARACTER = frozenset({TagCategory.GENERAL, TagCategory.CHARACTER})


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(DEMO_DB)


@pytest.fixture(scope="module")
def posts(dataset: Dataset) -> list[Post]:
    return dataset.posts()


@pytest.fixture(scope="module")
def images(dataset: Dataset, posts: list[Post]) -> dict[int, bytes]:
    return {post.id: dataset.image(post.id) for post in posts}


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


@pytest.mark.parametrize("pool", [LARGE.pool, SMALL.pool])
def test_training_features_match_the_onnx_graph(tmp_path: Path, images: dict[int, bytes], pool: int) -> None:
    """The numpy pooling the models were trained on is what onnxruntime computes from the same input.

    The probe model's one layer picks 48 pooled features unchanged, so its output is their sigmoid.
    """
    features = 3 * (448 // pool) ** 2
    picked = np.random.default_rng(7).choice(features, size=48, replace=False)
    selection = np.zeros((features, 48), np.float32)
    selection[picked, np.arange(48)] = 1
    build_wd14_onnx(tmp_path / "model.onnx", [Dense(selection, np.zeros(48, np.float32))], pool=pool)
    pixels = model_input(images[demo_post_ids()[0]])[np.newaxis]
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": pixels})
    np.testing.assert_allclose(got[0], sigmoid(pool_features(pixels, pool)[0, picked]), atol=1e-6)


@pytest.mark.parametrize("fixed_batch", [None, 1])
def test_modelmaker_models_output_what_they_promise(tmp_path: Path, fixed_batch: int | None) -> None:
    model = make_brightness_folder(tmp_path, fixed_batch=fixed_batch, size=32)
    tagger = load_tagger(model.spec())
    post = Post(id=1, md5="", rating="g", file_ext="png", tags={})
    pictures = [solid_png((level, level, level)) for level in (0, 90, 170, 255)]
    predictions = tagger.infer([tagger.prepare(post, picture) for picture in pictures])
    assert [set(p.tags) for p in predictions] == [
        {"black_background"},
        {"black_background"},
        {"white_background"},
        {"white_background"},
    ]
    for picture, prediction in zip(pictures, predictions, strict=True):
        assert prediction.rating == "g"
        assert prediction.probabilities is not None
        expected = list(model.expected(picture).values())
        # The row as the run stores it: float16 (half a unit in the last place is 2.4e-4 near 1).
        np.testing.assert_allclose(prediction.probabilities, expected, atol=2.5e-4)


def test_raw_posts_are_json_objects_like_danbooru(dataset: Dataset) -> None:
    raw = dataset.raw_post(demo_post_ids()[0])
    for key in ("id", "md5", "rating", "file_ext", "image_width", "image_height", "created_at"):
        assert key in raw
    assert json.loads(json.dumps(raw)) == raw
