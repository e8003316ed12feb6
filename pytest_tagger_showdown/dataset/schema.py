"""The dataset's SQLite schema, its version number and the migrations between versions.

The version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a database from version ``i``
to ``i + 1``; a new schema change appends one entry and never edits an old one.

Images are stored inside the database (table ``images``), so a dataset is one portable file that can
be copied, cached in CI or attached to a bug report.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from ..errors import DatasetError

MIGRATIONS: Final[tuple[str, ...]] = (
    # 0 -> 1: posts, their tags, images, posts skipped by the fetcher and tag relations.
    """
    CREATE TABLE posts (
        id          INTEGER PRIMARY KEY,
        md5         TEXT NOT NULL,
        rating      TEXT NOT NULL CHECK (rating IN ('g', 's', 'q', 'e')),
        file_ext    TEXT NOT NULL,
        file_size   INTEGER,
        width       INTEGER,
        height      INTEGER,
        created_at  TEXT,
        raw_json    TEXT NOT NULL
    );
    CREATE TABLE post_tags (
        post_id   INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
        tag       TEXT NOT NULL,
        category  TEXT NOT NULL
            CHECK (category IN ('general', 'character', 'copyright', 'artist', 'meta')),
        PRIMARY KEY (post_id, tag)
    );
    CREATE INDEX post_tags_by_tag ON post_tags (tag);
    CREATE TABLE images (
        post_id  INTEGER PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
        variant  TEXT NOT NULL CHECK (variant IN ('original', 'sample')),
        md5      TEXT NOT NULL,
        data     BLOB NOT NULL
    );
    CREATE TABLE skipped (
        post_id   INTEGER PRIMARY KEY,
        reason    TEXT NOT NULL,
        raw_json  TEXT
    );
    CREATE TABLE tag_relations (
        kind        TEXT NOT NULL CHECK (kind IN ('alias', 'implication')),
        antecedent  TEXT NOT NULL,
        consequent  TEXT NOT NULL,
        PRIMARY KEY (kind, antecedent, consequent)
    );
    CREATE TABLE meta (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    """,
    # 1 -> 2: Danbooru's related tags (``/related_tag.json``), one row per tag queried (so a tag whose
    # answer listed nothing still counts as fetched) and one per tag its answer lists.
    """
    CREATE TABLE related_tag_queries (
        query       TEXT PRIMARY KEY,
        post_count  INTEGER
    );
    CREATE TABLE related_tags (
        query                TEXT NOT NULL REFERENCES related_tag_queries (query) ON DELETE CASCADE,
        tag                  TEXT NOT NULL,
        cosine_similarity    REAL NOT NULL,
        jaccard_similarity   REAL,
        overlap_coefficient  REAL,
        frequency            REAL,
        PRIMARY KEY (query, tag)
    );
    """,
)

SCHEMA_VERSION: Final[int] = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The version a database is at (0 for an empty file)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_version(conn: sqlite3.Connection, name: str) -> int:
    """The version of the database ``name``, refusing what no migration can bring up to date.

    Raises :class:`DatasetError` for a schema newer than this package (the fix is a package upgrade,
    never ``migrate``) and for a SQLite file with tables of its own but no dataset version: another
    program's database, which a migration would otherwise fill with dataset tables.
    """
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise DatasetError(
            f"dataset {name} has schema version {current}, newer than this pytest-tagger-showdown "
            f"understands ({SCHEMA_VERSION}): upgrade the package (pip install -U pytest-tagger-showdown)"
        )
    if current == 0:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
            )
        ]
        if tables:
            raise DatasetError(
                f"{name} is not a tagger-showdown dataset (a SQLite file with other tables: "
                f"{', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''})"
            )
    return current


def migrate(conn: sqlite3.Connection, name: str = "database") -> int:
    """Bring a database up to ``SCHEMA_VERSION``, one transaction per step; returns the old version.

    Raises :class:`DatasetError` as :func:`check_version` does; ``name`` is the file named in messages.
    """
    current = check_version(conn, name)
    for version in range(current, SCHEMA_VERSION):
        with conn:
            conn.executescript(f"BEGIN; {MIGRATIONS[version]}; PRAGMA user_version = {version + 1};")
    return current
