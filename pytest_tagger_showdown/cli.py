"""The ``tagger-showdown`` command: dataset and tagger housekeeping that needs no pytest run.

Each subcommand is a thin argparse wrapper over a library function; the showdown itself runs in pytest
(``pytest --tagger NAME``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import cache, compare, history
from .dataset import fetch, info
from .dataset.store import Dataset
from .errors import ShowdownError
from .taggers import listing


def _migrate(args: argparse.Namespace) -> int:
    with Dataset(args.db, writable=True):
        pass
    print(f"{args.db}: schema is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagger-showdown",
        description="Build and inspect tagger-showdown datasets, taggers and saved runs.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="bring a dataset's schema up to date")
    migrate.add_argument("--db", required=True, help="dataset file")
    migrate.set_defaults(handler=_migrate)
    fetch_command = commands.add_parser(
        "fetch", help="build or extend a dataset from the Danbooru API (resumable)"
    )
    fetch.add_arguments(fetch_command)
    fetch_command.set_defaults(handler=fetch.run)
    info_command = commands.add_parser("info", help="summarise a dataset")
    info.add_arguments(info_command)
    info_command.set_defaults(handler=info.run)
    history_command = commands.add_parser("history", help="list saved runs by tagger (score, F1, runtime)")
    history.add_arguments(history_command)
    history_command.set_defaults(handler=history.run)
    compare_command = commands.add_parser(
        "compare", help="compare two runs per tagger with a paired bootstrap (exit 1 on a regression)"
    )
    compare.add_arguments(compare_command)
    compare_command.set_defaults(handler=compare.run)
    taggers_command = commands.add_parser(
        "taggers", help="list every known tagger, its source, and whether it can run here"
    )
    listing.add_arguments(taggers_command)
    taggers_command.set_defaults(handler=listing.run)
    cache_command = commands.add_parser(
        "cache", help="the prepared-input and prediction caches: info, prune --max-size SIZE, clear"
    )
    cache.add_arguments(cache_command)
    cache_command.set_defaults(handler=cache.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (ShowdownError, ValueError, argparse.ArgumentTypeError) as exc:
        print(f"tagger-showdown: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
