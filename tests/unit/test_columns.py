"""Per-post results stored column-wise (results format 2), packed inside saved benchmark runs, and
format 1 documents still read."""

from __future__ import annotations

import json
import math

from pytest_tagger_showdown.columns import dumps, pack, post_rows
from pytest_tagger_showdown.results import PostResult, results_document, summarize_all
from tests.helpers.results import result


def some_results() -> list[PostResult]:
    errored = PostResult(tagger="u", post_id=3, rating="q", score=None, error="post3-q: broken image")
    return [result(2, 2, 1, 3, rating_ok=False), result(1, 1, 1, 3, tagger="u"), result(1, 3, 0, 3), errored]


def test_a_document_stores_columns_and_reads_back_the_rows_of_format_1() -> None:
    results = some_results()
    distance = {("t", 1): 0.75, ("u", 1): 1 / 3}
    document = results_document(
        results, summarize_all(results), dataset="d", categories=["general"], distance_scores=distance
    )
    assert document["format"] == 2
    columns = document["posts"]["columns"]
    assert columns["post_id"] == [1, 2, 1, 3]  # tagger, then post id
    assert "score" not in columns  # derived from the counts when read
    ordered = sorted(results, key=lambda r: (r.tagger, r.post_id))
    # What format 1 stored: every result's dict (derived fields included) plus its distance score.
    format_1 = [{**r.to_dict(), "distance_score": distance.get((r.tagger, r.post_id))} for r in ordered]
    rows = post_rows(document)
    assert rows == post_rows({"format": 1, "posts": format_1})
    assert rows[1]["score"] == (2 - 1) / 3  # post 2 of t: 2 right, 1 wrong of 3
    assert rows[1]["f1"] == ordered[1].score.f1  # type: ignore[union-attr]
    assert rows[3]["score"] is None
    assert rows[3]["error"] == "post3-q: broken image"
    assert [PostResult.from_dict(row) for row in rows] == ordered


def test_packed_columns_read_back_bit_for_bit_and_are_small() -> None:
    results = [result(i, i % 7, i % 3, 9, tagger=f"t{i % 2}") for i in range(1, 3001)]
    document = results_document(results, [], dataset="d", categories=["general"], distance_scores={})
    document["posts"]["columns"]["inference_s"] = [math.pi * i / 7e5 for i in range(3000)]
    packed = {**document, "posts": pack(document["posts"])}
    assert post_rows(packed) == post_rows(document)
    assert len(json.dumps(packed["posts"])) < 40 * 3000  # bytes per result, all fields


def test_a_written_document_has_one_line_per_column() -> None:
    def written(count: int) -> str:
        results = [result(i, i % 4, i % 3, 5, tagger=f"t{i % 2}") for i in range(1, count + 1)]
        return dumps(results_document(results, summarize_all(results), dataset="d", categories=["general"]))

    small, large = written(12), written(1200)
    assert len(large.splitlines()) == len(small.splitlines())  # not one line per post
    assert json.loads(large)["posts"]["columns"]["post_id"] == [*range(2, 1201, 2), *range(1, 1200, 2)]


def test_a_document_without_posts_has_no_rows() -> None:
    assert post_rows({}) == []
    assert post_rows({"format": 1, "posts": []}) == []
