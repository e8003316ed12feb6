"""One pytest run's showdown: settings, registry, engine, dataset, results, gates and outputs.

The plugin module only declares options, hooks and fixtures; each hook hands off to this object (the
shape of syrupy's ``SnapshotSession`` and pytest-benchmark's ``BenchmarkSession``). One lives per
process; on the controller (or without pytest-xdist) it also collects every item's result, analyses
the run once, applies both gates and writes the outputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from .analysis import RunAnalysis, analyse_run
from .cache import ShowdownCache
from .compare import CompareGate, gate_against
from .dataset.post import Post
from .dataset.store import Dataset
from .engine import ONNX_BACKENDS, Engine, planned_providers, shared_gpu_warning
from .errors import ShowdownError
from .gate import baseline_failures
from .history import DOCUMENT_KEY, SavedRun, find_run, storage_path
from .options import read_settings
from .outputs import write_outputs, write_summary
from .pool import TaggerPool
from .probabilities import ROW_PROPERTY, ProbabilityCollector, RowEncoder
from .results import RESULT_PROPERTY, PostResult
from .settings import ShowdownSettings
from .taggers.base import LoadOptions, Tagger
from .taggers.builtin import default_registry
from .taggers.registry import TaggerRegistry

#: An item using all of these is planned ahead (see :meth:`ShowdownSession.plan`).
SHOWDOWN_FIXTURES = frozenset({"tagger", "post", "showdown"})
NO_TAGGER = "no tagger selected: pass --tagger NAME or mark the test @pytest.mark.tagger('NAME')"


def usage_error(exc: Exception, where: str = "") -> pytest.UsageError:
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
    baseline_failures: list[str] = field(default_factory=list)
    analysis: RunAnalysis | None = None
    written: list[Path] = field(default_factory=list)
    _planned: set[str] = field(default_factory=set)
    _dataset: Dataset | None = None
    _posts: list[Post] | None = None
    _engine: Engine | None = None

    @classmethod
    def start(cls, config: pytest.Config) -> ShowdownSession:
        """Read and validate every option and ini value now, at configure time; raises
        :class:`pytest.UsageError` for a bad one (an unknown tagger, a missing dataset or saved run)."""
        try:
            settings = read_settings(config)
            registry = default_registry()
            config.hook.pytest_tagger_showdown_register(registry=registry, config=config)
            settings = replace(settings, taggers=tuple(registry.select(settings.taggers)))
        except (ValueError, ShowdownError) as exc:
            raise usage_error(exc) from exc
        session = cls(settings, registry, is_worker=hasattr(config, "workerinput"))
        if settings.compare_run and not session.is_worker:
            try:
                storage = storage_path(config.getoption("benchmark_storage", None))
                session.compare_run = find_run(settings.compare_run, storage)
            except ShowdownError as exc:
                raise usage_error(exc, "--showdown-compare: ") from exc
        if settings.taggers:
            session.posts()
        if not session.is_worker:
            session.warn_shared_gpu(config)
        return session

    def warn_shared_gpu(self, config: pytest.Config) -> None:
        """Warn once, on the controller, when pytest-xdist workers would each load a GPU model on
        the same device (:func:`engine.shared_gpu_warning`)."""
        try:
            processes = int(config.getoption("numprocesses", 0) or 0)
        except (TypeError, ValueError):
            processes = 0
        providers = planned_providers(self.settings.providers) if processes > 1 else ()
        specs = [self.registry.resolve(name) for name in self.settings.taggers]
        message = shared_gpu_warning(
            processes, {s.name: providers for s in specs if s.backend in ONNX_BACKENDS}
        )
        if message is not None:
            config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)

    # -- what the run works on -------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The batching, prefetching, caching pipeline every showdown item goes through."""
        if self._engine is None:
            settings = self.settings
            pool = TaggerPool(
                self.registry,
                LoadOptions(
                    providers=settings.providers,
                    sdwebui_url=settings.sdwebui_url,
                    hydrus_dd_url=settings.hydrus_dd_url,
                ),
                settings.thresholds,
            )
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
        """The run's posts (read once); a dataset that cannot be read is a usage error."""
        if self._posts is None:
            try:
                self._posts = self.dataset.posts(self.settings.ratings, self.settings.limit)
            except ShowdownError as exc:
                raise usage_error(exc) from exc
        return self._posts

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._dataset is not None:
            self._dataset.close()

    # -- collection ------------------------------------------------------------------------------

    def header(self) -> str | None:
        """The report header line naming the posts, the dataset and the taggers."""
        settings = self.settings
        if not settings.taggers:
            return None
        source = (
            "the bundled demo dataset (pass --showdown-db to use your own)"
            if settings.is_demo
            else str(settings.db)
        )
        return (
            f"tagger-showdown: {len(self.posts())} posts from {source}; "
            f"taggers: {', '.join(settings.taggers)}; scoring {settings.categories_label}"
        )

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """One item per selected (or marked) tagger and per post, for tests asking for them."""
        if "tagger" in metafunc.fixturenames:
            marked = [name for mark in metafunc.definition.iter_markers("tagger") for name in mark.args]
            try:
                names = self.registry.select(marked) if marked else list(self.settings.taggers)
            except ShowdownError as exc:
                # Test code, not configuration: an error collecting that test, in one line, as pytest
                # itself reports an unknown mark under --strict-markers (the same with pytest-xdist).
                raise pytest.Collector.CollectError(f"tagger-showdown: {exc}") from exc
            if names:
                metafunc.parametrize("tagger", names, indirect=True, ids=names)
            else:
                skip = pytest.mark.skip(reason=NO_TAGGER)
                metafunc.parametrize(
                    "tagger", [pytest.param(None, marks=skip)], indirect=True, ids=["no-tagger"]
                )
        if "post" in metafunc.fixturenames:
            posts = self.posts()
            metafunc.parametrize("post", posts, ids=[post.label for post in posts])

    def add_showdown(self, session: pytest.Session, items: list[pytest.Item], suite: Path) -> None:
        """Add the built-in showdown (the test module ``suite``) when taggers are selected and no
        collected test asks for one."""
        if not self.settings.taggers or any("tagger" in getattr(i, "fixturenames", ()) for i in items):
            return
        module = pytest.Module.from_parent(session, path=suite, nodeid="tagger-showdown")
        items.extend(session.genitems(module))

    def tagger(self, request: pytest.FixtureRequest) -> Tagger:
        """The ``tagger`` fixture's value: lazy under ``showdown`` (a run served from the cache
        never loads it), loaded for a test using it directly; raises ShowdownError when it cannot."""
        lazy = self.engine.tagger(request.param)
        if "showdown" not in request.fixturenames:
            lazy.load()
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

    def record(self, report: pytest.TestReport) -> None:
        """Collect an item's result and probability row (local, or sent by an xdist worker)."""
        if report.when != "call" or self.is_worker:
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY and isinstance(value, dict):
                self.results.append(PostResult.from_dict(value))
            elif name == ROW_PROPERTY and isinstance(value, dict):
                self.collector.add(value)

    def analyse(self) -> RunAnalysis | None:
        """The run's analysis, computed once, on the controller, when there are results."""
        if self.analysis is None and self.results and not self.is_worker:
            self.analysis = analyse_run(
                self.results,
                self.collector,
                self.posts(),
                dataset=str(self.settings.db),
                categories=[c.value for c in self.settings.categories],
                aliases=self.engine.aliases(),
            )
        return self.analysis

    def gate(self) -> int:
        """Apply the baseline and compare gates to the analysed run; returns how many failed."""
        analysis = self.analyse()
        if analysis is None:
            return 0
        self.baseline_failures = baseline_failures(analysis.summaries, self.settings.baselines)
        if self.compare_run is not None:
            self.compare_gate = gate_against(
                self.compare_run.document,
                analysis.document,
                label=f"saved run {self.compare_run.name}",
                margin=self.settings.compare_margin,
            )
        return len(self.baseline_failures) + len(self.compare_gate.failures if self.compare_gate else ())

    # -- outputs ---------------------------------------------------------------------------------

    def save_in_benchmark(self, output_json: dict[str, Any]) -> None:
        """Put the results document into pytest-benchmark's saved run."""
        analysis = self.analyse()
        if analysis is not None:
            output_json[DOCUMENT_KEY] = analysis.document

    def write_files(self) -> None:
        """Write ``--showdown-json``, ``--showdown-csv`` and ``--showdown-report``."""
        analysis = self.analyse()
        if analysis is None:
            return
        settings = self.settings
        self.written = write_outputs(
            analysis,
            json_path=settings.json_path,
            csv_path=settings.csv_path,
            report_path=settings.report_path,
            images=self.dataset.image,
            gate=self.compare_gate,
            subtitle=f"scored over {settings.categories_label};",
        )

    def summarize(self, reporter: pytest.TerminalReporter) -> None:
        """The terminal summary, on the controller of a run with results."""
        if self.is_worker or self.analysis is None:
            return
        reporter.write_sep("=", "tagger showdown")
        write_summary(
            reporter.write_line,
            self.analysis,
            categories_label=self.settings.categories_label,
            gate=self.compare_gate,
            baseline_failures=self.baseline_failures,
            written=self.written,
        )
