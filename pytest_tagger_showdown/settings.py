"""The showdown's settings, parsed from option and ini text into typed values, independent of pytest.

Every value has one parse function here; each raises ValueError with a message naming the option and
the value, which the plugin turns into a one-line usage error (exit code 4) at configure time, on the
controller and on every pytest-xdist worker alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from .atomic import followed, not_a_file_reason, unwritable_reason
from .bundled import DEMO_DB
from .cache import DEFAULT_MAX_SIZE, check_cache_dir, parse_size
from .compare import DEFAULT_MARGIN
from .dataset.store import is_dataset_file
from .errors import ShowdownError
from .pool import ThresholdOverride
from .probabilities import probabilities_path
from .server_url import check_server_url
from .shard import Shard, parse_shard
from .taggers.base import LoadOptions
from .taggers.remote import HYDRUS_DD, SDWEBUI, SECRET_FROM
from .taggers.spec import Thresholds
from .tags import RATINGS, TagCategory, parse_categories

T = TypeVar("T")


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
    #: This machine's share of the posts (``--showdown-shard K/N``); None runs them all.
    shard: Shard | None = None
    #: GPUs the xdist workers spread over (``--showdown-gpus``); None counts ``CUDA_VISIBLE_DEVICES``.
    gpus: int | None = None

    @property
    def is_demo(self) -> bool:
        return bool(self.db.resolve() == DEMO_DB.resolve())

    def outputs(self) -> dict[str, Path]:
        """Every file the run writes, by the option that asks for it (the JSON brings its
        probability store along)."""
        found: dict[str, Path] = {}
        if self.json_path is not None:
            found["--showdown-json"] = self.json_path
            found["--showdown-json's probability store"] = probabilities_path(self.json_path)
        if self.csv_path is not None:
            found["--showdown-csv"] = self.csv_path
        if self.report_path is not None:
            found["--showdown-report"] = self.report_path
        return found

    def load_options(self, cuda_device: int | None = None) -> LoadOptions:
        """How the run's taggers load: the providers and servers given, on ``cuda_device``."""
        return LoadOptions(
            providers=self.providers,
            sdwebui_url=self.sdwebui_url,
            hydrus_dd_url=self.hydrus_dd_url,
            cuda_device=cuda_device,
        )

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
    """``--showdown-limit``: at most this many posts; empty means no limit."""
    if text is None or str(text).strip() == "":
        return None
    return _at_least_one(text, "--showdown-limit", "a whole number")


def parse_gpus(text: str | None) -> int | None:
    """``--showdown-gpus N``: at least 1; empty means: count ``CUDA_VISIBLE_DEVICES``."""
    if text is None or not str(text).strip():
        return None
    return _at_least_one(text, "--showdown-gpus", "a number of GPUs")


def _at_least_one(text: str, option: str, expected: str) -> int:
    """``text`` as a whole number of at least 1; raises ValueError naming the option and the value."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{option} must be {expected}, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{option} must be at least 1, got {value}")
    return value


def parse_margin(text: str | None) -> float:
    """``--showdown-margin``: how far an average score may drop against ``--showdown-compare``; a
    finite number at least 0 (NaN or inf would make the gate unable to fail)."""
    if text is None or str(text).strip() == "":
        return DEFAULT_MARGIN
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--showdown-margin must be a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"--showdown-margin is a drop in average score, a finite number >= 0; got {text}")
    return value


def is_blank(value: str, *, listed: bool = False) -> bool:
    """A value that names nothing: empty, blanks or commas only (``--showdown-baseline=,``), and for
    a list (``listed``) ``#`` comments only too, which :func:`list_items` drops. Given explicitly, it
    is an error, never "not set": ``--showdown-compare "$BASE"`` with ``BASE`` unset would turn a
    gate off."""
    return not list_items([value]) if listed else not value.replace(",", "").strip()


def list_items(lines: Iterable[str]) -> list[str]:
    """The entries of a list value: one per line and per comma, blanks and ``#`` comments dropped."""
    items: list[str] = []
    for line in lines:
        for part in re.split(r"[,\n]", line):
            text = part.strip()
            if text and not text.startswith("#"):
                items.append(text)
    return items


def parse_baselines(lines: Iterable[str], option: str = "--showdown-baseline") -> dict[str, float]:
    """``--showdown-baseline NAME=SCORE`` (repeatable) or ini ``showdown_baselines`` (``option``
    names which, in messages): ``NAME = SCORE`` entries separated by commas or newlines in both
    (``a = 0.2, b = 0.2`` is two baselines). A score is a finite number at most 1 (the best average
    score). A tagger named twice is an error (which one was meant?); across the two sources the
    command line wins (:func:`build_settings`)."""
    baselines: dict[str, float] = {}
    for entry in list_items(lines):
        name, eq, value = entry.rpartition("=")
        name = name.strip()
        if not eq or not name:
            raise ValueError(f"{option}: cannot read {entry!r}: expected NAME=SCORE")
        try:
            score = float(value)
        except ValueError:
            raise ValueError(f"{option} {entry!r}: {value.strip()!r} is not a number") from None
        if not (math.isfinite(score) and score <= 1):
            raise ValueError(f"{option} {entry!r}: a baseline is an average score, a finite number at most 1")
        if name in baselines:
            raise ValueError(
                f"{option}: {name} is given two baselines ({baselines[name]:g} and {score:g}); give it one"
            )
        baselines[name] = score
    return baselines


def parse_thresholds(
    lines: Iterable[str], option: str = "--showdown-threshold"
) -> tuple[ThresholdOverride, ...]:
    """``--showdown-threshold`` values (or ini ``showdown_threshold``: ``option`` names which, in
    messages): ``0.5``, ``general=0.4,character=0.9``, ``mcut=true``, each optionally after ``NAME:``
    for one tagger; one value may hold several (``a:0.6,b:0.2``). A part without a prefix belongs to
    the previous part's tagger (``a:general=0.4,character=0.9``), or to every tagger when it comes
    first. Values are checked now (numbers in [0, 1], known categories, ``mcut`` true/false), so a typo
    never waits for the first post; one cut-off given twice for the same tagger (``a:0.5,a:0.6``,
    ``general=0.4`` and ``0.5``, which sets general too) is an error, where it silently took the last.
    A per-tagger value refines the every-tagger one; across the ini and the command line, the command
    line's come later and win."""
    overrides: list[ThresholdOverride] = []
    given: dict[tuple[str | None, str], str] = {}
    for line in lines:
        name: str | None = None
        grouped: dict[str | None, dict[str, str]] = {}
        for part in (p.strip() for p in re.split(r"[,\n]", line)):
            if not part:
                continue
            key, eq, value = part.partition("=")
            target, colon, key = key.rpartition(":") if eq else part.rpartition(":")
            if colon:
                name = target.strip()
                if not name:
                    raise ValueError(f"{option} {part!r}: empty tagger name before ':'")
            cut_key = key.strip() if eq else "all"
            body = {cut_key: value.strip() if eq else key.strip()}
            try:
                Thresholds().with_overrides(body)
            except ValueError as exc:
                raise ValueError(f"{option} {line.strip()!r}: {exc}") from None
            for cut in _THRESHOLD_KEYS.get(cut_key, (cut_key,)):
                if (name, cut) in given:
                    whose = name or "every tagger"
                    raise ValueError(
                        f"{option}: {cut} for {whose} is given twice ({given[name, cut]!r} and {part!r}); "
                        "give it once"
                    )
                given[name, cut] = part
            grouped.setdefault(name, {}).update(body)
        overrides += grouped.items()
    return tuple(overrides)


#: The cut-offs a threshold key sets (``all`` sets both categories').
_THRESHOLD_KEYS: Final = {"all": ("general", "character")}


def check_tagger_names(
    settings: ShowdownSettings, selected: Sequence[str], resolve: Callable[[str], object]
) -> None:
    """Baselines and per-tagger thresholds must name a selected tagger (with no ``--tagger``, tests
    choose theirs with marks: then a name the registry knows); a misspelt name would be ignored."""
    named = [("--showdown-baseline", name) for name in settings.baselines]
    named += [("--showdown-threshold", name) for name, _ in settings.thresholds if name is not None]
    for option, name in named:
        if selected and name not in selected:
            raise ValueError(f"{option}: {name} is not a selected tagger (selected: {', '.join(selected)})")
        if not selected:
            try:
                resolve(name)
            except LookupError as exc:
                raise ValueError(f"{option}: {exc}") from None


def check_output_paths(settings: ShowdownSettings, inputs: Mapping[str, Path] | None = None) -> None:
    """No output may overwrite an input (the dataset, the compared run) or another output, or be
    anything but a regular file where one exists (a device, a fifo: :func:`atomic.not_a_file_reason`;
    a symlink is followed and written through), and each must be writable: a file can be made in its
    folder (:func:`atomic.unwritable_reason` tries)."""
    taken = {"--showdown-db": settings.db, **(inputs or {})}
    seen = {path.resolve(): option for option, path in taken.items()}
    for option, path in settings.outputs().items():
        try:
            resolved = followed(path)
        except ShowdownError as exc:
            raise ValueError(f"{option} {exc}") from None
        if resolved in seen:
            raise ValueError(f"{option} {path} is the same file as {seen[resolved]}: it would be overwritten")
        seen[resolved] = option
        if resolved.is_dir():
            raise ValueError(f"{option} {path} is a folder; name a file")
        kind = not_a_file_reason(resolved)
        if kind is not None:
            raise ValueError(
                f"{option} {path} is {kind}, not a regular file (it would be replaced); name a file"
            )
        if is_dataset_file(resolved):
            raise ValueError(f"{option} {path} is a dataset (an SQLite file): it would be overwritten")
        reason = unwritable_reason(resolved.parent)
        if reason is not None:
            raise ValueError(f"{option} {path}: cannot write there ({reason})")


def parse_batch_size(text: str | None) -> int | None:
    """``--showdown-batch-size``: a positive number, or ``auto`` (None) to choose per tagger."""
    if text is None or str(text).strip().lower() in ("", "auto"):
        return None
    return _at_least_one(text, "--showdown-batch-size", "a number or auto")


def build_settings(
    *,
    taggers: Sequence[str] = (),
    db: Path | None = None,
    ratings: str | None = None,
    limit: str | None = None,
    categories: str | None = None,
    thresholds: Iterable[str] = (),
    ini_thresholds: Iterable[str] = (),
    json_path: Path | None = None,
    baselines: Iterable[str] = (),
    ini_baselines: Iterable[str] = (),
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
    shard: str | None = None,
    gpus: str | None = None,
) -> ShowdownSettings:
    """Settings from option text; raises ValueError with a message naming the option (or, for a list
    value from the ini file, the ini key: ``ini_thresholds``, ``ini_baselines``) and the bad value.
    The command line's thresholds and baselines come after the ini's and win. Tagger names are
    checked against the selection (:func:`check_tagger_names`) and output paths by the process that
    writes them (:func:`check_output_paths`)."""
    settings = ShowdownSettings(
        taggers=tuple(taggers),
        db=db or DEMO_DB,
        ratings=_naming("--showdown-ratings", parse_ratings, ratings) if ratings else RATINGS,
        limit=parse_limit(limit),
        categories=_naming("--showdown-categories", parse_categories, categories or "all"),
        thresholds=(
            *parse_thresholds(ini_thresholds, "showdown_threshold"),
            *parse_thresholds(thresholds),
        ),
        json_path=json_path,
        baselines={
            **parse_baselines(ini_baselines, "showdown_baselines"),
            **parse_baselines(baselines),
        },
        providers=tuple(p.strip() for p in providers.split(",") if p.strip()) if providers else None,
        sdwebui_url=_url("--sdwebui-url", sdwebui_url, SDWEBUI),
        hydrus_dd_url=_url("--hydrus-dd-url", hydrus_dd_url, HYDRUS_DD),
        report_path=report_path,
        csv_path=csv_path,
        compare_run=compare_run or None,
        compare_margin=parse_margin(compare_margin),
        batch_size=parse_batch_size(batch_size),
        cache_dir=cache_dir,
        cache_max_size=(
            parse_size(cache_max_size, "--showdown-cache-max-size") if cache_max_size else DEFAULT_MAX_SIZE
        ),
        shard=parse_shard(shard),
        gpus=parse_gpus(gpus),
    )
    if cache_dir is not None:
        check_cache_dir(cache_dir)
    return settings


def _url(option: str, text: str | None, backend: str) -> str | None:
    """A server URL option, checked (:func:`server_url.check_server_url`); empty means not given."""
    return check_server_url(text, option, SECRET_FROM[backend]) if text and text.strip() else None


def _naming(option: str, parse: Callable[[str], T], text: str) -> T:
    """``parse(text)``, its ValueError naming the option (the shared parsers do not know it)."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None
