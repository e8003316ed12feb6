"""One pytest run's showdown: settings, registry, engine, dataset, results, gates and outputs.

The plugin module only declares options, hooks and fixtures; each hook hands off to this object (the
shape of syrupy's ``SnapshotSession`` and pytest-benchmark's ``BenchmarkSession``). One lives per
process; on the controller (or without pytest-xdist) it also collects every item's result, analyses
the run once, applies both gates and writes the outputs.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import pytest

from .analysis import RunAnalysis, analyse_run
from .cache import ShowdownCache
from .compare import NOTHING_COMPARED, CompareGate, check_comparable, gate_against
from .dataset.post import Post
from .dataset.store import Dataset
from .devices import shared_gpu_warning, visible_gpus, worker_device
from .engine import Engine
from .errors import ShowdownError, TaggerLoadError
from .gate import baseline_verdicts
from .history import SavedRun, find_run, save_in_benchmark, save_run, storage_path
from .options import gate_requested, named_where_set, read_settings
from .outputs import summary_tables, write_outputs, write_summary
from .pool import TaggerPool
from .probabilities import ROW_PROPERTY, ProbabilityCollector, RowEncoder, probabilities_path
from .progress import Progress, is_compact
from .results import RESULT_PROPERTY, PostResult, package_version
from .settings import ShowdownSettings, check_output_paths, check_tagger_names
from .tag_distance import RelatedTags
from .taggers.backends import ONNX_BACKENDS, check_servers
from .taggers.base import Tagger
from .taggers.builtin import default_registry
from .taggers.registry import TaggerRegistry
from .taggers.wd14 import execution_providers

#: An item using all of these is planned ahead (see :meth:`ShowdownSession.plan`).
SHOWDOWN_FIXTURES = frozenset({"tagger", "post", "showdown"})
#: The node id of the built-in showdown module (its items: ``tagger-showdown::test_showdown[...]``).
SUITE_NODE: Final = "tagger-showdown"
NO_TAGGER = "no tagger selected: pass --tagger NAME or mark the test @pytest.mark.tagger('NAME')"
#: The ``user_properties`` key a tagger's facts (:meth:`Engine.facts`) travel under, once per tagger
#: and process (to the controller under pytest-xdist, too).
FACTS_PROPERTY: Final = "tagger_showdown_facts"
#: The keyword of the built-in showdown's items (its mark), seen in every report of one.
SHOWDOWN_KEYWORD: Final = "showdown"
#: Node ids of the gate verdicts' test cases (:class:`GateVerdict`).
GATE_PREFIX: Final = f"{SUITE_NODE}::gate["
#: The ``user_properties`` key a tagger's name travels under the first time a test of this process
#: takes it (:meth:`ShowdownSession.tagger`): its tests ran, whether or not they scored a post.
HANDED_PROPERTY: Final = "tagger_showdown_handed"
#: The ``workeroutput`` key an xdist worker sends the taggers its collected tests asked for under.
COLLECTED_OUTPUT: Final = "tagger_showdown_collected"


@dataclass(frozen=True)
class GateVerdict:
    """One gated tagger's outcome, reported as a test case (``tagger-showdown::gate[KIND-NAME]``)
    so that pytest's final line and the JUnit XML count it; ``failure`` None means it passed."""

    kind: str
    tagger: str
    failure: str | None

    @property
    def name(self) -> str:
        return f"gate[{self.kind}-{self.tagger}]"

    @property
    def nodeid(self) -> str:
        return f"{SUITE_NODE}::{self.name}"

    def reports(self) -> list[pytest.TestReport]:
        """Setup, call and teardown reports, as a test that ran would give."""
        location = ("tagger-showdown", None, self.name)
        return [
            pytest.TestReport(
                nodeid=self.nodeid,
                location=location,
                keywords={"tagger-showdown": 1},
                outcome="failed" if when == "call" and self.failure else "passed",
                longrepr=self.failure if when == "call" and self.failure else None,
                when=when,
                duration=0.0,
            )
            for when in ("setup", "call", "teardown")
        ]


def without_payload(properties: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """``user_properties`` without the showdown's result and probability row."""
    return [(name, value) for name, value in properties if name not in (RESULT_PROPERTY, ROW_PROPERTY)]


def xdist_workers(config: pytest.Config) -> int:
    """pytest-xdist's worker count (``-n N``, ``-n auto`` resolved by xdist before configure); 0
    without xdist."""
    try:
        return int(config.getoption("numprocesses", 0) or 0)
    except (TypeError, ValueError):  # no xdist, or a value xdist has not resolved
        return 0


#: Why a gated run that was not judged, or whose gate failed, does not exit 0.
GATED_EXIT: Final = "a gate is configured: exit code 2, never 0"

#: ``config.option`` names of runs that never mean to run a test (``--collect-only``, ``--help``,
#: ``--version``, ``--fixtures``, ``--fixtures-per-test``, ``--markers``, ``--setup-only``,
#: ``--setup-plan``): their exit code is pytest's own.
NO_RUN_OPTIONS: Final = (
    "collectonly",
    "help",
    "version",
    "showfixtures",
    "show_fixtures_per_test",
    "markers",
    "setuponly",
    "setupplan",
)


def runs_no_test(config: pytest.Config) -> bool:
    """Whether the run never means to run a test (one of :data:`NO_RUN_OPTIONS`)."""
    return any(getattr(config.option, name, False) for name in NO_RUN_OPTIONS)


def gated_exit_code(
    config: pytest.Config, session: ShowdownSession | None, code: int | pytest.ExitCode
) -> int | pytest.ExitCode:
    """The run's exit code, with a gate configured never 0 unless every gate was judged and passed:
    a ``pytest.exit(returncode=0)`` from any hook (a conftest's ``pytest_configure`` or
    ``pytest_sessionstart``, collection, a test, another plugin's ``pytest_sessionfinish``) ended
    the run before its gates were judged (exit 2) or replaced a failed gate's exit code (exit 1).
    ``session`` is None when the run stopped before the plugin's ``pytest_configure``."""
    if code != pytest.ExitCode.OK or hasattr(config, "workerinput") or not gate_requested(config):
        return code
    if runs_no_test(config):
        return code
    if session is not None and session.gates_judged:
        if all(verdict.failure is None for verdict in session.verdicts):
            return code
        sys.stderr.write("tagger-showdown: a gate failed, but the run was to exit 0: exit code 1\n")
        return pytest.ExitCode.TESTS_FAILED
    if session is None or not session.explained:
        sys.stderr.write(f"tagger-showdown: the run ended before its gates were judged; {GATED_EXIT}\n")
    return pytest.ExitCode.INTERRUPTED


def usage_error(exc: Exception | str, where: str = "") -> pytest.UsageError:
    """The one-line usage error (exit code 4) every bad option, ini value or mark becomes."""
    return pytest.UsageError(f"tagger-showdown: {where}{exc}")


@dataclass
class ShowdownSession:
    """Per-process state of a run and what the plugin's hooks do with it."""

    settings: ShowdownSettings
    registry: TaggerRegistry
    is_worker: bool
    results: list[PostResult] = field(default_factory=list)
    rows: RowEncoder = field(default_factory=RowEncoder)
    collector: ProbabilityCollector = field(default_factory=ProbabilityCollector)
    compare_run: SavedRun | None = None
    compare_gate: CompareGate | None = None
    verdicts: list[GateVerdict] = field(default_factory=list)
    #: The gates judged the run (:meth:`gate`), and the terminal said why a stopped one was not.
    gates_judged: bool = False
    explained: bool = False
    #: Lines the gates' verdicts need read with: a gate judged a tagger over some posts only.
    notes: list[str] = field(default_factory=list)
    analysis: RunAnalysis | None = None
    #: The onnxruntime provider the ONNX taggers run on (None: none selected, or no onnxruntime), and
    #: the warnings about it: ``--showdown-providers`` asked for one this machine lacks, or several
    #: xdist workers would share one GPU.
    provider: str | None = None
    provider_warnings: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    #: The terminal summary's tables, rendered when the run concludes (:meth:`conclude`).
    tables: list[str] | None = None
    _files_written: bool = False
    #: Outputs that could not be written: the run fails, naming each.
    write_errors: list[str] = field(default_factory=list)
    #: A run stopped by Ctrl-C: outputs marked so, neither gated nor saved as history.
    interrupted: bool = False
    #: The saved run this plugin wrote itself (when pytest-benchmark had no timing to save).
    saved: Path | None = None
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _facts_sent: set[str] = field(default_factory=set)
    _saw_items: bool = False
    _saw_showdown: bool = False
    #: The taggers collected tests were parametrized with, before any deselection (on the
    #: controller, those of every xdist worker too: :meth:`take_collected`).
    _collected: set[str] = field(default_factory=set)
    #: The taggers a test took (the ``tagger`` fixture): here, and on the controller from every process.
    _handed: set[str] = field(default_factory=set)
    _planned: set[str] = field(default_factory=set)
    #: Node ids of the built-in showdown given as arguments (:meth:`take_node_ids`).
    _node_ids: list[str] = field(default_factory=list)
    _dataset: Dataset | None = None
    _posts: list[Post] | None = None
    _all_posts: list[Post] | None = None
    _engine: Engine | None = None
    #: Names where a bad value was set (:func:`options.named_where_set` for this run's config).
    named: Callable[[str], str] = str
    #: The run loop's pytest session (for its item count), and on a long run, its progress lines.
    _loop: pytest.Session | None = None
    _progress: Progress | None = None
    #: ``--collect-only``, ``--setup-plan``... (no item runs), or a session pytest ended in a usage
    #: or internal error (nothing was judged): no analysis, gate, table or output.
    no_run: bool = False

    @classmethod
    def start(cls, config: pytest.Config) -> ShowdownSession:
        """Read and validate every option and ini value now, at configure time; raises
        :class:`pytest.UsageError` for a bad one (an unknown tagger, a missing dataset or saved run)."""
        try:
            settings = read_settings(config)
            registry = default_registry()
            config.hook.pytest_tagger_showdown_register(registry=registry, config=config)
            settings = replace(settings, taggers=tuple(registry.select(settings.taggers)))
            check_tagger_names(settings, settings.taggers, registry.resolve)
            check_servers((registry.resolve(n) for n in settings.taggers), settings.load_options())
        except (ValueError, ShowdownError) as exc:
            raise usage_error(named_where_set(config, str(exc))) from exc
        session = cls(settings, registry, is_worker=hasattr(config, "workerinput"))
        session.named = functools.partial(named_where_set, config)
        if session.is_worker:
            return session.with_posts()  # the controller checked what only it uses: outputs, compare run
        if settings.compare_run:
            try:
                storage = storage_path(config.getoption("benchmark_storage", None))
                session.compare_run = find_run(settings.compare_run, storage)
                check_comparable(session.compare_run.document, [c.value for c in settings.categories])
            except (ValueError, ShowdownError) as exc:
                raise usage_error(named_where_set(config, f"--showdown-compare: {exc}")) from exc
        inputs: dict[str, Path] = {}
        if session.compare_run is not None:
            inputs["--showdown-compare"] = session.compare_run.path
            inputs["--showdown-compare's probability store"] = probabilities_path(session.compare_run.path)
        if config.inipath is not None:
            inputs[f"the ini file {config.inipath.name}"] = config.inipath
        try:
            check_output_paths(settings, inputs)
        except ValueError as exc:
            raise usage_error(named_where_set(config, str(exc))) from exc
        session.choose_provider(xdist_workers(config))
        return session.with_posts()

    def with_posts(self) -> ShowdownSession:
        """Read the posts now, so that a dataset that cannot be read is a usage error."""
        if self.settings.taggers:
            self.posts()
        return self

    def choose_provider(self, workers: int) -> None:
        """Say now which provider the selected ONNX taggers will run on, and warn when a requested
        one is not available here (onnxruntime would silently fall back to the CPU) or when more of
        the ``workers`` xdist workers than GPUs would each load the models on one GPU."""
        onnx = [n for n in self.settings.taggers if self.registry.resolve(n).backend in ONNX_BACKENDS]
        choice = execution_providers(self.settings.providers) if onnx or self.settings.providers else None
        if choice is None:
            return
        use, missing = choice
        self.provider = use[0] if use and onnx else None
        if missing:
            self.provider_warnings.append(
                f"tagger-showdown: warning: {', '.join(missing)} requested but not available here; "
                f"ONNX taggers run on {', '.join(use)}"
            )
        gpus = self.settings.gpus or visible_gpus(os.environ)
        shared = shared_gpu_warning(workers, gpus, self.provider, onnx)
        if shared is not None:
            self.provider_warnings.append(shared)

    # -- what the run works on -------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The batching, prefetching, caching pipeline every showdown item goes through."""
        if self._engine is None:
            settings = self.settings
            device = worker_device(
                os.environ.get("PYTEST_XDIST_WORKER"), settings.gpus or visible_gpus(os.environ)
            )
            pool = TaggerPool(self.registry, settings.load_options(cuda_device=device), settings.thresholds)
            cache = (
                None
                if settings.cache_dir is None
                else ShowdownCache(settings.cache_dir, settings.cache_max_size)
            )
            self._engine = Engine(pool, settings.db, batch_size=settings.batch_size, cache=cache)
        return self._engine

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = Dataset(self.settings.db)
        return self._dataset

    def posts(self) -> list[Post]:
        """The posts this run tags (read once): this shard's share under ``--showdown-shard``."""
        if self._posts is None:
            shard = self.settings.shard
            everything = self.all_posts()
            self._posts = everything if shard is None else shard.select(everything)
        return self._posts

    def all_posts(self) -> list[Post]:
        """Every post of the run before sharding: tag closeness and categories come from these, so a
        shard scores its posts exactly as the whole run does. A dataset that cannot be read is a
        usage error."""
        if self._all_posts is None:
            try:
                self._all_posts = self.dataset.posts(self.settings.ratings, self.settings.limit)
            except ShowdownError as exc:
                raise usage_error(self.named(f"--showdown-db: {exc}")) from exc
        return self._all_posts

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()  # its threads write the cache until then
            if self._engine.cache is not None:
                self._engine.cache.close()
        if self._dataset is not None:
            self._dataset.close()

    # -- collection ------------------------------------------------------------------------------

    def header(self) -> list[str]:
        """The report header: a line naming the posts, the dataset and the taggers, and the provider
        warning if any."""
        settings = self.settings
        warning = list(self.provider_warnings)
        if not settings.taggers:
            return warning
        source = (
            "the bundled demo dataset (pass --showdown-db to use your own)"
            if settings.is_demo
            else str(settings.db)
        )
        shard = settings.shard
        share = "" if shard is None else f" (shard {shard.label} of {len(self.all_posts())})"
        return [
            f"tagger-showdown: {len(self.posts())} posts{share} from {source}; "
            f"taggers: {', '.join(settings.taggers)}; scoring {settings.categories_label}",
            *warning,
        ]

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """One item per tagger and per post, for tests asking for them. The taggers: ``--tagger``'s,
        or a ``tagger`` mark's; with both, the mark's narrowed to ``--tagger``'s (the command line
        wins, so the header names what runs), and a test left with none is skipped saying why."""
        if "tagger" in metafunc.fixturenames:
            marked = [name for mark in metafunc.definition.iter_markers("tagger") for name in mark.args]
            selected = self.settings.taggers
            try:
                names = self.registry.select(marked) if marked else list(selected)
            except ShowdownError as exc:
                # Test code, not configuration: an error collecting that test, in one line, as pytest
                # itself reports an unknown mark under --strict-markers (the same with pytest-xdist).
                raise pytest.Collector.CollectError(f"tagger-showdown: {exc}") from exc
            reason = NO_TAGGER
            if marked and selected:
                reason = f"marked for {', '.join(names)}, but --tagger selects {', '.join(selected)}"
                names = [name for name in names if name in selected]
            if names:
                self._collected.update(names)
                if self.is_worker:
                    metafunc.config.workeroutput[COLLECTED_OUTPUT] = sorted(self._collected)  # type: ignore[attr-defined]
                metafunc.parametrize("tagger", names, indirect=True, ids=names)
            else:
                skip = pytest.mark.skip(reason=reason)
                metafunc.parametrize(
                    "tagger", [pytest.param(None, marks=skip)], indirect=True, ids=["no-tagger"]
                )
        if "post" in metafunc.fixturenames:
            posts = self.posts()
            metafunc.parametrize("post", posts, ids=[post.label for post in posts])

    def take_node_ids(self, args: list[str]) -> None:
        """Printed node ids of the built-in showdown (``tagger-showdown::test_showdown[...]``, or
        ``../tagger-showdown::...`` when pytest shows it relative to another folder) name no file,
        and pytest would answer "file or directory not found": take them out of the arguments and
        select those items when the showdown is added (:meth:`add_showdown`)."""
        kept: list[str] = []
        for arg in args:
            head, separator, rest = arg.partition("::")
            if Path(head).name == SUITE_NODE and not Path(head).exists():
                self._node_ids.append(f"{SUITE_NODE}{separator}{rest}")
            else:
                kept.append(arg)
        args[:] = kept
        if self._node_ids and not self.settings.taggers and not self.is_worker:
            raise usage_error(
                ValueError(
                    f"{self._node_ids[0]} is an item of the built-in showdown: pass the --tagger that "
                    "made it (its id starts with the tagger's name)"
                )
            )
        if self.is_worker or not self.settings.taggers:
            return
        known = [
            f"{SUITE_NODE}::test_showdown[{t}-{p.label}]" for t in self.settings.taggers for p in self.posts()
        ]
        for node in self._node_ids:
            if not any(_selects(node, item) for item in known):  # as pytest says of a node id naming nothing
                raise usage_error(
                    f"not found: {node} (the built-in showdown's items are "
                    f"{SUITE_NODE}::test_showdown[TAGGER-postID-RATING]; --collect-only -q lists them)"
                )

    def add_showdown(self, session: pytest.Session, items: list[pytest.Item], suite: Path) -> None:
        """Add the built-in showdown (the test module ``suite``) when taggers are selected and no
        collected test asks for one."""
        if not self.settings.taggers or any("tagger" in getattr(i, "fixturenames", ()) for i in items):
            return
        module = pytest.Module.from_parent(session, path=suite, nodeid=SUITE_NODE)
        showdown = list(session.genitems(module))
        if self._node_ids:
            chosen = [
                item for item in showdown if any(_selects(node, item.nodeid) for node in self._node_ids)
            ]
            session.config.hook.pytest_deselected(items=[item for item in showdown if item not in chosen])
            showdown = chosen
        items.extend(showdown)

    def take_collected(self, workeroutput: dict[str, Any]) -> None:
        """On the controller, when an xdist worker is done: the taggers its collected tests asked
        for (the controller collects nothing itself)."""
        self._collected.update(str(name) for name in workeroutput.get(COLLECTED_OUTPUT, ()))

    def tagger(self, request: pytest.FixtureRequest) -> Tagger:
        """The ``tagger`` fixture's value: lazy under ``showdown`` (a run served from the cache
        never loads it), loaded for a test using it directly; raises ShowdownError when it cannot."""
        if request.param not in self._handed:
            self._handed.add(request.param)
            request.node.user_properties.append((HANDED_PROPERTY, request.param))
        lazy = self.engine.tagger(request.param)
        if "showdown" not in request.fixturenames:
            try:
                lazy.load()
            except TaggerLoadError as exc:
                raise TaggerLoadError(self.engine.load_failure(request.param, str(exc))) from exc
        return lazy

    # -- the run ---------------------------------------------------------------------------------

    def plan(self, items: Iterable[pytest.Item | None]) -> None:
        """Tell the engine which (tagger, post) pairs come next, so it works ahead on them. The
        controller plans the whole run at once; an xdist worker, which learns its items one at a
        time, plans each as soon as it knows it."""
        requests = []
        for item in items:
            if item is None or item.nodeid in self._planned:
                continue
            self._planned.add(item.nodeid)
            callspec = getattr(item, "callspec", None)
            if callspec is None or not SHOWDOWN_FIXTURES.issubset(getattr(item, "fixturenames", ())):
                continue
            name, post = callspec.params.get("tagger"), callspec.params.get("post")
            if isinstance(name, str) and isinstance(post, Post):
                requests.append((name, post))
        if requests:
            try:
                self.engine.plan(requests)
            except ShowdownError:
                return  # the items themselves report an unusable tagger

    def watch(self, session: pytest.Session) -> None:
        """The run loop starts: the item count is known from the first report on (under xdist the
        controller learns it from the workers). Under ``--collect-only``, ``--setup-only`` or
        ``--setup-plan`` no test runs, so there is nothing to plan, analyse, gate, show or write."""
        self._loop = session
        self.no_run = runs_no_test(session.config)

    def status(self, status: tuple[str, str, Any], config: pytest.Config) -> tuple[str, str, Any]:
        """pytest's short status of a report, without its progress character on a long run of the
        showdown, which prints progress lines instead (:mod:`.progress`). The category and word
        stay: pytest's counts, ``[NN%]`` and ``FAILED`` lines are unchanged. A run without
        ``--tagger`` is left as pytest prints it."""
        showdown = bool(self.settings.taggers) and not self.is_worker
        if showdown and self._progress is None and self._loop is not None:
            verbosity = config.get_verbosity(pytest.Config.VERBOSITY_TEST_CASES)
            if is_compact(self._loop.testscollected, verbosity):
                self._progress = Progress(self._loop.testscollected)
        category, letter, word = status
        return (category, "" if self._progress else letter, word)

    def show_progress(self, report: pytest.TestReport, config: pytest.Config) -> None:
        """On a long run, count the report and print a progress line every twentieth of the run."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if self._progress is None or reporter is None or report.nodeid.startswith(GATE_PREFIX):
            return
        finished = report.when == "call" or (report.when == "setup" and not report.passed)
        line = self._progress.step(finished=finished, failed=report.failed)
        if line is not None:
            reporter.write_line(line)

    def facts_once(self, tagger: str) -> dict[str, Any] | None:
        """The tagger's facts the first time this process records it, else None (they travel once)."""
        if tagger in self._facts_sent:
            return None
        self._facts_sent.add(tagger)
        return {"name": tagger, **self.engine.facts(tagger)}

    def record(self, report: pytest.TestReport) -> None:
        """Collect an item's result, probability row and tagger facts (local, or sent by an xdist
        worker), then drop the result and row from the report, which pytest keeps to the end (other
        plugins' hooks have seen them)."""
        if self.is_worker or report.nodeid.startswith(GATE_PREFIX):
            return
        self._saw_items = True
        self._saw_showdown = self._saw_showdown or SHOWDOWN_KEYWORD in report.keywords
        self._handed.update(str(v) for name, v in report.user_properties if name == HANDED_PROPERTY)
        if report.when != "call":
            report.user_properties = without_payload(report.user_properties)
            return
        for name, value in report.user_properties if report.when == "call" else ():
            if name == RESULT_PROPERTY and isinstance(value, dict):
                self.results.append(PostResult.from_dict(value))
            elif name == ROW_PROPERTY and isinstance(value, dict):
                self.collector.add(value)
            elif name == FACTS_PROPERTY and isinstance(value, dict):
                known = self.facts.setdefault(str(value.get("name", "")), {})
                known.update({key: v for key, v in value.items() if v is not None or key not in known})
        report.user_properties = without_payload(report.user_properties)

    def forget(self, report: pytest.TestReport, config: pytest.Config) -> None:
        """Let go of a showdown item's passed setup or teardown report once every plugin has seen
        it. pytest's terminal keeps every report to the end of the run, these under a category that
        no summary shows (``""``): about 1.5 kB per item, 90 MB at 30,000 posts x 2 taggers (issue
        13: RSS <= 1 GB). Call reports, and any report that did not pass, stay."""
        if report.when == "call" or not report.passed or SHOWDOWN_KEYWORD not in report.keywords:
            return
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        unshown = reporter.stats.get("", []) if reporter is not None else []
        if unshown and unshown[-1] is report:
            unshown.pop()

    def release(self, item: pytest.Item) -> None:
        """After an item's reports are made (and, on an xdist worker, sent): drop its result and row
        from the item, which pytest keeps to the end of the run (issue 13: memory flat per item)."""
        item.user_properties[:] = without_payload(item.user_properties)

    @property
    def is_gated(self) -> bool:
        """Whether a gate (a baseline, ``--showdown-compare``) judges this run."""
        return bool(self.settings.baselines) or self.settings.compare_run is not None

    def _expects_scores(self) -> bool:
        """Whether taggers must score posts: a gate judges the run, or taggers are selected and the
        built-in showdown ran (or would have: no item ran at all). Tests of the user's own that ask
        for a tagger without scoring a post, with no gate, are theirs to judge."""
        return self.is_gated or (
            bool(self.settings.taggers) and (self._saw_showdown or bool(self.results) or not self._saw_items)
        )

    def judged(self) -> list[str]:
        """The taggers the gates must judge, each failing the run unless it scored: every tagger
        with a baseline, and under ``--showdown-compare`` every tagger ``--tagger`` selects or,
        with marks choosing them, every tagger a collected test asked for (deselected or not) or
        that scored. Deselecting a gated tagger's items never leaves it unjudged."""
        settings = self.settings
        names = set(settings.baselines)
        if settings.compare_run is not None:
            names |= set(settings.taggers) or self._collected | {r.tagger for r in self.results}
        return sorted(names)

    def analyse(self) -> RunAnalysis | None:
        """The run's analysis, computed once, on the controller, when there are results (or there
        should have been: a selected tagger that scored nothing still gets its table row)."""
        if self.no_run:
            return None
        if self.analysis is None and not self.is_worker and (self.results or self._expects_scores()):
            settings = self.settings
            facts = {
                name: {**{k: v for k, v in values.items() if k != "name"}, "categories": self._categories()}
                for name, values in self.facts.items()
            }
            related = self.dataset.related_tags()
            self.analysis = analyse_run(
                self.results,
                self.collector,
                self.all_posts(),
                dataset=str(settings.db),
                categories=self._categories(),
                similarity=RelatedTags(related) if related else None,
                aliases=self.engine.aliases(),
                providers=self._providers_used(),
                selected=self._must_report(),
                facts=facts,
                extra={
                    "dataset_fingerprint": dataset_fingerprint(self.all_posts()),
                    "package_version": package_version(),
                    "interrupted": self.interrupted,
                    "shard": None if settings.shard is None else settings.shard.label,
                    # The posts this shard planned: ``merge`` refuses a shard narrowed by -k or -m.
                    "shard_posts": None if settings.shard is None else len(self.posts()),
                    "thresholds": {
                        name: asdict(self.engine.pool.spec(name).thresholds)
                        for name in sorted({r.tagger for r in self.results})
                    },
                },
            )
        return self.analysis

    def _categories(self) -> list[str]:
        return sorted(c.value for c in self.settings.categories)

    def _must_report(self) -> list[str]:
        """The taggers that get a summary (a table row) even when they scored nothing: the
        selected ones when scores are expected, and every one a gate judges."""
        selected = list(self.settings.taggers) if self._expects_scores() else []
        return selected + [name for name in self.judged() if name not in selected]

    def _must_score(self, tagger: str) -> bool:
        """A selected or gated tagger must score a post, unless every item of it was deselected
        (``-k``, ``-m``, node ids) and no gate judges it: then the user narrowed the run to other
        taggers."""
        ran = any(result.tagger == tagger for result in self.results)
        return ran or tagger in self.judged() or not self.posts()

    def _no_score_reason(self, tagger: str) -> str:
        """Why a selected tagger scored no post: the dataset, the filters, or every post errored."""
        errored = [r for r in self.results if r.tagger == tagger and r.error]
        if errored:
            return f"every post errored ({len(errored)} errors; the first: {errored[0].error})"
        settings = self.settings
        if not self.posts() and self.all_posts() and settings.shard is not None:
            return (
                f"shard {settings.shard.label} is empty: the run has {len(self.all_posts())} posts, "
                f"fewer than its {settings.shard.count} shards"
            )
        if not self.posts():
            limits = f"ratings {','.join(settings.ratings)}" + (
                f", limit {settings.limit}" if settings.limit else ""
            )
            return f"the dataset {settings.db} has no post for {limits}"
        if tagger not in settings.taggers and tagger not in self._collected:
            return (
                "no test ran it: no --tagger selects it and no collected test is marked for it (pass "
                f"--tagger {tagger}, or mark a test @pytest.mark.tagger('{tagger}'))"
            )
        if tagger in self._handed:
            return (
                "its tests ran but recorded no post: a gate judges the posts a test scores with "
                "showdown.run(post, tagger)"
            )
        return (
            f"none of its {len(self.posts())} posts ran: the selected tests (-k, -m, --deselect, "
            "paths, a skip) left them out"
        )

    def _providers_used(self) -> dict[str, str]:
        """The provider each ONNX tagger of the run used (the run's one choice, made at configure)."""
        if self.provider is None:
            return {}
        names = {result.tagger for result in self.results}
        return {n: self.provider for n in names if self.registry.resolve(n).backend in ONNX_BACKENDS}

    def gate(self, session: pytest.Session) -> None:
        """After the run loop, on the controller: no post scored fails a selected tagger, then the
        baseline and compare gates; each gated tagger is reported as a test case (see
        :class:`GateVerdict`), which counts a failure in ``testsfailed`` (exit code 1)."""
        analysis = self.analyse()
        if analysis is None:
            return
        must = {*self.settings.taggers, *self.judged()}
        verdicts = [
            GateVerdict(
                "scored", s.tagger, f"{s.tagger}: no post was scored: {self._no_score_reason(s.tagger)}"
            )
            for s in analysis.summaries
            if s.avg_score is None and s.tagger in must and self._must_score(s.tagger)
        ]
        unscored = {verdict.tagger for verdict in verdicts}
        posts = len(self.posts())
        # One failure for one cause: a tagger that scored nothing has its verdict above, with why.
        verdicts += [
            GateVerdict("baseline", name, failure)
            for name, failure in baseline_verdicts(analysis.summaries, self.settings.baselines, posts).items()
            if name not in unscored
        ]
        if self.compare_run is not None:
            self.compare_gate = gate_against(
                self.compare_run.document,
                analysis.document,
                label=f"saved run {self.compare_run.name}",
                margin=self.settings.compare_margin,
                remark=self.compare_run.remark,
            )
            verdicts += [
                GateVerdict("compare", n, self._compare_failure(f) if n == NOTHING_COMPARED else f)
                for n, f in self.compare_gate.verdicts.items()
                if not (n == NOTHING_COMPARED and unscored)  # the scored verdicts said why
            ]
        self.verdicts = verdicts
        self.gates_judged = True
        self.notes = [
            f"{s.tagger} was judged over {s.images} of {posts} posts: the selected tests (-k, -m, "
            "--deselect, paths, a skip) left the others out"
            for s in analysis.summaries
            if s.tagger in {v.tagger for v in verdicts} and 0 < s.images + s.errors < posts
        ]
        document = {
            **analysis.document,
            "gates": [{"gate": v.kind, "tagger": v.tagger, "failure": v.failure} for v in verdicts],
        }
        self.analysis = replace(analysis, document=document)
        session.testscollected += len(verdicts)  # so the terminal's progress counts them too
        for verdict in verdicts:
            for report in verdict.reports():
                session.config.hook.pytest_runtest_logreport(report=report)

    def _compare_failure(self, failure: str | None) -> str | None:
        """The compare gate's "nothing compared", saying how to choose taggers when none ran."""
        if failure is None or self.results or self.settings.taggers:
            return failure
        return f"{failure}; {NO_TAGGER}"

    def interrupt(self, config: pytest.Config) -> None:
        """Ctrl-C: what ran is still written, marked ``interrupted``; nothing is gated or saved, by
        this plugin or by pytest-benchmark (whose save of the items that ran would otherwise be the
        next ``--benchmark-compare`` baseline)."""
        self.interrupted = True
        benchmarks = getattr(config, "_benchmarksession", None)
        if benchmarks is not None and not self.is_worker:
            benchmarks.benchmarks.clear()
        if self.analysis is not None:
            self.analysis = replace(self.analysis, document={**self.analysis.document, "interrupted": True})

    # -- outputs ---------------------------------------------------------------------------------

    def save_in_benchmark(self, output_json: dict[str, Any]) -> None:
        """Put the results document into pytest-benchmark's saved run (never an interrupted one's)."""
        analysis = self.analyse()
        if analysis is not None and not self.interrupted:
            save_in_benchmark(output_json, analysis.document)

    def finish(self, session: pytest.Session) -> None:
        """Write the outputs and save the run as history; an output that cannot be written fails
        the run (the terminal summary still shows the table and the gates). A session that ended in
        a usage error found after configure (``-m`` naming an unknown marker under
        ``--strict-markers``) or an internal error judged nothing: it writes and shows nothing."""
        if session.exitstatus in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
            self.no_run = True
            self.analysis = None
            return
        self.write_files()
        self.save_history(session.config)
        if self.write_errors and session.exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def save_history(self, config: pytest.Config) -> None:
        """With ``--benchmark-save``/``--benchmark-autosave``, save this run when pytest-benchmark
        did not (it saves only runs with timed benchmarks: not one served from the cache, nor one
        under pytest-xdist)."""
        benchmarks = getattr(config, "_benchmarksession", None)
        if benchmarks is None or self.is_worker or self.interrupted or self.analyse() is None:
            return
        name = benchmarks.save or benchmarks.autosave
        if name and not benchmarks.benchmarks:
            try:
                self.saved = save_run(benchmarks, config)
            except OSError as exc:
                self.write_errors.append(f"cannot save the run in {benchmarks.storage}: {exc}")

    def conclude(self) -> None:
        """After the gates, on the controller: write the files and render the terminal's tables,
        then let go of the per-post results, which nothing needs again, before pytest-benchmark
        builds its saved run in memory (issue 13: peak RSS <= 1 GB at 30,000 posts x 2 taggers)."""
        analysis = self.analyse()
        if analysis is None:
            return
        self.write_files()
        self.tables = self._tables(analysis)
        self.analysis = analysis.released()
        self.results = []
        self.collector = ProbabilityCollector()

    def _tables(self, analysis: RunAnalysis) -> list[str]:
        return summary_tables(
            analysis,
            categories_label=self.settings.categories_label,
            provider=self.provider,
            gate=self.compare_gate,
        )

    def write_files(self) -> None:
        """Write ``--showdown-json``, ``--showdown-csv`` and ``--showdown-report`` (once: a run that
        concluded has written them, an interrupted one writes them when the session finishes)."""
        analysis = self.analyse()
        if analysis is None or self._files_written:
            return
        self._files_written = True
        settings = self.settings
        self.written, errors = write_outputs(
            analysis,
            json_path=settings.json_path,
            csv_path=settings.csv_path,
            report_path=settings.report_path,
            images=self.dataset.image,
            gate=self.compare_gate,
            subtitle=f"scored over {settings.categories_label};",
        )
        self.write_errors += errors

    def summarize(self, reporter: pytest.TerminalReporter) -> None:
        """The terminal summary, on the controller of a run with results."""
        if self.is_worker or self.analysis is None:
            return
        reporter.write_sep("=", "tagger showdown")
        if self.interrupted:
            gated = f"; {GATED_EXIT}" if self.is_gated else ""
            self.explained = True
            reporter.write_line(
                f"interrupted: outputs marked interrupted; not gated, not saved as history{gated}"
            )
        write_summary(
            reporter.write_line,
            self._tables(self.analysis) if self.tables is None else self.tables,
            verdicts=[(v.kind, v.failure) for v in self.verdicts],
            written=[*self.written, *([self.saved] if self.saved else [])],
            errors=self.write_errors,
            notes=self.notes,
        )


def dataset_fingerprint(posts: Iterable[Post]) -> str:
    """sha256 over the run's posts, one sorted line each of what a score depends on: id, image md5,
    rating and every tag with its category. Two runs match when they ran the same posts with the
    same ground truth (a retagged post or a re-categorised tag changes it)."""
    lines = sorted(
        f"{post.id}:{post.md5}:{post.rating}:"
        + " ".join(f"{tag}={post.tags[tag].value}" for tag in sorted(post.tags))
        for post in posts
    )
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _selects(node_id: str, item_id: str) -> bool:
    """Whether an argument node id selects an item, as pytest matches them: the item itself, or a
    node above it (the module, the function without its parameters)."""
    return item_id == node_id or item_id.startswith((f"{node_id}::", f"{node_id}["))
