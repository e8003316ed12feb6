"""Per-post results built from their counts, for tests of what is computed from them."""

from __future__ import annotations

from pytest_tagger_showdown.results import PostResult
from pytest_tagger_showdown.scoring import ShowdownScore


def result(
    post_id: int,
    correct: int,
    incorrect: int,
    truth: int,
    *,
    tagger: str = "t",
    rating_ok: bool | None = True,
) -> PostResult:
    """Post ``post_id`` (rating g) with ``correct`` of ``truth`` tags found and ``incorrect`` extra ones."""
    return PostResult(
        tagger=tagger,
        post_id=post_id,
        rating="g",
        score=ShowdownScore(correct, incorrect, truth - correct, truth, rating_ok),
        preprocess_s=0.01,
        inference_s=0.03,
    )
