"""Shared fixtures: a real monoceros server on a real socket.

``server(app, **config)`` starts :class:`monoceros.Server` in a thread (so
coverage sees it) on a free port, waits for its readiness event, and stops it
on exit.  Tests that take the ``http_impl`` fixture run once per HTTP/1.1
parser; ``server`` uses that parser unless ``http=`` is given.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from monoceros import Config, Server

HTTP_IMPLS = ["httptools", "h11"]


class RunningServer:
    """A started server: ``url``, ``host``, ``port``, the ``Server`` object."""

    def __init__(self, server: Server, scheme: str = "http") -> None:
        self.server = server
        address = server.addresses[0]
        self.scheme = scheme
        if address.startswith("unix:"):
            self.host, self.port, self.path = "", 0, address[5:]
            self.url = "http://localhost"
        else:
            hostport = address.split("://", 1)[1]
            host, _, port = hostport.rpartition(":")
            self.host, self.port, self.path = host.strip("[]"), int(port), ""
            self.url = f"{address.split('://')[0]}://{host}:{port}"

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A raw TCP (or unix) socket connected to the server."""
        if self.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.path)
            return sock
        return socket.create_connection((self.host, self.port), timeout=timeout)


@contextlib.contextmanager
def run_server(app: Any, **kwargs: Any) -> Iterator[RunningServer]:
    """Run ``app`` with ``Config(app, **kwargs)`` until the block exits."""
    kwargs.setdefault("port", 0)
    kwargs.setdefault("log_config", None)
    kwargs.setdefault("lifespan", "auto")
    config = Config(app, **kwargs)
    server = Server(config)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, name="monoceros-test-server", daemon=True)
    thread.start()
    while not server.wait_started(0.05):
        if errors or not thread.is_alive():
            thread.join(5)
            raise RuntimeError(f"server did not start: {errors[0] if errors else 'thread ended'}") from (
                errors[0] if errors else None
            )
    try:
        yield RunningServer(server, "https" if kwargs.get("ssl_certfile") else "http")
    finally:
        server.should_exit = True
        thread.join(30)
        if thread.is_alive():  # pragma: no cover - a hang is a test failure
            raise RuntimeError("server did not stop within 30 s")
    if errors:
        raise errors[0]


@pytest.fixture(params=HTTP_IMPLS)
def http_impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Callable[..., contextlib.AbstractContextManager[RunningServer]]:
    """``with server(app, **config) as srv:`` — parser from ``http_impl`` if the test uses it."""
    default_http = request.getfixturevalue("http_impl") if "http_impl" in request.fixturenames else None

    def start(app: Any, **kwargs: Any) -> contextlib.AbstractContextManager[RunningServer]:
        if default_http is not None:
            kwargs.setdefault("http", default_http)
        return run_server(app, **kwargs)

    return start
