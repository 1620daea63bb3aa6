"""Flow control both ways, on real sockets, on both parsers.

Read side: while the app does not call ``receive()``, the server stops
reading the socket, so the client's send blocks and the server holds a
bounded amount of body.  Write side: while the client does not read, the
app's ``send()`` blocks instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import select
import socket
from typing import Any

import pytest
from h1tools import Reader, ThreadEvent, read_head, read_response

from monoceros.protocols.cycle import HIGH_WATER

MiB = 1024 * 1024


@pytest.fixture
def server(server):  # type: ignore[no-untyped-def]
    def start(app, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("lifespan", "off")
        return server(app, **kwargs)

    return start


def _send_until_blocked(sock: socket.socket, data: memoryview) -> int:
    """Send without blocking until the socket stays unwritable for 0.5 s; bytes sent."""
    sock.setblocking(False)
    sent = 0
    try:
        while sent < len(data):
            try:
                sent += sock.send(data[sent : sent + 65536])
            except BlockingIOError:
                _, writable, _ = select.select([], [sock], [], 0.5)
                if not writable:
                    return sent  # the server stopped reading
    finally:
        sock.setblocking(True)
    return sent


def test_server_stops_reading_while_the_app_does_not_receive(server, http_impl):
    total = 64 * MiB
    payload = memoryview(bytes(range(256)) * (total // 256))
    go = ThreadEvent()
    sizes: list[int] = []
    result: dict[str, Any] = {}

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await go.wait_async(30)
        digest = hashlib.sha256()
        while True:
            message = await receive()
            sizes.append(len(message["body"]))
            digest.update(message["body"])
            if not message["more_body"]:
                break
        result["digest"] = digest.hexdigest()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(sum(sizes)).encode()})

    with server(app) as srv, srv.connect(timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % total)
        sent = _send_until_blocked(sock, payload)
        assert sent < 16 * MiB  # the client's send blocked: the server stopped reading
        go.set()
        sock.sendall(payload[sent:])
        resp = read_response(Reader(sock))
        assert resp.body == str(total).encode()
    assert result["digest"] == hashlib.sha256(payload).hexdigest()
    # What the server held while the app waited came out in the first
    # message: the high-water mark plus at most one socket read.
    assert sizes[0] <= HIGH_WATER + 512 * 1024
    assert max(sizes) <= HIGH_WATER + 512 * 1024


def test_chunked_upload_is_flow_controlled_too(server, http_impl):
    go = ThreadEvent()
    sizes: list[int] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await go.wait_async(30)
        while True:
            message = await receive()
            sizes.append(len(message["body"]))
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(sum(sizes)).encode()})

    chunk = b"%x\r\n%s\r\n" % (65536, b"c" * 65536)
    count = 1024  # 64 MiB of body
    stream = memoryview(chunk * count + b"0\r\n\r\n")
    with server(app) as srv, srv.connect(timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = _send_until_blocked(sock, stream)
        assert sent < 16 * MiB
        go.set()
        sock.sendall(stream[sent:])
        assert read_response(Reader(sock)).body == str(65536 * count).encode()
    assert max(sizes) <= HIGH_WATER + 512 * 1024


def test_app_send_blocks_while_the_client_does_not_read(server, http_impl):
    chunk = b"w" * 65536
    count = 1024  # 64 MiB
    blocked = ThreadEvent()
    state: dict[str, Any] = {"sent": 0, "done": False}

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(count):
            message = {"type": "http.response.body", "body": chunk, "more_body": True}
            if blocked.is_set():
                await send(message)
            else:
                try:
                    # The chunk is written before send() waits for the
                    # client, so a timeout here loses nothing.
                    await asyncio.wait_for(send(message), 0.5)
                except TimeoutError:
                    state["at_block"] = state["sent"] + len(chunk)
                    blocked.set()
            state["sent"] += len(chunk)
        await send({"type": "http.response.body", "body": b""})
        state["done"] = True

    with server(app) as srv:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(30)
        sock.connect((srv.host, srv.port))
        with sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert blocked.wait(30), "send() never blocked"
            assert state["at_block"] < 16 * MiB  # bounded, far below the 64 MiB
            reader = Reader(sock)
            head = read_head(reader)
            assert head.header(b"transfer-encoding") == b"chunked"
            received = 0
            while True:
                size = int(reader.read_until(b"\r\n")[:-2], 16)
                if size == 0:
                    break
                received += len(reader.read_exact(size))
                reader.read_exact(2)
            assert received == len(chunk) * count
    assert state["done"]


def test_pipelining_client_that_does_not_read_gets_no_more_answers(server, http_impl):
    response = b"r" * 32768
    count = 1000  # 32 MiB of responses
    calls = {"n": 0}
    too_many = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 400:
            too_many.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": response})

    with server(app) as srv:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(30)
        sock.connect((srv.host, srv.port))
        with sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * count)  # small: all of it is read at once
            # Responses pile up only until the socket buffers are full.
            assert not too_many.wait(0.5)
            reader = Reader(sock)
            for _ in range(count):
                assert read_response(reader).body == response
    assert calls["n"] == count
