"""Secrets stay out of what a run prints and writes: a server URL holding a password is refused at
configure (exit 4, one line, the password not shown), whichever option, ini key or variable gave it;
the webui's password comes from ``SDWEBUI_AUTH`` instead. Each scenario in three xdist modes, against
real loopback servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.hub import VIT_V2_REPO, FakeHub, wd14_repo_files
from tests.fakes.hydrus_dd import FakeHydrusDD
from tests.fakes.sdwebui import FakeWebui
from tests.helpers.datasets import four_ratings
from tests.helpers.runs import ShowdownRun, table_rows

PASSWORD = "URLPASSWD"
OUTPUTS = ("sec.json", "sec.csv", "sec.html", "sec.xml")
#: Every file a run writes that a password could reach: the results, the CSV, the report, JUnit XML.
OUTPUT_OPTIONS = tuple(
    arg
    for option, name in zip(
        ("--showdown-json", "--showdown-csv", "--showdown-report", "--junitxml"), OUTPUTS, strict=True
    )
    for arg in (option, name)
)


def _with_password(url: str) -> str:
    return url.replace("http://", f"http://bob:{PASSWORD}@")


def _requests_seen(fake: FakeWebui | FakeHydrusDD | FakeHub) -> int:
    """The images a tagger server was sent, or the hub's requests."""
    if isinstance(fake, FakeWebui):
        return len(fake.interrogations)
    if isinstance(fake, FakeHydrusDD):
        return len(fake.uploads)
    return len(fake.requests)


@pytest.mark.parametrize(
    ("server", "name", "how", "line"),
    [
        ("webui", "sdwebui:wd14-vit-v2-git", "option", "--sdwebui-url http://***@127.0.0.1:*"),
        ("webui", "sdwebui:wd14-vit-v2-git", "-o", "sdwebui_url (set by -o) http://***@127.0.0.1:*"),
        ("webui", "sdwebui:wd14-vit-v2-git", "env", "SDWEBUI_URL http://***@127.0.0.1:*"),
        ("hydrus", "hydrus-dd", "option", "--hydrus-dd-url http://***@127.0.0.1:*"),
        ("hydrus", "hydrus-dd", "env", "HYDRUS_DD_URL http://***@127.0.0.1:*"),
        ("hub", "wd14-vit-v2", "env", "HF_ENDPOINT http://***@127.0.0.1:*"),
    ],
    ids=["sdwebui-url", "sdwebui-ini-o", "SDWEBUI_URL", "hydrus-dd-url", "HYDRUS_DD_URL", "HF_ENDPOINT"],
)
def test_a_password_in_a_server_url_is_refused_at_configure_and_shown_nowhere(
    run_showdown: ShowdownRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: str,
    name: str,
    how: str,
    line: str,
) -> None:
    """Before: the run used the URL and printed it in every failure, and into the JSON, the CSV, the
    HTML report and the JUnit XML (``GET http://bob:URLPASSWD@...``); huggingface_hub's retry warnings
    printed ``HF_ENDPOINT``."""
    db = four_ratings(tmp_path / "data.db")
    monkeypatch.setenv("SDWEBUI_AUTH", "alice:S3CRETPW")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for unset in ("SDWEBUI_URL", "HYDRUS_DD_URL", "HF_ENDPOINT", "HF_HUB_CACHE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(unset, raising=False)
    fakes = {"webui": FakeWebui, "hydrus": FakeHydrusDD, "hub": FakeHub}
    with fakes[server]() as fake:
        if isinstance(fake, FakeHub):
            fake.add_commit(VIT_V2_REPO, wd14_repo_files(), refs=("v2.0", "main"))
        url = _with_password(fake.url)
        option = {"webui": "--sdwebui-url", "hydrus": "--hydrus-dd-url"}.get(server, "")
        variable = {"webui": "SDWEBUI_URL", "hydrus": "HYDRUS_DD_URL", "hub": "HF_ENDPOINT"}[server]
        given: tuple[str, ...] = ()
        if how == "option":
            given = (option, url)
        elif how == "-o":
            given = ("-o", f"{option.removeprefix('--').replace('-', '_')}={url}")
        else:
            monkeypatch.setenv(variable, url)
        result, _ = run_showdown(
            *given,
            "--tagger",
            name,
            "--showdown-db",
            str(db),
            "--showdown-no-cache",
            *OUTPUT_OPTIONS,
            json_file=None,
        )
        requests_seen = _requests_seen(fake)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    errors = [text for text in result.errlines if text.strip()]
    assert len(errors) == 1, errors
    result.stderr.fnmatch_lines(
        [f"ERROR: tagger-showdown: {line}: a URL must not contain a user or password (*); *"]
    )
    assert PASSWORD not in result.stdout.str() + result.stderr.str()
    assert [file for file in OUTPUTS if (run_showdown.pytester.path / file).exists()] == []
    assert requests_seen == 0


def test_the_webui_password_comes_from_sdwebui_auth_and_is_not_shown(
    run_showdown: ShowdownRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The way the refusal points to: a plain URL, the password in ``SDWEBUI_AUTH``; the server asks
    for it, and neither the terminal nor the outputs show it."""
    db = four_ratings(tmp_path / "data.db")
    monkeypatch.setenv("SDWEBUI_AUTH", f"bob:{PASSWORD}")
    with FakeWebui() as webui:
        webui.credentials = ("bob", PASSWORD)
        result, _ = run_showdown(
            "--tagger",
            "sdwebui:wd14-vit-v2-git",
            "--sdwebui-url",
            webui.url,
            "--showdown-db",
            str(db),
            "--showdown-no-cache",
            *OUTPUT_OPTIONS,
            json_file=None,
        )
        assert len(webui.interrogations) == 8
    assert result.ret == 0, result.stdout.str()
    assert table_rows(result)["sdwebui:wd14-vit-v2-git"][3] == "0.100"
    assert PASSWORD not in result.stdout.str() + result.stderr.str()
    for name in OUTPUTS:
        assert PASSWORD not in (run_showdown.pytester.path / name).read_text(), name


def test_a_query_in_a_server_url_is_refused_at_configure_and_shown_nowhere(
    run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    """Before: ``--sdwebui-url 'http://127.0.0.1:9/?api_key=...'`` was accepted, the key printed
    and saved in the JSON, and the URL called was ``?api_key=.../tagger/v1/interrogators``."""
    db = four_ratings(tmp_path / "data.db")
    with FakeWebui() as webui:
        result, _ = run_showdown(
            "--tagger",
            "sdwebui:wd14-vit-v2-git",
            "--sdwebui-url",
            f"{webui.url}/?api_key={PASSWORD}",
            "--showdown-db",
            str(db),
            "--showdown-no-cache",
            "--showdown-json",
            "sec.json",
            json_file=None,
        )
        assert len(webui.interrogations) == 0
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    errors = [text for text in result.errlines if text.strip()]
    assert errors == [
        "ERROR: tagger-showdown: --sdwebui-url: a URL must not contain a query or fragment ('?...' or "
        "'#...'; it would be printed and saved with the results, and the client's paths would be "
        "appended to it); set SDWEBUI_AUTH=user:password for the webui's --api-auth"
    ], errors
    assert PASSWORD not in result.stdout.str() + result.stderr.str()
    assert not (run_showdown.pytester.path / "sec.json").exists()
