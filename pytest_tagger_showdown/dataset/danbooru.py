"""A small, polite client for Danbooru's JSON API: post pages, tag relations, related tags and
verified downloads.

Politeness and robustness live here so that the fetcher can stay a plain loop: one requests session
per thread with a clear User-Agent, a timeout on every call, retries with backoff on 429 (honouring
Retry-After), 5xx and connection errors, and a bounded time per call after which it gives up with a
:class:`FetchError`. Credentials travel as HTTP Basic auth to the API host only, never in a URL, and
every message this module raises or logs has the api key scrubbed out.

It also knows how a post's JSON maps onto a :class:`~pytest_tagger_showdown.dataset.post.Post`
and which posts cannot be used (hidden, deleted, banned, not an image).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, quote_plus, urlsplit

import requests

from ..errors import ShowdownError
from ..server_url import check_server_url, shown
from ..tags import RATINGS, TagCategory, normalize_tag
from .post import Post

log = logging.getLogger(__name__)

DEFAULT_API_URL: Final = "https://danbooru.donmai.us"
#: The most posts Danbooru returns per page.
MAX_PAGE_SIZE: Final = 200
#: The most tag aliases/implications Danbooru returns per page.
MAX_RELATION_PAGE_SIZE: Final = 1000
#: File types Pillow decodes (an animation is tagged from its first frame); anything else is skipped.
IMAGE_EXTENSIONS: Final = frozenset({"png", "jpg", "jpeg", "gif", "webp", "bmp", "avif"})
#: Refuse to buffer more than this for a download whose size the post does not give (samples).
MAX_DOWNLOAD_BYTES: Final = 256 * 1024 * 1024
#: Tags per tag-relation request: tag names are short, so this keeps URLs well under server limits.
RELATION_BATCH: Final = 100
#: Related tags asked for per tag (``/related_tag.json``'s ``limit``; Danbooru's own default is 25).
RELATED_TAG_LIMIT: Final = 100

_CATEGORY_FIELDS: Final = (
    ("tag_string_general", TagCategory.GENERAL),
    ("tag_string_character", TagCategory.CHARACTER),
    ("tag_string_copyright", TagCategory.COPYRIGHT),
    ("tag_string_artist", TagCategory.ARTIST),
    ("tag_string_meta", TagCategory.META),
)
_HTTP_HINTS: Final = {
    401: "check DANBOORU_LOGIN and DANBOORU_API_KEY",
    403: "access denied; check DANBOORU_LOGIN and DANBOORU_API_KEY and the account's level",
    410: "numbered pages beyond the page cap are gone",
    422: "Danbooru rejected the search (an anonymous or basic account may search 2 tags at most)",
}

T = TypeVar("T")


def _package_version() -> str:
    try:
        return version("pytest-tagger-showdown")
    except PackageNotFoundError:
        return "unknown"


USER_AGENT: Final = (
    f"pytest-tagger-showdown/{_package_version()} (tagger benchmark dataset fetcher; "
    f"python-requests/{requests.__version__})"
)


class FetchError(ShowdownError):
    """Danbooru could not be reached or refused a request; the fetch stops and can be resumed."""


class DownloadError(FetchError):
    """One image could not be downloaded intact; that post is recorded as failed, the fetch goes on."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        #: Short and stable, so that skipped posts group by it.
        self.reason = reason


class _RetryableError(Exception):
    """An attempt failed in a way that may pass: wait (``retry_after`` or backoff) and try again,
    at most ``attempts`` times in all when that is set."""

    def __init__(self, reason: str, retry_after: float | None = None, attempts: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.attempts = attempts


#: Attempts for a host that does not resolve or refuses the connection: a typo, no network or no
#: server there, which waiting for the whole ``max_time`` (5 minutes) does not cure; a resolver's
#: hiccup or a restarting server passes within these (about 7 s of backoff).
UNREACHABLE_ATTEMPTS: Final = 4


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything in its chain: causes, contexts, and what requests and urllib3 wrap
    (an exception's ``args``, urllib3's ``MaxRetryError.reason``)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        linked = (current.__cause__, current.__context__, *current.args, reason)
        pending += [item for item in linked if isinstance(item, BaseException)]


def _transport_failure(exc: requests.RequestException, url: str) -> _RetryableError | FetchError:
    """What a failed request means: a URL that cannot work fails now; a host that does not resolve or
    refuses connections is tried :data:`UNREACHABLE_ATTEMPTS` times; anything else is retried until
    the time limit."""
    where = urlsplit(shown(url)).netloc
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
        return FetchError(f"cannot request {where}: {exc}")
    causes = list(_causes(exc))
    if any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError" for c in causes):
        reason = f"cannot resolve the host name {urlsplit(url).hostname!r} (check --api-url and the network)"
        return _RetryableError(reason, attempts=UNREACHABLE_ATTEMPTS)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        reason = f"{where} refused the connection (check --api-url: is a server listening there?)"
        return _RetryableError(reason, attempts=UNREACHABLE_ATTEMPTS)
    return _RetryableError(f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Credentials:
    """A Danbooru login and api key; the key is kept out of ``repr`` so it cannot leak into logs."""

    login: str
    api_key: str = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """Read ``DANBOORU_LOGIN`` and ``DANBOORU_API_KEY``; None when neither is set."""
        env = os.environ if environ is None else environ
        login = env.get("DANBOORU_LOGIN", "").strip()
        api_key = env.get("DANBOORU_API_KEY", "").strip()
        if not login and not api_key:
            return None
        if not login or not api_key:
            missing = "DANBOORU_LOGIN" if not login else "DANBOORU_API_KEY"
            raise FetchError(f"{missing} is not set; set both DANBOORU_LOGIN and DANBOORU_API_KEY")
        return cls(login, api_key)


@dataclass(frozen=True)
class RelatedTag:
    """One entry of a ``/related_tag.json`` answer: a tag and how it relates to the queried tag.

    Danbooru computes them over a sample of the queried tag's posts (``RelatedTagCalculator``):
    ``cosine_similarity`` is ``|A and B| / sqrt(|A| |B|)``, 0..1 up to sampling error.
    """

    name: str
    cosine_similarity: float
    jaccard_similarity: float | None = None
    overlap_coefficient: float | None = None
    frequency: float | None = None


@dataclass(frozen=True)
class RelatedTagAnswer:
    """What ``/related_tag.json?query=TAG`` answered for one tag."""

    query: str
    #: How many posts Danbooru says carry the tag (None when the answer does not say).
    post_count: int | None
    related: tuple[RelatedTag, ...]


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def related_tag_answer(query: str, data: object) -> RelatedTagAnswer:
    """Read a ``/related_tag.json`` answer: ``{"query", "post_count", "related_tags": [{"tag":
    {"name", ...}, "cosine_similarity", "jaccard_similarity", "overlap_coefficient", "frequency"}]}``
    (Danbooru's ``RelatedTagQuery#serializable_hash``). Raises :class:`FetchError` for anything else.
    """
    items = data.get("related_tags") if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(items, list):
        raise FetchError(f"GET /related_tag.json for {query!r} answered something without related_tags")
    related: list[RelatedTag] = []
    for item in items:
        tag = item.get("tag") if isinstance(item, Mapping) else None
        cosine = _float_or_none(item.get("cosine_similarity")) if isinstance(item, Mapping) else None
        if not isinstance(tag, Mapping) or not isinstance(tag.get("name"), str) or cosine is None:
            raise FetchError(f"GET /related_tag.json for {query!r} answered an entry without a tag or cosine")
        related.append(
            RelatedTag(
                name=normalize_tag(tag["name"]),
                cosine_similarity=cosine,
                jaccard_similarity=_float_or_none(item.get("jaccard_similarity")),
                overlap_coefficient=_float_or_none(item.get("overlap_coefficient")),
                frequency=_float_or_none(item.get("frequency")),
            )
        )
    return RelatedTagAnswer(query, _int_or_none(data.get("post_count")), tuple(related))


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for Danbooru, and how hard to try before giving up."""

    #: Seconds one call (a page, one image) may spend in total, retries and waits included.
    max_time: float = 300.0
    #: First backoff delay in seconds; it doubles per failed attempt up to ``max_delay``.
    base_delay: float = 1.0
    max_delay: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    #: Downloads that arrive corrupt (md5 or size mismatch, truncated) are tried this many times.
    download_attempts: int = 3


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def post_from_json(raw: Mapping[str, Any]) -> Post:
    """The dataset's view of a usable post: its tags by category, in Danbooru spelling."""
    tags: dict[str, TagCategory] = {}
    for key, category in _CATEGORY_FIELDS:
        for name in str(raw.get(key) or "").split():
            tags.setdefault(normalize_tag(name), category)
    return Post(
        id=int(raw["id"]),
        md5=str(raw["md5"]),
        rating=str(raw["rating"]),
        file_ext=str(raw["file_ext"]).lower(),
        tags=tags,
        file_size=_int_or_none(raw.get("file_size")),
        width=_int_or_none(raw.get("image_width")),
        height=_int_or_none(raw.get("image_height")),
    )


def unusable_reason(raw: Mapping[str, Any]) -> str | None:
    """Why a post cannot go into a dataset, or None if it can (its image still has to download)."""
    if raw.get("is_deleted"):
        return "deleted"
    if raw.get("is_banned"):
        return "banned"
    if not raw.get("file_url") or not raw.get("md5"):
        return "hidden (no file_url or md5)"
    ext = str(raw.get("file_ext") or "").lower()
    if ext not in IMAGE_EXTENSIONS:
        return f"not an image: {ext or 'no file_ext'}"
    if raw.get("rating") not in RATINGS:
        return f"unknown rating {raw.get('rating')!r}"
    return None


@dataclass(frozen=True)
class ImageSource:
    """Where a post's image of one variant is, and what it can be checked against."""

    url: str
    #: True when this is the original file (so the post's md5 and file_size apply).
    original: bool
    #: The sample's size as Danbooru lists it in ``media_asset.variants``, when it does.
    size: tuple[int, int] | None = None


def image_source(raw: Mapping[str, Any], variant: Literal["original", "sample"]) -> ImageSource:
    """The URL to download for ``variant``; small posts have no sample, their sample is the original."""
    file_url = str(raw["file_url"])
    if variant == "original":
        return ImageSource(file_url, original=True)
    sample_url = str(raw.get("large_file_url") or file_url)
    if sample_url == file_url:
        return ImageSource(file_url, original=True)
    media_asset = raw.get("media_asset")
    variants = media_asset.get("variants") if isinstance(media_asset, Mapping) else None
    for entry in variants if isinstance(variants, list) else []:
        if isinstance(entry, Mapping) and entry.get("url") == sample_url:
            width, height = _int_or_none(entry.get("width")), _int_or_none(entry.get("height"))
            if width is not None and height is not None:
                return ImageSource(sample_url, original=False, size=(width, height))
    return ImageSource(sample_url, original=False)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class DanbooruClient:
    """Talks to one Danbooru instance; safe to share between download threads."""

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        credentials: Credentials | None = None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            self.api_url = check_server_url(api_url, "--api-url", "set DANBOORU_LOGIN and DANBOORU_API_KEY")
        except ValueError as exc:
            raise FetchError(str(exc)) from None
        self.retry = retry or RetryPolicy()
        self._auth = (credentials.login, credentials.api_key) if credentials else None
        self._secrets = self._secret_forms(credentials)
        self._sleep = sleep
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    @staticmethod
    def _secret_forms(credentials: Credentials | None) -> tuple[str, ...]:
        """Every spelling of the api key that could show up in a message: raw, URL-quoted, Basic auth."""
        if credentials is None or not credentials.api_key:
            return ()
        key = credentials.api_key
        basic = base64.b64encode(f"{credentials.login}:{key}".encode()).decode()
        forms = {key, quote(key, safe=""), quote_plus(key), basic}
        return tuple(sorted(forms, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """``text`` with the api key replaced, so that it can be shown, logged or saved."""
        for secret in self._secrets:
            text = text.replace(secret, "[api key]")
        return text

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def __enter__(self) -> DanbooruClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _session(self) -> requests.Session:
        """This thread's session: requests does not promise that one session is thread-safe."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    # -- retrying --------------------------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        delay = min(self.retry.max_delay, self.retry.base_delay * 2.0 ** (failures - 1))
        return delay * random.uniform(1.0, 1.25)

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it succeeds, waiting between tries, for at most ``max_time`` seconds."""
        started = time.monotonic()
        failures = 0
        while True:
            try:
                return attempt()
            except _RetryableError as exc:
                failures += 1
                delay = exc.retry_after if exc.retry_after is not None else self._backoff(failures)
                elapsed = time.monotonic() - started
                if exc.attempts is not None and failures >= exc.attempts:
                    raise FetchError(
                        self.scrub(f"giving up on {what} after {failures} failed attempts: {exc.reason}")
                    ) from None
                if elapsed + delay > self.retry.max_time:
                    wait = f"; the next wait would be {delay:.0f} s" if delay >= 1 else ""
                    raise FetchError(
                        self.scrub(
                            f"giving up on {what} after {failures} failed attempts in "
                            f"{elapsed:.1f} s (limit {self.retry.max_time:g} s{wait}): {exc.reason}"
                        )
                    ) from None
                log.warning(self.scrub(f"{what}: {exc.reason}; retrying in {delay:.1f} s"))
                self._sleep(delay)

    def _get(self, url: str, **kwargs: Any) -> requests.Response:
        """One GET; a transport failure or a 429/5xx answer becomes a :class:`_RetryableError`."""
        try:
            response = self._session().get(
                url, timeout=(self.retry.connect_timeout, self.retry.read_timeout), **kwargs
            )
        except requests.RequestException as exc:
            failure = _transport_failure(exc, url)
            if isinstance(failure, FetchError):
                raise FetchError(self.scrub(str(failure))) from None
            raise _RetryableError(self.scrub(failure.reason), attempts=failure.attempts) from None
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            raise _RetryableError(
                f"HTTP {response.status_code} {response.reason}",
                _retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _http_error(self, response: requests.Response, what: str) -> str:
        detail = ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and body.get("message"):
            detail = f": {body['message']}"
        hint = _HTTP_HINTS.get(response.status_code)
        return self.scrub(
            f"{what} answered HTTP {response.status_code} {response.reason}{detail}"
            + (f" ({hint})" if hint else "")
        )

    # -- the API ---------------------------------------------------------------------------------

    def get_json(self, path: str, params: Mapping[str, str]) -> Any:
        """GET an API endpoint (``/posts.json``) and return its decoded JSON."""
        url = self.api_url + path
        what = f"GET {path}"

        def attempt() -> Any:
            with self._get(url, params=params, auth=self._auth) as response:
                if response.status_code != 200:
                    raise FetchError(self._http_error(response, what))
                try:
                    return response.json()
                except ValueError:
                    kind = response.headers.get("Content-Type", "no content type")
                    raise FetchError(
                        self.scrub(f"{what} answered something that is not JSON ({kind})")
                    ) from None

        return self._retrying(what, attempt)

    def posts(
        self, tags: str, *, limit: int, page: str | None = None, only: str | None = None
    ) -> list[dict[str, Any]]:
        """One page of ``/posts.json``, newest first; ``page`` is ``b<id>``, ``a<id>`` or a number."""
        params = {"tags": tags, "limit": str(limit)}
        if page is not None:
            params["page"] = page
        if only is not None:
            params["only"] = only
        data = self.get_json("/posts.json", params)
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise FetchError("GET /posts.json answered something that is not a list of posts")
        return data

    def newest_cursor(self, tags: str, skip: int) -> int:
        """The ``b<id>`` cursor below the newest ``skip`` posts of a search (0 when none are left).

        Walks ids only, 200 a page with ``page=b<id>``, so a deep skip never meets the page cap.
        """
        rows = self.posts(tags, limit=1, only="id")
        if not rows:
            return 0
        cursor = int(rows[0]["id"]) + 1
        remaining = skip
        while remaining > 0:
            limit = min(MAX_PAGE_SIZE, remaining)
            ids = [int(row["id"]) for row in self.posts(tags, limit=limit, page=f"b{cursor}", only="id")]
            below = [i for i in ids if i < cursor]
            if not below:
                return 0
            cursor = min(below)
            remaining -= len(below)
            if len(ids) < limit:
                return 0
        return cursor

    def iter_posts(self, tags: str, *, page_size: int, before: int) -> Iterator[dict[str, Any]]:
        """Every post of a search with an id below ``before``, newest first, each id once.

        Follows ``page=b<id>`` cursors (no page cap); a page that repeats posts already seen, as
        numbered pages do when uploads arrive, yields each post only once.
        """
        cursor = before
        seen: set[int] = set()
        while cursor > 0:
            page = self.posts(tags, limit=page_size, page=f"b{cursor}")
            fresh = [raw for raw in page if int(raw["id"]) < cursor and int(raw["id"]) not in seen]
            if not fresh:
                return
            for raw in fresh:
                seen.add(int(raw["id"]))
                yield raw
            cursor = min(int(raw["id"]) for raw in fresh)
            if len(page) < page_size:
                return

    def tag_relations(
        self,
        kind: Literal["alias", "implication"],
        side: Literal["antecedent", "consequent"],
        names: Sequence[str],
        *,
        page_size: int = MAX_RELATION_PAGE_SIZE,
    ) -> list[tuple[str, str]]:
        """Active ``(antecedent, consequent)`` pairs whose ``side`` is one of ``names``."""
        path = "/tag_aliases.json" if kind == "alias" else "/tag_implications.json"
        pairs: set[tuple[str, str]] = set()
        ordered = sorted(set(names))
        for start in range(0, len(ordered), RELATION_BATCH):
            batch = ordered[start : start + RELATION_BATCH]
            cursor: int | None = None
            while True:
                params = {
                    # Tag names never contain spaces; some contain commas.
                    f"search[{side}_name_space]": " ".join(batch),
                    "search[status]": "active",
                    "limit": str(page_size),
                }
                if cursor is not None:
                    params["page"] = f"b{cursor}"
                rows = self.get_json(path, params)
                if not isinstance(rows, list):
                    raise FetchError(f"GET {path} answered something that is not a list")
                for row in rows:
                    if row.get("status", "active") == "active":
                        pairs.add((str(row["antecedent_name"]), str(row["consequent_name"])))
                if len(rows) < page_size:
                    break
                cursor = min(int(row["id"]) for row in rows)
        return sorted(pairs)

    def related_tags(self, query: str, *, limit: int = RELATED_TAG_LIMIT) -> RelatedTagAnswer:
        """Danbooru's related tags of one tag (``/related_tag.json``), most similar first."""
        data = self.get_json("/related_tag.json", {"query": query, "limit": str(limit)})
        return related_tag_answer(query, data)

    # -- downloads -------------------------------------------------------------------------------

    def download(
        self,
        url: str,
        *,
        md5: str | None = None,
        size: int | None = None,
        check: Callable[[bytes], str | None] | None = None,
    ) -> bytes:
        """Stream a file and verify it, retrying a corrupt or truncated copy a few times.

        ``md5`` and ``size`` are checked when given; ``check`` may name any other problem. A corrupt
        copy is fetched again at once, up to ``download_attempts`` times, then raises
        :class:`DownloadError`; a server that stays down raises :class:`FetchError` as any call does.
        """
        what = f"download {urlsplit(url).path}"
        limit = size if size is not None else MAX_DOWNLOAD_BYTES
        corrupt = 0

        def attempt() -> bytes:
            nonlocal corrupt
            with self._get(url, stream=True, headers={"Accept-Encoding": "identity"}) as response:
                if response.status_code != 200:
                    message = self._http_error(response, what)
                    raise DownloadError(message, f"HTTP {response.status_code}")
                problem, data = self._read_body(response, limit)
            if problem is None and md5 is not None and hashlib.md5(data).hexdigest() != md5:
                problem = "md5 mismatch"
            if problem is None and size is not None and len(data) != size:
                problem = f"size mismatch ({len(data)} bytes, file_size {size})"
            if problem is None and check is not None:
                problem = check(data)
            if problem is None:
                return data
            corrupt += 1
            if corrupt >= self.retry.download_attempts:
                raise DownloadError(
                    self.scrub(f"{what}: {problem} ({corrupt} attempts)"), problem.split(" (")[0]
                )
            # The server answered; the bytes were damaged on the way. Try again straight away.
            raise _RetryableError(problem, retry_after=0.0)

        return self._retrying(what, attempt)

    @staticmethod
    def _read_body(response: requests.Response, limit: int) -> tuple[str | None, bytes]:
        """The body, or what is wrong with it: cut short, or longer than it may be."""
        header = response.headers.get("Content-Length", "")
        expected = int(header) if header.isdigit() else None
        chunks: list[bytes] = []
        received = 0
        try:
            for chunk in response.iter_content(chunk_size=1 << 16):
                received += len(chunk)
                if received > limit:
                    return f"larger than expected (over {limit} bytes)", b""
                chunks.append(chunk)
        except requests.RequestException:
            return f"truncated ({received} of {expected or '?'} bytes)", b""
        if expected is not None and received != expected:
            return f"truncated ({received} of {expected} bytes)", b""
        return None, b"".join(chunks)
