"""``tagger-showdown fetch``: build or extend a dataset from Danbooru, resumably.

Sampling follows the study: for each rating, skip the newest ``page_skip`` pages (fresh uploads are
not fully tagged yet), then take the next ``per_rating`` usable posts, newest first.

Why a fetch killed at any moment resumes exactly:

- The first run records its query (API URL, extra tags, page skip, page size, variant) in the
  dataset's ``meta`` table and, per rating, the ``b<id>`` cursor just below the skipped pages, together
  with the first post (or skip) it stores: a run that stores nothing pins nothing. A rerun
  walks from the same cursor, so it sees the same posts though Danbooru got uploads meanwhile, and it
  refuses other query options rather than mix two samples in one dataset.
- A post goes in together with its verified image in one SQLite transaction (``Dataset.add_post``),
  written from the main thread only; a kill loses the downloads in flight, never half a post.
- A post counts toward ``per_rating`` once it is stored with its image. A rerun counts what is there,
  downloads only what is missing and keeps at most ``per_rating - have`` downloads in flight, so a
  dataset never ends with more posts of a rating than asked for.
- With ``--with-tag-relations``, each tag's related tags go in with one transaction per tag, so a
  rerun asks only for the tags whose answer is not stored yet.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TextIO

from tqdm import tqdm

from ..errors import ImageError
from ..taggers.preprocess import ImageTooLargeError, decode_image
from ..tags import RATINGS
from .danbooru import (
    DanbooruClient,
    DownloadError,
    FetchError,
    image_source,
    post_from_json,
    unusable_reason,
)
from .post import Post
from .store import Dataset

log = logging.getLogger(__name__)

#: ``meta`` key of the query a dataset was fetched with (JSON).
QUERY_KEY: Final = "fetch.query"
MAX_CONCURRENCY: Final = 32
#: With ``--with-tag-relations``: related tags of this many of the dataset's most frequent tags.
DEFAULT_RELATED_TAGS: Final = 500
MAX_RELATED_TAGS: Final = 100_000


def cursor_key(rating: str) -> str:
    """``meta`` key of a rating's start cursor: the id just below its skipped pages."""
    return f"fetch.cursor.{rating}"


@dataclass(frozen=True)
class FetchOptions:
    """What to fetch; everything but ``per_rating``, ``ratings``, ``concurrency``,
    ``with_tag_relations`` and ``related_tags`` must stay the same for a dataset's whole life."""

    per_rating: int
    ratings: tuple[str, ...] = RATINGS
    tags: str = ""
    page_skip: int = 0
    page_size: int = 20
    variant: Literal["original", "sample"] = "original"
    concurrency: int = 4
    with_tag_relations: bool = False
    #: How many of the dataset's most frequent tags get their related tags (with ``with_tag_relations``).
    related_tags: int = DEFAULT_RELATED_TAGS

    def query(self, rating: str) -> str:
        """The search for one rating: ``rating:g`` plus the extra tags."""
        return " ".join([f"rating:{rating}", *self.tags.split()])

    def fingerprint(self, api_url: str) -> dict[str, Any]:
        """The options that decide which posts a dataset holds."""
        return {
            "api_url": api_url,
            "tags": " ".join(sorted(self.tags.split())),
            "page_skip": self.page_skip,
            "page_size": self.page_size,
            "variant": self.variant,
        }


@dataclass
class RatingResult:
    """How one rating fared: ``have`` is the dataset's count after the fetch."""

    rating: str
    target: int
    have: int = 0
    downloaded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def short(self) -> int:
        """Posts still missing: the search ran out of usable posts below the page skip."""
        return max(0, self.target - self.have)


@dataclass
class FetchResult:
    ratings: list[RatingResult] = field(default_factory=list)
    #: Tag relations stored per kind, when they were fetched.
    tag_relations: dict[str, int] = field(default_factory=dict)
    #: Related tags, when they were fetched: (tags chosen, all now stored; answers fetched by this run).
    related_tags: tuple[int, int] | None = None

    @property
    def complete(self) -> bool:
        return all(rating.short == 0 for rating in self.ratings)


class Progress(Protocol):
    """Where the fetch reports what it does, post by post."""

    def begin(self, rating: str, have: int, target: int) -> None: ...

    def stored(self, rating: str, post_id: int) -> None: ...

    def skipped(self, rating: str, post_id: int, reason: str) -> None: ...

    def end(self, rating: str) -> None: ...


class LineProgress:
    """Plain lines, for logs and pipes: one per stored or skipped post."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._counts: dict[str, tuple[int, int]] = {}

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def begin(self, rating: str, have: int, target: int) -> None:
        self._counts[rating] = (have, target)
        self._say(f"rating {rating}: {have}/{target} posts in the dataset")

    def stored(self, rating: str, post_id: int) -> None:
        have, target = self._counts[rating]
        self._counts[rating] = (have + 1, target)
        self._say(f"rating {rating}: {have + 1}/{target} stored post {post_id}")

    def skipped(self, rating: str, post_id: int, reason: str) -> None:
        self._say(f"rating {rating}: skipped post {post_id}: {reason}")

    def end(self, rating: str) -> None:
        have, target = self._counts[rating]
        self._say(f"rating {rating}: done, {have}/{target} posts")


class BarProgress:
    """A tqdm bar per rating, for a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bars: dict[str, Any] = {}
        self._skips: Counter[str] = Counter()

    def begin(self, rating: str, have: int, target: int) -> None:
        self._bars[rating] = tqdm(
            total=target, initial=have, desc=f"rating {rating}", unit="post", file=self.stream
        )

    def stored(self, rating: str, post_id: int) -> None:
        self._bars[rating].update(1)

    def skipped(self, rating: str, post_id: int, reason: str) -> None:
        self._skips[rating] += 1
        self._bars[rating].set_postfix(skipped=self._skips[rating])

    def end(self, rating: str) -> None:
        self._bars.pop(rating).close()


def make_progress(stream: TextIO) -> LineProgress | BarProgress:
    """A bar on a terminal, plain lines otherwise."""
    return BarProgress(stream) if stream.isatty() else LineProgress(stream)


class _RejectedError(Exception):
    """A post whose image could not be used; it is recorded as skipped with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_sample(data: bytes, size: tuple[int, int] | None) -> str | None:
    """A sample has no md5 to check: it must decode fully, at the size Danbooru lists for it."""
    try:
        image = decode_image(data)
    except ImageTooLargeError as exc:
        return str(exc)
    except ImageError:
        return "undecodable sample"
    if size is not None and image.size != size:
        return f"sample size mismatch ({image.size[0]}x{image.size[1]}, expected {size[0]}x{size[1]})"
    return None


def fetch_image(
    client: DanbooruClient, post: Post, raw: Mapping[str, Any], variant: Literal["original", "sample"]
) -> tuple[bytes, str]:
    """A post's verified image bytes and the variant they are (runs on a download thread)."""
    source = image_source(raw, variant)
    try:
        if source.original:
            data = client.download(source.url, md5=post.md5, size=post.file_size)
        else:
            data = client.download(source.url, check=lambda body: _check_sample(body, source.size))
    except DownloadError as exc:
        log.warning(str(exc))
        raise _RejectedError(f"download failed: {exc.reason}") from None
    if source.original:
        try:
            decode_image(data)
        except ImageError as exc:
            log.warning(f"post {post.id}: {exc}")
            too_large = isinstance(exc, ImageTooLargeError)
            raise _RejectedError(str(exc) if too_large else "undecodable image") from None
    return data, "original" if source.original else "sample"


class _Pins:
    """The query and cursors a fetch pins in the dataset, held back until it first stores something.

    A fetch that stores nothing (a wrong ``--api-url``, Danbooru down) must leave the file as it was,
    or its retry with the right options would be refused as "another query".
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.pending: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.pending.get(key, self.dataset.meta(key))

    def put(self, key: str, value: str) -> None:
        self.pending[key] = value

    def flush(self) -> None:
        """Write what is pending; called before each post or skip is stored."""
        for key, value in self.pending.items():
            self.dataset.set_meta(key, value)
        self.pending.clear()


def _check_query(pins: _Pins, api_url: str, options: FetchOptions) -> None:
    """Pin the query of a new dataset; refuse to mix another query into an existing one."""
    dataset = pins.dataset
    wanted = options.fingerprint(api_url)
    stored = dataset.meta(QUERY_KEY)
    if stored is None:
        if dataset.count():
            raise FetchError(
                f"{dataset.path} holds posts that `tagger-showdown fetch` did not fetch; "
                "fetch into a new --db"
            )
        pins.put(QUERY_KEY, json.dumps(wanted, sort_keys=True))
        return
    recorded = json.loads(stored)
    changed = [
        f"--{key.replace('_', '-')} {recorded.get(key)!r} (now {value!r})"
        for key, value in wanted.items()
        if recorded.get(key) != value
    ]
    if changed:
        raise FetchError(
            f"{dataset.path} was fetched with {', '.join(changed)}; use the same options to "
            "resume or extend it, or fetch into a new --db"
        )


def _start_cursor(pins: _Pins, client: DanbooruClient, options: FetchOptions, rating: str) -> int:
    stored = pins.get(cursor_key(rating))
    if stored is not None:
        return int(stored)
    cursor = client.newest_cursor(options.query(rating), options.page_skip * options.page_size)
    pins.put(cursor_key(rating), str(cursor))
    return cursor


def _fetch_rating(
    pins: _Pins,
    client: DanbooruClient,
    options: FetchOptions,
    rating: str,
    pool: ThreadPoolExecutor,
    progress: Progress,
) -> RatingResult:
    dataset = pins.dataset
    result = RatingResult(rating, options.per_rating)
    complete = {post.id for post in dataset.posts([rating]) if dataset.has_image(post.id)}
    result.have = len(complete)
    recorded = dataset.skipped()
    progress.begin(rating, result.have, result.target)
    pending: dict[Future[tuple[bytes, str]], tuple[Post, Mapping[str, Any]]] = {}

    def skip(post_id: int, reason: str, raw: Mapping[str, Any]) -> None:
        if recorded.get(post_id) != reason:
            pins.flush()
            dataset.skip(post_id, reason, raw)
        result.skipped[reason] += 1
        progress.skipped(rating, post_id, reason)

    def settle() -> None:
        """Store or skip the downloads that finished (main thread: the only writer)."""
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            post, raw = pending.pop(future)
            try:
                data, variant = future.result()
            except _RejectedError as exc:
                skip(post.id, exc.reason, raw)
                continue
            created_at = raw.get("created_at")
            pins.flush()
            dataset.add_post(
                post,
                raw,
                data,
                variant=variant,
                created_at=created_at if isinstance(created_at, str) else None,
            )
            result.have += 1
            result.downloaded += 1
            progress.stored(rating, post.id)

    try:
        if result.have < result.target:
            cursor = _start_cursor(pins, client, options, rating)
            for raw in client.iter_posts(options.query(rating), page_size=options.page_size, before=cursor):
                while pending and result.have + len(pending) >= result.target:
                    settle()
                if result.have >= result.target:
                    break
                post_id = int(raw["id"])
                if post_id in complete:
                    continue
                reason = unusable_reason(raw)
                if reason is not None:
                    skip(post_id, reason, raw)
                    continue
                post = post_from_json(raw)
                pending[pool.submit(fetch_image, client, post, raw, options.variant)] = (post, raw)
            while pending:
                settle()
    finally:
        for future in pending:
            future.cancel()
    progress.end(rating)
    return result


def fetch_tag_relations(dataset: Dataset, client: DanbooruClient) -> dict[str, int]:
    """Store the aliases and implications that touch the dataset's tags, for normalising predictions.

    A dataset's tags are current names, so an alias matters when a tag is its consequent (models
    trained on older data predict the antecedent); implications are kept from both sides.
    """
    names = sorted({tag for post in dataset.posts() for tag in post.tags})
    aliases = client.tag_relations("alias", "consequent", names)
    implications = sorted(
        set(client.tag_relations("implication", "antecedent", names))
        | set(client.tag_relations("implication", "consequent", names))
    )
    dataset.add_tag_relations("alias", aliases)
    dataset.add_tag_relations("implication", implications)
    return {"alias": len(aliases), "implication": len(implications)}


def most_frequent_tags(dataset: Dataset, count: int) -> list[str]:
    """The ``count`` tags on the most posts of the dataset (all categories; ties by name)."""
    posts_with = Counter(tag for post in dataset.posts() for tag in post.tags)
    return sorted(posts_with, key=lambda tag: (-posts_with[tag], tag))[:count]


def fetch_related_tags(dataset: Dataset, client: DanbooruClient, count: int) -> tuple[int, int]:
    """Store Danbooru's related tags of the dataset's ``count`` most frequent tags, for the
    distance-aware score; one request and one transaction per tag, tags already stored skipped.

    Returns (tags chosen, answers fetched now). Raises :class:`FetchError` as every request does;
    what was stored before stays.
    """
    chosen = most_frequent_tags(dataset, count)
    stored = dataset.related_tag_queries()
    missing = [tag for tag in chosen if tag not in stored]
    for tag in tqdm(
        missing, desc="related tags", unit="tag", file=sys.stderr, disable=not sys.stderr.isatty()
    ):
        dataset.add_related_tags(client.related_tags(tag))
    return len(chosen), len(missing)


def fetch_dataset(
    dataset: Dataset,
    client: DanbooruClient,
    options: FetchOptions,
    progress: Progress | None = None,
) -> FetchResult:
    """Bring ``dataset`` up to ``options.per_rating`` verified posts per rating.

    The query and each rating's cursor are pinned in the dataset with the first post or skip stored,
    so a fetch that stores nothing leaves no trace. Raises :class:`FetchError` when Danbooru cannot be
    reached or the dataset was fetched with other options.
    """
    pins = _Pins(dataset)
    _check_query(pins, client.api_url, options)
    report: Progress = progress or LineProgress(sys.stderr)
    result = FetchResult()
    pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="danbooru")
    try:
        for rating in options.ratings:
            result.ratings.append(_fetch_rating(pins, client, options, rating, pool, report))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if options.with_tag_relations:
        result.tag_relations = fetch_tag_relations(dataset, client)
        result.related_tags = fetch_related_tags(dataset, client, options.related_tags)
    return result


def format_result(result: FetchResult, db: Path) -> str:
    """The end-of-fetch summary: per rating, posts held, downloaded now and skipped by reason."""
    lines = []
    for rating in result.ratings:
        line = f"{db}: rating {rating.rating}: {rating.have}/{rating.target} posts"
        line += f" ({rating.downloaded} downloaded now)"
        if rating.skipped:
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(rating.skipped.items()))
            line += f"; skipped {rating.skipped.total()}: {reasons}"
        if rating.short:
            line += f"; {rating.short} short: the search ran out of usable posts"
        lines.append(line)
    if result.tag_relations:
        lines.append(
            f"{db}: tag relations: {result.tag_relations['alias']} aliases, "
            f"{result.tag_relations['implication']} implications"
        )
    if result.related_tags is not None:
        chosen, fetched = result.related_tags
        lines.append(f"{db}: related tags of the {chosen} most frequent tags ({fetched} fetched now)")
    return "\n".join(lines)
