"""The legacy channels interface on real sockets: the first uvicorn README's
examples (tests/seedapps, as written there) and the contract
(shared LEGACY_CHANNELS.md), on both HTTP/1.1 parsers and both WebSocket
libraries, with httpx and the `websockets` client."""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest
from h1tools import Reader, read_response
from procs import Monoceros, clean_env
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

SEEDS = Path(__file__).resolve().parent.parent / "seedapps"
WS_IMPLS = ["websockets", "wsproto"]
MiB = 1024 * 1024


@pytest.fixture(params=WS_IMPLS)
def ws_impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


def seed(server: Any, name: str, **kwargs: Any) -> Any:
    """Serve ``quickstart:NAME`` as the README does: interface auto-detected."""
    return server(f"quickstart:{name}", app_dir=str(SEEDS), **kwargs)


# -- HTTP: the README's examples -------------------------------------------------------


def test_hello_world(server: Any, http_impl: str) -> None:
    with seed(server, "hello_world") as srv:
        assert srv.server.loaded.interface == "channels"
        r = httpx.get(srv.url + "/")
    assert r.status_code == 200
    assert r.content == b"Hello, world"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["content-length"] == "12"


def test_echo_body_streams_a_1mb_upload(server: Any, http_impl: str) -> None:
    body = bytes(range(256)) * (4 * 1024)  # 1 MiB
    chunks = [body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024)]
    with seed(server, "echo_body") as srv:
        r = httpx.post(srv.url + "/", content=iter(chunks))  # chunked upload
        small = httpx.post(srv.url + "/", content=b"tiny")
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["content-length"] == str(MiB)
    assert small.content == b"tiny"


def test_stream_response_is_chunked(server: Any, http_impl: str) -> None:
    with seed(server, "stream_response") as srv:
        sock = srv.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_response(Reader(sock))
        sock.close()
    assert response.status == 200
    assert response.header(b"transfer-encoding") == b"chunked"
    assert response.header(b"content-length") is None
    assert response.body == b"Hello, world"


def test_request_message_fields(server: Any, http_impl: str) -> None:
    seen: list[tuple[dict[str, Any], list[str]]] = []

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        seen.append((message, sorted(channels)))
        await channels["reply"].send({"status": 204})

    with server(app, root_path="/r") as srv:
        r = httpx.get(srv.url + "/a%20b?x=%20&y", headers=[("X-Dup", "1"), ("X-Dup", "2")])
    assert r.status_code == 204
    ((message, names),) = seen
    assert names == ["reply"]  # no body channel: nothing more to come
    assert message["channel"] == "http.request"
    assert message["http_version"] == "1.1" and message["method"] == "GET" and message["scheme"] == "http"
    assert message["path"] == "/r/a b" and message["root_path"] == "/r"
    assert message["query_string"] == b"x=%20&y"
    assert [h for h in message["headers"] if h[0] == b"x-dup"] == [[b"x-dup", b"1"], [b"x-dup", b"2"]]
    assert message["body"] == b""
    assert message["client"][0] == "127.0.0.1" and message["server"] == ["127.0.0.1", srv.port]


def test_body_channel_applies_backpressure(server: Any, http_impl: str) -> None:
    """While the app does not receive, the server stops reading: the client's
    sends block well before the body is through."""
    gate = threading.Event()
    size = 32 * MiB

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        await asyncio.to_thread(gate.wait, 20)
        total = len(message["body"])
        while True:
            chunk = await channels["body"].receive()
            total += len(chunk["content"])
            if not chunk["more_content"]:
                break
        await channels["reply"].send({"status": 200, "content": str(total).encode()})

    with server(app) as srv:
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        sock.setblocking(False)
        block = b"x" * MiB
        sent = 0
        while sent < size:
            try:
                sent += sock.send(block[: min(MiB, size - sent)])
            except BlockingIOError:
                break
        assert sent < size  # the server stopped reading
        gate.set()
        sock.setblocking(True)
        sock.settimeout(20)
        while sent < size:
            sent += sock.send(block[: min(MiB, size - sent)])
        response = read_response(Reader(sock))
        sock.close()
    assert response.body == str(size).encode()


def test_reply_errors_reach_the_app(server: Any, http_impl: str) -> None:
    errors: list[BaseException] = []

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        reply = channels["reply"]
        for bad in ({"content": b"no status"}, {"status": "200"}, {"status": 200, "content": "str"}):
            try:
                await reply.send(bad)
            except RuntimeError as exc:
                errors.append(exc)
        await reply.send({"status": 200, "content": b"ok"})
        try:
            await reply.send({"content": b"too late"})
        except RuntimeError as exc:
            errors.append(exc)

    with server(app) as srv:
        r = httpx.get(srv.url + "/")
    assert r.content == b"ok"
    assert len(errors) == 4
    assert "already complete" in str(errors[-1])


def test_app_that_never_replies_gets_500(server: Any, http_impl: str) -> None:
    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        return None

    with server(app, interface="channels") as srv:
        assert httpx.get(srv.url + "/").status_code == 500


# -- WebSocket --------------------------------------------------------------------------


def test_echo(server: Any, http_impl: str, ws_impl: str) -> None:
    async def client(url: str) -> list[str]:
        async with connect(url) as ws:
            await ws.send("hello")
            await ws.send("world")
            return [await ws.recv(), await ws.recv()]

    with seed(server, "echo", ws=ws_impl) as srv:
        assert run(client(srv.url.replace("http", "ws") + "/")) == ["hello", "world"]


def test_tick(server: Any, ws_impl: str) -> None:
    async def client(url: str) -> list[Any]:
        async with connect(url) as ws:
            return [await ws.recv(), await ws.recv()]

    with seed(server, "tick", ws=ws_impl) as srv:
        times = run(client(srv.url.replace("http", "ws") + "/"))
    for text in times:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text)


def test_websocket_messages_and_reply(server: Any, http_impl: str, ws_impl: str) -> None:
    seen: list[dict[str, Any]] = []
    names: set[str] = set()
    done = threading.Event()

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        seen.append(message)
        reply = channels["reply"]
        names.add(reply.name)
        kind = message["channel"]
        if kind == "websocket.connect":
            await reply.send({"accept": True})
        elif kind == "websocket.receive":
            if message.get("bytes") is not None:
                await reply.send({"bytes": message["bytes"][::-1]})
            else:
                await reply.send({"text": "bye", "close": 4001})
        else:
            done.set()

    async def client(url: str) -> tuple[Any, Any, int | None]:
        async with connect(url) as ws:
            await ws.send(b"abc")
            back = await ws.recv()
            await ws.send("stop")
            bye = await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return back, bye, ws.close_code

    with server(app, ws=ws_impl) as srv:
        back, bye, code = run(client(srv.url.replace("http", "ws") + "/chat?room=1"))
        assert done.wait(10)
    assert (back, bye, code) == (b"cba", "bye", 4001)
    assert len(names) == 1
    assert [m["channel"] for m in seen] == [
        "websocket.connect",
        "websocket.receive",
        "websocket.receive",
        "websocket.disconnect",
    ]
    assert [m["order"] for m in seen] == [0, 1, 2, 3]
    connect_message = seen[0]
    assert connect_message["scheme"] == "ws" and connect_message["path"] == "/chat"
    assert connect_message["query_string"] == b"room=1"
    assert seen[2]["text"] == "stop"
    assert seen[3]["code"] == 4001


@pytest.mark.parametrize("refusal", [{"accept": False}, {"close": True}])
def test_websocket_rejected_with_403(server: Any, ws_impl: str, refusal: dict[str, Any]) -> None:
    seen: list[str] = []
    done = threading.Event()

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        seen.append(message["channel"])
        if message["channel"] == "websocket.connect":
            await channels["reply"].send(refusal)
        else:
            done.set()

    async def client(url: str) -> int:
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass
        return info.value.response.status_code

    with server(app, ws=ws_impl) as srv:
        assert run(client(srv.url.replace("http", "ws") + "/")) == 403
        assert done.wait(10)
    assert seen == ["websocket.connect", "websocket.disconnect"]


def test_websocket_app_error_closes_1011_and_ends_with_disconnect(server: Any, ws_impl: str) -> None:
    seen: list[Any] = []
    done = threading.Event()

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        seen.append((message["channel"], message.get("code")))
        if message["channel"] == "websocket.receive":
            raise ValueError("boom")
        if message["channel"] == "websocket.disconnect":
            done.set()

    async def client(url: str) -> int | None:
        async with connect(url) as ws:
            await ws.send("x")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    with server(app, ws=ws_impl) as srv:
        assert run(client(srv.url.replace("http", "ws") + "/")) == 1011
        assert done.wait(10)
    assert seen == [("websocket.connect", None), ("websocket.receive", None), ("websocket.disconnect", 1011)]


# -- the chat server, started with the README's launch line ---------------------------------


def _port_8001_free() -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8001))
        except OSError:
            return False
    return True


def test_chat_server_launch_line() -> None:
    """``monoceros app:chat_server --bind 127.0.0.1:8001`` in the folder of
    app.py and index.html; three browsers' worth of WebSockets chat."""
    # The machine is shared: should 8001 be taken, the same line on another port.
    bind = "127.0.0.1:8001" if _port_8001_free() else "127.0.0.1:0"
    script = str(Path(sys.executable).with_name("monoceros"))
    folder = SEEDS / "chat"
    with Monoceros(
        ["app:chat_server", "--bind", bind], app_dir=False, cwd=folder, command=[script], env=clean_env()
    ) as proc:
        url = proc.url()
        page = httpx.get(url + "/")

        async def chat() -> list[list[str]]:
            ws_url = url.replace("http", "ws") + "/"
            clients = [await connect(ws_url).__aenter__() for _ in range(3)]
            got: list[list[str]] = [[], [], []]
            for sender in (0, 2):  # one at a time: two senders' order is theirs to race
                await clients[sender].send(f"hello from {sender}")
                for inbox, c in zip(got, clients, strict=True):
                    inbox.append(await c.recv())
            for c in clients:
                await c.close()
            return got

        received = run(chat())
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html"
    assert page.content == (folder / "index.html").read_bytes()
    assert received == [["hello from 0", "hello from 2"]] * 3


def test_body_channel_says_closed_when_the_client_leaves(server: Any, http_impl: str) -> None:
    chunks: list[dict[str, Any]] = []
    called, got_one, done = threading.Event(), threading.Event(), threading.Event()

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        body = channels["body"]
        called.set()
        while True:
            chunk = await body.receive()
            chunks.append(chunk)
            got_one.set()
            if not chunk["more_content"]:
                break
        chunks.append(await body.receive())  # after the end: an empty final chunk
        done.set()

    with server(app) as srv:
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        assert called.wait(10)
        sock.sendall(b"y")
        assert got_one.wait(10)  # the app is reading the body: leave
        sock.close()
        assert done.wait(10)
    assert chunks[-2] == {"content": b"", "closed": True, "more_content": False}
    assert chunks[-1] == {"content": b"", "closed": False, "more_content": False}


def test_websocket_reply_refuses_bad_messages(server: Any, ws_impl: str) -> None:
    errors: list[str] = []

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        reply = channels["reply"]
        if message["channel"] == "websocket.connect":
            for bad in ({"nothing": 1}, "text"):
                try:
                    await reply.send(bad)
                except RuntimeError as exc:
                    errors.append(str(exc))
        elif message["channel"] == "websocket.receive":
            await reply.send({"bytes": b"\x01", "close": 4003})

    async def client(url: str) -> tuple[Any, int | None]:
        async with connect(url) as ws:
            await ws.send("x")
            data = await ws.recv()
            await ws.wait_closed()
            return data, ws.close_code

    with server(app, ws=ws_impl) as srv:
        assert run(client(srv.url.replace("http", "ws") + "/")) == (b"\x01", 4003)
    assert len(errors) == 2 and all("needs 'accept', 'text', 'bytes' or 'close'" in e for e in errors)


# -- the same apps over HTTP/2 -----------------------------------------------------------


def test_http_examples_over_http2(server: Any) -> None:
    body = bytes(range(256)) * 1024
    with httpx.Client(http1=False, http2=True) as client:
        with seed(server, "hello_world") as srv:
            r = client.get(srv.url + "/")
            assert (r.http_version, r.status_code, r.content) == ("HTTP/2", 200, b"Hello, world")
        with seed(server, "echo_body") as srv:
            r = client.post(srv.url + "/", content=iter([body[:100_000], body[100_000:]]))
            assert (r.http_version, r.content) == ("HTTP/2", body)
        with seed(server, "stream_response") as srv:
            r = client.get(srv.url + "/")
            assert r.http_version == "HTTP/2" and r.status_code == 200 and r.content


def test_websocket_example_over_http2(server: Any, ws_impl: str) -> None:
    from h2tools import H2Client
    from test_websocket_h2 import connect as h2_connect
    from test_websocket_h2 import frames
    from wsproto.frame_protocol import FrameProtocol, Opcode

    with seed(server, "echo", ws=ws_impl) as srv, H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        sid = h2_connect(client, "/")
        assert client.replies[sid].status == 200
        ws = FrameProtocol(client=True, extensions=[])
        client.conn.send_data(sid, ws.send_data("hello", fin=True))
        client.flush()
        assert frames(client, sid, ws, 1) == [(Opcode.TEXT, "hello")]
