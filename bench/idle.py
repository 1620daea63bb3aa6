#!/usr/bin/env python3
"""Idle keep-alive connections: how much memory a server holds for them.

Run by ``bench/suite.py`` (pinned to the client CPU)::

    python -m bench.idle --port 8000 --connections 10000 --server-pgid 1234

Opens ``--connections`` TCP connections to ``127.0.0.1:--port``, at most
``--in-flight`` of them being set up at a time (so the listen backlog never
overflows and no SYN is retried after a one-second timeout), sends one
``GET /`` on each, reads the whole response (``content-length`` framed) and
keeps the connection open and idle.  When every connection has its answer,
it waits ``--settle`` seconds (the server's post-response work, e.g. a log
line, finishes), then reads the server's resident memory: the sum of
``VmRSS`` over the processes of the server's process group, from
``/proc/<pid>/status``.  It prints one JSON line with the RSS before the
first connection, the RSS with every connection idle, and the counts (a
connection the server closed while it should be idle is counted in
``closed_by_server``; the suite flags the row).

Raw asyncio protocols on uvloop (when importable): the client must be cheap,
not pretty.  If one source address does not have enough ephemeral ports for
the connections (``ip_local_port_range``), the connections are spread over
127.0.0.1, 127.0.0.2, ... as source addresses (all of 127/8 is loopback).
Stdlib only apart from uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

HOST = "127.0.0.1"


def group_rss_kb(pgid: int) -> int:
    """Sum of VmRSS (kB) of the live processes in a process group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            status = (entry / "status").read_text()
        except (OSError, ProcessLookupError):
            continue  # exited meanwhile
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
                break
    return total


def raise_nofile(needed: int) -> int:
    """Raise RLIMIT_NOFILE to at least ``needed`` (the hard limit too, when allowed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def source_addresses(connections: int) -> list[str]:
    """Enough loopback source addresses that each needs at most half the ephemeral range."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    per_address = max(1, (high - low + 1) // 2)
    count = min(250, math.ceil(connections / per_address))
    return [f"127.0.0.{i}" for i in range(1, count + 1)]


class IdleConnection(asyncio.Protocol):
    """Sends one request on connect, completes ``answered`` with the response, then idles."""

    def __init__(self, request: bytes, answered: asyncio.Future[None], stats: dict[str, int]) -> None:
        self.request = request
        self.answered = answered
        self.stats = stats
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(self.request)  # a TCP connection: a stream transport

    def data_received(self, data: bytes) -> None:
        if self.answered.done():
            self.stats["unexpected_data"] += 1
            return
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1").lower().split("\r\n")
        if not head[0].startswith("http/1.1 2"):
            self.answered.set_exception(RuntimeError(f"bad response: {head[0]!r}"))
            return
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip() == "content-length":
                length = int(value)
        if len(self.buf) - end - 4 >= length:
            self.buf = b""
            self.answered.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answered.done():
            self.stats["closed_by_server"] += 1
        else:
            self.answered.set_exception(ConnectionError("closed before the response"))


async def hold(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    request = f"GET / HTTP/1.1\r\nHost: {HOST}:{args.port}\r\n\r\n".encode()
    stats = {"closed_by_server": 0, "unexpected_data": 0, "errors": 0}
    sources = source_addresses(args.connections)
    transports: list[asyncio.Transport] = []
    gate = asyncio.Semaphore(args.in_flight)
    first_error: list[str] = []

    async def open_one(i: int) -> None:
        async with gate:
            answered: asyncio.Future[None] = loop.create_future()
            local = (sources[i % len(sources)], 0) if len(sources) > 1 else None
            try:
                transport, _ = await loop.create_connection(
                    lambda: IdleConnection(request, answered, stats), HOST, args.port, local_addr=local
                )
                transports.append(transport)
                await asyncio.wait_for(answered, args.timeout)
            except (OSError, RuntimeError, TimeoutError) as exc:
                stats["errors"] += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}")

    rss_before = group_rss_kb(args.server_pgid) if args.server_pgid else None
    t0 = time.monotonic()
    await asyncio.gather(*(open_one(i) for i in range(args.connections)))
    open_s = time.monotonic() - t0
    rss_answered = group_rss_kb(args.server_pgid) if args.server_pgid else None
    await asyncio.sleep(args.settle)  # let the server finish post-response work before reading RSS
    rss_idle = group_rss_kb(args.server_pgid) if args.server_pgid else None
    still_open = sum(1 for t in transports if not t.is_closing())
    for t in transports:
        t.abort()
    return {
        "connections": args.connections,
        "answered": args.connections - stats["errors"],
        "still_open": still_open,
        "source_addresses": len(sources),
        "open_s": round(open_s, 3),
        "rss_before_kb": rss_before,
        "rss_answered_kb": rss_answered,
        "rss_idle_kb": rss_idle,
        **stats,
        "error": first_error[0] if first_error else None,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Hold idle keep-alive connections; report the server's RSS.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--in-flight", type=int, default=200, help="connections being set up at once")
    p.add_argument("--settle", type=float, default=0.5, help="seconds between the last answer and the RSS")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one response")
    p.add_argument("--server-pgid", type=int, default=0, help="process group whose RSS is read")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    limit = raise_nofile(args.connections + 256)
    if limit < args.connections + 64:
        print(json.dumps({"error": f"RLIMIT_NOFILE is {limit}, too low for {args.connections} connections"}))
        return 1
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(hold(args))
    else:
        result = uvloop.run(hold(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
