"""The ``showdown`` fixture's object: runs a tagger on a post through the session's engine and
records the result where the controller collects it (the item's ``user_properties``)."""

from __future__ import annotations

from typing import Any

import pytest

from . import benchmarking
from .dataset.post import Post
from .engine import InferenceMeter
from .probabilities import ROW_PROPERTY
from .results import RESULT_PROPERTY, PostResult
from .session import FACTS_PROPERTY, ShowdownSession
from .taggers.base import Tagger


class ShowdownRecorder:
    """Runs a tagger on a post, scores it and records the result (and the benchmark, when active)."""

    def __init__(self, request: pytest.FixtureRequest, session: ShowdownSession) -> None:
        self._request = request
        self._session = session
        self._benchmark: Any = None
        self.result: PostResult | None = None

    def run(self, post: Post, tagger: Tagger) -> PostResult:
        """Tag and score ``post``; a failure of this post (bad image, failed inference) fails the test."""
        if self.result is not None:
            raise RuntimeError("showdown.run() can be called once per test")
        session = self._session
        result = session.engine.run(post, tagger, session.settings.categories, measure=self._meter(tagger))
        self.result = result
        self._request.node.user_properties.append((RESULT_PROPERTY, result.to_dict()))
        facts = session.facts_once(result.tagger)
        if facts is not None:
            self._request.node.user_properties.append((FACTS_PROPERTY, facts))
        row = session.rows.encode(tagger, result)
        if row is not None:
            self._request.node.user_properties.append((ROW_PROPERTY, row))
        if result.error:
            pytest.fail(result.error, pytrace=False)
        if result.score is not None and self._benchmark is not None:
            # The score only: the counts behind it are in the run's results document (issue 13: a
            # saved run of 30,000 posts stays about 1 kB per item).
            self._benchmark.extra_info["score"] = result.score.score
        return result

    def finish(self) -> None:
        """At teardown: a benchmark fixture the item declared but did not use (a prediction served
        from the cache, a post that failed before inference) is not the test's mistake, so
        pytest-benchmark must not warn that it was "not used at all"."""
        # pytest empties ``funcargs`` (None) when the run was interrupted mid-item (Ctrl-C).
        benchmark = (getattr(self._request.node, "funcargs", None) or {}).get("benchmark")
        if benchmark is not None and self._benchmark is None:
            benchmark.skipped = True

    def _meter(self, tagger: Tagger) -> InferenceMeter:
        """pytest-benchmark's pedantic runner (one round) when it is active, else a plain call."""
        if not benchmarking.is_active(self._request.config):
            return lambda infer: infer()

        def measure(infer: Any) -> Any:
            benchmark = self._request.getfixturevalue("benchmark")
            benchmark.group = f"{benchmarking.GROUP_PREFIX}{tagger.spec.name}"
            self._benchmark = benchmark
            return benchmark.pedantic(infer, rounds=1, iterations=1, warmup_rounds=0)

        return measure
