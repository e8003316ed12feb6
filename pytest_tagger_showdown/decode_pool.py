"""Decoding and preprocessing in worker processes, so that a cold run uses every core.

Decoding a Danbooru original and resizing it to 448 takes 40-120 ms of CPU; Pillow releases the GIL
for the codec and the resize, but not for the rest, so threads in one process decode well below the
machine's limit once the model is fast (issue 14: 45% of a 16-core machine's decode ceiling). Workers
here read the post's image from the dataset file themselves (each its own sqlite connection: only
the post id crosses the process boundary) and send back the model input, as uint8 when its values are
0..255 integers (a 448 input: 602 kB instead of 2.4 MB), turned back into the same float32 array here.
(Sending the 8-bit pixels before the float steps measured 8% slower on the 2-core machine, for
reasons not found: kept out.)

A process that stops (killed, out of memory, a crash in a codec) breaks the whole
``ProcessPoolExecutor``: every post in hand then fails with :class:`DecodeWorkerError` naming the cause,
and the next post starts fresh processes; nothing waits forever.

Only the WD14 reference steps (:func:`taggers.preprocess.preprocess`) run here: a tagger whose
``prepare`` is :meth:`WD14Tagger.prepare` gets its inputs from the pool, bit-identical to its own
``prepare``. Others (HTTP taggers, which send the file; DeepDanbooru, whose steps need TensorFlow in
each worker; a subclass with its own steps) keep the engine's threads.

Workers start by ``forkserver`` (``spawn`` where there is none), never ``fork``: the parent holds
onnxruntime's thread pools and sqlite connections, which a forked child must not inherit. They run at
a lower CPU priority, so that on a CPU-only machine the model keeps its cores and decoding fills the
gaps; with a fast model (a GPU) decoding gets every core.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .dataset.store import Dataset
from .errors import DecodeWorkerError
from .taggers.base import Tagger
from .taggers.preprocess import decode_image, preprocess
from .taggers.spec import Preprocessing
from .taggers.wd14 import WD14Tagger

#: Below this many planned posts the pool does not pay: starting a worker (a fresh interpreter that
#: imports numpy and Pillow) costs about as much as decoding a few images.
MIN_POSTS: Final = 16
#: Below this many cores (per showdown process) threads decode faster than processes: Pillow releases
#: the GIL for decoding and resizing, and on the 2-core machine a cold run with a cheap model took 47
#: ms per image with two threads against 54 with two processes (issue 14), which pay for pickling
#: and a second copy of every input. The GIL caps threads on many cores (issue 14: 45% of a 16-core
#: machine's decode ceiling).
MIN_CORES: Final = 4
#: The workers' ``nice`` increment (Linux, macOS): the model's threads come first.
WORKER_NICENESS: Final = 10


@dataclass(frozen=True)
class Recipe:
    """How a worker prepares an image: the WD14 reference steps with this spec at this side."""

    preprocessing: Preprocessing
    size: int


def recipe(tagger: Tagger) -> Recipe | None:
    """The steps the pool runs for ``tagger``, or None when only the tagger itself can prepare its
    inputs (anything whose ``prepare`` is not :meth:`WD14Tagger.prepare`)."""
    if type(tagger).prepare is not WD14Tagger.prepare or not isinstance(tagger, WD14Tagger):
        return None
    return Recipe(tagger.spec.preprocessing, tagger.size)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def xdist_processes() -> int:
    """How many pytest processes share this machine's cores: pytest-xdist's worker count in a
    worker (``PYTEST_XDIST_WORKER_COUNT``), else 1."""
    try:
        return max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    except ValueError:
        return 1


def worker_count(cores: int, processes_on_machine: int, planned: int) -> int:
    """How many decoding processes one showdown process starts: its share of the cores (``cores``
    divided by the ``processes_on_machine`` pytest-xdist runs), or 0 (decode in threads) when that
    share is below :data:`MIN_CORES` or fewer than :data:`MIN_POSTS` posts are planned."""
    share = cores // max(1, processes_on_machine)
    if share < MIN_CORES or planned < MIN_POSTS:
        return 0
    return share


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # The server imports this module once; each worker forked from it starts without imports
    # (0.1 s instead of 0.6 s here).
    context.set_forkserver_preload([__name__])
    return context


_worker_dataset: Dataset | None = None


def _start_worker(dataset_path: str) -> None:
    global _worker_dataset
    with contextlib.suppress(AttributeError, OSError):
        os.nice(WORKER_NICENESS)
    _worker_dataset = Dataset(Path(dataset_path))


def _prepare(post_id: int, recipe: Recipe) -> tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float32], float]:
    """In a worker: the model input of one post, as uint8 when that is exact, and the CPU seconds it
    took (raises ImageError)."""
    if _worker_dataset is None:
        raise RuntimeError("decode worker used before its initializer ran")
    began = time.process_time()
    array = preprocess(decode_image(_worker_dataset.image(post_id)), recipe.preprocessing, recipe.size)
    as_bytes = array.astype(np.uint8)
    compact = as_bytes if np.array_equal(as_bytes, array) else array
    return compact, time.process_time() - began


class DecodePool:
    """``processes`` worker processes preparing posts of ``dataset_path``; thread-safe."""

    def __init__(self, dataset_path: Path, processes: int) -> None:
        self.processes = processes
        self._dataset_path = str(dataset_path)
        self._lock = threading.Lock()
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            self.processes, mp_context=_context(), initializer=_start_worker, initargs=(self._dataset_path,)
        )
        # Start every worker now, while the model loads, not on the first images.
        for _ in range(self.processes):
            executor.submit(int)
        return executor

    def prepare(self, post_id: int, recipe: Recipe) -> tuple[npt.NDArray[np.float32], float]:
        """``[size, size, 3]`` float32, exactly what :func:`preprocess` gives, and the CPU seconds it
        took; blocks the calling thread (not the GIL) meanwhile. Raises the worker's ImageError, or
        :class:`DecodeWorkerError` when a process stopped meanwhile."""
        with self._lock:
            executor = self._executor
        try:
            compact, seconds = executor.submit(_prepare, post_id, recipe).result()
        except BrokenProcessPool as exc:
            with self._lock:
                if self._executor is executor:  # the first to notice starts fresh processes
                    executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = self._start()
            raise DecodeWorkerError(
                f"a decoding process stopped while this image was in hand ({exc}); the image itself "
                "may be fine: rerun to retry it"
            ) from exc
        began = time.thread_time()
        array = compact.astype(np.float32, copy=False)
        return array, seconds + time.thread_time() - began

    def close(self) -> None:
        """Stop the processes, waiting for them to exit."""
        with self._lock:
            self._executor.shutdown(wait=True, cancel_futures=True)
