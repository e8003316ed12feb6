"""Issue 14's table for the code in this tree, measured on whatever machine runs it (made for a lent GPU
machine, run once: one command, a few minutes).

``python -m benchmarks.gpu_table [--images 384] [--out DIR] [--model FOLDER] [--batches 1,8,32,64]
[--rounds 1] [--skip-n4] [--small]`` builds the ViT-B/16@448 stand-in (or takes the WD14 folder
``--model``) and a dataset of Danbooru-like posts (2000x3000 and 1500x1500 JPEGs, 1600x1200 PNGs in
turn; ``--small``: 64x64 PNGs, to check the script quickly), then measures, each in images per second
and each the fastest of ``--rounds``:

* raw ``session.run`` on ready tensors (float32 ``[B, 448, 448, 3]`` host arrays, host copies
  included) at each batch size B, onnxruntime's default providers (CUDA first with onnxruntime-gpu);
* decoding and reference preprocessing in a pool of one process per core: the cold ceiling;
* a naive loop, one image at a time (decode, preprocess, ``session.run`` of one image);
* whole ``pytest`` processes of the showdown, in an empty folder: cold (``--showdown-no-cache``),
  inference only (prepared inputs cached, the prediction store deleted before the run), fully cached,
  and cold with ``-n 4``; each as the whole process and as the item loop (first item's start to last
  item's end, :mod:`benchmarks.item_clock`).

It prints the table (markdown), the machine (GPU name from ``nvidia-smi``, cores, onnxruntime's
version and providers) and the figures as one JSON line, and writes ``gpu_table.md`` and
``gpu_table.json`` into ``--out`` (default: a temporary folder, removed at the end).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tabulate import tabulate

from benchmarks.conftest import SHAPES, UNRELATED_PLUGINS, vocabulary, write_dataset
from benchmarks.item_clock import CLOCK_FILE
from benchmarks.standin_vit import ensure_model
from benchmarks.test_decode_bound import decode_pool
from pytest_tagger_showdown import Dataset
from pytest_tagger_showdown.cache import CACHE_VERSION, PREDICTIONS_DB
from pytest_tagger_showdown.decode_pool import available_cores
from pytest_tagger_showdown.taggers.preprocess import decode_image, preprocess
from pytest_tagger_showdown.taggers.spec import Preprocessing
from pytest_tagger_showdown.taggers.wd14 import default_providers

#: The model input's side (every WD14 tagger's; the decode pool of test_decode_bound.py checks it).
SIZE: Final = 448
#: pytest options of every showdown process: nothing unrelated to a showdown loaded or written.
LEAN: Final = (
    "-q",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:randomly",
    *(arg for name in UNRELATED_PLUGINS for arg in ("-p", f"no:{name}")),
    "-p",
    "benchmarks.item_clock",
)
#: The repository root, for the showdown processes to import ``benchmarks.item_clock``.
ROOT: Final = Path(__file__).resolve().parent.parent
#: Posts per dataset-building process: a multiple of the three shapes, so the mix stays exact.
CHUNK: Final = 8 * len(SHAPES)


def _model_input(data: bytes) -> npt.NDArray[np.float32]:
    return preprocess(decode_image(data), Preprocessing(), SIZE)


def _chunk(args: tuple[Path, int, list[str], int, bool]) -> Path:
    path, count, tags, seed, small = args
    return write_dataset(path, count, tags, seed=seed, small=small)


def build_dataset(path: Path, count: int, tags: list[str], *, small: bool) -> Path:
    """``count`` posts of :func:`benchmarks.conftest.write_dataset` at ``path``, written in chunks of
    :data:`CHUNK` posts (each its own seed) by one process per core, then joined with ids from 1000."""
    parts = [
        (path.with_name(f"{path.stem}.part{k}.db"), min(CHUNK, count - start), tags, 7 + k, small)
        for k, start in enumerate(range(0, count, CHUNK))
    ]
    with ProcessPoolExecutor(min(available_cores(), len(parts))) as pool:
        written = list(pool.map(_chunk, parts))
    with Dataset(path, writable=True) as dataset:
        for part in written:
            with Dataset(part) as source:
                for post in source.posts():
                    new = replace(post, id=1000 + dataset.count())
                    dataset.add_post(new, {"id": new.id}, source.image(post.id))
            part.unlink()
    return path


_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """A line on stderr with the seconds since the script started: a run cut short shows how far it got."""
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def images_per_s(images: int, seconds: float) -> float:
    return round(images / seconds, 1)


def fastest(rounds: int, measure: Callable[[], float]) -> float:
    """The shortest of ``rounds`` calls of ``measure`` (seconds)."""
    return min(measure() for _ in range(rounds))


def session(model: Path) -> ort.InferenceSession:
    """The model on onnxruntime's default providers (as the WD14 tagger picks them)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = default_providers(ort.get_available_providers())
    return ort.InferenceSession(str(model), sess_options=options, providers=providers)


def raw_seconds(model: ort.InferenceSession, tensors: list[npt.NDArray[np.float32]], batch: int) -> float:
    """Seconds of ``session.run`` over ``max(batch, len(tensors) // batch * batch)`` images (the
    images repeated when fewer than a batch) in batches of ``batch``, after one untimed batch (the
    provider's set-up for that shape)."""
    count = max(batch, len(tensors) // batch * batch)
    batches = [
        np.stack([tensors[i % len(tensors)] for i in range(start, start + batch)])
        for start in range(0, count, batch)
    ]
    name = model.get_inputs()[0].name
    model.run(None, {name: batches[0]})
    began = time.perf_counter()
    for array in batches:
        model.run(None, {name: array})
    return time.perf_counter() - began


def naive_seconds(model: ort.InferenceSession, images: list[bytes]) -> float:
    """Seconds of decoding, preprocessing and running each image alone, one after the other."""
    name = model.get_inputs()[0].name
    began = time.perf_counter()
    for data in images:
        model.run(None, {name: _model_input(data)[None]})
    return time.perf_counter() - began


@dataclass(frozen=True)
class ShowdownTimes:
    """One showdown process: its wall time and its item loop (seconds), and how many items it ran."""

    wall_s: float
    items_s: float
    items: int


def run_showdown(folder: Path, args: Sequence[str]) -> ShowdownTimes:
    """``python -m pytest`` with the showdown in an empty ``folder`` (created), timed; raises
    RuntimeError with the end of its output when it does not exit 0."""
    folder.mkdir(parents=True)
    clock = folder.parent / f"{folder.name}.clock.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (env.get("PYTHONPATH"), str(ROOT))))
    env[CLOCK_FILE] = str(clock)
    command = [sys.executable, "-m", "pytest", *LEAN, *args]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        output = done.stdout[-3000:] + done.stderr
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{output}")
    timer = json.loads(clock.read_text(encoding="utf-8"))
    return ShowdownTimes(wall, timer["last_finish"] - timer["first_start"], timer["items"])


def drop_predictions(cache: Path) -> None:
    """Delete the prediction store of a cache folder (the database and an older file-per-entry
    folder), keeping the prepared inputs."""
    for path in (cache / CACHE_VERSION).glob(f"{PREDICTIONS_DB}*"):
        path.unlink()
    shutil.rmtree(cache / CACHE_VERSION / "predictions", ignore_errors=True)


def gpu_name() -> str | None:
    """The first GPU's name as ``nvidia-smi`` gives it, or None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
    done = subprocess.run(query, capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def model_figures(
    model: Path,
    images: list[bytes],
    tensors: list[npt.NDArray[np.float32]],
    options: argparse.Namespace,
) -> dict[str, Any]:
    """The provider, raw ``session.run`` at each batch size and the naive loop, in images per second;
    SystemExit when the provider is not ``--require-provider``."""
    loaded = session(model)
    provider = loaded.get_providers()[0]
    progress(f"model loaded on {provider}")
    if options.require_provider and provider != options.require_provider:
        raise SystemExit(f"gpu_table: the model runs on {provider}, not {options.require_provider}")
    count, rounds, batches = len(images), options.rounds, options.batches
    raw = {
        str(batch): images_per_s(
            max(batch, count // batch * batch), fastest(rounds, partial(raw_seconds, loaded, tensors, batch))
        )
        for batch in batches
    }
    progress(f"raw {raw}")
    naive = images_per_s(count, fastest(rounds, partial(naive_seconds, loaded, images)))
    progress(f"naive loop {naive}")
    return {"provider": provider, "raw": raw, "naive": naive}


def measure(options: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Every figure of the table, in images per second, and the machine."""
    figures: dict[str, Any] = {"machine": machine()}
    progress(f"machine {figures['machine']}")
    model = options.model or ensure_model()
    figures["model"] = str(model)
    progress(f"model {model}")
    db = build_dataset(out / "posts.db", options.images, vocabulary(model), small=options.small)
    progress(f"dataset {db}")
    with Dataset(db) as dataset:
        images = [dataset.image(post.id) for post in dataset.posts()]
    count, rounds = len(images), options.rounds
    figures.update(images=count, rounds=rounds)
    # Process pools first: they fork, and a process must not fork once onnxruntime has started threads.
    pool = fastest(rounds, lambda: decode_pool(images))
    with ProcessPoolExecutor(available_cores()) as workers:
        tensors = list(workers.map(_model_input, images, chunksize=4))
    figures["pool"] = images_per_s(count, pool)
    progress(f"decode pool {figures['pool']}")
    # The session ends with this call and the tensors below: the device and the memory go to the showdowns.
    figures.update(model_figures(model / "model.onnx", images, tensors, options))
    del tensors
    gc.collect()

    runs = out / "runs"
    tagger = ("--tagger", f"onnx:{model}", "--showdown-db", str(db))
    cache = ("--showdown-cache-dir", str(out / "cache"))
    number = itertools.count()

    def showdown(*args: str) -> ShowdownTimes:
        times = run_showdown(runs / f"run{next(number)}", [*tagger, *args])
        if times.items != count:
            raise RuntimeError(f"a showdown ran {times.items} items, not {count}: {args}")
        return times

    def best(label: str, *args: str, before: Callable[[], None] = lambda: None) -> None:
        """The row's figures, or its error: one failing row leaves the others to be measured."""
        taken = []
        try:
            for _ in range(rounds):
                before()
                taken.append(showdown(*args))
        except RuntimeError as exc:
            progress(f"{label} failed: {exc}")
            figures[label] = {"error": str(exc).splitlines()[0]}
            return
        figures[label] = {
            "process": images_per_s(count, min(t.wall_s for t in taken)),
            "items": images_per_s(count, min(t.items_s for t in taken)),
        }
        progress(f"{label} {figures[label]}")

    best("cold", "--showdown-no-cache")
    best("cache_fill", *cache)  # prepared inputs and predictions written
    best("inference_only", *cache, before=lambda: drop_predictions(out / "cache"))
    best("cached", *cache)
    if not options.skip_n4:
        best("cold_n4", "--showdown-no-cache", "-n", "4")
    return figures


def machine() -> dict[str, Any]:
    """The GPU (None without one), the cores this process may use, onnxruntime's version and providers."""
    return {
        "gpu": gpu_name(),
        "cores": available_cores(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }


def showdown_cell(figure: dict[str, Any] | None) -> str:
    if figure is None:
        return "not run (--skip-n4)"
    if "error" in figure:
        return "failed (the error is on stderr)"
    return f"{figure['process']} ({figure['items']} inside pytest's session)"


def table(figures: dict[str, Any]) -> str:
    """The issue's table, in markdown."""
    raw = figures["raw"]
    rows = [
        (
            f"raw `session.run` on ready tensors, batch {' / '.join(raw)} ({figures['provider']})",
            " / ".join(str(value) for value in raw.values()),
        ),
        (
            f"decode + reference preprocessing in a pool of {figures['machine']['cores']} processes"
            " (the cold ceiling)",
            str(figures["pool"]),
        ),
        ("a naive loop, one image at a time", str(figures["naive"])),
        ("showdown cold, `--showdown-no-cache`", showdown_cell(figures["cold"])),
        (
            "showdown with prepared inputs cached, predictions not (inference only)",
            showdown_cell(figures["inference_only"]),
        ),
        ("showdown fully cached", showdown_cell(figures["cached"])),
        ("showdown cold with `-n 4`", showdown_cell(figures.get("cold_n4"))),
    ]
    return tabulate(rows, headers=("what", "images/s"), tablefmt="github")


def machine_line(figures: dict[str, Any]) -> str:
    machine = figures["machine"]
    return (
        f"Machine: {machine['gpu'] or 'no GPU'}, {machine['cores']} cores,"
        f" onnxruntime {machine['onnxruntime']}"
        f" ({', '.join(machine['providers'])}); {figures['images']} images, fastest of {figures['rounds']}"
        " round(s); showdown rows: whole pytest process (item loop)."
    )


def batch_sizes(text: str) -> list[int]:
    """``--batches``: comma-separated whole numbers >= 1."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=positive, default=384, help="posts in the dataset (default 384)")
    parser.add_argument(
        "--out", type=Path, help="an empty folder for the dataset, caches, runs, table (default: temporary)"
    )
    parser.add_argument("--model", type=Path, help="a WD14 folder instead of the stand-in ViT")
    parser.add_argument("--batches", type=batch_sizes, default=[1, 8, 32, 64], help="default 1,8,32,64")
    parser.add_argument("--rounds", type=positive, default=1, help="fastest of N (default 1)")
    parser.add_argument("--skip-n4", action="store_true", help="no `-n 4` run")
    parser.add_argument("--small", action="store_true", help="64x64 PNGs instead of the Danbooru-like mix")
    parser.add_argument(
        "--require-provider",
        metavar="NAME",
        help="stop at once unless the model runs on this provider (CUDAExecutionProvider on a GPU machine)",
    )
    options = parser.parse_args(argv)
    if options.model is not None and not (options.model / "model.onnx").is_file():
        parser.error(f"--model {options.model}: no model.onnx there")
    with tempfile.TemporaryDirectory(prefix="gpu_table_") as scratch:
        out = options.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        if any(out.iterdir()):
            parser.error(f"--out {out} is not empty (its dataset and cache are made anew)")
        figures = measure(options, out)
        text = f"{table(figures)}\n\n{machine_line(figures)}"
        (out / "gpu_table.md").write_text(text + "\n", encoding="utf-8")
        (out / "gpu_table.json").write_text(json.dumps(figures) + "\n", encoding="utf-8")
    print(text)
    print(json.dumps(figures))
    return 1 if any("error" in value for value in figures.values() if isinstance(value, dict)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
