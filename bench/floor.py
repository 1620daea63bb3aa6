#!/usr/bin/env python3
"""The floor: what a Python server costs on this machine with no ASGI at all.

The performance targets ask, for every ratio monoceros cannot reach, what the
limit is.  This module answers that question by measurement: it is the least
work a Python server on uvloop can do and still speak the protocol the
benchmark client speaks.  Run under the same harness as the ASGI servers
(``bench/run.py --servers uvicorn,monoceros,floor``, ``bench/wsbench.py
--servers uvicorn,monoceros,floor``), its ratio to uvicorn is the ceiling any
Python ASGI server can reach here; the gap between monoceros and the floor is
what the ASGI layer (scope, ``receive``/``send``, the app's coroutine) costs.

``python bench/floor.py http --host H --port P``
    An ``asyncio.Protocol`` per connection with an ``httptools`` request parser.
    Every complete request is answered with a canned ``200 OK`` (``Hello,
    world!``, or ``--body json``'s canned JSON, with the headers monoceros sends
    for ``bench.apps``: ``server``, ``date`` refreshed once a second,
    ``content-type``, ``content-length``).  The responses to all requests found
    in one read go out in ONE ``transport.write``, so a pipelined batch costs
    one system call.  A request that does not keep the connection alive
    (``Connection: close``, HTTP/1.0) gets ``connection: close`` and the
    connection is closed after the response.  The app is never consulted: the
    body is the same canned bytes for every request.

``python bench/floor.py ws --host H --port P``
    The same HTTP front (a plain request gets the canned ``200``, which is what
    the harnesses' readiness probe asks for), plus the RFC 6455 opening
    handshake (``Sec-WebSocket-Accept`` from the key; no extension, no
    subprotocol).  After it, every complete client frame is unmasked (one big
    integer XOR) and written back unmasked with the same FIN bit and opcode; a
    ping gets a pong, a close gets a close with the same status code and the
    connection is closed.  The frames of one read are answered with one write;
    a partial frame waits in a buffer for the next read.  No UTF-8 check, no
    reassembly of fragmented messages (a fragment is echoed as a fragment):
    this is a floor, not a conforming server.

``python bench/floor.py asgi --host H --port P [--app bench.apps:json] [--inline]``
    The bare ASGI call: the same parser, then per request a scope and one
    call of the app (``bench.apps``' raw apps), in a Task of its own as every
    ASGI server on Python 3.11 makes (or, with ``--inline``, stepped at once
    without one, as monoceros' eager start does).  ``send`` writes what the
    app gave plus the server and date lines.  No check of anything, no limits,
    timeouts or error handling (see ``AsgiFloor``): not a server, the least an
    ASGI server can cost, so the gap from ``http`` to ``asgi`` is what the ASGI
    interface itself costs here, and the gap from ``asgi`` to monoceros is what
    a server that checks and handles everything adds.

Bad input gets the short answer a server would give (``400`` and close for
malformed HTTP, close code 1002 for a frame breaking the framing rules), never
a traceback.  SIGTERM and SIGINT stop it cleanly (exit status 0).

Only the standard library, uvloop and httptools: no monoceros code, so the
floor does not move when monoceros changes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import enum
import hashlib
import importlib
import json
import signal
import struct
import sys
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any, cast

import httptools
import uvloop

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
BODIES = {
    "plaintext": (b"text/plain", b"Hello, world!"),
    "json": (b"application/json", json.dumps({"message": "Hello, world!"}).encode()),
}
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nserver: floor\r\ncontent-type: text/plain\r\n"
    b"content-length: 11\r\nconnection: close\r\n\r\nBad Request"
)


class Phase(enum.Enum):
    """Theory of operation: a connection starts in ``HTTP`` (requests answered
    with the canned response); in ws mode a WebSocket upgrade moves it to
    ``FRAMES`` (echo); a request asking for close, bad input or a close frame
    moves it to ``CLOSING``: the answer is written, the transport is closed and
    any later input is ignored."""

    HTTP = enum.auto()
    FRAMES = enum.auto()
    CLOSING = enum.auto()


# Read through module constants on the hot path (an Enum member lookup costs ~70 ns).
_HTTP, _FRAMES, _CLOSING = Phase.HTTP, Phase.FRAMES, Phase.CLOSING


class Canned:
    """The canned keep-alive and close responses, rebuilt when the date changes."""

    def __init__(self, body: str) -> None:
        self.content_type, self.body = BODIES[body]
        self.keep_alive = self.close = b""
        self.refresh()

    def refresh(self) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\nserver: floor\r\ndate: %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
            % (formatdate(usegmt=True).encode(), self.content_type, len(self.body))
        )
        self.keep_alive = head + b"\r\n" + self.body
        self.server_date = b"server: floor\r\ndate: %s\r\n" % formatdate(usegmt=True).encode()
        self.close = head + b"connection: close\r\n\r\n" + self.body

    def tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Refresh now and once a second from here on (servers cache the date the same way)."""
        self.refresh()
        loop.call_later(1.0, self.tick, loop)


class HttpFloor(asyncio.Protocol):
    """Canned ``200`` for every request; the answers of one read in one write."""

    def __init__(self, canned: Canned) -> None:
        self.canned = canned
        self.parser = httptools.HttpRequestParser(self)
        self.out: list[bytes] = []
        self.phase = _HTTP
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def on_message_complete(self) -> None:
        if self.phase is not _HTTP:
            return  # pipelined after a request that asked for close: not answered
        if self.parser.should_keep_alive():
            self.out.append(self.canned.keep_alive)
        else:
            self.out.append(self.canned.close)
            self.phase = _CLOSING

    def data_received(self, data: bytes) -> None:
        if self.phase is not _HTTP:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgrade(data[exc.args[0] :])
        except httptools.HttpParserError:
            # llhttp also refuses bytes after a request that asked for close: those get nothing.
            if self.phase is _HTTP:
                self.out.append(BAD_REQUEST)
                self.phase = _CLOSING
        self.flush()

    def flush(self) -> None:
        transport = cast(asyncio.Transport, self.transport)
        if self.out:
            transport.write(b"".join(self.out))
            self.out.clear()
        if self.phase is _CLOSING:
            transport.close()

    def upgrade(self, rest: bytes) -> None:
        """HTTP mode takes no upgrade: the request was answered as a plain one."""


class WsFloor(HttpFloor):
    """The HTTP floor plus the WebSocket handshake and a frame echo."""

    def __init__(self, canned: Canned) -> None:
        super().__init__(canned)
        self.key: bytes | None = None
        self.websocket = False
        self.buf = b""  # the start of a frame whose end has not arrived yet

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"sec-websocket-key":
            self.key = value.strip()
        elif name == b"upgrade":
            self.websocket = value.strip().lower() == b"websocket"

    def on_message_complete(self) -> None:
        if not self.websocket:  # a plain request (the readiness probe): the canned 200
            super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self.phase is _FRAMES:
            self.frames(data)
        else:
            super().data_received(data)

    def upgrade(self, rest: bytes) -> None:
        if self.key is None or not self.websocket:
            self.out.append(BAD_REQUEST)
            self.phase = _CLOSING
            return
        accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest())
        self.out.append(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-accept: %s\r\n\r\n" % accept
        )
        self.phase = _FRAMES
        if rest:
            self.frames(rest)

    def frames(self, data: bytes) -> None:
        """Echo every complete frame in ``buf + data``; keep the incomplete tail."""
        if self.buf:
            data, self.buf = self.buf + data, b""
        out = self.out
        end, size = 0, len(data)
        while size - end >= 2:
            b0, b1 = data[end], data[end + 1]
            length, pos = b1 & 0x7F, end + 2
            if length == 126:
                if size < pos + 2:
                    break
                (length,), pos = struct.unpack_from("!H", data, pos), pos + 2
            elif length == 127:
                if size < pos + 8:
                    break
                (length,), pos = struct.unpack_from("!Q", data, pos), pos + 8
            if size < pos + 4 + length:
                break
            if not b1 & 0x80 or b0 & 0x70:  # unmasked client frame, or RSV bits without an extension
                out.append(b"\x88\x02" + struct.pack("!H", 1002))
                self.phase = _CLOSING
                break
            mask, start = data[pos : pos + 4], pos + 4
            end = start + length
            payload = (
                int.from_bytes(data[start:end], "little")
                ^ int.from_bytes((mask * (length // 4 + 1))[:length], "little")
            ).to_bytes(length, "little")
            opcode = b0 & 0x0F
            if opcode == OP_CLOSE:
                out.append(b"\x88" + bytes((min(length, 2),)) + payload[:2])
                self.phase = _CLOSING
                break
            if opcode == OP_PING:
                b0 = 0x80 | OP_PONG
            elif opcode == OP_PONG:
                continue
            if length < 126:
                out.append(bytes((b0, length)) + payload)
            elif length < 65536:
                out.append(struct.pack("!BBH", b0, 126, length) + payload)
            else:
                out.append(struct.pack("!BBQ", b0, 127, length) + payload)
        if self.phase is _FRAMES and end < size:
            self.buf = data[end:]
        self.flush()


class AsgiFloor(asyncio.Protocol):
    """The bare ASGI call: what any ASGI server pays per request at least.

    Per request: a scope (the keys ASGI requires, headers as llhttp gave them)
    and one call of the app, in a Task of its own (every ASGI server on Python
    3.11 but monoceros' eager start) or, with ``inline``, stepped right away
    without one.  ``send`` writes the status line, the date and server lines,
    the app's headers and the body once the body comes; ``receive`` says the
    (empty) body is complete.  Nothing is checked: no request validation, no
    response validation, no Content-Length of our own, no limits, timeouts,
    flow control or error handling.  The app is trusted to answer each request
    with one start and one complete body and never to wait (bench.apps' raw
    apps), so responses leave in request order."""

    def __init__(self, canned: Canned, app: ASGIApp, inline: bool) -> None:
        self.canned = canned
        self.app = app
        self.inline = inline
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.context = contextvars.copy_context()
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server = transport.get_extra_info("sockname")[:2]
        self.client = transport.get_extra_info("peername")[:2]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            cast(asyncio.Transport, self.transport).write(BAD_REQUEST)
            cast(asyncio.Transport, self.transport).close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_message_complete(self) -> None:
        headers, self.headers = self.headers, []
        path, _, query = self.url.partition(b"?")
        scope = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": "http",
            "method": self.parser.get_method().decode(),
            "root_path": "",
            "path": path.decode("ascii"),
            "raw_path": path,
            "query_string": query,
            "headers": headers,
            "state": {},
        }
        transport = cast(asyncio.Transport, self.transport)
        keep_alive = self.parser.should_keep_alive()
        canned = self.canned
        start: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.append(message)
                return
            head = start[0]
            parts = [b"HTTP/1.1 %d OK\r\n" % head["status"], canned.server_date]
            for name, value in head.get("headers", ()):
                parts += (name, b": ", value, b"\r\n")
            parts.append(b"\r\n" if keep_alive else b"connection: close\r\n\r\n")
            parts.append(message.get("body", b""))
            transport.write(b"".join(parts))
            if not keep_alive:
                transport.close()

        coro = self.app(scope, receive, send)
        if not self.inline:
            self.loop.create_task(coro, context=self.context.copy())
            return
        try:
            self.context.copy().run(coro.send, None)
        except StopIteration:
            pass
        else:  # pragma: no cover - bench.apps never wait
            raise RuntimeError("the app waited: --inline serves apps that never wait")


async def serve(mode: str, host: str, port: int, body: str, app: str = "", inline: bool = False) -> None:
    loop = asyncio.get_running_loop()
    canned = Canned(body)
    canned.tick(loop)
    if mode == "asgi":
        module, _, attr = app.partition(":")
        asgi_app = getattr(importlib.import_module(module), attr)

        def protocol() -> asyncio.Protocol:
            return AsgiFloor(canned, asgi_app, inline)

    else:
        kind = WsFloor if mode == "ws" else HttpFloor

        def protocol() -> asyncio.Protocol:
            return kind(canned)

    server = await loop.create_server(protocol, host, port, backlog=2048)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()  # open connections are dropped with the process


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="No-ASGI floor server for the benchmarks (see the docstring).")
    p.add_argument(
        "mode",
        choices=("http", "ws", "asgi"),
        help="canned HTTP responses, WebSocket echo, or the bare ASGI call (--app)",
    )
    p.add_argument("--app", default="bench.apps:plaintext", help="asgi mode: the app, module:attribute")
    p.add_argument("--inline", action="store_true", help="asgi mode: step the app at once, without a Task")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--body", choices=sorted(BODIES), default="plaintext", help="the canned response body")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        uvloop.run(serve(args.mode, args.host, args.port, args.body, args.app, args.inline))
    except OSError as exc:
        print(f"floor: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
