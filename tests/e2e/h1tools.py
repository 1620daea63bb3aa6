"""Helpers for the HTTP/1.1 end-to-end tests: a raw response reader, an h11
client over a plain socket, and a thread-safe event apps can await.

The reader parses responses itself (not through an HTTP library) so that the
tests see exactly the bytes the server wrote: duplicate headers, framing,
bytes after the end of a response.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field

import h11


class Reader:
    """Buffered reads from a socket, with EOF made explicit."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._fill():
                raise EOFError(f"EOF before {marker!r}; got {self.buf!r}")
        head, _, self.buf = self.buf.partition(marker)
        return head + marker

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"EOF after {len(self.buf)} of {n} bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data

    def at_eof(self) -> bool:
        """True if the peer closed the connection and nothing is left."""
        return not self.buf and not self._fill()


@dataclass
class Response:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    raw_head: bytes = b""
    framing: str = ""  # "length", "chunked", "close", "none"
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def get(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name.lower()]

    def header(self, name: bytes) -> bytes | None:
        values = self.get(name)
        assert len(values) <= 1, f"{name!r} appears {len(values)} times: {self.headers}"
        return values[0] if values else None


def read_head(reader: Reader) -> Response:
    raw = reader.read_until(b"\r\n\r\n")
    lines = raw[:-4].split(b"\r\n")
    version, status, *reason = lines[0].split(b" ", 2)
    assert version == b"HTTP/1.1", lines[0]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        assert name and name == name.strip(), line
        headers.append((name.lower(), value.strip()))
    return Response(int(status), reason[0] if reason else b"", headers, raw_head=raw)


def read_response(reader: Reader, method: bytes = b"GET") -> Response:
    """One complete response (informational ones are returned too)."""
    resp = read_head(reader)
    if method == b"HEAD" or resp.status in (204, 304) or resp.status < 200:
        resp.framing = "none"
        return resp
    te = resp.header(b"transfer-encoding")
    length = resp.header(b"content-length")
    if te is not None:
        assert te == b"chunked" and length is None, resp.headers
        resp.framing = "chunked"
        parts = []
        while True:
            size = int(reader.read_until(b"\r\n")[:-2], 16)
            if size == 0:
                break
            parts.append(reader.read_exact(size))
            assert reader.read_exact(2) == b"\r\n"
        while (line := reader.read_until(b"\r\n")) != b"\r\n":
            name, _, value = line[:-2].partition(b":")
            resp.trailers.append((name.lower(), value.strip()))
        resp.body = b"".join(parts)
    elif length is not None:
        resp.framing = "length"
        resp.body = reader.read_exact(int(length))
    else:
        resp.framing = "close"
        resp.body = reader.read_to_eof()
    return resp


def request(sock: socket.socket, data: bytes, method: bytes = b"GET") -> Response:
    """Send ``data`` and read one response (a fresh reader: nothing may be left over)."""
    sock.sendall(data)
    return read_response(Reader(sock), method)


def get(path: str = "/", headers: str = "", version: str = "1.1", method: str = "GET") -> bytes:
    host = "Host: test\r\n" if version == "1.1" else ""
    return f"{method} {path} HTTP/{version}\r\n{host}{headers}\r\n".encode()


class H11Client:
    """The h11 library as a client over a raw socket: a strict check of our framing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conn = h11.Connection(h11.CLIENT)

    def _next(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
                continue
            return event  # type: ignore[return-value]

    def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | list[bytes] | None = None,
    ) -> tuple[h11.Response, bytes]:
        hdrs = [("Host", "test"), *(headers or [])]
        if isinstance(body, bytes):
            hdrs.append(("Content-Length", str(len(body))))
        elif body is not None:
            hdrs.append(("Transfer-Encoding", "chunked"))
        out = self.conn.send(h11.Request(method=method, target=target, headers=hdrs))
        for part in [body] if isinstance(body, bytes) else body or []:
            out += self.conn.send(h11.Data(data=part))
        out += self.conn.send(h11.EndOfMessage())
        self.sock.sendall(out)
        response = None
        chunks = []
        while True:
            event = self._next()
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("connection closed")
        assert response is not None
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return response, b"".join(chunks)


class ThreadEvent:
    """A ``threading.Event`` that an app can ``await`` without blocking its loop."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float = 10.0) -> bool:
        return self._event.wait(timeout)

    async def wait_async(self, timeout: float = 10.0) -> bool:
        return await asyncio.to_thread(self._event.wait, timeout)


async def read_body(receive) -> bytes:  # type: ignore[no-untyped-def]
    """The whole request body."""
    parts = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        parts.append(message["body"])
        if not message.get("more_body", False):
            return b"".join(parts)


async def respond(send, body: bytes = b"", status: int = 200, headers=None) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})
