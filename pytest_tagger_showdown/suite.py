"""The built-in showdown: one test per (tagger, post), collected when ``--tagger`` is given and no
test of the user's own asks for a tagger."""

from __future__ import annotations

import pytest

from .dataset.post import Post
from .recorder import ShowdownRecorder
from .taggers.base import Tagger


@pytest.mark.showdown
def test_showdown(post: Post, tagger: Tagger, showdown: ShowdownRecorder) -> None:
    showdown.run(post, tagger)
