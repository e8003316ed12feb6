"""A run split over machines: ``--showdown-shard K/N`` and which posts shard K of N takes.

The rule (written once, here): the posts sorted by rating, then id, and shard K takes every N-th post
of that sequence starting at the (K-1)-th. Every post lands in exactly one shard; each shard's share
of every rating, and of the whole, differs from another's by at most one post (the count carries over
from one rating to the next, so the remainders do not all fall on the first shards); and the split
depends on nothing but the posts' ids and ratings, so machines that never talk to each other agree.
``tagger-showdown merge`` joins the shards' runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .dataset.post import Post


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, posts: Sequence[Post]) -> list[Post]:
        """This shard's posts, in id order: of the posts sorted by (rating, id), every ``count``-th
        from position ``index - 1``."""
        ordered = sorted(posts, key=lambda p: (p.rating, p.id))
        return sorted(ordered[self.index - 1 :: self.count], key=lambda p: p.id)


def parse_shard(text: str | None) -> Shard | None:
    """``K/N`` with 1 <= K <= N (``2/3``: the second of three shards); empty means no sharding.
    Raises ValueError naming the bad value."""
    if text is None or not str(text).strip():
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if match is None:
        raise ValueError(f"--showdown-shard must be K/N (e.g. 2/3: the second of three shards), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count:
        raise ValueError(f"--showdown-shard {text.strip()}: K must be between 1 and N")
    return Shard(index, count)
