"""WebSockets over HTTP/1.1: the opening handshake and the connection after it.

Theory of operation
-------------------
:class:`~.http1.HTTP11Protocol` parses the upgrade request like any other and,
when it asks for ``Upgrade: websocket`` and ``--ws`` is not ``none``, calls
:func:`check_handshake` (RFC 6455 §4.2.1: a bodiless ``GET`` with
``Sec-WebSocket-Version: 13`` and a valid ``Sec-WebSocket-Key``; otherwise
400, or 426 with the version we speak).  The request's scope becomes a
``websocket`` scope and a :class:`~.wscycle.WebSocketCycle` runs the app.

The connection stays HTTP/1.1 until the app accepts: a denial is an ordinary
HTTP response.  On accept, the HTTP/1.1 protocol writes the 101 from
:func:`accept_response` and hands the transport, with the bytes already
read after the request, to a :class:`WebSocketProtocol`, which only moves
frame bytes between the transport and the cycle (no request is ever
serialised again for a library to re-parse).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from monoceros._types import Headers, Scope
from monoceros.errors import ASGIMessageError, RemoteProtocolError
from monoceros.protocols.headers import Request, validate_header

if TYPE_CHECKING:
    from monoceros.context import ServerContext
    from monoceros.protocols.wscycle import WebSocketCycle

logger = logging.getLogger("monoceros.error")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SCHEMES = {"http": "ws", "https": "wss"}


def check_handshake(req: Request, scope: Scope) -> tuple[bytes, list[bytes]]:
    """Validate an opening handshake and turn ``scope`` (built for HTTP) into
    a ``websocket`` scope (:func:`websocket_scope`).

    Returns:
        The ``Sec-WebSocket-Key`` and the ``Sec-WebSocket-Extensions`` offers.

    Raises:
        RemoteProtocolError: 400 for a malformed handshake, 426 (with a
            ``Sec-WebSocket-Version: 13`` header) for another version.
    """
    if req.method != b"GET":
        raise RemoteProtocolError("a WebSocket handshake must be a GET", 400)
    if req.chunked or req.content_length:
        raise RemoteProtocolError("a WebSocket handshake has no body", 400)
    keys = [value for name, value in req.headers if name == b"sec-websocket-key"]
    if [value for name, value in req.headers if name == b"sec-websocket-version"] != [b"13"]:
        raise RemoteProtocolError(
            "unsupported WebSocket version", 426, [(b"sec-websocket-version", b"13")]
        )
    if len(keys) != 1:
        raise RemoteProtocolError("missing or repeated Sec-WebSocket-Key", 400)
    try:
        raw = base64.b64decode(keys[0], validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 16:
        raise RemoteProtocolError("invalid Sec-WebSocket-Key", 400)
    return keys[0], websocket_scope(scope, req.headers)


def websocket_scope(scope: Scope, headers: Headers) -> list[bytes]:
    """Turn an ``http`` scope into the ``websocket`` scope of the same request
    (HTTP/1.1 upgrade or HTTP/2 extended CONNECT); the request's
    ``Sec-WebSocket-Extensions`` offers."""
    offers: list[bytes] = []
    subprotocols: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-extensions":
            offers.append(value)
        elif name == b"sec-websocket-protocol":
            subprotocols += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
    scope["type"] = "websocket"
    scope["scheme"] = _SCHEMES[scope["scheme"]]
    del scope["method"]
    scope["subprotocols"] = subprotocols
    scope["extensions"] = _websocket_extensions(scope)
    return offers


def _websocket_extensions(scope: Scope) -> dict[str, Any]:
    """The ``extensions`` of a websocket scope made from an http ``scope``:
    the denial response, and the connection's ``tls`` if it has one."""
    extensions: dict[str, Any] = {"websocket.http.response": {}}
    tls = scope.get("extensions", {}).get("tls")
    if tls is not None:
        extensions["tls"] = tls
    return extensions


def accept_response(key: bytes, headers: Headers, default_headers: bytes) -> bytes:
    """The 101 response to a handshake with ``key``; ``headers`` are the
    negotiated ones and the app's (checked here: the app gets the error)."""
    digest = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    parts = [
        b"HTTP/1.1 101 Switching Protocols\r\n",
        default_headers,
        b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: %s\r\n" % digest,
    ]
    for name, value in headers:
        if not validate_header(name, value):
            raise ASGIMessageError(f"invalid response header {name!r}: {value!r}")
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


class WebSocketProtocol(asyncio.Protocol):
    """An accepted WebSocket's connection: the :class:`~.wscycle.WebSocketPipe`
    of its cycle, and a connection the server tracks and shuts down."""

    def __init__(self, ctx: ServerContext, cycle: WebSocketCycle, task: asyncio.Task[Any] | None) -> None:
        self.ctx = ctx
        self.cycle = cycle
        self.task = task
        self.deadline = 0.0  # no sweep deadline: pings and close timers are the cycle's
        self._closed = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    def take_over(self, transport: asyncio.Transport, data: bytes) -> None:
        self.transport = transport
        if data:
            self.cycle.feed(data)

    # -- asyncio.Protocol ----------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.cycle.feed(data)

    def eof_received(self) -> bool:
        return False  # a peer that stops sending without a close frame is gone

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.ctx.connection_closed(self)
        self.cycle.lost()
        self._wake_drain()
        logger.info("connection closed")

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- WebSocketPipe -------------------------------------------------------------
    def write(self, data: bytes) -> asyncio.Future[None] | None:
        if self._closed:
            return None
        if data:
            self.transport.write(data)
        if not self._write_paused:
            return None
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = self.ctx.loop.create_future()
        return waiter

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.transport.close()

    def pause_reading(self) -> None:
        if not self._closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._closed:
            self.transport.resume_reading()

    # -- Connection ----------------------------------------------------------------
    def timed_out(self) -> None:  # pragma: no cover - deadline stays 0
        pass

    def shutdown(self) -> None:
        self.cycle.shutdown()

    def force_close(self) -> None:
        task = self.task
        if task is not None and not task.done():
            task.cancel()
        self.close()


__all__ = ["WebSocketProtocol", "accept_response", "check_handshake", "websocket_scope"]
