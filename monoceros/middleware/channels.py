"""Run a legacy "channels" application (``app(message, channels)``) under ASGI 3.

The interface is the one the first uvicorn README promised (see
``docs/channels.md``): the app is called once per HTTP request and once per
WebSocket event, with a ``message`` dict that names its ``channel`` and a
``channels`` dict of objects with ``send``/``receive``/``name``.

Theory of operation
-------------------
:class:`ChannelsMiddleware` is an ordinary ASGI 3 application: the server's one
HTTP cycle and one WebSocket cycle (any parser, any WebSocket library, HTTP/2)
drive it through ``receive``/``send``, and it translates both ways.  Nothing in
the protocol code knows this interface exists.

HTTP: the first ``http.request`` message is awaited before the app is called,
so ``message['body']`` holds what has arrived; ``channels['body']`` is present
only while more is to come, and each ``receive()`` on it is one ASGI
``receive()``, so the server's read flow control (it stops reading while the
app does not receive) is the backpressure.  ``channels['reply']`` turns the
response and its chunks into ``http.response.start``/``body`` messages; the
cycle adds Content-Length or chunked framing.

WebSocket: one task runs the events of a connection in order, one consumer
call at a time.  The reply channel (:class:`WebSocketReply`) is in one
:class:`ReplyState` and may be used from any task at any time (the README's
clock example sends from a background task); a connect handler that neither
accepts nor rejects gets an accept once it returns.  The consumer always ends
with a ``websocket.disconnect`` call, even when the handshake was rejected or
an earlier call raised, so per-connection state it keeps can be dropped there.
"""

from __future__ import annotations

import enum
import inspect
import itertools
import os
from collections.abc import Callable
from typing import Any, Final

from monoceros.errors import ASGIMessageError, MonocerosError
from monoceros.middleware._asgi import Receive, Scope, Send

__all__ = ["ChannelsApp", "ChannelsMiddleware", "HTTPReply", "RequestBody", "WebSocketReply", "new_name"]

#: ``app(message, channels)``; may return an awaitable (an ``async def``).
ChannelsApp = Callable[[dict[str, Any], dict[str, Any]], Any]

# Channel names are unique in this process and, thanks to the random part,
# across the server instances that share a broadcast backend.
_PROCESS_TAG: Final = os.urandom(6).hex()
_counter = itertools.count(1)


def new_name(kind: str) -> str:
    """A fresh channel name such as ``'websocket.send!3f2a...!17'``."""
    return f"{kind}!{_PROCESS_TAG}!{next(_counter)}"


def _pairs(items: Any) -> list[list[Any]]:
    return [[name, value] for name, value in items]


def _address(addr: Any) -> list[Any] | None:
    return None if addr is None else [addr[0], addr[1]]


async def call_app(app: ChannelsApp, message: dict[str, Any], channels: dict[str, Any]) -> None:
    """Call a channels app; await what it returns when that is awaitable."""
    result = app(message, channels)
    if inspect.isawaitable(result):
        await result


class RequestBody:
    """``channels['body']``: the rest of the request body, one chunk per receive."""

    name = "http.request.body"

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._done = False

    async def receive(self) -> dict[str, Any]:
        """The next ``{'content', 'closed', 'more_content'}`` chunk.

        ``closed`` is true when the client went away; after the last chunk
        every call returns an empty final one.
        """
        if self._done:
            return {"content": b"", "closed": False, "more_content": False}
        event = await self._receive()
        if event["type"] == "http.disconnect":
            self._done = True
            return {"content": b"", "closed": True, "more_content": False}
        more = bool(event.get("more_body", False))
        self._done = not more
        return {"content": event.get("body", b""), "closed": False, "more_content": more}


class _Reply(enum.Enum):
    START = 0  # nothing sent
    BODY = 1  # head sent, more content announced
    DONE = 2  # the response is complete


_START: Final = _Reply.START
_BODY: Final = _Reply.BODY
_DONE: Final = _Reply.DONE


def _content(message: Any) -> tuple[bytes, bool]:
    if not isinstance(message, dict):
        raise ASGIMessageError(f"a reply must be a dict, got {type(message).__name__}")
    content = message.get("content", b"")
    if not isinstance(content, bytes | bytearray | memoryview):
        raise ASGIMessageError(f"reply 'content' must be bytes, got {type(content).__name__}")
    return bytes(content), bool(message.get("more_content", False))


class HTTPReply:
    """``channels['reply']`` of an HTTP request: the response, then its chunks."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.state = _START
        self.name = new_name("http.response")

    async def send(self, message: dict[str, Any]) -> None:
        """Send the response (``status``, ``headers``, ``content``,
        ``more_content``), then, while ``more_content`` was true, chunks.

        Raises:
            ASGIMessageError: a malformed reply, or one after the response
                is complete.
            ClientDisconnected: the client is gone.
        """
        content, more = _content(message)
        state = self.state
        if state is _DONE:
            raise ASGIMessageError("the response is already complete: nothing more can be sent")
        if state is _START:
            status = message.get("status")
            if type(status) is not int:
                raise ASGIMessageError(f"the first reply needs an int 'status', got {status!r}")
            try:
                headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
            except (TypeError, ValueError):
                raise ASGIMessageError("reply 'headers' must be a list of [bytes, bytes] pairs") from None
            self.state = _BODY
            await self._send({"type": "http.response.start", "status": status, "headers": headers})
        self.state = _BODY if more else _DONE
        await self._send({"type": "http.response.body", "body": content, "more_body": more})


class ReplyState(enum.Enum):
    CONNECTING = 0  # handshake not answered
    OPEN = 1
    CLOSED = 2  # we closed or rejected, or the client left


_CONNECTING: Final = ReplyState.CONNECTING
_OPEN: Final = ReplyState.OPEN
_CLOSED: Final = ReplyState.CLOSED

_SENDABLE = frozenset(("accept", "text", "bytes", "close"))


class WebSocketReply:
    """``channels['reply']`` of a WebSocket; usable from any task.

    ``send`` takes ``{'accept': bool}``, ``{'text': str}``, ``{'bytes':
    bytes}`` and ``{'close': True | code}``; keys combine (send, then close).
    Text or bytes before the handshake is answered accept it first.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.state = _CONNECTING
        self.name = new_name("websocket.send")
        self._opened: list[Callable[[], None]] = []

    def on_open(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the WebSocket is accepted (now, if it is)."""
        if self.state is _OPEN:
            callback()
        else:
            self._opened.append(callback)

    async def _accept(self) -> None:
        self.state = _OPEN
        await self._send({"type": "websocket.accept"})
        callbacks, self._opened = self._opened, []
        for callback in callbacks:
            callback()

    async def send(self, message: dict[str, Any]) -> None:
        """Send one reply message.

        Raises:
            ASGIMessageError: a malformed message.
            ClientDisconnected: the WebSocket is closed.
        """
        if not isinstance(message, dict) or not message.keys() & _SENDABLE:
            raise ASGIMessageError(
                "a WebSocket reply needs 'accept', 'text', 'bytes' or 'close', got " + repr(message)
            )
        accept = message.get("accept")
        close = message.get("close")
        if self.state is _CONNECTING:
            if accept is False or (close is not None and close is not False and accept is not True):
                # A refusal: the server answers the handshake with 403.
                self.state = _CLOSED
                await self._send({"type": "websocket.close", "code": 1000})
                return
            await self._accept()
        text, data = message.get("text"), message.get("bytes")
        if text is not None:
            await self._send({"type": "websocket.send", "text": text})
        elif data is not None:
            await self._send({"type": "websocket.send", "bytes": data})
        if close is not None and close is not False:
            code = 1000 if close is True else close
            self.state = _CLOSED
            await self._send({"type": "websocket.close", "code": code})


def _base(scope: Scope) -> dict[str, Any]:
    return {
        "path": scope["path"],
        "query_string": scope.get("query_string", b""),
        "root_path": scope.get("root_path", ""),
        "headers": _pairs(scope.get("headers", ())),
        "client": _address(scope.get("client")),
        "server": _address(scope.get("server")),
    }


class ChannelsMiddleware:
    """Serve a channels-interface application (``app(message, channels)``)
    as an ASGI 3 application.

    ``lifespan`` is answered (the interface has no hook for it); an app with
    ``astart()``/``aclose()`` coroutine methods (such as
    :class:`monoceros.broadcast.BroadcastMiddleware`) has them awaited at
    startup and shutdown.

    Args:
        app: the channels application: an ``async def app(message, channels)``
            (a plain callable returning an awaitable works too).
    """

    def __init__(self, app: ChannelsApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise MonocerosError(f"the channels interface cannot handle ASGI scope type {kind!r}")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        message = _base(scope)
        message.update(
            channel="http.request",
            http_version=scope.get("http_version", "1.1"),
            method=scope["method"],
            scheme=scope.get("scheme", "http"),
            body=first.get("body", b""),
        )
        channels: dict[str, Any] = {"reply": HTTPReply(send)}
        if first["type"] == "http.request" and first.get("more_body", False):
            channels["body"] = RequestBody(receive)
        await call_app(self.app, message, channels)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        reply = WebSocketReply(send)
        channels = {"reply": reply}
        base = _base(scope)
        base["scheme"] = scope.get("scheme", "ws")
        order = 0
        told = False
        try:
            await call_app(self.app, {**base, "channel": "websocket.connect", "order": 0}, channels)
            if reply.state is _CONNECTING:
                await reply._accept()
            while True:
                event = await receive()
                order += 1
                if event["type"] == "websocket.disconnect":
                    reply.state = _CLOSED
                    told = True
                    message = {"channel": "websocket.disconnect", "code": event.get("code", 1005)}
                    await call_app(self.app, {**base, **message, "order": order}, channels)
                    return
                message = {"channel": "websocket.receive", "order": order}
                text = event.get("text")
                if text is not None:
                    message["text"] = text
                else:
                    message["bytes"] = event.get("bytes")
                await call_app(self.app, {**base, **message}, channels)
        except Exception:
            if not told:
                # The server closes with 1011 after this; the app still
                # hears the end of the connection, as it would otherwise.
                reply.state = _CLOSED
                message = {"channel": "websocket.disconnect", "code": 1011, "order": order + 1}
                await call_app(self.app, {**base, **message}, channels)
            raise

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                astart = getattr(self.app, "astart", None)
                if astart is not None and inspect.iscoroutinefunction(astart):
                    await astart()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                aclose = getattr(self.app, "aclose", None)
                if aclose is not None and inspect.iscoroutinefunction(aclose):
                    await aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
