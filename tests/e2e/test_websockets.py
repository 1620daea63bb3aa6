"""WebSockets on real sockets: the `websockets` client (and a raw client for
what a polite client never sends), every test on both WebSocket libraries and
both HTTP/1.1 parsers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets
from h1tools import Reader, ThreadEvent, read_response
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from wstools import close_payload, frame, handshake_request
from wstools import connect as raw_connect

from monoceros.errors import ClientDisconnected

WS_IMPLS = ["websockets", "wsproto"]
MiB = 1024 * 1024


@pytest.fixture(params=WS_IMPLS)
def ws_impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Recorder:
    """What the app saw, for the test thread to check."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.errors: list[BaseException] = []
        self.done = ThreadEvent()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def ws_server(server, http_impl, ws_impl):  # type: ignore[no-untyped-def]
    def start(app, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("lifespan", "off")
        kwargs.setdefault("ws", ws_impl)
        return server(app, **kwargs)

    return start


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


def echo_app(rec: Recorder, subprotocol: bool = False) -> Callable[..., Awaitable[None]]:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        try:
            assert scope["type"] == "websocket"
            assert (await receive())["type"] == "websocket.connect"
            chosen = scope["subprotocols"][-1] if subprotocol and scope["subprotocols"] else None
            await send({"type": "websocket.accept", "subprotocol": chosen, "headers": [(b"x-app", b"1")]})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    rec.messages.append(message)
                    return
                reply = {"type": "websocket.send"}
                reply.update((k, v) for k, v in message.items() if k in ("text", "bytes"))
                await send(reply)
        except BaseException as exc:  # reported to the test
            rec.errors.append(exc)
            raise
        finally:
            rec.done.set()

    return app


def url(srv: Any, path: str = "/") -> str:
    return f"ws://{srv.host}:{srv.port}{path}"


# -- messages -----------------------------------------------------------------------
def test_text_bytes_and_order(ws_server, rec):  # type: ignore[no-untyped-def]
    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(url(srv, "/chat?x=1"), compression=None) as ws:
            assert ws.response.headers["x-app"] == "1"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            await ws.send("")
            assert await ws.recv() == ""
            for i in range(200):
                await ws.send(str(i))
            assert [await ws.recv() for _ in range(200)] == [str(i) for i in range(200)]

    with ws_server(echo_app(rec)) as srv:
        run(client(srv))
        assert rec.done.wait()
    assert not rec.errors
    assert rec.messages == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_one_mib_messages_and_fragments(ws_server, rec, compression):  # type: ignore[no-untyped-def]
    big_text = "é" * (MiB // 2)
    big_bytes = bytes(range(256)) * (MiB // 256)

    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(url(srv), compression=compression, max_size=4 * MiB) as ws:
            extensions = ws.response.headers.get("sec-websocket-extensions")
            assert (extensions is not None) == (compression == "deflate")
            await ws.send(big_text)
            assert await ws.recv() == big_text
            await ws.send(big_bytes)
            assert await ws.recv() == big_bytes
            # a fragmented message: one message for the app
            await ws.send(["frag", "men", "ted"])
            assert await ws.recv() == "fragmented"
            await ws.send([b"a", b"b"])
            assert await ws.recv() == b"ab"

    with ws_server(echo_app(rec)) as srv:
        run(client(srv))
        assert rec.done.wait()
    assert not rec.errors


def test_scope_and_subprotocol(ws_server, http_impl):  # type: ignore[no-untyped-def]
    seen: list[dict[str, Any]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(dict(scope))
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "two"})
        await send({"type": "websocket.send", "text": "ok"})
        await receive()

    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(url(srv, "/a%20b?q=1"), subprotocols=["one", "two"]) as ws:
            assert ws.subprotocol == "two"
            assert await ws.recv() == "ok"

    with ws_server(app, root_path="/root") as srv:
        run(client(srv))
    scope = seen[0]
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/root/a b"
    assert scope["raw_path"] == b"/a%20b"
    assert scope["query_string"] == b"q=1"
    assert scope["subprotocols"] == ["one", "two"]
    assert scope["http_version"] == "1.1"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert "websocket.http.response" in scope["extensions"]
    assert "method" not in scope
    assert (b"upgrade", b"websocket") in scope["headers"]


# -- closing ------------------------------------------------------------------------
def test_client_close_code_and_reason_reach_the_app(ws_server, rec):  # type: ignore[no-untyped-def]
    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(url(srv)) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(4002, "ciao")

    with ws_server(echo_app(rec)) as srv:
        run(client(srv))
        assert rec.done.wait()
    assert rec.messages == [{"type": "websocket.disconnect", "code": 4002, "reason": "ciao"}]


def test_server_close_code_and_reason_reach_the_client(ws_server, rec):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
        rec.messages.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except ClientDisconnected as exc:
            rec.errors.append(exc)
        rec.done.set()

    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(url(srv)) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "bye")

    with ws_server(app) as srv:
        run(client(srv))
        assert rec.done.wait()
    assert rec.messages == [{"type": "websocket.disconnect", "code": 4001, "reason": "bye"}]
    assert len(rec.errors) == 1 and isinstance(rec.errors[0], OSError)


def test_app_returning_closes_with_1000(ws_server):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "last"})

    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(url(srv)) as ws:
            assert await ws.recv() == "last"
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1000

    with ws_server(app) as srv:
        run(client(srv))


def test_app_error_after_accept_is_1011(ws_server, caplog):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(url(srv)) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1011

    with ws_server(app) as srv:
        run(client(srv))
    assert "Exception in ASGI application" in caplog.text


# -- the handshake answered with HTTP ----------------------------------------------------
def test_close_before_accept_is_403(ws_server):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.close"})

    async def client(srv):  # type: ignore[no-untyped-def]
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(srv)):
                pass
        assert info.value.response.status_code == 403

    with ws_server(app) as srv:
        run(client(srv))


def test_app_error_before_accept_is_500(ws_server, caplog):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    async def client(srv):  # type: ignore[no-untyped-def]
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(srv)):
                pass
        assert info.value.response.status_code == 500

    with ws_server(app) as srv:
        run(client(srv))
    assert "Exception in ASGI application" in caplog.text


def test_app_returning_without_handshake_is_500(ws_server, caplog):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()

    with ws_server(app) as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        assert read_response(Reader(sock)).status == 500
    assert "returned without sending handshake" in caplog.text


@pytest.mark.parametrize("length", [True, False])
def test_denial_response_with_streamed_body(ws_server, length):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        headers = [(b"content-type", b"text/plain"), (b"x-why", b"no")]
        if length:
            headers.append((b"content-length", b"12"))
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"not ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"allowed!"})

    with ws_server(app) as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        resp = read_response(Reader(sock))
        assert resp.status == 401
        assert resp.header(b"x-why") == b"no"
        assert resp.body == b"not allowed!"
        assert resp.framing == ("length" if length else "chunked")


def test_websockets_client_sees_denial(ws_server):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"nothing here"})

    async def client(srv):  # type: ignore[no-untyped-def]
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(srv)):
                pass
        assert info.value.response.status_code == 404
        assert info.value.response.body == b"nothing here"

    with ws_server(app) as srv:
        run(client(srv))


def test_message_out_of_order_is_an_app_error(ws_server, caplog):  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        try:
            await send({"type": "websocket.send", "text": "before accept"})
        except RuntimeError as exc:
            errors.append(exc)
            raise

    with ws_server(app) as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        assert read_response(Reader(sock)).status == 500
    assert "Expected ASGI message 'websocket.accept'" in str(errors[0])


# -- bad input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (handshake_request(version=b"8"), 426),
        (handshake_request(version=b""), 426),
        (handshake_request(key=None), 400),
        (handshake_request(key=b"dG9vIHNob3J0"), 400),
        (handshake_request(key=b"not base64!!"), 400),
        (handshake_request("/", b"Sec-WebSocket-Key: " + b"AAAAAAAAAAAAAAAAAAAAAA=="), 400),
        (handshake_request().replace(b"GET", b"POST"), 400),
    ],
    ids=["version-8", "no-version", "no-key", "short-key", "bad-key", "two-keys", "post"],
)
def test_bad_handshake(ws_server, rec, request_bytes, status):  # type: ignore[no-untyped-def]
    with ws_server(echo_app(rec)) as srv:
        with srv.connect() as sock:
            sock.sendall(request_bytes)
            resp = read_response(Reader(sock))
        assert resp.status == status
        if status == 426:
            assert resp.header(b"sec-websocket-version") == b"13"
        assert not rec.done.is_set()  # the app never saw it

        async def still_serving() -> None:
            async with connect(url(srv)) as ws:
                await ws.send("fine")
                assert await ws.recv() == "fine"

        run(still_serving())


def test_bad_frames_get_close_codes_and_spare_other_connections(ws_server, rec):  # type: ignore[no-untyped-def]
    cases = [
        (frame(1, b"\xff\xfe"), 1007),  # invalid UTF-8
        (frame(1, "é".encode()[:1], fin=False) + frame(0, b"\xff"), 1007),  # invalid across fragments
        (frame(1, b"x", mask=False), 1002),  # a client frame must be masked
        (frame(3, b"x"), 1002),  # reserved opcode
        (frame(1, b"x", rsv=4), 1002),  # RSV bit without an extension
        (frame(9, b"x" * 126), 1002),  # control frame over 125 bytes
        (frame(0, b"x"), 1002),  # continuation without a start
        (frame(2, b"x" * 2000), 1009),  # over --ws-max-size
    ]

    async def bystander(srv, ready, stop):  # type: ignore[no-untyped-def]
        async with connect(url(srv)) as ws:
            ready.set()
            n = 0
            while not stop.is_set():
                await ws.send(str(n))
                assert await ws.recv() == str(n)
                n += 1
            return n

    with ws_server(echo_app(rec), ws_max_size=1000) as srv:
        ready, stop = threading.Event(), threading.Event()
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(run(bystander(srv, ready, stop))))
        thread.start()
        assert ready.wait(10)
        for data, code in cases:
            with srv.connect() as sock:
                ws = raw_connect(sock)
                ws.send(data)
                assert ws.read_close()[0] == code, data
                assert ws.at_eof()  # and the server closed the connection
        stop.set()
        thread.join(20)
        assert result and result[0] > 0
    codes = sorted(m["code"] for m in rec.messages)
    assert codes == sorted([code for _, code in cases] + [1000])


def test_ping_timeout_closes_with_1011(ws_server, rec):  # type: ignore[no-untyped-def]
    with ws_server(echo_app(rec), ws_ping_interval=0.2, ws_ping_timeout=0.2) as srv, srv.connect() as sock:
        ws = raw_connect(sock)
        opcode, _ = ws.read_frame()
        assert opcode == 9  # a ping we do not answer
        assert ws.read_close()[0] == 1011
        assert ws.at_eof()
        assert rec.done.wait()
    expected = {"type": "websocket.disconnect", "code": 1011, "reason": "keepalive ping timeout"}
    assert rec.messages == [expected]


def test_answered_pings_keep_the_connection(ws_server, rec):  # type: ignore[no-untyped-def]
    with ws_server(echo_app(rec), ws_ping_interval=0.1, ws_ping_timeout=0.5) as srv, srv.connect() as sock:
        ws = raw_connect(sock)
        for _ in range(3):  # three pings answered: still open
            opcode, payload = ws.read_frame()
            assert opcode == 9
            ws.send(frame(10, payload))
        ws.send(frame(1, b"still here"))
        while True:
            opcode, payload = ws.read_frame()
            if opcode == 1:
                break
        assert payload == b"still here"


def test_client_ping_is_answered(ws_server, rec):  # type: ignore[no-untyped-def]
    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(url(srv)) as ws:
            latency = await ws.ping(b"abc")
            await asyncio.wait_for(latency, 5)

    with ws_server(echo_app(rec)) as srv:
        run(client(srv))


# -- flow control ------------------------------------------------------------------------
def test_slow_reader_blocks_the_apps_send(ws_server):  # type: ignore[no-untyped-def]
    total = 64 * MiB
    chunk = b"x" * 65536
    progress = {"sent": 0}
    finished = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.accept"})
        while progress["sent"] < total:
            await send({"type": "websocket.send", "bytes": chunk})
            progress["sent"] += len(chunk)
        finished.set()
        await receive()

    with ws_server(app, ws_per_message_deflate=False) as srv, srv.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        ws = raw_connect(sock)
        # The client reads nothing: the app must be held back, not buffered.
        assert not finished.wait(1.0)
        assert progress["sent"] < 16 * MiB
        received = 0
        while received < total:
            _, payload = ws.read_frame()
            received += len(payload)
        assert finished.wait(10)


def test_app_that_does_not_receive_stops_reading(ws_server):  # type: ignore[no-untyped-def]
    go = ThreadEvent()
    got: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.accept"})
        await go.wait_async()
        while len(got) < 2000:
            message = await receive()
            got.append(message["text"])
        await send({"type": "websocket.send", "text": "done"})
        await receive()

    with ws_server(app, ws_max_queue=4, ws_per_message_deflate=False) as srv, srv.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        ws = raw_connect(sock)
        data = memoryview(b"".join(frame(1, b"%04d" % i + b"m" * 3996) for i in range(2000)))
        sock.setblocking(False)
        sent = 0
        try:
            while sent < len(data):  # 8 MB that nobody reads: the kernel must push back
                sent += sock.send(data[sent:])
        except BlockingIOError:
            pass
        assert sent < len(data) // 2
        sock.setblocking(True)
        go.set()
        sock.sendall(data[sent:])
        while True:
            opcode, payload = ws.read_frame()
            if opcode != 9:  # pings may come first
                break
        assert (opcode, payload) == (1, b"done")
    assert [int(text[:4]) for text in got] == list(range(2000))


# -- server life -----------------------------------------------------------------------
def test_shutdown_closes_open_websockets_with_1012(ws_server, rec):  # type: ignore[no-untyped-def]
    with ws_server(echo_app(rec)) as srv, srv.connect() as sock:
        ws = raw_connect(sock)
        ws.send(frame(1, b"hi"))
        assert ws.read_frame() == (1, b"hi")
        srv.server.should_exit = True
        assert ws.read_close()[0] == 1012
        ws.send(frame(8, close_payload(1012)))
        assert rec.done.wait()
    assert rec.messages == [{"type": "websocket.disconnect", "code": 1012, "reason": "server shutting down"}]


def test_client_vanishing_is_1006(ws_server, rec):  # type: ignore[no-untyped-def]
    with ws_server(echo_app(rec)) as srv:
        with srv.connect() as sock:
            raw_connect(sock)
        assert rec.done.wait()
    assert rec.messages == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


def test_frames_sent_with_the_handshake_are_kept(ws_server, rec):  # type: ignore[no-untyped-def]
    with ws_server(echo_app(rec)) as srv, srv.connect() as sock:
        sock.sendall(handshake_request() + frame(1, b"early") + frame(1, b"bird"))
        reader = Reader(sock)
        from h1tools import read_head

        assert read_head(reader).status == 101
        from wstools import RawWebSocket

        ws = RawWebSocket(sock, reader)
        assert ws.read_frame() == (1, b"early")
        assert ws.read_frame() == (1, b"bird")


def test_ws_none_serves_upgrade_requests_as_http(server, http_impl):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        body = json.dumps({"type": scope["type"]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with server(app, ws="none", lifespan="off") as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        resp = read_response(Reader(sock))
    assert resp.status == 200 and json.loads(resp.body) == {"type": "http"}


def test_wsgi_app_gets_no_websockets(server, http_impl):  # type: ignore[no-untyped-def]
    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi"]

    with server(app, interface="wsgi", lifespan="off") as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        resp = read_response(Reader(sock))
    assert resp.status == 200 and resp.body == b"wsgi"


def test_websockets_library_version_is_supported() -> None:
    major = int(websockets.__version__.split(".")[0])
    assert major >= 13


# -- the app breaking the ASGI rules ---------------------------------------------------
@pytest.mark.parametrize(
    ("accept", "error"),
    [
        ({"type": "websocket.accept", "subprotocol": b"chat"}, "'subprotocol' must be a str"),
        ({"type": "websocket.accept", "headers": [(b"x-bad", b"a\nb")]}, "invalid response header"),
        ({"type": "websocket.accept", "headers": [("not", "bytes")]}, "'headers' must be"),
        ({"typo": "websocket.accept"}, "must be a dict with a 'type'"),
        ({"type": "websocket.http.response.body"}, "Expected ASGI message 'websocket.accept'"),
    ],
    ids=["subprotocol", "header-value", "header-type", "no-type", "body-first"],
)
def test_bad_handshake_answer_is_500(ws_server, accept, error):  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        try:
            await send(accept)
        except RuntimeError as exc:
            errors.append(exc)
            raise

    with ws_server(app) as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        assert read_response(Reader(sock)).status == 500
    assert error in str(errors[0])


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"type": "websocket.send"}, "needs 'bytes' or 'text'"),
        ({"type": "websocket.send", "text": b"bytes"}, "'text' must be a str"),
        ({"type": "websocket.send", "bytes": "text"}, "'bytes' must be bytes"),
        ({"type": "websocket.close", "code": 1005}, "invalid WebSocket close code"),
        ({"type": "websocket.close", "code": True}, "invalid WebSocket close code"),
        ({"type": "websocket.close", "reason": "x" * 124}, "at most 123 UTF-8 bytes"),
        ({"type": "websocket.accept"}, "Expected ASGI message 'websocket.send'"),
    ],
    ids=["empty", "text-type", "bytes-type", "code-1005", "code-bool", "long-reason", "accept-twice"],
)
def test_bad_message_after_accept_is_1011(ws_server, message, error):  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": bytearray(b"ok")})
        try:
            await send(message)
        except RuntimeError as exc:
            errors.append(exc)
            raise

    with ws_server(app) as srv, srv.connect() as sock:
        ws = raw_connect(sock)
        assert ws.read_frame() == (2, b"ok")
        assert ws.read_close()[0] == 1011
    assert error in str(errors[0])


def test_denial_left_unfinished_is_cut_off(ws_server, caplog):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "websocket.http.response.start", "status": 400, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"partial", "more_body": True})

    with ws_server(app) as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        reader = Reader(sock)
        with pytest.raises(EOFError):
            read_response(reader)
    assert "returned without completing response" in caplog.text


def test_denial_then_accept_is_refused(ws_server):  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "websocket.http.response.start", "status": 400, "headers": []})
        try:
            await send({"type": "websocket.accept"})
        except RuntimeError as exc:
            errors.append(exc)
        await send({"type": "websocket.http.response.body", "body": b"no"})
        with pytest.raises(OSError):
            await send({"type": "websocket.http.response.body", "body": b"again"})

    with ws_server(app) as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        resp = read_response(Reader(sock))
    assert resp.status == 400 and resp.body == b"no"
    assert "Expected ASGI message 'websocket.http.response.body'" in str(errors[0])


def test_close_unanswered_times_out(ws_server, rec, monkeypatch):  # type: ignore[no-untyped-def]
    from monoceros.protocols import wscycle

    monkeypatch.setattr(wscycle, "CLOSE_TIMEOUT", 0.2)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000})
        rec.messages.append(await receive())
        rec.done.set()

    with ws_server(app) as srv, srv.connect() as sock:
        ws = raw_connect(sock)
        assert ws.read_close()[0] == 4000
        assert ws.at_eof()  # we never answered: the server gave up on us
        assert rec.done.wait()
    assert rec.messages == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


def test_app_ignoring_shutdown_is_cancelled(ws_server, rec):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await asyncio.Event().wait()  # never receives the disconnect
        except asyncio.CancelledError:
            rec.done.set()
            raise

    with ws_server(app, timeout_graceful_shutdown=0.3) as srv, srv.connect() as sock:
        ws = raw_connect(sock)
        srv.server.should_exit = True
        assert ws.read_close()[0] == 1012
        assert rec.done.wait()


def test_handshake_with_a_body_is_400(ws_server, rec):  # type: ignore[no-untyped-def]
    with ws_server(echo_app(rec)) as srv, srv.connect() as sock:
        sock.sendall(handshake_request("/", b"Content-Length: 2") + b"hi")
        assert read_response(Reader(sock)).status == 400


def test_client_half_close_before_accept_is_a_disconnect(ws_server, rec):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        rec.messages.append(await receive())
        rec.done.set()

    with ws_server(app) as srv, srv.connect() as sock:
        sock.sendall(handshake_request())
        sock.shutdown(socket.SHUT_WR)
        assert rec.done.wait()
    assert rec.messages == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


# -- TLS and proxies ----------------------------------------------------------------------
def test_wss_over_tls(ws_server, rec, tmp_path):  # type: ignore[no-untyped-def]
    import ssl

    from tlsfiles import make_tls_files

    tls = make_tls_files(tmp_path)
    context = ssl.create_default_context(cafile=tls.ca_cert)
    seen: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["scheme"])
        assert scope["extensions"]["tls"]["tls_version"] is not None  # the connection's TLS extension
        assert "websocket.http.response" in scope["extensions"]
        await echo_app(rec)(scope, receive, send)

    async def client(srv):  # type: ignore[no-untyped-def]
        async with connect(f"wss://localhost:{srv.port}/", ssl=context) as ws:
            await ws.send("secret")
            assert await ws.recv() == "secret"
            await ws.send(b"x" * MiB)
            assert await ws.recv() == b"x" * MiB

    with ws_server(app, ssl_certfile=tls.cert, ssl_keyfile=tls.key) as srv:
        run(client(srv))
        assert rec.done.wait()
    assert seen == ["wss"]


def test_proxy_headers_apply_to_websockets(ws_server):  # type: ignore[no-untyped-def]
    seen: list[dict[str, Any]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(dict(scope))
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    async def client(srv):  # type: ignore[no-untyped-def]
        headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        async with connect(url(srv), additional_headers=headers):
            pass

    with ws_server(app, forwarded_allow_ips="*") as srv:
        run(client(srv))
    assert seen[0]["scheme"] == "wss"
    assert seen[0]["client"][0] == "203.0.113.9"
