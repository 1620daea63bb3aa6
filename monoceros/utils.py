"""Adapters between WSGI and the legacy channels interface, as the first
uvicorn README names them.

- :class:`ASGIAdapter` runs a WSGI application as a channels-interface app
  (so ``monoceros`` serves it with ``--interface channels``, or it can be
  combined with channels apps).  It is :class:`~monoceros.middleware.wsgi.WSGIMiddleware`
  behind a channels-to-ASGI bridge, so bodies stream both ways with
  backpressure and the application runs in a thread pool.
- :class:`WSGIAdapter` exposes a channels-interface app as a WSGI callable,
  for any WSGI server.  The app runs on an event loop in a background thread
  owned by the adapter; the WSGI thread pulls the response from it one chunk
  at a time (a small queue is the backpressure), and the request body is
  read from ``wsgi.input`` only when the app receives from its body channel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from monoceros.middleware._asgi import Message
from monoceros.middleware.channels import ChannelsApp, HTTPReply, RequestBody, call_app
from monoceros.middleware.wsgi import WSGIMiddleware
from monoceros.protocols.headers import STATUS_PHRASES

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ASGIAdapter", "WSGIAdapter"]

logger = logging.getLogger("monoceros.error")

CHUNK: Final = 64 * 1024
# Response parts waiting for the WSGI thread before the app's send() waits.
QUEUE: Final = 4


class ASGIAdapter:
    """Run a WSGI application as a channels-interface application.

    HTTP requests run the WSGI app (in a thread pool of ``workers``); a
    WebSocket is refused (403), since WSGI cannot speak it.

    Args:
        app: the WSGI application.
        workers: threads, hence WSGI requests run at once.
    """

    def __init__(self, app: WSGIApplication, workers: int = 10) -> None:
        self.app = app
        self._wsgi = WSGIMiddleware(app, workers)

    async def __call__(self, message: dict[str, Any], channels: dict[str, Any]) -> None:
        kind = message.get("channel")
        reply = channels["reply"]
        if kind == "websocket.connect":
            await reply.send({"accept": False})
            return
        if kind != "http.request":
            return
        body_channel = channels.get("body")
        first: list[Message] = [
            {"type": "http.request", "body": message.get("body", b""), "more_body": body_channel is not None}
        ]

        async def receive() -> Message:
            if first:
                return first.pop()
            if body_channel is None:
                return {"type": "http.disconnect"}
            chunk = await body_channel.receive()
            if chunk.get("closed"):
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk["content"], "more_body": chunk["more_content"]}

        head: dict[str, Any] = {}

        async def send(event: Message) -> None:
            if event["type"] == "http.response.start":
                head.update(status=event["status"], headers=event.get("headers", []))
                return
            part = {"content": event.get("body", b""), "more_content": event.get("more_body", False)}
            if head:
                part.update(head)
                head.clear()
            await reply.send(part)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": message.get("http_version", "1.1"),
            "method": message["method"],
            "scheme": message.get("scheme", "http"),
            "path": message["path"],
            "root_path": message.get("root_path", ""),
            "query_string": message.get("query_string", b""),
            "headers": [(name, value) for name, value in message.get("headers", ())],
            "client": tuple(message["client"]) if message.get("client") else None,
            "server": tuple(message["server"]) if message.get("server") else None,
        }
        await self._wsgi(scope, receive, send)

    async def aclose(self) -> None:
        """Release the thread pool (the server calls it at shutdown)."""
        self._wsgi.shutdown(wait=False)


def _message(environ: WSGIEnvironment) -> dict[str, Any]:
    """The channels ``http.request`` message for a WSGI environ."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if not value:
                continue
            name = key.replace("_", "-").lower()
        else:
            continue
        headers.append([name.encode("latin-1"), str(value).encode("latin-1")])
    script = environ.get("SCRIPT_NAME", "").encode("latin-1").decode("utf-8", "replace")
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    remote_port = environ.get("REMOTE_PORT")
    return {
        "channel": "http.request",
        "http_version": environ.get("SERVER_PROTOCOL", "HTTP/1.1").partition("/")[2] or "1.1",
        "method": environ["REQUEST_METHOD"].upper(),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": script + path,
        "root_path": script,
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
        "body": b"",
        "client": [environ.get("REMOTE_ADDR", ""), int(remote_port) if remote_port else 0],
        "server": [environ.get("SERVER_NAME", ""), int(environ.get("SERVER_PORT") or 0)],
    }


class _Request:
    """One WSGI request served by a channels app on the adapter's loop."""

    def __init__(self, environ: WSGIEnvironment, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.input = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        # None: read to the end (a server that terminates the input stream).
        self.remaining: int | None = int(length) if length.isdigit() else None
        if self.remaining is None and not (chunked and environ.get("wsgi.input_terminated")):
            self.remaining = 0
        self.message = _message(environ)
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(QUEUE)
        self.future: concurrent.futures.Future[None] | None = None

    def _read(self) -> bytes:
        size = CHUNK if self.remaining is None else min(CHUNK, self.remaining)
        data: bytes = self.input.read(size) if size else b""
        if self.remaining is not None:
            self.remaining = self.remaining - len(data) if data else 0
        elif not data:
            self.remaining = 0
        return data

    async def receive(self) -> Message:
        data = await self.loop.run_in_executor(None, self._read)
        return {"type": "http.request", "body": data, "more_body": self.remaining != 0}

    async def send(self, event: Message) -> None:
        await self.queue.put((event["type"], event))

    async def run(self, app: ChannelsApp) -> None:
        try:
            first = await self.receive()
            self.message["body"] = first["body"]
            channels: dict[str, Any] = {"reply": HTTPReply(self.send)}
            if first["more_body"]:
                channels["body"] = RequestBody(self.receive)
            await call_app(app, self.message, channels)
        except BaseException as exc:
            await self.queue.put(("error", exc))
            if not isinstance(exc, Exception):
                raise
        else:
            await self.queue.put(("done", None))

    def next(self) -> tuple[str, Any]:
        """The next response part, from the WSGI thread (blocks)."""
        return asyncio.run_coroutine_threadsafe(self.queue.get(), self.loop).result()

    def body(self) -> Iterator[bytes]:
        try:
            while True:
                kind, event = self.next()
                if kind == "http.response.body":
                    if event.get("body"):
                        yield event["body"]
                    if not event.get("more_body", False):
                        return
                elif kind == "error":
                    raise event
                else:  # the app returned without finishing the response
                    return
        finally:
            # The WSGI server stopped iterating (done, or the client left).
            if self.future is not None:
                self.future.cancel()


class WSGIAdapter:
    """Expose a channels-interface application as a WSGI callable.

    The app runs on an event loop in a daemon thread that the adapter starts
    on first use (:meth:`close` stops it).  An app that raises before its
    response starts gets a 500; one that returns without replying too.

    Args:
        app: the channels application (``async def app(message, channels)``).
    """

    def __init__(self, app: ChannelsApp) -> None:
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="monoceros-wsgi-adapter", daemon=True
                )
                self._thread.start()
            return self._loop

    def close(self) -> None:
        """Stop the event loop thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        loop = self._running_loop()
        request = _Request(environ, loop)
        request.future = asyncio.run_coroutine_threadsafe(request.run(self.app), loop)
        kind, event = request.next()
        if kind != "http.response.start":
            if kind == "error":
                logger.error("Exception in the channels application", exc_info=event)
            else:
                logger.error("The channels application returned without a response")
            start_response("500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Internal Server Error"]
        status = event["status"]
        phrase = STATUS_PHRASES.get(status, b"").decode("latin-1")
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.get("headers", [])]
        start_response(f"{status} {phrase}".rstrip(), headers)
        return request.body()
