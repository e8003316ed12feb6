"""DeepDanbooru project folders: a small Keras model saved in DeepDanbooru's layout, loaded for real.

Keras (and TensorFlow under it) takes seconds to import, so one model is built once per session and
every test shares it; the tests that need no model run without importing Keras at all. Without Keras
(it is an optional extra) the tests that need it skip: ``pytest.importorskip`` where a model is built,
``needs_keras`` where only its presence matters.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import ExifTags, Image

from pytest_tagger_showdown import Post, TagCategory, TaggerLoadError, default_registry
from pytest_tagger_showdown.errors import ImageError
from pytest_tagger_showdown.pool import TaggerPool
from pytest_tagger_showdown.scoring import score_prediction
from pytest_tagger_showdown.taggers import load_tagger, unavailable_reason
from pytest_tagger_showdown.taggers.deepdanbooru import (
    PREPROCESSING,
    DeepDanbooruTagger,
    find_model,
    model_input,
    project_vocabulary,
)
from tests.helpers.datasets import png_bytes

RED = png_bytes(colour=(200, 30, 30))
BLUE = png_bytes(colour=(30, 30, 200))
GENERAL = ["simple_background", "red_background", "blue_background", "1girl"]
CHARACTERS = ["hatsune_miku"]
RATINGS = ["rating:safe", "rating:questionable", "rating:explicit"]
TAGS = [*GENERAL, *CHARACTERS, *RATINGS]
#: Fixed logits per tag; red/blue_background also get +-10 x (mean red - mean blue) of the input.
BIASES = {
    "simple_background": 3.0,
    "1girl": -3.0,
    "hatsune_miku": 0.4,
    "rating:safe": 2.0,
    "rating:explicit": -2.0,
}
SIZE = 64

# Keras 3.15's TensorFlow backend still calls np.array(tensor) the NumPy 1 way; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"
)
#: For tests that need Keras installed but not imported (availability checks read ``find_spec``).
needs_keras = pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")


def _write_project(folder: Path) -> Path:
    """A project in DeepDanbooru's layout: model-resnet_custom_v4.h5, tags*.txt, project.json."""
    keras = pytest.importorskip("keras")
    folder.mkdir(parents=True, exist_ok=True)
    # DeepDanbooru's head (conv_gap + sigmoid): a 1x1 convolution to one channel per tag, global
    # average pooling, a float32 sigmoid; here straight on the pixels instead of after a ResNet.
    inputs = keras.Input((SIZE, SIZE, 3))
    logits = keras.layers.Conv2D(len(TAGS), 1)(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(logits)
    outputs = keras.layers.Activation("sigmoid", dtype="float32")(pooled)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((3, len(TAGS)), dtype=np.float32)
    red, blue = 0, 2  # DeepDanbooru feeds RGB
    kernel[red, TAGS.index("red_background")], kernel[blue, TAGS.index("red_background")] = 10, -10
    kernel[blue, TAGS.index("blue_background")], kernel[red, TAGS.index("blue_background")] = 10, -10
    bias = np.array([BIASES.get(tag, -2.0) for tag in TAGS], dtype=np.float32)
    model.layers[1].set_weights([kernel.reshape(1, 1, 3, len(TAGS)), bias])
    model.save(folder / "model-resnet_custom_v4.h5")
    (folder / "tags.txt").write_text("\n".join(TAGS) + "\n")
    (folder / "tags-general.txt").write_text("\n".join(GENERAL) + "\n")
    (folder / "tags-character.txt").write_text("\n".join(CHARACTERS) + "\n")
    project = {
        "image_width": SIZE,
        "image_height": SIZE,
        "model": "resnet_custom_v4",
        "minimum_tag_count": 20,
    }
    (folder / "project.json").write_text(json.dumps(project, indent=4))
    return folder


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_project(tmp_path_factory.mktemp("deepdanbooru") / "project")


@pytest.fixture(scope="session")
def dd_tagger(project: Path) -> DeepDanbooruTagger:
    """(Not named ``tagger``: the plugin parametrizes tests that use a fixture of that name.)"""
    loaded = load_tagger(default_registry().resolve(f"deepdanbooru:{project}"))
    assert isinstance(loaded, DeepDanbooruTagger)
    return loaded


def _post(rating: str) -> Post:
    tags = {"simple_background": TagCategory.GENERAL, "red_background": TagCategory.GENERAL}
    return Post(id=3, md5="0" * 32, rating=rating, file_ext="png", tags=tags)


def test_tags_an_image_with_the_size_read_from_the_model(dd_tagger: DeepDanbooruTagger) -> None:
    assert dd_tagger.size == SIZE
    assert {path.name for path in dd_tagger.model_files} == {
        "model-resnet_custom_v4.h5",
        "tags.txt",
        "tags-character.txt",
    }
    red, blue = dd_tagger.infer([dd_tagger.prepare(_post("g"), RED), dd_tagger.prepare(_post("g"), BLUE)])
    # The default cut-off is hydrus-dd's 0.5 for every category: the 0.6 character is kept.
    assert set(red.tags) == {"simple_background", "red_background", "hatsune_miku"}
    assert set(blue.tags) == {"simple_background", "blue_background", "hatsune_miku"}
    assert red.rating == "safe"
    assert set(red.rating_confidences) == {"safe", "q", "e"}
    assert red.probabilities is not None
    assert red.probabilities.shape == (len(TAGS),)


def test_a_predicted_safe_scores_correct_on_general_and_sensitive(dd_tagger: DeepDanbooruTagger) -> None:
    (prediction,) = dd_tagger.infer([dd_tagger.prepare(_post("g"), RED)])
    results = {rating: score_prediction(_post(rating), prediction) for rating in "gsqe"}
    assert {rating: score.rating_correct for rating, score in results.items()} == {
        "g": True,
        "s": True,
        "q": False,
        "e": False,
    }
    # Truth: two tags + the rating. g: 3 correct, 1 incorrect (the character).
    assert results["g"].score == pytest.approx((3 - 1) / 3)
    assert results["q"].score == pytest.approx((2 - 2) / 3)


def test_character_threshold_comes_from_tags_character_txt(project: Path) -> None:
    pool = TaggerPool(default_registry(), thresholds=[(None, {"character": "0.7"})])
    tagger = pool.get(f"deepdanbooru:{project}")
    (prediction,) = tagger.infer([tagger.prepare(_post("g"), RED)])
    assert set(prediction.tags) == {"simple_background", "red_background"}


def test_the_model_file_can_be_named_directly_and_mismatched_tags_fail(project: Path, tmp_path: Path) -> None:
    direct = load_tagger(default_registry().resolve(f"deepdanbooru:{project / 'model-resnet_custom_v4.h5'}"))
    assert isinstance(direct, DeepDanbooruTagger)
    copy = shutil.copytree(project, tmp_path / "copy")
    (copy / "tags.txt").write_text("\n".join([*TAGS, "extra_tag"]) + "\n")
    with pytest.raises(TaggerLoadError, match=r"tags\.txt lists 9 tags but the model has 8 outputs"):
        load_tagger(default_registry().resolve(f"deepdanbooru:{copy}"))


# -- without Keras ----------------------------------------------------------------------------------


def test_vocabulary_maps_ratings_and_characters_onto_wd14_categories(tmp_path: Path) -> None:
    (tmp_path / "tags.txt").write_text("1girl\nhatsune_miku\nrating:safe\nrating:explicit\n\n")
    (tmp_path / "tags-character.txt").write_text("hatsune_miku\n")
    vocabulary = project_vocabulary(tmp_path)
    assert vocabulary.names == ("1girl", "hatsune_miku", "rating:safe", "rating:explicit")
    assert vocabulary.categories == (0, 4, 9, 9)


def test_finding_the_model_file(tmp_path: Path) -> None:
    with pytest.raises(TaggerLoadError, match="does not exist"):
        find_model(tmp_path / "missing")
    with pytest.raises(
        TaggerLoadError, match=r"expected one model-\*\.h5 or model-\*\.keras \(found: none\)"
    ):
        find_model(tmp_path)
    (tmp_path / "model-resnet_custom_v3.h5").touch()
    (tmp_path / "model-resnet_custom_v4.keras").touch()
    with pytest.raises(
        TaggerLoadError, match=r"found: model-resnet_custom_v3\.h5, model-resnet_custom_v4\.keras"
    ):
        find_model(tmp_path)
    (tmp_path / "project.json").write_text('{"model": "resnet_custom_v4"}')
    assert find_model(tmp_path).name == "model-resnet_custom_v4.keras"


@needs_keras
def test_unavailable_until_the_project_is_complete(tmp_path: Path) -> None:
    spec = default_registry().resolve(f"deepdanbooru:{tmp_path}")
    assert spec.preprocessing.size is None
    assert (spec.thresholds.general, spec.thresholds.character) == (0.5, 0.5)
    assert "expected one model-*.h5" in (unavailable_reason(spec) or "")
    (tmp_path / "model-x.h5").touch()
    assert "tags.txt does not exist" in (unavailable_reason(spec) or "")
    (tmp_path / "tags.txt").write_text("1girl\n")
    assert unavailable_reason(spec) is None


def test_an_unreadable_model_file_is_a_load_error(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    (tmp_path / "model-broken.h5").write_bytes(b"not hdf5")
    (tmp_path / "tags.txt").write_text("1girl\n")
    with pytest.raises(TaggerLoadError, match=r"cannot load .*model-broken\.h5"):
        load_tagger(default_registry().resolve(f"deepdanbooru:{tmp_path}"))


def test_without_keras_a_project_cannot_run_and_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules is how Python marks a module as absent: find_spec gives None, import fails.
    monkeypatch.setitem(sys.modules, "keras", None)
    (tmp_path / "model-x.h5").touch()
    (tmp_path / "tags.txt").write_text("1girl\n")
    spec = default_registry().resolve(f"deepdanbooru:{tmp_path}")
    extra = "pip install 'pytest-tagger-showdown[deepdanbooru]'"
    assert unavailable_reason(spec) == f"keras is not installed ({extra})"
    with pytest.raises(TaggerLoadError, match=r"needs Keras with TensorFlow: pip install"):
        load_tagger(spec)


def test_this_module_skips_cleanly_where_keras_is_not_installed(tmp_path: Path) -> None:
    """Runs this file in a fresh interpreter where keras and tensorflow are absent."""
    script = (
        "import sys; sys.modules['keras'] = sys.modules['tensorflow'] = None; import pytest; "
        f"sys.exit(pytest.main([{__file__!r}, '-p', 'no:randomly', '-p', 'no:cacheprovider', '-rs', "
        "'-k', 'not skips_cleanly']))"
    )
    env = {**os.environ, "PYTEST_ADDOPTS": f"--basetemp={tmp_path / 'run'}"}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=Path(__file__).parents[3]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    # Four tests need no Keras; twelve need it or TensorFlow (five build or load a model, one checks
    # availability, six compare the model input with DeepDanbooru's own TensorFlow steps).
    assert " 4 passed, 12 skipped, 1 deselected " in f" {summary} ", done.stdout
    assert "keras is not installed" in done.stdout


# -- DeepDanbooru's own preprocessing ----------------------------------------------------------------


def _reference_input(raw: bytes, width: int, height: int) -> npt.NDArray[np.float64]:
    """``load_image_for_evaluate`` + ``transform_and_pad_image`` of KichangKim/DeepDanbooru, written out
    from the original (``deepdanbooru/data/__init__.py``, ``deepdanbooru/image/__init__.py``)."""
    tf = pytest.importorskip("tensorflow")
    skimage_transform = pytest.importorskip("skimage.transform")
    image = tf.io.decode_png(raw, channels=3)
    image = tf.image.resize(
        image, size=(height, width), method=tf.image.ResizeMethod.AREA, preserve_aspect_ratio=True
    )
    image = image.numpy()
    image_width, image_height = image.shape[1], image.shape[0]
    t = skimage_transform.AffineTransform(translation=(-image_width * 0.5, -image_height * 0.5))
    t += skimage_transform.AffineTransform(translation=(width * 0.5, height * 0.5))
    image = skimage_transform.warp(image, t.inverse, output_shape=(height, width), order=1, mode="edge")
    result: npt.NDArray[np.float64] = image / 255.0
    return result


def _encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _noise(width: int, height: int, seed: int) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = np.stack([x * 255 // width, y * 255 // height, (x * y) % 256], axis=-1)
    return np.clip(smooth + rng.integers(-30, 30, (height, width, 3)), 0, 255).astype(np.uint8)


def _transparent_png() -> bytes:
    """Half the pixels fully transparent but storing saturated colours (which DeepDanbooru keeps)."""
    pixels = _noise(300, 200, 1)
    alpha = np.where(np.arange(300)[None, :] < 150, 0, 255).repeat(200, axis=0).astype(np.uint8)
    return _encoded(Image.fromarray(np.dstack([pixels, alpha]), "RGBA"), "PNG")


DD_IMAGES = {
    "transparent-png": _transparent_png,
    "opaque-jpeg-640x480": lambda: _encoded(Image.fromarray(_noise(640, 480, 2)), "JPEG", quality=90),
    "odd-sized-png-517x333": lambda: _encoded(Image.fromarray(_noise(517, 333, 3)), "PNG"),
    "tall-upscaled-png-37x101": lambda: _encoded(Image.fromarray(_noise(37, 101, 4)), "PNG"),
    "greyscale-png": lambda: _encoded(Image.fromarray(_noise(250, 180, 5)).convert("L"), "PNG"),
}


@pytest.mark.parametrize("make", DD_IMAGES.values(), ids=DD_IMAGES.keys())
def test_model_input_is_deepdanbooru_evaluation_input(make: Any) -> None:
    """TensorFlow decode (alpha dropped), AREA fit, scikit-image edge warp, / 255: as the original."""
    raw = make()
    expected = _reference_input(raw, 512, 512)
    ours = model_input(raw, PREPROCESSING, 512)
    assert ours.dtype == np.float32
    assert ours.shape == (512, 512, 3)
    assert np.array_equal(ours, expected.astype(np.float32))  # exact: the same libraries, the same steps


def test_model_input_turns_the_image_upright_by_its_exif_orientation() -> None:
    """Orientation=6: the reference steps run on the upright (rotated) pixels."""
    stored = Image.fromarray(_noise(120, 80, 6))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    raw = _encoded(stored, "JPEG", quality=95, exif=exif)
    tf = pytest.importorskip("tensorflow")
    upright = np.rot90(np.asarray(tf.io.decode_png(raw, channels=3)), k=-1)
    assert upright.shape == (120, 80, 3)
    expected = _reference_input(_encoded(Image.fromarray(upright), "PNG"), 64, 64)
    assert np.array_equal(model_input(raw, PREPROCESSING, 64), expected.astype(np.float32))
    sideways = model_input(raw, dataclasses.replace(PREPROCESSING, exif_orientation=False), 64)
    assert np.array_equal(sideways, _reference_input(raw, 64, 64).astype(np.float32))


def test_a_corrupt_image_is_the_same_image_error_as_for_every_tagger() -> None:
    with pytest.raises(ImageError, match="cannot decode the image"):
        model_input(b"not an image", PREPROCESSING, 64)
