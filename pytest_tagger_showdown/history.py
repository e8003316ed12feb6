"""Saved runs: showdown results inside pytest-benchmark's storage, and plain ``--showdown-json`` files.

A run saved with ``--benchmark-save``/``--benchmark-autosave`` is ``.benchmarks/<machine>/NNNN_name.json``;
the plugin adds its results document under the key :data:`DOCUMENT_KEY` (pytest-benchmark's
``pytest_benchmark_update_json`` hook), so timings and scores of a run live in one file. Under
pytest-xdist pytest-benchmark saves nothing, so a ``--showdown-json`` file works as a run too.

Every run asked to be saved is saved with its showdown results: when pytest-benchmark saves nothing
(it saves only runs with timed benchmarks: not one whose predictions all came from the cache, nor
one under pytest-xdist, where it is disabled), :func:`save_run` saves it through pytest-benchmark's
own hooks and storage, so the file, its name (``NNNN_<name>.json``) and its fields are the ones
pytest-benchmark would have written.

A run is named on the command line by a file path, by a saved run's number or name prefix
(``0003``, ``0003_mybranch``) or by ``latest``: the newest saved run with showdown results that
passed its gates (:func:`gate_failures`), so that a red build, saved by ``--benchmark-autosave``,
never becomes the baseline that turns its own rerun green. An ungated run (no gate option) failed
nothing, so it can be ``latest``: it judged nothing, but its scores are a valid baseline. A run
stopped by Ctrl-C (``interrupted``) is refused wherever it is named: its scores cover only the posts
that ran.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from .benchmarking import ONE_ROUND_QUARTILES
from .columns import pack
from .dataset.post import Post
from .errors import ShowdownError

#: Where in a pytest-benchmark JSON file the showdown's results document lives.
DOCUMENT_KEY: Final = "tagger_showdown"
DEFAULT_STORAGE: Final = Path(".benchmarks")
LATEST: Final = "latest"
#: Statistics a one-round benchmark need not repeat: pytest-benchmark reads none of them back except
#: ``ops``, which it recomputes (``1 / mean``) when a saved run lacks it, and the quartiles its
#: histograms draw, which :func:`benchmarking.collapsed` restores from the mean (each is the one time).
_DERIVED_STATS: Final = ("total", "iqr_outliers", "stddev_outliers", "ops", *ONE_ROUND_QUARTILES)


@dataclass(frozen=True)
class SavedRun:
    """One run's results document and where it came from."""

    name: str
    path: Path
    document: Mapping[str, Any]
    datetime: str | None = None
    commit: str | None = None
    #: How the run was chosen, when a reader should know: ``latest`` skipped runs that failed their
    #: gates, or the run named failed its own gates.
    remark: str | None = None


def save_in_benchmark(output_json: dict[str, Any], document: Mapping[str, Any]) -> None:
    """Put a results document into pytest-benchmark's JSON (its ``pytest_benchmark_update_json``
    hook), compactly, about 1 kB per (tagger, post) in all (pytest-benchmark writes one line per
    value, indented): the per-post columns packed, and in each showdown item's benchmark

    - ``params`` naming the post by its id (not pytest-benchmark's ``UNSERIALIZABLE[Post(...)]``),
    - times to the microsecond (a tagger takes milliseconds per image at least, and its time moves
      by percents from run to run),
    - no statistics a single round makes redundant (:data:`_DERIVED_STATS`), and
    - ``options`` (the same for every item) once, as the document's ``benchmark_options``.

    Fewer values also make pytest-benchmark's save lighter: it encodes the run with ``indent``,
    which Python's JSON encoder does in pure Python, holding two small strings per value until it
    joins them (about 4 kB per item: 280 MB at 30,000 posts x 2 taggers, before this trimming)."""
    options: dict[str, Any] | None = None
    for bench in output_json.get("benchmarks", ()):
        params = bench.get("params") or {}
        if not isinstance(params.get("post"), Post):
            continue
        bench["params"] = {
            name: value.id if isinstance(value, Post) else value for name, value in params.items()
        }
        item_options = bench.pop("options", None)
        options = options or item_options
        stats = bench.get("stats") or {}
        if stats.get("rounds") == 1:
            for name in _DERIVED_STATS:
                stats.pop(name, None)
        for name, value in stats.items():
            if isinstance(value, float):
                stats[name] = round(value, 6)
    output_json[DOCUMENT_KEY] = {
        **document,
        "posts": pack(document["posts"]),
        **({"benchmark_options": options} if options else {}),
    }


def save_run(benchmark_session: Any, config: Any) -> Path:
    """Save a run that pytest-benchmark would not, as pytest-benchmark's ``handle_saving`` does:
    machine and commit info and the JSON from its hooks (``pytest_benchmark_update_json`` adds the
    showdown's document), stored by its storage under the next number and the ``--benchmark-save``
    or ``--benchmark-autosave`` name. ``benchmark_session`` is pytest-benchmark's session object
    (``config._benchmarksession``); returns the file written."""
    hook = config.hook
    name = benchmark_session.save or benchmark_session.autosave
    machine_info = benchmark_session.get_machine_info()
    commit_info = hook.pytest_benchmark_generate_commit_info(config=config)
    hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
    output_json = hook.pytest_benchmark_generate_json(
        config=config, benchmarks=[], include_data=False, machine_info=machine_info, commit_info=commit_info
    )
    hook.pytest_benchmark_update_json(config=config, benchmarks=[], output_json=output_json)
    storage = benchmark_session.storage
    path: Path = storage.get(f"{storage._next_num}_{name}.json")
    storage.save(output_json, name)
    return path


def storage_path(option: str | None) -> Path:
    """pytest-benchmark's ``--benchmark-storage`` value (``file://PATH`` or ``PATH``) as a path."""
    if not option:
        return DEFAULT_STORAGE
    if "://" in option and not option.startswith("file://"):
        raise ShowdownError(f"saved runs can only be read from file storage, not {option}")
    return Path(option.removeprefix("file://"))


def machine_id() -> str:
    """pytest-benchmark's folder name for this machine (its ``get_machine_id``)."""
    return "-".join(
        (
            platform.system(),
            platform.python_implementation(),
            ".".join(platform.python_version_tuple()[:2]),
            platform.architecture()[0],
        )
    )


def read_run(path: Path) -> SavedRun:
    """A saved benchmark JSON carrying showdown results, or a ``--showdown-json`` document; raises
    ShowdownError when it is neither, or when it is an interrupted run (:func:`check_complete`)."""
    run = _read(path)
    check_complete(run)
    return run


def check_complete(run: SavedRun) -> None:
    """Raise ShowdownError for a run stopped by Ctrl-C: its scores cover only the posts that ran, so
    as a compare target or merge input it would hide a drop on the posts that did not."""
    if run.document.get("interrupted"):
        raise ShowdownError(
            f"{run.path} is an interrupted run (stopped before every post ran): it can be neither "
            "compared nor merged; run it again to the end"
        )


def gate_failures(document: Mapping[str, Any]) -> list[str]:
    """The gates a saved run failed, as ``GATE TAGGER`` (``compare demo-small``) from its recorded
    ``gates``; empty when it passed or was not gated."""
    return [
        f"{g.get('gate')} {g.get('tagger')}"
        for g in document.get("gates") or ()
        if g.get("failure") is not None
    ]


def _read(path: Path) -> SavedRun:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ShowdownError(f"cannot read the saved run {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ShowdownError(f"{path} is not a saved run (expected a JSON object)")
    if DOCUMENT_KEY in data:
        return SavedRun(
            name=path.stem,
            path=path,
            document=data[DOCUMENT_KEY],
            datetime=data.get("datetime"),
            commit=_commit_label(data.get("commit_info") or {}),
        )
    if "posts" in data and "taggers" in data:
        return SavedRun(name=path.stem, path=path, document=data, datetime=data.get("created"))
    if "benchmarks" in data:
        raise ShowdownError(
            f"{path} was saved without tagger-showdown results (run pytest --tagger NAME "
            "with --benchmark-save or --benchmark-autosave)"
        )
    raise ShowdownError(f"{path} is neither a saved benchmark run nor a --showdown-json file")


def _saved_files(storage: Path) -> list[Path]:
    return sorted(storage.glob("*/[0-9][0-9][0-9][0-9]_*.json"), key=lambda p: (p.name, p.parent.name))


def saved_runs(storage: Path) -> list[SavedRun]:
    """Every saved run in ``storage`` that carries showdown results, oldest first."""
    runs: list[SavedRun] = []
    for path in _saved_files(storage):
        try:
            runs.append(read_run(path))
        except ShowdownError:
            continue
    return runs


def latest_run(storage: Path) -> SavedRun:
    """The newest saved run in ``storage`` that passed its gates (``latest``), its :attr:`remark`
    naming the newer runs it skipped; raises ShowdownError when none passed."""
    runs = saved_runs(storage)
    if not runs:
        raise ShowdownError(f"no saved run with showdown results in {storage}")
    failed = [run for run in runs if gate_failures(run.document)]
    passed = [run for run in runs if not gate_failures(run.document)]
    if not passed:
        raise ShowdownError(
            f"no saved run in {storage} passed its gates ({', '.join(r.name for r in failed)} failed): "
            "name one by its number to compare with it anyway"
        )
    chosen = passed[-1]
    skipped = [run.name for run in failed if runs.index(run) > runs.index(chosen)]
    if not skipped:
        return chosen
    remark = f"latest is {chosen.name}: skipped {', '.join(skipped)}, which failed their gates"
    return replace(chosen, remark=remark)


def find_run(spec: str, storage: Path = DEFAULT_STORAGE) -> SavedRun:
    """The run ``spec`` names: a file, ``latest`` (:func:`latest_run`), a saved run's number (``1``
    or ``0001``) or a prefix of its name in ``storage``; raises ShowdownError naming the saved runs
    when none matches, or when the run is interrupted. A run named explicitly that failed its own
    gates is returned with a :attr:`SavedRun.remark` saying so."""
    if spec == LATEST and not Path(spec).is_file():
        return latest_run(storage)
    return _with_own_failures(_named_run(spec, storage))


def _with_own_failures(run: SavedRun) -> SavedRun:
    """A run named explicitly may have failed its own gates: allowed, and said."""
    failures = gate_failures(run.document)
    if not failures:
        return run
    return replace(run, remark=f"{run.name} failed its own gates ({', '.join(failures)})")


def _named_run(spec: str, storage: Path) -> SavedRun:
    candidate = Path(spec)
    if candidate.is_file():
        return read_run(candidate)
    # A bare number is pytest-benchmark's run number, which it writes with four digits (1 -> 0001_).
    prefix = f"{int(spec):04d}_" if spec.isdigit() else spec
    matches = [p for p in _saved_files(storage) if p.name.startswith(prefix)]
    if len(matches) > 1:
        here = [p for p in matches if p.parent.name == machine_id()]
        matches = here if len(here) == 1 else matches
    if not matches:
        known = ", ".join(p.stem for p in _saved_files(storage)) or "none"
        raise ShowdownError(
            f"no saved run {spec!r}: not a file, and not in {storage} (saved runs there: {known})"
        )
    if len(matches) > 1:
        names = ", ".join(f"{p.parent.name}/{p.name}" for p in matches)
        raise ShowdownError(f"{spec!r} matches several saved runs ({names}): name one fully")
    return read_run(matches[0])


#: How the history table writes each number column; everything else is shown as it is.
_NUMBER_FORMATS: Final = {
    "images": "{:.0f}",
    "avg score": "{:.3f}",
    "F1": "{:.3f}",
    "F1@P=R": "{:.3f}",
    "mAP": "{:.3f}",
    "distance score": "{:.3f}",
    "avg s/img": "{:.4f}",
}


def _commit_label(commit: Mapping[str, Any]) -> str | None:
    """A git hash shortened to 8 digits (``+`` when dirty); other ids (``unversioned``) whole."""
    commit_id = commit.get("id")
    if not commit_id:
        return None
    text = str(commit_id)
    short = text[:8] if re.fullmatch(r"[0-9a-f]{12,}", text) else text
    return f"{short}{'+' if commit.get('dirty') else ''}"


def history_rows(runs: Iterable[SavedRun], tagger: str | None = None) -> list[dict[str, Any]]:
    """One row per (run, tagger): the headline numbers of each saved run."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        metrics = run.document.get("metrics", {})
        for name, summary in run.document.get("taggers", {}).items():
            if tagger is not None and name != tagger:
                continue
            overall = metrics.get(name, {}).get("overall", {})
            rows.append(
                {
                    "tagger": name,
                    "run": run.name,
                    "date": (run.datetime or "")[:19].replace("T", " ") or None,
                    "commit": run.commit,
                    "images": summary.get("images"),
                    "avg score": summary.get("avg_score"),
                    "F1": summary.get("f1"),
                    "F1@P=R": overall.get("f1_at_equal_pr"),
                    "mAP": overall.get("map"),
                    "distance score": metrics.get(name, {}).get("distance_score"),
                    "avg s/img": summary.get("avg_runtime_s"),
                    "gates": _gates_text(run.document),
                }
            )
    return rows


def _gates_text(document: Mapping[str, Any]) -> str | None:
    """``failed`` or ``passed`` for a gated run (``latest`` skips failed ones), None when ungated:
    a run records ``gates: []`` when it judged nothing, and nothing judged is not a pass."""
    if not document.get("gates"):
        return None
    return "failed" if gate_failures(document) else "passed"


def format_history(runs: Sequence[SavedRun], tagger: str | None = None) -> str:
    """The runs as a table grouped by tagger, oldest run first within a tagger.

    Every cell is written whole: text (run names, commits such as ``unversioned``) as it is, numbers
    with the digits of :data:`_NUMBER_FORMATS`; a column no run has is left out.
    """
    import pandas as pd  # type: ignore[import-untyped]  # pandas ships no type information

    rows = history_rows(runs, tagger)
    if not rows:
        return "no saved run with showdown results" + (f" for {tagger}" if tagger else "")
    frame = pd.DataFrame(rows).dropna(axis="columns", how="all").sort_values("tagger", kind="stable")
    for column, spec in _NUMBER_FORMATS.items():
        if column in frame:
            frame[column] = frame[column].map(lambda v, spec=spec: None if pd.isna(v) else spec.format(v))
    cells = frame.astype(object).where(frame.notna(), "-")
    table: str = cells.to_markdown(
        index=False,
        tablefmt="github",
        disable_numparse=True,
        colalign=["right" if column in _NUMBER_FORMATS else "left" for column in cells.columns],
    )
    return table
