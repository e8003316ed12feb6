"""Progress of a long run in a few lines instead of a character per item.

pytest prints one character per item, which with ``-q`` wraps into a line per 70-odd items: 850 lines
for a 30,000-post validation set scored by two taggers, which bury the tables and verdicts (issue 13:
at most 150 lines at that size). From :data:`COMPACT_FROM_ITEMS` items on, and only at pytest's default
or quiet verbosity, the characters are left out and a progress line is printed every twentieth of the
run instead. pytest's own accounting is untouched: its ``[NN%]`` counter, the final line, the failure
sections and ``FAILED`` lines are as in any run; ``-v`` still prints one line per item.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Final

#: Runs from this size on print progress lines: below it pytest's characters take at most ~28 lines.
COMPACT_FROM_ITEMS: Final = 2000
#: Progress lines in a whole run.
LINES: Final = 20


def is_compact(items: int, verbosity: int) -> bool:
    """Whether a run of ``items`` items prints progress lines instead of a character per item."""
    return items >= COMPACT_FROM_ITEMS and verbosity <= 0


@dataclass
class Progress:
    """Counts finished items (one per item: its call, or its setup when that did not pass) and says
    when to print a line: every ``total / LINES`` items, and at the last."""

    total: int
    began: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0

    @property
    def every(self) -> int:
        return max(1, math.ceil(self.total / LINES))

    def step(self, *, finished: bool, failed: bool) -> str | None:
        """Count one report; the line to print now, if any. ``finished``: the report ends its item's
        run (a call report, or a setup that did not pass); ``failed``: it failed (any phase)."""
        self.failed += failed
        if not finished:
            return None
        self.done += 1
        if self.done % self.every and self.done != self.total:
            return None
        return self.line(time.monotonic() - self.began)

    def line(self, elapsed: float) -> str:
        """``tagger-showdown: 6,000/60,000 items (10%), 0 failed, 12 s, about 1 min 48 s left``."""
        share = self.done / self.total if self.total else 1.0
        left = elapsed * (1 - share) / share if share else math.inf
        tail = f", about {duration(left)} left" if self.done < self.total else ""
        return (
            f"tagger-showdown: {self.done:,}/{self.total:,} items ({share:.0%}), "
            f"{self.failed:,} failed, {duration(elapsed)}{tail}"
        )


def duration(seconds: float) -> str:
    """``48 s``, ``1 min 48 s``, ``2 h 05 min``: a wall time as a person reads it."""
    if not math.isfinite(seconds):
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
