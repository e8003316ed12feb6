"""The compact probability rows, their collection into per-tagger stores, and the .npz round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_tagger_showdown.errors import ShowdownError, TaggerLoadError
from pytest_tagger_showdown.metrics import evaluate_store, tag_counts
from pytest_tagger_showdown.probabilities import (
    FLOOR,
    SOURCE_KEPT_TAGS,
    SOURCE_PROBABILITIES,
    ProbabilityCollector,
    RowEncoder,
    compact_row,
    decode_row,
    encode_row,
    load_stores,
    save_stores,
    stored_row_and_columns,
)
from pytest_tagger_showdown.results import PostResult
from pytest_tagger_showdown.scoring import ShowdownScore
from pytest_tagger_showdown.taggers.control import ControlTagger
from pytest_tagger_showdown.taggers.spec import TaggerSpec
from pytest_tagger_showdown.vocabulary import Vocabulary

#: A WD14-style tag list: four ratings (category 9), general tags (0), a character (4).
NAMES = ("general", "sensitive", "questionable", "explicit", "long hair", "cat", "hatsune_miku")
CATEGORIES = (9, 9, 9, 9, 0, 0, 4)
#: A tagger with that tag list (the control tagger has none of its own).
MODEL = ControlTagger(TaggerSpec(name="model", backend="control"))
MODEL.vocabulary = Vocabulary(NAMES, CATEGORIES)


def result(
    post_id: int, rating: str, truth: tuple[str, ...], row: list[float] | None, **kw: object
) -> PostResult:
    return PostResult(
        tagger="t",
        post_id=post_id,
        rating=rating,
        score=ShowdownScore(1, 0, len(truth) - 1, len(truth), True),
        truth=truth,
        probabilities=None if row is None else np.asarray(row, dtype=np.float32),
        **kw,  # type: ignore[arg-type]
    )


def test_row_round_trip_keeps_float16_values_above_the_floor() -> None:
    row = np.array([0.5, 0.004, 0.01, 0.99999, 0.0, 0.3333], dtype=np.float32)
    encoded = encode_row(row, floor=0.01)
    json.dumps(encoded)  # travels as JSON-safe text
    columns, values = decode_row(encoded)
    assert columns.tolist() == [0, 2, 3, 5]
    np.testing.assert_array_equal(values, row[[0, 2, 3, 5]].astype(np.float16).astype(np.float32))
    assert len(encoded["columns"]) + len(encoded["values"]) < 40  # 4 cells: a few bytes, not 6 floats


def test_encoder_sends_the_vocabulary_once_and_skips_taggers_without_one() -> None:
    encoder = RowEncoder()
    first = encoder.encode(MODEL, result(1, "g", ("cat", "rating:g"), [0.9, 0.1, 0, 0, 0.2, 0.8, 0]))
    second = encoder.encode(MODEL, result(2, "g", ("cat", "rating:g"), [0.9, 0.1, 0, 0, 0.2, 0.8, 0]))
    assert first is not None
    assert second is not None
    assert first["names"][4] == "long_hair"
    assert "names" not in second
    assert first["vocabulary"] == second["vocabulary"]
    control = ControlTagger(TaggerSpec(name="c", backend="control"))
    assert RowEncoder().encode(control, result(3, "g", ("rating:g",), [0.5] * 7)) is None
    assert encoder.encode(MODEL, result(3, "g", ("rating:g",), None)) is None
    assert encoder.encode(MODEL, result(3, "g", ("rating:g",), [0.5] * 3)) is None  # wrong length


def collected() -> tuple[ProbabilityCollector, list[PostResult]]:
    encoder = RowEncoder()
    collector = ProbabilityCollector()
    results = [
        result(
            1, "g", ("cat", "long_hair", "some_artist", "rating:g"), [0.9, 0.1, 0, 0, 0.6, 0.4, 0],
            predicted=("long_hair", "cat"), predicted_rating="g",
        ),
        result(
            2, "e", ("hatsune_miku", "rating:e"), [0.2, 0.1, 0.3, 0.7, 0.3, 0.05, 0.95],
            predicted=("hatsune_miku",), predicted_rating="e",
        ),
    ]  # fmt: skip
    for r in reversed(results):  # arrival order does not matter
        message = encoder.encode(MODEL, r)
        assert message is not None
        collector.add(json.loads(json.dumps(message)))
    return collector, results


def test_collector_builds_the_matrices_of_a_tagger() -> None:
    collector, results = collected()
    store = collector.build("t", results)
    assert store.source == SOURCE_PROBABILITIES
    assert store.post_ids.tolist() == [1, 2]
    assert store.ratings == ("g", "e")
    truth = store.truth.to_dense()
    assert truth[0].tolist() == [1, 0, 0, 0, 1, 1, 0]
    assert truth[1].tolist() == [0, 0, 0, 1, 0, 0, 1]
    assert store.truth_outside == 1  # some_artist: not in the vocabulary
    assert store.predicted.to_dense()[0].tolist() == [1, 0, 0, 0, 1, 1, 0]
    np.testing.assert_allclose(store.scores.to_dense()[1], [0.2, 0.1, 0.3, 0.7, 0.3, 0.05, 0.95], atol=1e-3)
    general_only = collector.build("t", results, scored_categories={"general"})
    assert general_only.vocabulary.names == (
        *("rating:g", "rating:s", "rating:q", "rating:e"),
        *("long_hair", "cat"),
    )


def test_tagger_without_rows_falls_back_to_its_kept_tags() -> None:
    collector = ProbabilityCollector()
    results = [
        result(1, "g", ("cat", "rating:g"), None, predicted=("cat", "dog"), predicted_rating="g"),
        result(2, "q", ("cat", "rating:q"), None, predicted=(), predicted_rating="g"),
    ]
    store = collector.build("t", results, tag_categories={"cat": "general"})
    assert store.source == SOURCE_KEPT_TAGS
    assert store.vocabulary.names == ("cat", "dog", "rating:g", "rating:q")
    assert store.vocabulary.labels == ("general", "general", "rating", "rating")
    # 'g' on a general post is the right rating; on a questionable post it is wrong.
    assert store.predicted.to_dense().tolist() == [[1, 1, 1, 0], [0, 0, 1, 0]]
    np.testing.assert_array_equal(store.scores.to_dense(), store.predicted.to_dense())
    metrics = evaluate_store(store)
    assert metrics.overall.micro.precision == pytest.approx(2 / 4)
    assert metrics.overall.micro.recall == pytest.approx(2 / 4)


#: DeepDanbooru's rating outputs: pre-2022 ``safe`` (today's g or s), questionable, explicit.
DD_MODEL = ControlTagger(TaggerSpec(name="dd", backend="control"))
DD_MODEL.vocabulary = Vocabulary(
    ("rating:safe", "rating:questionable", "rating:explicit", "cat"), (9, 9, 9, 0)
)


def test_a_right_safe_is_a_true_positive_of_the_merged_g_s_class() -> None:
    """As in the per-post score: ``safe`` is right on g and s posts, wrong on q and e posts."""
    encoder, collector = RowEncoder(), ProbabilityCollector()
    results = [
        result(
            1, "g", ("cat", "rating:g"), [0.9, 0.05, 0.01, 0.8], predicted=("cat",), predicted_rating="safe"
        ),
        result(2, "s", ("rating:s",), [0.7, 0.2, 0.01, 0.1], predicted=(), predicted_rating="safe"),
        result(
            3, "q", ("cat", "rating:q"), [0.6, 0.3, 0.1, 0.9], predicted=("cat",), predicted_rating="safe"
        ),
    ]
    for item in results:
        message = encoder.encode(DD_MODEL, item)
        assert message is not None
        collector.add(message)
    store = collector.build("t", results)
    assert store.source == SOURCE_PROBABILITIES
    assert store.vocabulary.names == ("rating:safe", "rating:q", "rating:e", "cat")
    assert store.truth.to_dense().tolist() == [[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 1]]
    assert store.predicted.to_dense().tolist() == [[1, 0, 0, 1], [1, 0, 0, 0], [1, 0, 0, 1]]
    assert store.truth_outside == 0
    counts = tag_counts(store.truth, store.predicted)
    assert counts.true_positives.tolist() == [2, 0, 0, 2]
    assert counts.false_positives.tolist() == [1, 0, 0, 0]
    assert counts.false_negatives.tolist() == [0, 1, 0, 0]
    # The same holds without probabilities (hydrus-dd answers only kept tags).
    fallback = ProbabilityCollector().build("t", results, tag_categories={"cat": "general"})
    assert fallback.vocabulary.names == ("cat", "rating:q", "rating:safe")
    assert tag_counts(fallback.truth, fallback.predicted).true_positives.tolist() == [2, 0, 2]


def test_errored_posts_are_left_out(tmp_path: Path) -> None:
    collector, results = collected()
    errored = PostResult(tagger="t", post_id=3, rating="q", score=None, error="broken")
    store = collector.build("t", [*results, errored])
    assert store.post_ids.tolist() == [1, 2]


def test_stores_round_trip_through_npz(tmp_path: Path) -> None:
    collector, results = collected()
    stores = [collector.build("t", results), ProbabilityCollector().build("t", results)]
    path = tmp_path / "run.probabilities.npz"
    save_stores(path, stores)
    loaded = load_stores(path)
    assert [s.tagger for s in loaded] == ["t", "t"]
    for before, after in zip(stores, loaded, strict=True):
        assert after.vocabulary == before.vocabulary
        assert after.ratings == before.ratings
        assert after.truth_outside == before.truth_outside
        np.testing.assert_array_equal(after.post_ids, before.post_ids)
        for a, b in zip(after.matrices, before.matrices, strict=True):
            np.testing.assert_array_equal(a.to_dense(), b.to_dense().astype(np.float16).astype(np.float32))
    assert evaluate_store(loaded[0]).to_dict() == evaluate_store(stores[0]).to_dict()


def test_a_store_with_an_unknown_category_label_is_a_readable_error(tmp_path: Path) -> None:
    collector, results = collected()
    path = tmp_path / "run.probabilities.npz"
    save_stores(path, [collector.build("t", results)])
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["t0_categories"] = np.asarray(["species"] * arrays["t0_names"].size)
    np.savez(path, **arrays)
    with pytest.raises(ShowdownError, match="unknown tag category label 'species'"):
        load_stores(path)


class _Unloadable:
    """A lazy tagger whose model cannot load: asking for its vocabulary raises."""

    @property
    def vocabulary(self) -> object:
        raise TaggerLoadError("model.onnx does not exist")


def test_encoder_never_loads_a_tagger_for_a_result_without_probabilities() -> None:
    encoder = RowEncoder()
    errored = PostResult(tagger="t", post_id=1, rating="g", score=None, error="cannot load")
    assert encoder.encode(_Unloadable(), errored) is None
    assert encoder.encode(_Unloadable(), result(2, "g", ("rating:g",), [0.5] * 7)) is None


@given(
    st.lists(
        st.one_of(st.sampled_from((0.0, 0.0099, FLOOR, 0.0101, 1.0)), st.floats(0, 1, width=32)), max_size=60
    )
)
def test_a_rows_known_columns_give_the_message_and_compact_form_of_a_full_scan(values: list[float]) -> None:
    """The row message and the cache's compact form from the stored columns a prediction carries
    are those of scanning the stored row again (issue 14: found once per post, not three times)."""
    row, columns = stored_row_and_columns(np.asarray(values, dtype=np.float32))
    np.testing.assert_array_equal(columns, np.flatnonzero(row >= FLOOR))
    assert encode_row(row, FLOOR, columns) == encode_row(row)
    for known, scanned in zip(compact_row(row, FLOOR, columns), compact_row(row), strict=True):
        assert known.dtype == scanned.dtype
        np.testing.assert_array_equal(known, scanned)


def test_the_encoder_reuses_a_results_stored_columns_only_at_the_floor_they_were_found_at() -> None:
    """Columns kept at :data:`FLOOR` say nothing about another floor: that encoder scans the row."""
    row = np.asarray([0.9, 0.1, 0, 0, 0.02, 0.5, 0.005], dtype=np.float32)
    stored, columns = stored_row_and_columns(row)
    carried = dataclasses.replace(
        result(1, "g", ("cat", "rating:g"), None), probabilities=stored, stored_columns=columns
    )
    plain = dataclasses.replace(carried, stored_columns=None)
    for floor in (FLOOR, 0.05):
        with_columns = RowEncoder(floor).encode(MODEL, carried)
        without = RowEncoder(floor).encode(MODEL, plain)
        assert with_columns is not None
        assert with_columns == without
        assert decode_row(with_columns["row"])[0].tolist() == ([0, 1, 4, 5] if floor == FLOOR else [0, 1, 5])
