"""The engine: same results as a plain run, batches, prefetching, caches, failures, bounded memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_tagger_showdown import Dataset, Post, Prediction, TaggerSpec
from pytest_tagger_showdown.cache import ShowdownCache
from pytest_tagger_showdown.engine import Engine, LazyTagger, auto_batch_size
from pytest_tagger_showdown.pool import TaggerPool
from pytest_tagger_showdown.results import PostResult, post_result
from pytest_tagger_showdown.taggers import preprocess
from pytest_tagger_showdown.taggers.backends import register_backends
from pytest_tagger_showdown.taggers.base import Tagger, TaggerBase
from pytest_tagger_showdown.taggers.control import ControlTagger
from pytest_tagger_showdown.taggers.registry import TaggerRegistry
from pytest_tagger_showdown.taggers.spec import Thresholds
from pytest_tagger_showdown.tags import TagCategory
from tests.helpers.datasets import png_bytes, varied_dataset
from tests.helpers.modelmaker import TINY_GENERAL, make_wd14_folder, write_tiny_tagger

TINY = "tiny"


def registry_with(folder: Path) -> TaggerRegistry:
    registry = TaggerRegistry()
    register_backends(registry)
    registry.register(TaggerSpec(name=TINY, backend="onnx", source=str(folder)))
    registry.register(TaggerSpec(name="control", backend="control"))
    return registry


class CountingPool(TaggerPool):
    """Counts model loads, to show that a warm run never loads the model."""

    def __init__(self, registry: TaggerRegistry, thresholds: Sequence[Any] = ()) -> None:
        super().__init__(registry, thresholds=thresholds)
        self.loads: list[str] = []

    def get(self, name: str) -> Any:
        self.loads.append(name)
        return super().get(name)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_tiny_tagger(tmp_path / "model")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return varied_dataset(tmp_path / "data.db")


@pytest.fixture
def posts(db: Path) -> list[Post]:
    with Dataset(db) as dataset:
        return dataset.posts()


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every image decode the WD14 tagger does (from any thread), as the thread id that did it."""
    seen: list[int] = []
    original = preprocess.decode_image

    def counting(data: bytes) -> Any:
        seen.append(threading.get_ident())
        return original(data)

    monkeypatch.setattr("pytest_tagger_showdown.taggers.wd14.decode_image", counting)
    return seen


@pytest.fixture
def make_engine(model: Path, db: Path, tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(*, cache: bool = True, pool: TaggerPool | None = None, **kwargs: Any) -> Engine:
        engine = Engine(
            pool or CountingPool(registry_with(model)),
            db,
            cache=ShowdownCache(tmp_path / "cache") if cache else None,
            **kwargs,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def run_all(engine: Engine, posts: Sequence[Post], name: str = TINY) -> list[PostResult]:
    engine.plan((name, post) for post in posts)
    tagger = engine.tagger(name)
    return [engine.run(post, tagger) for post in posts]


def plain_run(tagger: Tagger, db: Path, posts: Sequence[Post]) -> list[PostResult]:
    """The oracle: each post prepared, inferred alone and scored, no pipeline, cache or batch."""
    with Dataset(db) as dataset:
        return [
            post_result(
                TINY, post, TagCategory, tagger.infer([tagger.prepare(post, dataset.image(post.id))])[0]
            )
            for post in posts
        ]


def plain_results(model: Path, db: Path, posts: Sequence[Post]) -> list[PostResult]:
    return plain_run(TaggerPool(registry_with(model)).get(TINY), db, posts)


def same_scores(left: Sequence[PostResult], right: Sequence[PostResult]) -> None:
    assert [(r.post_id, r.score, r.predicted, r.predicted_rating) for r in left] == [
        (r.post_id, r.score, r.predicted, r.predicted_rating) for r in right
    ]
    for a, b in zip(left, right, strict=True):
        assert a.probabilities is not None
        assert b.probabilities is not None
        np.testing.assert_array_equal(a.probabilities, b.probabilities)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_results_equal_a_plain_run(
    make_engine: Callable[..., Engine], model: Path, db: Path, posts: list[Post], batch_size: int
) -> None:
    expected = plain_results(model, db, posts)
    assert len({r.predicted for r in expected}) > 2, "the tiny model should tell the images apart"
    results = run_all(make_engine(cache=False, batch_size=batch_size), posts)
    same_scores(results, expected)
    assert not any(r.cached for r in results)


def test_a_batch_runs_once_and_each_post_gets_its_share(
    make_engine: Callable[..., Engine], posts: list[Post]
) -> None:
    engine = make_engine(cache=False, batch_size=4)
    measured: list[int] = []

    def measure(infer: Callable[[], list[Prediction]]) -> list[Prediction]:
        predictions = infer()
        measured.append(len(predictions))
        return predictions

    engine.plan((TINY, post) for post in posts)
    tagger = engine.tagger(TINY)
    results = [engine.run(post, tagger, measure=measure) for post in posts]
    # 10 posts in batches of 4: the items that run a batch measure 4, 4 and 2 predictions; the others
    # are measured serving their one share.
    assert measured == [4, 1, 1, 1, 4, 1, 1, 1, 2, 1]
    shares = [r.inference_s for r in results]
    assert shares[0] == shares[1] == shares[2] == shares[3]
    assert shares[8] == shares[9]


def test_prefetching_decodes_in_background_threads_within_the_window(
    make_engine: Callable[..., Engine], posts: list[Post], decodes: list[int]
) -> None:
    engine = make_engine(cache=False, workers=2, window=3)
    engine.plan((TINY, post) for post in posts)
    deadline = time.monotonic() + 10
    while len(decodes) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(decodes) == 3, "no more than the window is prepared ahead"
    tagger = engine.tagger(TINY)
    engine.run(posts[0], tagger)
    assert threading.get_ident() not in decodes, "decoding happens off the calling thread"
    for post in posts[1:]:
        engine.run(post, tagger)
    assert len(decodes) == len(posts), "each image is decoded exactly once"


class ReadingThreads(ShowdownCache):
    """A real cache that notes which thread reads each prepared input."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.readers: list[str] = []

    def get_input(self, key: str) -> Any:
        self.readers.append(threading.current_thread().name)
        return super().get_input(key)


def test_a_cpu_models_cached_inputs_are_read_by_the_thread_that_runs_it(
    tmp_path: Path, model: Path, db: Path, posts: list[Post], decodes: list[int]
) -> None:
    """Issue 14: background threads reading cached inputs slowed onnxruntime on 2 cores; for a model
    on the CPU the calling thread reads them, between inferences, and the results do not change."""
    run_all(Engine(TaggerPool(registry_with(model)), db, cache=ShowdownCache(tmp_path / "c")), posts)
    decoded = len(decodes)
    other_model = write_tiny_tagger(tmp_path / "other", seed=1)  # same preprocessing: inputs cached
    cache = ReadingThreads(tmp_path / "c")
    engine = Engine(TaggerPool(registry_with(other_model)), db, cache=cache, workers=2)
    try:
        results = run_all(engine, posts)
    finally:
        engine.close()
    assert len(decodes) == decoded, "every input came from the cache"
    assert not any(r.cached for r in results), "a new model: no cached prediction"
    same_scores(results, plain_results(other_model, db, posts))
    # Until the model has loaded (the first item) a background thread may read ahead; after it, none.
    background = [name for name in cache.readers[3:] if name != threading.current_thread().name]
    assert len(cache.readers) == len(posts)
    assert background == []


def test_skipped_and_unplanned_requests_still_get_their_own_results(
    make_engine: Callable[..., Engine], model: Path, db: Path, posts: list[Post]
) -> None:
    expected = {r.post_id: r for r in plain_results(model, db, posts)}
    engine = make_engine(cache=False, window=2, batch_size=2)
    engine.plan((TINY, post) for post in posts[:6])
    tagger = engine.tagger(TINY)
    # Items 0, 2 and 3 are skipped; 9 was never planned; 1 is asked for twice.
    order = [posts[1], posts[4], posts[9], posts[5], posts[1]]
    results = [engine.run(post, tagger) for post in order]
    same_scores(results, [expected[post.id] for post in order])


def assert_only_the_corrupt_post_failed(results: Sequence[PostResult]) -> None:
    """Post 103 of ``varied_dataset(..., corrupt=103)`` fails with the decode error; no other does."""
    errors = {r.post_id: r.error for r in results if r.error}
    assert list(errors) == [103]
    assert errors[103] is not None
    assert errors[103].startswith("post103-e: cannot decode the image (12 bytes)")


def test_a_corrupt_image_fails_only_its_own_post_and_is_not_cached(
    tmp_path: Path, make_engine: Callable[..., Engine], model: Path
) -> None:
    db = varied_dataset(tmp_path / "corrupt.db", 6, corrupt=103)
    with Dataset(db) as dataset:
        posts = dataset.posts()
    for attempt in range(2):
        engine = Engine(CountingPool(registry_with(model)), db, cache=ShowdownCache(tmp_path / "cache"))
        try:
            results = run_all(engine, posts)
        finally:
            engine.close()
        assert_only_the_corrupt_post_failed(results)
        assert [r.cached for r in results if not r.error] == [attempt == 1] * 5


@pytest.mark.parametrize("batch_size", [1, 3])
def test_decoding_processes_give_a_plain_runs_results(
    make_engine: Callable[..., Engine],
    model: Path,
    db: Path,
    posts: list[Post],
    decodes: list[int],
    batch_size: int,
    tmp_path: Path,
) -> None:
    expected = plain_results(model, db, posts)
    decodes.clear()
    engine = make_engine(batch_size=batch_size, processes=2)
    results = run_all(engine, posts)
    same_scores(results, expected)
    assert decodes == [], "every image is decoded in the worker processes"
    assert all(r.preprocess_s is not None and r.preprocess_s > 0 for r in results)
    # The inputs they cached are the in-process ones: another model with the same preprocessing
    # reads them (nothing decoded) and gives what it gives on the in-process inputs.
    other = write_tiny_tagger(tmp_path / "other", seed=1)
    rerun = run_all(make_engine(pool=CountingPool(registry_with(other)), processes=0), posts)
    assert decodes == []
    same_scores(rerun, plain_results(other, db, posts))


def test_a_corrupt_image_in_a_decoding_process_fails_only_its_own_post(tmp_path: Path, model: Path) -> None:
    db = varied_dataset(tmp_path / "corrupt.db", 6, corrupt=103)
    with Dataset(db) as dataset:
        posts = dataset.posts()
    engine = Engine(CountingPool(registry_with(model)), db, cache=None, processes=2)
    try:
        results = run_all(engine, posts)
    finally:
        engine.close()
    assert_only_the_corrupt_post_failed(results)


def test_processes_must_not_be_negative(model: Path, db: Path) -> None:
    with pytest.raises(ValueError, match="processes must be 0 or more, got -1"):
        Engine(TaggerPool(registry_with(model)), db, processes=-1)


def test_a_warm_run_is_served_from_the_cache_without_loading_the_model(
    make_engine: Callable[..., Engine], model: Path, posts: list[Post], decodes: list[int]
) -> None:
    cold = run_all(make_engine(), posts)
    assert len(decodes) == len(posts)
    pool = CountingPool(registry_with(model))
    warm = run_all(make_engine(pool=pool), posts)
    assert pool.loads == []
    assert len(decodes) == len(posts), "nothing decoded again"
    same_scores(warm, cold)
    assert all(r.cached for r in warm)
    assert not any(r.cached for r in cold)
    # The times reported are those measured when the predictions were computed.
    assert [(r.preprocess_s, r.inference_s) for r in warm] == [(r.preprocess_s, r.inference_s) for r in cold]
    # Metrics can read the tag list without the model, too.
    tagger = make_engine(pool=pool).tagger(TINY)
    assert tuple(tagger.vocabulary.names[4:6]) == TINY_GENERAL[:2]
    assert pool.loads == []


def test_a_changed_threshold_is_served_from_the_cached_rows_without_loading_the_model(
    make_engine: Callable[..., Engine], model: Path, db: Path, posts: list[Post], decodes: list[int]
) -> None:
    lenient = run_all(make_engine(), posts)
    for overrides in ({"all": "0.6"}, {"mcut": "true"}):
        thresholds = [(None, overrides)]
        strict = CountingPool(registry_with(model), thresholds=thresholds)
        decoded = len(decodes)
        results = run_all(make_engine(pool=strict), posts)
        assert all(r.cached for r in results)
        assert strict.loads == []
        assert len(decodes) == decoded, "nothing decoded again"
        # The same as a fresh run with these cut-offs, and as applying them to the stored rows.
        tagger = TaggerPool(registry_with(model), thresholds=thresholds).get(TINY)
        same_scores(results, plain_run(tagger, db, posts))
        for result, before in zip(results, lenient, strict=True):
            assert before.probabilities is not None
            decided = tagger.layout.prediction(before.probabilities, tagger.spec.thresholds)
            assert result.predicted == tuple(sorted(decided.tags))
        changed = sum(r.predicted != b.predicted for r, b in zip(results, lenient, strict=True))
        assert changed > 0, f"{overrides} changes some post's tags"


def test_a_changed_model_file_recomputes(
    make_engine: Callable[..., Engine], model: Path, posts: list[Post], db: Path
) -> None:
    first = run_all(make_engine(), posts)
    write_tiny_tagger(model, seed=1)
    second = run_all(make_engine(), posts)
    assert not any(r.cached for r in second)
    same_scores(second, plain_results(model, db, posts))
    assert [r.predicted for r in first] != [r.predicted for r in second]


def test_a_changed_image_recomputes(make_engine: Callable[..., Engine], db: Path, posts: list[Post]) -> None:
    run_all(make_engine(), posts)
    with Dataset(db, writable=True) as dataset:
        dataset.put_image(posts[2].id, png_bytes((90, 20), (1, 2, 3)))
    results = run_all(make_engine(), posts)
    assert [r.cached for r in results] == [True, True, False, *[True] * (len(posts) - 3)]


def test_a_tagger_without_model_files_is_never_cached(
    make_engine: Callable[..., Engine], posts: list[Post]
) -> None:
    for _ in range(2):
        results = run_all(make_engine(), posts, name="control")
        assert {r.score.score for r in results if r.score} == {1.0}
        assert not any(r.cached for r in results)


def test_a_tagger_that_cannot_load_fails_its_first_post_with_the_reason_the_others_by_reference(
    tmp_path: Path, db: Path, posts: list[Post]
) -> None:
    registry = TaggerRegistry()
    register_backends(registry)
    registry.register(TaggerSpec(name="missing", backend="onnx", source=str(tmp_path / "nowhere")))
    engine = Engine(TaggerPool(registry), db, cache=ShowdownCache(tmp_path / "cache"))
    try:
        results = run_all(engine, posts[:3], name="missing")
    finally:
        engine.close()
    assert results[0].error is not None
    assert results[0].error.startswith("tagger missing: ")
    assert results[0].error.endswith("model.onnx does not exist")
    assert [r.error for r in results[1:]] == ["missing could not be loaded (see above)"] * 2


def test_a_tagger_the_test_built_itself_runs_plainly(
    make_engine: Callable[..., Engine], posts: list[Post]
) -> None:
    engine = make_engine()
    own = ControlTagger(TaggerSpec(name="mine", backend="control", thresholds=Thresholds()))
    result = engine.run(posts[0], own)
    assert result.tagger == "mine"
    assert result.score is not None
    assert result.score.score == 1.0


def test_the_lazy_tagger_loads_on_first_attribute_use(make_engine: Callable[..., Engine]) -> None:
    pool = CountingPool(registry_with(Path("unused")))
    lazy = make_engine(pool=pool).tagger("control")
    assert isinstance(lazy, LazyTagger)
    assert lazy.spec.name == "control"
    assert pool.loads == []
    assert isinstance(lazy.load(), ControlTagger)
    assert pool.loads == ["control"]


class _Fake(TaggerBase):
    def __init__(self, providers: tuple[str, ...] | None, fixed_batch: int | None) -> None:
        self.spec = TaggerSpec(name="fake", backend="fake")
        if providers is not None:
            self.providers = providers
        self.fixed_batch = fixed_batch

    def prepare(self, post: Post, image: bytes) -> object:
        return image

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        return []


@pytest.mark.parametrize(
    ("providers", "fixed_batch", "expected"),
    [
        (("CPUExecutionProvider",), None, 1),
        (("CUDAExecutionProvider", "CPUExecutionProvider"), None, 32),
        (("CUDAExecutionProvider", "CPUExecutionProvider"), 1, 1),
        (("CUDAExecutionProvider",), 8, 8),
        (None, None, 1),
    ],
)
def test_auto_batch_size(providers: tuple[str, ...] | None, fixed_batch: int | None, expected: int) -> None:
    assert auto_batch_size(_Fake(providers, fixed_batch)) == expected


def test_a_fixed_batch_model_runs_any_batch_size(
    tmp_path: Path, db: Path, posts: list[Post], model: Path
) -> None:
    fixed = write_tiny_tagger(tmp_path / "fixed", fixed_batch=1)
    engine = Engine(TaggerPool(registry_with(fixed)), db, batch_size=4)
    try:
        results = run_all(engine, posts)
    finally:
        engine.close()
    same_scores(results, plain_results(model, db, posts))


def test_a_tagger_the_engine_did_not_load_runs_alone_and_uncached(
    make_engine: Callable[..., Engine], model: Path, db: Path, posts: list[Post]
) -> None:
    tagger = TaggerPool(registry_with(model)).get(TINY)
    first = [make_engine(batch_size=4).run(post, tagger) for post in posts]
    same_scores(first, plain_run(tagger, db, posts))
    again = [make_engine(batch_size=4).run(post, tagger) for post in posts]  # same cache folder
    assert not any(r.cached for r in (*first, *again))


def test_nan_outputs_fail_their_post_naming_the_tagger_and_columns(
    make_engine: Callable[..., Engine], tmp_path: Path, posts: list[Post]
) -> None:
    """Before: the rating was argmax over NaN (the first rating, ``general``), counted right on g posts."""
    nan = float("nan")
    # 4 ratings, then white_background and black_background: the ratings are NaN (an infinite logit
    # gives a probability of exactly 1.0, which is no broken output).
    folder = make_wd14_folder(tmp_path / "nan-model", bias=[nan, nan, nan, nan, 0.0, float("inf")]).folder
    engine = make_engine(pool=TaggerPool(registry_with(folder)), batch_size=4)
    results = run_all(engine, posts)
    assert [r.score for r in results] == [None] * len(posts)
    assert [r.predicted_rating for r in results] == [None] * len(posts)
    for result, post in zip(results, posts, strict=True):
        if result.error and "cannot" in result.error:  # the dataset's corrupt image, if any
            continue
        assert result.error == (
            f"{post.label}: tagger tiny output NaN or infinity in 4 column(s): "
            "general, sensitive, questionable, explicit"
        )
    # Nothing was cached from them: the rerun fails the same way.
    assert [r.error for r in run_all(engine, posts)] == [r.error for r in results]
