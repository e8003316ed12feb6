"""A large dataset of small images, made in seconds: the bundled demo posts, shrunk and repeated.

Post ``i`` is demo post ``i mod 48`` (its tags and rating) with the picture scaled to 64x64 and one
pixel set from ``i``, so every post has its own image bytes (and its own cache entries) while the demo
models still score it as they score the demo. ``python -m benchmarks.scale_dataset OUT.db 30000``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from pytest_tagger_showdown import Dataset, Post
from pytest_tagger_showdown.bundled import DEMO_DB

SIDE = 64
FIRST_ID = 1_000_000


def _shrink(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGBA").convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)


def _small_png(picture: Image.Image, index: int) -> bytes:
    small = picture.copy()
    small.putpixel((SIDE // 2, SIDE // 2), (index & 255, (index >> 8) & 255, (index >> 16) & 255))
    buffer = io.BytesIO()
    small.save(buffer, "PNG")
    return buffer.getvalue()


def write_scale_dataset(path: Path, count: int) -> Path:
    """``count`` posts of 64x64 PNGs (about 5 kB each) with the demo's tags and ratings at ``path``."""
    path.unlink(missing_ok=True)
    with Dataset(DEMO_DB) as demo:
        sources = [(post, _shrink(demo.image(post.id))) for post in demo.posts()]
    with Dataset(path, writable=True) as dataset:
        # A throwaway file: no fsync per post (each add_post is its own transaction).
        dataset._conn.execute("PRAGMA synchronous = OFF")
        dataset._conn.execute("PRAGMA journal_mode = MEMORY")
        for index in range(count):
            source, picture = sources[index % len(sources)]
            image = _small_png(picture, index)
            post = Post(
                id=FIRST_ID + index,
                md5=hashlib.md5(image).hexdigest(),
                rating=source.rating,
                file_ext="png",
                tags=source.tags,
                width=SIDE,
                height=SIDE,
                file_size=len(image),
            )
            dataset.add_post(post, {"id": post.id, "rating": post.rating}, image)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("count", type=int)
    args = parser.parse_args(argv)
    write_scale_dataset(args.path, args.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
