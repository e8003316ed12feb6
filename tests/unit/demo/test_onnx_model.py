"""The WD14 graph builder: the numpy computation the demo models were trained on, and the tiny test
models' promised outputs, are what onnxruntime computes from the built graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures.generators.make_demo_dataset import demo_post_ids
from fixtures.generators.onnx_model import Dense, build_wd14_onnx, pool_features, sigmoid
from fixtures.generators.train_demo_models import LARGE, SMALL, model_input
from pytest_tagger_showdown.dataset.post import Post
from pytest_tagger_showdown.taggers import load_tagger
from tests.helpers.modelmaker import make_brightness_folder, solid_png

ort = pytest.importorskip("onnxruntime")


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
