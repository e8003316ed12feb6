"""Comparing two runs tagger by tagger in a way that knows noise: a paired bootstrap over posts.

For each tagger in both runs, only posts scored in both count, paired by post id. The change is the
mean of ``score_after - score_before`` over those posts; its 95% confidence interval comes from
resampling the posts with replacement (seeded, so a comparison is reproducible) and taking the 2.5th
and 97.5th percentiles of the resampled means. Pairing matters: posts differ far more from each
other than two taggers differ on one post, and pairing removes that spread from the interval.

The compare gate fails a tagger when BOTH hold:

- the change is a drop larger than the margin: ``change < -margin`` (practically significant), and
- the interval's upper end is below zero: ``ci_high < 0`` (statistically significant).

So noise alone (an interval around zero) never fails a run, and neither does a real but tiny drop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from tabulate import tabulate

from .columns import post_rows
from .tags import predicted_rating_tag

DEFAULT_RESAMPLES: Final = 2000
DEFAULT_MARGIN: Final = 0.02
CONFIDENCE: Final = 0.95
#: The seed of every bootstrap (the date of the study), so the same two runs always compare the same.
SEED: Final = 20230610
#: Resampled indices generated at once, to bound memory on large runs.
_CHUNK_CELLS: Final = 1 << 22


@dataclass(frozen=True)
class Bootstrap:
    """A mean change and its bootstrap confidence interval."""

    mean: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


def paired_bootstrap(
    before: npt.ArrayLike,
    after: npt.ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Bootstrap:
    """Mean of ``after - before`` (paired by position) with a percentile bootstrap interval."""
    differences = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    count = differences.size
    if count == 0:
        raise ValueError("no pairs to compare")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    chunk = max(1, _CHUNK_CELLS // count)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        picks = rng.integers(0, count, size=(size, count))
        means[start : start + size] = differences[picks].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Bootstrap(float(differences.mean()), float(low), float(high))


@dataclass(frozen=True)
class TagChange:
    """A tag's net contribution to the score numerator (correct minus incorrect uses) in each run."""

    tag: str
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class TaggerComparison:
    """One tagger across two runs, over the posts both scored."""

    tagger: str
    posts: int
    before: float
    after: float
    change: Bootstrap
    gained: tuple[TagChange, ...]
    lost: tuple[TagChange, ...]

    def regressed(self, margin: float) -> bool:
        """The gate rule: a drop beyond ``margin`` whose confidence interval lies below zero."""
        return self.change.mean < -margin and self.change.high < 0


@dataclass(frozen=True)
class RunComparison:
    """Every tagger of two runs: compared, in one run only, or in both without a post in common."""

    taggers: tuple[TaggerComparison, ...]
    only_before: tuple[str, ...]
    only_after: tuple[str, ...]
    no_common_posts: tuple[str, ...]


def _scored_posts(document: Mapping[str, Any]) -> dict[str, dict[int, Mapping[str, Any]]]:
    by_tagger: dict[str, dict[int, Mapping[str, Any]]] = {}
    for post in post_rows(document):
        if post.get("score") is not None:
            by_tagger.setdefault(str(post["tagger"]), {})[int(post["post_id"])] = post
    return by_tagger


def _tag_balance(posts: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Per tag: times predicted rightly minus times predicted wrongly (the rating as ``rating:X``)."""
    balance: Counter[str] = Counter()
    for post in posts:
        truth = set(post.get("truth", ()))
        predicted = set(post.get("predicted", ()))
        rating = post.get("predicted_rating")
        if rating is not None:
            predicted.add(predicted_rating_tag(rating, post["rating"]))
        for tag in predicted:
            balance[tag] += 1 if tag in truth else -1
    return balance


def _tag_changes(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]], top: int
) -> tuple[tuple[TagChange, ...], tuple[TagChange, ...]]:
    old, new = _tag_balance(before), _tag_balance(after)
    changes = [TagChange(tag, old[tag], new[tag]) for tag in sorted(set(old) | set(new))]
    changes = [c for c in changes if c.change]
    gained = sorted((c for c in changes if c.change > 0), key=lambda c: (-c.change, c.tag))
    lost = sorted((c for c in changes if c.change < 0), key=lambda c: (c.change, c.tag))
    return tuple(gained[:top]), tuple(lost[:top])


def compare_runs(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = SEED,
    top: int = 5,
) -> RunComparison:
    """Compare two results documents (``--showdown-json`` or a saved run's ``tagger_showdown``)."""
    old, new = _scored_posts(before), _scored_posts(after)
    compared: list[TaggerComparison] = []
    no_common: list[str] = []
    for tagger in sorted(set(old) & set(new)):
        common = sorted(set(old[tagger]) & set(new[tagger]))
        if not common:
            no_common.append(tagger)
            continue
        old_posts = [old[tagger][i] for i in common]
        new_posts = [new[tagger][i] for i in common]
        old_scores = np.asarray([float(p["score"]) for p in old_posts])
        new_scores = np.asarray([float(p["score"]) for p in new_posts])
        gained, lost = _tag_changes(old_posts, new_posts, top)
        compared.append(
            TaggerComparison(
                tagger=tagger,
                posts=len(common),
                before=float(old_scores.mean()),
                after=float(new_scores.mean()),
                change=paired_bootstrap(old_scores, new_scores, resamples=resamples, seed=seed),
                gained=gained,
                lost=lost,
            )
        )
    return RunComparison(
        taggers=tuple(compared),
        only_before=tuple(sorted(set(old) - set(new))),
        only_after=tuple(sorted(set(new) - set(old))),
        no_common_posts=tuple(no_common),
    )


def _tags_text(changes: Sequence[TagChange]) -> str:
    return ", ".join(f"{c.tag} ({c.change:+d})" for c in changes) or "-"


def regression_failures(comparison: RunComparison, margin: float, label: str) -> list[str]:
    """One message per tagger the gate fails: a significant drop beyond ``margin``, or no common post."""
    failures = [
        f"{c.tagger}: average score dropped by {-c.change.mean:.3f} against {label} "
        f"({c.before:.3f} -> {c.after:.3f} over {c.posts} paired posts; 95% CI of the change "
        f"[{c.change.low:+.3f}, {c.change.high:+.3f}] excludes 0; margin {margin:.3f}); "
        f"lost most: {_tags_text(c.lost)}"
        for c in comparison.taggers
        if c.regressed(margin)
    ]
    failures += [
        f"{tagger}: cannot compare against {label}: no post was scored in both runs "
        "(a different dataset, rating or limit?)"
        for tagger in comparison.no_common_posts
    ]
    return failures


#: Columns of :func:`comparison_rows`, shared by the terminal and the HTML report.
COMPARISON_HEADERS = (
    "tagger",
    "posts",
    "before",
    "after",
    "change",
    "95% CI",
    "verdict",
    "gained most",
    "lost most",
)


def comparison_rows(comparison: RunComparison, margin: float) -> list[tuple[str, ...]]:
    """One row per tagger: averages, the change with its interval, the verdict and the tags that moved."""
    return [
        (
            c.tagger,
            str(c.posts),
            f"{c.before:.3f}",
            f"{c.after:.3f}",
            f"{c.change.mean:+.3f}",
            f"[{c.change.low:+.3f}, {c.change.high:+.3f}]",
            "DROP" if c.regressed(margin) else ("gain" if c.change.low > 0 else "~"),
            _tags_text(c.gained),
            _tags_text(c.lost),
        )
        for c in comparison.taggers
    ]


def format_comparison(comparison: RunComparison, margin: float) -> str:
    """A table of changes (one row per tagger) followed by the taggers not compared."""
    rows = comparison_rows(comparison, margin)
    headers = COMPARISON_HEADERS
    lines = [tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)] if rows else []
    for title, names in (
        ("only in the first run", comparison.only_before),
        ("only in the second run", comparison.only_after),
        ("no post in common", comparison.no_common_posts),
    ):
        if names:
            lines.append(f"{title}: {', '.join(names)}")
    return "\n".join(lines) if lines else "no tagger to compare"


@dataclass(frozen=True)
class CompareGate:
    """The outcome of ``--showdown-compare``: the comparison and the failures it gates on."""

    label: str
    margin: float
    comparison: RunComparison
    failures: tuple[str, ...]


def gate_against(
    before: Mapping[str, Any], after: Mapping[str, Any], *, label: str, margin: float
) -> CompareGate:
    """Compare a finished run (``after``) with a saved one and apply the gate rule."""
    comparison = compare_runs(before, after)
    return CompareGate(label, margin, comparison, tuple(regression_failures(comparison, margin, label)))
