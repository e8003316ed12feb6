"""The ``tagger-showdown`` command: dataset and tagger housekeeping that needs no pytest run.

All argument parsing and printing lives here; each subcommand hands its parsed options to plain
library functions (``fetch_dataset``, ``dataset_info``, ``find_run``, ``compare_runs``...). The
showdown itself runs in pytest (``pytest --tagger NAME``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Final

import pytest
from tabulate import tabulate

from . import atomic, cache, compare, history, merge
from .dataset import fetch, info
from .dataset.danbooru import DEFAULT_API_URL, MAX_PAGE_SIZE, Credentials, DanbooruClient, RetryPolicy
from .dataset.store import Dataset, is_dataset_file, migrate_dataset
from .errors import ShowdownError
from .gate import baseline_verdicts
from .outputs import summary_tables, write_outputs, write_summary
from .probabilities import probabilities_path
from .settings import ShowdownSettings, is_blank, parse_baselines, parse_ratings
from .taggers import listing
from .taggers.base import LoadOptions
from .taggers.builtin import default_registry
from .taggers.registry import TaggerRegistry
from .tags import RATINGS, TagCategory

#: Exit status after a reader closed our output early (``tagger-showdown info | head``): the status a
#: shell reports for a program ended by SIGPIPE (128 + 13), as ``yes | head`` gives.
EXIT_BROKEN_PIPE: Final = 141


# -- option types: each raises ArgumentTypeError, which argparse turns into a usage error (exit 2) ---


def _bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _ratings(text: str) -> tuple[str, ...]:
    """The same rule as pytest's ``--showdown-ratings`` (:func:`settings.parse_ratings`)."""
    try:
        return parse_ratings(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tags(text: str) -> str:
    if any(term.lower().lstrip("-~").startswith("rating:") for term in text.split()):
        raise argparse.ArgumentTypeError("--tags must not contain rating:, use --ratings")
    return text


def _baseline(text: str) -> str:
    """The same rule as pytest's ``--showdown-baseline`` (:func:`settings.parse_baselines`): each
    value checked here, a tagger given two baselines over all of them by :func:`_baselines`. An
    empty value is refused, as in pytest: it would leave the run ungated."""
    if is_blank(text, listed=True):
        raise argparse.ArgumentTypeError("--baseline was given an empty value (expected NAME=SCORE)")
    try:
        parse_baselines([text], "--baseline")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _baselines(values: Sequence[str]) -> dict[str, float]:
    """Every ``--baseline`` value; before: a repeated name took the last score silently, and of
    ``a=0.5,b=0.5`` only ``a`` counted."""
    try:
        return parse_baselines(values, "--baseline")
    except ValueError as exc:
        raise ShowdownError(str(exc)) from None


# -- subcommands -----------------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    old, new = migrate_dataset(args.db)
    done = f"migrated from version {old} to {new}" if old != new else f"version {new} is up to date"
    print(f"{args.db}: schema {done}")
    return 0


def _add_fetch(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Credentials come from the environment only: DANBOORU_LOGIN and DANBOORU_API_KEY. "
        "Rerun the same command to resume an interrupted fetch; raise --per-rating to extend a dataset."
    )
    parser.add_argument(
        "--db", required=True, type=Path, metavar="PATH", help="dataset file to create or extend"
    )
    parser.add_argument(
        "--per-rating", type=_bounded_int(1), default=50, metavar="N", help="posts per rating (default 50)"
    )
    parser.add_argument(
        "--ratings", type=_ratings, default=RATINGS, metavar="LIST", help="ratings to fetch (default g,s,q,e)"
    )
    parser.add_argument(
        "--tags", type=_tags, default="", help="extra search tags added to each rating's query"
    )
    parser.add_argument(
        "--page-skip",
        type=_bounded_int(0),
        default=0,
        metavar="P",
        help="skip the newest P pages of each rating, whose tags are still incomplete "
        "(the study used 150; default 0)",
    )
    parser.add_argument(
        "--page-size",
        type=_bounded_int(1, MAX_PAGE_SIZE),
        default=20,
        metavar="N",
        help="posts per page, as in Danbooru's listing (default 20)",
    )
    parser.add_argument(
        "--variant",
        choices=("original", "sample"),
        default="original",
        help="store the original file (md5-verified) or the ~850 px sample JPEG (default original)",
    )
    parser.add_argument(
        "--concurrency",
        type=_bounded_int(1, fetch.MAX_CONCURRENCY),
        default=4,
        metavar="N",
        help=f"parallel image downloads (1 to {fetch.MAX_CONCURRENCY}, default 4)",
    )
    parser.add_argument(
        "--api-url",
        default=DEFAULT_API_URL,
        metavar="URL",
        help=f"Danbooru to ask (default {DEFAULT_API_URL})",
    )
    parser.add_argument(
        "--with-tag-relations",
        action="store_true",
        help="also fetch the aliases and implications of the dataset's tags, and Danbooru's related "
        "tags of its most frequent tags (see --related-tags)",
    )
    parser.add_argument(
        "--related-tags",
        type=_bounded_int(0, fetch.MAX_RELATED_TAGS),
        default=None,
        metavar="N",
        help="with --with-tag-relations: fetch the related tags of the dataset's N most frequent tags "
        f"(0 to {fetch.MAX_RELATED_TAGS}, default {fetch.DEFAULT_RELATED_TAGS}); they make the "
        "distance score's closeness",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="seconds to wait for Danbooru to answer (default 60)",
    )
    parser.add_argument(
        "--max-retry-time",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="seconds one request may spend on retries before the fetch gives up (default 300)",
    )


def _fetch(args: argparse.Namespace) -> int:
    """0 when every rating is complete, 1 when some ran out of posts, 130 when interrupted."""
    logging.basicConfig(level=logging.WARNING, format="tagger-showdown: %(message)s")
    if args.related_tags is not None and not args.with_tag_relations:
        raise ShowdownError("--related-tags needs --with-tag-relations")
    options = fetch.FetchOptions(
        per_rating=args.per_rating,
        ratings=args.ratings,
        tags=args.tags,
        page_skip=args.page_skip,
        page_size=args.page_size,
        variant=args.variant,
        concurrency=args.concurrency,
        with_tag_relations=args.with_tag_relations,
        related_tags=fetch.DEFAULT_RELATED_TAGS if args.related_tags is None else args.related_tags,
    )
    retry = RetryPolicy(max_time=args.max_retry_time, read_timeout=args.timeout)
    progress = fetch.make_progress(sys.stderr)
    redirect: AbstractContextManager[object] = nullcontext()
    if isinstance(progress, fetch.BarProgress):
        from tqdm.contrib.logging import logging_redirect_tqdm

        redirect = logging_redirect_tqdm()
    with (
        DanbooruClient(args.api_url, Credentials.from_env(), retry=retry) as client,
        Dataset(args.db, writable=True) as dataset,
        redirect,
    ):
        try:
            result = fetch.fetch_dataset(dataset, client, options, progress)
        except KeyboardInterrupt:
            print("tagger-showdown: interrupted; run the same command again to resume", file=sys.stderr)
            return 130
    print(fetch.format_result(result, args.db))
    return 0 if result.complete else 1


def _info(args: argparse.Namespace) -> int:
    summary = info.dataset_info(args.db)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else info.format_info(summary))
    return 0


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        default=str(history.DEFAULT_STORAGE),
        help="pytest-benchmark's storage folder (--benchmark-storage; default .benchmarks)",
    )


def _history(args: argparse.Namespace) -> int:
    storage = history.storage_path(args.storage)
    runs = (
        [history.find_run(spec, storage) for spec in args.runs] if args.runs else history.saved_runs(storage)
    )
    print(history.format_history(runs, args.tagger))
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Exit status 1 when a tagger regressed by the gate rule, as in CI."""
    storage = history.storage_path(args.storage)
    before, after = history.find_run(args.before, storage), history.find_run(args.after, storage)
    comparison = compare.compare_runs(
        before.document, after.document, resamples=args.resamples, seed=args.seed, top=args.top
    )
    print(f"{before.name} -> {after.name} (paired bootstrap over posts, 95% CI)")
    for run in (before, after):
        if run.remark:
            print(f"note: {run.remark}")
    print(compare.format_comparison(comparison, args.margin))
    failures = compare.regression_failures(comparison, args.margin, before.name)
    for failure in failures:
        print(f"REGRESSION {failure}")
    return 1 if failures else 0


def _merge(args: argparse.Namespace) -> int:
    """Exit status 1 when a --baseline fails on the merged run, as the run itself would."""
    baselines = _baselines(args.baseline)
    written = [args.output, probabilities_path(args.output), *(p for p in (args.report, args.csv) if p)]
    if len({atomic.followed(path) for path in written}) < len(written):
        raise ShowdownError(
            f"-o, its probability store {probabilities_path(args.output)}, --report and --csv must be "
            "different files"
        )
    for path in written:
        kind = atomic.not_a_file_reason(path)
        if kind is not None:
            raise ShowdownError(f"{path} is {kind}, not a regular file (it would be replaced); name a file")
        reason = atomic.unwritable_reason(path.resolve().parent)
        if reason is not None:
            raise ShowdownError(f"{path}: cannot write there ({reason})")
    shards = [Path(run) for run in args.runs]
    _refuse_inputs(written, {p.resolve() for shard in shards for p in (shard, probabilities_path(shard))})
    runs = [history.read_run(Path(run)) for run in args.runs]
    _refuse_inputs(
        written, {Path(str(r.document["dataset"])).resolve() for r in runs if r.document.get("dataset")}
    )
    analysis = merge.merge_runs(runs)
    paths, errors = write_outputs(analysis, json_path=args.output, csv_path=args.csv, report_path=args.report)
    verdicts = baseline_verdicts(analysis.summaries, baselines)
    scored = frozenset(TagCategory(name) for name in analysis.document.get("categories", ()))
    tables = summary_tables(
        analysis, categories_label=ShowdownSettings(categories=scored).categories_label, gate=None
    )
    write_summary(
        lambda line="", **_: print(line),
        tables,
        verdicts=[("baseline", failure) for failure in verdicts.values()],
        written=paths,
        errors=errors,
    )
    return 1 if errors or any(verdicts.values()) else 0


def _refuse_inputs(written: Sequence[Path], inputs: set[Path]) -> None:
    """Raise ShowdownError when an output path is an input (a shard, its probability store, the
    shards' dataset) or any dataset at all (an SQLite file, whatever its name)."""
    for path in written:
        if path.resolve() in inputs or is_dataset_file(path):
            raise ShowdownError(
                f"merge never overwrites an input ({path} is a shard or a dataset): "
                "choose another output path"
            )


def _size(text: str) -> int:
    try:
        return cache.parse_size(text, "--max-size")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _format_usage(usage: Mapping[str, cache.KindUsage]) -> str:
    """The ``cache info`` table: entries, size, size per entry and least recent use per kind."""
    rows: list[list[object]] = []
    for kind, item in usage.items():
        oldest = time.strftime("%Y-%m-%d %H:%M", time.localtime(item.oldest_use)) if item.oldest_use else ""
        per_entry = cache.format_size(item.bytes / item.entries) if item.entries else ""
        rows.append([kind, item.entries, cache.format_size(item.bytes), per_entry, oldest])
    total = sum(item.bytes for item in usage.values())
    rows.append(["total", sum(item.entries for item in usage.values()), cache.format_size(total), "", ""])
    return tabulate(rows, headers=["kind", "entries", "size", "per entry", "oldest use"], tablefmt="plain")


def _add_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("info", "prune", "clear"), help="what to do")
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="PATH",
        help=f"the cache folder (default: {cache.DEFAULT_DIR_NAME} beside pytest's ini file, as in pytest)",
    )
    parser.add_argument(
        "--max-size",
        type=_size,
        metavar="SIZE",
        help="prune: evict least recently used entries until the cache holds at most SIZE (10GB, 500MB)",
    )


def _cache(args: argparse.Namespace) -> int:
    folder = args.dir or cache.default_dir(Path.cwd())
    if not folder.is_dir():
        raise ShowdownError(f"no cache at {folder}: it is not a folder")
    if not cache.is_cache_folder(folder):
        raise ShowdownError(
            f"{folder} is not a tagger-showdown cache (no CACHEDIR.TAG, no {cache.CACHE_VERSION}/): "
            "left as it is"
        )
    # Closed at the end: the last connection moves the database's log into its file, which a prune
    # has just made smaller.
    with contextlib.closing(cache.ShowdownCache(folder, max_size=None)) as store:
        if args.action == "info":
            print(folder)
            print(_format_usage(store.usage()))
        elif args.action == "prune":
            if args.max_size is None:
                print("tagger-showdown: error: cache prune needs --max-size SIZE", file=sys.stderr)
                return 2
            outcome = store.prune(args.max_size)
            print(
                f"{folder}: {cache.format_size(outcome.before)} -> {cache.format_size(outcome.after)}, "
                f"{outcome.deleted} entries evicted"
            )
        else:
            print(f"{folder}: cleared {cache.format_size(store.clear())}")
        return 0


def _add_taggers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "patterns",
        nargs="*",
        metavar="PATTERN",
        help="list only the taggers a glob pattern matches, e.g. 'wd-*-v3' (quote it for the shell)",
    )
    parser.add_argument(
        "--sdwebui-url",
        default=os.environ.get("SDWEBUI_URL"),
        help="also list the models this webui serves (env SDWEBUI_URL; basic auth from SDWEBUI_AUTH)",
    )
    parser.add_argument(
        "--hydrus-dd-url",
        default=os.environ.get("HYDRUS_DD_URL"),
        help="hydrus-dd server (env HYDRUS_DD_URL)",
    )


class _RegistryOfARun:
    """A pytest plugin that keeps the registry a run in the current folder builds (built-in taggers,
    entry points, the rootdir ``conftest.py``'s hook) and stops the run before it collects anything."""

    registry: TaggerRegistry | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_tagger_showdown_register(self, registry: TaggerRegistry) -> None:
        self.registry = registry

    def pytest_sessionstart(self) -> None:
        pytest.exit("listed", returncode=0)


def _taggers(args: argparse.Namespace) -> int:
    run = _RegistryOfARun()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as errors:
        code = pytest.main(["-p", "no:terminal", "-p", "no:cacheprovider", "--co"], plugins=[run])
    if run.registry is None:  # pytest refused the folder's configuration: say why, list the rest
        print(
            f"tagger-showdown: warning: pytest could not start here ({code}): {errors.getvalue().strip()}; "
            "taggers a conftest.py registers are not listed",
            file=sys.stderr,
        )
    registry = run.registry or default_registry()
    options = LoadOptions(sdwebui_url=args.sdwebui_url, hydrus_dd_url=args.hydrus_dd_url)
    print(listing.format_rows(listing.matching_rows(listing.tagger_rows(registry, options), args.patterns)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagger-showdown",
        description="Build and inspect tagger-showdown datasets, taggers and saved runs.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    migrate = commands.add_parser(
        "migrate", help="bring an existing dataset's schema up to date (or roll back an interrupted write)"
    )
    migrate.add_argument("--db", required=True, type=Path, metavar="PATH", help="dataset file")
    migrate.set_defaults(handler=_migrate)

    fetch_command = commands.add_parser(
        "fetch", help="build or extend a dataset from the Danbooru API (resumable)"
    )
    _add_fetch(fetch_command)
    fetch_command.set_defaults(handler=_fetch)

    info_command = commands.add_parser("info", help="summarise a dataset")
    info_command.add_argument("--db", required=True, type=Path, metavar="PATH", help="dataset file")
    info_command.add_argument("--json", action="store_true", help="print the summary as JSON")
    info_command.set_defaults(handler=_info)

    history_command = commands.add_parser("history", help="list saved runs by tagger (score, F1, runtime)")
    history_command.add_argument(
        "runs",
        nargs="*",
        metavar="RUN",
        help="saved runs or --showdown-json files to list (default: every saved run in the storage)",
    )
    _add_storage(history_command)
    history_command.add_argument("--tagger", help="only this tagger")
    history_command.set_defaults(handler=_history)

    compare_command = commands.add_parser(
        "compare", help="compare two runs per tagger with a paired bootstrap (exit 1 on a regression)"
    )
    compare_command.add_argument(
        "before", metavar="RUN_A", help="the earlier run: a file, a saved run number, latest"
    )
    compare_command.add_argument("after", metavar="RUN_B", help="the later run")
    _add_storage(compare_command)
    compare_command.add_argument(
        "--margin",
        type=float,
        default=compare.DEFAULT_MARGIN,
        help=f"a drop beyond this with a CI below 0 is a regression (default {compare.DEFAULT_MARGIN})",
    )
    compare_command.add_argument(
        "--resamples", type=_bounded_int(1), default=compare.DEFAULT_RESAMPLES, help="bootstrap resamples"
    )
    compare_command.add_argument("--seed", type=int, default=compare.SEED, help="bootstrap seed")
    compare_command.add_argument(
        "--top", type=_bounded_int(0), default=5, help="tags listed as gained and lost most"
    )
    compare_command.set_defaults(handler=_compare)

    merge_command = commands.add_parser(
        "merge", help="join the runs of --showdown-shard 1/N ... N/N into one run (its JSON and store)"
    )
    merge_command.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="each shard's --showdown-json file (its .probabilities.npz beside it)",
    )
    merge_command.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT", help="the merged run's JSON"
    )
    merge_command.add_argument("--report", type=Path, metavar="PATH", help="also write the HTML report")
    merge_command.add_argument(
        "--csv", type=Path, metavar="PATH", help="also write every post's result as CSV"
    )
    merge_command.add_argument(
        "--baseline",
        type=_baseline,
        action="append",
        default=[],
        metavar="NAME=SCORE",
        help="the baseline gate, as in pytest",
    )
    merge_command.set_defaults(handler=_merge)

    taggers_command = commands.add_parser(
        "taggers", help="list every known tagger, its source, and whether it can run here"
    )
    _add_taggers(taggers_command)
    taggers_command.set_defaults(handler=_taggers)

    cache_command = commands.add_parser(
        "cache", help="the prepared-input and prediction caches: info, prune --max-size SIZE, clear"
    )
    _add_cache(cache_command)
    cache_command.set_defaults(handler=_cache)
    return parser


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): what it wanted was printed; end quietly, as Unix tools do.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except ShowdownError as exc:
        print(f"tagger-showdown: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
