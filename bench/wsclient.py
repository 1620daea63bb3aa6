#!/usr/bin/env python3
"""Lean WebSocket echo load generator for ``bench/wsbench.py``.

It must cost far less CPU per round trip than any server under test, so it is
not built on a WebSocket library: each connection is an ``asyncio.Protocol``
(uvloop when installed) that does the RFC 6455 handshake itself (random key,
``Sec-WebSocket-Accept`` checked, no extension offered, so no compression),
then sends one pre-built, pre-masked text frame and, on every echo, checks it
and sends the same bytes again.  An echo that arrives in one read as exactly the
expected frame costs one comparison; anything else goes through a full frame
parser (extended lengths, pings answered with a pong, close or garbage counted as
an error).  Each connection has one message in flight, so ``--connections 1``
measures sequential round trips and ``--connections 50`` 50 concurrent streams.

After ``--warmup`` seconds it snapshots the echo count, its own CPU time, the
server's utime + stime (``/proc/<pid>/stat`` of every process in the process
group ``--server-pgid``; ``bench/wsbench.py`` starts each server as a group leader) and
``/proc/stat``; after ``--duration`` more seconds it snapshots them again, closes
every connection with a close frame (code 1000), and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import resource
import struct
import sys
import time
from typing import Any, cast

from bench.run import group_cpu_seconds, read_cpu_stat

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class ProtocolError(Exception):
    """The server sent something an echo server must not send."""


def masked_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """A final client frame (always masked, RFC 6455 section 5.3)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + masked


def server_frame(opcode: int, payload: bytes) -> bytes:
    """The unmasked frame an echo server sends back for ``payload``."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x80 | opcode, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


class Stats:
    def __init__(self) -> None:
        self.echoes = 0
        self.running = True
        self.errors: dict[str, int] = {}

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class EchoClient(asyncio.Protocol):
    """One WebSocket connection doing back-to-back echo round trips."""

    def __init__(self, host: str, port: int, frame: bytes, echo: bytes, stats: Stats) -> None:
        self.frame = frame
        self.echo = echo
        self.stats = stats
        key = base64.b64encode(os.urandom(16))
        self.accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.request = (
            b"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host.encode(), port, key)
        )
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.closing = False

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        # The hot path: the whole echo in one read, nothing buffered.
        if data == self.echo and not self.buf and self.upgraded:
            self.stats.echoes += 1
            if self.stats.running:
                self.transport.write(self.frame)  # type: ignore[union-attr]
            return
        self.buf += data
        try:
            if not self.upgraded:
                self._handshake()
            if self.upgraded:
                self._frames()
        except ProtocolError as exc:
            self.stats.error(str(exc))
            self._abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.stats.error("connection lost")
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("connection lost before the handshake completed"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- protocol

    def _handshake(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536:
                raise ProtocolError("handshake response too long")
            return
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        if not head[0].startswith("HTTP/1.1 101"):
            raise ProtocolError(f"handshake refused: {head[0]}")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept", "").encode() != self.accept:
            raise ProtocolError("bad Sec-WebSocket-Accept")
        if "sec-websocket-extensions" in headers:
            raise ProtocolError("server chose an extension that was not offered")
        self.upgraded = True
        self.ready.set_result(None)

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            if b1 & 0x80:
                raise ProtocolError("masked server frame")
            n, pos = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                (n,), pos = struct.unpack_from("!H", buf, 2), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                (n,), pos = struct.unpack_from("!Q", buf, 2), 10
            if len(buf) < pos + n:
                return
            frame = bytes(buf[: pos + n])
            payload = frame[pos:]
            del buf[: pos + n]
            opcode = b0 & 0x0F
            if opcode == OP_PING:
                self.transport.write(masked_frame(OP_PONG, payload, os.urandom(4)))  # type: ignore[union-attr]
            elif opcode == OP_PONG:
                continue
            elif opcode == OP_CLOSE:
                if not self.closing:
                    raise ProtocolError(f"server closed: {payload[:2].hex()} {payload[2:]!r}")
                self.transport.close()  # type: ignore[union-attr]
                return
            elif frame == self.echo:
                self.stats.echoes += 1
                if self.stats.running:
                    self.transport.write(self.frame)  # type: ignore[union-attr]
            else:
                raise ProtocolError("echo differs from the message sent")

    def start(self) -> None:
        self.transport.write(self.frame)  # type: ignore[union-attr]

    def close(self) -> None:
        """Closing handshake: close frame 1000, then wait for the server's close and FIN."""
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(OP_CLOSE, struct.pack("!H", 1000), os.urandom(4)))

    def _abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


def snapshot(stats: Stats, server_pgid: int | None) -> dict[str, Any]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "t": time.monotonic(),
        "echoes": stats.echoes,
        "client_cpu_s": ru.ru_utime + ru.ru_stime,
        "server_cpu_s": group_cpu_seconds(server_pgid) if server_pgid else None,
        "cpu_stat": read_cpu_stat(),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    payload = (b"0123456789abcdef" * (args.size // 16 + 1))[: args.size]
    opcode = OP_BINARY if args.binary else OP_TEXT
    frame = masked_frame(opcode, payload, os.urandom(4))
    echo = server_frame(opcode, payload)
    clients: list[EchoClient] = []
    for _ in range(args.connections):
        _, proto = await loop.create_connection(
            lambda: EchoClient(args.host, args.port, frame, echo, stats), args.host, args.port
        )
        clients.append(proto)
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), args.timeout)
    except (ConnectionError, TimeoutError) as exc:
        return {"ok": False, "error": f"handshake failed: {exc or 'timeout'}", "errors": stats.errors}
    if stats.errors:
        return {"ok": False, "error": "handshake failed", "errors": stats.errors}

    for c in clients:
        c.start()
    await asyncio.sleep(args.warmup)  # the load runs meanwhile; this is the warm-up window
    first = snapshot(stats, args.server_pgid)
    await asyncio.sleep(args.duration)  # the measured window
    last = snapshot(stats, args.server_pgid)
    stats.running = False
    for c in clients:
        c.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), args.timeout)
    for c in clients:
        if c.transport is not None and not c.transport.is_closing():
            stats.error("server did not finish the closing handshake")
            c.transport.abort()
    return {
        "ok": not stats.errors,
        "error": None if not stats.errors else "errors during the run",
        "errors": stats.errors,
        "echoes": last["echoes"] - first["echoes"],
        "window_s": last["t"] - first["t"],
        "client_cpu_s": last["client_cpu_s"] - first["client_cpu_s"],
        "server_cpu_s": (
            last["server_cpu_s"] - first["server_cpu_s"] if first["server_cpu_s"] is not None else None
        ),
        "cpu_stat_before": first["cpu_stat"],
        "cpu_stat_after": last["cpu_stat"],
        "loop": type(loop).__module__,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="WebSocket echo load generator (one JSON line out)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    p.add_argument("--size", type=int, default=16, help="message size in bytes")
    p.add_argument("--binary", action="store_true", help="binary instead of text messages")
    p.add_argument(
        "--server-pgid", type=int, help="read the CPU time of this process group around the window"
    )
    p.add_argument("--timeout", type=float, default=10.0, help="handshake / close deadline, seconds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the bench venv has it
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
