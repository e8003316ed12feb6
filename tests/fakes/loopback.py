"""The part every fake service shares: one threaded pytest-httpserver on 127.0.0.1 that hands every
request to the fake's ``_handle``, started and stopped as a context manager."""

from __future__ import annotations

import re
import socket
from types import TracebackType
from typing import Self

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


class LoopbackFake:
    """Base of the fakes: real HTTP on loopback, the protocol in the subclass's ``_handle``."""

    def __init__(self) -> None:
        self._server = HTTPServer(host="127.0.0.1", port=0, threaded=True)

    def _handle(self, request: Request) -> Response:
        raise NotImplementedError

    def start(self) -> None:
        self._server.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self._server.start()

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"


def closed_port_url() -> str:
    """A loopback URL nothing listens on (a server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
