"""The ``tagger-showdown`` command: dataset and tagger housekeeping that needs no pytest run.

Each subcommand is a thin argparse wrapper over a library function; the showdown itself runs in pytest
(``pytest --tagger NAME``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .dataset.store import Dataset
from .errors import ShowdownError


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ShowdownError as exc:
        print(f"tagger-showdown: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
