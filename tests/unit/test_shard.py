"""--showdown-shard K/N: which posts each shard takes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_tagger_showdown import Post
from pytest_tagger_showdown.shard import Shard, parse_shard


def posts_of(ids_and_ratings: list[tuple[int, str]]) -> list[Post]:
    return [Post(id=i, md5="0" * 32, rating=r, file_ext="png", tags={}) for i, r in ids_and_ratings]


@given(
    st.dictionaries(st.integers(1, 10**7), st.sampled_from("gsqe"), max_size=60),
    st.integers(1, 7),
    st.randoms(use_true_random=False),
)
def test_shards_split_every_rating_evenly_and_cover_each_post_once(
    ratings: dict[int, str], count: int, rng: random.Random
) -> None:
    posts = posts_of(list(ratings.items()))
    shards = [Shard(index, count).select(posts) for index in range(1, count + 1)]
    chosen = [post.id for shard in shards for post in shard]
    assert sorted(chosen) == sorted(ratings)  # every post once
    for rating in "gsqe":
        sizes = [sum(1 for post in shard if post.rating == rating) for shard in shards]
        assert max(sizes) - min(sizes) <= 1
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    shuffled = list(posts)
    rng.shuffle(shuffled)
    # Depends on the ids alone, not on the order the dataset lists them in.
    assert [Shard(i, count).select(shuffled) for i in range(1, count + 1)] == shards


def test_shard_k_takes_every_nth_post_by_rating_and_id_from_the_kth() -> None:
    posts = posts_of([(10, "g"), (11, "s"), (12, "g"), (13, "g"), (14, "s"), (15, "g"), (16, "s")])
    # By rating, then id: g 10, 12, 13, 15, s 11, 14, 16; every second from the first and the second.
    assert [p.id for p in Shard(1, 2).select(posts)] == [10, 11, 13, 16]
    assert [p.id for p in Shard(2, 2).select(posts)] == [12, 14, 15]


@pytest.mark.parametrize(("text", "expected"), [("2/3", Shard(2, 3)), (" 1 / 1 ", Shard(1, 1)), ("", None)])
def test_parse_shard(text: str, expected: Shard | None) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/3", "K must be between 1 and N"),
        ("4/3", "K must be between 1 and N"),
        ("2", "must be K/N"),
        ("a/b", "K/N"),
    ],
)
def test_a_malformed_shard_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(text)
