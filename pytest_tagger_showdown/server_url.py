"""A server's URL as the user gives it (``--sdwebui-url``, ``--hydrus-dd-url``, ``--api-url``,
``HF_ENDPOINT``, their environment variables): the one rule that checks it, where it is read.

A password in a URL is refused, never used: the URL is shown in error messages, progress lines, the
JSON, CSV and HTML outputs and JUnit XML, and libraries print it too (huggingface_hub's retry
warnings), out of reach of any redaction of ours. Each server takes its secret from a variable of its
own instead (``SDWEBUI_AUTH``, ``DANBOORU_API_KEY``, ``HF_TOKEN``), which is never shown. A query
or fragment (``?api_key=...``) is refused for the same reason, and because the clients append their
paths to the URL, which would land inside it (``?api_key=x/tagger/v1/interrogators``).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def shown(url: str) -> str:
    """``url`` as it may be printed: any ``user:password@`` replaced by ``***@``. For URLs a server
    answers (a Danbooru ``file_url``), which no configure-time check has seen."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
    if not parts.netloc and "@" in url:  # no ``//``: ``user:pw@host`` reads as a scheme and a path
        return "***@" + url.rpartition("@")[2]
    return url


def check_server_url(url: str, where: str, secret_from: str) -> str:
    """``url`` without a trailing ``/``, when it is an http(s) URL with a host, a valid port, no
    credentials and no query or fragment; else ValueError naming ``where`` (the option or variable
    that gave it) and, for credentials or a query, ``secret_from`` (what to use instead, e.g.
    ``set SDWEBUI_AUTH=user:password``).
    Every message shows the URL as :func:`shown` does, so none ever shows a password; the refusal
    of a query or fragment shows no URL at all (a secret there may hold ``@``, ``:`` or ``/``)."""
    text = url.strip()
    if "?" in text or "#" in text:
        raise ValueError(
            f"{where}: a URL must not contain a query or fragment ('?...' or '#...'; it would be printed "
            f"and saved with the results, and the client's paths would be appended to it); {secret_from}"
        )
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise ValueError(
            f"{where} {shown(text)}: a URL must not contain a user or password (it would be printed "
            f"and saved with the results); {secret_from}"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where} must be an http(s) URL with a host, not {shown(text)!r}")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError:
        raise ValueError(f"{where} has no valid port: {shown(text)!r}") from None
    return text.rstrip("/")
