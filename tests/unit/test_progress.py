"""A long run's progress lines: when they replace pytest's characters, and what they say."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.progress import COMPACT_FROM_ITEMS, LINES, Progress, duration, is_compact


@pytest.mark.parametrize(
    ("items", "verbosity", "compact"),
    [(COMPACT_FROM_ITEMS - 1, 0, False), (COMPACT_FROM_ITEMS, 0, True), (COMPACT_FROM_ITEMS, -1, True),
     (COMPACT_FROM_ITEMS, 1, False), (60_000, 1, False)],
)  # fmt: skip
def test_long_runs_at_default_or_quiet_verbosity_print_progress_lines(
    items: int, verbosity: int, compact: bool
) -> None:
    assert is_compact(items, verbosity) is compact


def test_a_line_every_twentieth_of_the_run_and_one_at_the_end() -> None:
    progress = Progress(total=2049, began=0.0)
    printed = [progress.step(finished=True, failed=False) for _ in range(2049)]
    lines = [line for line in printed if line is not None]
    assert progress.every == 103  # ceil(2049 / 20)
    assert len(lines) == LINES  # 19 at multiples of 103 (up to 1,957), then the last item
    assert [i + 1 for i, line in enumerate(printed) if line][:2] == [103, 206]
    assert lines[-1].startswith("tagger-showdown: 2,049/2,049 items (100%), 0 failed, ")
    assert "left" not in lines[-1]
    assert "left" in lines[0]


def test_failures_are_counted_in_any_phase_and_items_only_once() -> None:
    progress = Progress(total=4, began=0.0)
    progress.step(finished=False, failed=False)  # a setup that passed: its call is still to come
    progress.step(finished=True, failed=True)  # the call failed
    progress.step(finished=False, failed=True)  # the same item's teardown failed too
    progress.step(finished=True, failed=True)  # another item's setup failed: it never runs
    assert (progress.done, progress.failed) == (2, 3)


def test_the_line_says_what_is_done_and_what_is_left() -> None:
    progress = Progress(total=60_000, began=0.0, done=6_000, failed=2)
    assert progress.line(12.0) == (
        "tagger-showdown: 6,000/60,000 items (10%), 2 failed, 12 s, about 1 min 48 s left"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (59.4, "59 s"), (108, "1 min 48 s"), (3599.6, "1 h 00 min"), (7500, "2 h 05 min"),
     (float("inf"), "?")],
)  # fmt: skip
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text
