"""A refusal reaches the client even while it is still sending (lingering close).

Closing a socket with unread request bytes makes the kernel send a reset,
which can destroy the refusal before the client reads it; the server sends
FIN after its answer and reads and drops what still comes instead.
"""

from __future__ import annotations

import socket

from monoceros._types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_413_survives_a_body_still_being_sent(server, http_impl):
    with server(app, limit_request_body=1024, lifespan="off") as srv, srv.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n")
        # The server has refused by now; the body keeps coming regardless.
        for _ in range(50):
            sock.sendall(b"x" * 10000)
        data = read_all(sock)  # a reset here would raise ConnectionResetError
        assert data.startswith(b"HTTP/1.1 413 "), data[:80]
        assert b"\r\nconnection: close\r\n" in data and data.endswith(b"\r\n\r\nRequest Entity Too Large")


def test_400_survives_a_pipelined_flood(server, http_impl):
    with server(app, lifespan="off") as srv, srv.connect() as sock:
        bad = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        sock.sendall(bad + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
        data = read_all(sock)
        assert data.startswith(b"HTTP/1.1 400 ")
        assert data.count(b"HTTP/1.1") == 1  # nothing after the refusal is answered
