"""Limits and timeouts of the HTTP/1.1 server, on real sockets, on both parsers:
``limit_request_body``, ``limit_concurrency``, ``limit_max_requests``,
``timeout_keep_alive``, ``timeout_request_header``, ``timeout_request_body``,
``reset_contextvars``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import RunningServer
from h1tools import Reader, ThreadEvent, get, read_body, read_head, read_response, respond

from monoceros import Config, Server


@pytest.fixture
def server(server):  # type: ignore[no-untyped-def]
    def start(app, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("lifespan", "off")
        return server(app, **kwargs)

    return start


# -- limit_request_body -------------------------------------------------------------------


def test_content_length_over_the_limit_is_413_before_the_app_runs(server, http_impl):
    calls: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        calls.append(scope["path"])
        await respond(send, await read_body(receive))

    with server(app, limit_request_body=100) as srv:
        with srv.connect() as sock:
            reader = Reader(sock)
            sock.sendall(b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n")
            resp = read_response(reader)
            assert resp.status == 413 and resp.get(b"connection") == [b"close"]
            assert reader.at_eof()
        with httpx.Client(base_url=srv.url) as client:
            assert client.post("/ok", content=b"x" * 100).content == b"x" * 100  # the limit itself is fine
    assert calls == ["/ok"]


def test_chunked_body_over_the_limit_mid_stream(server, http_impl):
    got: list[Any] = []
    done = ThreadEvent()
    first = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        got.append(await receive())
        first.set()
        got.append(await receive())
        done.set()

    with server(app, limit_request_body=100) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n" + b"a" * 60 + b"\r\n"
        )
        assert first.wait(5)
        sock.sendall(b"3c\r\n" + b"b" * 60 + b"\r\n")
        resp = read_response(reader)
        assert resp.status == 413 and resp.get(b"connection") == [b"close"]
        assert reader.at_eof()
        assert done.wait(5)
    assert got == [
        {"type": "http.request", "body": b"a" * 60, "more_body": True},
        {"type": "http.disconnect"},  # the over-limit bytes never reach the app
    ]


def test_chunked_body_over_the_limit_after_the_response_started(server, http_impl):
    got: list[Any] = []
    done = ThreadEvent()
    started = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"streaming", "more_body": True})
        started.set()
        while (message := await receive())["type"] == "http.request":
            got.append(message)
        got.append(message)
        done.set()

    with server(app, limit_request_body=10) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert started.wait(5)
        sock.sendall(b"14\r\n" + b"z" * 20 + b"\r\n")
        assert done.wait(5)
        assert got[-1] == {"type": "http.disconnect"}
        data = reader.read_to_eof()  # the response cannot be finished: cut off
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"9\r\nstreaming\r\n")


# -- limit_concurrency --------------------------------------------------------------------


def test_limit_concurrency_answers_503(server, http_impl):
    entered = ThreadEvent()
    release = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["path"] == "/hold":
            entered.set()
            await release.wait_async()
        await respond(send, b"ok")

    with server(app, limit_concurrency=1) as srv, srv.connect() as holder:
        holder.sendall(get("/hold"))
        assert entered.wait(5)
        with srv.connect() as sock:
            reader = Reader(sock)
            sock.sendall(get("/other"))
            resp = read_response(reader)
            assert resp.status == 503 and resp.body == b"Service Unavailable"
            assert resp.get(b"connection") == [b"close"]
            assert reader.at_eof()
        release.set()
        assert read_response(Reader(holder)).body == b"ok"
        with httpx.Client(base_url=srv.url) as client:
            assert client.get("/after").status_code == 200


request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var")


async def context_app(scope, receive, send):  # type: ignore[no-untyped-def]
    seen = request_var.get("unset")
    request_var.set(scope["path"])
    await read_body(receive)
    await respond(send, seen.encode())


# -- limit_max_requests -------------------------------------------------------------------


@contextlib.contextmanager
def serving(
    app: Any, outer_value: str | None = None, **kwargs: Any
) -> Iterator[tuple[RunningServer, threading.Thread]]:
    """Like conftest's run_server, but the test sees the thread (to wait for
    serve() to return), and the server thread may set ``request_var`` first."""
    kwargs.setdefault("port", 0)
    kwargs.setdefault("log_config", None)
    kwargs.setdefault("lifespan", "off")
    srv = Server(Config(app, **kwargs))

    def run() -> None:
        if outer_value is not None:
            request_var.set(outer_value)
        srv.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert srv.wait_started(10)
        yield RunningServer(srv), thread
    finally:
        srv.should_exit = True
        thread.join(30)


def test_limit_max_requests_stops_the_server(http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, b"ok")

    with serving(app, http=http_impl, limit_max_requests=3) as (srv, thread):
        with httpx.Client(base_url=srv.url) as client:
            for _ in range(3):
                assert client.get("/").status_code == 200
        thread.join(10)  # serve() returns on its own
        assert not thread.is_alive()
        assert not srv.server.started


# -- timeouts -----------------------------------------------------------------------------


def test_timeout_keep_alive_closes_an_idle_connection(server, http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, b"ok")

    with server(app, timeout_keep_alive=1) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/"))
        assert read_response(reader).body == b"ok"
        idle_since = time.monotonic()
        assert reader.at_eof()  # closed quietly: no 408 for an idle connection
        waited = time.monotonic() - idle_since
        assert 0.5 < waited < 3.5


def test_timeout_request_header_answers_408(server, http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, b"ok")

    with server(app, timeout_request_header=1) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/"))
        assert read_response(reader).body == b"ok"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # a head that never ends
        started = time.monotonic()
        resp = read_response(reader)
        assert resp.status == 408 and resp.get(b"connection") == [b"close"]
        assert 0.5 < time.monotonic() - started < 3.5
        assert reader.at_eof()


def _body_app(events: list[str]):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["path"] == "/started":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        if scope["path"] == "/no-read":
            await asyncio.sleep(2.2)  # busy (past the 1 s timeout), not reading the body
            await respond(send, b"answered")
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                events.append("disconnect")
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await respond(send, body)

    return app


def test_timeout_request_body_answers_408(server, http_impl):
    events: list[str] = []
    with server(_body_app(events), timeout_request_body=1) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")  # 7 bytes never come
        started = time.monotonic()
        resp = read_response(reader)
        assert resp.status == 408 and resp.get(b"connection") == [b"close"]
        assert 0.5 < time.monotonic() - started < 3.5
        assert reader.at_eof()
    assert events == ["disconnect"]


def test_a_body_that_keeps_coming_is_not_timed_out(server, http_impl):
    with server(_body_app([]), timeout_request_body=1) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):  # 2 s in all, never 1 s without a byte: a slow client, not a stalled one
            sock.sendall(b"1\r\nx\r\n")
            time.sleep(0.4)
        sock.sendall(b"0\r\n\r\n")
        assert read_response(reader).body == b"xxxxx"


def test_the_body_timeout_runs_only_while_the_app_waits_for_body(server, http_impl):
    """An app that does not read leaves the client nothing to be late for."""
    with server(_body_app([]), timeout_request_body=1) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"POST /no-read HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        assert read_response(reader).body == b"answered"


def test_a_body_timeout_after_the_response_started_closes(server, http_impl):
    events: list[str] = []
    with server(_body_app(events), timeout_request_body=1) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"POST /started HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        assert read_head(reader).status == 200  # no 408 in the middle of a response: a close
        assert reader.read_to_eof() == b"4\r\npart\r\n"
    assert events == ["disconnect"]


# -- contextvars --------------------------------------------------------------------------


def test_requests_do_not_see_each_others_contextvars(server, http_impl):
    with server(context_app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        # Pipelined: request 2 is parsed inside request 1's send().
        sock.sendall(get("/1") + get("/2") + get("/3"))
        assert [read_response(reader).body for _ in range(3)] == [b"unset"] * 3
        # A body big enough to pause reading: request 4's app resumes it.
        body = b"x" * 1_000_000
        sock.sendall(b"POST /4 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert read_response(reader).body == b"unset"
        sock.sendall(get("/5"))
        assert read_response(reader).body == b"unset"


@pytest.mark.parametrize("reset", [False, True])
def test_reset_contextvars_hides_the_servers_context(http_impl, reset):
    # The server runs where a context variable is set (as instrumentation does).
    with (
        serving(context_app, "outer", http=http_impl, reset_contextvars=reset) as (srv, _),
        srv.connect() as sock,
    ):
        sock.sendall(get("/"))
        assert read_response(Reader(sock)).body == (b"unset" if reset else b"outer")
