"""Danbooru's tag aliases: a tagger trained before a rename predicts the old name of a right tag."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from pytest_tagger_showdown import Dataset, Post, Prediction, TaggerSpec
from pytest_tagger_showdown.analysis import analyse_run
from pytest_tagger_showdown.engine import Engine
from pytest_tagger_showdown.pool import TaggerPool
from pytest_tagger_showdown.probabilities import ProbabilityCollector, RowEncoder
from pytest_tagger_showdown.results import PostResult
from pytest_tagger_showdown.taggers.registry import TaggerRegistry
from pytest_tagger_showdown.vocabulary import Vocabulary
from tests.helpers.datasets import G, PostSpec, make_dataset


class OldVocabularyTagger:
    """A model trained before Danbooru renamed ``kitty_ears`` to ``cat_ears``: it answers
    ``kitty_ears`` and ``solo`` on every post, rating g."""

    spec = TaggerSpec(name="old", backend="test")
    vocabulary = Vocabulary(("general", "kitty_ears", "solo", "1girl"), (9, 0, 0, 0))

    def prepare(self, post: Post, image: bytes) -> object:
        return post

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        row = np.array([0.9, 0.8, 0.7, 0.2], dtype=np.float32)
        return [
            Prediction(tags={"kitty_ears": 0.8, "solo": 0.7}, rating="g", probabilities=row) for _ in batch
        ]


def _run(db: Path) -> tuple[list[PostResult], dict[str, object]]:
    engine = Engine(TaggerPool(TaggerRegistry()), db)
    tagger, encoder, collector = OldVocabularyTagger(), RowEncoder(), ProbabilityCollector()
    try:
        with Dataset(db) as dataset:
            posts = dataset.posts()
        results = [engine.run(post, tagger) for post in posts]
        for result in results:
            message = encoder.encode(tagger, result)
            assert message is not None
            collector.add(message)
        analysis = analyse_run(
            results, collector, posts, dataset=str(db), categories=["general"], aliases=engine.aliases()
        )
    finally:
        engine.close()
    return results, dict(analysis.document)


@pytest.mark.parametrize("with_aliases", [True, False], ids=["with-aliases", "without"])
def test_an_old_tag_name_counts_right_with_aliases_and_wrong_without(
    tmp_path: Path, with_aliases: bool
) -> None:
    db = make_dataset(
        tmp_path / "data.db",
        [PostSpec(1, "g", {"cat_ears": G, "solo": G}), PostSpec(2, "g", {"solo": G, "1girl": G})],
    )
    if with_aliases:
        with Dataset(db, writable=True) as dataset:
            dataset.add_tag_relations("alias", [("kitty_ears", "cat_ears"), ("unused_old", "unused")])
    results, document = _run(db)
    first, second = results
    assert first.score is not None
    assert second.score is not None
    metrics = document["metrics"]["old"]["overall"]  # type: ignore[index]
    if with_aliases:
        # Post 1: cat_ears, solo, rating right of 3; post 2: solo and rating right, cat_ears wrong.
        assert first.predicted == ("cat_ears", "solo")
        assert (first.score.correct, first.score.incorrect, first.score.score) == (3, 0, 1.0)
        assert (second.score.correct, second.score.incorrect) == (2, 1)
        assert [first.renamed, second.renamed] == [1, 1]
        assert document["aliases"] == {"applied": True, "count": 2, "renamed_predictions": {"old": 2}}
        assert document["taggers"]["old"]["renamed_by_aliases"] == 2  # type: ignore[index]
        # Cells over [rating:g, cat_ears, solo, 1girl]: predicted 6, true 6, right 5.
        assert metrics["micro"]["precision"] == pytest.approx(5 / 6)
        assert metrics["micro"]["recall"] == pytest.approx(5 / 6)
    else:
        assert first.predicted == ("kitty_ears", "solo")
        assert (first.score.correct, first.score.incorrect, first.score.score) == (2, 1, 1 / 3)
        assert [first.renamed, second.renamed] == [0, 0]
        assert document["aliases"] == {"applied": False, "count": 0, "renamed_predictions": {"old": 0}}
        # kitty_ears is a column nobody has; cat_ears is outside the vocabulary: right 4 of 6 predicted.
        assert metrics["micro"]["precision"] == pytest.approx(4 / 6)
