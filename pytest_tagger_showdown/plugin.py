"""The pytest plugin: options, hooks and fixtures, each handing off to the run's
:class:`~pytest_tagger_showdown.session.ShowdownSession`. No logic of its own lives here."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from . import benchmarking, hookspecs
from .errors import ShowdownError
from .options import add_options
from .recorder import ShowdownRecorder
from .session import ShowdownSession, gated_exit_code
from .taggers.base import Tagger

SESSION = pytest.StashKey[ShowdownSession]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(
    config: pytest.Config,
) -> Generator[None, int | pytest.ExitCode, int | pytest.ExitCode]:
    """Around the whole run, wherever it stopped: with a gate configured it never exits 0 unjudged."""
    code = yield  # the session, if any, exists only after the run's configure
    return gated_exit_code(config, config.stash.get(SESSION, None), code)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tagger(*names): run this test with these taggers")
    config.addinivalue_line("markers", "showdown: an item of the built-in tagger showdown")
    config.stash[SESSION] = session = ShowdownSession.start(config)
    config.pluginmanager.register(SessionHooks(session, config), "tagger-showdown-session")


def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION in config.stash:
        config.stash[SESSION].close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash[SESSION].header()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    metafunc.config.stash[SESSION].parametrize(metafunc)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    session.config.stash[SESSION].take_node_ids(session.config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    from . import suite  # the built-in showdown is a test module: pytest imports it when collecting

    config.stash[SESSION].add_showdown(session, items, Path(suite.__file__))
    benchmarking.declare(config, items)


@pytest.fixture
def tagger(request: pytest.FixtureRequest) -> Tagger:
    """The tagger this item runs (loaded once per process, shared by every post). With the
    ``showdown`` fixture it loads on the first cache miss, so a run served from the cache never loads
    it; a test using it directly gets it loaded, or fails here with the reason."""
    try:
        return request.config.stash[SESSION].tagger(request)
    except ShowdownError as exc:
        reason = str(exc)
    pytest.fail(reason, pytrace=False)


@pytest.fixture
def showdown(request: pytest.FixtureRequest) -> Generator[ShowdownRecorder]:
    """Records a (post, tagger) result: ``showdown.run(post, tagger)`` returns the scored result."""
    recorder = ShowdownRecorder(request, request.config.stash[SESSION])
    yield recorder
    recorder.finish()


class SessionHooks:
    """The hooks that run per item or around the run loop (some get no ``config`` to find the
    session by), registered at configure time."""

    def __init__(self, session: ShowdownSession, config: pytest.Config) -> None:
        self.session = session
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Last, so that every other plugin (junitxml...) sees the result before it leaves the report."""
        self.session.record(report)
        self.session.forget(report, self.config)
        self.session.show_progress(report, self.config)

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> Generator[None, tuple[str, str, Any], tuple[str, str, Any]]:
        """A long run prints progress lines instead of a character per item."""
        return self.session.status((yield), config)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        """An xdist worker plans each item as soon as it learns it (its posts are not the
        collection order's, which mostly go to other workers); every process releases the item's
        result once its reports are out."""
        if self.session.is_worker:
            self.session.plan([item, nextitem])
        try:
            return (yield)
        finally:
            self.session.release(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Plan the whole run; after the loop (and every xdist worker) apply the gates, each gated
        tagger reported as a test case (a failure gives exit code 1 and shows in JUnit XML), then
        write the outputs. A Ctrl-C raises out of the ``yield``: nothing is gated, and the outputs
        are written when the session finishes."""
        self.session.watch(session)
        if not self.session.is_worker and not self.session.no_run:
            self.session.plan(session.items)
        outcome = yield
        if not self.session.no_run:
            self.session.gate(session)
            self.session.conclude()
        return outcome

    @pytest.hookimpl(wrapper=True, optionalhook=True)
    def pytest_benchmark_group_stats(
        self, config: pytest.Config
    ) -> Generator[None, benchmarking.Groups, benchmarking.Groups]:
        """pytest-benchmark's terminal table: one row per tagger (``--benchmark-verbose``: per item)."""
        groups = yield
        return benchmarking.collapsed(config, groups)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any) -> None:
        """pytest-xdist: a worker is done; the controller learns the taggers its tests asked for."""
        self.session.take_collected(getattr(node, "workeroutput", {}))

    def pytest_keyboard_interrupt(self) -> None:
        self.session.interrupt(self.config)

    @pytest.hookimpl(optionalhook=True)
    def pytest_benchmark_update_json(self, output_json: dict[str, Any]) -> None:
        self.session.save_in_benchmark(output_json)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.session.finish(session)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The table goes last, after pytest-benchmark's tables, right above pytest's final line."""
        self.session.summarize(terminalreporter)
