"""Strict HTTP/1.1 on real sockets, on both parsers (RFC 9112 / RFC 9110).

Every malformed request of tests/strict_http_cases.py is sent with a second
request (``GET /smuggled``) right behind it: the server must answer the
first with its error status, in HTTP/1.1 form, and close; nothing else may
follow, and the application must never see ``/smuggled``.  The error bytes
must be the same from both parsers (but for the Date value).  The good cases
must be served the same way on both.  Limits: 414 for the request line, 431
for the head (exact boundaries, also when the head trickles in), 408 for a
head that stops coming.  The in-memory twin is tests/protocols/test_codecs.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import HTTP_IMPLS, RunningServer, run_server
from h1tools import Reader, read_response
from strict_http_cases import BAD, GOOD, HOST, SMUGGLED, Bad, chunked, get, head

from monoceros.config import DEFAULT_MAX_HEAD_SIZE, MAX_REQUEST_LINE
from monoceros.protocols.headers import STATUS_PHRASES

SEEN: list[list[Any]] = []  # [method, raw_path, query, body or None, headers] per request the app got
DISCONNECTED = threading.Event()  # the app saw http.disconnect


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    entry = [scope["method"], scope["raw_path"], scope["query_string"], None, scope["headers"]]
    SEEN.append(entry)
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            DISCONNECTED.set()
            return  # a fault in the body: the server answers, not us
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    entry[3] = body
    reply = b"%s %s %d" % (scope["method"].encode(), scope["raw_path"], len(body))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": reply})


@pytest.fixture(scope="module", params=HTTP_IMPLS)
def http_impl(request: pytest.FixtureRequest) -> str:
    """Module-scoped here, so that one server per parser serves every case."""
    return str(request.param)


@pytest.fixture(scope="module")
def srv(http_impl: str) -> Iterator[RunningServer]:
    with run_server(app, http=http_impl, lifespan="off", http2=False) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_log() -> None:
    SEEN.clear()
    DISCONNECTED.clear()


def exchange(srv: RunningServer, data: bytes) -> bytes:
    """Send ``data``, read until the server closes; return all it sent."""
    with srv.connect() as sock:
        sock.sendall(data)
        return read_to_eof(sock)


def read_to_eof(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:  # pragma: no cover - kept for a clear failure below
            return out
        if not data:
            return out
        out += data


def assert_error_response(raw: bytes, status: int) -> None:
    """Exactly one complete error response for ``status``, then EOF."""
    assert raw.startswith(b"HTTP/1.1 %d %s\r\n" % (status, STATUS_PHRASES[status])), raw[:200]
    head_part, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw
    fields = dict(line.split(b": ", 1) for line in head_part.split(b"\r\n")[1:])
    assert fields[b"connection"] == b"close"
    assert body == STATUS_PHRASES[status] and int(fields[b"content-length"]) == len(body), raw


def without_date(raw: bytes) -> bytes:
    return b"\r\n".join(line for line in raw.split(b"\r\n") if not line.lower().startswith(b"date:"))


def paths_seen() -> list[bytes]:
    return [entry[1] for entry in SEEN]


# -- malformed requests: one error, a close, no smuggled request -----------------------
@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_malformed_request_is_refused_and_nothing_follows(srv, http_impl, case: Bad):
    raw = exchange(srv, case.data + SMUGGLED)
    assert_error_response(raw, case.status)
    assert b"/smuggled" not in paths_seen()
    if case.in_body:
        # The refusal may reach the client before the app's task ran.
        assert DISCONNECTED.wait(5)
        assert paths_seen() == [b"/"] and SEEN[0][3] is None  # the app saw the head, then a disconnect
    else:
        assert paths_seen() == []


def test_error_responses_are_the_same_bytes_on_both_parsers():
    cases = [c.data + SMUGGLED for c in BAD] + [
        head(b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1", HOST),  # 414
        get(b"X-Pad: " + b"p" * DEFAULT_MAX_HEAD_SIZE),  # 431
    ]
    with (
        run_server(app, http="httptools", lifespan="off", http2=False) as fast,
        run_server(app, http="h11", lifespan="off", http2=False) as pure,
    ):
        for data in cases:
            a, b = exchange(fast, data), exchange(pure, data)
            assert a.startswith(b"HTTP/1.1 4") or a.startswith(b"HTTP/1.1 5"), a[:100]
            assert without_date(a) == without_date(b), data[:200]


# -- good requests: served alike ------------------------------------------------------------
def expected_path(target: bytes) -> bytes:
    if target.startswith(b"http"):
        target = b"/" + target.split(b"/", 3)[3]
    return target.partition(b"?")[0]


@pytest.mark.parametrize("case", GOOD, ids=[c.id for c in GOOD])
def test_good_request_is_served(srv, http_impl, case):
    with srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(case.data)
        for method, target, body in case.requests:
            resp = read_response(reader, method)
            assert resp.status == 200, resp
            if target != b"*":
                assert resp.body == b"%s %s %d" % (method, expected_path(target), len(body))
    assert [(e[0].encode(), e[3]) for e in SEEN] == [(m, b) for m, _, b in case.requests]


def test_value_whitespace_and_trailers_as_the_app_sees_them(srv, http_impl):
    data = chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", b"X-A: \t v v \t", b"X-B:")
    with srv.connect() as sock:
        sock.sendall(data)
        assert read_response(Reader(sock)).status == 200
    assert SEEN[0][4] == [
        (b"host", b"example.com"),
        (b"transfer-encoding", b"chunked"),
        (b"x-a", b"v v"),
        (b"x-b", b""),
    ]


def test_pipelined_requests_answered_in_order_on_one_connection(srv, http_impl):
    requests = b"".join(get(line=b"GET /%d HTTP/1.1" % i) for i in range(10))
    with srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(requests)
        bodies = [read_response(reader).body for _ in range(10)]
        sock.sendall(get(line=b"GET /after HTTP/1.1"))
        assert read_response(reader).body == b"GET /after 0"
    assert bodies == [b"GET /%d 0" % i for i in range(10)]


def test_nothing_after_connection_close_is_served(srv, http_impl):
    raw = exchange(srv, get(b"Connection: close") + SMUGGLED)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"\r\n\r\nGET / 0")
    assert raw.count(b"HTTP/1.1") == 1
    assert paths_seen() == [b"/"]


def test_nothing_after_an_http_1_0_request_is_served(srv, http_impl):
    raw = exchange(srv, head(b"GET /old HTTP/1.0") + SMUGGLED)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.count(b"HTTP/1.1") == 1
    assert paths_seen() == [b"/old"]


def test_expect_100_continue(srv, http_impl):
    with srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(head(b"POST /up HTTP/1.1", HOST, b"Content-Length: 5", b"Expect: 100-continue"))
        assert reader.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        assert read_response(reader).body == b"POST /up 5"
    assert SEEN[0][3] == b"hello"


def test_head_trickled_one_byte_at_a_time(srv, http_impl):
    data = get(b"User-Agent: slow", line=b"GET /slow?q=1 HTTP/1.1")
    with srv.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            sock.sendall(data[i : i + 1])
        assert read_response(Reader(sock)).body == b"GET /slow 0"
    assert SEEN[0][2] == b"q=1"


# -- limits: 414, 431, 408 -------------------------------------------------------------------
def head_of_size(size: int, line: int = 14) -> bytes:
    """A valid GET head of exactly ``size`` bytes with a ``line``-byte request line."""
    first = b"GET /" + b"a" * (line - 14) + b" HTTP/1.1"
    start = first + b"\r\n" + HOST + b"\r\n"
    data = start + b"X-Pad: " + b"p" * (size - len(start) - len(b"X-Pad: \r\n\r\n")) + b"\r\n\r\n"
    assert len(data) == size and len(first) == line
    return data


@pytest.mark.parametrize(
    ("size", "line", "status"),
    [
        (DEFAULT_MAX_HEAD_SIZE, 14, 200),
        (DEFAULT_MAX_HEAD_SIZE + 1, 14, 431),
        (MAX_REQUEST_LINE + 100, MAX_REQUEST_LINE, 200),
        (MAX_REQUEST_LINE + 100, MAX_REQUEST_LINE + 1, 414),
    ],
    ids=["head-at-limit", "head-over-limit", "line-at-limit", "line-over-limit"],
)
def test_head_and_line_limits_are_exact(srv, http_impl, size, line, status):
    data = head_of_size(size, line)
    with srv.connect() as sock:
        sock.sendall(data)
        if status == 200:
            assert read_response(Reader(sock)).status == 200
        else:
            assert_error_response(read_to_eof(sock), status)


def test_oversized_head_in_small_pieces_is_431(srv, http_impl):
    start = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Long: "
    data = start + b"x" * (DEFAULT_MAX_HEAD_SIZE + 1 - len(start))  # one byte over, never finished
    with srv.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), 97):
            sock.sendall(data[i : i + 97])
        assert_error_response(read_to_eof(sock), 431)


def test_oversized_request_line_in_small_pieces_is_414(srv, http_impl):
    data = b"GET /" + b"a" * MAX_REQUEST_LINE  # one byte over, no CRLF
    with srv.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), 113):
            sock.sendall(data[i : i + 113])
        assert_error_response(read_to_eof(sock), 414)


def test_configured_head_limit_applies_to_both_parsers(server, http_impl):
    with server(app, lifespan="off", h11_max_incomplete_event_size=4096) as small:
        with small.connect() as sock:
            sock.sendall(head_of_size(4096))
            assert read_response(Reader(sock)).status == 200
        assert_error_response(exchange(small, head_of_size(4097)), 431)


@pytest.mark.parametrize(
    "partial",
    [b"GET / HTTP/1.1\r\nHost: example.com\r\n", b"GET / HTTP/1.1\r\nX A: 1\r\n", b"GET /"],
    ids=["valid-so-far", "malformed-so-far", "inside-the-line"],
)
def test_head_that_stops_coming_is_408(server, http_impl, partial):
    """Neither parser judges a head before it is complete, so a partial head
    then silence gets 408 on both, malformed or not."""
    with server(app, lifespan="off", timeout_request_header=1) as slow, slow.connect() as sock:
        sock.sendall(partial)
        assert_error_response(read_to_eof(sock), 408)
