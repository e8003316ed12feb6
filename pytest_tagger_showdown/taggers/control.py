"""The control tagger of the study: it answers each post's own tags, so it must score exactly 1.0.

It decodes each image like every other tagger, so that a corrupt image is an error for every tagger
alike and the ``errors`` column compares across taggers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..dataset.post import Post
from ..prediction import Prediction
from .base import TaggerBase
from .preprocess import decode_image
from .spec import TaggerSpec


class ControlTagger(TaggerBase):
    """Checks the scoring: any score but 1.0 means the scoring, not a model, is wrong."""

    def __init__(self, spec: TaggerSpec) -> None:
        self.spec = spec

    def prepare(self, post: Post, image: bytes) -> object:
        """The post itself, once its image has decoded (raises :class:`ImageError` otherwise)."""
        decode_image(image)
        return post

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        posts = [item for item in batch if isinstance(item, Post)]
        return [Prediction(tags=dict.fromkeys(post.tags, 1.0), rating=post.rating) for post in posts]
