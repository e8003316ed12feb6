"""A fake Hugging Face hub on loopback, speaking the protocol ``huggingface_hub.hf_hub_download`` uses.

``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` answer as the hub does: a small (git) file
with ``X-Repo-Commit``, a quoted git-blob ``ETag`` and ``Content-Length``; an LFS file (``model.onnx``)
with a redirect to a CDN on another origin carrying ``X-Linked-Etag`` (the sha256) and
``X-Linked-Size``. The CDN honours ``Range`` (206) so an interrupted download resumes. Errors carry the
hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``).
Switches: a gated repo (a token is required), a truncated download, a hub that is down.

:func:`wd14_repo_files` makes the content of a real-layout WD14 repo: a tiny ``model.onnx`` (through
``fixtures/generators/onnx_model.py``) and its ``selected_tags.csv``.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import onnx
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from fixtures.generators.onnx_model import Dense, build_wd14_onnx, write_selected_tags

#: The files the real WD14 repos keep in LFS.
#: The repo of ``wd14-vit-v2``, the tagger the hub tests serve.
VIT_V2_REPO = "SmilingWolf/wd-v1-4-vit-tagger-v2"
LFS_FILES = ("model.onnx",)
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_CDN = re.compile(r"^/lfs/(?P<sha256>[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(?P<start>\d+)-(?P<end>\d*)$")


@dataclass
class Seen:
    """One request the fake answered (``server`` is ``hub`` or ``cdn``)."""

    server: str
    method: str
    path: str
    authorization: str | None
    range: str | None
    status: int = 0


@dataclass
class FakeRepo:
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    lfs: frozenset[str] = frozenset(LFS_FILES)
    token: str | None = None


def git_blob_sha1(data: bytes) -> str:
    """What the hub uses as a small file's ETag: git's blob hash."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """A hub and its CDN, each an HTTP server in a thread on 127.0.0.1 (two origins, as for real)."""

    def __init__(self) -> None:
        self._hub = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self._cdn = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every repo, switch and request (tests share one running hub)."""
        with self._lock:
            self.repos: dict[str, FakeRepo] = {}
            self.blobs: dict[str, bytes] = {}
            self.requests: list[Seen] = []
            self._truncate = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._hub.expect_request(re.compile(".*")).respond_with_handler(self._handle_hub)
        self._cdn.expect_request(re.compile(".*")).respond_with_handler(self._handle_cdn)
        self._hub.start()
        self._cdn.start()

    def stop(self) -> None:
        for server in (self._hub, self._cdn):
            if server.is_running():
                server.stop()

    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The endpoint to put in ``HF_ENDPOINT``."""
        return f"http://127.0.0.1:{self._hub.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.port}"

    # -- content and switches --------------------------------------------------------------------

    def add_commit(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        refs: Sequence[str] = ("main",),
        lfs: Collection[str] = LFS_FILES,
    ) -> str:
        """Add a commit holding ``files`` and point ``refs`` (branches or tags) at it; returns its sha."""
        listing = "".join(f"{name}:{git_blob_sha1(data)}\n" for name, data in sorted(files.items()))
        commit = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()
        with self._lock:
            repo = self.repos.setdefault(repo_id, FakeRepo(lfs=frozenset(lfs)))
            repo.commits[commit] = dict(files)
            for ref in refs:
                repo.refs[ref] = commit
            for name, data in files.items():
                if name in repo.lfs:
                    self.blobs[hashlib.sha256(data).hexdigest()] = data
        return commit

    def require_token(self, repo_id: str, token: str) -> None:
        """Make ``repo_id`` gated: only ``Authorization: Bearer <token>`` may read it."""
        self.repos[repo_id].token = token

    def truncate_next(self, count: int = 1) -> None:
        """The CDN's next ``count`` downloads stop short (the connection drops)."""
        with self._lock:
            self._truncate = count

    def seen(self, server: str | None = None, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [
                s
                for s in self.requests
                if (server is None or s.server == server) and (method is None or s.method == method)
            ]

    # -- the hub ---------------------------------------------------------------------------------

    def _record(self, server: str, request: Request) -> Seen:
        seen = Seen(
            server,
            request.method,
            request.path,
            request.headers.get("Authorization"),
            request.headers.get("Range"),
        )
        with self._lock:
            self.requests.append(seen)
        return seen

    def _handle_hub(self, request: Request) -> Response:
        seen = self._record("hub", request)
        response = self._resolve(request)
        seen.status = response.status_code
        return response

    def _resolve(self, request: Request) -> Response:
        match = _RESOLVE.match(request.path)
        if match is None or request.method not in ("HEAD", "GET"):
            return _error(404, "EntryNotFound", "Not found")
        repo = self.repos.get(match["repo"])
        if repo is None:
            return _error(401, "RepoNotFound", "Repository not found")
        if repo.token is not None and request.headers.get("Authorization") != f"Bearer {repo.token}":
            return _error(401, "GatedRepo", "Access to this model is restricted")
        revision, filename = match["revision"], match["filename"]
        commit = repo.refs.get(revision, revision if revision in repo.commits else None)
        if commit is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        data = repo.commits[commit].get(filename)
        if data is None:
            return _error(404, "EntryNotFound", f"{filename} does not exist", {"X-Repo-Commit": commit})
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if filename in repo.lfs:
            sha256 = hashlib.sha256(data).hexdigest()
            headers |= {
                "Location": f"{self.cdn_url}/lfs/{sha256}",
                "X-Linked-Etag": f'"{sha256}"',
                "X-Linked-Size": str(len(data)),
                "ETag": f'"{git_blob_sha1(data)}"',
            }
            return Response(b"", status=302, headers=headers)
        headers["ETag"] = f'"{git_blob_sha1(data)}"'
        return _ranged(request, data, headers)

    # -- the CDN ---------------------------------------------------------------------------------

    def _handle_cdn(self, request: Request) -> Response:
        seen = self._record("cdn", request)
        match = _CDN.match(request.path)
        data = self.blobs.get(match["sha256"]) if match else None
        if data is None:
            response = Response("NoSuchKey", status=404)
        else:
            with self._lock:
                truncate = self._truncate > 0 and request.method == "GET"
                self._truncate -= int(truncate)
            response = _ranged(request, data, {"ETag": f'"{match["sha256"]}"' if match else ""}, truncate)
        seen.status = response.status_code
        return response


def _ranged(request: Request, data: bytes, headers: dict[str, str], truncate: bool = False) -> Response:
    """The whole file (200) or the asked ``Range`` (206); ``truncate`` sends 90 % and drops the line."""
    status, body = 200, data
    wanted = _RANGE.match(request.headers.get("Range", ""))
    if wanted:
        start = int(wanted["start"])
        end = int(wanted["end"]) if wanted["end"] else len(data) - 1
        if start >= len(data):
            return Response(b"", status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        body = data[start : end + 1]
        status = 206
        headers = headers | {"Content-Range": f"bytes {start}-{start + len(body) - 1}/{len(data)}"}
    headers = headers | {"Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
    if truncate:
        return Response(_once(body[: len(body) * 9 // 10]), status=status, headers=headers)
    return Response(body, status=status, headers=headers)


def _once(data: bytes) -> Iterator[bytes]:
    yield data


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        f'{{"error": "{message}"}}',
        status=status,
        headers={"X-Error-Code": code, "X-Error-Message": message, **(headers or {})},
        content_type="application/json",
    )


# -- a WD14 repo's content -------------------------------------------------------------------------

#: The tiny model's vocabulary after the four ratings (``selected_tags.csv`` order).
GENERAL_TAGS = ("simple_background", "red_background", "blue_background", "1girl")
CHARACTER_TAGS = ("hatsune_miku",)


def wd14_repo_files(
    *, fixed_batch: int | None = 1, size: int = 448, extra_tags: int = 0, padding: int = 0
) -> dict[str, bytes]:
    """``model.onnx`` + ``selected_tags.csv`` of a tiny tagger in SmilingWolf's exact layout.

    The model pools the picture to its channel means (BGR, 0..1) and answers, whatever the image:
    rating general (0.88 vs 0.5/0.27/0.12), ``simple_background`` 0.95, ``1girl`` 0.05 and the character
    ``hatsune_miku`` 0.5 (above the general cut-off, below the character one); ``red_background`` and
    ``blue_background`` follow the picture's red-minus-blue (about 0.95 for a red image, 0.0 for a blue
    one). ``extra_tags`` lengthens the tag list past the model's outputs (a mismatched pair);
    ``padding`` bytes of model metadata make the file big enough for a download to stop mid-way
    after ``huggingface_hub`` has written part of it (it writes 10 MB chunks).
    """
    names = ["general", "sensitive", "questionable", "explicit", *GENERAL_TAGS, *CHARACTER_TAGS]
    bias = np.array([2.0, 0.0, -1.0, -2.0, 3.0, -3.0, -3.0, -3.0, 0.0], dtype=np.float32)
    weight = np.zeros((3, len(names)), dtype=np.float32)
    blue, red = 0, 2
    weight[red, names.index("red_background")], weight[blue, names.index("red_background")] = 12, -12
    weight[blue, names.index("blue_background")], weight[red, names.index("blue_background")] = 12, -12
    with tempfile.TemporaryDirectory() as tmp:
        model, tags = Path(tmp, "model.onnx"), Path(tmp, "selected_tags.csv")
        build_wd14_onnx(model, [Dense(weight, bias)], pool=size, size=size, fixed_batch=fixed_batch)
        if padding:
            proto = onnx.load(str(model))
            onnx.helper.set_model_props(proto, {"padding": "x" * padding})
            onnx.save(proto, str(model))
        general = [*GENERAL_TAGS, *(f"extra_tag_{i}" for i in range(extra_tags))]
        write_selected_tags(tags, general, CHARACTER_TAGS)
        return {
            "model.onnx": model.read_bytes(),
            "selected_tags.csv": tags.read_bytes(),
            "README.md": b"---\nlicense: apache-2.0\n---\n# a tiny WD14-layout tagger for tests\n",
        }
