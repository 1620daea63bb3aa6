"""Eager start (monoceros.protocols.eager) on a real server: what an app sees
must not depend on it.

Every test runs with ``eager_start`` on and off, on both HTTP/1.1 parsers, and
expects the same answers: ``asyncio.current_task()`` names one Task for the
whole call (also across a wait), context variables stay per request, anyio
cancel scopes and task groups, ``asyncio.timeout``, Starlette's
``BaseHTTPMiddleware``, a self-cancelling app, pipelined batches that mix
calls that wait and calls that do not, and a graceful shutdown that has to
cancel a call that waits.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import anyio
import h11
import httpx
import pytest

from tests.e2e.h1tools import Reader, read_response

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@pytest.fixture(params=[True, False], ids=["eager", "tasks"])
def eager(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def _respond(send: Any, body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def task_identity_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    first = asyncio.current_task()
    assert first is not None
    if scope["path"] == "/wait":
        await asyncio.sleep(0.001)
    again = asyncio.current_task()
    await _respond(send, b"same" if again is first else b"changed")


def test_current_task_is_one_task_for_the_whole_call(server, http_impl: str, eager: bool) -> None:
    with server(task_identity_app, eager_start=eager) as srv, httpx.Client(base_url=srv.url) as client:
        for path in ("/", "/wait", "/", "/wait", "/"):
            assert client.get(path).text == "same"


async def context_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    before = REQUEST_ID.get()
    REQUEST_ID.set(scope["query_string"].decode())
    if scope["path"] == "/wait":
        await asyncio.sleep(0.001)
    seen = await asyncio.get_running_loop().run_in_executor(None, REQUEST_ID.get)  # not copied: the default
    in_child = await asyncio.create_task(_read_var())  # a child task copies the call's context
    await _respond(send, f"{before} {REQUEST_ID.get()} {seen} {in_child}".encode())


async def _read_var() -> str:
    return REQUEST_ID.get()


def test_context_variables_stay_per_request(server, http_impl: str, eager: bool) -> None:
    with server(context_app, eager_start=eager) as srv, httpx.Client(base_url=srv.url) as client:
        # One keep-alive connection: nothing a call sets reaches the next one.
        for i, path in enumerate(("/", "/", "/wait", "/", "/wait", "/wait")):
            assert client.get(path, params={"n": str(i)}).text == f"unset n={i} unset n={i}"


async def anyio_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/move-on":
        with anyio.move_on_after(0.05) as scope_:
            await anyio.sleep(10)
        await _respond(send, b"moved on" if scope_.cancelled_caught else b"slept")
    elif path == "/cancel-now":
        with anyio.CancelScope() as scope_:
            scope_.cancel()  # inside the first step; delivered at the next checkpoint
            await anyio.sleep(10)
        await _respond(send, b"cancelled" if scope_.cancelled_caught else b"slept")
    elif path == "/fail-after":
        try:
            with anyio.fail_after(0.05):
                await anyio.sleep(10)
        except TimeoutError:
            await _respond(send, b"timed out")
    elif path == "/group":
        results: list[int] = []

        async def child(n: int) -> None:
            await anyio.sleep(0.001 * n)
            results.append(n)

        async with anyio.create_task_group() as tg:
            for n in (3, 1, 2):
                tg.start_soon(child, n)
        await _respond(send, repr(sorted(results)).encode())
    elif path == "/group-cancel":
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep, 10)
            tg.cancel_scope.cancel()
        await _respond(send, b"group cancelled")
    elif path == "/asyncio-timeout":
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(10)
        except TimeoutError:
            await _respond(send, b"timed out")
    else:
        with anyio.CancelScope():  # entered and left within the first step
            pass
        await _respond(send, b"plain")


def test_anyio_and_asyncio_cancellation(server, http_impl: str, eager: bool) -> None:
    expected = {
        "/": "plain",
        "/move-on": "moved on",
        "/cancel-now": "cancelled",
        "/fail-after": "timed out",
        "/group": "[1, 2, 3]",
        "/group-cancel": "group cancelled",
        "/asyncio-timeout": "timed out",
    }
    with server(anyio_app, eager_start=eager) as srv, httpx.Client(base_url=srv.url, timeout=10) as client:
        for _ in range(2):  # twice over one connection: no state left behind
            for path, text in expected.items():
                assert client.get(path).text == text, path


def test_starlette_base_http_middleware(server, http_impl: str, eager: bool) -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

    class Tag(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: Any) -> Response:
            task = asyncio.current_task()
            token = REQUEST_ID.set("middleware")
            try:
                response = await call_next(request)  # the endpoint runs in a child task
            finally:
                REQUEST_ID.reset(token)
            response.headers["x-task"] = "same" if asyncio.current_task() is task else "changed"
            return response

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {REQUEST_ID.get()}")

    async def slow(request: Request) -> PlainTextResponse:
        await anyio.sleep(0.001)
        body = await request.body()
        return PlainTextResponse(f"slow {len(body)} {REQUEST_ID.get()}")

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            for i in range(3):
                await anyio.sleep(0)
                yield b"%d;" % i

        return StreamingResponse(chunks())

    app = Starlette(
        routes=[Route("/", hello), Route("/slow", slow, methods=["GET", "POST"]), Route("/stream", stream)],
        middleware=[Middleware(Tag)],
    )
    with server(app, eager_start=eager) as srv, httpx.Client(base_url=srv.url) as client:
        for _ in range(3):
            r = client.get("/")
            assert (r.text, r.headers["x-task"]) == ("hello middleware", "same")
            r = client.post("/slow", content=b"x" * 5000)
            assert (r.text, r.headers["x-task"]) == ("slow 5000 middleware", "same")
            r = client.get("/stream")
            assert r.text == "0;1;2;"


async def self_cancel_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    task = asyncio.current_task()
    assert task is not None
    if scope["path"] == "/uncaught":
        task.cancel()
        await asyncio.sleep(0)  # CancelledError here ends the call: no response
        await _respond(send, b"not reached")
        return
    task.cancel()
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        task.uncancel()
        await asyncio.sleep(0)  # the task goes on normally after that
        await _respond(send, b"saw the cancellation")
        return
    await _respond(send, b"no cancellation")


def test_an_app_that_cancels_its_own_task(server, http_impl: str, eager: bool) -> None:
    with server(self_cancel_app, eager_start=eager) as srv:
        with httpx.Client(base_url=srv.url) as client:
            assert client.get("/").text == "saw the cancellation"
            assert client.get("/").text == "saw the cancellation"
        with httpx.Client(base_url=srv.url) as client, pytest.raises(httpx.RemoteProtocolError):
            client.get("/uncaught")  # the connection closes without a response
        with httpx.Client(base_url=srv.url) as client:
            assert client.get("/").text == "saw the cancellation"  # the server is fine


async def pipeline_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    REQUEST_ID.set(scope["path"])
    if scope["path"].startswith("/wait"):
        await asyncio.sleep(0.002)
    message = await receive()
    body = message.get("body", b"")
    await _respond(send, f"{scope['path']} {REQUEST_ID.get()} {len(body)}".encode())


def test_pipelined_batch_mixing_calls_that_wait(server, http_impl: str, eager: bool) -> None:
    paths = [f"/{'wait' if i % 5 == 2 else 'now'}{i}" for i in range(24)]
    raw = b"".join(
        (
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" % p.encode()
            if i % 4 == 1
            else b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode()
        )
        for i, p in enumerate(paths)
    )
    with server(pipeline_app, eager_start=eager) as srv:
        sock = srv.connect()
        with sock:
            sock.sendall(raw)
            reader = Reader(sock)
            bodies = [read_response(reader).body.decode() for _ in paths]
    assert bodies == [f"{p} {p} {3 if i % 4 == 1 else 0}" for i, p in enumerate(paths)]


def test_graceful_shutdown_cancels_a_call_that_waits(server, http_impl: str, eager: bool) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    with server(app, eager_start=eager, timeout_graceful_shutdown=0.2) as srv:
        sock = srv.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        conn = h11.Connection(h11.CLIENT)
        while True:  # the head arrives (the body never does)
            conn.receive_data(sock.recv(65536))
            if isinstance(conn.next_event(), h11.Response):
                break
    # The server stopped (the block exits only then): the waiting call was cancelled.
    assert seen == ["cancelled"]
    sock.close()


def test_eager_start_is_a_setting() -> None:
    from monoceros import Config

    assert Config(task_identity_app).eager_start is True
    assert Config(task_identity_app, eager_start=False).eager_start is False
