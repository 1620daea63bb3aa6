"""A raw WebSocket client on a blocking socket, for the cases a polite client
cannot produce (bad frames, unanswered pings, frames that never get read)."""

from __future__ import annotations

import base64
import os
import socket
import struct

from h1tools import Reader, read_head

KEY = base64.b64encode(b"0123456789abcdef")


def handshake_request(
    path: str = "/", *extra: bytes, version: bytes = b"13", key: bytes | None = KEY
) -> bytes:
    lines = [
        b"GET %s HTTP/1.1" % path.encode(),
        b"Host: example.com",
        b"Connection: Upgrade",
        b"Upgrade: websocket",
    ]
    if version:
        lines.append(b"Sec-WebSocket-Version: " + version)
    if key is not None:
        lines.append(b"Sec-WebSocket-Key: " + key)
    lines += extra
    return b"\r\n".join(lines) + b"\r\n\r\n"


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawWebSocket:
    """A connected, accepted WebSocket on a plain socket."""

    def __init__(self, sock: socket.socket, reader: Reader) -> None:
        self.sock = sock
        self.reader = reader

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; the server's frames are unmasked and whole."""
        first, second = self.reader.read_exact(2)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.reader.read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.reader.read_exact(8))
        return first & 0x0F, self.reader.read_exact(n)

    def read_close(self) -> tuple[int, str]:
        """Skip frames until a close; its (code, reason)."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == 8:
                if not payload:
                    return 1005, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def at_eof(self) -> bool:
        return self.reader.at_eof()


def connect(sock: socket.socket, path: str = "/", *extra: bytes) -> RawWebSocket:
    sock.sendall(handshake_request(path, *extra))
    reader = Reader(sock)
    resp = read_head(reader)
    assert resp.status == 101, resp
    return RawWebSocket(sock, reader)
