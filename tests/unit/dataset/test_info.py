"""``tagger-showdown info``: the summary of a fetched dataset, and of one not made by ``fetch``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pytest_tagger_showdown import cli
from pytest_tagger_showdown.dataset import Dataset
from pytest_tagger_showdown.dataset.danbooru import post_from_json
from pytest_tagger_showdown.dataset.info import dataset_info, format_info
from tests.fakes.danbooru import FakeDanbooru
from tests.helpers.datasets import four_ratings, png_bytes


@pytest.fixture
def fetched(danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A small fetched dataset: 2 g, 1 s (one sample), skipped posts of three kinds, tag relations."""
    danbooru.add_post("g", general=("1girl", "solo"), character=("hatsune_miku",), copyright=("vocaloid",))
    danbooru.add_post("g", ext="mp4")
    danbooru.add_post("g", general=("1boy",), hidden=True)
    danbooru.add_post("g", general=("1boy", "solo"), artist=("other_artist",))
    danbooru.add_post("s", sample=True)
    danbooru.add_post("s", ext="webm")
    danbooru.add_relation("alias", "long_hair_girl", "1girl")
    db = tmp_path / "data.db"
    code = cli.main(
        [
            "fetch", "--db", str(db), "--api-url", danbooru.url, "--ratings", "g,s",
            "--per-rating", "2", "--variant", "sample", "--with-tag-relations",
        ]
    )  # fmt: skip
    capsys.readouterr()
    assert code == 1  # s has only one usable post
    return db


def test_dataset_info_counts_posts_tags_images_and_skips(fetched: Path, danbooru: FakeDanbooru) -> None:
    info = dataset_info(fetched)
    assert info.posts_per_rating == {"g": 2, "s": 1, "q": 0, "e": 0}
    assert info.posts == 3
    assert info.tags_per_category == {
        "general": 3,  # 1girl, solo, 1boy
        "character": 1,
        "copyright": 2,  # vocaloid, original
        "artist": 2,
        "meta": 1,
    }
    assert (info.images_present, info.images_missing) == (3, 0)
    assert info.images_per_variant == {"original": 2, "sample": 1}
    by_ext = {
        raw["file_ext"]: raw["id"] for raw in danbooru.posts.values() if raw["file_ext"] in ("mp4", "webm")
    }
    hidden = next(raw["id"] for raw in danbooru.posts.values() if "file_url" not in raw)
    assert info.skipped == {
        "hidden (no file_url or md5)": [hidden],
        "not an image: mp4": [by_ext["mp4"]],
        "not an image: webm": [by_ext["webm"]],
    }
    assert info.tag_relations == {"alias": 1, "implication": 0}
    assert info.fetch_query is not None
    assert info.fetch_query["variant"] == "sample"
    assert info.fetch_query["api_url"] == danbooru.url


def test_format_info_is_readable(fetched: Path) -> None:
    text = format_info(dataset_info(fetched))
    lines = text.splitlines()
    assert lines[0] == f"{fetched}: 3 posts"
    assert "  g (general): 2" in lines
    assert "  s (sensitive): 1" in lines
    assert "tags (distinct): 9" in lines
    assert "images: 3 present (original 2, sample 1), 0 missing" in lines
    assert "skipped posts: 3" in lines
    assert any(line.startswith("  not an image: mp4: 1 (posts ") for line in lines)
    assert "tag relations: 1 aliases, 0 implications" in lines
    assert lines[-1].startswith(f"fetched from {info_url(fetched)} with no extra tags, page skip 0 x 20")


def info_url(db: Path) -> str:
    query = dataset_info(db).fetch_query
    assert query is not None
    return str(query["api_url"])


def test_info_command_prints_text_or_json(fetched: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--db", str(fetched)]) == 0
    assert capsys.readouterr().out == format_info(dataset_info(fetched)) + "\n"
    assert cli.main(["info", "--db", str(fetched), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["posts"] == 3
    assert document["posts_per_rating"]["g"] == 2
    assert document["skipped"]["not an image: webm"]


def test_info_reports_images_missing_from_a_hand_made_dataset(
    danbooru: FakeDanbooru, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hand.db"
    with Dataset(db, writable=True) as dataset:
        for raw in (danbooru.add_post("q"), danbooru.add_post("e")):
            dataset.add_post(post_from_json(raw), raw, None if raw["rating"] == "e" else png_bytes())
    info = dataset_info(db)
    assert (info.images_present, info.images_missing) == (1, 1)
    assert info.fetch_query is None
    assert info.skipped == {}
    text = format_info(info)
    assert "images: 1 present (original 1), 1 missing" in text
    assert "fetched from" not in text


def test_info_on_a_missing_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["info", "--db", str(tmp_path / "nope.db")]) == 2
    assert (
        capsys.readouterr().err == f"tagger-showdown: error: dataset {tmp_path / 'nope.db'} does not exist\n"
    )


def test_undecodable_images_are_broken_with_their_post_ids_not_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = four_ratings(tmp_path / "data.db", corrupt=103)
    info = dataset_info(db)
    assert (info.images_present, info.images_missing) == (7, 0)
    assert list(info.images_broken) == [103]
    assert info.images_broken[103].startswith("cannot decode the image (12 bytes)")
    assert info.images_per_variant == {"original": 7}
    lines = format_info(info).splitlines()
    assert "images: 7 present (original 7), 1 broken, 0 missing" in lines
    assert any(line.startswith("  broken: post 103: cannot decode the image") for line in lines)
    assert cli.main(["info", "--db", str(db), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["images_present"] == 7
    assert [item["post_id"] for item in document["images_broken"]] == [103]


def test_an_image_changed_after_fetching_is_broken(tmp_path: Path) -> None:
    """The caches key an image by its recorded md5: bytes changed in the file (a truncated image, one
    post's image swapped for another's) would be served the old image's cached results. Before:
    ``info`` found the truncated one only if it no longer decoded, the swapped one never."""
    db = four_ratings(tmp_path / "data.db")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE images SET data = ? WHERE post_id = 101", (png_bytes((7, 5)),))
    info = dataset_info(db)
    assert info.images_broken == {
        101: "the stored bytes do not match their recorded md5 (changed after fetching)"
    }
