"""Run a WSGI (PEP 3333) application as an ASGI application.

The WSGI callable runs in a thread pool.  The request body and the response
are streamed both ways with backpressure: ``wsgi.input`` pulls one
``http.request`` message from the ASGI ``receive`` only when the application
asks for more bytes, and every response chunk is handed to the ASGI ``send``
while the worker thread waits for it to complete.  Neither direction is ever
buffered whole, so memory per request stays bounded by one chunk plus what the
application itself keeps.

All ASGI calls are made by the coroutine the server called (the worker thread
only posts requests to it), so they run in the request's task: cancelling the
request unblocks the worker thread, and the server sees ``send``/``receive``
calls from the task it expects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_to_bytes

from monoceros.errors import ClientDisconnected, ConfigError, LocalProtocolError, MonocerosError
from monoceros.middleware._asgi import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

__all__ = ["WSGIMiddleware", "build_environ"]

# Operations the worker thread asks the event loop to perform.
_RECEIVE: Final = 0
_SEND: Final = 1
_DONE: Final = 2

#: (operation, message to send or the app's exception for _DONE, the future
#: the worker thread waits on; None for _DONE).
_Op = tuple[int, Any, "concurrent.futures.Future[Any] | None"]

# Request headers whose environ key is not HTTP_<NAME> (PEP 3333, CGI).
_SPECIAL_KEYS: Final = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}


def _environ_key(name: bytes) -> str:
    special = _SPECIAL_KEYS.get(name)
    if special is not None:
        return special
    return "HTTP_" + name.upper().replace(b"-", b"_").decode("latin-1")


def _server_from_host(host: str | None, scheme: str) -> tuple[str, str]:
    """SERVER_NAME/SERVER_PORT when the scope has no TCP server address
    (unix socket: no server, or a port of None or 0): take them from the Host
    header, as CGI servers do."""
    default_port = "443" if scheme in ("https", "wss") else "80"
    if not host:
        return "localhost", default_port
    name, colon, port = host.rpartition(":")
    # "[::1]" has colons but no port; "[::1]:8000" and "example:8000" have one.
    if colon and port.isdigit() and (not name.startswith("[") or name.endswith("]")):
        return name, port
    return host, default_port


def build_environ(scope: Scope, stream: Any, multiprocess: bool = True) -> WSGIEnvironment:
    """Build the PEP 3333 environ for an ASGI ``http`` scope.

    Strings are "bytes as latin-1" as PEP 3333 requires.  ``PATH_INFO`` is
    decoded from ``raw_path`` when the server provides it, so that bytes which
    are not UTF-8 reach the application unchanged.  Repeated headers are
    joined with ``,`` (cookies with ``; ``); header names containing ``_`` are
    dropped, because ``X_Forwarded_For`` would otherwise become
    indistinguishable from ``X-Forwarded-For`` (the spoofing trick that nginx
    and gunicorn guard against the same way).

    Args:
        scope: the ASGI http scope.
        stream: the object to use as ``wsgi.input``.
        multiprocess: the value of ``wsgi.multiprocess``.
    """
    script_name = scope.get("root_path", "").encode("utf-8").decode("latin-1").rstrip("/")
    raw_path = scope.get("raw_path")
    if raw_path:
        path_info = unquote_to_bytes(raw_path.partition(b"?")[0]).decode("latin-1")
    else:
        path_info = scope["path"].encode("utf-8").decode("latin-1")
    # ASGI paths include root_path; WSGI splits it off into SCRIPT_NAME.  Only
    # at a segment boundary: root "/api" does not own "/apiary".
    if script_name and (path_info == script_name or path_info.startswith(script_name + "/")):
        path_info = path_info[len(script_name) :]
    scheme = scope.get("scheme", "http")
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": stream,
        # The stream ends where the body ends (chunked bodies included), so
        # frameworks may read it to EOF without a Content-Length.
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
    }
    for name, value in scope.get("headers", ()):
        if b"_" in name:
            continue
        key = _environ_key(name)
        text = value.decode("latin-1")
        previous = environ.get(key)
        if previous is not None:
            text = previous + ("; " if key == "HTTP_COOKIE" else ",") + text
        environ[key] = text
    server = scope.get("server")
    if server is not None and server[1]:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = server[0], str(server[1])
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = _server_from_host(environ.get("HTTP_HOST"), scheme)
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    return environ


def _parse_status(status: object) -> int:
    if (
        not isinstance(status, str)
        or len(status) < 3
        or not (status[:3].isascii() and status[:3].isdigit())
        or (len(status) > 3 and status[3] != " ")
    ):
        raise LocalProtocolError(f"invalid WSGI status {status!r}: expected like '200 OK'")
    return int(status[:3])


def _encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    encoded: list[tuple[bytes, bytes]] = []
    for header in headers:
        if not (isinstance(header, tuple) and len(header) == 2):
            raise LocalProtocolError(f"invalid WSGI response header {header!r}: expected (str, str)")
        name, value = header
        if not (isinstance(name, str) and isinstance(value, str)):
            raise LocalProtocolError(f"invalid WSGI response header {header!r}: expected (str, str)")
        try:
            encoded.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise LocalProtocolError(f"WSGI response header {header!r} is not latin-1") from None
    return encoded


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise LocalProtocolError(f"WSGI response body chunks must be bytes, not {type(chunk).__name__}")


class _InputStream:
    """``wsgi.input``: reads the request body from ASGI ``receive`` on demand.

    Only the bytes the application asked for plus the rest of the last pulled
    chunk are held.  Used from the worker thread only.
    """

    def __init__(self, request: _Request) -> None:
        self._request = request
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False

    def _fill(self) -> bool:
        """Pull one more message into the buffer; False at the end of the body.

        Raises:
            ClientDisconnected: the client went away before the body ended.
        """
        if self._eof:
            return False
        if self._request.disconnected:
            raise ClientDisconnected("the client disconnected")
        message = self._request.call(_RECEIVE, None)
        kind = message.get("type")
        if kind == "http.disconnect":
            self._request.disconnected = True
            raise ClientDisconnected("the client disconnected")
        if kind != "http.request":
            raise MonocerosError(f"unexpected ASGI message {kind!r} while reading the request body")
        self._eof = not message.get("more_body", False)
        body = message.get("body", b"")
        if body:
            # Compact only when appending, so a run of small reads from one
            # big chunk does not move the remainder each time.
            if self._pos:
                del self._buffer[: self._pos]
                self._pos = 0
            self._buffer += body
        return True

    def _available(self) -> int:
        return len(self._buffer) - self._pos

    def _take(self, size: int) -> bytes:
        start = self._pos
        data = bytes(self._buffer[start : start + size])
        self._pos = start + len(data)
        if self._pos == len(self._buffer):
            self._buffer.clear()
            self._pos = 0
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes (fewer only at the end), or everything left."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(self._available())
        while self._available() < size and self._fill():
            pass
        return self._take(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Read up to ``len(buffer)`` bytes without waiting for more than one
        chunk; 0 at the end of the body."""
        while not self._available() and self._fill():
            pass
        data = self._take(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        """Read up to and including the next ``\\n`` (at most ``size`` bytes)."""
        limit = -1 if size is None else size
        scanned = 0
        while True:
            newline = self._buffer.find(b"\n", self._pos + scanned)
            if newline >= 0:
                length = newline + 1 - self._pos
                break
            scanned = self._available()
            if 0 <= limit <= scanned or not self._fill():
                length = scanned
                break
        if 0 <= limit < length:
            length = limit
        return self._take(length)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end, or until their total size reaches ``hint``."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _Request:
    """One request: the event-loop side (:meth:`run`) and the worker-thread
    side (:meth:`work`), talking through a queue of operations."""

    def __init__(
        self,
        app: WSGIApplication,
        scope: Scope,
        receive: Receive,
        send: Send,
        multiprocess: bool,
    ) -> None:
        self._app = app
        self._receive = receive
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._ops: asyncio.Queue[_Op] = asyncio.Queue()
        self._lock = threading.Lock()
        self._pending: concurrent.futures.Future[Any] | None = None
        self._aborted = False
        self.environ = build_environ(scope, _InputStream(self), multiprocess)
        # Worker-thread state.
        self.disconnected = False
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._headers_sent = False

    # -- event-loop side ---------------------------------------------------

    async def run(self, executor: concurrent.futures.Executor) -> None:
        """Run the application in ``executor`` and serve its ASGI calls."""
        try:
            executor.submit(contextvars.copy_context().run, self.work)
            while True:
                op, payload, future = await self._ops.get()
                if future is None:
                    if payload is None:
                        return
                    if not isinstance(payload, Exception):
                        # SystemExit or KeyboardInterrupt in a worker thread
                        # concerns that request only; re-raised here as is,
                        # it would stop the whole server.
                        raise MonocerosError(
                            f"the WSGI application raised {type(payload).__name__}"
                        ) from payload
                    raise payload
                try:
                    result = await (self._receive() if op == _RECEIVE else self._send(payload))
                except Exception as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            self._abort()

    def _abort(self) -> None:
        """Release a worker thread still waiting for an ASGI call: this
        coroutine is leaving (finished, failed or cancelled)."""
        with self._lock:
            self._aborted = True
            future = self._pending
        if future is not None and not future.done():
            future.set_exception(ClientDisconnected("the request was cancelled"))

    # -- worker-thread side ------------------------------------------------

    def call(self, op: int, message: Message | None) -> Any:
        """Have the event loop run ``receive()`` or ``send(message)``; wait
        for the result (this wait is the backpressure)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._aborted:
                self.disconnected = True
                raise ClientDisconnected("the request was cancelled")
            self._pending = future
        try:
            self._loop.call_soon_threadsafe(self._ops.put_nowait, (op, message, future))
        except RuntimeError:
            # The event loop is closed: the server is gone.
            self.disconnected = True
            raise ClientDisconnected("the server stopped") from None
        return future.result()

    def work(self) -> None:
        """Worker-thread entry point: run the app, then report to the loop."""
        error: BaseException | None = None
        try:
            if not self._aborted:
                self._run_app()
        except BaseException as exc:
            error = exc
        # RuntimeError: the loop is closed; nobody is waiting for the outcome.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._ops.put_nowait, (_DONE, error, None))

    def _run_app(self) -> None:
        try:
            iterable = self._app(self.environ, self.start_response)
            try:
                self._send_iterable(iterable)
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        except OSError:
            # What a disconnect looks like from inside the app (our own
            # ClientDisconnected, or the app's reaction to it) is the normal
            # end of this request, not an error.
            if not self.disconnected:
                raise

    def _send_iterable(self, iterable: Iterable[bytes]) -> None:
        if isinstance(iterable, list | tuple):
            # The last chunk is known: send it with more_body=False so the
            # server can frame a single-chunk body with Content-Length.
            chunks = [chunk for chunk in map(_as_bytes, iterable) if chunk]
            last = chunks.pop() if chunks else b""
            for chunk in chunks:
                if not self._send_body(chunk, more_body=True):
                    return
            self._send_body(last, more_body=False)
            return
        for item in iterable:
            chunk = _as_bytes(item)
            if chunk and not self._send_body(chunk, more_body=True):
                return
        self._send_body(b"", more_body=False)

    def _send_body(self, chunk: bytes, more_body: bool) -> bool:
        """Send headers if still pending, then ``chunk``; False when the
        client is gone (the caller stops producing)."""
        if self.disconnected:
            return False
        if self._status is None:
            raise LocalProtocolError("the WSGI application produced a body before calling start_response()")
        try:
            if not self._headers_sent:
                start = {"type": "http.response.start", "status": self._status, "headers": self._headers}
                self.call(_SEND, start)
                self._headers_sent = True
            if chunk or not more_body:
                self.call(_SEND, {"type": "http.response.body", "body": chunk, "more_body": more_body})
        except OSError:
            self.disconnected = True
            return False
        return True

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
    ) -> Callable[[bytes], object]:
        """PEP 3333 ``start_response``: store status and headers until the
        first non-empty chunk (or ``write()``) needs them."""
        if exc_info is not None and exc_info[1] is not None:
            try:
                if self._headers_sent:
                    # Too late to change the response: let the error end it.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # Break the frame <-> traceback cycle (PEP 3333).
        elif self._status is not None:
            raise LocalProtocolError("start_response() called a second time without exc_info")
        encoded = _encode_headers(headers)
        self._status = _parse_status(status)
        self._headers = encoded
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 legacy ``write()``: send ``data`` now, headers first.

        Raises:
            ClientDisconnected: the client is gone.
        """
        if not self._send_body(_as_bytes(data), more_body=True):
            raise ClientDisconnected("the client disconnected")


class WSGIMiddleware:
    """Serve a WSGI application (PEP 3333) over ASGI.

    ``http`` scopes run the application in a thread pool shared by all the
    requests of this instance, streaming the request and response bodies with
    backpressure.  ``websocket`` scopes are refused (the client gets a 403);
    ``lifespan`` is answered, and its shutdown releases the pool.

    An exception from the application propagates out of ``__call__`` both
    before the response started (the server answers 500) and after (the
    server closes the connection).  When the client disconnects, iteration
    stops, ``close()`` is called and the call returns normally.

    Args:
        app: the WSGI application.
        workers: the number of worker threads, hence of requests run at once.
        multiprocess: ``wsgi.multiprocess``; the server knows whether it runs
            several worker processes.

    Raises:
        ConfigError: ``workers`` is less than 1.
    """

    def __init__(self, app: WSGIApplication, workers: int = 10, *, multiprocess: bool = True) -> None:
        if workers < 1:
            raise ConfigError(f"WSGI workers must be at least 1, got {workers}")
        self.app = app
        self.workers = workers
        self.multiprocess = multiprocess
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @property
    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """The thread pool, created on first use (again after :meth:`shutdown`)."""
        # Locked because event loops in several threads may share one
        # middleware; uncontended, the lock costs next to nothing.
        with self._executor_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="monoceros-wsgi"
                )
            return self._executor

    def shutdown(self, wait: bool = True) -> None:
        """Shut the thread pool down; requests already submitted still run.

        Args:
            wait: block until the worker threads have finished.
        """
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        kind = scope["type"]
        if kind == "http":
            request = _Request(self.app, scope, receive, send, self.multiprocess)
            await request.run(self.executor)
        elif kind == "websocket":
            # WSGI cannot speak WebSocket.  Closing before accepting makes the
            # server answer 403, a cleaner refusal than an exception.
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise MonocerosError(f"WSGIMiddleware cannot handle ASGI scope type {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Do not wait: a hung request must not hang the shutdown, and
                # interpreter exit joins the threads anyway.
                self.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return
