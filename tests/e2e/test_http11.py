"""HTTP/1.1 on real sockets, on both parsers: connections, request bodies,
responses, the scope.

Every test takes ``http_impl`` so it runs on httptools and on h11.  Clients
are raw sockets (to see the exact bytes), the h11 library (a strict check of
our framing), httpx and curl.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import struct
import subprocess
from typing import Any

import h11
import httpx
import pytest
from h1tools import (
    H11Client,
    Reader,
    ThreadEvent,
    get,
    read_body,
    read_head,
    read_response,
    request,
    respond,
)

from monoceros.errors import ASGIMessageError

CURL = shutil.which("curl")


@pytest.fixture
def server(server):  # type: ignore[no-untyped-def]
    """The conftest fixture, with lifespan off unless a test asks (the apps here are http-only)."""

    def start(app, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("lifespan", "off")
        return server(app, **kwargs)

    return start


def echo_app_factory(log: list[Any] | None = None):  # type: ignore[no-untyped-def]
    """Echo the request body; the response says which client port asked."""

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if log is not None:
            log.append(scope)
        await respond(
            send,
            body,
            headers=[
                (b"x-client-port", str(scope["client"][1]).encode()),
                (b"x-path", scope["path"].encode()),
            ],
        )

    return app


# -- connections --------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(server, http_impl):
    with server(echo_app_factory()) as srv, srv.connect() as sock:
        reader = Reader(sock)
        ports = set()
        for i in range(5):
            sock.sendall(get(f"/{i}"))
            resp = read_response(reader)
            assert resp.status == 200
            assert resp.header(b"x-path") == f"/{i}".encode()
            assert resp.header(b"connection") is None  # HTTP/1.1: keep-alive is the default
            ports.add(resp.header(b"x-client-port"))
        assert ports == {str(sock.getsockname()[1]).encode()}


def test_keep_alive_with_httpx_and_h11(server, http_impl):
    with server(echo_app_factory()) as srv:
        with httpx.Client(base_url=srv.url) as client:
            ports = {client.post("/", content=b"x" * i).headers["x-client-port"] for i in range(4)}
        assert len(ports) == 1
        with srv.connect() as sock:
            h11c = H11Client(sock)
            for i in range(3):
                resp, body = h11c.request("POST", f"/{i}", body=b"abc" * i)
                assert resp.status_code == 200 and body == b"abc" * i


def test_connection_close_from_client(server, http_impl):
    with server(echo_app_factory()) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/", "Connection: close\r\n"))
        resp = read_response(reader)
        assert resp.status == 200
        assert resp.get(b"connection") == [b"close"]
        assert reader.at_eof()


def test_connection_close_from_app(server, http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, b"bye", headers=[(b"Connection", b"close")])

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/"))
        resp = read_response(reader)
        assert resp.body == b"bye"
        assert resp.get(b"connection") == [b"close"]  # once: the server owns the header
        assert reader.at_eof()


def test_http10_closes_unless_keep_alive_asked(server, http_impl):
    with server(echo_app_factory()) as srv:
        with srv.connect() as sock:
            reader = Reader(sock)
            sock.sendall(get("/", version="1.0"))
            resp = read_response(reader)
            assert resp.status == 200 and resp.framing == "length"
            assert resp.get(b"connection") == [b"close"]
            assert reader.at_eof()
        with srv.connect() as sock:
            reader = Reader(sock)
            for i in range(3):
                sock.sendall(get(f"/{i}", "Connection: keep-alive\r\n", version="1.0"))
                resp = read_response(reader)
                assert resp.header(b"x-path") == f"/{i}".encode()
                assert resp.get(b"connection") == [b"keep-alive"]


def test_http10_streaming_response_is_close_delimited(server, http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        assert scope["http_version"] == "1.0"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await send({"type": "http.response.body", "body": b"two", "more_body": False})

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/", "Connection: keep-alive\r\n", version="1.0"))
        resp = read_response(reader)
        assert resp.framing == "close"  # HTTP/1.0 has no chunked: the close ends the body
        assert resp.get(b"connection") == [b"close"]
        assert resp.body == b"one,two"


def test_pipelining_answers_in_order_one_at_a_time(server, http_impl):
    log: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        path = scope["path"]
        log.append(f"start {path}")
        await read_body(receive)
        if path == "/0":
            # A slow first response: the second request must not overtake it.
            for _ in range(20):
                await asyncio.sleep(0)
            await asyncio.sleep(0.05)
        await respond(send, path.encode())
        log.append(f"end {path}")

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"".join(get(f"/{i}") for i in range(10)))
        bodies = [read_response(reader).body for _ in range(10)]
        assert bodies == [f"/{i}".encode() for i in range(10)]
        expected = []
        for i in range(10):
            expected += [f"start /{i}", f"end /{i}"]
        assert log == expected


def test_pipelined_batch_is_not_held_for_a_slow_app(server, http_impl):
    """Whole responses of a pipelined batch go out together (one write), but
    never wait for an app that is waiting on something: the answers before it
    arrive while it still waits."""
    gate = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await read_body(receive)
        if scope["path"] == "/4":
            await gate.wait_async()
        await respond(send, scope["path"].encode())

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"".join(get(f"/{i}") for i in range(8)))
        assert [read_response(reader).body for _ in range(4)] == [b"/0", b"/1", b"/2", b"/3"]
        assert not gate.is_set()
        gate.set()
        assert [read_response(reader).body for _ in range(4)] == [b"/4", b"/5", b"/6", b"/7"]
        # A close after a batch sends it first.
        sock.sendall(b"".join(get(f"/{i}") for i in range(8, 11)) + get("/11", "Connection: close\r\n"))
        assert [read_response(reader).body for _ in range(4)] == [b"/8", b"/9", b"/10", b"/11"]
        assert sock.recv(1) == b""


def test_pipelining_with_bodies_and_h11(server, http_impl):
    with server(echo_app_factory()) as srv, srv.connect() as sock:
        reader = Reader(sock)
        reqs = b"".join(
            f"POST /{i} HTTP/1.1\r\nHost: t\r\nContent-Length: {i}\r\n\r\n".encode() + b"b" * i
            for i in range(10)
        )
        sock.sendall(reqs)
        for i in range(10):
            resp = read_response(reader)
            assert resp.body == b"b" * i and resp.header(b"x-path") == f"/{i}".encode()


def test_background_work_after_response_does_not_block_next_request(server, http_impl):
    release = ThreadEvent()
    finished = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, scope["path"].encode())
        if scope["path"] == "/bg":
            await release.wait_async()
            finished.set()

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/bg"))
        assert read_response(reader).body == b"/bg"
        sock.sendall(get("/next"))
        assert read_response(reader).body == b"/next"  # while /bg still works
        assert not finished.is_set()
        release.set()
        assert finished.wait(5)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_reuses_the_connection(server, http_impl):
    with server(echo_app_factory()) as srv:
        out = subprocess.run(
            [CURL, "-sv", f"{srv.url}/a", f"{srv.url}/b"], capture_output=True, timeout=30, check=True
        )
        assert out.stdout == b""  # empty bodies
        assert b"Re-using existing connection" in out.stderr or b"Reusing existing" in out.stderr


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_http10_head_and_chunked_upload(server, http_impl, tmp_path):
    data = tmp_path / "data"
    data.write_bytes(b"0123456789" * 10000)
    with server(echo_app_factory()) as srv:
        out = subprocess.run(
            [CURL, "-s", "--http1.0", "--data-binary", "ten", "-D", "-", srv.url],
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nten")
        assert b"connection: close\r\n" in out
        out = subprocess.run(
            [CURL, "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{data}", srv.url],
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
        assert out == data.read_bytes()
        out = subprocess.run(
            [CURL, "-s", "-I", f"{srv.url}/head"], capture_output=True, timeout=30, check=True
        ).stdout
        # An empty HEAD body says nothing about the GET length: no Content-Length.
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length" not in out
    with server(simple_app(body=b"hello")) as srv:
        out = subprocess.run([CURL, "-s", "-I", srv.url], capture_output=True, timeout=30, check=True).stdout
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"content-length: 5\r\n\r\n")


# -- request bodies -----------------------------------------------------------------------


def test_content_length_body(server, http_impl):
    with server(echo_app_factory()) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.post("/", content=b"hello body").content == b"hello body"
        assert client.post("/", content=b"").content == b""


def test_chunked_body_with_trailers(server, http_impl):
    seen: list[Any] = []
    with server(echo_app_factory(seen)) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: yes\r\n\r\n"
        )
        assert read_response(reader).body == b"hello world"
        sock.sendall(get("/after"))  # the connection is still in step
        assert read_response(reader).header(b"x-path") == b"/after"
    assert (b"transfer-encoding", b"chunked") in seen[0]["headers"]


def test_chunked_body_from_clients(server, http_impl):
    with server(echo_app_factory()) as srv:
        with httpx.Client(base_url=srv.url) as client:
            r = client.post("/", content=iter([b"a" * 1000, b"b" * 70000, b"c"]))
            assert r.content == b"a" * 1000 + b"b" * 70000 + b"c"
        with srv.connect() as sock:
            _resp, body = H11Client(sock).request("POST", "/", body=[b"x", b"yy", b"zzz"])
            assert body == b"xyyzzz"


def test_large_body_streamed(server, http_impl):
    size = 10 * 1024 * 1024
    payload = bytes(range(256)) * (size // 256)
    largest: list[int] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        digest = hashlib.sha256()
        total = 0
        while True:
            message = await receive()
            total += len(message["body"])
            largest.append(len(message["body"]))
            digest.update(message["body"])
            if not message["more_body"]:
                break
        await respond(send, f"{total} {digest.hexdigest()}".encode())

    with server(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        r = client.post("/", content=payload)
        assert r.text == f"{size} {hashlib.sha256(payload).hexdigest()}"
    # The app read as it came: no message held the whole body.
    assert max(largest) < 2 * 1024 * 1024


def test_expect_100_continue_is_sent_when_the_app_reads(server, http_impl):
    go = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await go.wait_async()
        await respond(send, await read_body(receive))

    with server(app) as srv, srv.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):  # nothing before the app asks for the body
            sock.recv(100)
        sock.settimeout(5)
        go.set()
        reader = Reader(sock)
        assert reader.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        resp = read_response(reader)
        assert resp.status == 200 and resp.body == b"hello"
        sock.sendall(get("/again"))  # keep-alive goes on
        assert read_response(reader).status == 200


def test_expect_100_not_sent_when_the_app_answers_without_reading(server, http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, b"no thanks", status=413)

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        resp = read_response(reader)
        assert resp.status == 413 and resp.body == b"no thanks"
        # The client may never send the body: the connection cannot go on.
        assert resp.get(b"connection") == [b"close"]
        assert reader.at_eof()


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_expect_100_with_curl(server, http_impl, tmp_path):
    data = tmp_path / "data"
    data.write_bytes(b"z" * 3000)
    with server(echo_app_factory()) as srv:
        out = subprocess.run(
            [
                CURL,
                "-sv",
                "--expect100-timeout",
                "20",
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                f"@{data}",
                srv.url,
            ],
            capture_output=True,
            timeout=15,  # far below the 20 s curl would wait without our 100
            check=True,
        )
    assert out.stdout == b"z" * 3000
    assert b"HTTP/1.1 100 Continue" in out.stderr


def test_unread_body_is_drained_to_keep_the_connection(server, http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, scope["path"].encode())  # never reads the body

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        body = b"q" * 300_000
        sock.sendall(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
        resp = read_response(reader)
        assert resp.body == b"/a" and resp.header(b"connection") is None
        sock.sendall(body + get("/b"))  # the rest of the body, then the next request
        assert read_response(reader).body == b"/b"
        # chunked too
        sock.sendall(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        assert read_response(reader).body == b"/c"
        sock.sendall(b"3\r\ndef\r\n0\r\n\r\n" + get("/d"))
        assert read_response(reader).body == b"/d"


def test_unread_body_too_long_to_drain_closes(server, http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, b"early")

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 1000)
        resp = read_response(reader)
        assert resp.body == b"early" and resp.get(b"connection") == [b"close"]
        assert reader.at_eof()


def test_disconnect_reaches_a_waiting_app_promptly(server, http_impl):
    got: list[Any] = []
    done = ThreadEvent()
    reading = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        got.append(await receive())  # the (empty) body
        reading.set()
        got.append(await receive())  # blocks until the client goes
        done.set()

    with server(app) as srv:
        sock = srv.connect()
        sock.sendall(get("/"))
        assert reading.wait(5)
        sock.close()
        assert done.wait(5)
    assert got[0] == {"type": "http.request", "body": b"", "more_body": False}
    assert got[1] == {"type": "http.disconnect"}


def test_disconnect_by_reset_while_the_body_is_awaited(server, http_impl):
    got: list[Any] = []
    done = ThreadEvent()
    reading = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        got.append(await receive())
        reading.set()
        got.append(await receive())
        done.set()

    with server(app) as srv:
        sock = srv.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        assert reading.wait(5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
        assert done.wait(5)
    assert got[0] == {"type": "http.request", "body": b"abc", "more_body": True}
    assert got[1] == {"type": "http.disconnect"}


def test_send_after_disconnect_raises_oserror(server, http_impl):
    raised: list[BaseException] = []
    done = ThreadEvent()
    reading = ThreadEvent()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        reading.set()
        assert (await receive())["type"] == "http.disconnect"
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            raised.append(exc)
        done.set()

    with server(app) as srv:
        sock = srv.connect()
        sock.sendall(get("/"))
        assert reading.wait(5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST: the connection is gone at once
        assert done.wait(5)
    assert len(raised) == 1 and isinstance(raised[0], OSError)


def test_half_closed_client_still_gets_its_response(server, http_impl):
    got: list[Any] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        got.append(await read_body(receive))
        got.append(await receive())  # the EOF reads as http.disconnect ...
        await respond(send, b"still here")  # ... yet the response goes out

    with server(app) as srv, srv.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        resp = read_response(reader)
        assert resp.body == b"still here" and resp.get(b"connection") == [b"close"]
        assert reader.at_eof()
    assert got == [b"hi", {"type": "http.disconnect"}]


# -- responses ----------------------------------------------------------------------------


def simple_app(status: int = 200, body: bytes = b"hello", headers=None, chunks=None):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        if chunks is None:
            await send({"type": "http.response.body", "body": body})
        else:
            for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


def test_content_length_from_the_app(server, http_impl):
    app = simple_app(headers=[(b"content-length", b"5"), (b"content-type", b"text/plain")])
    with server(app) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.get(b"content-length") == [b"5"] and resp.body == b"hello"
        assert resp.header(b"transfer-encoding") is None


def test_single_body_gets_a_content_length(server, http_impl):
    with server(simple_app(body=b"abcdef")) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.framing == "length" and resp.get(b"content-length") == [b"6"] and resp.body == b"abcdef"
        resp = request(sock, get("/"))  # and the next one still parses
        assert resp.body == b"abcdef"


def test_streaming_without_length_is_chunked(server, http_impl):
    app = simple_app(chunks=[b"one", b"", b"two" * 1000])
    with server(app) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.framing == "chunked" and resp.body == b"one" + b"two" * 1000
        _resp2, body = H11Client(sock).request("GET", "/")
        assert body == b"one" + b"two" * 1000


def test_streaming_with_content_length_is_not_chunked(server, http_impl):
    app = simple_app(chunks=[b"ab", b"cd"], headers=[(b"content-length", b"4")])
    with server(app) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.framing == "length" and resp.body == b"abcd"


def test_head_response_has_headers_but_no_body(server, http_impl):
    with server(simple_app(body=b"twelve bytes")) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/", method="HEAD") + get("/"))
        head = read_response(reader, b"HEAD")
        assert head.status == 200 and head.get(b"content-length") == [b"12"]
        assert reader.buf == b"" or reader.buf.startswith(b"HTTP/1.1 200")  # no body bytes
        get_resp = read_response(reader)
        assert get_resp.body == b"twelve bytes"
        # A streamed HEAD: no body, no chunked framing either.
    with server(simple_app(chunks=[b"a", b"b"])) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/", method="HEAD") + get("/x"))
        head = read_response(reader, b"HEAD")
        assert head.header(b"transfer-encoding") is None
        assert read_response(reader).body == b"ab"
        h11c = H11Client(sock)
        _resp, body = h11c.request("HEAD", "/")
        assert body == b""


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(server, http_impl, status):
    with server(simple_app(status=status, body=b"ignored")) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/") + get("/"))
        for _ in range(2):
            resp = read_response(reader)
            assert resp.status == status
            assert resp.header(b"transfer-encoding") is None and resp.header(b"content-length") is None
        assert reader.buf == b""
        resp, body = H11Client(sock).request("GET", "/")
        assert resp.status_code == status and body == b""


def test_status_as_int_enum(server, http_impl):
    from http import HTTPStatus

    with server(simple_app(status=HTTPStatus.CREATED)) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.status == 201 and resp.reason == b"Created"


def test_content_length_too_long(server, http_impl):
    errors: list[BaseException] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        try:
            if scope["path"] == "/stream":
                await send({"type": "http.response.body", "body": b"ab", "more_body": True})
                await asyncio.sleep(0.01)  # the head and "ab" are on the wire now
                await send({"type": "http.response.body", "body": b"cdef", "more_body": True})
            else:
                await send({"type": "http.response.body", "body": b"abcdef"})
        except ASGIMessageError as exc:
            errors.append(exc)

    with server(app) as srv:
        with srv.connect() as sock:
            # Nothing was on the wire yet: the client gets a clean 500.
            reader = Reader(sock)
            sock.sendall(get("/"))
            resp = read_response(reader)
            assert resp.status == 500 and resp.get(b"connection") == [b"close"]
            assert reader.at_eof()
        with srv.connect() as sock:
            reader = Reader(sock)
            sock.sendall(get("/stream"))
            resp = read_head(reader)
            assert resp.status == 200
            assert reader.read_to_eof() == b"ab"  # truncated, then closed
    assert len(errors) == 2 and "Content-Length" in str(errors[0])


def test_content_length_too_short(server, http_impl):
    errors: list[BaseException] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        try:
            await send({"type": "http.response.body", "body": b"de"})
        except ASGIMessageError as exc:
            errors.append(exc)

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/"))
        resp = read_head(reader)
        assert resp.header(b"content-length") == b"10"
        assert reader.read_to_eof() == b"abc"  # the client sees the truncation
    assert len(errors) == 1


def test_app_exception_before_start_is_500(server, http_impl, caplog):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        raise ValueError("boom")

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/"))
        resp = read_response(reader)
        assert resp.status == 500 and resp.get(b"connection") == [b"close"]
        assert resp.body == b"Internal Server Error"
        assert reader.at_eof()
    assert any("Exception in ASGI application" in r.getMessage() for r in caplog.records)


def test_app_exception_after_start(server, http_impl):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/streamed":
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    with server(app) as srv:
        with srv.connect() as sock:
            # The head was still held back: a 500 replaces it.
            assert request(sock, get("/")).status == 500
        with srv.connect() as sock:
            reader = Reader(sock)
            sock.sendall(get("/streamed"))
            resp = read_head(reader)
            assert resp.status == 200 and resp.header(b"transfer-encoding") == b"chunked"
            rest = reader.read_to_eof()
            assert rest == b"7\r\npartial\r\n"  # no last chunk: visibly truncated
        with srv.connect() as sock, pytest.raises(h11.RemoteProtocolError):
            H11Client(sock).request("GET", "/streamed")


def test_app_returns_without_response(server, http_impl, caplog):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["path"] == "/started":
            await send({"type": "http.response.start", "status": 200, "headers": []})

    with server(app) as srv:
        for path in ("/", "/started"):
            with srv.connect() as sock:
                reader = Reader(sock)
                sock.sendall(get(path))
                resp = read_response(reader)
                assert resp.status == 500 and reader.at_eof()
    messages = [r.getMessage() for r in caplog.records]
    assert "ASGI callable returned without starting response." in messages
    assert "ASGI callable returned without completing response." in messages


BAD_MESSAGES = {
    "status-str": [{"type": "http.response.start", "status": "200"}],
    "status-1xx": [{"type": "http.response.start", "status": 100}],
    "status-600": [{"type": "http.response.start", "status": 600}],
    "status-bool": [{"type": "http.response.start", "status": True}],
    "header-crlf": [{"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"b\r\nx-evil: 1")]}],
    "header-lf": [{"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"b\nc")]}],
    "header-name": [{"type": "http.response.start", "status": 200, "headers": [(b"x a", b"b")]}],
    "header-str": [{"type": "http.response.start", "status": 200, "headers": [("x-a", "b")]}],
    "header-shape": [{"type": "http.response.start", "status": 200, "headers": [(b"x-a",)]}],
    "content-length": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"-1")]}
    ],
    "two-content-lengths": [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"1"), (b"content-length", b"1")],
        }
    ],
    "wrong-type": [{"type": "http.response.bodyx"}],
    "no-type": [{"status": 200}],
    "body-first": [{"type": "http.response.body", "body": b""}],
    "start-twice": [
        {"type": "http.response.start", "status": 200},
        {"type": "http.response.start", "status": 200},
    ],
    "body-not-bytes": [
        {"type": "http.response.start", "status": 200},
        {"type": "http.response.body", "body": "x"},
    ],
}


@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
def test_invalid_asgi_messages_raise_in_send(server, http_impl, case):
    raised: list[BaseException] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        messages = BAD_MESSAGES[case]
        for message in messages[:-1]:
            await send(message)
        try:
            await send(messages[-1])
        except ASGIMessageError as exc:
            raised.append(exc)
            raise

    with server(app) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.status == 500  # nothing valid was sent: a 500 replaces it
        assert b"evil" not in resp.raw_head
    assert len(raised) == 1 and isinstance(raised[0], RuntimeError)


def test_message_after_completion_raises(server, http_impl):
    raised: list[BaseException] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await respond(send, b"ok")
        for message in (
            {"type": "http.response.body", "body": b"more"},
            {"type": "http.response.start", "status": 200},
        ):
            try:
                await send(message)
            except ASGIMessageError as exc:
                raised.append(exc)

    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/") + get("/"))
        assert read_response(reader).body == b"ok"
        assert read_response(reader).body == b"ok"  # nothing stray in between
    assert len(raised) == 4 and all("after response already completed" in str(e) for e in raised)


def test_date_and_server_headers(server, http_impl):
    with server(simple_app()) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.get(b"server") == [b"monoceros"] and len(resp.get(b"date")) == 1
    with server(simple_app(), server_header=False, date_header=False) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.get(b"server") == [] and resp.get(b"date") == []


def test_custom_default_headers_and_app_override(server, http_impl):
    app = simple_app(headers=[(b"Server", b"my-app"), (b"x-own", b"1")])
    with server(app, headers=[("X-A", "b")]) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.get(b"x-a") == [b"b"] and resp.get(b"x-own") == [b"1"]
        assert resp.get(b"server") == [b"my-app"]  # the app's replaces ours
        assert len(resp.get(b"date")) == 1
    with server(simple_app(), headers=[("X-A", "b")], server_header=False) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.get(b"x-a") == [b"b"] and resp.get(b"server") == []


def test_app_transfer_encoding_is_replaced_by_ours(server, http_impl):
    app = simple_app(headers=[(b"transfer-encoding", b"chunked")], chunks=[b"ab"])
    with server(app) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.get(b"transfer-encoding") == [b"chunked"] and resp.body == b"ab"
    app = simple_app(headers=[(b"transfer-encoding", b"chunked")], body=b"whole")
    with server(app) as srv, srv.connect() as sock:
        resp = request(sock, get("/"))
        assert resp.get(b"transfer-encoding") == [] and resp.body == b"whole"


# -- the scope ----------------------------------------------------------------------------


def test_http_scope(server, http_impl):
    scopes: list[Any] = []
    with server(echo_app_factory(scopes)) as srv, srv.connect() as sock:
        sock.sendall(
            b"GET /caf%C3%A9/a%20b%2Fc?x=%20y&x=2 HTTP/1.1\r\nHost: test:99\r\n"
            b"X-Dup: 1\r\nAccept: */*\r\nx-dup: 2\r\n\r\n"
        )
        read_response(Reader(sock))
        client_port = sock.getsockname()[1]
    scope = scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/a b/c"
    assert scope["raw_path"] == b"/caf%C3%A9/a%20b%2Fc"
    assert scope["query_string"] == b"x=%20y&x=2"
    assert scope["root_path"] == ""
    assert list(scope["headers"]) == [
        (b"host", b"test:99"),
        (b"x-dup", b"1"),
        (b"accept", b"*/*"),
        (b"x-dup", b"2"),
    ]
    assert tuple(scope["client"]) == ("127.0.0.1", client_port)
    assert tuple(scope["server"]) == ("127.0.0.1", srv.port)
    assert scope["state"] == {}


def test_scope_absolute_form_and_http10(server, http_impl):
    scopes: list[Any] = []
    with server(echo_app_factory(scopes)) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n")
        read_response(reader)
        sock.sendall(b"POST /ten HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
        assert read_response(reader).body == b"hi"
    assert (scopes[0]["path"], scopes[0]["query_string"]) == ("/p", b"q")
    assert (scopes[1]["http_version"], scopes[1]["method"]) == ("1.0", "POST")


def test_root_path(server, http_impl):
    scopes: list[Any] = []
    with server(echo_app_factory(scopes), root_path="/api") as srv, srv.connect() as sock:
        request(sock, get("/items?x=1"))
    assert scopes[0]["root_path"] == "/api"
    assert scopes[0]["path"] == "/api/items"  # uvicorn >= 0.26: path includes root_path
    assert scopes[0]["raw_path"] == b"/items"


def test_scope_state_is_a_copy_of_the_lifespan_state(server, http_impl):
    seen: list[dict[str, Any]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["db"] = "connected"
                    scope["state"]["items"] = []
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        seen.append(dict(scope["state"]))
        scope["state"]["request_only"] = True  # must not leak to the next request
        scope["state"]["items"].append(1)  # shallow copy: the same list, as in uvicorn
        await respond(send, b"ok")

    with server(app, lifespan="on") as srv, srv.connect() as sock:
        reader = Reader(sock)
        for _ in range(2):
            sock.sendall(get("/"))
            read_response(reader)
    assert seen[0] == {"db": "connected", "items": [1, 1]}
    assert seen[1] == {"db": "connected", "items": [1, 1]}
    assert "request_only" not in seen[1]
