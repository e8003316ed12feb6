"""The baseline gate: a tagger whose average score falls below its configured baseline fails the run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .results import TaggerSummary


def parse_baselines(lines: Iterable[str]) -> dict[str, float]:
    """Read ``NAME = SCORE`` (ini ``showdown_baselines``) or ``NAME=SCORE`` (``--showdown-baseline``)."""
    baselines: dict[str, float] = {}
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, eq, value = text.rpartition("=")
        if not eq or not name.strip():
            raise ValueError(f"cannot read baseline {line!r}: expected NAME = SCORE")
        try:
            baselines[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"baseline {line!r}: {value.strip()!r} is not a number") from None
    return baselines


def baseline_failures(summaries: Iterable[TaggerSummary], baselines: Mapping[str, float]) -> list[str]:
    """One message per tagger below its baseline, naming its average, the baseline and its worst posts."""
    failures: list[str] = []
    for summary in summaries:
        baseline = baselines.get(summary.tagger)
        if baseline is None:
            continue
        if summary.avg_score is None:
            failures.append(
                f"{summary.tagger}: no post was scored ({summary.errors} errors), "
                f"baseline {baseline:.3f} not met"
            )
        elif summary.avg_score < baseline:
            worst = ", ".join(f"{label} ({score:+.3f})" for label, score in summary.worst)
            failures.append(
                f"{summary.tagger}: average score {summary.avg_score:.3f} is below its baseline "
                f"{baseline:.3f} over {summary.images} posts; worst posts: {worst}"
            )
    return failures
