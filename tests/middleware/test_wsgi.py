"""WSGIMiddleware in memory: environ, streaming both ways, PEP 3333 edge cases."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from flask import Flask, Response, request, stream_with_context

from monoceros.errors import ClientDisconnected, ConfigError, LocalProtocolError, MonocerosError
from monoceros.middleware import WSGIMiddleware
from monoceros.middleware._asgi import Message, Scope
from monoceros.middleware.wsgi import _SEND, _Request, build_environ

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def make_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(overrides)
    return scope


def body_messages(*chunks: bytes) -> list[Message]:
    """``http.request`` messages carrying ``chunks`` (one empty one if none)."""
    if not chunks:
        return [{"type": "http.request", "body": b"", "more_body": False}]
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


class Client:
    """Fake ASGI server side: scripted ``receive`` messages, recorded ``send``."""

    def __init__(self, messages: list[Message] | None = None) -> None:
        self.messages = list(messages if messages is not None else body_messages())
        self.received = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.received += 1
        if self.messages:
            return self.messages.pop(0)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        assert self.sent[0]["type"] == "http.response.start"
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        assert self.sent[-1] == {
            "type": "http.response.body",
            "body": self.sent[-1]["body"],
            "more_body": False,
        }
        return b"".join(m["body"] for m in self.sent[1:])


def call(app: WSGIApp, scope: Scope | None = None, client: Client | None = None, workers: int = 2) -> Client:
    """Run one request through a fresh middleware; always shut its pool down."""
    client = client or Client()
    middleware = WSGIMiddleware(app, workers=workers)
    try:
        asyncio.run(middleware(scope or make_scope(), client.receive, client.send))
    finally:
        middleware.shutdown()
    return client


def hello_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


def capture_environ(**scope: Any) -> dict[str, Any]:
    captured: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        captured.update(environ)
        start_response("204 No Content", [])
        return []

    call(app, make_scope(**scope))
    return captured


# -- environ -------------------------------------------------------------------


def test_environ_basics() -> None:
    environ = capture_environ(
        method="POST",
        http_version="1.0",
        scheme="https",
        path="/items/42",
        raw_path=b"/items/42",
        query_string=b"a=1&b=%20x",
        headers=[
            (b"host", b"example.com"),
            (b"content-type", b"application/json"),
            (b"content-length", b"12"),
            (b"accept", b"text/html"),
            (b"accept", b"application/json"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"x-custom-header", b"caf\xe9"),
            (b"x_forwarded_for", b"6.6.6.6"),  # underscore: dropped
        ],
        client=("192.0.2.1", 4321),
        server=("10.0.0.1", 8443),
    )
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/items/42"
    assert environ["QUERY_STRING"] == "a=1&b=%20x"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "12"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ
    assert environ["HTTP_HOST"] == "example.com"
    assert environ["HTTP_ACCEPT"] == "text/html,application/json"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_X_CUSTOM_HEADER"] == "caf\xe9"
    assert "HTTP_X_FORWARDED_FOR" not in environ
    assert environ["SERVER_NAME"] == "10.0.0.1"
    assert environ["SERVER_PORT"] == "8443"
    assert environ["REMOTE_ADDR"] == "192.0.2.1"
    assert environ["REMOTE_PORT"] == "4321"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["wsgi.errors"] is sys.stderr
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is True
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    assert hasattr(environ["wsgi.input"], "read")
    for key, value in environ.items():
        if key.isupper():
            assert type(value) is str, key  # PEP 3333: native strings only


def test_environ_minimal_scope() -> None:
    environ = build_environ({"type": "http", "method": "GET", "path": "/x"}, None)
    assert environ["PATH_INFO"] == "/x"
    assert environ["QUERY_STRING"] == ""
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.url_scheme"] == "http"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", "80")
    assert "REMOTE_ADDR" not in environ
    assert "CONTENT_TYPE" not in environ
    assert "CONTENT_LENGTH" not in environ


def test_environ_multiprocess_flag() -> None:
    environ = build_environ(make_scope(), None, multiprocess=False)
    assert environ["wsgi.multiprocess"] is False


@pytest.mark.parametrize(
    ("path", "raw_path", "root_path", "script_name", "path_info"),
    [
        ("/", b"/", "", "", "/"),
        ("/a b", b"/a%20b", "", "", "/a b"),
        # Bytes that are not UTF-8 reach the app unchanged, as latin-1.
        ("/\ufffd", b"/%FF", "", "", "/\xff"),
        # UTF-8 as latin-1 per PEP 3333.
        ("/caf\xe9", b"/caf%C3%A9", "", "", "/caf\xc3\xa9"),
        # %2F decodes to a slash, as in every WSGI server.
        ("/a/b", b"/a%2Fb", "", "", "/a/b"),
        # No raw_path: fall back to the decoded path.
        ("/caf\xe9", None, "", "", "/caf\xc3\xa9"),
        # A defensive split should a server leave the query in raw_path.
        ("/q", b"/q?x=1", "", "", "/q"),
        # root_path is split off into SCRIPT_NAME, at a segment boundary only.
        ("/api/users", b"/api/users", "/api", "/api", "/users"),
        ("/api", b"/api", "/api", "/api", ""),
        ("/apiary", b"/apiary", "/api", "/api", "/apiary"),
        ("/api/users", b"/api/users", "/api/", "/api", "/users"),
        ("/x", b"/x", "/", "", "/x"),
        # A proxy stripped the prefix before us: raw_path lacks it.
        ("/api/users", b"/users", "/api", "/api", "/users"),
        ("/caf\xe9/x", b"/caf%C3%A9/x", "/caf\xe9", "/caf\xc3\xa9", "/x"),
    ],
)
def test_environ_paths(
    path: str, raw_path: bytes | None, root_path: str, script_name: str, path_info: str
) -> None:
    environ = build_environ(make_scope(path=path, raw_path=raw_path, root_path=root_path), None)
    assert environ["SCRIPT_NAME"] == script_name
    assert environ["PATH_INFO"] == path_info


@pytest.mark.parametrize(
    ("server", "host", "scheme", "expected"),
    [
        (("10.0.0.1", 8000), "example.com", "http", ("10.0.0.1", "8000")),
        (None, "example.com:8080", "http", ("example.com", "8080")),
        (None, "example.com", "http", ("example.com", "80")),
        (None, "example.com", "https", ("example.com", "443")),
        (None, "[::1]:8000", "http", ("[::1]", "8000")),
        (None, "[::1]", "https", ("[::1]", "443")),
        (None, "example.com:", "http", ("example.com:", "80")),
        (None, None, "http", ("localhost", "80")),
        (None, None, "https", ("localhost", "443")),
        # Unix sockets: no TCP port, whichever way the server spells it.
        (("/tmp/app.sock", None), "example.com:81", "http", ("example.com", "81")),
        (("/tmp/app.sock", 0), None, "http", ("localhost", "80")),
    ],
)
def test_environ_server_name(server: Any, host: str | None, scheme: str, expected: tuple[str, str]) -> None:
    headers = [] if host is None else [(b"host", host.encode())]
    environ = build_environ(make_scope(server=server, headers=headers, scheme=scheme), None)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == expected


# -- responses -----------------------------------------------------------------


def test_hello() -> None:
    client = call(hello_app)
    assert client.status == 200
    assert client.headers == [(b"content-type", b"text/plain")]
    # A single-chunk list is one message with more_body=False (the server can
    # then frame it with Content-Length).
    assert client.sent[1:] == [{"type": "http.response.body", "body": b"Hello, world!", "more_body": False}]
    assert client.received == 0  # the body was never asked for


@pytest.mark.parametrize(
    ("chunks", "bodies"),
    [
        ([], [(b"", False)]),
        ([b""], [(b"", False)]),
        ((b"a", b"", b"b"), [(b"a", True), (b"b", False)]),
        ([b"a", b"b", b""], [(b"a", True), (b"b", False)]),
        ([bytearray(b"a"), memoryview(b"b")], [(b"a", True), (b"b", False)]),
    ],
)
def test_sequence_bodies(chunks: Any, bodies: list[tuple[bytes, bool]]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        return chunks

    client = call(app)
    assert [(m["body"], m["more_body"]) for m in client.sent[1:]] == bodies
    assert all(type(m["body"]) is bytes for m in client.sent[1:])


def test_generator_body_and_lazy_start() -> None:
    log: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes | bytearray]:
        start_response("201 Created", [("X-A", "1")])
        log.append("start_response returned")
        yield b""
        yield b"one"
        yield bytearray(b"two")
        yield b""

    client = Client()

    async def send(message: Message) -> None:
        log.append(message["type"])
        client.sent.append(message)

    client.send = send  # type: ignore[method-assign]
    call(app, client=client)
    # Headers wait for the first non-empty chunk; empty chunks are not sent.
    assert log == [
        "start_response returned",
        "http.response.start",
        "http.response.body",
        "http.response.body",
        "http.response.body",
    ]
    assert client.status == 201
    assert client.headers == [(b"x-a", b"1")]
    assert [(m["body"], m["more_body"]) for m in client.sent[1:]] == [
        (b"one", True),
        (b"two", True),
        (b"", False),
    ]


def test_empty_generator_sends_headers_at_the_end() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("304 Not Modified", [("ETag", '"x"')])
        yield from ()

    client = call(app)
    assert client.status == 304
    assert client.sent[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]


def test_status_without_reason_is_accepted() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("418", [])
        return [b"teapot"]

    assert call(app).status == 418


def test_head_is_an_ordinary_method() -> None:
    client = call(hello_app, make_scope(method="HEAD"))
    assert client.status == 200
    assert client.body == b"Hello, world!"  # the server drops it


def test_write_callable() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"")  # forces the headers out, sends no body message
        write(b"legacy ")
        write(bytearray(b"write"))
        return [b"!"]

    client = call(app)
    assert client.status == 200
    assert [(m["body"], m["more_body"]) for m in client.sent[1:]] == [
        (b"legacy ", True),
        (b"write", True),
        (b"!", False),
    ]


def test_response_backpressure() -> None:
    """The worker thread waits for each send: a slow client slows the app."""
    progress: list[str] = []
    snapshots: list[list[str]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        for i in range(3):
            progress.append(f"produced {i}")
            yield b"chunk %d" % i

    client = Client()

    async def slow_send(message: Message) -> None:
        client.sent.append(message)
        if message.get("body", b"").startswith(b"chunk"):
            await asyncio.sleep(0.05)  # the network is slow...
            snapshots.append(list(progress))  # ...and the app has not moved on

    client.send = slow_send  # type: ignore[method-assign]
    call(app, client=client)
    assert snapshots == [
        ["produced 0"],
        ["produced 0", "produced 1"],
        ["produced 0", "produced 1", "produced 2"],
    ]
    assert client.body == b"chunk 0chunk 1chunk 2"


def test_large_streamed_response_in_order() -> None:
    chunk = b"x" * 65536

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        for i in range(64):
            yield bytes([i % 256]) + chunk

    client = call(app)
    bodies = [m["body"] for m in client.sent[1:-1]]
    assert len(bodies) == 64
    assert [b[0] for b in bodies] == [i % 256 for i in range(64)]


# -- request body streaming ----------------------------------------------------


def test_request_body_is_pulled_on_demand() -> None:
    """A big upload flows through wsgi.input chunk by chunk, never whole."""
    chunk_size, count = 64 * 1024, 32
    events: list[str] = []
    buffered: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        total = 0
        while data := stream.read(chunk_size):
            events.append(f"app read {total // chunk_size}")
            buffered.append(len(stream._buffer))
            total += len(data)
            if total == chunk_size:
                first_read.set()
        start_response("200 OK", [])
        return [str(total).encode()]

    first_read = threading.Event()
    pulled = 0

    async def main() -> Client:
        client = Client([])

        async def receive() -> Message:
            nonlocal pulled
            if pulled == 1:
                # The app must consume chunk 0 before chunk 1 even exists; a
                # middleware that buffered the body first would time out here.
                for _ in range(500):
                    if first_read.is_set():
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the app did not get the first chunk before the rest was sent")
            events.append(f"pulled {pulled}")
            pulled += 1
            return {"type": "http.request", "body": b"z" * chunk_size, "more_body": pulled < count}

        middleware = WSGIMiddleware(app, workers=1)
        try:
            await middleware(make_scope(method="POST"), receive, client.send)
        finally:
            middleware.shutdown()
        return client

    client = asyncio.run(main())
    assert client.body == str(chunk_size * count).encode()
    # Strict alternation: one chunk pulled, one chunk consumed.
    expected: list[str] = []
    for i in range(count):
        expected += [f"pulled {i}", f"app read {i}"]
    assert events == expected
    assert max(buffered) == 0  # nothing held beyond what was handed over


def run_input(chunks: list[bytes], use: Callable[[Any], Any]) -> tuple[Any, Client]:
    """Run ``use(wsgi.input)`` in the worker thread with the body in ``chunks``."""
    result: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        result.append(use(environ["wsgi.input"]))
        start_response("200 OK", [])
        return []

    client = call(app, make_scope(method="POST"), Client(body_messages(*chunks)))
    return result[0], client


CHUNKS = [b"line one\nline", b"", b" two\n", b"three\nfour"]


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        (lambda s: s.read(), b"line one\nline two\nthree\nfour"),
        (lambda s: s.read(-1), b"line one\nline two\nthree\nfour"),
        (lambda s: s.read(None), b"line one\nline two\nthree\nfour"),
        (lambda s: [s.read(4), s.read(0), s.read(10), s.read(100), s.read(5), s.read()], None),
        (lambda s: s.readline(), b"line one\n"),
        (lambda s: [s.readline(), s.readline(), s.readline(), s.readline(), s.readline()], None),
        (lambda s: [s.readline(4), s.readline(100), s.readline(0), s.readline(None)], None),
        (lambda s: [s.readline(9), s.readline(9)], [b"line one\n", b"line two\n"]),
        (lambda s: s.readlines(), [b"line one\n", b"line two\n", b"three\n", b"four"]),
        (lambda s: s.readlines(-1), [b"line one\n", b"line two\n", b"three\n", b"four"]),
        (lambda s: s.readlines(None), [b"line one\n", b"line two\n", b"three\n", b"four"]),
        (lambda s: s.readlines(10), [b"line one\n", b"line two\n"]),
        (lambda s: s.readlines(1), [b"line one\n"]),
        (lambda s: list(s), [b"line one\n", b"line two\n", b"three\n", b"four"]),
        (lambda s: [s.read(5), s.readline(), s.read(3), list(iter(s))], None),
    ],
)
def test_input_stream_methods(use: Callable[[Any], Any], expected: Any) -> None:
    result, _ = run_input(CHUNKS, use)
    if expected is None:  # compare with the same calls on an in-memory file
        import io

        expected = use(io.BytesIO(b"".join(CHUNKS)))
    assert result == expected


def test_input_readinto_returns_what_one_chunk_has() -> None:
    def use(stream: Any) -> list[Any]:
        out = []
        buffer = bytearray(8)
        while n := stream.readinto(buffer):
            out.append(bytes(buffer[:n]))
        view = memoryview(bytearray(4))
        out.append(stream.readinto(view))
        return out

    result, _ = run_input([b"abc", b"", b"defghijklmn"], use)
    assert result == [b"abc", b"defghijk", b"lmn", 0]


def test_input_read_after_end_does_not_receive_again() -> None:
    result, client = run_input([b"ab"], lambda s: [s.read(), s.read(), s.read(3), s.readline()])
    assert result == [b"ab", b"", b"", b""]
    assert client.received == 1


def test_empty_request_body() -> None:
    result, client = run_input([], lambda s: [s.read(), s.readline(), list(s)])
    assert result == [b"", b"", []]
    assert client.received == 1


def test_unexpected_message_while_reading_body() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read()
        raise AssertionError("unreachable")

    with pytest.raises(MonocerosError, match=r"unexpected ASGI message 'websocket\.receive'"):
        call(app, client=Client([{"type": "websocket.receive"}]))


# -- disconnects ---------------------------------------------------------------


def test_disconnect_while_reading_body_ends_quietly() -> None:
    errors: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        try:
            stream.read()
        except OSError as exc:
            errors.append(exc)
        try:
            stream.read(100)  # remembered: receive is not called again
        except OSError as exc:
            errors.append(exc)
        raise errors[0]

    client = call(app, client=Client([*body_messages(b"part", b"more")[:1], {"type": "http.disconnect"}]))
    assert [type(e) for e in errors] == [ClientDisconnected, ClientDisconnected]
    assert client.received == 2
    assert client.sent == []


def test_disconnect_then_app_answers_anyway() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"sorry"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected:
            start_response("400 Bad Request", [])
        return Body()

    client = call(app, client=Client([{"type": "http.disconnect"}]))
    assert client.sent == []  # nobody to send to
    assert closed == [True]


def test_send_failure_stops_iteration_and_closes() -> None:
    produced: list[int] = []
    finalized: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for i in range(10):
                produced.append(i)
                yield b"%d" % i
        finally:
            finalized.append(True)  # generator.close() ran

    client = Client()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"] == b"1":
            raise ClientDisconnected("gone")
        client.sent.append(message)

    client.send = send  # type: ignore[method-assign]
    call(app, client=client)
    assert produced == [0, 1]
    assert finalized == [True]
    assert [m.get("body") for m in client.sent] == [None, b"0"]


def test_send_failure_of_the_headers() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"a", b"b"]

    async def send(message: Message) -> None:
        raise OSError("connection reset")

    client = Client()
    client.send = send  # type: ignore[method-assign]
    call(app, client=client)
    assert client.sent == []


def test_write_after_disconnect_raises() -> None:
    attempts: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        for i in range(5):
            attempts.append(i)
            write(b"data")
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ClientDisconnected("gone")

    client = Client()
    client.send = send  # type: ignore[method-assign]
    call(app, client=client)
    assert attempts == [0]


def test_os_error_without_disconnect_propagates() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise FileNotFoundError("missing template")

    with pytest.raises(FileNotFoundError, match="missing template"):
        call(app)


def test_other_send_errors_reach_the_app_and_propagate() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"x"

    async def send(message: Message) -> None:
        raise LocalProtocolError("bad message")

    client = Client()
    client.send = send  # type: ignore[method-assign]
    with pytest.raises(LocalProtocolError, match="bad message"):
        call(app, client=client)


# -- errors, exc_info, close() -------------------------------------------------


class TrackedBody:
    """An app iterable that records ``close()``; raises after ``fail_after`` chunks."""

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_after:
                raise ValueError("boom in iteration")
            yield chunk

    def close(self) -> None:
        self.closed += 1


def test_close_called_on_success() -> None:
    body = TrackedBody([b"a", b"b"])

    def app(environ: dict[str, Any], start_response: Any) -> TrackedBody:
        start_response("200 OK", [])
        return body

    assert call(app).body == b"ab"
    assert body.closed == 1


def test_error_before_response_start_propagates() -> None:
    body = TrackedBody([b"a"], fail_after=0)

    def app(environ: dict[str, Any], start_response: Any) -> TrackedBody:
        start_response("200 OK", [])  # stored, not sent yet
        return body

    client = Client()
    with pytest.raises(ValueError, match="boom in iteration"):
        call(app, client=client)
    assert client.sent == []  # the server will answer 500
    assert body.closed == 1


def test_error_in_app_call_propagates() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("no iterable at all")

    with pytest.raises(KeyError, match="no iterable at all"):
        call(app)


def test_error_after_response_start_propagates() -> None:
    body = TrackedBody([b"a", b"b", b"c"], fail_after=2)

    def app(environ: dict[str, Any], start_response: Any) -> TrackedBody:
        start_response("200 OK", [])
        return body

    client = Client()
    with pytest.raises(ValueError, match="boom in iteration") as info:
        call(app, client=client)
    assert [m.get("body") for m in client.sent] == [None, b"a", b"b"]  # the server will abort
    assert body.closed == 1
    assert any(frame.name == "__iter__" for frame in __import__("traceback").extract_tb(info.tb))


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_base_exceptions_do_not_escape_as_such(exc_type: type[BaseException]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise exc_type()

    with pytest.raises(MonocerosError, match=f"raised {exc_type.__name__}") as info:
        call(app)
    assert type(info.value.__cause__) is exc_type


def test_exc_info_before_headers_sent_replaces_the_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/html")])
        try:
            raise ValueError("handled")
        except ValueError:
            start_response("500 Internal Server Error", [("content-type", "text/plain")], sys.exc_info())
        return [b"error page"]

    client = call(app)
    assert client.status == 500
    assert client.headers == [(b"content-type", b"text/plain")]
    assert client.body == b"error page"


def test_exc_info_after_headers_sent_reraises() -> None:
    closed: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"partial"
            try:
                raise ValueError("too late")
            except ValueError:
                start_response("500 Internal Server Error", [], sys.exc_info())
            yield b"never"  # pragma: no cover
        finally:
            closed.append(True)

    client = Client()
    with pytest.raises(ValueError, match="too late"):
        call(app, client=client)
    assert [m.get("body") for m in client.sent] == [None, b"partial"]
    assert closed == [True]


def test_exc_info_without_exception_counts_as_absent() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [], (None, None, None))
        start_response("200 OK", [], (None, None, None))
        raise AssertionError("unreachable")

    with pytest.raises(LocalProtocolError, match="second time without exc_info"):
        call(app)


def test_second_start_response_without_exc_info() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        raise AssertionError("unreachable")

    with pytest.raises(LocalProtocolError, match="second time"):
        call(app)


@pytest.mark.parametrize(
    "status", ["OK", "20 OK", "200OK", "2000 OK", "abc OK", "\u0662\u0660\u0660 OK", 200, b"200 OK"]
)
def test_invalid_status(status: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [])
        raise AssertionError("unreachable")

    with pytest.raises(LocalProtocolError, match="invalid WSGI status"):
        call(app)


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ([("a", "1", "x")], "expected"),
        (["ab"], "expected"),
        ([["a", "1"]], "expected"),
        ([(b"a", "1")], "expected"),
        ([("a", 1)], "expected"),
        ([("a", "\u20ac")], "not latin-1"),
    ],
)
def test_invalid_headers(headers: Any, match: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", headers)
        raise AssertionError("unreachable")

    with pytest.raises(LocalProtocolError, match=match):
        call(app)


def test_invalid_status_keeps_previous_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("a", "1")])
        try:
            raise ValueError("x")
        except ValueError:
            with contextlib.suppress(LocalProtocolError):
                start_response("bad", [("b", "2")], sys.exc_info())
        return [b"ok"]

    client = call(app)
    assert client.status == 200
    assert client.headers == [(b"a", b"1")]


@pytest.mark.parametrize("chunk", ["text", 42, None])
def test_body_chunks_must_be_bytes(chunk: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[Any]:
        start_response("200 OK", [])
        yield chunk

    with pytest.raises(LocalProtocolError, match="must be bytes"):
        call(app)


def test_write_requires_bytes() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])("text")
        raise AssertionError("unreachable")

    with pytest.raises(LocalProtocolError, match="must be bytes"):
        call(app)


@pytest.mark.parametrize("body", [[], [b"x"], iter([b"x"])])
def test_body_without_start_response(body: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return body

    with pytest.raises(LocalProtocolError, match="before calling start_response"):
        call(app)


# -- cancellation, loop shutdown -----------------------------------------------


def test_cancelled_request_releases_the_worker() -> None:
    body = TrackedBody([b"first", b"second", b"third"])

    def app(environ: dict[str, Any], start_response: Any) -> TrackedBody:
        start_response("200 OK", [])
        return body

    middleware = WSGIMiddleware(app, workers=1)

    async def main() -> None:
        sending = asyncio.Event()

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                sending.set()
                await asyncio.sleep(3600)  # a client that never reads

        task = asyncio.create_task(middleware(make_scope(), Client().receive, send))
        await sending.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    finally:
        middleware.shutdown()  # returns: the worker thread was released
    assert body.closed == 1


def test_cancelled_while_the_app_computes() -> None:
    computing = threading.Event()
    release = threading.Event()
    body = TrackedBody([b"late"])

    def app(environ: dict[str, Any], start_response: Any) -> TrackedBody:
        computing.set()
        release.wait(10)  # the request is cancelled meanwhile
        start_response("200 OK", [])
        return body

    middleware = WSGIMiddleware(app, workers=1)
    client = Client()

    async def main() -> None:
        task = asyncio.create_task(middleware(make_scope(), client.receive, client.send))
        while not computing.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()

    try:
        asyncio.run(main())
    finally:
        middleware.shutdown()
    assert client.sent == []  # its first send found the request gone
    assert body.closed == 1


def test_cancelled_before_the_worker_started() -> None:
    started: list[str] = []
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        started.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/busy":
            release.wait(10)
        start_response("200 OK", [])
        return [b""]

    middleware = WSGIMiddleware(app, workers=1)

    async def main() -> None:
        client = Client()
        busy = asyncio.create_task(
            middleware(make_scope(path="/busy", raw_path=b"/busy"), client.receive, client.send)
        )
        while not started:
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(
            middleware(make_scope(path="/queued", raw_path=b"/queued"), client.receive, client.send)
        )
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        await busy

    try:
        asyncio.run(main())
    finally:
        middleware.shutdown()
    assert started == ["/busy"]  # the cancelled request never ran the app


def test_worker_outliving_the_event_loop() -> None:
    holder: list[_Request] = []
    ran: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        ran.append(True)
        start_response("200 OK", [])
        return [b"x"]

    async def make() -> None:
        client = Client()
        holder.append(_Request(app, make_scope(), client.receive, client.send, True))

    asyncio.run(make())  # the loop is closed afterwards
    request = holder[0]
    with pytest.raises(ClientDisconnected, match="server stopped"):
        request.call(_SEND, {"type": "http.response.body"})
    assert request.disconnected
    request.work()  # runs the app; its sends fail quietly; the report is dropped
    assert ran == [True]


def test_submit_after_shutdown_without_lifespan_recreates_pool() -> None:
    middleware = WSGIMiddleware(hello_app, workers=1)
    first = middleware.executor
    assert middleware.executor is first
    middleware.shutdown()
    middleware.shutdown()  # idempotent
    client = Client()
    try:
        asyncio.run(middleware(make_scope(), client.receive, client.send))
        assert middleware.executor is not first
    finally:
        middleware.shutdown()
    assert client.body == b"Hello, world!"


def test_context_variables_reach_the_app() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(var.get())
        start_response("200 OK", [])
        return []

    middleware = WSGIMiddleware(app)

    async def main() -> None:
        var.set("request-42")
        client = Client()
        await middleware(make_scope(), client.receive, client.send)

    try:
        asyncio.run(main())
    finally:
        middleware.shutdown()
    assert seen == ["request-42"]


# -- other scope types ---------------------------------------------------------


def test_lifespan_is_answered_and_shuts_the_pool_down() -> None:
    middleware = WSGIMiddleware(hello_app)
    assert middleware.executor is not None
    client = Client([{"type": "lifespan.startup"}, {"type": "lifespan.other"}, {"type": "lifespan.shutdown"}])
    asyncio.run(middleware({"type": "lifespan"}, client.receive, client.send))
    assert client.sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert middleware._executor is None


def test_websocket_is_refused() -> None:
    client = Client([{"type": "websocket.connect"}])
    middleware = WSGIMiddleware(hello_app)
    asyncio.run(middleware({"type": "websocket"}, client.receive, client.send))
    assert client.sent == [{"type": "websocket.close", "code": 1000}]
    assert middleware._executor is None  # no pool for that


def test_unknown_scope_type() -> None:
    client = Client()
    with pytest.raises(MonocerosError, match="cannot handle ASGI scope type 'telepathy'"):
        asyncio.run(WSGIMiddleware(hello_app)({"type": "telepathy"}, client.receive, client.send))


@pytest.mark.parametrize("workers", [0, -1])
def test_workers_must_be_positive(workers: int) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        WSGIMiddleware(hello_app, workers=workers)


def test_concurrent_requests_share_the_pool() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        barrier.wait()  # three requests must be in the app at the same time
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    middleware = WSGIMiddleware(app, workers=3)

    async def main() -> list[Client]:
        clients = [Client() for _ in range(3)]
        await asyncio.gather(
            *(
                middleware(make_scope(path=f"/{i}", raw_path=f"/{i}".encode()), c.receive, c.send)
                for i, c in enumerate(clients)
            )
        )
        return clients

    try:
        clients = asyncio.run(main())
    finally:
        middleware.shutdown()
    assert [c.body for c in clients] == [b"/0", b"/1", b"/2"]


# -- Flask ---------------------------------------------------------------------


def make_flask_app() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> Any:
        return {
            "args": request.args.to_dict(),
            "url": request.url,
            "remote": request.remote_addr,
            "agent": request.headers.get("User-Agent"),
            "cookies": request.cookies.to_dict(),
        }

    @app.post("/form")
    def form() -> Any:
        return request.form.to_dict()

    @app.post("/json")
    def echo_json() -> Any:
        return {"got": request.get_json()}

    @app.post("/upload")
    def upload() -> Any:
        sizes = []
        while chunk := request.stream.read(100_000):
            sizes.append(len(chunk))
        return {"total": sum(sizes), "reads": len(sizes)}

    @app.get("/stream")
    def stream() -> Response:
        def generate() -> Iterator[str]:
            for i in range(5):
                yield f"{request.args.get('p', '')}{i}\n"

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("boom")

    return app


def flask_call(path: str, method: str = "GET", body: list[bytes] | None = None, **scope: Any) -> Client:
    raw, _, query = path.encode().partition(b"?")
    client = Client(body_messages(*(body or [])))
    return call(
        make_flask_app(),
        make_scope(method=method, path=raw.decode(), raw_path=raw, query_string=query, **scope),
        client,
    )


def test_flask_get() -> None:
    client = flask_call(
        "/app/hello?name=monoceros&x=%C3%A9",
        root_path="/app",
        headers=[
            (b"host", b"example.com"),
            (b"user-agent", b"pytest"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
        ],
        scheme="https",
    )
    assert client.status == 200
    assert json.loads(client.body) == {
        "args": {"name": "monoceros", "x": "\xe9"},
        "url": "https://example.com/app/hello?name=monoceros&x=\xe9",
        "remote": "127.0.0.1",
        "agent": "pytest",
        "cookies": {"a": "1", "b": "2"},
    }


def test_flask_form_and_json() -> None:
    form = flask_call(
        "/form",
        "POST",
        [b"a=1&b=", b"two"],
        headers=[(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"9")],
    )
    assert json.loads(form.body) == {"a": "1", "b": "two"}
    data = flask_call(
        "/json", "POST", [b'{"k": ', b"[1, 2]}"], headers=[(b"content-type", b"application/json")]
    )
    assert json.loads(data.body) == {"got": {"k": [1, 2]}}


def test_flask_chunked_upload_streams() -> None:
    # No Content-Length (a chunked upload): wsgi.input_terminated lets Flask
    # read to the end of the stream.
    chunks = [b"x" * 30_000] * 20
    client = flask_call("/upload", "POST", chunks, headers=[(b"content-type", b"application/octet-stream")])
    assert json.loads(client.body) == {"total": 600_000, "reads": 6}


def test_flask_streaming_response() -> None:
    client = flask_call("/stream?p=n")
    assert client.status == 200
    assert (b"content-type", b"text/plain; charset=utf-8") in client.headers
    assert [m["body"] for m in client.sent[1:]] == [b"n0\n", b"n1\n", b"n2\n", b"n3\n", b"n4\n", b""]


def test_flask_not_found_and_error() -> None:
    assert flask_call("/nope").status == 404
    # Flask turns its own exceptions into a 500 page: nothing propagates.
    assert flask_call("/boom").status == 500
