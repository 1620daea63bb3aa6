"""The ASGI WebSocket cycle, written once for both libraries and every carrier.

Theory of operation
-------------------
One :class:`WebSocketCycle` serves one WebSocket: it owns the ASGI scope,
the ``receive``/``send`` callables, the frame codec (:mod:`.wscodecs`,
websockets or wsproto) and the keep-alive pings.  What carries it is split in
two, so that HTTP/1.1 and (later) an HTTP/2 stream can both carry it:

* the *carrier* answers the opening handshake.  Until the app accepts, the
  connection is still an HTTP exchange: a denial (``websocket.http.response``,
  the 403 of a close before accept, the 500 of a failing app) is sent by the
  ordinary HTTP :class:`~.cycle.RequestCycle` the carrier made for the
  handshake request, so no HTTP response code is written twice.  On accept,
  :meth:`WebSocketCarrier.accept_websocket` writes the 101 (or 200) and
  returns the *pipe*;
* the *pipe* (:class:`WebSocketPipe`) moves frame bytes: ``write``,
  ``close``, read and write flow control.  It feeds what it reads to
  :meth:`WebSocketCycle.feed` and reports :meth:`WebSocketCycle.lost`.

The cycle is in one :class:`WSState`:

``CONNECTING``  the app has the ``websocket.connect`` message (or will get
                it) and has not answered
``RESPONDING``  the app denies the handshake with its own HTTP response
``OPEN``        accepted: messages both ways
``CLOSING``     our close frame is out (the app's close, a 1011 after an app
                error, 1012 at shutdown); the peer's reply or a timeout ends it
``CLOSED``      over: the app's ``receive()`` says ``websocket.disconnect``
                and its ``send()`` raises :class:`~monoceros.errors.ClientDisconnected`

Flow control.  Received messages wait in a queue for ``receive()``; once
``max_queue`` of them wait, the pipe stops reading (the kernel's buffers then
push back on the client) until the app catches up.  ``send()`` writes and,
when the pipe's write buffer is over its high-water mark, waits for it to
drain: a slow reader never makes the server buffer without bound.

Errors map to the wire here and nowhere else: what the peer breaks is a
:class:`~.wscodecs.Failed` close code from the codec (1002, 1007, 1009); an
app error is a 500 before accept and a 1011 close after; a pong later than
``ping_timeout`` is a 1011 close.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final, Protocol

from monoceros._types import Headers, Message, Scope
from monoceros.errors import ASGIMessageError, ClientDisconnected
from monoceros.protocols.wscodecs import PONG, Close, Failed, WSCodec

if TYPE_CHECKING:
    from monoceros.context import ServerContext
    from monoceros.protocols.cycle import RequestCycle

logger = logging.getLogger("monoceros.error")

# After our close frame, how long the peer has to answer with its own
# before the connection is closed anyway.
CLOSE_TIMEOUT = 5.0


class WSState(enum.Enum):
    CONNECTING = 0
    RESPONDING = 1
    OPEN = 2
    CLOSING = 3
    CLOSED = 4


# The members as module constants (see http1.py: Enum.MEMBER reads are slow).
_CONNECTING: Final = WSState.CONNECTING
_RESPONDING: Final = WSState.RESPONDING
_OPEN: Final = WSState.OPEN
_CLOSING: Final = WSState.CLOSING
_CLOSED: Final = WSState.CLOSED


class WebSocketPipe(Protocol):
    """Moves the frames of an accepted WebSocket (see the module docstring)."""

    def write(self, data: bytes) -> Awaitable[None] | None:
        """Send ``data``; None when writing may go on, else an awaitable
        that waits until the write buffer drained (one call for both: this
        is the per-message path)."""

    def close(self) -> None:
        """Close after what was written (for HTTP/1.1, the TCP connection)."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class WebSocketCarrier(Protocol):
    """Answers the opening handshake of a :class:`WebSocketCycle`."""

    def accept_websocket(self, cycle: WebSocketCycle, headers: Headers) -> WebSocketPipe:
        """Send the handshake's success response with ``headers`` added;
        from now on frames go through the returned pipe."""


class WebSocketCycle:
    """One WebSocket connection's ASGI side; see the module docstring."""

    def __init__(
        self,
        ctx: ServerContext,
        scope: Scope,
        codec: WSCodec,
        carrier: WebSocketCarrier,
        response: RequestCycle,
        extensions_offered: list[bytes],
    ) -> None:
        self.ctx = ctx
        self.scope = scope
        self.codec = codec
        self.carrier = carrier
        self.response = response  # the handshake's HTTP exchange, for denials
        self.extensions_offered = extensions_offered
        self.state = _CONNECTING
        self.pipe: WebSocketPipe | None = None
        self._inbox: deque[Message] = deque([{"type": "websocket.connect"}])
        self._waiter: asyncio.Future[None] | None = None
        self._early = b""  # bytes that came before the app accepted
        self._read_paused = False
        self._close_code = 1006
        self._close_reason = ""
        self._told = False  # the websocket.disconnect message is queued
        self._pinged = False  # a keep-alive ping waits for its pong
        self._timer: asyncio.TimerHandle | None = None  # next ping, pong deadline or close deadline
        self._max_queue = ctx.ws_max_queue

    # -- carrier / pipe side ------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes from the peer."""
        state = self.state
        if state is _OPEN or state is _CLOSING:
            events = self.codec.receive(data)
            if len(events) == 1 and type(events[0]) is str:  # the usual: one text message
                self._inbox.append({"type": "websocket.receive", "text": events[0]})
                if self.codec.pending or len(self._inbox) >= self._max_queue:
                    self._handle([])
                    return
                waiter = self._waiter
                if waiter is not None:
                    self._waiter = None
                    if not waiter.done():
                        waiter.set_result(None)
            else:
                self._handle(events)
        elif state is _CONNECTING:
            # A client must wait for our answer before sending frames; keep
            # what came anyway for after the accept (the carrier stops
            # reading, so this stays small).
            self._early += data

    def lost(self) -> None:
        """The connection is gone (or the peer half-closed it)."""
        if self.state is not _CLOSED:
            self._closed(1006, "")
        self._cancel_timer()

    def shutdown(self) -> None:
        """The server is stopping: close with 1012 (service restart)."""
        if self.state is _OPEN:
            self._send_close(1012, "server shutting down")
            self._disconnect(1012, "server shutting down")

    # -- the events a codec produced ---------------------------------------------
    def _handle(self, events: list[Any]) -> None:
        inbox = self._inbox
        for event in events:
            t = type(event)
            if t is str:
                inbox.append({"type": "websocket.receive", "text": event})
            elif t is bytes:
                inbox.append({"type": "websocket.receive", "bytes": event})
            elif event is PONG:
                self._pong()
            elif t is Failed:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("WebSocket protocol error, closing with %d: %s", event.code, event.reason)
                self._closed(event.code, event.reason)
            else:
                assert isinstance(event, Close)
                self._closed(event.code, event.reason)
        codec = self.codec
        pipe = self.pipe
        assert pipe is not None
        if codec.pending:
            pipe.write(codec.data_to_send())
        if codec.finished:
            pipe.close()
        if inbox:
            if len(inbox) >= self._max_queue and not self._read_paused:
                self._read_paused = True
                pipe.pause_reading()
            self._wake()

    def _closed(self, code: int, reason: str) -> None:
        """The WebSocket is over: tell the app."""
        self._disconnect(code, reason)
        self.state = _CLOSED
        self._cancel_timer()

    def _disconnect(self, code: int, reason: str) -> None:
        if not self._told:
            self._told = True
            self._close_code = code
            self._close_reason = reason
            self._inbox.append({"type": "websocket.disconnect", "code": code, "reason": reason})
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- keep-alive pings -------------------------------------------------------------
    def _schedule_ping(self) -> None:
        interval = self.ctx.ws_ping_interval
        if interval:
            self._timer = self.ctx.loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        self._timer = None
        if self.state is not _OPEN:
            return
        pipe = self.pipe
        assert pipe is not None
        pipe.write(self.codec.ping(os.urandom(4)))
        timeout = self.ctx.ws_ping_timeout
        if timeout:
            self._pinged = True
            self._timer = self.ctx.loop.call_later(timeout, self._ping_timed_out)
        else:
            self._schedule_ping()

    def _pong(self) -> None:
        if self._pinged and self.state is _OPEN:
            self._pinged = False
            self._cancel_timer()
            self._schedule_ping()

    def _ping_timed_out(self) -> None:
        self._timer = None
        if self.state is _OPEN:
            logger.debug("WebSocket keepalive ping timed out, closing with 1011")
            pipe = self.pipe
            assert pipe is not None
            pipe.write(self.codec.close(1011, "keepalive ping timeout"))
            self._closed(1011, "keepalive ping timeout")
            pipe.close()

    def _cancel_timer(self) -> None:
        self._pinged = False
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    def _send_close(self, code: int, reason: str) -> None:
        """Our close frame; the peer has CLOSE_TIMEOUT to answer."""
        pipe = self.pipe
        assert pipe is not None
        pipe.write(self.codec.close(code, reason))
        self.state = _CLOSING
        self._cancel_timer()
        self._timer = self.ctx.loop.call_later(CLOSE_TIMEOUT, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._timer = None
        if self.state is _CLOSING:
            self._closed(1006, "")
            assert self.pipe is not None
            self.pipe.close()

    # -- application side -----------------------------------------------------------
    async def receive(self) -> Message:
        """ASGI ``receive``: connect, messages, then ``websocket.disconnect``."""
        while True:
            inbox = self._inbox
            if inbox:
                message = inbox.popleft()
                if self._read_paused and len(inbox) < self._max_queue and self.state is _OPEN:
                    self._read_paused = False
                    assert self.pipe is not None
                    self.pipe.resume_reading()
                return message
            if self.state is _CLOSED:
                code, reason = self._close_code, self._close_reason
                return {"type": "websocket.disconnect", "code": code, "reason": reason}
            waiter = self._waiter = self.ctx.loop.create_future()
            await waiter

    async def send(self, message: Message) -> None:
        """ASGI ``send``: accept, messages, close, or an HTTP denial."""
        try:
            mtype = message["type"]
        except (KeyError, TypeError):
            raise ASGIMessageError(f"an ASGI message must be a dict with a 'type', got {message!r}") from None
        state = self.state
        if state is _OPEN:
            if mtype == "websocket.send":
                data = message.get("text")
                if type(data) is not str:
                    data = _payload(message)
                pipe = self.pipe
                assert pipe is not None
                drained = pipe.write(self.codec.send(data))
                if drained is not None:
                    await drained
                return
            if mtype == "websocket.close":
                code, reason = _close_args(message)
                self._send_close(code, reason)
                return
        elif state is _CONNECTING:
            if mtype == "websocket.accept":
                self._accept(message)
                return
            if mtype == "websocket.close":
                _close_args(message)
                self.state = _CLOSED
                self._close_code = 1006  # never opened
                self._log_handshake(403)
                self.response.send_error(403)
                self._wake()
                return
            if mtype == "websocket.http.response.start":
                self.state = _RESPONDING
                self._log_handshake(message.get("status"))
                await self.response.send({**message, "type": "http.response.start"})
                return
        elif state is _RESPONDING:
            if mtype == "websocket.http.response.body":
                await self.response.send({**message, "type": "http.response.body"})
                if not message.get("more_body", False):
                    self.state = _CLOSED
                    self._wake()
                return
        else:  # CLOSING, CLOSED
            if mtype in ("websocket.send", "websocket.close", "websocket.http.response.body"):
                raise ClientDisconnected("the WebSocket is closed")
        raise ASGIMessageError(_unexpected(state, mtype))

    def _accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        headers: Headers = []
        if subprotocol is not None:
            if not isinstance(subprotocol, str):
                raise ASGIMessageError(f"'subprotocol' must be a str or None, got {subprotocol!r}")
            headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        extensions = self.codec.negotiate(self.extensions_offered)
        if extensions is not None:
            headers.append((b"sec-websocket-extensions", extensions))
        try:
            for name, value in message.get("headers", ()):
                headers.append((bytes(name), bytes(value)))
        except (TypeError, ValueError):
            raise ASGIMessageError("'headers' must be an iterable of [bytes, bytes] pairs") from None
        self._log_handshake("accepted")
        self.pipe = self.carrier.accept_websocket(self, headers)
        self.state = _OPEN
        logger.info("connection open")
        self._schedule_ping()
        early, self._early = self._early, b""
        if early:
            self.feed(early)
        if not self.ctx.accepting and self.state is _OPEN:
            self.shutdown()

    def _log_handshake(self, outcome: object) -> None:
        if logger.isEnabledFor(logging.INFO):
            client = self.scope.get("client")
            who = f"{client[0]}:{client[1]}" if client else ""
            path = self.scope.get("raw_path", b"").decode("latin-1")
            if outcome == "accepted":
                logger.info('%s - "WebSocket %s" [accepted]', who, path)
            else:
                logger.info('%s - "WebSocket %s" %s', who, path, outcome)

    # -- the application task -------------------------------------------------------
    async def run_asgi(self) -> None:
        """Run the app for this WebSocket, then end what it left open."""
        app: Any = self.ctx.app
        response = self.response
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self._app_failed(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if result is not None:
                logger.error("ASGI callable should return None, but returned '%s'.", result)
            state = self.state
            if state is _CONNECTING:
                logger.error("ASGI callable returned without sending handshake.")
                self.state = _CLOSED
                response.send_error(500)
            elif state is _RESPONDING:
                self.state = _CLOSED
                response.app_incomplete()
            elif state is _OPEN:
                self._send_close(1000, "")
        finally:
            response.sink.cycle_done(response)

    def _app_failed(self, exc: BaseException) -> None:
        state = self.state
        if state is _CONNECTING or state is _RESPONDING:
            self.state = _CLOSED
            self.response.app_failed(exc)
            return
        if isinstance(exc, asyncio.CancelledError):
            if self.pipe is not None:
                self.pipe.close()
            return
        if state is _CLOSED and isinstance(exc, OSError):
            return  # it sent after the peer left: nothing to tell
        logger.error("Exception in ASGI application\n", exc_info=exc)
        if state is _OPEN:
            self._send_close(1011, "")
            self._disconnect(1011, "")


def _payload(message: Message) -> str | bytes:
    text = message.get("text")
    if text is not None:
        if type(text) is not str:
            raise ASGIMessageError(f"'text' must be a str, got {type(text).__name__}")
        return text
    data = message.get("bytes")
    if data is None:
        raise ASGIMessageError("websocket.send needs 'bytes' or 'text'")
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise ASGIMessageError(f"'bytes' must be bytes, got {type(data).__name__}")
        data = bytes(data)
    return data


# RFC 6455 §7.4 codes an endpoint may put in a close frame (1004-1006 and
# 1015 are reserved), plus the IANA-registered 1012-1014.
_SENDABLE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


def _close_args(message: Message) -> tuple[int, str]:
    code = message.get("code", 1000)
    reason = message.get("reason") or ""
    if type(code) is not int or not (3000 <= code <= 4999 or code in _SENDABLE_CODES):
        raise ASGIMessageError(f"invalid WebSocket close code {code!r}")
    if not isinstance(reason, str) or len(reason.encode()) > 123:
        raise ASGIMessageError("the close 'reason' must be a str of at most 123 UTF-8 bytes")
    return code, reason


def _unexpected(state: WSState, mtype: object) -> str:
    if state is _CONNECTING:
        return (
            "Expected ASGI message 'websocket.accept', 'websocket.close' or "
            f"'websocket.http.response.start', but got {mtype!r}."
        )
    if state is _RESPONDING:
        return f"Expected ASGI message 'websocket.http.response.body', but got {mtype!r}."
    return f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {mtype!r}."


__all__ = ["CLOSE_TIMEOUT", "WSState", "WebSocketCarrier", "WebSocketCycle", "WebSocketPipe"]
