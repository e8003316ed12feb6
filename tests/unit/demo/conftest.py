"""The bundled demo dataset, opened once for the demo tests."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.dataset.post import Post
from pytest_tagger_showdown.dataset.store import Dataset
from pytest_tagger_showdown.demo import DEMO_DB


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return Dataset(DEMO_DB)


@pytest.fixture(scope="session")
def posts(dataset: Dataset) -> list[Post]:
    return dataset.posts()


@pytest.fixture(scope="session")
def images(dataset: Dataset, posts: list[Post]) -> dict[int, bytes]:
    return {post.id: dataset.image(post.id) for post in posts}
