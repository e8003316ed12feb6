"""The Danbooru client against a fake Danbooru over loopback: paging, retries, verified downloads, secrecy."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_tagger_showdown.dataset.danbooru import (
    USER_AGENT,
    Credentials,
    DanbooruClient,
    DownloadError,
    FetchError,
    RetryPolicy,
    image_source,
    post_from_json,
    unusable_reason,
)
from pytest_tagger_showdown.tags import TagCategory
from tests.fakes.danbooru import FakeDanbooru
from tests.fakes.loopback import closed_port_url

KEY = "s3cr3t+key/with=odd&chars"
FAST = RetryPolicy(max_time=5.0, base_delay=0.01, max_delay=0.05, read_timeout=2.0)


class Sleeps(list[float]):
    """Records the waits a client asks for instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(danbooru: FakeDanbooru, sleeps: Sleeps) -> Iterator[DanbooruClient]:
    with DanbooruClient(danbooru.url, Credentials("alice", KEY), retry=FAST, sleep=sleeps) as api:
        yield api


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [int(row["id"]) for row in rows]


# -- posts and paging ------------------------------------------------------------------------------


def test_posts_page_sends_basic_auth_and_a_user_agent_never_the_key_in_the_url(
    danbooru: FakeDanbooru, client: DanbooruClient
) -> None:
    danbooru.require_auth("alice", KEY)
    posted = [danbooru.add_post("g") for _ in range(3)]
    rows = client.posts("rating:g", limit=2)
    assert ids(rows) == [posted[2]["id"], posted[1]["id"]]
    assert rows[0] == posted[2]
    (seen,) = danbooru.api_requests("/posts.json")
    assert seen.authorization is not None
    assert seen.authorization.startswith("Basic ")
    assert "api_key" not in seen.query
    assert "s3cr3t" not in seen.query
    assert USER_AGENT.startswith("pytest-tagger-showdown/")


def test_downloads_do_not_carry_credentials(danbooru: FakeDanbooru, client: DanbooruClient) -> None:
    raw = danbooru.add_post("g")
    client.download(raw["file_url"], md5=raw["md5"])
    (seen,) = [s for s in danbooru.requests if s.path.startswith("/data/")]
    assert seen.authorization is None


def test_iter_posts_follows_b_cursors_past_the_page_cap(
    danbooru: FakeDanbooru, client: DanbooruClient
) -> None:
    danbooru.page_cap = 2
    posted = [danbooru.add_post("g") for _ in range(11)]
    danbooru.add_post("s")
    walked = ids(list(client.iter_posts("rating:g", page_size=2, before=posted[-1]["id"] + 1)))
    assert walked == [raw["id"] for raw in reversed(posted)]
    pages = [seen.query for seen in danbooru.api_requests("/posts.json")]
    assert all("page=b" in query for query in pages)
    assert len(pages) == 6


def test_numbered_page_beyond_the_cap_is_a_clear_error(
    danbooru: FakeDanbooru, client: DanbooruClient
) -> None:
    danbooru.page_cap = 3
    danbooru.add_post("g")
    with pytest.raises(FetchError, match=r"HTTP 410 .*You cannot go beyond page 3.*page cap"):
        client.posts("rating:g", limit=20, page="4")


def test_a_post_repeated_across_pages_is_yielded_once(danbooru: FakeDanbooru, client: DanbooruClient) -> None:
    danbooru.repeat_across_pages = True
    posted = [danbooru.add_post("g") for _ in range(7)]
    walked = ids(list(client.iter_posts("rating:g", page_size=3, before=posted[-1]["id"] + 1)))
    assert walked == [raw["id"] for raw in reversed(posted)]
    pages = [client.posts("rating:g", limit=3, page=f"b{posted[4]['id']}")]
    assert ids(pages[0])[0] == posted[4]["id"]


def test_a_after_cursor_pages_come_newest_first(danbooru: FakeDanbooru, client: DanbooruClient) -> None:
    posted = [danbooru.add_post("g") for _ in range(5)]
    rows = client.posts("rating:g", limit=2, page=f"a{posted[1]['id']}")
    assert ids(rows) == [posted[3]["id"], posted[2]["id"]]


@pytest.mark.parametrize("repeat", [False, True], ids=["plain", "repeating-pages"])
@pytest.mark.parametrize("skip", [0, 1, 4, 10, 11, 50])
def test_newest_cursor_skips_exactly_that_many_posts(
    danbooru: FakeDanbooru, client: DanbooruClient, skip: int, repeat: bool
) -> None:
    danbooru.repeat_across_pages = repeat
    posted = [danbooru.add_post("g") for _ in range(11)]
    danbooru.add_post("s")
    cursor = client.newest_cursor("rating:g", skip)
    walked = ids(list(client.iter_posts("rating:g", page_size=3, before=cursor)))
    assert walked == [raw["id"] for raw in reversed(posted)][skip:]


def test_newest_cursor_walks_ids_only_in_pages_of_up_to_200(
    danbooru: FakeDanbooru, client: DanbooruClient
) -> None:
    danbooru.page_cap = 1
    posted = [danbooru.add_post("q") for _ in range(450)]
    cursor = client.newest_cursor("rating:q", 420)
    assert cursor == posted[-420]["id"]
    walked = ids(list(client.iter_posts("rating:q", page_size=20, before=cursor)))
    assert walked == [raw["id"] for raw in reversed(posted[:-420])]
    skip_pages = [s.query for s in danbooru.api_requests("/posts.json") if "only=id" in s.query]
    assert len(skip_pages) == 4  # the newest id, then 200 + 200 + 20


def test_newest_cursor_of_an_empty_search_is_zero(danbooru: FakeDanbooru, client: DanbooruClient) -> None:
    assert client.newest_cursor("rating:e", 3) == 0
    assert list(client.iter_posts("rating:e", page_size=5, before=0)) == []


# -- retries ---------------------------------------------------------------------------------------


def test_429_waits_exactly_the_retry_after_seconds(
    danbooru: FakeDanbooru, client: DanbooruClient, sleeps: Sleeps
) -> None:
    danbooru.add_post("g")
    danbooru.fail("/posts.json", 429, retry_after="3")
    danbooru.fail("/posts.json", 429, retry_after="1")
    assert len(client.posts("rating:g", limit=5)) == 1
    assert sleeps == [3.0, 1.0]


def test_5xx_is_retried_with_growing_backoff(
    danbooru: FakeDanbooru, client: DanbooruClient, sleeps: Sleeps
) -> None:
    danbooru.add_post("g")
    for status in (500, 502, 503):
        danbooru.fail("/posts.json", status)
    assert len(client.posts("rating:g", limit=5)) == 1
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]


def test_a_server_that_stays_down_gives_up_within_the_time_bound(danbooru: FakeDanbooru) -> None:
    danbooru.fail("/posts.json", 503, times=1000)
    policy = RetryPolicy(max_time=0.5, base_delay=0.05, max_delay=0.1)
    started = time.monotonic()
    with (
        DanbooruClient(danbooru.url, Credentials("alice", KEY), retry=policy) as api,
        pytest.raises(FetchError, match=r"giving up on GET /posts.json after \d+ failed attempts.*HTTP 503"),
    ):
        api.posts("rating:g", limit=5)
    assert time.monotonic() - started < 2.0


def test_a_retry_after_longer_than_the_bound_gives_up_at_once(
    danbooru: FakeDanbooru, client: DanbooruClient, sleeps: Sleeps
) -> None:
    danbooru.fail("/posts.json", 429, retry_after="3600")
    with pytest.raises(FetchError, match="the next wait would be 3600 s"):
        client.posts("rating:g", limit=5)
    assert sleeps == []


def test_retry_after_as_an_http_date_is_honoured(
    danbooru: FakeDanbooru, client: DanbooruClient, sleeps: Sleeps
) -> None:
    danbooru.add_post("g")
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3))
    danbooru.fail("/posts.json", 429, retry_after=when)
    client.posts("rating:g", limit=5)
    assert len(sleeps) == 1
    assert 1.0 <= sleeps[0] <= 3.5


def test_a_slow_response_times_out_and_is_retried(danbooru: FakeDanbooru, sleeps: Sleeps) -> None:
    danbooru.add_post("g")
    danbooru.delay("/posts.json", 0.6)
    policy = RetryPolicy(max_time=5.0, base_delay=0.01, read_timeout=0.2)
    with DanbooruClient(danbooru.url, retry=policy, sleep=sleeps) as api:
        assert len(api.posts("rating:g", limit=5)) == 1
    assert len(sleeps) == 1


def test_connection_refused_is_retried_then_a_clear_error_without_the_key() -> None:
    policy = RetryPolicy(max_time=0.3, base_delay=0.05, max_delay=0.1)
    with (
        DanbooruClient(closed_port_url(), Credentials("alice", KEY), retry=policy) as api,
        pytest.raises(FetchError, match="refused the connection") as raised,
    ):
        api.posts(f"rating:g {KEY}", limit=5)
    assert "s3cr3t" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_401_names_the_environment_variables_not_the_key(
    danbooru: FakeDanbooru, client: DanbooruClient
) -> None:
    danbooru.require_auth("alice", "another key")
    with pytest.raises(
        FetchError, match=r"HTTP 401.*Invalid API key.*DANBOORU_LOGIN and DANBOORU_API_KEY"
    ) as raised:
        client.posts("rating:g", limit=5)
    assert "s3cr3t" not in str(raised.value)


def test_retry_warnings_are_logged_without_the_key(
    danbooru: FakeDanbooru, client: DanbooruClient, caplog: pytest.LogCaptureFixture
) -> None:
    danbooru.fail("/posts.json", 500)
    with caplog.at_level(logging.WARNING):
        client.posts(f"rating:g {KEY}", limit=5)
    assert "GET /posts.json: HTTP 500" in caplog.text
    assert "s3cr3t" not in caplog.text


# -- downloads -------------------------------------------------------------------------------------


def test_download_verifies_the_md5(danbooru: FakeDanbooru, client: DanbooruClient) -> None:
    raw = danbooru.add_post("g", ext="jpg")
    data = client.download(raw["file_url"], md5=raw["md5"], size=raw["file_size"])
    assert hashlib.md5(data).hexdigest() == raw["md5"]


def test_a_truncated_download_is_retried(
    danbooru: FakeDanbooru, client: DanbooruClient, sleeps: Sleeps
) -> None:
    raw = danbooru.add_post("g")
    danbooru.truncate(raw["id"])
    data = client.download(raw["file_url"], md5=raw["md5"], size=raw["file_size"])
    assert hashlib.md5(data).hexdigest() == raw["md5"]
    assert danbooru.downloads[raw["id"]] == 2
    assert sleeps == [0.0]


def test_a_download_that_stays_truncated_fails_as_truncated(
    danbooru: FakeDanbooru, client: DanbooruClient
) -> None:
    raw = danbooru.add_post("g")
    danbooru.truncate(raw["id"], times=10)
    with pytest.raises(DownloadError, match=r"truncated \(\d+ of \d+ bytes\) \(3 attempts\)") as raised:
        client.download(raw["file_url"], md5=raw["md5"])
    assert raised.value.reason == "truncated"
    assert danbooru.downloads[raw["id"]] == 3


def test_an_md5_mismatch_is_retried_then_fails(danbooru: FakeDanbooru, client: DanbooruClient) -> None:
    raw = danbooru.add_post("g")
    danbooru.corrupt(raw["id"], times=1)
    assert hashlib.md5(client.download(raw["file_url"], md5=raw["md5"])).hexdigest() == raw["md5"]
    danbooru.corrupt(raw["id"], times=10)
    with pytest.raises(DownloadError, match="md5 mismatch") as raised:
        client.download(raw["file_url"], md5=raw["md5"])
    assert raised.value.reason == "md5 mismatch"


def test_a_download_larger_than_its_file_size_is_refused(
    danbooru: FakeDanbooru, client: DanbooruClient
) -> None:
    raw = danbooru.add_post("g")
    with pytest.raises(DownloadError, match="larger than expected"):
        client.download(raw["file_url"], size=raw["file_size"] - 10)


def test_a_missing_file_fails_that_post_only(danbooru: FakeDanbooru, client: DanbooruClient) -> None:
    with pytest.raises(DownloadError, match="HTTP 404") as raised:
        client.download(danbooru.url + "/data/original/00/00/nothing.png")
    assert raised.value.reason == "HTTP 404"


def test_a_download_429_is_backed_off_not_counted_as_corrupt(
    danbooru: FakeDanbooru, client: DanbooruClient, sleeps: Sleeps
) -> None:
    raw = danbooru.add_post("g")
    danbooru.fail("/data/", 429, times=4, retry_after="1")
    assert client.download(raw["file_url"], md5=raw["md5"])
    assert sleeps == [1.0] * 4


def test_a_check_failure_is_retried_like_corruption(danbooru: FakeDanbooru, client: DanbooruClient) -> None:
    raw = danbooru.add_post("g")
    answers = iter(["bad sample", None])
    assert client.download(raw["file_url"], check=lambda data: next(answers))
    assert danbooru.downloads[raw["id"]] == 2


# -- tag relations ---------------------------------------------------------------------------------


def test_tag_relations_are_filtered_by_side_and_status_and_paged(
    danbooru: FakeDanbooru, client: DanbooruClient
) -> None:
    for n in range(5):
        danbooru.add_relation("alias", f"old_{n}", "long_hair")
    danbooru.add_relation("alias", "gone", "long_hair", status="deleted")
    danbooru.add_relation("alias", "other_old", "other")
    danbooru.add_relation("implication", "ponytail", "long_hair")
    pairs = client.tag_relations("alias", "consequent", ["long_hair", "solo"], page_size=2)
    assert pairs == [(f"old_{n}", "long_hair") for n in range(5)]
    assert len(danbooru.api_requests("/tag_aliases.json")) == 3
    assert client.tag_relations("implication", "antecedent", ["ponytail"]) == [("ponytail", "long_hair")]
    assert client.tag_relations("implication", "antecedent", ["long_hair"]) == []


# -- post JSON -------------------------------------------------------------------------------------


def test_post_from_json_maps_tags_to_categories(danbooru: FakeDanbooru) -> None:
    raw = danbooru.add_post(
        "q",
        general=("1girl", "long_hair", ":d"),
        character=("hatsune_miku",),
        copyright=("vocaloid",),
        artist=("someone",),
        meta=("highres", "absurdres"),
        ext="jpg",
    )
    post = post_from_json(raw)
    assert (post.id, post.md5, post.rating, post.file_ext) == (raw["id"], raw["md5"], "q", "jpg")
    assert (post.file_size, post.width, post.height) == (raw["file_size"], 40, 30)
    assert post.tags == {
        "1girl": TagCategory.GENERAL,
        "long_hair": TagCategory.GENERAL,
        ":d": TagCategory.GENERAL,
        "hatsune_miku": TagCategory.CHARACTER,
        "vocaloid": TagCategory.COPYRIGHT,
        "someone": TagCategory.ARTIST,
        "highres": TagCategory.META,
        "absurdres": TagCategory.META,
    }


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({}, None),
        ({"ext": "gif", "animated": True}, None),
        ({"ext": "webp"}, None),
        ({"hidden": True}, "hidden (no file_url or md5)"),
        ({"deleted": True}, "deleted"),
        ({"banned": True}, "banned"),
        ({"ext": "mp4"}, "not an image: mp4"),
        ({"ext": "webm"}, "not an image: webm"),
        ({"ext": "zip"}, "not an image: zip"),
        ({"ext": "swf"}, "not an image: swf"),
    ],
)
def test_unusable_reason(danbooru: FakeDanbooru, options: dict[str, Any], reason: str | None) -> None:
    assert unusable_reason(danbooru.add_post("e", **options)) == reason


def test_image_source_picks_the_sample_only_when_there_is_one(danbooru: FakeDanbooru) -> None:
    small = danbooru.add_post("g")
    large = danbooru.add_post("g", sample=True)
    assert image_source(small, "sample").original
    assert image_source(large, "original").url == large["file_url"]
    sample = image_source(large, "sample")
    assert (sample.url, sample.original, sample.size) == (large["large_file_url"], False, (20, 15))


# -- credentials -----------------------------------------------------------------------------------


def test_credentials_come_from_the_environment_in_pairs() -> None:
    assert Credentials.from_env({}) is None
    creds = Credentials.from_env({"DANBOORU_LOGIN": "alice", "DANBOORU_API_KEY": KEY})
    assert creds == Credentials("alice", KEY)
    assert KEY not in repr(creds)
    with pytest.raises(FetchError, match="DANBOORU_API_KEY is not set"):
        Credentials.from_env({"DANBOORU_LOGIN": "alice"})
    with pytest.raises(FetchError, match="DANBOORU_LOGIN is not set"):
        Credentials.from_env({"DANBOORU_API_KEY": KEY})


@pytest.mark.parametrize(
    "url", ["ftp://danbooru.donmai.us", "danbooru.donmai.us", "https://alice:key@danbooru.donmai.us"]
)
def test_bad_api_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="--api-url"):
        DanbooruClient(url)


def test_scrub_removes_every_spelling_of_the_key() -> None:
    api = DanbooruClient(credentials=Credentials("alice", KEY))
    text = f"{KEY} s3cr3t%2Bkey%2Fwith%3Dodd%26chars s3cr3t%2Bkey%2Fwith%3Dodd%26chars"
    assert "s3cr3t" not in api.scrub(text)


def test_a_host_name_that_does_not_resolve_gives_up_after_four_attempts(sleeps: Sleeps) -> None:
    """A typo in --api-url (or no network) is not cured by retrying for the whole time limit (it took
    5 minutes): four attempts, then an error naming the host. ``.invalid`` never resolves (RFC 2606)."""
    client = DanbooruClient("http://showdown-test.invalid", retry=RetryPolicy(max_time=60.0), sleep=sleeps)
    with pytest.raises(
        FetchError, match=r"after 4 failed attempts: cannot resolve the host name 'showdown-test\.invalid'"
    ):
        client.get_json("/posts.json", {})
    assert len(sleeps) == 3


def test_a_refused_connection_gives_up_after_four_attempts_in_one_line(sleeps: Sleeps) -> None:
    """Before: retried for 5 minutes, each line 330 characters of urllib3's repr."""
    url = closed_port_url()
    client = DanbooruClient(url, retry=RetryPolicy(max_time=600.0), sleep=sleeps)
    with pytest.raises(FetchError) as raised:
        client.get_json("/posts.json", {})
    where = url.removeprefix("http://").rstrip("/")
    assert str(raised.value) == (
        f"giving up on GET /posts.json after 4 failed attempts: {where} refused the connection "
        "(check --api-url: is a server listening there?)"
    )
    assert len(sleeps) == 3


def test_a_url_that_cannot_work_fails_at_once() -> None:
    with pytest.raises(FetchError, match=r"--api-url has no valid port: 'http://127\.0\.0\.1:99999'"):
        DanbooruClient("http://127.0.0.1:99999")
