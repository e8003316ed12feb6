"""The baseline gate: a tagger whose average score falls below its configured baseline fails the run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .results import TaggerSummary


def baseline_verdicts(
    summaries: Iterable[TaggerSummary], baselines: Mapping[str, float], posts: int | None = None
) -> dict[str, str | None]:
    """Per tagger with a baseline: None when it meets it, else a message naming its average, the
    baseline, the posts it was judged over (``of posts``: the run's, when it scored fewer) and its
    worst posts. A tagger that scored no post (or never ran) fails: no score, no pass."""
    by_name = {summary.tagger: summary for summary in summaries}
    verdicts: dict[str, str | None] = {}
    for tagger, baseline in baselines.items():
        summary = by_name.get(tagger)
        if summary is None or summary.avg_score is None:
            errors = f" ({summary.errors} errors)" if summary is not None else ""
            verdicts[tagger] = f"{tagger}: no post was scored{errors}, baseline {baseline:.3f} not met"
        elif summary.avg_score < baseline:
            worst = ", ".join(f"{label} ({score:+.3f})" for label, score in summary.worst)
            judged = summary.images + summary.errors
            of = f" of {posts}" if posts is not None and judged < posts else ""
            verdicts[tagger] = (
                f"{tagger}: average score {summary.avg_score:.3f} is below its baseline "
                f"{baseline:.3f} over {summary.images}{of} posts; worst posts: {worst}"
            )
        else:
            verdicts[tagger] = None
    return verdicts


def baseline_failures(summaries: Iterable[TaggerSummary], baselines: Mapping[str, float]) -> list[str]:
    """The messages of :func:`baseline_verdicts` that fail."""
    return [message for message in baseline_verdicts(summaries, baselines).values() if message]
