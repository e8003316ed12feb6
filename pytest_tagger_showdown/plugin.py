"""pytest glue: options, markers, fixtures, the built-in showdown items, the table and the gate.

Everything here wires plain library code (dataset, taggers, runner, results, gate, report) into pytest;
no scoring or model logic lives in this module.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from . import hookspecs
from .dataset.post import Post
from .dataset.store import Dataset
from .errors import ShowdownError
from .gate import baseline_failures
from .report.table import format_table
from .results import PostResult, results_document, summarize_all, write_results
from .runner import InferenceMeter, TaggerPool, run_post
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
    _dataset: Dataset | None = None
    _posts: list[Post] | None = None

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
        if self._dataset is not None:
            self._dataset.close()


STATE = pytest.StashKey[ShowdownState]()


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
        )
        registry = default_registry()
        config.hook.pytest_tagger_showdown_register(registry=registry, config=config)
        settings = _with_selected(settings, registry)
    except (ValueError, ShowdownError) as exc:
        raise pytest.UsageError(f"tagger-showdown: {exc}") from exc
    state = ShowdownState(
        settings=settings,
        registry=registry,
        pool=TaggerPool(registry, LoadOptions(providers=settings.providers), settings.thresholds),
        is_worker=hasattr(config, "workerinput"),
    )
    config.stash[STATE] = state
    config.pluginmanager.register(ShowdownController(state), "tagger-showdown-controller")
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
    """The loaded tagger this item runs (loaded once per process, shared by every post)."""
    state = request.config.stash[STATE]
    try:
        return state.pool.get(request.param)
    except ShowdownError as exc:
        pytest.fail(str(exc), pytrace=False)


class ShowdownRecorder:
    """Runs a tagger on a post, scores it and records the result (and the benchmark, when active)."""

    def __init__(self, request: pytest.FixtureRequest, state: ShowdownState) -> None:
        self._request = request
        self._state = state
        self.result: PostResult | None = None

    def run(self, post: Post, tagger: Tagger) -> PostResult:
        """Tag and score ``post``; a failure of this post (bad image, failed inference) fails the test."""
        if self.result is not None:
            raise RuntimeError("showdown.run() can be called once per test")
        result = run_post(
            tagger,
            post,
            self._state.dataset,
            self._state.settings.categories,
            measure=self._meter(tagger),
        )
        self.result = result
        self._request.node.user_properties.append((RESULT_PROPERTY, result.to_dict()))
        if result.error:
            pytest.fail(result.error, pytrace=False)
        if result.score is not None and self._benchmark is not None:
            self._benchmark.extra_info.update(
                {"tagger": result.tagger, "post_id": result.post_id, **result.score.to_dict()}
            )
        return result

    _benchmark: Any = None

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

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or self.state.is_worker:
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY and isinstance(value, dict):
                self.state.results.append(PostResult.from_dict(value))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """After the loop (and every xdist worker) apply the baseline gate: failing adds to
        ``testsfailed``, which gives exit code 1 and keeps the terminal summary."""
        outcome = yield
        if not self.state.is_worker:
            self.state.gate_failures = baseline_failures(
                summarize_all(self.state.results), self.state.settings.baselines
            )
            session.testsfailed += len(self.state.gate_failures)
        return outcome

    def pytest_sessionfinish(self) -> None:
        settings = self.state.settings
        if self.state.is_worker or settings.json_path is None or not self.state.results:
            return
        document = results_document(
            self.state.results,
            dataset=str(settings.db),
            categories=sorted(c.value for c in settings.categories),
        )
        write_results(settings.json_path, document)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.state.is_worker or not self.state.results:
            return
        settings = self.state.settings
        terminalreporter.write_sep("=", "tagger showdown")
        terminalreporter.write_line(f"scored over {settings.categories_label}")
        terminalreporter.write_line(format_table(summarize_all(self.state.results)))
        if settings.json_path:
            terminalreporter.write_line(f"results written to {settings.json_path}")
        for failure in self.state.gate_failures:
            terminalreporter.write_line(f"FAIL baseline: {failure}", red=True, bold=True)
