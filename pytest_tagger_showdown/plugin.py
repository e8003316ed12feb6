"""pytest glue: options, markers, fixtures, the built-in showdown items, the table and the gate.

Everything here wires plain library code (dataset, taggers, runner, results, gate, report) into pytest;
no scoring or model logic lives in this module.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from . import hookspecs
from .analysis import RunAnalysis, analyse_run, write_outputs
from .cache import DEFAULT_DIR_NAME, ShowdownCache
from .compare import CompareGate, format_comparison, gate_against
from .dataset.post import Post
from .dataset.store import Dataset
from .engine import Engine
from .errors import ShowdownError
from .gate import baseline_failures
from .history import DOCUMENT_KEY, SavedRun, find_run, storage_path
from .probabilities import ROW_PROPERTY, ProbabilityCollector, RowEncoder
from .report.metrics_table import format_metrics
from .report.table import format_table
from .results import PostResult, summarize_all
from .runner import InferenceMeter, TaggerPool
from .settings import ShowdownSettings, build_settings
from .taggers.base import LoadOptions, Tagger
from .taggers.builtin import default_registry
from .taggers.registry import TaggerRegistry

#: The user_properties key a result travels under (to the controller under pytest-xdist, too).
RESULT_PROPERTY = "tagger_showdown"


@dataclass
class ShowdownState:
    """Per-process state: settings, the registry, loaded taggers and, on the controller, results."""

    settings: ShowdownSettings
    registry: TaggerRegistry
    pool: TaggerPool
    is_worker: bool
    results: list[PostResult] = field(default_factory=list)
    gate_failures: list[str] = field(default_factory=list)
    rows: RowEncoder = field(default_factory=RowEncoder)
    collector: ProbabilityCollector = field(default_factory=ProbabilityCollector)
    compare_run: SavedRun | None = None
    compare_gate: CompareGate | None = None
    analysis: RunAnalysis | None = None
    written: list[Path] = field(default_factory=list)
    _dataset: Dataset | None = None
    _posts: list[Post] | None = None
    _engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The batching, prefetching, caching pipeline every showdown item goes through."""
        if self._engine is None:
            cache_dir = self.settings.cache_dir
            self._engine = Engine(
                self.pool,
                self.settings.db,
                batch_size=self.settings.batch_size,
                cache=None if cache_dir is None else ShowdownCache(cache_dir, self.settings.cache_max_size),
            )
        return self._engine

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = Dataset(self.settings.db)
        return self._dataset

    def posts(self) -> list[Post]:
        if self._posts is None:
            self._posts = self.dataset.posts(self.settings.ratings, self.settings.limit)
        return self._posts

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._dataset is not None:
            self._dataset.close()


STATE = pytest.StashKey[ShowdownState]()
#: An item using all of these is planned ahead (see ShowdownController._plan).
SHOWDOWN_FIXTURES = frozenset({"tagger", "post", "showdown"})


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tagger-showdown", "tagger showdown (score image taggers)")
    group.addoption(
        "--tagger",
        action="append",
        default=[],
        metavar="NAME",
        help="tagger(s) to run: repeatable or comma-separated; 'all' = every tagger that can run "
        "here. With no test of your own asking for a tagger, runs the built-in showdown.",
    )

    def add(name: str, help_text: str, *, kind: str = "string", ini: str = "", **kwargs: Any) -> None:
        dest = name.removeprefix("--").replace("-", "_")
        ini_name = ini or dest
        group.addoption(name, dest=dest, help=f"{help_text} (ini: {ini_name})", **kwargs)
        parser.addini(ini_name, help_text, type=kind)  # type: ignore[arg-type]

    add("--showdown-db", "dataset file (default: the bundled demo dataset)", metavar="PATH")
    add(
        "--showdown-threshold",
        "confidence cut-offs: 0.5, general=0.4,character=0.9, mcut=true, each optionally "
        "after NAME: for one tagger",
        kind="linelist",
        action="append",
        metavar="SPEC",
    )
    add("--showdown-ratings", "ratings to run, e.g. g,s (default g,s,q,e)", metavar="g,s,q,e")
    add("--showdown-limit", "at most N posts, spread over the ratings", metavar="N")
    add(
        "--showdown-categories",
        "ground-truth tag categories scored: all (default, as in the study) or general+character",
        metavar="CATS",
    )
    add("--showdown-json", "write per-tagger aggregates and per-post results here", metavar="PATH")
    add(
        "--showdown-baseline",
        "NAME=SCORE: fail the run when NAME's average score falls below SCORE",
        kind="linelist",
        ini="showdown_baselines",
        action="append",
        metavar="NAME=SCORE",
    )
    add(
        "--showdown-providers",
        "onnxruntime execution providers in order, e.g. CUDAExecutionProvider,CPUExecutionProvider",
        metavar="LIST",
    )
    add(
        "--sdwebui-url",
        "stable-diffusion-webui with the tagger extension, for sdwebui:MODEL taggers (env SDWEBUI_URL; "
        "basic auth from env SDWEBUI_AUTH=user:password)",
        metavar="URL",
    )
    add("--hydrus-dd-url", "hydrus-dd server for the hydrus-dd tagger (env HYDRUS_DD_URL)", metavar="URL")
    add(
        "--showdown-batch-size",
        "images per inference call: N, or auto (default: 1 on CPU, 32 on a GPU)",
        metavar="N",
    )
    add(
        "--showdown-no-cache",
        "neither read nor write the prepared-input and prediction caches",
        kind="bool",
        action="store_true",
    )
    add(
        "--showdown-cache-dir",
        f"where the prepared-input and prediction caches live (default: {DEFAULT_DIR_NAME} in the rootdir)",
        metavar="PATH",
    )
    add(
        "--showdown-cache-max-size",
        "size limit of the caches, e.g. 10GB, 500MB or bytes; least recently used entries are "
        "evicted beyond it (default 10GB)",
        metavar="SIZE",
    )
    add(
        "--showdown-report",
        "write a self-contained HTML report (table, plots, worst posts) here",
        metavar="PATH",
    )
    add("--showdown-csv", "write every post's result as CSV here", metavar="PATH")
    add(
        "--showdown-compare",
        "fail when a tagger's score drops significantly against this saved run: a file, a "
        "pytest-benchmark run number/name (0003) or latest",
        metavar="RUN",
    )
    add(
        "--showdown-margin",
        "how far an average score may drop against --showdown-compare before failing (default 0.02)",
        metavar="DROP",
    )


def _path_value(config: pytest.Config, name: str) -> Path | None:
    """A path option: relative to the working directory on the command line, to the ini file in ini."""
    value = config.getoption(name)
    if value:
        return Path(value)
    ini_value = config.getini(name)
    if not ini_value:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return base / str(ini_value)


def _text_value(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name)
    return str(value) if value else (str(config.getini(name)) or None)


def _lines_value(config: pytest.Config, name: str) -> list[str]:
    return [*config.getini(name), *(config.getoption(name) or [])]


def _cache_dir(config: pytest.Config) -> Path | None:
    if config.getoption("showdown_no_cache") or config.getini("showdown_no_cache"):
        return None
    return _path_value(config, "showdown_cache_dir") or config.rootpath / DEFAULT_DIR_NAME


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tagger(*names): run this test with these taggers")
    config.addinivalue_line("markers", "showdown: an item of the built-in tagger showdown")
    try:
        settings = build_settings(
            taggers=config.getoption("tagger"),
            db=_path_value(config, "showdown_db"),
            ratings=_text_value(config, "showdown_ratings"),
            limit=_text_value(config, "showdown_limit"),
            categories=_text_value(config, "showdown_categories"),
            thresholds=_lines_value(config, "showdown_threshold"),
            json_path=_path_value(config, "showdown_json"),
            baselines=[*config.getini("showdown_baselines"), *(config.getoption("showdown_baseline") or [])],
            providers=_text_value(config, "showdown_providers"),
            sdwebui_url=_text_value(config, "sdwebui_url"),
            hydrus_dd_url=_text_value(config, "hydrus_dd_url"),
            report_path=_path_value(config, "showdown_report"),
            csv_path=_path_value(config, "showdown_csv"),
            compare_run=_text_value(config, "showdown_compare"),
            compare_margin=_text_value(config, "showdown_margin"),
            batch_size=_text_value(config, "showdown_batch_size"),
            cache_dir=_cache_dir(config),
            cache_max_size=_text_value(config, "showdown_cache_max_size"),
        )
        registry = default_registry()
        config.hook.pytest_tagger_showdown_register(registry=registry, config=config)
        settings = _with_selected(settings, registry)
    except (ValueError, ShowdownError) as exc:
        raise pytest.UsageError(f"tagger-showdown: {exc}") from exc
    state = ShowdownState(
        settings=settings,
        registry=registry,
        pool=TaggerPool(
            registry,
            LoadOptions(
                providers=settings.providers,
                sdwebui_url=settings.sdwebui_url,
                hydrus_dd_url=settings.hydrus_dd_url,
            ),
            settings.thresholds,
        ),
        is_worker=hasattr(config, "workerinput"),
    )
    config.stash[STATE] = state
    config.pluginmanager.register(ShowdownController(state), "tagger-showdown-controller")
    if settings.compare_run and not state.is_worker:
        try:
            storage = storage_path(config.getoption("benchmark_storage", None))
            state.compare_run = find_run(settings.compare_run, storage)
        except ShowdownError as exc:
            raise pytest.UsageError(f"tagger-showdown: --showdown-compare: {exc}") from exc
    if settings.taggers:
        try:
            state.posts()
        except ShowdownError as exc:
            raise pytest.UsageError(f"tagger-showdown: {exc}") from exc


def _with_selected(settings: ShowdownSettings, registry: TaggerRegistry) -> ShowdownSettings:
    return replace(settings, taggers=tuple(registry.select(settings.taggers)))


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.close()


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash[STATE]
    settings = state.settings
    if not settings.taggers:
        return None
    source = (
        "the bundled demo dataset (pass --showdown-db to use your own)"
        if settings.is_demo
        else str(settings.db)
    )
    return (
        f"tagger-showdown: {len(state.posts())} posts from {source}; "
        f"taggers: {', '.join(settings.taggers)}; scoring {settings.categories_label}"
    )


def _taggers_for(definition: pytest.Function | Any, state: ShowdownState) -> list[str]:
    marked = [name for mark in definition.iter_markers("tagger") for name in mark.args]
    return state.registry.select(marked) if marked else list(state.settings.taggers)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = metafunc.config.stash[STATE]
    if "tagger" in metafunc.fixturenames:
        try:
            names = _taggers_for(metafunc.definition, state)
        except ShowdownError as exc:
            raise pytest.UsageError(f"tagger-showdown: {metafunc.definition.nodeid}: {exc}") from exc
        if names:
            metafunc.parametrize("tagger", names, indirect=True, ids=names)
        else:
            skip = pytest.mark.skip(
                reason="no tagger selected: pass --tagger NAME or mark the test @pytest.mark.tagger('NAME')"
            )
            metafunc.parametrize("tagger", [pytest.param(None, marks=skip)], indirect=True, ids=["no-tagger"])
    if "post" in metafunc.fixturenames:
        try:
            posts = state.posts()
        except ShowdownError as exc:
            raise pytest.UsageError(f"tagger-showdown: {exc}") from exc
        metafunc.parametrize("post", posts, ids=[post.label for post in posts])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the built-in showdown when taggers are selected and no collected test asks for one."""
    state = config.stash[STATE]
    if not state.settings.taggers:
        return
    if any("tagger" in getattr(item, "fixturenames", ()) for item in items):
        return
    from . import suite

    module = pytest.Module.from_parent(session, path=Path(suite.__file__), nodeid="tagger-showdown")
    items.extend(session.genitems(module))


@pytest.fixture
def tagger(request: pytest.FixtureRequest) -> Tagger:
    """The tagger this item runs (loaded once per process, shared by every post). With the
    ``showdown`` fixture it loads on the first cache miss, so a run served from the cache never loads
    it; a test using it directly gets it loaded, or fails here with the reason."""
    state = request.config.stash[STATE]
    try:
        lazy = state.engine.tagger(request.param)
        if "showdown" not in request.fixturenames:
            lazy.load()
        return lazy
    except ShowdownError as exc:
        reason = str(exc)
    pytest.fail(reason, pytrace=False)


class ShowdownRecorder:
    """Runs a tagger on a post, scores it and records the result (and the benchmark, when active)."""

    def __init__(self, request: pytest.FixtureRequest, state: ShowdownState) -> None:
        self._request = request
        self._state = state
        self._benchmark: Any = None
        self.result: PostResult | None = None

    def run(self, post: Post, tagger: Tagger) -> PostResult:
        """Tag and score ``post``; a failure of this post (bad image, failed inference) fails the test."""
        if self.result is not None:
            raise RuntimeError("showdown.run() can be called once per test")
        result = self._state.engine.run(
            post, tagger, self._state.settings.categories, measure=self._meter(tagger)
        )
        self.result = result
        self._request.node.user_properties.append((RESULT_PROPERTY, result.to_dict()))
        row = self._state.rows.encode(tagger, result)
        if row is not None:
            self._request.node.user_properties.append((ROW_PROPERTY, row))
        if result.error:
            pytest.fail(result.error, pytrace=False)
        if result.score is not None and self._benchmark is not None:
            self._benchmark.extra_info.update(
                {"tagger": result.tagger, "post_id": result.post_id, **result.score.to_dict()}
            )
        return result

    def _meter(self, tagger: Tagger) -> InferenceMeter:
        """pytest-benchmark's pedantic runner (one round) when it is active, else a plain call."""
        if not self._request.config.pluginmanager.hasplugin("benchmark"):
            return lambda infer: infer()

        def measure(infer: Any) -> Any:
            benchmark = self._request.getfixturevalue("benchmark")
            benchmark.group = f"showdown: {tagger.spec.name}"
            self._benchmark = benchmark
            return benchmark.pedantic(infer, rounds=1, iterations=1, warmup_rounds=0)

        return measure


@pytest.fixture
def showdown(request: pytest.FixtureRequest) -> ShowdownRecorder:
    """Records a (post, tagger) result: ``showdown.run(post, tagger)`` returns the scored result."""
    return ShowdownRecorder(request, request.config.stash[STATE])


class ShowdownController:
    """Per-session hooks: collect results from reports (local or from xdist workers), gate, report."""

    def __init__(self, state: ShowdownState) -> None:
        self.state = state
        self.planned: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or self.state.is_worker:
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY and isinstance(value, dict):
                self.state.results.append(PostResult.from_dict(value))
            elif name == ROW_PROPERTY and isinstance(value, dict):
                self.state.collector.add(value)

    def _analysis(self) -> RunAnalysis | None:
        """The run's analysis, computed once, on the controller, when there are results."""
        state = self.state
        if state.analysis is None and state.results and not state.is_worker:
            state.analysis = analyse_run(
                state.results,
                state.collector,
                state.posts(),
                dataset=str(state.settings.db),
                categories=[c.value for c in state.settings.categories],
            )
        return state.analysis

    def _plan(self, items: Iterable[pytest.Item | None]) -> None:
        """Tell the engine which (tagger, post) pairs come next, so it works ahead on them."""
        requests = []
        for item in items:
            if item is None or item.nodeid in self.planned:
                continue
            self.planned.add(item.nodeid)
            callspec = getattr(item, "callspec", None)
            if callspec is None or not SHOWDOWN_FIXTURES.issubset(getattr(item, "fixturenames", ())):
                continue
            name, post = callspec.params.get("tagger"), callspec.params.get("post")
            if isinstance(name, str) and isinstance(post, Post):
                requests.append((name, post))
        if requests:
            try:
                self.state.engine.plan(requests)
            except ShowdownError:
                return  # the items themselves report an unusable tagger

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """An xdist worker learns its items one at a time; it plans each as soon as it is known,
        rather than along the collection order, whose posts mostly go to other workers."""
        if self.state.is_worker:
            self._plan([item, nextitem])

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Plan the whole run (one process knows its run order); after the loop (and every xdist
        worker) apply the baseline gate: failing adds to ``testsfailed``, which gives exit code 1 and
        keeps the terminal summary."""
        if not self.state.is_worker and not session.config.option.collectonly:
            self._plan(session.items)
        outcome = yield
        if not self.state.is_worker:
            self.state.gate_failures = baseline_failures(
                summarize_all(self.state.results), self.state.settings.baselines
            )
            session.testsfailed += len(self.state.gate_failures)
            analysis = self._analysis()
            if self.state.compare_run is not None and analysis is not None:
                self.state.compare_gate = gate_against(
                    self.state.compare_run.document,
                    analysis.document,
                    label=f"saved run {self.state.compare_run.name}",
                    margin=self.state.settings.compare_margin,
                )
                session.testsfailed += len(self.state.compare_gate.failures)
        return outcome

    @pytest.hookimpl(optionalhook=True)
    def pytest_benchmark_update_json(self, output_json: dict[str, Any]) -> None:
        """Save the showdown's results document inside pytest-benchmark's saved run."""
        analysis = self._analysis()
        if analysis is not None:
            output_json[DOCUMENT_KEY] = analysis.document

    def pytest_sessionfinish(self) -> None:
        analysis = self._analysis()
        if analysis is None:
            return
        settings = self.state.settings
        self.state.written = write_outputs(
            analysis,
            json_path=settings.json_path,
            csv_path=settings.csv_path,
            report_path=settings.report_path,
            images=self.state.dataset.image,
            gate=self.state.compare_gate,
            subtitle=f"scored over {settings.categories_label};",
        )

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The table goes last, after pytest-benchmark's tables, right above pytest's final line."""
        if self.state.is_worker or not self.state.results:
            return
        settings = self.state.settings
        terminalreporter.write_sep("=", "tagger showdown")
        terminalreporter.write_line(f"scored over {settings.categories_label}")
        terminalreporter.write_line(format_table(summarize_all(self.state.results)))
        analysis, gate = self.state.analysis, self.state.compare_gate
        if analysis is not None and analysis.metrics:
            terminalreporter.write_line("dataset metrics (over each tagger's vocabulary):")
            terminalreporter.write_line(format_metrics(analysis))
        if gate is not None:
            terminalreporter.write_line(f"compared with {gate.label} (paired bootstrap, 95% CI):")
            terminalreporter.write_line(format_comparison(gate.comparison, gate.margin))
        for path in self.state.written:
            terminalreporter.write_line(f"written: {path}")
        for failure in self.state.gate_failures:
            terminalreporter.write_line(f"FAIL baseline: {failure}", red=True, bold=True)
        for failure in gate.failures if gate is not None else ():
            terminalreporter.write_line(f"FAIL compare: {failure}", red=True, bold=True)
