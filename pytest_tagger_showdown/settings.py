"""The showdown's settings, parsed from option and ini text into typed values, independent of pytest."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .bundled import DEMO_DB
from .cache import DEFAULT_MAX_SIZE, parse_size
from .compare import DEFAULT_MARGIN
from .gate import parse_baselines
from .pool import ThresholdOverride
from .taggers.spec import parse_threshold_option
from .tags import RATINGS, TagCategory, parse_categories


@dataclass(frozen=True)
class ShowdownSettings:
    """What to run and how to judge it."""

    taggers: tuple[str, ...] = ()
    db: Path = DEMO_DB
    ratings: tuple[str, ...] = RATINGS
    limit: int | None = None
    categories: frozenset[TagCategory] = frozenset(TagCategory)
    thresholds: tuple[ThresholdOverride, ...] = ()
    json_path: Path | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    providers: tuple[str, ...] | None = None
    sdwebui_url: str | None = None
    hydrus_dd_url: str | None = None
    report_path: Path | None = None
    csv_path: Path | None = None
    #: A saved run (file, number/name prefix or ``latest``) to gate the scores against.
    compare_run: str | None = None
    compare_margin: float = DEFAULT_MARGIN
    #: Inference batch size; None chooses per tagger (1 on CPU, 32 on a GPU).
    batch_size: int | None = None
    #: Where the input and prediction caches live; None disables them.
    cache_dir: Path | None = None
    #: The caches' size limit in bytes (least recently used entries are evicted beyond it).
    cache_max_size: int = DEFAULT_MAX_SIZE

    @property
    def is_demo(self) -> bool:
        return bool(self.db.resolve() == DEMO_DB.resolve())

    @property
    def categories_label(self) -> str:
        """How the table names what was scored."""
        if self.categories == frozenset(TagCategory):
            return "all tag categories (the study's choice)"
        return "+".join(c.value for c in TagCategory if c in self.categories) + " tags"


def parse_ratings(text: str) -> tuple[str, ...]:
    """``g,s,q,e`` (any subset, any order) into Danbooru's rating order."""
    wanted = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = wanted - set(RATINGS)
    if unknown:
        raise ValueError(f"unknown rating(s) {', '.join(sorted(unknown))}: use g, s, q, e")
    if not wanted:
        raise ValueError("no rating given: use a subset of g,s,q,e")
    return tuple(rating for rating in RATINGS if rating in wanted)


def parse_limit(text: str | None) -> int | None:
    if text is None or str(text).strip() == "":
        return None
    value = int(text)
    if value < 1:
        raise ValueError(f"--showdown-limit must be at least 1, got {value}")
    return value


def parse_margin(text: str | None) -> float:
    """``--showdown-margin``: how far an average score may drop against ``--showdown-compare``."""
    if text is None or str(text).strip() == "":
        return DEFAULT_MARGIN
    value = float(text)
    if value < 0:
        raise ValueError(f"--showdown-margin is a drop in average score, at least 0; got {value}")
    return value


def parse_batch_size(text: str | None) -> int | None:
    """``--showdown-batch-size``: a positive number, or ``auto`` (None) to choose per tagger."""
    if text is None or str(text).strip().lower() in ("", "auto"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--showdown-batch-size must be a number or auto, got {text!r}") from None
    if value < 1:
        raise ValueError(f"--showdown-batch-size must be at least 1 (or auto), got {value}")
    return value


def build_settings(
    *,
    taggers: Sequence[str] = (),
    db: Path | None = None,
    ratings: str | None = None,
    limit: str | None = None,
    categories: str | None = None,
    thresholds: Iterable[str] = (),
    json_path: Path | None = None,
    baselines: Iterable[str] = (),
    providers: str | None = None,
    sdwebui_url: str | None = None,
    hydrus_dd_url: str | None = None,
    report_path: Path | None = None,
    csv_path: Path | None = None,
    compare_run: str | None = None,
    compare_margin: str | None = None,
    batch_size: str | None = None,
    cache_dir: Path | None = None,
    cache_max_size: str | None = None,
) -> ShowdownSettings:
    """Settings from option text; raises ValueError with a message naming the bad value."""
    return ShowdownSettings(
        taggers=tuple(taggers),
        db=db or DEMO_DB,
        ratings=parse_ratings(ratings) if ratings else RATINGS,
        limit=parse_limit(limit),
        categories=parse_categories(categories or "all"),
        thresholds=tuple(parse_threshold_option(text) for text in thresholds if text.strip()),
        json_path=json_path,
        baselines=parse_baselines(baselines),
        providers=tuple(p.strip() for p in providers.split(",") if p.strip()) if providers else None,
        sdwebui_url=sdwebui_url or None,
        hydrus_dd_url=hydrus_dd_url or None,
        report_path=report_path,
        csv_path=csv_path,
        compare_run=compare_run or None,
        compare_margin=parse_margin(compare_margin),
        batch_size=parse_batch_size(batch_size),
        cache_dir=cache_dir,
        cache_max_size=(
            parse_size(cache_max_size, "--showdown-cache-max-size") if cache_max_size else DEFAULT_MAX_SIZE
        ),
    )
