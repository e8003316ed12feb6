"""A fake Danbooru on loopback for the fetcher's tests.

It speaks the real API's JSON (post fields, ``media_asset.variants``, error bodies), pages the way
Danbooru does (numbered pages with a page cap answering 410, ``page=b<id>`` and ``page=a<id>``
cursors, ``limit`` capped at 200, ``only=``), serves ``/tag_aliases.json``,
``/tag_implications.json``, ``/related_tag.json`` (computed exactly over its posts, where Danbooru
samples) and the image files themselves with their true md5s. Switches make it
misbehave the ways the real one (or the network) does: 429 with Retry-After, 5xx, slow answers,
truncated and corrupt files, a post repeated across pages, a request that hangs until released.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from werkzeug import Request, Response

from tests.fakes.loopback import LoopbackFake

#: Danbooru's largest page for posts, and for other listings.
POST_LIMIT = 200
OTHER_LIMIT = 1000
#: ``/related_tag.json``'s default ``limit`` (Danbooru's ``RelatedTagQuery``).
RELATED_LIMIT = 25
#: Danbooru's tag category numbers.
CATEGORY_IDS = {"general": 0, "artist": 1, "copyright": 3, "character": 4, "meta": 5}
IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
}
OTHER_TYPES = {
    "mp4": "video/mp4",
    "webm": "video/webm",
    "zip": "application/zip",
    "swf": "application/x-shockwave-flash",
}


@dataclass
class Seen:
    """One request the fake answered."""

    path: str
    query: str
    authorization: str | None
    status: int = 0


@dataclass
class Hold:
    """A file request that blocks until ``release`` is set; ``entered`` is set when it arrives."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class _File:
    post_id: int
    data: bytes
    content_type: str


def _colour(seed: int) -> tuple[int, int, int]:
    return (seed * 67 % 256, seed * 131 % 256, seed * 197 % 256)


def make_image(seed: int, ext: str, size: tuple[int, int] = (40, 30), *, animated: bool = False) -> bytes:
    """A small image whose bytes (and md5) are unique to ``seed``; an animation's frames differ."""
    image = Image.new("RGB", size, _colour(seed))
    image.putpixel((0, 0), (seed % 256, seed // 256 % 256, 7))
    buffer = io.BytesIO()
    fmt = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP"}[ext]
    if animated:
        second = Image.new("RGB", size, (0, 0, 255))
        image.save(buffer, fmt, save_all=True, append_images=[second], duration=100, loop=0)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


def _image_size(data: bytes) -> tuple[int, int]:
    """An image's size; a PNG's from its header, so that one above Pillow's limit has a size too."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    with Image.open(io.BytesIO(data)) as opened:
        return opened.size


def first_frame_colour(seed: int) -> tuple[int, int, int]:
    """The colour an image made by :func:`make_image` has away from its marker pixel."""
    return _colour(seed)


class FakeDanbooru(LoopbackFake):
    """A Danbooru instance in a thread; ``reset()`` empties it between tests sharing one server."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        self.release_all()
        super().stop()

    def reset(self) -> None:
        """Forget all posts, relations, misbehaviour and the request log."""
        with self._lock:
            self.posts: dict[int, dict[str, Any]] = {}
            self.relations: dict[str, list[dict[str, Any]]] = {"alias": [], "implication": []}
            self.files: dict[str, _File] = {}
            self.requests: list[Seen] = []
            self.downloads: Counter[int] = Counter()
            self.page_cap = 1000
            self.credentials: tuple[str, str] | None = None
            self.repeat_across_pages = False
            self._next_id = 1000
            self._failures: list[tuple[str, int, str | None]] = []
            self._delays: list[tuple[str, float]] = []
            self._truncate: Counter[int] = Counter()
            self._corrupt: Counter[int] = Counter()
            self._holds: dict[int, Hold] = {}

    def release_all(self) -> None:
        for hold in list(self._holds.values()):
            hold.release.set()

    # -- content ---------------------------------------------------------------------------------

    def add_post(
        self,
        rating: str = "g",
        *,
        general: Sequence[str] = ("1girl", "solo"),
        character: Sequence[str] = (),
        copyright: Sequence[str] = ("original",),
        artist: Sequence[str] = ("some_artist",),
        meta: Sequence[str] = ("highres",),
        ext: str = "png",
        hidden: bool = False,
        deleted: bool = False,
        banned: bool = False,
        sample: bool = False,
        animated: bool = False,
        image: bytes | None = None,
    ) -> dict[str, Any]:
        """A new post, newer than all before it; returns its JSON as the API shows it. ``image``: the
        original's bytes instead of a generated image (of type ``ext``)."""
        with self._lock:
            self._next_id += 1
            post_id = self._next_id
        if ext in IMAGE_TYPES:
            data = make_image(post_id, ext, animated=animated) if image is None else image
            width, height = _image_size(data)
            content_type = IMAGE_TYPES[ext]
        else:
            data = f"not an image: {ext} post {post_id}".encode() * 10
            width, height, content_type = 640, 360, OTHER_TYPES[ext]
        md5 = hashlib.md5(data).hexdigest()
        prefix = f"/data/{{kind}}/{md5[:2]}/{md5[2:4]}/"
        original_path = prefix.format(kind="original") + f"{md5}.{ext}"
        preview_url = self.url + prefix.format(kind="180x180") + f"{md5}.jpg"
        variants: list[dict[str, Any]] = [
            {"type": "180x180", "url": preview_url, "width": 18, "height": 14, "file_ext": "jpg"},
        ]
        large_path = original_path
        if sample:
            sample_data = make_image(post_id + 50_000, "jpg", size=(20, 15))
            large_path = prefix.format(kind="sample") + f"sample-{md5}.jpg"
            self.files[large_path] = _File(post_id, sample_data, "image/jpeg")
            variants.append(
                {"type": "sample", "url": self.url + large_path, "width": 20, "height": 15, "file_ext": "jpg"}
            )
        variants.append(
            {
                "type": "original",
                "url": self.url + original_path,
                "width": width,
                "height": height,
                "file_ext": ext,
            }
        )
        self.files[original_path] = _File(post_id, data, content_type)
        tag_strings = {
            "general": general,
            "character": character,
            "copyright": copyright,
            "artist": artist,
            "meta": meta,
        }
        all_tags = sorted({tag for tags in tag_strings.values() for tag in tags})
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000-05:00", time.gmtime(1_700_000_000 + post_id))
        raw: dict[str, Any] = {
            "id": post_id,
            "created_at": stamp,
            "uploader_id": 1,
            "score": post_id % 17,
            "source": f"https://example.com/art/{post_id}",
            "md5": md5,
            "last_comment_bumped_at": None,
            "rating": rating,
            "image_width": width,
            "image_height": height,
            "tag_string": " ".join(all_tags),
            "fav_count": 3,
            "file_ext": ext,
            "last_noted_at": None,
            "parent_id": None,
            "has_children": False,
            "approver_id": None,
            "tag_count_general": len(general),
            "tag_count_artist": len(artist),
            "tag_count_character": len(character),
            "tag_count_copyright": len(copyright),
            "file_size": len(data),
            "up_score": 3,
            "down_score": 0,
            "is_pending": False,
            "is_flagged": False,
            "is_deleted": deleted,
            "tag_count": len(all_tags),
            "updated_at": stamp,
            "is_banned": banned,
            "pixiv_id": None,
            "last_commented_at": None,
            "has_active_children": False,
            "bit_flags": 0,
            "tag_count_meta": len(meta),
            "has_large": sample,
            "has_visible_children": False,
            "media_asset": {
                "id": post_id + 9_000_000,
                "created_at": stamp,
                "updated_at": stamp,
                "md5": md5,
                "file_ext": ext,
                "file_size": len(data),
                "image_width": width,
                "image_height": height,
                "duration": 2.5 if ext in OTHER_TYPES else None,
                "status": "active",
                "file_key": f"key{post_id}",
                "is_public": True,
                "pixel_hash": md5[::-1],
                "variants": variants,
            },
            **{f"tag_string_{name}": " ".join(tags) for name, tags in tag_strings.items()},
            "file_url": self.url + original_path,
            "large_file_url": self.url + large_path,
            "preview_file_url": preview_url,
        }
        if hidden:
            for key in ("md5", "file_url", "large_file_url", "preview_file_url"):
                del raw[key]
            for key in ("md5", "variants"):
                del raw["media_asset"][key]
        self.posts[post_id] = raw
        return raw

    def image(self, post_id: int, *, sample: bool = False) -> bytes:
        """The bytes the fake serves for a post's original (or sample)."""
        kind = "/data/sample/" if sample else "/data/original/"
        return next(
            f.data for path, f in self.files.items() if f.post_id == post_id and path.startswith(kind)
        )

    def add_relation(self, kind: str, antecedent: str, consequent: str, status: str = "active") -> None:
        rows = self.relations[kind]
        rows.append(
            {
                "id": len(rows) + 1,
                "antecedent_name": antecedent,
                "consequent_name": consequent,
                "status": status,
                "created_at": "2020-01-01T00:00:00.000-05:00",
                "updated_at": "2020-01-01T00:00:00.000-05:00",
                "creator_id": 1,
                "approver_id": 2,
                "forum_post_id": None,
                "forum_topic_id": None,
                "reason": "",
            }
        )

    # -- misbehaviour ----------------------------------------------------------------------------

    def require_auth(self, login: str, api_key: str) -> None:
        """Answer 401 to API calls without these credentials (Basic auth or login/api_key params)."""
        self.credentials = (login, api_key)

    def fail(self, path_prefix: str, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests under ``path_prefix`` with ``status`` (the prefix may go
        on into the query string: ``/related_tag.json?query=cat``)."""
        with self._lock:
            self._failures.extend([(path_prefix, status, retry_after)] * times)

    def delay(self, path_prefix: str, seconds: float, *, times: int = 1) -> None:
        """Sleep before answering the next ``times`` requests under ``path_prefix``."""
        with self._lock:
            self._delays.extend([(path_prefix, seconds)] * times)

    def truncate(self, post_id: int, *, times: int = 1) -> None:
        """Send half of the post's file (with the full Content-Length) the next ``times`` times."""
        self._truncate[post_id] += times

    def corrupt(self, post_id: int, *, times: int = 1) -> None:
        """Send the post's file with bytes changed (same length, wrong md5) the next ``times`` times."""
        self._corrupt[post_id] += times

    def hold(self, post_id: int) -> Hold:
        """Make requests for the post's file wait until released."""
        self._holds[post_id] = Hold()
        return self._holds[post_id]

    # -- observations ----------------------------------------------------------------------------

    def api_requests(self, path: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.path == path]

    # -- serving ---------------------------------------------------------------------------------

    def _take(self, queue: list[Any], path: str) -> Any:
        with self._lock:
            for index, entry in enumerate(queue):
                if path.startswith(entry[0]):
                    return queue.pop(index)
        return None

    def _handle(self, request: Request) -> Response:
        seen = Seen(
            request.path,
            request.query_string.decode(),
            request.headers.get("Authorization"),
        )
        with self._lock:
            self.requests.append(seen)
        response = self._answer(request)
        seen.status = response.status_code
        return response

    def _answer(self, request: Request) -> Response:
        path = request.path
        query = request.query_string.decode()
        target = f"{path}?{query}" if query else path
        delay = self._take(self._delays, target)
        if delay is not None:
            time.sleep(delay[1])
        failure = self._take(self._failures, target)
        if failure is not None:
            _, status, retry_after = failure
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return _error(status, "Danbooru::Error", f"fake failure {status}", headers)
        if path.startswith("/data/"):
            return self._file(path)
        if path.endswith(".json") and not self._authorised(request):
            return _error(401, "SessionLoader::AuthenticationFailure", "Invalid API key")
        if path == "/posts.json":
            return self._posts(request)
        if path == "/tag_aliases.json":
            return self._relations(request, "alias")
        if path == "/tag_implications.json":
            return self._relations(request, "implication")
        if path == "/related_tag.json":
            return self._related(request)
        return _error(404, "ActiveRecord::RecordNotFound", "That record was not found.")

    def _authorised(self, request: Request) -> bool:
        if self.credentials is None:
            return True
        auth = request.authorization
        if auth is not None and (auth.username, auth.password) == self.credentials:
            return True
        return (request.args.get("login"), request.args.get("api_key")) == self.credentials

    def _posts(self, request: Request) -> Response:
        args = request.args
        limit = max(1, min(POST_LIMIT, int(args.get("limit", "20"))))
        terms = args.get("tags", "").split()
        matching = [raw for _, raw in sorted(self.posts.items(), reverse=True) if _matches(raw, terms)]
        page = args.get("page", "1")
        if page.startswith("b"):
            before = int(page[1:])
            rows = [raw for raw in matching if raw["id"] < before][:limit]
            if self.repeat_across_pages and before in self.posts and self.posts[before] in matching:
                rows = [self.posts[before], *rows][:limit]
        elif page.startswith("a"):
            after = int(page[1:])
            rows = [raw for raw in reversed(matching) if raw["id"] > after][:limit][::-1]
        else:
            number = max(1, int(page))
            if number > self.page_cap:
                return _error(
                    410,
                    "PaginationExtension::PaginationError",
                    f"You cannot go beyond page {self.page_cap}. Try narrowing your search terms, "
                    f"or upgrade your account to go beyond page {self.page_cap}.",
                )
            rows = matching[(number - 1) * limit : number * limit]
        only = args.get("only")
        if only:
            fields = only.split(",")
            rows = [{key: raw[key] for key in fields if key in raw} for raw in rows]
        return _json(rows)

    def _relations(self, request: Request, kind: str) -> Response:
        args = request.args
        rows = sorted(self.relations[kind], key=lambda row: row["id"], reverse=True)
        for side in ("antecedent", "consequent"):
            for suffix, separator in (("space", " "), ("comma", ",")):
                value = args.get(f"search[{side}_name_{suffix}]")
                if value is not None:
                    names = set(value.split(separator))
                    rows = [row for row in rows if row[f"{side}_name"] in names]
        status = args.get("search[status]")
        if status:
            rows = [row for row in rows if row["status"] == status.lower()]
        page = args.get("page", "")
        if page.startswith("b"):
            rows = [row for row in rows if row["id"] < int(page[1:])]
        limit = max(1, min(OTHER_LIMIT, int(args.get("limit", "20"))))
        return _json(rows[:limit])

    def _tag_json(self, name: str, posts_with: Counter[str]) -> dict[str, Any]:
        category = next(
            (
                number
                for kind, number in CATEGORY_IDS.items()
                for raw in self.posts.values()
                if name in raw[f"tag_string_{kind}"].split()
            ),
            0,
        )
        return {
            "id": sum(map(ord, name)),
            "name": name,
            "post_count": posts_with[name],
            "category": category,
            "created_at": "2020-01-01T00:00:00.000-05:00",
            "updated_at": "2020-01-01T00:00:00.000-05:00",
            "is_deprecated": False,
            "words": name.split("_"),
        }

    def _related(self, request: Request) -> Response:
        """Danbooru's ``RelatedTagQuery`` answer, its similarities computed over every post."""
        query = request.args.get("query", "").strip()
        limit = int(request.args.get("limit", str(RELATED_LIMIT)))
        tag_sets = [set(raw["tag_string"].split()) for raw in self.posts.values()]
        posts_with: Counter[str] = Counter(tag for tags in tag_sets for tag in tags)
        shared: Counter[str] = Counter(tag for tags in tag_sets if query in tags for tag in tags)
        size = posts_with[query]
        related = []
        for name, overlap in shared.items():
            other = posts_with[name]
            related.append(
                {
                    "tag": self._tag_json(name, posts_with),
                    "cosine_similarity": overlap / (size * other) ** 0.5,
                    "jaccard_similarity": overlap / (size + other - overlap),
                    "overlap_coefficient": overlap / min(size, other),
                    "frequency": overlap / size,
                }
            )
        related.sort(key=lambda item: (-item["cosine_similarity"], item["tag"]["name"]))
        return _json(
            {
                "query": query,
                "post_count": size,
                "tag": self._tag_json(query, posts_with) if size else None,
                "related_tags": related[:limit],
                "wiki_page_tags": [],
                "other_wikis": {},
            }
        )

    def _file(self, path: str) -> Response:
        found = self.files.get(path)
        if found is None:
            return Response("Not Found", status=404, content_type="text/html")
        post_id = found.post_id
        with self._lock:
            self.downloads[post_id] += 1
        hold = self._holds.get(post_id)
        if hold is not None:
            hold.entered.set()
            hold.release.wait(timeout=60)
        data = found.data
        with self._lock:
            truncate = self._truncate[post_id] > 0
            self._truncate[post_id] -= int(truncate)
            corrupt = self._corrupt[post_id] > 0
            self._corrupt[post_id] -= int(corrupt)
        if corrupt:
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        headers = {"Content-Length": str(len(data))}
        if truncate:
            return Response(_chunks(data[: len(data) // 2]), headers=headers, content_type=found.content_type)
        return Response(data, headers=headers, content_type=found.content_type)


def _chunks(data: bytes) -> Iterator[bytes]:
    yield data


def _matches(raw: dict[str, Any], terms: Sequence[str]) -> bool:
    tags = set(raw["tag_string"].split())
    for term in terms:
        if term.startswith("rating:"):
            if raw["rating"] not in term[len("rating:") :].split(","):
                return False
        elif term.startswith("-"):
            if term[1:] in tags:
                return False
        elif ":" in term:
            continue
        elif term not in tags:
            return False
    return True


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"success": False, "error": error, "message": message}, status, headers)
