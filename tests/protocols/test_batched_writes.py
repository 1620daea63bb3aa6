"""Pipelined requests answered in batches: the whole responses of one read's
worth of pipelined requests leave in one ``transport.write`` (see
``HTTP11Protocol._cork``), in order, on both parsers.  In memory, because the
number of writes is what is pinned; tests/e2e/test_http11.py covers the same
on a real socket (order, a slow app inside a batch, a close after one)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from memtransport import MemoryTransport

from monoceros.config import Config
from monoceros.context import ServerContext
from monoceros.protocols.eager import RUN_MAX
from monoceros.protocols.http1 import BATCH_MAX, HTTP11Protocol


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = scope["path"].encode()
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(http: str, requests: int, from_loop: bool = False) -> list[bytes]:
    """The writes answering ``requests`` pipelined requests in one read.  The
    read comes from inside a task (so every app call gets a Task), or with
    ``from_loop`` from a loop callback as a real transport's does (so calls
    start eagerly)."""

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        loaded = Config(app, http=http, lifespan="off", access_log=False, log_config=None).load()
        protocol = HTTP11Protocol(ServerContext(loaded, loop))
        transport = MemoryTransport()
        protocol.connection_made(transport)
        wire = b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(requests))
        if from_loop:
            loop.call_soon(protocol.data_received, wire)
            await asyncio.sleep(0)
            if requests < BATCH_MAX:
                assert transport.writes == []  # held until the turn's callbacks are done
        else:
            protocol.data_received(wire)
        for _ in range(10 * requests):
            if b"".join(transport.writes).count(b"HTTP/1.1 200") == requests:
                break
            await asyncio.sleep(0)
        return transport.writes

    return asyncio.run(main())


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_a_pipelined_batch_leaves_in_two_writes(http: str) -> None:
    writes = serve(http, 16)
    # The first response goes out as soon as it is ready; the other fifteen together.
    assert len(writes) == 2
    paths = [part.rsplit(b"\r\n\r\n", 1)[1] for part in b"".join(writes).split(b"HTTP/1.1 ")[1:]]
    assert paths == [b"/%d" % i for i in range(16)]


def test_a_batch_is_at_most_batch_max_responses() -> None:
    writes = serve("httptools", 2 * BATCH_MAX + 1)
    assert [w.count(b"HTTP/1.1 200") for w in writes] == [1, BATCH_MAX, BATCH_MAX]


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_eagerly_answered_batch_leaves_in_one_write(http: str) -> None:
    writes = serve(http, 16, from_loop=True)
    assert len(writes) == 1
    paths = [part.rsplit(b"\r\n\r\n", 1)[1] for part in writes[0].split(b"HTTP/1.1 ")[1:]]
    assert paths == [b"/%d" % i for i in range(16)]


def test_a_long_eager_batch_is_cut_into_turns() -> None:
    # RUN_MAX (= BATCH_MAX) answered in the read's turn; the next goes to a
    # Task (taking turns with other connections), and the requests parsed
    # behind it form a pipelined batch of their own, in order.
    assert RUN_MAX == BATCH_MAX
    writes = serve("httptools", 2 * BATCH_MAX + 1, from_loop=True)
    assert [w.count(b"HTTP/1.1 200") for w in writes] == [BATCH_MAX, 1, BATCH_MAX]
    paths = [part.rsplit(b"\r\n\r\n", 1)[1] for part in b"".join(writes).split(b"HTTP/1.1 ")[1:]]
    assert paths == [b"/%d" % i for i in range(2 * BATCH_MAX + 1)]


def test_one_eagerly_answered_request_is_one_write() -> None:
    assert [w.count(b"HTTP/1.1 200") for w in serve("httptools", 1, from_loop=True)] == [1]
