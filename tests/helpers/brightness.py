"""A tiny dataset of grey pictures and a conftest registering the brightness tagger (modelmaker.py).

The tagger sees brightness only: it tags bright pictures ``white_background`` and dark ones
``black_background`` and always says rating general, so on these posts its score is known in advance:
1.0 on general posts, (2 - 1) / 2 = 0.5 on the others (the rating is wrong); with a cut-off above
0.9995 (its backgrounds' stored probability) it keeps no background, one correct tag fewer per post.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tagger_showdown.tags import TagCategory
from tests.helpers.datasets import PostSpec, make_dataset
from tests.helpers.modelmaker import make_brightness_folder, solid_png

G = TagCategory.GENERAL


def brightness_dataset(path: Path, count: int = 8) -> Path:
    """``count`` posts alternating bright/dark, ratings cycling g, s, q, e (a tag name to escape too)."""
    specs = []
    for i in range(count):
        bright = i % 2 == 0
        level = 230 if bright else 25
        tags = {"white_background" if bright else "black_background": G, ">_<": TagCategory.META}
        specs.append(PostSpec(id=200 + i, rating="gsqe"[i % 4], tags=tags, image=solid_png((level,) * 3)))
    return make_dataset(path, specs)


def install_brightness_tagger(pytester: pytest.Pytester) -> Path:
    """Build the model in the pytester folder and register it as ``bright`` in its conftest.py."""
    folder = make_brightness_folder(pytester.path / "bright-model", size=32).folder
    pytester.makeconftest(
        f"""
        from pytest_tagger_showdown import TaggerSpec

        def pytest_tagger_showdown_register(registry, config):
            registry.register(TaggerSpec(name="bright", backend="onnx", source={str(folder)!r}))
        """
    )
    return brightness_dataset(pytester.path / "data.db")
