"""Fixtures for the tagger tests: a fake Hugging Face hub wired in through the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.hub import FakeHub, wd14_repo_files


@pytest.fixture(scope="session")
def wd14_files() -> dict[str, bytes]:
    """A tiny v2-style (batch fixed at 1) WD14 repo's files."""
    return wd14_repo_files()


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``HF_HOME`` for this test, with every other hub variable cleared."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub may ask the real hub (the endpoint it saw at import) for its telemetry
    # user agent; no test may reach beyond loopback.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    return home / "hub"


@pytest.fixture(scope="session")
def running_hub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def fake_hub(running_hub: FakeHub, hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The fake hub, emptied, with ``HF_ENDPOINT`` pointing at it and an empty cache."""
    running_hub.reset()
    monkeypatch.setenv("HF_ENDPOINT", running_hub.url)
    return running_hub
