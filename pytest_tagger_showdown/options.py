"""The plugin's command-line options and ini keys, and reading them into :class:`ShowdownSettings`.

Every option has an ini key of the same name (``--showdown-db`` / ``showdown_db``); the command line
wins. Values are only read here; :func:`settings.build_settings` validates them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import pytest

from .cache import DEFAULT_DIR_NAME
from .settings import ShowdownSettings, build_settings, is_blank

#: ``--showdown-*`` options: name, help, and ``addoption`` arguments plus ``kind`` (the ini type,
#: default string) and ``ini`` (the ini key, default the option's dest).
OPTIONS: Final[tuple[tuple[str, str, dict[str, Any]], ...]] = (
    ("--showdown-db", "dataset file (default: the bundled demo dataset)", {"metavar": "PATH"}),
    (
        "--showdown-threshold",
        "confidence cut-offs: 0.5, general=0.4,character=0.9, mcut=true, each optionally "
        "after NAME: for one tagger",
        {"kind": "linelist", "action": "append", "metavar": "SPEC"},
    ),
    ("--showdown-ratings", "ratings to run, e.g. g,s (default g,s,q,e)", {"metavar": "g,s,q,e"}),
    ("--showdown-limit", "at most N posts, spread over the ratings", {"metavar": "N"}),
    (
        "--showdown-categories",
        "ground-truth tag categories scored: all (default, as in the study) or general+character",
        {"metavar": "CATS"},
    ),
    ("--showdown-json", "write per-tagger aggregates and per-post results here", {"metavar": "PATH"}),
    (
        "--showdown-baseline",
        "NAME=SCORE: fail the run when NAME's average score falls below SCORE",
        {"kind": "linelist", "ini": "showdown_baselines", "action": "append", "metavar": "NAME=SCORE"},
    ),
    (
        "--showdown-providers",
        "onnxruntime execution providers in order, e.g. CUDAExecutionProvider,CPUExecutionProvider",
        {"metavar": "LIST"},
    ),
    (
        "--sdwebui-url",
        "stable-diffusion-webui with the tagger extension, for sdwebui:MODEL taggers (env SDWEBUI_URL; "
        "basic auth from env SDWEBUI_AUTH=user:password)",
        {"metavar": "URL"},
    ),
    ("--hydrus-dd-url", "hydrus-dd server for the hydrus-dd tagger (env HYDRUS_DD_URL)", {"metavar": "URL"}),
    (
        "--showdown-batch-size",
        "images per inference call: N, or auto (default: 1 on CPU, 32 on a GPU)",
        {"metavar": "N"},
    ),
    (
        "--showdown-no-cache",
        "neither read nor write the prepared-input and prediction caches",
        {"kind": "bool", "action": "store_true"},
    ),
    (
        "--showdown-cache-dir",
        f"where the prepared-input and prediction caches live (default: {DEFAULT_DIR_NAME} beside the "
        "ini file, else in the current folder)",
        {"metavar": "PATH"},
    ),
    (
        "--showdown-cache-max-size",
        "size limit of the caches, e.g. 10GB, 500MB or bytes; least recently used entries are "
        "evicted beyond it (default 10GB)",
        {"metavar": "SIZE"},
    ),
    (
        "--showdown-report",
        "write a self-contained HTML report (table, plots, worst posts) here",
        {"metavar": "PATH"},
    ),
    ("--showdown-csv", "write every post's result as CSV here", {"metavar": "PATH"}),
    (
        "--showdown-compare",
        "fail when a tagger's score drops significantly against this saved run: a file, a "
        "pytest-benchmark run number/name (0003) or latest",
        {"metavar": "RUN"},
    ),
    (
        "--showdown-margin",
        "how far an average score may drop against --showdown-compare before failing (default 0.02)",
        {"metavar": "DROP"},
    ),
    (
        "--showdown-shard",
        "run shard K of N: of the posts by rating and id, every N-th from the K-th (join the "
        "shards' runs with tagger-showdown merge)",
        {"metavar": "K/N"},
    ),
    (
        "--showdown-gpus",
        "GPUs the pytest-xdist workers spread over, worker gwI on GPU I mod N (default: the "
        "devices in CUDA_VISIBLE_DEVICES)",
        {"metavar": "N"},
    ),
)


def _dest(name: str) -> str:
    """The attribute pytest stores an option under (``--showdown-db``: ``showdown_db``), also its
    ini key unless :data:`OPTIONS` names another."""
    return name.removeprefix("--").replace("-", "_")


def add_options(parser: pytest.Parser) -> None:
    """Declare ``--tagger`` and the ``--showdown-*`` options with their ini keys."""
    group = parser.getgroup("tagger-showdown", "tagger showdown (score image taggers)")
    group.addoption(
        "--tagger",
        action="append",
        default=[],
        metavar="NAME",
        help="tagger(s) to run: repeatable or comma-separated; 'all' = every tagger that can run "
        "here. With no test of your own asking for a tagger, runs the built-in showdown.",
    )

    for name, help_text, settings in OPTIONS:
        kwargs = dict(settings)
        kind, ini = kwargs.pop("kind", "string"), kwargs.pop("ini", "")
        dest = _dest(name)
        ini_name = ini or dest
        group.addoption(name, dest=dest, help=f"{help_text} (ini: {ini_name})", **kwargs)
        parser.addini(ini_name, help_text, type=kind)


def read_settings(config: pytest.Config) -> ShowdownSettings:
    """The run's settings from the options and ini keys; raises ValueError or ShowdownError for a
    bad value (the plugin turns either into a usage error)."""
    check_given(config)
    return build_settings(
        taggers=config.getoption("tagger"),
        db=_path_value(config, "showdown_db"),
        ratings=_text_value(config, "showdown_ratings"),
        limit=_text_value(config, "showdown_limit"),
        categories=_text_value(config, "showdown_categories"),
        thresholds=config.getoption("showdown_threshold") or [],
        ini_thresholds=config.getini("showdown_threshold"),
        json_path=_path_value(config, "showdown_json"),
        baselines=config.getoption("showdown_baseline") or [],
        ini_baselines=config.getini("showdown_baselines"),
        providers=_text_value(config, "showdown_providers"),
        sdwebui_url=_text_value(config, "sdwebui_url"),
        hydrus_dd_url=_text_value(config, "hydrus_dd_url"),
        report_path=_path_value(config, "showdown_report"),
        csv_path=_path_value(config, "showdown_csv"),
        compare_run=_compare_value(config),
        compare_margin=_text_value(config, "showdown_margin"),
        batch_size=_text_value(config, "showdown_batch_size"),
        shard=_text_value(config, "showdown_shard"),
        gpus=_text_value(config, "showdown_gpus"),
        cache_dir=_cache_dir(config),
        cache_max_size=_text_value(config, "showdown_cache_max_size"),
    )


def check_given(config: pytest.Config) -> None:
    """An option given on the command line (or ``-o``) with an empty value is an error, not "unset":
    ``--showdown-compare "$BASE"`` with ``BASE`` unset would otherwise turn the gate off and pass the
    build. Commas, blanks and, in a list, ``#`` comments count as empty (``--showdown-baseline=,``).
    An empty key in the ini file is not set: nothing below it could be dropped. Raises ValueError
    naming the option."""
    for name, _help, settings in OPTIONS:
        dest = _dest(name)
        value = config.getoption(dest)
        entries = value if isinstance(value, list) else [] if value in (None, False) else [value]
        if any(is_blank(str(entry), listed=settings.get("kind") == "linelist") for entry in entries):
            raise ValueError(
                f"{name} was given an empty value (expected {settings.get('metavar', 'a value')})"
            )
    listed = {
        settings.get("ini") or _dest(name): settings.get("kind") == "linelist"
        for name, _h, settings in OPTIONS
    }
    for entry in config.getoption("override_ini", None) or []:
        key, _eq, value = entry.partition("=")
        if key.strip() in listed and is_blank(value, listed=listed[key.strip()]):
            raise ValueError(f"{key.strip()} was given an empty value")


def gate_requested(config: pytest.Config) -> bool:
    """Whether the command line or ini asks for a gate (a baseline, ``--showdown-compare``), read
    without validating, for a run that may have stopped before its settings were read."""
    return any(
        config.getoption(dest) or config.getini(ini)
        for dest, ini in (
            ("showdown_baseline", "showdown_baselines"),
            ("showdown_compare", "showdown_compare"),
        )
    )


def named_where_set(config: pytest.Config, message: str) -> str:
    """A bad value's message names its command-line option; when the value came from ``-o`` or the
    ini file, name the ini key and where it was set instead (``showdown_limit (set by -o): ...``,
    ``showdown_limit in pytest.ini: ...``), so the user edits the right line."""
    for name, _help, settings in OPTIONS:
        dest = _dest(name)
        ini_name = settings.get("ini") or dest
        given = config.getoption(dest) not in (None, False)
        if message.startswith(name) and not given and _ini_is_set(config, ini_name):
            return f"{ini_name}{_ini_source(config, ini_name)}{message[len(name) :]}"
        if message.startswith(f"{ini_name}:") or message.startswith(f"{ini_name} "):  # said by its parser
            return f"{ini_name}{_ini_source(config, ini_name)}{message[len(ini_name) :]}"
    return message


def _ini_source(config: pytest.Config, ini_name: str) -> str:
    """Where an ini key's value came from: pytest's ``-o`` (``--override-ini``), which wins over
    the file, else the ini file pytest read."""
    overrides = config.getoption("override_ini", None) or []
    if any(entry.partition("=")[0].strip() == ini_name for entry in overrides):
        return " (set by -o)"
    return f" in {config.inipath.name}" if config.inipath else ""


def _ini_is_set(config: pytest.Config, name: str) -> bool:
    try:
        return bool(config.getini(name))
    except (ValueError, pytest.UsageError):  # set, to what pytest cannot read (``showdown_no_cache = maybe``)
        return True


def _path_value(config: pytest.Config, name: str) -> Path | None:
    """A path option: relative to the working directory on the command line, to the ini file in ini."""
    value = config.getoption(name)
    if value:
        return Path(value)
    ini_value = config.getini(name)
    if not ini_value:
        return None
    return _base(config) / str(ini_value)


def _base(config: pytest.Config) -> Path:
    """What relative ini paths and the default cache are relative to: the ini file's folder, else
    the invocation folder. Never pytest's rootdir guess: before this plugin's options are known,
    pytest takes the value of ``--showdown-db ../x.db`` (space-separated) for a test path, and a
    rootdir guessed from it would move the cache out of the project."""
    return config.inipath.parent if config.inipath else config.invocation_params.dir


def _compare_value(config: pytest.Config) -> str | None:
    """``--showdown-compare``/``showdown_compare``: a run's file, or a saved run's name, number or
    ``latest``. From the ini, a file is relative to the ini file, like every ini path: a value that
    is a file there (what :func:`history.find_run` tries first), or that looks like a path (holds a
    ``/`` or ends in ``.json``), is taken there; a run's name or number stays as it is."""
    value = config.getoption("showdown_compare")
    if value:
        return str(value)
    spec = str(config.getini("showdown_compare")).strip()
    if not spec:
        return None
    in_ini_folder = _base(config) / spec
    looks_like_path = "/" in spec or os.sep in spec or spec.endswith(".json")
    return str(in_ini_folder) if in_ini_folder.is_file() or looks_like_path else spec


def _text_value(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name)
    return str(value) if value else (str(config.getini(name)) or None)


def _cache_dir(config: pytest.Config) -> Path | None:
    try:
        off = config.getoption("showdown_no_cache") or config.getini("showdown_no_cache")
    except (ValueError, pytest.UsageError) as exc:  # pytest reports a bad bool as a UsageError
        raise ValueError(f"--showdown-no-cache: {exc}") from None
    if off:
        return None
    return _path_value(config, "showdown_cache_dir") or _base(config) / DEFAULT_DIR_NAME
