"""Hooks other packages and ``conftest.py`` files implement to extend the showdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .taggers.registry import TaggerRegistry


@pytest.hookspec
def pytest_tagger_showdown_register(registry: TaggerRegistry, config: pytest.Config) -> None:
    """Register tagger specs (``registry.register(TaggerSpec(...))``) or name prefixes.

    Called once at configure time: implement it in a plugin or in the rootdir's ``conftest.py``.
    """
