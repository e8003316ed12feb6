"""Batched, pipelined inference with on-disk caches, so that a showdown costs what the model costs.

The plugin tells the engine which (tagger, post) pairs this process will ask for, in run order
(:meth:`Engine.plan`); background threads then work ahead along that plan: for each pair they look the
prediction up in the cache, else read the image and decode and preprocess it (or take the prepared
input from the cache); for WD14 taggers on 4 cores or more they hand the decoding to worker
processes (:mod:`decode_pool`: the GIL caps what threads decode), two threads per process. For a
model on the CPU they only find a cached input, and the item reads it right before its inference
(see :class:`_Stored`). Each pytest item
then only waits for its own pair, runs inference (or takes the batch computed for it by an earlier
item), scores and records. Decoding happens while the model runs
on the previous image, PIL and onnxruntime both release the GIL, and the background threads run at a
lower CPU priority so that on a machine without a GPU they fill the gaps of inference instead of
slowing it down. On a run of cache hits the engine stops working ahead (reading a cached prediction
is Python work that threads only slow down) until the next miss.

Memory stays bounded whatever the dataset's size: at most ``window`` prepared inputs are held (plus
the batch being run), and a batch's results wait only until their items ask for them.

Batches: with batch size 1 (the automatic choice on CPU, where batching does not help) the item runs
its own image's inference, so what pytest-benchmark records for an item is that image's inference.
With batch size B > 1 (the automatic choice on a GPU) the first item that needs a batch runs the
batch of its post and the next B - 1 planned posts of the same tagger; each post's ``inference_s``
is its share, batch time / batch size. pytest-benchmark then records the whole batch on the item
that ran it and next to nothing on the B - 1 items served from it: the group's mean is the per-image
cost, single items' times are not. Predictions served from the cache are not benchmarked at all
(their times, measured when they were computed, are reported and marked cached).

Models load lazily, on the first cache miss, so a rerun served from the cache never loads them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np

from .cache import CACHE_VERSION, ShowdownCache, digest, model_fingerprint, prehash_folder
from .dataset.post import Post
from .dataset.store import Dataset
from .decode_pool import DecodePool, Recipe, available_cores, recipe, worker_count, xdist_processes
from .devices import ACCELERATED_PROVIDERS
from .errors import ShowdownError, TaggerLoadError, TaggerRunError
from .pool import TaggerPool
from .prediction import Prediction
from .results import PostResult, post_result
from .taggers.backends import ONNX_BACKENDS
from .taggers.base import Tagger
from .taggers.wd14 import OutputLayout
from .tags import TagCategory
from .vocabulary import Vocabulary

T = TypeVar("T")

#: Calls the inference it is given and returns its predictions; pytest-benchmark's pedantic runner
#: fits here, so the inference is what a saved benchmark records.
InferenceMeter = Callable[[Callable[[], list[Prediction]]], list[Prediction]]

#: The automatic batch size on an accelerator (REFERENCE section 7: ViT-B@448 on an H100 through
#: onnxruntime-gpu gains little beyond 32).
ACCELERATED_BATCH: Final = 32
#: After this many cache hits in a row (cached predictions; cached inputs of a model on the CPU) the
#: engine stops working ahead: reading an entry is Python work, which background threads only slow
#: down (they contend for the GIL, and on the CPU for onnxruntime's cores); the first miss starts
#: them again.
INLINE_AFTER_HITS: Final = 4
#: How much lower the background threads' CPU priority is (a ``nice`` increment; Linux only).
BACKGROUND_NICENESS: Final = 10


def auto_batch_size(tagger: Tagger) -> int:
    """1 on CPU (batching does not help there) and for HTTP or other taggers; 32 on an accelerator,
    capped by a model that fixes its batch dimension (the v2 WD14 exports fix it to 1)."""
    providers = tagger.providers
    size = ACCELERATED_BATCH if providers and providers[0] in ACCELERATED_PROVIDERS else 1
    fixed = tagger.fixed_batch
    return min(size, fixed) if fixed is not None and fixed > 0 else size


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux applies ``setpriority`` to a single thread)."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), current + BACKGROUND_NICENESS)
    except (AttributeError, OSError):
        return


@dataclass(frozen=True)
class _Prepared:
    """A prepared input waiting for inference; ``key`` is its prediction's cache key, if cached."""

    prepared: object
    preprocess_s: float
    key: str | None
    #: Read from the input cache, not decoded.
    from_cache: bool = False


@dataclass(frozen=True)
class _Done:
    prediction: Prediction
    preprocess_s: float
    inference_s: float
    cached: bool


@dataclass(frozen=True)
class _Failed:
    error: str
    preprocess_s: float | None = None
    #: The tagger could not load: one cause for all its posts (see :meth:`Engine.load_failure`).
    load: bool = False


@dataclass(frozen=True)
class _Stored:
    """A prepared input found in the cache and left there for the thread that runs the model: for a
    model on the CPU a background thread reading it (about 0.2 ms of Python and copying) competes with
    onnxruntime's threads for the cores and, holding the GIL at a lower priority, delays the item when
    inference returns; read between two inferences by the calling thread it costs only the read
    (issue 14: an inputs-cached run with a 2.3 ms model on 2 cores)."""

    input_key: str
    key: str | None


_Outcome = _Prepared | _Stored | _Done | _Failed


@dataclass(frozen=True)
class _Identity:
    """What a tagger's cache keys are made of (its model files' hash and how it prepares images),
    and its tag list, which dataset metrics need beside cached probabilities. ``layout`` is set
    when the tagger decides its tags from a probability row with :class:`OutputLayout` (WD14,
    DeepDanbooru): only then are its predictions cached, as rows, and decided after reading."""

    model: str
    preprocessing: str
    vocabulary: Vocabulary | None
    layout: OutputLayout | None = None


class _Slot:
    """One tagger of the run: its spec, its lazily loaded model, its cache identity, its batch size."""

    def __init__(self, engine: Engine, name: str, tagger: Tagger | None = None) -> None:
        """``tagger``: one the engine did not load (a test built it itself), run uncached, alone."""
        self.engine = engine
        self.name = name
        self.spec = engine.pool.spec(name) if tagger is None else tagger.spec
        self._load_lock = threading.Lock()
        self._identity_lock = threading.Lock()
        self._loaded: Tagger | TaggerLoadError | None = tagger
        self._identity: _Identity | None = None
        self._identity_known = tagger is not None
        self._batch_size: int | None = engine.batch_size if tagger is None else 1

    def tagger(self) -> Tagger:
        """The loaded tagger; loads it (once, on the engine's loader thread) on first use."""
        with self._load_lock:
            if self._loaded is None:
                try:
                    self._loaded = self.engine.on_loader(lambda: self.engine.pool.get(self.name))
                except TaggerLoadError as exc:
                    self._loaded = exc
            loaded = self._loaded
        if isinstance(loaded, TaggerLoadError):
            raise loaded
        return loaded

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None and not isinstance(self._loaded, TaggerLoadError)

    def on_cpu(self) -> bool:
        """Whether the loaded model runs on onnxruntime's CPU provider (False before it loads, and
        for taggers that do not say: the protocol's optional part)."""
        loaded = self._loaded
        if loaded is None or isinstance(loaded, TaggerLoadError):
            return False
        return tuple(getattr(loaded, "providers", ())[:1]) == ("CPUExecutionProvider",)

    def batch_size(self) -> int:
        if self._batch_size is None:
            self._batch_size = auto_batch_size(self.tagger())
        return self._batch_size

    def identity(self) -> _Identity | None:
        """The cache identity, None when caching is off or the tagger has no model files (HTTP
        taggers, the control). Read from the cache's record while the model files are unchanged,
        so a warm run neither loads nor hashes the model."""
        cache = self.engine.cache
        if cache is None:
            return None
        with self._identity_lock:
            if not self._identity_known:
                self._identity = self._find_identity(cache)
                self._identity_known = True
            return self._identity

    def _find_identity(self, cache: ShowdownCache) -> _Identity | None:
        spec = self.spec
        record_key = digest(
            CACHE_VERSION,
            spec.backend,
            spec.source,
            spec.revision,
            sorted(spec.options.items()),
            repr(spec.preprocessing),
        )
        known = cache.fingerprint(record_key)
        if known is not None:
            try:
                names, categories = known["vocabulary"] or ((), ())
                vocabulary = Vocabulary(tuple(map(str, names)), tuple(map(int, categories)))
                layout = OutputLayout(vocabulary) if known["rows"] and vocabulary else None
                return _Identity(str(known["model"]), str(known["preprocessing"]), vocabulary or None, layout)
            except (KeyError, TypeError, ValueError):
                pass  # a record of another shape: recompute it
        folder = Path(spec.source).expanduser()
        if spec.source and folder.is_dir():
            prehash_folder(folder)
        tagger = self.tagger()
        files = tagger.model_files
        if not files:
            return None
        paths = [Path(path) for path in files]
        prepare = type(tagger).prepare
        identity = _Identity(
            model=model_fingerprint(paths),
            preprocessing=digest(
                f"{prepare.__module__}.{prepare.__qualname__}",
                repr(spec.preprocessing),
                tagger.size,
            ),
            vocabulary=tagger.vocabulary,
            layout=OutputLayout(tagger.vocabulary) if tagger.row_tags and tagger.vocabulary else None,
        )
        tags = identity.vocabulary
        cache.remember_fingerprint(
            record_key,
            paths,
            {
                "model": identity.model,
                "preprocessing": identity.preprocessing,
                "vocabulary": [tags.names, tags.categories] if tags else None,
                "rows": identity.layout is not None,
            },
        )
        return identity

    def vocabulary(self) -> Vocabulary | None:
        """The tag list, without loading the model when the cache knows it."""
        if not self.is_loaded:
            identity = self.identity()
            if identity is not None and identity.vocabulary is not None:
                return identity.vocabulary
        return self.tagger().vocabulary


class LazyTagger:
    """A tagger by name whose model loads on first use: a run served from the cache never loads it.

    It is what the ``tagger`` fixture gives; other attributes reach the loaded tagger.
    """

    def __init__(self, slot: _Slot) -> None:
        self._slot = slot
        self.spec = slot.spec

    @property
    def engine(self) -> Engine:
        return self._slot.engine

    def load(self) -> Tagger:
        """The loaded tagger; raises :class:`TaggerLoadError` when it cannot run here."""
        return self._slot.tagger()

    @property
    def vocabulary(self) -> Vocabulary | None:
        """The tag list (names and categories in output order), from the cache while the model is
        not loaded, so recording cached probabilities does not load the model."""
        return self._slot.vocabulary()

    def prepare(self, post: Post, image: bytes) -> object:
        return self.load().prepare(post, image)

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        return self.load().infer(batch)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)


@dataclass(eq=False)
class _Job:
    slot: _Slot
    post: Post
    future: Future[_Outcome]


def _call(infer: Callable[[], list[Prediction]]) -> list[Prediction]:
    return infer()


class Engine:
    """The pipeline for one process. Call it from one thread (pytest's); it runs its own threads.

    ``batch_size`` None chooses per tagger (:func:`auto_batch_size`); ``cache`` None disables both
    caches; ``workers`` is the number of background threads (default: one per core this process may
    run on); ``window`` the most prepared inputs held ahead (default: enough for two batches and
    every worker).
    ``processes`` is the number of decoding processes for taggers the :mod:`decode_pool` can
    prepare for (WD14): None follows the machine (:func:`decode_pool.worker_count`), 0 decodes in
    the threads.
    """

    def __init__(
        self,
        pool: TaggerPool,
        dataset_path: Path,
        *,
        batch_size: int | None = None,
        cache: ShowdownCache | None = None,
        workers: int | None = None,
        window: int | None = None,
        processes: int | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        if processes is not None and processes < 0:
            raise ValueError(f"processes must be 0 or more, got {processes}")
        self.pool = pool
        self.dataset_path = Path(dataset_path)
        self.batch_size = batch_size
        self.cache = cache
        self.workers = max(1, workers or available_cores())
        self._window_limit = window
        self._slots: dict[str, _Slot] = {}
        self._plan: list[tuple[_Slot, Post]] = []
        self._next = 0
        self._window: deque[_Job] = deque()
        self._done: dict[tuple[str, int], _Done | _Failed] = {}
        #: Cache hits in a row (see :meth:`_is_hit`): past INLINE_AFTER_HITS, lookups run in the
        #: calling thread.
        self._hits = 0
        self._queue: queue.SimpleQueue[tuple[Callable[[Dataset], _Outcome], Future[_Outcome]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._processes = processes
        self._decode: DecodePool | None = None
        self._decode_lock = threading.Lock()
        self._main_dataset: Dataset | None = None
        self._aliases: dict[str, str] | None = None
        #: Taggers whose load failure an item has already reported in full.
        self._load_reported: set[str] = set()
        # Loads run on a thread started here, at this thread's priority: onnxruntime's own threads
        # inherit the priority of the thread that creates the session.
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="showdown-load")
        self._loader.submit(lambda: None).result()

    # -- taggers ---------------------------------------------------------------------------------

    def tagger(self, name: str) -> LazyTagger:
        """The named tagger, loaded on first use; raises ShowdownError for an unknown name."""
        return LazyTagger(self._slot(name))

    def _slot(self, name: str) -> _Slot:
        if name not in self._slots:
            self._slots[name] = _Slot(self, name)
        return self._slots[name]

    def on_loader(self, load: Callable[[], T]) -> T:
        """Run ``load`` on the loader thread (see ``__init__``) and wait for it."""
        return self._loader.submit(load).result()

    # -- the plan --------------------------------------------------------------------------------

    def plan(self, requests: Iterable[tuple[str, Post]]) -> None:
        """Append (tagger name, post) pairs in the order they will be asked for; work starts ahead."""
        for name, post in requests:
            self._plan.append((self._slot(name), post))
        self._refill()

    def _limit(self) -> int:
        if self._window_limit is not None:
            return max(1, self._window_limit)
        batches = [slot.batch_size() for slot in self._slots.values() if slot.is_loaded]
        return max(4, 2 * self.workers, 2 * max(batches, default=1))

    def _refill(self) -> None:
        if self._hits >= INLINE_AFTER_HITS:
            return
        limit = self._limit()
        while len(self._window) < limit and self._next < len(self._plan):
            slot, post = self._plan[self._next]
            self._next += 1
            self._window.append(_Job(slot, post, self._submit(slot, post)))

    def _submit(self, slot: _Slot, post: Post) -> Future[_Outcome]:
        if not self._threads:
            self._start_threads(self.workers)
        future: Future[_Outcome] = Future()
        self._queue.put((lambda dataset: self._prepare(slot, post, dataset, ahead=True), future))
        return future

    def _start_threads(self, count: int) -> None:
        """Have at least ``count`` background threads running."""
        with self._threads_lock:
            for index in range(len(self._threads), count):
                thread = threading.Thread(target=self._work, name=f"showdown-prepare-{index}", daemon=True)
                thread.start()
                self._threads.append(thread)
            self.workers = max(self.workers, len(self._threads))

    def _decode_pool(self, tagger: Tagger) -> tuple[DecodePool, Recipe] | None:
        """The worker processes and their steps for ``tagger``, started on the first image that
        needs them; None where they do not pay (one core, a small plan, a tagger they cannot prepare
        for: see :mod:`decode_pool`)."""
        steps = recipe(tagger)
        if steps is None:
            return None
        decode = self._start_decode_pool()
        return None if decode is None else (decode, steps)

    def _start_decode_pool(self) -> DecodePool | None:
        with self._decode_lock:
            if self._decode is None:
                count = self._processes
                if count is None:
                    count = worker_count(available_cores(), xdist_processes(), len(self._plan))
                if count == 0:
                    return None
                self._decode = DecodePool(self.dataset_path, count)
                # A thread waits on each process's image: two per process keep every process busy
                # while the threads hand over results and write the cache.
                self._start_threads(2 * count)
            return self._decode

    def _work(self) -> None:
        """A background thread: its own dataset connection (sqlite connections are per thread)."""
        _lower_priority()
        dataset: Dataset | None = None
        try:
            while (job := self._queue.get()) is not None:
                task, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if dataset is None:
                        dataset = Dataset(self.dataset_path)
                    future.set_result(task(dataset))
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            if dataset is not None:
                dataset.close()

    def _take(self, slot: _Slot, post: Post) -> _Outcome:
        """This pair's outcome: from a batch already run, from the window (dropping the jobs before
        it, whose items did not ask: skipped or deselected), further along the plan, or computed now."""
        done = self._done.pop((slot.name, post.id), None)
        if done is not None:
            return done
        for index, job in enumerate(self._window):
            if job.slot is slot and job.post.id == post.id:
                for _ in range(index):
                    self._window.popleft().future.cancel()
                self._window.popleft()
                self._refill()
                if job.future.cancel():
                    # Not started yet: doing it here beats waiting for a busy (or GIL-starved) thread.
                    return self._prepare(slot, post, self._dataset())
                return job.future.result()
        for index in range(self._next, len(self._plan)):
            planned_slot, planned_post = self._plan[index]
            if planned_slot is slot and planned_post.id == post.id:
                while self._window:
                    self._window.popleft().future.cancel()
                self._next = index + 1
                break
        outcome = self._prepare(slot, post, self._dataset())
        self._refill()
        return outcome

    def _dataset(self) -> Dataset:
        if self._main_dataset is None:
            self._main_dataset = Dataset(self.dataset_path)
        return self._main_dataset

    # -- the work --------------------------------------------------------------------------------

    def _prepare(self, slot: _Slot, post: Post, dataset: Dataset, *, ahead: bool = False) -> _Outcome:
        """Cached prediction, else prepared input (cached or computed), else the post's failure.
        ``ahead``: a background thread working ahead, which leaves a cached input of a model on the
        CPU where it is (:class:`_Stored`)."""
        try:
            identity = slot.identity()
            key = input_key = None
            md5 = dataset.image_md5(post.id) if identity is not None else None
            if identity is not None and md5 is not None and self.cache is not None:
                if identity.layout is not None:  # keyed without cut-offs: decided after reading
                    key = digest(CACHE_VERSION, identity.model, identity.preprocessing, md5)
                    hit = self.cache.get_prediction(key)
                    if hit is not None:
                        prediction = identity.layout.prediction(hit.probabilities, slot.spec.thresholds)
                        return _Done(prediction, hit.preprocess_s, hit.inference_s, cached=True)
                input_key = digest(CACHE_VERSION, identity.preprocessing, md5)
                if ahead and slot.on_cpu() and self.cache.has_input(input_key):
                    return _Stored(input_key, key)
                prepared = self.cache.get_input(input_key)
                if prepared is not None:
                    return _Prepared(prepared.array, prepared.preprocess_s, key, from_cache=True)
            if slot.spec.backend in ONNX_BACKENDS:
                # The first image to decode: the workers start while the model loads. A run whose
                # inputs are all cached never starts them.
                self._start_decode_pool()
            tagger = slot.tagger()
            decoder = self._decode_pool(tagger)
            value: object
            if decoder is not None:
                pool, steps = decoder
                value, preprocess_s = pool.prepare(post.id, steps)
            else:
                began = time.thread_time()
                value = tagger.prepare(post, dataset.image(post.id))
                # CPU time, not wall time: a decode slowed down by sharing the CPU with inference
                # would otherwise be counted twice in the image's runtime.
                preprocess_s = time.thread_time() - began
        except TaggerLoadError as exc:
            return _Failed(str(exc), load=True)
        except ShowdownError as exc:  # a bad image: this post fails
            return _Failed(f"{post.label}: {exc}")
        if input_key is not None and self.cache is not None and isinstance(value, np.ndarray):
            self.cache.put_input(input_key, value, preprocess_s)
        return _Prepared(value, preprocess_s, key)

    def _companions(self, slot: _Slot, room: int) -> list[tuple[Post, _Prepared]]:
        """Up to ``room`` prepared inputs of the same tagger from the window, in plan order."""
        chosen: list[tuple[Post, _Prepared]] = []
        for job in list(self._window):
            if len(chosen) >= room:
                break
            if job.slot is not slot:
                continue
            outcome = job.future.result()
            if isinstance(outcome, _Stored):
                outcome = self._read_stored(slot, job.post, outcome)
            if isinstance(outcome, _Prepared):
                self._window.remove(job)
                chosen.append((job.post, outcome))
        return chosen

    @staticmethod
    def _is_hit(slot: _Slot, outcome: _Outcome) -> bool:
        """Whether the pair cost only a cache read: a cached prediction, or, for a model on the CPU,
        a cached input (on an accelerator inputs are read ahead, off the thread that feeds it)."""
        if isinstance(outcome, _Done):
            return outcome.cached
        return isinstance(outcome, _Prepared) and outcome.from_cache and slot.on_cpu()

    def _read_stored(self, slot: _Slot, post: Post, stored: _Stored) -> _Outcome:
        """Read a :class:`_Stored` input now; one evicted meanwhile is prepared again."""
        cached = self.cache.get_input(stored.input_key) if self.cache is not None else None
        if cached is None:
            return self._prepare(slot, post, self._dataset())
        return _Prepared(cached.array, cached.preprocess_s, stored.key, from_cache=True)

    def _infer(
        self, slot: _Slot, batch: Sequence[tuple[Post, _Prepared]], measure: InferenceMeter
    ) -> list[_Done | _Failed]:
        elapsed = 0.0
        try:
            tagger = slot.tagger()
        except TaggerLoadError as exc:
            return [_Failed(str(exc), prepared.preprocess_s, load=True) for _, prepared in batch]
        try:

            def infer() -> list[Prediction]:
                nonlocal elapsed
                began = time.perf_counter()
                predictions = tagger.infer([prepared.prepared for _, prepared in batch])
                elapsed = time.perf_counter() - began
                return predictions

            predictions = measure(infer)
            if len(predictions) != len(batch):
                raise TaggerRunError(
                    f"tagger {slot.name} gave {len(predictions)} predictions for {len(batch)} inputs"
                )
        except ShowdownError as exc:
            return [_Failed(f"{post.label}: {exc}", prepared.preprocess_s) for post, prepared in batch]
        share = elapsed / len(batch)
        results: list[_Done | _Failed] = []
        for (post, prepared), prediction in zip(batch, predictions, strict=True):
            if prediction.non_finite:
                columns = ", ".join(prediction.non_finite[:10])
                more = len(prediction.non_finite) - 10
                results.append(
                    _Failed(
                        f"{post.label}: tagger {slot.name} output NaN or infinity in "
                        f"{len(prediction.non_finite)} column(s): {columns}"
                        + (f" and {more} more" if more > 0 else ""),
                        prepared.preprocess_s,
                    )
                )
                continue
            row = prediction.probabilities
            if prepared.key is not None and self.cache is not None and row is not None:
                self.cache.put_prediction(
                    prepared.key, row, prepared.preprocess_s, share, prediction.stored_columns
                )
            results.append(_Done(prediction, prepared.preprocess_s, share, cached=False))
        return results

    # -- the public entry ------------------------------------------------------------------------

    def run(
        self,
        post: Post,
        tagger: Tagger,
        categories: Iterable[TagCategory] = tuple(TagCategory),
        *,
        measure: InferenceMeter = _call,
    ) -> PostResult:
        """Tag and score one post through the pipeline and caches: the one path that runs a post.
        Predicted tags are renamed by the dataset's aliases (:meth:`aliases`).

        Errors of this post (bad image, failed inference) come back as a result with ``error`` set,
        so the caller can record them and fail just this post. A tagger that is not this engine's
        (one a test built itself) runs alone and uncached.
        """
        aliases = self.aliases()
        if isinstance(tagger, LazyTagger) and tagger.engine is self:
            slot = self._slot(tagger.spec.name)
            outcome = self._take(slot, post)
        else:
            slot = _Slot(self, tagger.spec.name, tagger)
            outcome = self._prepare(slot, post, self._dataset())
        if isinstance(outcome, _Stored):
            outcome = self._read_stored(slot, post, outcome)
        self._hits = self._hits + 1 if self._is_hit(slot, outcome) else 0
        self._refill()
        if isinstance(outcome, _Done) and not outcome.cached:
            # A share of a batch run by an earlier item: recorded as such (see the module docstring).
            shared = [outcome.prediction]
            measure(lambda: shared)
        elif isinstance(outcome, _Prepared):
            batch = [(post, outcome)]
            try:
                size = slot.batch_size()
            except TaggerLoadError:
                size = 1  # inference reports the load failure for this post
            if size > 1:
                batch += self._companions(slot, size - 1)
                self._refill()
            first, *rest = self._infer(slot, batch, measure)
            for (other, _), result in zip(batch[1:], rest, strict=True):
                self._done[(slot.name, other.id)] = result
            self._trim_done()
            outcome = first
        return self._result(slot, post, outcome, categories, aliases)

    def load_failure(self, name: str, reason: str) -> str:
        """What an item of a tagger that cannot load says: the first one in this process the full
        reason, every later one a reference to it (one cause, one explanation; the load is not
        retried either: the slot keeps the error)."""
        if name in self._load_reported:
            return f"{name} could not be loaded (see above)"
        self._load_reported.add(name)
        return reason

    def facts(self, name: str) -> dict[str, Any]:
        """How a tagger of this engine ran, for telling runs apart: its effective thresholds, its
        backend, source and revision, its model fingerprint (the cache's, else the model files'
        hash when loaded) and its first execution provider (None when never loaded: every
        prediction came from the cache)."""
        slot = self._slot(name)
        spec = slot.spec
        identity = None
        with contextlib.suppress(ShowdownError):  # a tagger that cannot load: its posts say why
            identity = slot.identity()
        fingerprint = identity.model if identity is not None else None
        provider = None
        if slot.is_loaded:
            loaded = slot.tagger()
            provider = loaded.providers[0] if loaded.providers else None
            if fingerprint is None and loaded.model_files:
                fingerprint = model_fingerprint([Path(path) for path in loaded.model_files])
        return {
            "thresholds": dataclasses.asdict(spec.thresholds),
            "backend": spec.backend,
            "source": spec.source,
            "revision": spec.revision,
            "model_fingerprint": fingerprint,
            "provider": provider,
        }

    def aliases(self) -> Mapping[str, str]:
        """The dataset's tag aliases, old name -> current name (empty unless fetched with
        ``--with-tag-relations``); read once."""
        if self._aliases is None:
            self._aliases = dict(self._dataset().tag_relations("alias"))
        return self._aliases

    def _trim_done(self) -> None:
        """Results of batch-mates whose items never asked (skipped, deselected) do not pile up."""
        while len(self._done) > self._limit():
            del self._done[next(iter(self._done))]

    def _result(
        self,
        slot: _Slot,
        post: Post,
        outcome: _Outcome,
        categories: Iterable[TagCategory],
        aliases: Mapping[str, str] | None,
    ) -> PostResult:
        if isinstance(outcome, _Prepared | _Stored):
            raise AssertionError("a prepared input reached scoring without inference")
        if isinstance(outcome, _Failed):
            error = self.load_failure(slot.name, outcome.error) if outcome.load else outcome.error
            return post_result(
                slot.name, post, categories, None, error=error, preprocess_s=outcome.preprocess_s
            )
        return post_result(
            slot.name,
            post,
            categories,
            outcome.prediction,
            preprocess_s=outcome.preprocess_s,
            inference_s=outcome.inference_s,
            cached=outcome.cached,
            aliases=aliases,
        )

    def close(self) -> None:
        """Stop the threads (waiting for the images they are on) and close the connections."""
        while self._window:
            self._window.popleft().future.cancel()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self._loader.shutdown(wait=True)
        if self._decode is not None:
            self._decode.close()
            self._decode = None
        if self._main_dataset is not None:
            self._main_dataset.close()
            self._main_dataset = None
