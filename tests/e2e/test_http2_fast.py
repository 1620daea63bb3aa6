"""The HTTP/2 fast path (``FastStream``): requests that come whole in one
HEADERS frame bypass h2 for their stream; these tests pin what that stream
must still do exactly as an h2 stream would (windows, limits, resets, errors,
CONTINUATION), on a real socket with the ``h2`` library as the client, and
in memory for frames cut at every byte."""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from conftest import RunningServer, run_server
from h1tools import ThreadEvent, read_body
from h2tools import H2Client, Reply
from memtransport import MemoryTransport

from monoceros.config import Config
from monoceros.context import ServerContext
from monoceros.protocols.http1 import HTTP11Protocol
from monoceros.protocols.http2 import PREFACE, FastStream, H2Protocol

ErrorCodes = h2.errors.ErrorCodes
SETTINGS = h2.settings.SettingCodes
DISCONNECTED = ThreadEvent()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/wait-disconnect":
        message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        DISCONNECTED.set()
        return
    if path == "/echo":
        body = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"echo:" + body})
        return
    if path == "/big-headers":
        fields = [(b"x-big-%d" % i, b"v" * 1000) for i in range(40)]  # 40 kB: CONTINUATION frames
        await send({"type": "http.response.start", "status": 200, "headers": fields})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    size = int(scope["query_string"] or 100)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-path", path.encode())]})
    await send({"type": "http.response.body", "body": b"x" * size})


@pytest.fixture(scope="module")
def srv() -> Any:
    with run_server(app, lifespan="off", h2_max_concurrent_streams=4, h2_stall_timeout=5.0) as running:
        yield running


def frame(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    return struct.pack(">IBI", len(payload) << 8 | kind, flags, sid) + payload


def test_fast_requests_are_answered_in_order(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        sids = [client.request(f"/n{i}?{i * 10}") for i in range(4)]
        for i, sid in enumerate(sids):
            reply = client.response(sid)
            assert reply.status == 200 and reply.body == b"x" * (i * 10)
            assert reply.header(b"x-path") == f"/n{i}".encode()


def test_stream_window_and_settings_open_a_fast_stream(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        client.auto_ack = False  # the window moves only as this test says
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 10})
        client.flush()
        sid = client.request("/w?50")
        client.receive(lambda: len(client.replies[sid].body) >= 10)
        assert client.replies[sid].body == b"x" * 10
        # The stream's own WINDOW_UPDATE lets 15 more out ...
        client.conn.increment_flow_control_window(15, sid)
        client.flush()
        client.receive(lambda: len(client.replies[sid].body) >= 25)
        # ... and a larger initial window (SETTINGS) the rest.
        assert client.replies[sid].body == b"x" * 25
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 65535})
        client.flush()
        assert client.response(sid).body == b"x" * 50


def test_concurrency_limit_counts_blocked_fast_streams(srv: RunningServer) -> None:
    """h2spec 5.1.2: with a zero window every response stays open; the
    stream beyond SETTINGS_MAX_CONCURRENT_STREAMS (4 here) is refused."""
    with H2Client(srv) as client:
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 0})
        client.flush()
        sids = [client.request("/z") for _ in range(4)]
        client.receive(lambda: all(client.replies[s].status == 200 for s in sids))
        # (the client's h2 keeps to the limit itself: lift it on its side)
        client.conn.remote_settings.max_concurrent_streams = 100
        client.conn.remote_settings.acknowledge()
        extra = client.request("/z")
        assert client.response(extra).reset == ErrorCodes.REFUSED_STREAM
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 65535})
        client.flush()
        assert all(client.response(s).body == b"x" * 100 for s in sids)


def test_window_update_overflow_resets_the_fast_stream(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        client.auto_ack = False
        # The first response spends the connection window: the second waits
        # with an open stream window, which a WINDOW_UPDATE then overflows.
        first = client.request("/spend?65535")
        client.receive(lambda: len(client.replies[first].body) == 65535)
        second = client.request("/o")
        client.receive(lambda: client.replies[second].status == 200)
        client.sock.sendall(frame(0x8, 0, second, struct.pack(">I", 2**31 - 1)))
        assert client.response(second).reset == ErrorCodes.FLOW_CONTROL_ERROR
        # The connection goes on.
        client.conn.increment_flow_control_window(100_000)
        client.flush()
        assert client.response(client.request("/after")).status == 200


def test_client_reset_of_a_fast_stream_is_http_disconnect(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        sid = client.request("/wait-disconnect")
        client.conn.reset_stream(sid, ErrorCodes.CANCEL)
        client.flush()
        # The app hears it, and the stream no longer counts against the limit.
        assert DISCONNECTED.wait(5)
        sids = [client.request("/r") for _ in range(4)]
        assert [client.response(s).status for s in sids] == [200] * 4


def test_data_or_headers_after_end_stream(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 0})
        client.flush()
        sid = client.request("/d")
        client.receive(lambda: client.replies[sid].status == 200)
        # DATA on a half-closed (remote) stream: h2's stream error STREAM_CLOSED ...
        client.sock.sendall(frame(0x0, 0x1, sid, b"late"))
        assert client.response(sid).reset == ErrorCodes.STREAM_CLOSED
        # ... and nothing more is sent on it once the window opens.
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 65535})
        client.flush()
        assert client.response(client.request("/after")).body == b"x" * 100
        assert client.replies[sid].body == b"" and client.goaway is None
        # HEADERS on one: h2's connection error STREAM_CLOSED.
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 0})
        client.flush()
        sid = client.request("/e")
        client.receive(lambda: client.replies[sid].status == 200)
        client.sock.sendall(frame(0x1, 0x5, sid, client.conn.encoder.encode(_get("/again"))))
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.STREAM_CLOSED


def test_response_headers_larger_than_a_frame_use_continuation(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        reply = client.response(client.request("/big-headers"))
        assert reply.status == 200 and reply.body == b"ok"
        assert [n for n, _ in reply.headers if n.startswith(b"x-big-")] == [
            b"x-big-%d" % i for i in range(40)
        ]


def test_continuation_then_a_fast_request_in_one_write(srv: RunningServer) -> None:
    """A header block in HEADERS + CONTINUATION goes to h2 whole; the bodyless
    request right behind it in the same write takes the fast path."""
    with H2Client(srv) as client:
        long = client.conn.get_next_available_stream_id()
        client.conn.send_headers(long, [*_get("/long"), (b"x-long", b"v" * 20_000)], end_stream=True)
        client.replies[long] = Reply()
        short = client.request("/short")  # flushes both at once
        assert client.response(long).header(b"x-path") == b"/long"
        assert client.response(short).header(b"x-path") == b"/short"


def test_frame_larger_than_max_frame_size_is_refused_at_once(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        assert client.response(client.request("/first")).status == 200
        client.sock.sendall(struct.pack(">IBI", 16_385 << 8, 0, 3) + b"x" * 100)
        client.wait_closed()  # without the other 16 kB
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.FRAME_SIZE_ERROR


BAD = frame(0x0, 0, 0, b"x")  # DATA on stream 0: h2's connection error PROTOCOL_ERROR


@pytest.mark.parametrize(
    "follower", ["headers", "window-update", "stream-window-update", "rst-stream", "data", "continuation-cap"]
)
def test_a_connection_error_ends_the_read(srv: RunningServer, follower: str) -> None:
    """Frames the fast path would take, behind one h2 refuses in the same
    read: the connection error comes first, and nothing after it is served."""
    with H2Client(srv) as client:
        client.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 0})
        client.flush()
        client.receive(lambda: any(isinstance(e, h2.events.SettingsAcknowledged) for e in client.events))
        block = client.conn.encoder.encode(_get("/f"))
        opened = frame(0x1, 0x5, 1, block)  # a FastStream, waiting for window
        after = {
            "headers": frame(0x1, 0x5, 3, block),
            "window-update": frame(0x8, 0, 0, struct.pack(">I", 100)),
            "stream-window-update": frame(0x8, 0, 1, struct.pack(">I", 100)),
            "rst-stream": frame(0x3, 0, 1, struct.pack(">I", 8)),
            "data": frame(0x0, 0x1, 1, b"late"),
            "continuation-cap": frame(0x1, 0x0, 3, block) + frame(0x9, 0, 3, b"\x00" * 16384) * 6,
        }[follower]
        client.sock.sendall(opened + BAD + after)
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.PROTOCOL_ERROR


def test_push_promise_from_a_client_is_refused(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        client.sock.sendall(frame(0x5, 0, 1, struct.pack(">I", 2) + b"\x82"))  # no END_HEADERS
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.PROTOCOL_ERROR


def test_malformed_request_with_a_body_is_h2s_stream_error(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(sid, [*_get("/m"), (b"te", b"gzip")])
        client.conn.send_data(sid, b"body", end_stream=True)
        client.flush()
        client.replies[sid] = Reply()
        assert client.response(sid).reset == ErrorCodes.PROTOCOL_ERROR
        assert client.response(client.request("/ok")).status == 200


def _patched_request(client: H2Client, path: str, patch: Any, **priority: Any) -> int:
    """A GET whose HEADERS frame ``patch(flags, sid, payload)`` rewrites on
    its way out (the client's h2 knows the stream as a normal one)."""
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, _get(path), end_stream=True, **priority)
    wire = client.conn.data_to_send()
    length, flags, _ = struct.unpack(">IBI", wire[:9])
    assert length & 0xFF == 0x1 and len(wire) == 9 + (length >> 8)
    flags, payload = patch(flags, sid, wire[9:])
    client.sock.sendall(frame(0x1, flags, sid, payload))
    client.replies[sid] = Reply()
    return sid


def test_padded_and_priority_headers(srv: RunningServer) -> None:
    """PADDED goes through h2; PRIORITY is read by the fast path; a stream
    that depends on itself is h2's connection error."""
    with H2Client(srv) as client:
        sid = _patched_request(client, "/padded", lambda f, s, p: (f | 0x8, b"\x03" + p + b"\x00" * 3))
        assert client.response(sid).status == 200
        sid = _patched_request(
            client, "/prio", lambda f, s, p: (f, p), priority_weight=16, priority_depends_on=0
        )
        assert client.response(sid).status == 200
        itself = _patched_request(
            client,
            "/self",
            lambda f, s, p: (f, struct.pack(">I", s) + p[4:]),
            priority_weight=16,
            priority_depends_on=0,
        )
        client.wait_closed()  # h2 makes this one a connection error
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.PROTOCOL_ERROR
        assert client.replies[itself].status == 0


def _get(path: str) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"localhost"),
        (b":path", path.encode()),
    ]


# -- in memory: frames cut at every byte ----------------------------------------------


def _serve_in_memory(
    client: h2.connection.H2Connection, cuts: list[int], sids: list[int], all_fast: bool = False
) -> dict[int, bytes]:
    """Feed ``client``'s bytes to a server protocol in reads that end at
    ``cuts`` (offsets after the preface, which comes in the first read: the
    HTTP/1.1 side tells HTTP/2 by it); return the response bodies once
    every stream of ``sids`` ended."""

    async def main() -> dict[int, bytes]:
        loaded = Config(app, lifespan="off", log_level="warning").load()
        ctx = ServerContext(loaded, asyncio.get_running_loop())
        transport = MemoryTransport()
        origin = HTTP11Protocol(ctx)
        transport.set_protocol(origin)
        origin.connection_made(transport)
        wire = client.data_to_send()
        origin.data_received(wire[: len(PREFACE)])
        at = len(PREFACE)
        for cut in [*cuts, len(wire)]:
            if cut > at:
                transport.get_protocol().data_received(wire[at:cut])
                at = cut
        protocol = transport.get_protocol()
        assert isinstance(protocol, H2Protocol)
        if all_fast:
            assert [type(s) for s in protocol.streams.values()] == [FastStream] * len(sids)
        bodies: dict[int, bytes] = {}
        ended: set[int] = set()
        for _ in range(200):
            await asyncio.sleep(0)  # let the app tasks and the flush run
            for event in client.receive_data(transport.take()):
                if isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                    client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    ended.add(event.stream_id)
            if ended >= set(sids):
                break
        return bodies

    return asyncio.run(main())


def test_frames_split_at_every_byte() -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    sids = []
    for i in range(3):
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, _get(f"/b{i}?{i + 1}"), end_stream=True)
        sids.append(sid)
    client.increment_flow_control_window(1000)
    size = len(client._data_to_send)
    bodies = _serve_in_memory(
        client, list(range(len(PREFACE) + 1, size)), sids, all_fast=True
    )  # byte by byte
    assert {sid: bodies.get(sid) for sid in sids} == {sid: b"x" * (i + 1) for i, sid in enumerate(sids)}


@pytest.mark.parametrize("seed", range(8))
def test_mixed_requests_cut_at_random_points(seed: int) -> None:
    """Bodyless requests (the fast path) between requests with bodies,
    trailers and window updates (h2's), in reads cut anywhere."""
    rng = random.Random(seed)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    expected: dict[int, bytes] = {}
    for i in range(12):
        sid = client.get_next_available_stream_id()
        kind = rng.choice(["get", "get", "body", "trailers"])
        if kind == "get":
            size = rng.randrange(0, 3000)
            client.send_headers(
                sid,
                _get(f"/g{i}?{size}"),
                end_stream=True,
                **({"priority_weight": 16, "priority_depends_on": 0} if rng.random() < 0.3 else {}),
            )
            expected[sid] = b"x" * size
        else:
            body = bytes(rng.randrange(97, 123) for _ in range(rng.randrange(1, 5000)))
            fields = [(b":method", b"POST"), *_get("/echo")[1:]]
            client.send_headers(sid, fields)
            for at in range(0, len(body), 1500):
                client.send_data(sid, body[at : at + 1500])
            if kind == "trailers":
                client.send_headers(sid, [(b"x-sum", b"%d" % len(body))], end_stream=True)
            else:
                client.end_stream(sid)
            expected[sid] = b"echo:" + body
        if rng.random() < 0.3:
            client.increment_flow_control_window(rng.randrange(1, 5000))
    size = len(client._data_to_send)
    cuts = sorted(rng.sample(range(len(PREFACE) + 1, size), 40))
    assert _serve_in_memory(client, cuts, list(expected)) == expected
