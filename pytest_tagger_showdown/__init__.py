"""pytest-tagger-showdown: score anime image taggers against Danbooru's human tags, in pytest.

The public API is re-exported here; everything else is private to the package.
"""

from .dataframe import load_results_frame
from .dataset import Dataset, Post
from .errors import (
    DatasetError,
    ImageError,
    ShowdownError,
    TaggerLoadError,
    TaggerRunError,
    UnknownTaggerError,
)
from .prediction import Prediction
from .scoring import ShowdownScore, score_prediction
from .taggers import (
    LoadOptions,
    Preprocessing,
    Tagger,
    TaggerRegistry,
    TaggerSpec,
    Thresholds,
    default_registry,
    load_tagger,
)
from .tags import TagCategory

__all__ = [
    "Dataset",
    "DatasetError",
    "ImageError",
    "LoadOptions",
    "Post",
    "Prediction",
    "Preprocessing",
    "ShowdownError",
    "ShowdownScore",
    "TagCategory",
    "Tagger",
    "TaggerLoadError",
    "TaggerRegistry",
    "TaggerRunError",
    "TaggerSpec",
    "Thresholds",
    "UnknownTaggerError",
    "default_registry",
    "load_results_frame",
    "load_tagger",
    "score_prediction",
]
