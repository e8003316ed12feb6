"""Comparing two runs tagger by tagger in a way that knows noise: a paired bootstrap over posts.

For each tagger in both runs, only posts scored in both count, paired by post id. The change is the
mean of ``score_after - score_before`` over those posts; its 95% confidence interval comes from
resampling the posts with replacement (seeded, so a comparison is reproducible) and taking the 2.5th
and 97.5th percentiles of the resampled means. Pairing matters: posts differ far more from each
other than two taggers differ on one post, and pairing removes that spread from the interval.

Each tagger is tested two-sided (H0: no change; the table claims gains as well as drops) with
studentized bootstrap (bootstrap-t) p-values from the same resamples (:func:`_one_sided_p`), and
the p-values of every compared tagger are adjusted by Holm's step-down method (Holm 1979), so that
noise alone makes any claim (a DROP or a gain) in at most :data:`ALPHA` of runs, whatever the number
of taggers, and fails a run in at most half of that. The compare gate fails a tagger when BOTH hold:

- the change is a drop larger than the margin: ``change < -margin`` (practically significant), and
- its Holm-adjusted p-value is at most :data:`ALPHA` (statistically significant, family-wise).

Power (normal approximation): with per-post difference SD ``sd`` over ``n`` posts, a drop of
``(z(1 - a) + z(0.8)) * sd / sqrt(n)`` is detected with 80% power at the one-sided level
``a = ALPHA / taggers / 2`` (Holm's first, strictest step), and ``((z(1 - a) + z(0.8)) * sd /
margin)^2`` posts are needed to detect a drop of the margin.

Degenerate comparisons: fewer than :data:`MIN_PAIRED` paired posts have no spread to test a change
by, so they make no claim (p-values 1, left out of Holm's family) and the compare gate fails the
tagger as one it cannot judge. Every paired post changed by the same amount (an SD of at most
:data:`_NO_SPREAD`, the rounding of floats) is certain: a change of exactly 0 is ``unchanged`` (a
deterministic tagger reproducing every score), any other is a consistent shift of every post, a real
change, with the smallest p-value the resamples can give.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from tabulate import tabulate

from .columns import post_rows
from .errors import ShowdownError
from .tags import predicted_rating_tag

DEFAULT_RESAMPLES: Final = 2000
DEFAULT_MARGIN: Final = 0.02
CONFIDENCE: Final = 0.95
#: The family-wise error rate of the compare gate: noise alone fails at most this share of runs.
ALPHA: Final = 0.05
#: The power the "smallest detectable drop" is computed at.
POWER: Final = 0.8
#: The seed of every bootstrap (the date of the study), so the same two runs always compare the same.
SEED: Final = 20230610
#: A per-post difference SD (or mean) at most this is no spread (no change): the rounding of scores
#: that all changed alike.
_NO_SPREAD: Final = 1e-9
#: The fewest paired posts a change can be tested over: one post has no spread to test it by.
MIN_PAIRED: Final = 2
#: The compare gate's verdict key when it compared no tagger at all (the id of its test case).
NOTHING_COMPARED: Final = "no-tagger"
#: Resampled indices generated at once, to bound memory on large runs.
_CHUNK_CELLS: Final = 1 << 22


@dataclass(frozen=True)
class Bootstrap:
    """A mean change, its bootstrap confidence interval, the one-sided bootstrap p-value of "no
    drop" and the SD of the per-post differences (for power)."""

    mean: float
    low: float
    high: float
    p_drop: float = 1.0
    p_gain: float = 1.0
    sd: float = 0.0

    @property
    def p_value(self) -> float:
        """Two-sided p-value of "no change": the table claims gains as well as drops."""
        return min(1.0, 2 * min(self.p_drop, self.p_gain))

    def to_dict(self) -> dict[str, float]:
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "p_drop": self.p_drop,
            "p_gain": self.p_gain,
            "sd": self.sd,
        }


def paired_bootstrap(
    before: npt.ArrayLike,
    after: npt.ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Bootstrap:
    """Mean of ``after - before`` (paired by position) with a percentile bootstrap interval; with
    fewer than :data:`MIN_PAIRED` pairs, no claim (p-values 1, the interval the mean itself). Raises
    ValueError when there is no pair."""
    differences = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    count = differences.size
    if count == 0:
        raise ValueError("no pairs to compare")
    if count < MIN_PAIRED:
        mean = float(differences.mean())
        return Bootstrap(mean, mean, mean)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    sds = np.empty(resamples, dtype=np.float64)
    chunk = max(1, _CHUNK_CELLS // count)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        picks = differences[rng.integers(0, count, size=(size, count))]
        means[start : start + size] = picks.mean(axis=1)
        sds[start : start + size] = picks.std(axis=1, ddof=1) if count > 1 else 0.0
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    mean = float(differences.mean())
    sd = float(differences.std(ddof=1))
    p_drop, p_gain = _one_sided_p(mean, sd, means, sds)
    return Bootstrap(mean, float(low), float(high), p_drop, p_gain, sd)


def _one_sided_p(
    mean: float, sd: float, means: npt.NDArray[np.float64], sds: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """One-sided p-values of "no drop" and "no gain" by the studentized (bootstrap-t) method: the
    share of resampled ``t* = (mean* - mean) / sd*`` at or below (above) the observed
    ``t = mean / sd`` (both over sqrt(n), which cancels). Unlike the share of resampled means on
    the other side of 0, it carries the t distribution's heavier tails at a few dozen posts
    (Efron & Tibshirani 1993, ch. 12 and 16)."""
    resamples = means.size
    floor = 1 / (1 + resamples)
    if sd <= _NO_SPREAD:  # every post changed by the same amount, up to rounding: certain
        return (floor if mean < -_NO_SPREAD else 1.0), (floor if mean > _NO_SPREAD else 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        studentized = np.nan_to_num((means - mean) / sds, nan=0.0)
    observed = mean / sd
    below = int(np.count_nonzero(studentized <= observed))
    above = int(np.count_nonzero(studentized >= observed))
    return (1 + below) / (1 + resamples), (1 + above) / (1 + resamples)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input's order: rejecting those at
    most ``alpha`` keeps the family-wise error rate at ``alpha``."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _z_sum(alpha: float, power: float) -> float:
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha) + normal.inv_cdf(power)


def detectable_drop(sd: float, posts: int, alpha: float, power: float = POWER) -> float:
    """The smallest drop a one-sided test at ``alpha`` detects with ``power`` (normal approximation)."""
    return _z_sum(alpha, power) * sd / math.sqrt(posts)


def posts_needed(sd: float, drop: float, alpha: float, power: float = POWER) -> int | None:
    """Posts needed to detect ``drop`` with ``power`` at ``alpha``, from the per-post difference SD."""
    if drop <= 0:
        return None  # no number of posts detects a drop of 0
    return max(2, math.ceil((_z_sum(alpha, power) * sd / drop) ** 2))


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
    """One tagger across two runs, over the posts both scored (``unpaired``: scored in one only)."""

    tagger: str
    posts: int
    before: float
    after: float
    change: Bootstrap
    gained: tuple[TagChange, ...]
    lost: tuple[TagChange, ...]
    unpaired: int = 0
    #: Holm-adjusted two-sided p-value of "no change", over every tagger compared.
    adjusted_p: float = 1.0
    #: How many taggers were compared: the family Holm adjusts over.
    family: int = 1
    #: What differs between the runs for this tagger (thresholds, model, provider, ...).
    differences: tuple[str, ...] = ()

    @property
    def judgeable(self) -> bool:
        """Whether enough posts were paired to test a change (:data:`MIN_PAIRED`); the gate fails a
        tagger it cannot judge."""
        return self.posts >= MIN_PAIRED

    @property
    def unchanged(self) -> bool:
        """Every paired post scored the same in both runs (up to rounding): no change, nothing to
        detect, so no power to report."""
        return self.judgeable and abs(self.change.mean) <= _NO_SPREAD and self.change.sd <= _NO_SPREAD

    def regressed(self, margin: float) -> bool:
        """The gate rule: a drop beyond ``margin`` that is significant after Holm's adjustment."""
        return self.judgeable and self.change.mean < -margin and self.adjusted_p <= ALPHA

    @property
    def is_gain(self) -> bool:
        """A gain significant after Holm's adjustment (the table's ``gain``)."""
        return self.judgeable and self.change.mean > 0 and self.adjusted_p <= ALPHA

    @property
    def level(self) -> float:
        """The one-sided level a drop is tested at in Holm's first (strictest) step: Bonferroni's
        ``ALPHA / taggers``, halved for the two sides."""
        return ALPHA / self.family / 2

    @property
    def power_known(self) -> bool:
        """Whether the per-post changes have a spread to estimate power from: not with one paired
        post, nor when every post changed by exactly the same amount (an SD of 0 would claim that
        any drop is detected, and that 2 posts detect the margin)."""
        return self.judgeable and self.change.sd > _NO_SPREAD

    @property
    def detectable(self) -> float | None:
        """The smallest drop this comparison detects with 80% power at :attr:`level`; None when
        the power is unknown (:attr:`power_known`)."""
        return detectable_drop(self.change.sd, self.posts, self.level) if self.power_known else None

    def posts_for(self, margin: float) -> int | None:
        """Posts needed to detect a drop of ``margin`` with 80% power at :attr:`level`; None when
        the power is unknown or the margin is 0."""
        return posts_needed(self.change.sd, margin, self.level) if self.power_known else None

    def underpowered(self, margin: float) -> bool:
        """Whether the margin is below the smallest drop this run could detect, or the power is
        unknown: then a green verdict promises nothing about drops of the margin's size. Not when
        every post is unchanged: there is no drop to detect."""
        if self.unchanged:
            return False
        return self.detectable is None or margin < self.detectable


@dataclass(frozen=True)
class RunComparison:
    """Every tagger of two runs: compared, in one run only, or in both without a post in common."""

    taggers: tuple[TaggerComparison, ...]
    only_before: tuple[str, ...]
    only_after: tuple[str, ...]
    no_common_posts: tuple[str, ...]
    #: Per tagger, the posts scored in both runs against different ground truth (their tags or
    #: rating changed in the dataset): left out of the pairing, and a failure of the gate.
    changed_truth: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


#: What a tagger's entry of a results document records about how it ran; a difference is named.
FACTS: Final = ("thresholds", "model_fingerprint", "provider", "package_version", "dataset_fingerprint")


def check_comparable(document: Mapping[str, Any], categories: Sequence[str]) -> None:
    """Raise ShowdownError when a run was scored over other tag categories than ``categories``, or
    does not say which it was scored over: its scores may mean something else, and a comparison
    would report a change that is no change."""
    if not document.get("categories"):
        raise ShowdownError(
            "the saved run does not record which tag categories it scored (no 'categories'): "
            "it cannot be compared; save it again with this version"
        )
    theirs, ours = sorted(document["categories"]), sorted(categories)
    if theirs != ours:
        raise ShowdownError(
            f"runs scored over different tag categories cannot be compared: the saved run scored "
            f"{'+'.join(theirs)}, the other {'+'.join(ours)} (use the same --showdown-categories)"
        )


def _differences(before: Mapping[str, Any], after: Mapping[str, Any], tagger: str) -> tuple[str, ...]:
    old = {**before, **(before.get("taggers", {}).get(tagger) or {})}
    new = {**after, **(after.get("taggers", {}).get(tagger) or {})}
    found = []
    for fact in FACTS:
        if old.get(fact) is not None and new.get(fact) is not None and old[fact] != new[fact]:
            found.append(f"{fact.replace('_', ' ')} {_fact_text(old[fact])} -> {_fact_text(new[fact])}")
    return tuple(found)


def _fact_text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{key}={value[key]}" for key in sorted(value))
    text = str(value)
    return text[:12] if len(text) == 64 else text  # a hash: its start is enough


def _same_truth(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether a post was scored against the same ground truth in both runs: its scored tags with
    the rating pseudo-tag (``truth``) and its rating."""
    return sorted(before.get("truth") or ()) == sorted(after.get("truth") or ()) and before.get(
        "rating"
    ) == after.get("rating")


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
    for document in (after, before):
        check_comparable(document, after.get("categories") or ())
    old, new = _scored_posts(before), _scored_posts(after)
    compared: list[TaggerComparison] = []
    no_common: list[str] = []
    changed_truth: dict[str, tuple[int, ...]] = {}
    for tagger in sorted(set(old) & set(new)):
        both = sorted(set(old[tagger]) & set(new[tagger]))
        common = [i for i in both if _same_truth(old[tagger][i], new[tagger][i])]
        changed = tuple(i for i in both if not _same_truth(old[tagger][i], new[tagger][i]))
        if changed:
            changed_truth[tagger] = changed
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
                unpaired=len(set(old[tagger]) ^ set(new[tagger])),
                differences=_differences(before, after, tagger),
            )
        )
    # Holm's family is the taggers a change can be tested for: one that cannot be judged claims nothing.
    tested = [c for c in compared if c.judgeable]
    adjusted = dict(
        zip((c.tagger for c in tested), holm_adjusted([c.change.p_value for c in tested]), strict=True)
    )
    family = max(1, len(tested))
    return RunComparison(
        taggers=tuple(replace(c, adjusted_p=adjusted.get(c.tagger, 1.0), family=family) for c in compared),
        only_before=tuple(sorted(set(old) - set(new))),
        only_after=tuple(sorted(set(new) - set(old))),
        no_common_posts=tuple(no_common),
        changed_truth=changed_truth,
    )


def _tags_text(changes: Sequence[TagChange]) -> str:
    return ", ".join(f"{c.tag} ({c.change:+d})" for c in changes) or "-"


def _power_text(c: TaggerComparison, margin: float) -> str:
    if c.detectable is None:
        return (
            "power unknown: no spread of per-post changes to estimate it from "
            f"(all {c.posts} paired posts changed by {c.change.mean:+.3f})"
        )
    needed = c.posts_for(margin)
    posts = f"{needed} posts would detect the margin" if needed is not None else "no post count detects 0"
    return f"detects drops of {c.detectable:.3f} or more with 80% power; {posts}"


def regression_failures(comparison: RunComparison, margin: float, label: str) -> list[str]:
    """One message per tagger the gate fails: a significant drop beyond ``margin``, too few paired
    posts to judge (:data:`MIN_PAIRED`), no common post, or no scored post in ``label`` at all (the
    later run's tagger has nothing to be judged against); and one when no tagger was compared: a
    gate that judged nothing is no pass."""
    failures = [
        f"{c.tagger}: average score dropped by {-c.change.mean:.3f} against {label} "
        f"({c.before:.3f} -> {c.after:.3f} over {c.posts} paired posts; p {c.change.p_value:.4f}, "
        f"Holm-adjusted over {c.family} tagger(s) {c.adjusted_p:.4f} <= {ALPHA}; margin {margin:.3f}); "
        f"lost most: {_tags_text(c.lost)}"
        + (f"; differs: {'; '.join(c.differences)}" if c.differences else "")
        for c in comparison.taggers
        if c.regressed(margin)
    ]
    failures += [
        f"{c.tagger}: cannot judge against {label}: {c.posts} post scored in both runs, at least "
        f"{MIN_PAIRED} needed (one post's change has no spread to test it by)"
        for c in comparison.taggers
        if not c.judgeable
    ]
    failures += [
        f"{tagger}: cannot compare against {label}: {len(posts)} post(s) scored in both runs have "
        f"different ground truth (tags or rating changed in the dataset; post(s) "
        f"{', '.join(map(str, posts[:5]))}{', ...' if len(posts) > 5 else ''}): compare runs of one dataset"
        for tagger, posts in sorted(comparison.changed_truth.items())
    ]
    failures += [
        f"{tagger}: cannot compare against {label}: no post was scored in both runs "
        "(a different dataset, rating or limit?)"
        for tagger in comparison.no_common_posts
        if tagger not in comparison.changed_truth
    ]
    failures += [
        f"{tagger}: cannot compare against {label}: it scored no post there (that run has "
        f"{', '.join(sorted(_before_taggers(comparison))) or 'no scored tagger'})"
        for tagger in comparison.only_after
    ]
    if not failures and not comparison.taggers:
        failures.append(f"no tagger was compared against {label}: the later run scored no post")
    return failures


def _before_taggers(comparison: RunComparison) -> set[str]:
    """The taggers that scored a post in the earlier run."""
    compared = {c.tagger for c in comparison.taggers}
    return compared | set(comparison.only_before) | set(comparison.no_common_posts)


def power_notes(comparison: RunComparison, margin: float) -> list[str]:
    """One line per tagger whose margin is below the smallest drop this run can detect: its green
    verdict says less than the margin promises (not for a tagger the gate fails, nor one whose every
    post is unchanged)."""
    return [
        f"{c.tagger}: margin {margin:.3f} "
        + (
            "is below what this run can detect: "
            if c.power_known
            else "may be below what this run can detect: "
        )
        + _power_text(c, margin)
        for c in comparison.taggers
        if c.judgeable and c.underpowered(margin) and not c.regressed(margin)
    ]


#: Columns of :func:`comparison_rows`, shared by the terminal and the HTML report.
COMPARISON_HEADERS = (
    "tagger",
    "paired posts",
    "before",
    "after",
    "change",
    "95% CI",
    "Holm p",
    "detectable (80%)",
    "posts for margin",
    "verdict",
    "differs",
    "gained most",
    "lost most",
)


#: The terminal's table stops after the verdict; what differs and the tags that moved, which can be
#: long, follow it as a line per tagger (the HTML report keeps every column in its table).
_TABLE_COLUMNS: Final = COMPARISON_HEADERS.index("verdict") + 1


def _verdict(c: TaggerComparison, margin: float) -> str:
    if not c.judgeable:
        return "cannot judge"
    if c.regressed(margin):
        return "DROP"
    if c.unchanged:
        return "unchanged"
    verdict = "gain" if c.is_gain else "~"
    return f"{verdict} (underpowered)" if c.underpowered(margin) else verdict


def comparison_rows(comparison: RunComparison, margin: float) -> list[tuple[str, ...]]:
    """One row per tagger: averages, the change with its interval and Holm-adjusted p-value, what
    the run could detect, the verdict, what differs between the runs and the tags that moved."""
    rows: list[tuple[str, ...]] = []
    for c in comparison.taggers:
        needed = c.posts_for(margin)
        rows.append(
            (
                c.tagger,
                f"{c.posts}" + (f" ({c.unpaired} unpaired)" if c.unpaired else ""),
                f"{c.before:.3f}",
                f"{c.after:.3f}",
                f"{c.change.mean:+.3f}",
                f"[{c.change.low:+.3f}, {c.change.high:+.3f}]" if c.judgeable else "-",
                f"{c.adjusted_p:.4f}",
                "-" if c.detectable is None else f"{c.detectable:.3f}",
                "-" if needed is None else str(needed),
                _verdict(c, margin),
                "; ".join(c.differences) or "-",
                _tags_text(c.gained),
                _tags_text(c.lost),
            )
        )
    return rows


def format_comparison(comparison: RunComparison, margin: float) -> str:
    """A table of changes (one row per tagger), a line per tagger with what differs between the runs
    and the tags that moved, then the taggers not compared and the power notes."""
    rows = comparison_rows(comparison, margin)
    table, details = COMPARISON_HEADERS[:_TABLE_COLUMNS], COMPARISON_HEADERS[_TABLE_COLUMNS:]
    cells = [row[:_TABLE_COLUMNS] for row in rows]
    lines = [tabulate(cells, headers=table, tablefmt="simple", disable_numparse=True)] if rows else []
    for row in rows:
        said = [
            f"{name}: {value}"
            for name, value in zip(details, row[_TABLE_COLUMNS:], strict=True)
            if value != "-"
        ]
        if said:
            lines.append(f"{row[0]}: {'; '.join(said)}")
    for title, names in (
        ("only in the first run", comparison.only_before),
        ("only in the second run", comparison.only_after),
        ("no post in common", comparison.no_common_posts),
    ):
        if names:
            lines.append(f"{title}: {', '.join(names)}")
    lines += [f"note: {note}" for note in power_notes(comparison, margin)]
    return "\n".join(lines) if lines else "no tagger to compare"


@dataclass(frozen=True)
class CompareGate:
    """The outcome of ``--showdown-compare``: the comparison, the failures it gates on, and per
    gated tagger its verdict (None: passed, else the failure)."""

    label: str
    margin: float
    comparison: RunComparison
    failures: tuple[str, ...]
    #: How the saved run was chosen, when a reader should know (:attr:`history.SavedRun.remark`).
    remark: str | None = None

    @property
    def verdicts(self) -> dict[str, str | None]:
        """Every tagger of the later run (compared, without a common post, or not in the earlier
        run) with its failure or None; :data:`NOTHING_COMPARED` with its failure when there is none."""
        comparison = self.comparison
        names = [c.tagger for c in comparison.taggers] + [*comparison.no_common_posts, *comparison.only_after]
        if not names:
            return {NOTHING_COMPARED: self.failures[0] if self.failures else None}
        return {
            name: next((f for f in self.failures if f.startswith(f"{name}: ")), None)
            for name in sorted(names)
        }


def gate_against(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    label: str,
    margin: float,
    remark: str | None = None,
) -> CompareGate:
    """Compare a finished run (``after``) with a saved one and apply the gate rule."""
    comparison = compare_runs(before, after)
    failures = tuple(regression_failures(comparison, margin, label))
    return CompareGate(label, margin, comparison, failures, remark)
