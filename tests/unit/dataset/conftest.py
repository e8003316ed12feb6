"""A fake Danbooru on loopback, started once per test module and reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.danbooru import FakeDanbooru


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDanbooru]:
    with FakeDanbooru() as fake:
        yield fake


@pytest.fixture
def danbooru(server: FakeDanbooru) -> Iterator[FakeDanbooru]:
    server.reset()
    yield server
    server.release_all()
