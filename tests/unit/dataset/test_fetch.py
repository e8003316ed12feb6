"""``tagger-showdown fetch`` run for real against a misbehaving fake Danbooru on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from pytest_tagger_showdown import cli
from pytest_tagger_showdown.cli import build_parser
from pytest_tagger_showdown.dataset import Dataset
from pytest_tagger_showdown.dataset.danbooru import post_from_json, unusable_reason
from pytest_tagger_showdown.dataset.fetch import BarProgress, LineProgress, make_progress
from pytest_tagger_showdown.settings import parse_ratings
from pytest_tagger_showdown.taggers.preprocess import decode_image
from pytest_tagger_showdown.tags import TagCategory
from tests.fakes.danbooru import FakeDanbooru, first_frame_colour
from tests.helpers.datasets import bilevel_png

LOGIN = "alice"
KEY = "k3y-that-must-never-leak-7f3a9"


@pytest.fixture
def danbooru(server: FakeDanbooru, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDanbooru]:
    server.reset()
    server.require_auth(LOGIN, KEY)
    monkeypatch.setenv("DANBOORU_LOGIN", LOGIN)
    monkeypatch.setenv("DANBOORU_API_KEY", KEY)
    yield server
    server.release_all()


@dataclass
class Run:
    code: int
    out: str
    err: str


def fetch(capsys: pytest.CaptureFixture[str], danbooru: FakeDanbooru, db: Path, *args: str) -> Run:
    """Run ``tagger-showdown fetch`` in this process, as a user would type it."""
    code = cli.main(["fetch", "--db", str(db), "--api-url", danbooru.url, *args])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def plan(
    danbooru: FakeDanbooru, rating: str, skip: int, wanted: int, failing: frozenset[int] = frozenset()
) -> tuple[list[int], dict[int, str]]:
    """The posts a fetch must end with for one rating, and the ones it must record as skipped."""
    newest_first = [raw for _, raw in sorted(danbooru.posts.items(), reverse=True) if raw["rating"] == rating]
    chosen: list[int] = []
    skipped: dict[int, str] = {}
    for raw in newest_first[skip:]:
        if len(chosen) == wanted:
            break
        reason = unusable_reason(raw)
        if reason is not None:
            skipped[raw["id"]] = reason
        elif raw["id"] in failing:
            skipped[raw["id"]] = "download failed: md5 mismatch"
        else:
            chosen.append(raw["id"])
    return chosen, skipped


def assert_consistent(db: Path, danbooru: FakeDanbooru) -> list[int]:
    """Every stored post is whole: its raw JSON, its tags and an image matching its md5."""
    conn = sqlite3.connect(db)  # read-write: a kill may leave a hot journal for the next open to roll back
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT p.id, p.md5, i.md5, i.variant, i.data, "
            "(SELECT count(*) FROM post_tags t WHERE t.post_id = p.id) "
            "FROM posts p LEFT JOIN images i ON i.post_id = p.id ORDER BY p.id"
        ).fetchall()
    finally:
        conn.close()
    for post_id, md5, image_md5, variant, data, tag_count in rows:
        assert data is not None, f"post {post_id} has no image"
        assert hashlib.md5(data).hexdigest() == md5 == image_md5 == danbooru.posts[post_id]["md5"]
        assert variant == "original"
        assert tag_count == danbooru.posts[post_id]["tag_count"]
    return [row[0] for row in rows]


def populate(danbooru: FakeDanbooru, per_rating: int, ratings: str = "gsqe") -> None:
    """Interleaved uploads of every rating: mostly images, with the unusable kinds mixed in."""
    kinds: list[dict[str, Any]] = [
        {},
        {"ext": "jpg"},
        {"hidden": True},
        {"ext": "gif", "animated": True},
        {"ext": "mp4"},
        {"ext": "webp"},
        {"deleted": True},
        {"ext": "webm"},
        {},
        {"banned": True},
        {"ext": "zip"},
        {"ext": "swf"},
    ]
    for n in range(per_rating):
        for index, rating in enumerate(ratings):
            danbooru.add_post(rating, **kinds[(n + 3 * index) % len(kinds)], character=(f"char_{n % 3}",))


def test_fetch_builds_exactly_the_requested_posts_despite_a_misbehaving_danbooru(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(danbooru, per_rating=14)
    danbooru.repeat_across_pages = True
    plans = {rating: plan(danbooru, rating, skip=4, wanted=3) for rating in "gsqe"}
    g_chosen = plans["g"][0]
    s_chosen = plans["s"][0]
    q_chosen = plans["q"][0]
    danbooru.truncate(g_chosen[0])
    danbooru.corrupt(g_chosen[1])
    failing = s_chosen[1]
    danbooru.corrupt(failing, times=3)
    plans["s"] = plan(danbooru, "s", skip=4, wanted=3, failing=frozenset({failing}))
    danbooru.fail("/posts.json", 429, retry_after="1")
    danbooru.fail("/posts.json", 500)
    slow = danbooru.posts[q_chosen[1]]["file_url"].removeprefix(danbooru.url)
    danbooru.delay(slow, 0.5)
    db = tmp_path / "data.db"

    run = fetch(
        capsys, danbooru, db, "--per-rating", "3", "--page-skip", "2", "--page-size", "2",
        "--concurrency", "4", "--timeout", "0.3", "--max-retry-time", "30",
    )  # fmt: skip

    assert run.code == 0, run.err
    stored = assert_consistent(db, danbooru)
    assert sorted(stored) == sorted(i for chosen, _ in plans.values() for i in chosen)
    with Dataset(db) as dataset:
        for rating, (chosen, _) in plans.items():
            assert sorted(p.id for p in dataset.posts([rating])) == sorted(chosen)
        assert dataset.skipped() == {i: r for _, skipped in plans.values() for i, r in skipped.items()}
        post = next(p for p in dataset.posts() if p.id == q_chosen[0])
        raw = danbooru.posts[post.id]
        assert dataset.raw_post(post.id) == raw
        assert post.tags[raw["tag_string_character"]] is TagCategory.CHARACTER
        assert post.tags["some_artist"] is TagCategory.ARTIST
        assert post.tags["highres"] is TagCategory.META
        assert (post.file_size, post.width, post.height) == (raw["file_size"], 40, 30)
        gifs = [p for p in dataset.posts() if p.file_ext == "gif"]
        assert gifs, "the sample should include an animated GIF"
        for gif in gifs:
            assert decode_image(dataset.image(gif.id)).convert("RGB").getpixel((5, 5)) == first_frame_colour(
                gif.id
            )
    assert danbooru.downloads[g_chosen[0]] == 2  # truncated once
    assert danbooru.downloads[g_chosen[1]] == 2  # md5 mismatch once
    assert danbooru.downloads[failing] == 3  # md5 mismatch every time: recorded as failed
    assert danbooru.downloads[q_chosen[1]] == 2  # too slow once: timed out
    assert [seen.status for seen in danbooru.api_requests("/posts.json")][:3] == [429, 500, 200]
    assert "rating s: skipped post" in run.err
    assert "download failed: md5 mismatch 1" in run.out
    assert [line.split(": ")[1] for line in run.out.splitlines()] == [f"rating {r}" for r in "gsqe"]


def test_a_rerun_of_a_complete_fetch_asks_danbooru_nothing(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(danbooru, per_rating=8, ratings="gs")
    db = tmp_path / "data.db"
    args = ("--per-rating", "2", "--ratings", "g,s", "--page-skip", "1", "--page-size", "3")
    assert fetch(capsys, danbooru, db, *args).code == 0
    before = db.read_bytes()
    danbooru.requests.clear()
    run = fetch(capsys, danbooru, db, *args)
    assert run.code == 0
    assert danbooru.requests == []
    assert db.read_bytes() == before
    assert "g: 2/2 posts (0 downloaded now)" in run.out


def test_raising_per_rating_extends_below_the_same_cursor_and_retries_failures(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(danbooru, per_rating=12, ratings="q")
    db = tmp_path / "data.db"
    args = ("--ratings", "q", "--page-skip", "1", "--page-size", "2")
    chosen, _ = plan(danbooru, "q", skip=2, wanted=3)
    danbooru.corrupt(chosen[1], times=3)
    assert fetch(capsys, danbooru, db, "--per-rating", "2", *args).code == 0
    with Dataset(db) as dataset:
        assert dataset.skipped()[chosen[1]] == "download failed: md5 mismatch"
    for _ in range(3):  # uploads after the first run must not shift the sample
        danbooru.add_post("q")
    run = fetch(capsys, danbooru, db, "--per-rating", "3", *args)
    assert run.code == 0
    assert sorted(assert_consistent(db, danbooru)) == sorted(chosen)
    with Dataset(db) as dataset:
        assert chosen[1] not in dataset.skipped()
    assert "q: 3/3 posts (1 downloaded now)" in run.out


def test_sample_variant_stores_the_sample_jpeg_where_there_is_one(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = danbooru.add_post("g")
    large = danbooru.add_post("g", sample=True)
    danbooru.truncate(large["id"])
    db = tmp_path / "data.db"
    run = fetch(capsys, danbooru, db, "--per-rating", "2", "--ratings", "g", "--variant", "sample")
    assert run.code == 0, run.err
    with Dataset(db) as dataset:
        assert dataset.image_variants() == {small["id"]: "original", large["id"]: "sample"}
        assert dataset.image(large["id"]) == danbooru.image(large["id"], sample=True)
        assert dataset.image(small["id"]) == danbooru.image(small["id"])
        assert decode_image(dataset.image(large["id"])).size == (20, 15)
        assert next(p for p in dataset.posts() if p.id == large["id"]).md5 == large["md5"]
    assert danbooru.downloads[large["id"]] == 2


def test_originals_up_to_pillows_hard_limit_are_kept_and_larger_ones_skipped_naming_the_size(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """8420x12092 (101.8 MP, a real Danbooru size) is above Pillow's warning only: it is kept."""
    large = danbooru.add_post("g", image=bilevel_png(8420, 12092))
    too_large = danbooru.add_post("g", image=bilevel_png(13400, 13400))
    db = tmp_path / "data.db"
    run = fetch(capsys, danbooru, db, "--per-rating", "1", "--ratings", "g")
    assert run.code == 0, run.err
    with Dataset(db) as dataset:
        assert [post.id for post in dataset.posts()] == [large["id"]]
        assert dataset.image(large["id"]) == danbooru.image(large["id"])
        reason = dataset.skipped()[too_large["id"]]
    assert "179560000 pixels" in reason
    assert "178,956,970 pixels" in reason


def test_changed_query_options_are_refused_with_one_line(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(danbooru, per_rating=4, ratings="g")
    db = tmp_path / "data.db"
    args = ("--ratings", "g", "--page-size", "2")
    assert fetch(capsys, danbooru, db, "--per-rating", "1", "--page-skip", "1", *args).code == 0
    run = fetch(capsys, danbooru, db, "--per-rating", "2", "--page-skip", "2", *args)
    assert run.code == 2
    assert run.err.strip().splitlines() == [
        f"tagger-showdown: error: {db} was fetched with --page-skip 1 (now 2); use the same options to "
        "resume or extend it, or fetch into a new --db"
    ]


def test_a_fetch_that_stored_nothing_pins_nothing_so_the_retry_works(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(danbooru, per_rating=2, ratings="g")
    db = tmp_path / "data.db"
    wrong = cli.main(["fetch", "--db", str(db), "--api-url", f"{danbooru.url}/typo", "--ratings", "g"])
    err = capsys.readouterr().err
    assert wrong == 2
    assert "tagger-showdown: error: GET /posts.json answered HTTP 404" in err
    with Dataset(db) as dataset:
        assert dataset.count() == 0
        assert dataset.meta("fetch.query") is None
        assert dataset.meta("fetch.cursor.g") is None
    run = fetch(capsys, danbooru, db, "--ratings", "g", "--per-rating", "2")
    assert (run.code, run.err.count("error")) == (0, 0)
    with Dataset(db) as dataset:
        assert dataset.count() == 2
        assert json.loads(dataset.meta("fetch.query") or "{}")["api_url"] == danbooru.url


def test_a_dataset_not_made_by_fetch_is_refused(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hand.db"
    populate(danbooru, per_rating=2, ratings="g")
    with Dataset(db, writable=True) as dataset:
        raw = danbooru.posts[min(danbooru.posts)]
        dataset.add_post(post_from_json(raw), raw, b"x")
    run = fetch(capsys, danbooru, db, "--per-rating", "1")
    assert run.code == 2
    assert "did not fetch" in run.err


def test_running_out_of_posts_is_exit_1_with_the_shortfall(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    danbooru.add_post("e")
    danbooru.add_post("e", ext="mp4")
    danbooru.add_post("e")
    danbooru.add_post("g")
    run = fetch(capsys, danbooru, tmp_path / "data.db", "--per-rating", "4", "--ratings", "e,g")
    assert run.code == 1
    assert "rating e: 2/4 posts (2 downloaded now); skipped 1: not an image: mp4 1; 2 short" in run.out
    assert "rating g: 1/4 posts" in run.out


def test_extra_tags_narrow_each_rating(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = [danbooru.add_post("g", general=("1girl", "cat_ears")) for _ in range(2)]
    danbooru.add_post("g", general=("1boy",))
    danbooru.add_post("g", general=("1girl", "cat_ears", "monochrome"))
    run = fetch(
        capsys,
        danbooru,
        tmp_path / "data.db",
        "--per-rating",
        "5",
        "--ratings",
        "g",
        "--tags",
        "cat_ears -monochrome",
    )
    assert run.code == 1
    with Dataset(tmp_path / "data.db") as dataset:
        assert [p.id for p in dataset.posts()] == [raw["id"] for raw in wanted]
    queries = [parse_qs(seen.query)["tags"] for seen in danbooru.api_requests("/posts.json")]
    assert queries
    assert all(tags == ["rating:g cat_ears -monochrome"] for tags in queries)


def test_with_tag_relations_stores_the_aliases_and_implications_of_the_dataset_tags(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    danbooru.add_post("g", general=("long_hair", "cat_ears"))
    danbooru.add_relation("alias", "longhair", "long_hair")
    danbooru.add_relation("alias", "kitty_ears", "cat_ears")
    danbooru.add_relation("alias", "unrelated_old", "unrelated")
    danbooru.add_relation("alias", "retired", "long_hair", status="deleted")
    danbooru.add_relation("implication", "cat_ears", "animal_ears")
    danbooru.add_relation("implication", "very_long_hair", "long_hair")
    danbooru.add_relation("implication", "x", "y")
    db = tmp_path / "data.db"
    run = fetch(capsys, danbooru, db, "--per-rating", "1", "--ratings", "g", "--with-tag-relations")
    assert run.code == 0
    with Dataset(db) as dataset:
        assert dataset.tag_relations("alias") == [("kitty_ears", "cat_ears"), ("longhair", "long_hair")]
        assert dataset.tag_relations("implication") == [
            ("cat_ears", "animal_ears"),
            ("very_long_hair", "long_hair"),
        ]
    assert "tag relations: 2 aliases, 2 implications" in run.out


def three_posts(danbooru: FakeDanbooru) -> None:
    """1girl on 3 posts, long_hair on 2, very_long_hair and cat on 1 (no other categories)."""
    for general in (("1girl", "long_hair", "very_long_hair"), ("1girl", "long_hair"), ("1girl", "cat")):
        danbooru.add_post("g", general=general, copyright=(), artist=(), meta=())


def related_queries(danbooru: FakeDanbooru) -> list[str]:
    return [parse_qs(seen.query)["query"][0] for seen in danbooru.api_requests("/related_tag.json")]


def test_with_tag_relations_stores_the_related_tags_of_the_most_frequent_tags(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_posts(danbooru)
    danbooru.fail("/related_tag.json", 429, retry_after="0")
    db = tmp_path / "data.db"
    args = ("--per-rating", "3", "--ratings", "g", "--with-tag-relations", "--related-tags", "3")
    run = fetch(capsys, danbooru, db, *args)
    assert run.code == 0, run.err
    # The 3 most frequent: 1girl (3 posts), long_hair (2), then cat before very_long_hair (1 each, by name).
    assert related_queries(danbooru) == ["1girl", "1girl", "long_hair", "cat"]
    assert [seen.status for seen in danbooru.api_requests("/related_tag.json")] == [429, 200, 200, 200]
    assert all(
        seen.authorization and KEY not in seen.query for seen in danbooru.api_requests("/related_tag.json")
    )
    with Dataset(db) as dataset:
        assert dataset.related_tag_queries() == {"1girl", "long_hair", "cat"}
        related = dataset.related_tags()
    # cosine = posts with both / sqrt(posts with each)
    assert related == {
        "1girl": {
            "1girl": 1.0,
            "long_hair": pytest.approx(2 / 6**0.5),
            "very_long_hair": pytest.approx(1 / 3**0.5),
            "cat": pytest.approx(1 / 3**0.5),
        },
        "long_hair": {
            "long_hair": 1.0,
            "1girl": pytest.approx(2 / 6**0.5),
            "very_long_hair": pytest.approx(1 / 2**0.5),
        },
        "cat": {"cat": 1.0, "1girl": pytest.approx(1 / 3**0.5)},
    }
    row = (
        sqlite3.connect(db)
        .execute(
            "SELECT jaccard_similarity, overlap_coefficient, frequency FROM related_tags "
            "WHERE query = '1girl' AND tag = 'long_hair'"
        )
        .fetchone()
    )
    assert row == pytest.approx((2 / 3, 1.0, 2 / 3))
    assert "related tags of the 3 most frequent tags (3 fetched now)" in run.out


def test_an_interrupted_related_tags_fetch_keeps_what_it_stored_and_resumes_with_the_rest(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_posts(danbooru)
    danbooru.fail("/related_tag.json?query=long_hair", 503)
    db = tmp_path / "data.db"
    args = ("--per-rating", "3", "--ratings", "g", "--with-tag-relations", "--related-tags", "3")
    failed = fetch(capsys, danbooru, db, *args, "--max-retry-time", "0.1")
    assert failed.code == 2
    assert "giving up on GET /related_tag.json" in failed.err
    with Dataset(db) as dataset:
        assert dataset.related_tag_queries() == {"1girl"}
        assert set(dataset.related_tags()) == {"1girl"}
    danbooru.requests.clear()
    resumed = fetch(capsys, danbooru, db, *args)
    assert resumed.code == 0, resumed.err
    assert related_queries(danbooru) == ["long_hair", "cat"]
    assert danbooru.api_requests("/posts.json") == []
    assert "related tags of the 3 most frequent tags (2 fetched now)" in resumed.out
    with Dataset(db) as dataset:
        assert dataset.related_tag_queries() == {"1girl", "long_hair", "cat"}
    danbooru.requests.clear()
    # A higher bound asks only for the tags it adds.
    wider = fetch(capsys, danbooru, db, *args[:-1], "4")
    assert wider.code == 0, wider.err
    assert related_queries(danbooru) == ["very_long_hair"]


def test_related_tags_needs_with_tag_relations(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = fetch(capsys, danbooru, tmp_path / "data.db", "--per-rating", "1", "--related-tags", "10")
    assert (run.code, run.err) == (2, "tagger-showdown: error: --related-tags needs --with-tag-relations\n")
    assert danbooru.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--page-size", "500"], "must be between 1 and 200"),
        (["--ratings", "g,x"], "argument --ratings: unknown rating(s) x: use g, s, q, e"),
        # The rule of pytest's --showdown-ratings: codes only, never a spelled-out name.
        (["--ratings", "general"], "argument --ratings: unknown rating(s) general: use g, s, q, e"),
        (["--tags", "rating:g"], "must not contain rating:"),
        (["--concurrency", "0"], "must be between 1 and 32"),
        (["--variant", "huge"], "invalid choice"),
        (["--related-tags", "-1"], "argument --related-tags: must be between 0 and 100000, not -1"),
        (["--related-tags", "many"], "argument --related-tags: not a whole number: 'many'"),
    ],
)
def test_bad_options_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["fetch", "--db", str(tmp_path / "data.db"), *args])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("text", ["general", "g,explicit", "x", ",", "G,s"])
def test_fetch_reads_ratings_by_the_rule_of_showdown_ratings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """Whatever ``--showdown-ratings`` accepts or refuses, ``fetch --ratings`` does the same."""
    try:
        expected: tuple[str, ...] | str = parse_ratings(text)
    except ValueError as exc:
        expected = str(exc)
    try:
        parsed = build_parser().parse_args(["fetch", "--db", str(tmp_path / "x.db"), "--ratings", text])
    except SystemExit:
        assert isinstance(expected, str)
        assert f"argument --ratings: {expected}" in capsys.readouterr().err
    else:
        assert parsed.ratings == expected


def test_half_the_credentials_is_an_error(
    danbooru: FakeDanbooru,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DANBOORU_LOGIN")
    run = fetch(capsys, danbooru, tmp_path / "data.db", "--per-rating", "1")
    assert run.code == 2
    assert run.err == (
        "tagger-showdown: error: DANBOORU_LOGIN is not set; set both DANBOORU_LOGIN and DANBOORU_API_KEY\n"
    )


def test_the_api_key_is_never_saved_printed_or_logged(
    danbooru: FakeDanbooru,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    populate(danbooru, per_rating=6, ratings="gs")
    danbooru.fail("/posts.json", 500)
    db = tmp_path / "data.db"
    ok = fetch(capsys, danbooru, db, "--per-rating", "2", "--with-tag-relations", "--ratings", "g,s")
    assert ok.code == 0
    danbooru.fail("/posts.json", 503)
    failed = fetch(capsys, danbooru, db, "--per-rating", "5", "--ratings", "g,s", "--max-retry-time", "0.5")
    assert failed.code == 2
    assert "giving up on GET /posts.json" in failed.err
    danbooru.require_auth(LOGIN, "a different key")
    denied = fetch(capsys, danbooru, db, "--per-rating", "5", "--ratings", "g,s")
    assert denied.code == 2
    assert "HTTP 401" in denied.err
    texts = [ok.out, ok.err, failed.out, failed.err, denied.out, denied.err, caplog.text]
    assert all(KEY not in text for text in texts)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert db in files
    assert all(KEY.encode() not in path.read_bytes() for path in files)


def test_progress_is_plain_lines_off_a_terminal_and_a_bar_on_one() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    lines = io.StringIO()
    plain = make_progress(lines)
    assert isinstance(plain, LineProgress)
    plain.begin("g", 1, 3)
    plain.stored("g", 42)
    plain.skipped("g", 43, "deleted")
    plain.end("g")
    assert lines.getvalue().splitlines() == [
        "rating g: 1/3 posts in the dataset",
        "rating g: 2/3 stored post 42",
        "rating g: skipped post 43: deleted",
        "rating g: done, 2/3 posts",
    ]
    terminal = Terminal()
    bar = make_progress(terminal)
    assert isinstance(bar, BarProgress)
    bar.begin("s", 0, 2)
    bar.stored("s", 1)
    bar.skipped("s", 2, "banned")
    bar.end("s")
    assert "rating s" in terminal.getvalue()
    assert "1/2" in terminal.getvalue()


# -- killed fetches --------------------------------------------------------------------------------


def fetch_command(danbooru: FakeDanbooru, db: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest_tagger_showdown.cli",
        "fetch",
        "--db",
        str(db),
        "--api-url",
        danbooru.url,
        *args,
    ]


def post_count(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT count(*) FROM posts").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_fetch_killed_mid_way_resumes_with_nothing_lost_or_duplicated(
    danbooru: FakeDanbooru, tmp_path: Path
) -> None:
    populate(danbooru, per_rating=14, ratings="gs")
    plans = {rating: plan(danbooru, rating, skip=3, wanted=4) for rating in "gs"}
    held = plans["s"][0][1]
    hold = danbooru.hold(held)
    db = tmp_path / "data.db"
    args = [
        "--ratings",
        "g,s",
        "--per-rating",
        "4",
        "--page-skip",
        "1",
        "--page-size",
        "3",
        "--concurrency",
        "2",
    ]
    first = subprocess.Popen(
        fetch_command(danbooru, db, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert hold.entered.wait(30), "the fetch never reached the held image"
        # g is complete; of s, the held post waits while the other worker stores the two after it.
        wait_for(lambda: post_count(db) == 7)
    finally:
        first.kill()
        out, err = first.communicate()
    assert first.returncode == -9
    stored = assert_consistent(db, danbooru)
    assert held not in stored
    assert sorted(stored) == sorted([*plans["g"][0], *(i for i in plans["s"][0] if i != held)])

    hold.release.set()
    downloads_before = dict(danbooru.downloads)
    second = subprocess.run(
        fetch_command(danbooru, db, *args), capture_output=True, text=True, timeout=60, check=False
    )
    assert second.returncode == 0, second.stderr
    stored = assert_consistent(db, danbooru)
    assert sorted(stored) == sorted([*plans["g"][0], *plans["s"][0]])
    assert len(stored) == len(set(stored)) == 8
    new_downloads = {i: n - downloads_before.get(i, 0) for i, n in danbooru.downloads.items()}
    assert {i for i, n in new_downloads.items() if n} == {held}
    assert "rating s: 4/4 posts (1 downloaded now)" in second.stdout
    assert KEY.encode() not in out + err
    assert KEY not in second.stdout + second.stderr


def test_a_fetch_killed_at_random_moments_still_ends_exact(danbooru: FakeDanbooru, tmp_path: Path) -> None:
    populate(danbooru, per_rating=16, ratings="gsq")
    plans = {rating: plan(danbooru, rating, skip=2, wanted=4) for rating in "gsq"}
    assert all(len(chosen) == 4 for chosen, _ in plans.values())
    # Slow enough that a whole fetch takes over a second, whatever the machine: every kill lands mid-way.
    danbooru.delay("/data/", 0.1, times=10_000)
    danbooru.delay("/posts.json", 0.03, times=10_000)
    db = tmp_path / "data.db"
    args = [
        "--ratings",
        "g,s,q",
        "--per-rating",
        "4",
        "--page-skip",
        "1",
        "--page-size",
        "2",
        "--concurrency",
        "3",
    ]
    rng = random.Random(20261125)
    counts = []
    for _ in range(3):
        started = len(danbooru.requests)
        proc = subprocess.Popen(
            fetch_command(danbooru, db, *args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: len(danbooru.requests) > started or proc.poll() is not None)  # noqa: B023
        time.sleep(rng.uniform(0.1, 0.8))
        proc.kill()
        proc.wait()
        counts.append(len(assert_consistent(db, danbooru)))
    final = subprocess.run(
        fetch_command(danbooru, db, *args), capture_output=True, text=True, timeout=60, check=False
    )
    assert final.returncode == 0, final.stderr
    stored = assert_consistent(db, danbooru)
    assert sorted(stored) == sorted(i for chosen, _ in plans.values() for i in chosen)
    assert counts == sorted(counts)
    assert counts[0] < len(stored)
