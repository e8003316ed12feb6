"""When a showdown's first item started and its last item finished: its item loop, without start-up,
collection and the end-of-run tables.

:class:`ItemTimer` is the plugin object of an in-process run (``benchmarks/conftest.py``). A run in a
subprocess (``benchmarks/gpu_table.py``) loads this module with ``-p benchmarks.item_clock`` and
names a file in :data:`CLOCK_FILE`: at the end of the run the controller (not an xdist worker, which
sees only its own items) writes its timer there as JSON (``first_start``, ``last_finish``: seconds of
``time.perf_counter``; ``items``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import pytest

#: The environment variable naming the JSON file a subprocess run writes its timer to.
CLOCK_FILE: Final = "SHOWDOWN_ITEM_CLOCK"


@dataclass
class ItemTimer:
    """A plugin for an inner run: when its first item started and its last item finished."""

    first_start: float | None = None
    last_finish: float = 0.0
    items: int = 0

    def pytest_runtest_logstart(self) -> None:
        if self.first_start is None:
            self.first_start = time.perf_counter()

    def pytest_runtest_logfinish(self) -> None:
        self.last_finish = time.perf_counter()
        self.items += 1

    @property
    def loop_s(self) -> float:
        return self.last_finish - (self.first_start or self.last_finish)


_timer = ItemTimer()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller reports every worker's items
        config.pluginmanager.register(_timer, "item-clock-timer")


def pytest_unconfigure(config: pytest.Config) -> None:
    target = os.environ.get(CLOCK_FILE)
    if target and not hasattr(config, "workerinput"):
        Path(target).write_text(json.dumps(asdict(_timer)), encoding="utf-8")
