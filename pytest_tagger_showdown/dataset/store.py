"""Reading and writing a dataset file: posts, tags and images, each post written atomically."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..atomic import not_a_file_reason
from ..errors import DatasetError, ImageError
from ..tags import RATINGS, TagCategory
from .post import Post
from .schema import SCHEMA_VERSION, check_version, migrate

if TYPE_CHECKING:
    from .danbooru import RelatedTagAnswer


class Dataset:
    """A dataset file opened for reading (default) or writing.

    Read-only opens never change the file, so a dataset inside an installed package or shared by
    several pytest-xdist workers is safe; they refuse a file whose schema is older than this package's.
    """

    def __init__(self, path: str | Path, *, writable: bool = False) -> None:
        self.path = Path(path)
        self.writable = writable
        if not writable and not self.path.is_file():
            raise DatasetError(f"dataset {self.path} does not exist")
        kind = not_a_file_reason(self.path)
        if writable and kind is not None:  # SQLite would write into a device or wait on a fifo
            raise DatasetError(f"dataset {self.path} is {kind}, not a regular file; name a file")
        try:
            if writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(self.path)
                self._conn.execute("PRAGMA foreign_keys = ON")
            else:
                self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.DatabaseError as exc:
            raise DatasetError(f"{self.path} is not a readable dataset: {exc}") from exc
        try:
            #: The schema version the file had when opened (0 for a new file).
            self.opened_version = self._check_schema()
        except BaseException:
            self._conn.close()
            raise

    def _check_schema(self) -> int:
        try:
            if self.writable:
                return migrate(self._conn, str(self.path))
            version = check_version(self._conn, str(self.path))
        except sqlite3.DatabaseError as exc:
            if self.path.with_name(f"{self.path.name}-journal").is_file():
                raise DatasetError(
                    f"dataset {self.path} has an interrupted write (its -journal file): rerun the "
                    f"fetch, or run `tagger-showdown migrate --db {self.path}` to roll it back"
                ) from exc
            raise DatasetError(f"{self.path} is not a readable dataset: {exc}") from exc
        if version != SCHEMA_VERSION:
            raise DatasetError(
                f"dataset {self.path} has schema version {version}, this package uses "
                f"{SCHEMA_VERSION}; run `tagger-showdown migrate --db {self.path}`"
            )
        return version

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------------

    def posts(self, ratings: Iterable[str] | None = None, limit: int | None = None) -> list[Post]:
        """Posts in id order, optionally of some ratings only.

        ``limit`` keeps at most that many posts, spread evenly over the ratings (round robin by id),
        so a short run still sees every rating.
        """
        wanted = tuple(ratings) if ratings is not None else RATINGS
        tags = self._tags_by_post()
        by_rating: dict[str, list[Post]] = {rating: [] for rating in wanted}
        rows = self._conn.execute(
            "SELECT id, md5, rating, file_ext, file_size, width, height FROM posts ORDER BY id"
        )
        for row in rows:
            if row[2] in by_rating:
                by_rating[row[2]].append(
                    Post(
                        id=row[0],
                        md5=row[1],
                        rating=row[2],
                        file_ext=row[3],
                        tags=tags.get(row[0], {}),
                        file_size=row[4],
                        width=row[5],
                        height=row[6],
                    )
                )
        if limit is None:
            return sorted((p for group in by_rating.values() for p in group), key=lambda p: p.id)
        chosen: list[Post] = []
        queues = [iter(group) for group in by_rating.values()]
        while queues and len(chosen) < limit:
            for queue in list(queues):
                post = next(queue, None)
                if post is None:
                    queues.remove(queue)
                elif len(chosen) < limit:
                    chosen.append(post)
        return sorted(chosen, key=lambda p: p.id)

    def _tags_by_post(self) -> dict[int, dict[str, TagCategory]]:
        result: dict[int, dict[str, TagCategory]] = {}
        for post_id, tag, category in self._conn.execute(
            "SELECT post_id, tag, category FROM post_tags ORDER BY post_id, tag"
        ):
            # Interned: a 30,000-post dataset holds each tag name once, not once per post.
            result.setdefault(post_id, {})[sys.intern(tag)] = TagCategory(category)
        return result

    def image(self, post_id: int) -> bytes:
        """The stored image bytes of a post; raises ImageError when it has none, or when the value
        is not a blob (text that SQLite cannot return, after an edit such as ``data || x'00'``)."""
        try:
            row = self._conn.execute("SELECT data FROM images WHERE post_id = ?", (post_id,)).fetchone()
        except sqlite3.OperationalError as exc:
            raise ImageError(f"post {post_id}'s stored image cannot be read: {exc}") from None
        if row is None:
            raise ImageError(f"post {post_id} has no image in {self.path}")
        if not isinstance(row[0], bytes):
            raise ImageError(f"post {post_id}'s stored image is {type(row[0]).__name__}, not bytes")
        return row[0]

    def image_md5(self, post_id: int) -> str | None:
        """The md5 of the stored image bytes (not Danbooru's md5 when a sample is stored), or None."""
        row = self._conn.execute("SELECT md5 FROM images WHERE post_id = ?", (post_id,)).fetchone()
        return None if row is None else str(row[0])

    def has_image(self, post_id: int) -> bool:
        row = self._conn.execute("SELECT 1 FROM images WHERE post_id = ?", (post_id,)).fetchone()
        return row is not None

    def image_variants(self) -> dict[int, str]:
        """Which variant (``original`` or ``sample``) each stored image is, by post id."""
        return dict(self._conn.execute("SELECT post_id, variant FROM images ORDER BY post_id"))

    def raw_post(self, post_id: int) -> dict[str, Any]:
        """The post's JSON exactly as the Danbooru API returned it."""
        row = self._conn.execute("SELECT raw_json FROM posts WHERE id = ?", (post_id,)).fetchone()
        if row is None:
            raise DatasetError(f"no post {post_id} in {self.path}")
        loaded: dict[str, Any] = json.loads(row[0])
        return loaded

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM posts").fetchone()[0])

    def skipped(self) -> dict[int, str]:
        """Posts the fetcher saw and left out, with the reason."""
        return dict(self._conn.execute("SELECT post_id, reason FROM skipped ORDER BY post_id"))

    def tag_relations(self, kind: str) -> list[tuple[str, str]]:
        """``(antecedent, consequent)`` pairs of a relation kind (``alias`` or ``implication``)."""
        return list(
            self._conn.execute(
                "SELECT antecedent, consequent FROM tag_relations WHERE kind = ? ORDER BY 1, 2",
                (kind,),
            )
        )

    def related_tag_queries(self) -> set[str]:
        """The tags whose ``/related_tag.json`` answer is stored (also those that listed nothing)."""
        return {str(row[0]) for row in self._conn.execute("SELECT query FROM related_tag_queries")}

    def related_tags(self) -> dict[str, dict[str, float]]:
        """Danbooru's related tags: queried tag -> {related tag: cosine similarity}."""
        result: dict[str, dict[str, float]] = {}
        for query, tag, cosine in self._conn.execute(
            "SELECT query, tag, cosine_similarity FROM related_tags ORDER BY 1, 2"
        ):
            result.setdefault(str(query), {})[str(tag)] = float(cosine)
        return result

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- writing ---------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside lands together or not at all."""
        if not self.writable:
            raise DatasetError(f"dataset {self.path} is open read-only")
        with self._conn:
            yield self._conn

    def add_post(
        self,
        post: Post,
        raw: Mapping[str, Any],
        image: bytes | None = None,
        *,
        variant: str = "original",
        created_at: str | None = None,
    ) -> None:
        """Store a post, its tags and (optionally) its image atomically, replacing any earlier copy."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM posts WHERE id = ?", (post.id,))
            conn.execute("DELETE FROM skipped WHERE post_id = ?", (post.id,))
            conn.execute(
                "INSERT INTO posts (id, md5, rating, file_ext, file_size, width, height, created_at,"
                " raw_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    post.id,
                    post.md5,
                    post.rating,
                    post.file_ext,
                    post.file_size,
                    post.width,
                    post.height,
                    created_at,
                    json.dumps(raw, sort_keys=True),
                ),
            )
            conn.executemany(
                "INSERT INTO post_tags (post_id, tag, category) VALUES (?, ?, ?)",
                [(post.id, tag, category.value) for tag, category in sorted(post.tags.items())],
            )
            if image is not None:
                self._put_image(conn, post.id, image, variant)

    def put_image(self, post_id: int, image: bytes, *, variant: str = "original") -> None:
        """Store (or replace) a post's image."""
        with self.transaction() as conn:
            self._put_image(conn, post_id, image, variant)

    @staticmethod
    def _put_image(conn: sqlite3.Connection, post_id: int, image: bytes, variant: str) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO images (post_id, variant, md5, data) VALUES (?, ?, ?, ?)",
            (post_id, variant, hashlib.md5(image).hexdigest(), image),
        )

    def skip(self, post_id: int, reason: str, raw: Mapping[str, Any] | None = None) -> None:
        """Record that a post was left out and why."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO skipped (post_id, reason, raw_json) VALUES (?, ?, ?)",
                (post_id, reason, None if raw is None else json.dumps(raw, sort_keys=True)),
            )

    def add_tag_relations(self, kind: str, pairs: Sequence[tuple[str, str]]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO tag_relations (kind, antecedent, consequent) VALUES (?, ?, ?)",
                [(kind, a, c) for a, c in pairs],
            )

    def add_related_tags(self, answer: RelatedTagAnswer) -> None:
        """Store one tag's ``/related_tag.json`` answer atomically, replacing an earlier one."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM related_tags WHERE query = ?", (answer.query,))
            conn.execute(
                "INSERT OR REPLACE INTO related_tag_queries (query, post_count) VALUES (?, ?)",
                (answer.query, answer.post_count),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO related_tags (query, tag, cosine_similarity, jaccard_similarity,"
                " overlap_coefficient, frequency) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        answer.query,
                        tag.name,
                        tag.cosine_similarity,
                        tag.jaccard_similarity,
                        tag.overlap_coefficient,
                        tag.frequency,
                    )
                    for tag in answer.related
                ],
            )

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def migrate_dataset(path: str | Path) -> tuple[int, int]:
    """Bring an existing dataset's schema up to date; returns its ``(old, new)`` schema versions.

    Opening it for writing also rolls back a write that was interrupted (a hot ``-journal``). Raises
    :class:`DatasetError` for a missing path (a migration never creates a file: ``fetch`` does), an
    empty file, a file that is not a dataset, and a dataset newer than this package.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist (migrate never creates one; fetch does)")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path} is an empty file, not a dataset")
    with Dataset(path, writable=True) as dataset:
        return dataset.opened_version, SCHEMA_VERSION


def is_dataset_file(path: Path) -> bool:
    """Whether ``path`` is an SQLite file (a dataset, whatever its name): no output may replace one."""
    if not path.is_file():  # opening a fifo to read would wait for a writer
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
