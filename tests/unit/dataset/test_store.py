"""The dataset file: schema versions, atomic posts, reading back, spreading a limit over ratings."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tagger_showdown import Dataset, DatasetError, ImageError, Post, cli
from pytest_tagger_showdown.dataset.danbooru import RelatedTag, RelatedTagAnswer
from pytest_tagger_showdown.dataset.info import dataset_info
from pytest_tagger_showdown.dataset.schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from pytest_tagger_showdown.dataset.store import is_dataset_file, migrate_dataset
from tests.helpers.datasets import CO, G, PostSpec, four_ratings, make_dataset, png_bytes


def test_posts_round_trip_with_tags_categories_and_image(tmp_path: Path) -> None:
    image = png_bytes(colour=(1, 2, 3))
    make_dataset(
        tmp_path / "data.db", [PostSpec(id=7, rating="q", tags={"cat": G, "original": CO}, image=image)]
    )
    with Dataset(tmp_path / "data.db") as dataset:
        (post,) = dataset.posts()
        assert (post.id, post.rating, post.label) == (7, "q", "post7-q")
        assert dict(post.tags) == {"cat": G, "original": CO}
        assert dataset.image(7) == image
        assert dataset.raw_post(7) == {"id": 7, "rating": "q"}


def test_limit_spreads_over_ratings_and_ratings_filter(tmp_path: Path) -> None:
    with Dataset(four_ratings(tmp_path / "data.db")) as dataset:
        assert [p.rating for p in dataset.posts(limit=4)] == ["g", "s", "q", "e"]
        assert [p.id for p in dataset.posts(limit=5)] == [100, 101, 102, 104, 106]
        assert {p.rating for p in dataset.posts(ratings=("q", "e"))} == {"q", "e"}
        assert len(dataset.posts()) == 8


def test_rewriting_a_post_replaces_it_whole(tmp_path: Path) -> None:
    path = make_dataset(tmp_path / "data.db", [PostSpec(id=1, rating="g", tags={"a": G, "b": G})])
    make_dataset(path, [PostSpec(id=1, rating="e", tags={"c": G})])
    with Dataset(path) as dataset:
        (post,) = dataset.posts()
        assert (post.rating, dict(post.tags)) == ("e", {"c": G})


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    with Dataset(path, writable=True) as dataset:
        bad = Post(id=5, md5="x", rating="x", file_ext="png", tags={"a": G})  # rating fails the CHECK
        with pytest.raises(sqlite3.IntegrityError):
            dataset.add_post(bad, {}, png_bytes())
        assert dataset.count() == 0
        assert not dataset.has_image(5)


def test_missing_image_is_an_image_error(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    with Dataset(path, writable=True) as dataset:
        dataset.add_post(Post(id=9, md5="x", rating="g", file_ext="png", tags={}), {})
    with Dataset(path) as dataset, pytest.raises(ImageError, match="post 9 has no image"):
        dataset.image(9)


def test_read_only_open_refuses_missing_old_and_newer_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset(tmp_path / "nope.db")
    old = tmp_path / "old.db"
    sqlite3.connect(old).close()
    with pytest.raises(DatasetError, match="tagger-showdown migrate"):
        Dataset(old)
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DatasetError, match="newer"):
        Dataset(newer, writable=True)


def test_garbage_file_is_a_dataset_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatasetError, match="not a readable dataset"):
        Dataset(garbage)


def test_migrate_is_idempotent_and_reports_the_old_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "data.db")
    assert migrate(conn) == 0
    assert migrate(conn) == SCHEMA_VERSION
    assert schema_version(conn) == SCHEMA_VERSION


def test_a_version_1_dataset_migrates_to_related_tags_keeping_its_posts(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    conn = sqlite3.connect(path)
    conn.executescript(f"{MIGRATIONS[0]}; PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO posts (id, md5, rating, file_ext, raw_json) VALUES (5, 'abc', 'g', 'png', '{}')"
    )
    conn.execute("INSERT INTO post_tags (post_id, tag, category) VALUES (5, 'cat', 'general')")
    conn.commit()
    conn.close()
    with pytest.raises(DatasetError, match="schema version 1, this package uses 2"):
        Dataset(path)
    assert migrate_dataset(path) == (1, 2)
    with Dataset(path, writable=True) as dataset:
        assert [(p.id, dict(p.tags)) for p in dataset.posts()] == [(5, {"cat": G})]
        assert dataset.related_tag_queries() == set()
        assert dataset.related_tags() == {}
        dataset.add_related_tags(
            RelatedTagAnswer("cat", 2, (RelatedTag("cat", 1.0), RelatedTag("dog", 0.25)))
        )
        dataset.add_related_tags(RelatedTagAnswer("rare_tag", 0, ()))
        # A second answer for a tag replaces the first whole.
        dataset.add_related_tags(
            RelatedTagAnswer("cat", 3, (RelatedTag("cat", 1.0), RelatedTag("fish", 0.5)))
        )
        assert dataset.related_tag_queries() == {"cat", "rare_tag"}
        assert dataset.related_tags() == {"cat": {"cat": 1.0, "fish": 0.5}}


def test_an_interrupted_write_is_named_and_a_writable_open_rolls_it_back(tmp_path: Path) -> None:
    path = four_ratings(tmp_path / "data.db")
    # A writer that dies mid-transaction after spilling pages to the file leaves a hot journal.
    killed_writer = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "conn.execute('PRAGMA cache_size = 2')\n"
        "conn.execute('BEGIN')\n"
        "conn.execute('UPDATE images SET data = zeroblob(200000)')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", killed_writer, str(path)], check=True)
    assert path.with_name("data.db-journal").is_file()
    with pytest.raises(DatasetError, match=r"interrupted write.*tagger-showdown migrate"):
        Dataset(path).posts()
    Dataset(path, writable=True).close()
    with Dataset(path) as dataset:
        assert all(dataset.has_image(post.id) for post in dataset.posts())


def test_an_image_stored_as_text_is_an_image_error(tmp_path: Path) -> None:
    """``UPDATE images SET data = data || x'00'`` stores text, which SQLite cannot hand back as UTF-8:
    before, a raw sqlite3.OperationalError (a traceback in ``info``, a multi-line failure in a run)."""
    db = four_ratings(tmp_path / "data.db")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE images SET data = data || x'00' WHERE post_id = 101")
    with Dataset(db) as dataset, pytest.raises(ImageError, match="post 101's stored image cannot be read"):
        dataset.image(101)
    assert dataset_info(db).images_broken[101].startswith("post 101's stored image cannot be read")


def test_a_writable_open_refuses_a_fifo_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: SQLite opened the fifo and waited on it (``tagger-showdown fetch --db fifo`` hung);
    on a device node it would write into the device. Now refused, before any request."""
    fifo = tmp_path / "data.db"
    os.mkfifo(fifo)
    with pytest.raises(
        DatasetError, match=r"data\.db is a fifo \(named pipe\), not a regular file; name a file"
    ):
        Dataset(fifo, writable=True)
    assert not is_dataset_file(fifo)  # before: waited for a writer
    assert cli.main(["fetch", "--db", str(fifo), "--api-url", "http://127.0.0.1:9"]) == 2
    assert "is a fifo (named pipe), not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
