"""``pytest --tagger wd14-vit-v2`` end to end against a fake hub, and the HTTP taggers against fake
servers: pytest runs in a subprocess that reaches the fakes over loopback, as a user's run would.

The runs pass ``--showdown-no-cache``: a warm prediction cache would answer without loading the model,
and these tests are about loading it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_tagger_showdown.columns import post_rows
from tests.fakes.hub import VIT_V2_REPO, FakeHub, wd14_repo_files
from tests.fakes.hydrus_dd import FakeHydrusDD
from tests.fakes.loopback import closed_port_url
from tests.fakes.sdwebui import FakeWebui
from tests.helpers.datasets import four_ratings
from tests.helpers.runs import ShowdownRun, table_rows

NO_CACHE = ("--showdown-no-cache",)


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A fake hub serving the tiny model as wd14-vit-v2's repo, and a run environment pointing at it."""
    with FakeHub() as hub:
        hub.add_commit(VIT_V2_REPO, wd14_repo_files(), refs=("v2.0", "main"))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        yield hub


def test_wd14_from_the_hub_is_fetched_once_then_scored(
    hub_env: FakeHub, run_showdown: ShowdownRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = four_ratings(tmp_path / "data.db")
    result, document = run_showdown(*NO_CACHE, "--tagger", "wd14-vit-v2", "--showdown-db", str(db))
    assert result.ret == 0, result.stdout.str()
    # The tiny model finds simple_background and red_background and says "general": 3 of 5 truth
    # items on g posts, 2 correct and 1 wrong rating on the others.
    scores = {post["post_id"]: post["score"] for post in post_rows(document)}
    assert scores == pytest.approx(
        {100: 0.6, 101: 0.6, 102: 0.2, 103: 0.2, 104: 0.2, 105: 0.2, 106: 0.2, 107: 0.2}
    )
    assert table_rows(result)["wd14-vit-v2"][3] == "0.300"
    assert len(hub_env.seen("cdn", "GET")) == 1, "every process shares one download"

    requests_before = len(hub_env.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline, document = run_showdown(*NO_CACHE, "--tagger", "wd14-vit-v2", "--showdown-db", str(db))
    assert offline.ret == 0, offline.stdout.str()
    assert len(post_rows(document)) == 8
    assert len(hub_env.requests) == requests_before


def test_wd14_offline_and_not_cached_fails_each_post_naming_the_repo(
    hub_env: FakeHub, run_showdown: ShowdownRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    db = four_ratings(tmp_path / "data.db")
    result, _ = run_showdown(*NO_CACHE, "--tagger", "wd14-vit-v2", "--showdown-db", str(db))
    result.assert_outcomes(failed=9)  # the 8 posts and gate[scored-wd14-vit-v2]: no post scored
    result.stdout.fnmatch_lines(
        ["*SmilingWolf/wd-v1-4-vit-tagger-v2@v2.0 is not in the Hugging Face cache*HF_HUB_OFFLINE*"]
    )


def test_http_taggers_run_through_their_options(run_showdown: ShowdownRun, tmp_path: Path) -> None:
    db = four_ratings(tmp_path / "data.db")
    with FakeWebui() as webui, FakeHydrusDD() as hydrus:
        result, _ = run_showdown(
            *NO_CACHE,
            "--tagger",
            "sdwebui:wd14-vit-v2-git,hydrus-dd",
            "--sdwebui-url",
            webui.url,
            "--hydrus-dd-url",
            hydrus.url,
            "--showdown-db",
            str(db),
        )
        assert len(webui.interrogations) == len(hydrus.uploads) == 8
    result.assert_outcomes(passed=16)
    rows = table_rows(result)
    # webui: simple_background, red_background and the character (one cut-off for all tags): g posts
    # (3 - 1) / 5, the others (2 - 2) / 5.
    assert rows["sdwebui:wd14-vit-v2-git"][3] == "0.100"
    # hydrus-dd: the two tags, and "safe" is right on g and s posts: (3/5 * 4 + 1/5 * 4) / 8.
    assert rows["hydrus-dd"][3] == "0.400"


def test_a_server_that_goes_down_fails_each_post_clearly(run_showdown: ShowdownRun, tmp_path: Path) -> None:
    db = four_ratings(tmp_path / "data.db")
    url = closed_port_url()
    result, _ = run_showdown("--tagger", "hydrus-dd", "--hydrus-dd-url", url, "--showdown-db", str(db))
    result.assert_outcomes(failed=9)  # the 8 posts and gate[scored-hydrus-dd]: no post scored
    result.stdout.fnmatch_lines([f"*tagger hydrus-dd: POST {url}/: cannot reach the server*"])


def test_a_hub_model_that_cannot_download_fails_once_per_cause_and_is_asked_once_per_process(
    hub_env: FakeHub, run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    hub_env.reset()  # the hub no longer has the repository: every download answers RepoNotFound
    db = four_ratings(tmp_path / "data.db")
    # -vv: the short test summary is never cut to the terminal's width (nor is it in CI).
    result, _ = run_showdown(*NO_CACHE, "--tagger", "wd14-vit-v2", "--showdown-db", str(db), "-vv")
    result.assert_outcomes(failed=9)  # its 8 posts, and no post scored
    # The posts' own failures, one summary line each (the "no post scored" verdict quotes the first).
    output = "\n".join(
        line for line in result.outlines if line.startswith("FAILED") and "no post was scored" not in line
    )
    full = "tagger wd14-vit-v2: SmilingWolf/wd-v1-4-vit-tagger-v2@v2.0: the hub has no such repository"
    processes = max(1, run_showdown.workers)
    # Each process's first item carries the reason (one process may get no item at all), the others
    # refer to it.
    assert 1 <= output.count(full) <= processes, output
    assert output.count("wd14-vit-v2 could not be loaded (see above)") == 8 - output.count(full)
    # One attempt (one request for the tag list) per process that ran an item, never one per post.
    assert 1 <= len(hub_env.requests) <= processes
