"""The one rule for a server URL the user gives: http(s), a host, a valid port, and no password."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.dataset.danbooru import DanbooruClient, FetchError
from pytest_tagger_showdown.server_url import check_server_url, shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://bob:pw@127.0.0.1:9/x?q=1", "http://***@127.0.0.1:9/x?q=1"),
        ("https://bob@host", "https://***@host"),
        ("http://a:p@ss@host/", "http://***@host/"),  # the last @ ends the user part, as in urllib3
        ("http://host:8080/path@x", "http://host:8080/path@x"),  # an @ in the path is no credential
        ("bob:pw@host", "***@host"),
    ],
)
def test_shown_hides_the_user_part(url: str, expected: str) -> None:
    assert shown(url) == expected


def test_a_good_url_loses_its_trailing_slash() -> None:
    assert check_server_url(" http://127.0.0.1:7860/ ", "--sdwebui-url", "use X") == "http://127.0.0.1:7860"


@pytest.mark.parametrize(
    "url",
    [
        "http://bob:SECRETPW@127.0.0.1:9",
        "http://bob:SECRETPW@127.0.0.1:99999",  # before: the port error came first, quoting the password
        "ftp://bob:SECRETPW@host",
    ],
)
def test_credentials_are_refused_first_without_showing_the_password(url: str) -> None:
    refusal = r"^--x .*\*\*\*@.*must not contain a user or password.*; use Y$"
    with pytest.raises(ValueError, match=refusal) as raised:
        check_server_url(url, "--x", "use Y")
    assert "SECRETPW" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:7860", "--x must be an http(s) URL with a host, not '127.0.0.1:7860'"),
        ("http://", "--x must be an http(s) URL with a host, not 'http://'"),
        ("http://host:port", "--x has no valid port: 'http://host:port'"),
        # No scheme: ``bob`` reads as one, the password as a path; still not shown.
        ("bob:SECRETPW@host", "--x must be an http(s) URL with a host, not '***@host'"),
    ],
)
def test_other_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^--x ") as raised:
        check_server_url(url, "--x", "use Y")
    assert str(raised.value) == message


def test_the_danbooru_client_refuses_a_password_with_a_bad_port_without_showing_it() -> None:
    """Before: ``--api-url has no valid port: 'http://alice:SECRETPW@127.0.0.1:99999'``."""
    with pytest.raises(FetchError, match="DANBOORU_LOGIN and DANBOORU_API_KEY") as raised:
        DanbooruClient("http://alice:SECRETPW@127.0.0.1:99999")
    assert "SECRETPW" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/?api_key=SECRETPW",
        "http://127.0.0.1:9?api_key=SECRETPW",
        "http://127.0.0.1:9/#SECRETPW",
        "http://127.0.0.1:9/?",
        "http://bob:pa?SECRETPW@127.0.0.1:9",  # a password holding ``?``: none of it shown
        "ftp://127.0.0.1:9/?api_key=SECRETPW",  # before: the scheme error quoted the query
        "http://127.0.0.1:99999/?api_key=SECRETPW",  # before: the port error quoted the query
    ],
)
def test_a_query_or_fragment_is_refused_without_showing_the_url(url: str) -> None:
    """Before: accepted; the key was printed and saved in the JSON, and the client's path landed in
    the query (``?api_key=s3cretpw/tagger/v1/interrogators``)."""
    refusal = r"^--x: a URL must not contain a query or fragment \(.*\); use Y$"
    with pytest.raises(ValueError, match=refusal) as raised:
        check_server_url(url, "--x", "use Y")
    assert "SECRETPW" not in str(raised.value)
    assert "127.0.0.1" not in str(raised.value)
