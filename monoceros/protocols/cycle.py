"""The ASGI HTTP request cycle, written once for every framing.

Theory of operation
-------------------
One :class:`RequestCycle` serves one request: it owns the ASGI ``scope``, the
``receive`` and ``send`` callables handed to the application, and the task
running the application.  It never sees bytes.  Whatever carries the request
(an HTTP/1.1 connection, whichever parser it uses, or an HTTP/2 stream)
implements :class:`StreamSink` and talks to the cycle with plain method calls:

* the carrier calls :meth:`RequestCycle.feed_body`, :meth:`feed_end`,
  :meth:`client_eof` and :meth:`client_gone` as the request body arrives or
  the client leaves;
* the cycle calls ``sink.send_head``/``sink.send_body`` with validated
  response parts, ``sink.send_informational`` for ``100 Continue``,
  ``sink.pause_reading``/``resume_reading`` for read flow control,
  ``sink.drain()`` for write flow control, ``sink.abort`` when a started
  response cannot be finished, and ``sink.cycle_done`` when the app returns.

Two state enums, one per direction, replace a heap of flags:

``RequestState``  BODY -> COMPLETE -> DELIVERED, COMPLETE_EOF -> EOF when the
                  client closes its sending side, -> DISCONNECTED at any time
``ResponseState`` START -> BODY -> DONE, or BODY -> TRAILERS -> DONE when the
                  app announced trailers (``http.response.trailers``)

ASGI extensions (advertised per connection in ``scope["extensions"]``) are
looked at only after the two usual message types, so they cost the plain
request path nothing: ``http.response.trailers`` (``sink.send_trailers``),
``http.response.early_hint`` (a 103 through ``send_informational``),
``http.response.pathsend`` and ``http.response.zerocopysend`` (the sink's
``sendfile`` where it can, else a copy in ``FILE_CHUNK`` steps that waits
for the client between steps).

``receive()`` answers ``http.disconnect`` once the response is DONE (ASGI:
"after a response has been sent"), once the client is gone, and once the
client half-closed after its request (EOF): a client that closes its socket
is nearly always gone, and apps waiting for a disconnect must learn it; the
response may still be sent (the write side stays open).  ``send()`` raises
:class:`~monoceros.errors.ClientDisconnected` (an ``OSError``) only once the
connection is really gone.

The response head is held back until the first body message (or the end of
the app), so that a response whose body is known goes out in one write and
gets a Content-Length; a head the app leaves waiting (it awaits something
between ``start`` and the first ``body``) is flushed on the next loop turn.
The server owns the framing headers: the app's ``Connection`` and
``Transfer-Encoding`` are not passed through (``Connection: close`` is
honoured), and an app's ``Server``/``Date`` replace the default ones.

Errors: a bad ASGI message raises :class:`~monoceros.errors.ASGIMessageError`
from ``send()`` (the app sees it).  While nothing is on the wire (no head
sent, or the head still held back) an app error becomes a 500 with
``Connection: close``; after that the connection is aborted so the client sees
a truncated response rather than a complete-looking wrong one.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections.abc import Awaitable, Mapping
from typing import Any, BinaryIO, Final, Protocol

from monoceros._types import ASGIApp, Headers, Message
from monoceros.errors import ASGIMessageError, ClientDisconnected
from monoceros.protocols.headers import STATUS_PHRASES, validate_header

logger = logging.getLogger("monoceros.error")

# Read flow control: stop reading the socket while this much body waits for
# the app to call receive().
HIGH_WATER: Final = 64 * 1024


class RequestState(enum.Enum):
    BODY = 0  # more request body may arrive
    COMPLETE = 1  # all of it arrived; the final http.request is not yet handed out
    DELIVERED = 2  # the app has the whole body
    COMPLETE_EOF = 3  # COMPLETE, and then the client closed its sending side
    EOF = 4  # DELIVERED and the client closed its sending side: receive() says disconnect
    DISCONNECTED = 5  # the client went away


# The members as module constants: in Python 3.11 reading an enum member
# through its class costs ~70 ns, and the hot path does it dozens of times.
REQ_BODY: Final = RequestState.BODY
REQ_COMPLETE: Final = RequestState.COMPLETE
REQ_DELIVERED: Final = RequestState.DELIVERED
REQ_COMPLETE_EOF: Final = RequestState.COMPLETE_EOF
REQ_EOF: Final = RequestState.EOF
REQ_DISCONNECTED: Final = RequestState.DISCONNECTED


class ResponseState(enum.Enum):
    START = 0
    BODY = 1
    TRAILERS = 2  # the body is complete; the announced trailers are awaited
    DONE = 3


RESP_START: Final = ResponseState.START
RESP_BODY: Final = ResponseState.BODY
RESP_TRAILERS: Final = ResponseState.TRAILERS
RESP_DONE: Final = ResponseState.DONE

# Request body bytes read per step when a file is copied into the response
# (pathsend / zerocopysend where the carrier cannot sendfile): the memory a
# file response holds at once.
FILE_CHUNK: Final = 256 * 1024


class CycleContext(Protocol):
    """What a cycle needs of the server (a :class:`~monoceros.context.ServerContext`).
    A protocol rather than the class: tests stand in for it, and the few reads
    per request it costs in the compiled build are not on a hot spot."""

    loop: asyncio.AbstractEventLoop
    app: ASGIApp
    access_log: bool

    def log_access(self, cycle: RequestCycle) -> None: ...


class StreamSink(Protocol):
    """What carries one request: an HTTP/1.1 connection or an HTTP/2 stream."""

    def send_head(
        self, cycle: RequestCycle, status: int, headers: Headers, body: bytes, end: bool
    ) -> None: ...

    def send_body(self, cycle: RequestCycle, data: bytes, end: bool) -> None: ...

    def send_informational(self, status: int, headers: Headers) -> None: ...

    def send_trailers(self, cycle: RequestCycle, headers: Headers) -> None:
        """End the response with trailer fields (dropped where they cannot go)."""

    def sendfile(
        self, cycle: RequestCycle, file: BinaryIO, offset: int, count: int
    ) -> Awaitable[int] | None:
        """Send ``count`` bytes of ``file`` from ``offset`` as body without
        copying them through Python, after the head (the awaitable gives the
        bytes sent); None where the carrier cannot (the cycle copies the file
        in bounded chunks instead)."""

    def abort(self, cycle: RequestCycle) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def drain(self) -> Awaitable[None] | None:
        """None when writing may go on now, else an awaitable that waits for it."""

    def cycle_done(self, cycle: RequestCycle) -> None: ...


_NO_BODY_STATUS: Final = frozenset((204, 304))

# What a response header is to the server.
_PLAIN: Final = 0
_CONTENT_LENGTH: Final = 1
_CONNECTION: Final = 2  # the server writes its own; a "close" is honoured
_FRAMING: Final = 3  # Transfer-Encoding: the server frames the body itself
_DEFAULT: Final = 4  # Server, Date: the app's replaces the default one

# Response headers already validated, and their kind.  Apps send the same
# few headers over and over; a lookup is several times cheaper than the two
# regular expressions of validate_header().  Bounded: cleared when full.
_CHECKED: dict[tuple[bytes, bytes], int] = {}
_CHECKED_MAX = 1024


def _header_kind(name: bytes, value: bytes) -> int:
    """Validate one response header; its kind (raises ASGIMessageError)."""
    if not validate_header(name, value):
        raise ASGIMessageError(f"invalid response header {name!r}: {value!r}")
    lname = name.lower()
    if lname == b"content-length":
        return _CONTENT_LENGTH
    if lname == b"connection":
        return _CONNECTION
    if lname == b"transfer-encoding":
        return _FRAMING
    if lname == b"server" or lname == b"date":
        return _DEFAULT
    return _PLAIN


def _digits(value: bytes) -> int:
    """A Content-Length value: ASCII digits only (raises ASGIMessageError).
    (Compiled, this loop costs a fraction of ``isdigit()`` and ``int()``.)"""
    if not value:
        raise ASGIMessageError(f"invalid Content-Length {value!r}")
    n = 0
    for i in range(len(value)):
        c = value[i]
        if c < 48 or c > 57:  # not 0-9
            raise ASGIMessageError(f"invalid Content-Length {value!r}")
        n = n * 10 + c - 48
    return n


class RequestCycle:
    """One request and its response; see the module docstring."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_pending_head",
        "_trailer_fields",
        "_waiter",
        "body_allowed",
        "content_length",
        "ctx",
        "expect_continue",
        "keep_alive",
        "method",
        "replaces_defaults",
        "req_state",
        "resp_state",
        "response_bytes",
        "response_headers",
        "scope",
        "sink",
        "start_time",
        "status",
        "task",
        "trailers",
    )

    def __init__(
        self,
        ctx: CycleContext,
        sink: StreamSink,
        scope: dict[str, Any],  # (a dict: compiled, reading it takes dict primitives)
        method: str,
        body_expected: bool,
        expect_continue: bool,
        keep_alive: bool,
    ) -> None:
        self.ctx = ctx
        self.sink = sink
        self.scope = scope
        # The Task running the app, if one does (an eager first step that
        # finished needs none, see .eager).
        self.task: asyncio.Task[None] | None = None
        self.method = method
        self.req_state = REQ_BODY if body_expected else REQ_COMPLETE
        self.resp_state = RESP_START
        # True while the client waits for "100 Continue" before sending a body.
        self.expect_continue = expect_continue and body_expected
        self.keep_alive = keep_alive
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._pending_head: tuple[int, Headers] | None = None
        self.status = 0
        self.response_headers: Headers = []
        self.content_length: int | None = None
        self.response_bytes = 0
        self.body_allowed = True
        # The app set Server or Date itself: the sink leaves out its defaults.
        self.replaces_defaults = False
        self.start_time = 0.0
        # The app announced trailers (http.response.trailers extension): the
        # last body message does not end the response.
        self.trailers = False
        self._trailer_fields: Headers = []  # trailers sent with more_trailers, so far

    # -- carrier side ---------------------------------------------------------
    def feed_body(self, data: bytes) -> None:
        """Request body arrived."""
        if self.req_state is not REQ_BODY:
            return
        # The client sends without waiting (or the 100 went out): never send
        # a 100 in the middle of a body.
        self.expect_continue = False
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self.sink.pause_reading()
        self._wake()

    def feed_end(self) -> None:
        """The request body is complete."""
        if self.req_state is REQ_BODY:
            self.req_state = REQ_COMPLETE
            self._wake()

    def client_eof(self) -> None:
        """The client closed its sending side (after a complete request, or
        in the middle of its body: then it is gone)."""
        state = self.req_state
        if state is REQ_BODY:
            self.client_gone()
        elif state is REQ_COMPLETE:
            self.req_state = REQ_COMPLETE_EOF
        elif state is REQ_DELIVERED:
            self.req_state = REQ_EOF
            self._wake()

    def client_gone(self) -> None:
        """The client disconnected (or the stream was reset)."""
        self.req_state = REQ_DISCONNECTED
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- application side -----------------------------------------------------
    async def receive(self) -> Message:
        """ASGI ``receive``: request body, then ``http.disconnect``."""
        while True:
            if self.resp_state is RESP_DONE:
                return {"type": "http.disconnect"}
            state = self.req_state
            if state is REQ_BODY:
                if self._chunks:
                    return self._take(True)
                if self.expect_continue:
                    self.expect_continue = False
                    if self.resp_state is RESP_START:
                        self.sink.send_informational(100, [])
                self.sink.resume_reading()
            elif state is REQ_COMPLETE:
                self.req_state = REQ_DELIVERED
                return self._take(False)
            elif state is REQ_COMPLETE_EOF:
                self.req_state = REQ_EOF
                return self._take(False)
            elif state is not REQ_DELIVERED:  # EOF or DISCONNECTED
                return {"type": "http.disconnect"}
            # Nothing to hand out yet: wait for body, its end, a disconnect,
            # or (once the body was delivered) the end of the response.
            waiter = self._waiter = self.ctx.loop.create_future()
            await waiter

    def _take(self, more: bool) -> Message:
        chunks = self._chunks
        if not chunks:
            body = b""
        else:
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._chunks = []
            if self._buffered > HIGH_WATER and more:
                self.sink.resume_reading()
            self._buffered = 0
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(self, message: Message) -> None:
        """ASGI ``send``: response start, body, and the extensions we support."""
        if self.req_state is REQ_DISCONNECTED:
            raise ClientDisconnected("the client disconnected")
        # A dict-typed name for the message: compiled, its lookups are dict
        # operations rather than method calls by name (any other mapping is copied).
        msg: dict[str, Any]
        try:
            if type(message) is dict:
                msg = message
            elif isinstance(message, Mapping):
                msg = dict(message)
            else:
                raise TypeError
            mtype = msg["type"]
        except (KeyError, TypeError):
            raise ASGIMessageError(f"an ASGI message must be a dict with a 'type', got {message!r}") from None
        state = self.resp_state
        if mtype == "http.response.body":
            if state is not RESP_BODY:
                raise ASGIMessageError(self._unexpected(mtype))
            body = msg.get("body", b"")
            more = msg.get("more_body", False)
            if type(body) is not bytes:
                if not isinstance(body, (bytes, bytearray, memoryview)):
                    raise ASGIMessageError(f"'body' must be bytes, got {type(body).__name__}")
                body = bytes(body)
            self._send_body(body, bool(more))
            if more:
                drained = self.sink.drain()
                if drained is not None:
                    await drained
                    if self._disconnected():  # it may have happened while we waited
                        raise ClientDisconnected("the client disconnected")
        elif mtype == "http.response.start":
            if state is not RESP_START:
                raise ASGIMessageError(self._unexpected(mtype))
            self._start(msg)
        else:
            await self._extension(mtype, message)

    # -- ASGI extensions (the rare path: send() looks at them last) ---------------
    async def _extension(self, mtype: object, message: Message) -> None:
        state = self.resp_state
        if mtype == "http.response.trailers":
            if not self.trailers:
                raise ASGIMessageError("http.response.trailers, but the start had no 'trailers': True")
            if state is not RESP_TRAILERS:
                raise ASGIMessageError(self._unexpected(mtype))
            headers = self._checked_fields(message.get("headers", ()), "trailer")
            self._trailer_fields += headers
            if not message.get("more_trailers", False):
                self._end_with_trailers(self._trailer_fields)
        elif mtype == "http.response.early_hint":
            if state is not RESP_START:
                raise ASGIMessageError("http.response.early_hint must come before http.response.start")
            links = message.get("links", ())
            fields = self._checked_fields([(b"link", link) for link in links], "early hint link")
            if fields:
                self.sink.send_informational(103, fields)
        elif mtype == "http.response.pathsend":
            if state is not RESP_BODY:
                raise ASGIMessageError(self._unexpected(mtype))
            path = message.get("path")
            if not isinstance(path, str) or not os.path.isabs(path):
                raise ASGIMessageError(f"'path' must be an absolute path, got {path!r}")
            try:
                file = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise ASGIMessageError(f"cannot open {path!r}: {exc.strerror}") from None
            with file:
                size = os.fstat(file.fileno()).st_size
                await self._send_file(file, 0, size, False)
        elif mtype == "http.response.zerocopysend":
            if state is not RESP_BODY:
                raise ASGIMessageError(self._unexpected(mtype))
            source = message.get("file")
            try:
                fd = source if isinstance(source, int) else source.fileno()  # type: ignore[union-attr]
                offset = int(message.get("offset", 0) or 0)
                count = message.get("count")
                end = os.fstat(fd).st_size
            except (AttributeError, TypeError, ValueError, OSError):
                raise ASGIMessageError(f"'file' must be a file with a descriptor, got {source!r}") from None
            if offset < 0:
                raise ASGIMessageError(f"'offset' must be >= 0, got {offset}")
            count = max(0, end - offset) if count is None else int(count)
            with open(fd, "rb", closefd=False) as view:
                await self._send_file(view, offset, count, bool(message.get("more_body", False)))
        else:
            raise ASGIMessageError(self._unexpected(mtype))

    def _checked_fields(self, items: Any, what: str) -> Headers:
        fields: Headers = []
        try:
            for name, value in items:
                name, value = bytes(name), bytes(value)
                if _header_kind(name, value) != _PLAIN:
                    raise ASGIMessageError(f"{name!r} is not allowed as a {what} field")
                fields.append((name, value))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ASGIMessageError):
                raise
            raise ASGIMessageError(f"{what} fields must be [bytes, bytes] pairs: {exc}") from None
        return fields

    def _end_with_trailers(self, headers: Headers) -> None:
        self.resp_state = RESP_DONE
        self.sink.send_trailers(self, headers)
        self._wake()
        if self.ctx.access_log:
            self.ctx.log_access(self)

    async def _send_file(self, file: BinaryIO, offset: int, count: int, more: bool) -> None:
        """A file as (part of) the body: sendfile where the carrier can,
        else a copy in FILE_CHUNK steps that waits for the client."""
        head = self._pending_head
        if head is not None and self.content_length is None and not more and self.response_bytes == 0:
            # The whole body is this file: the head says how long it is.
            self.content_length = count
            if self.body_allowed or self.method == "HEAD":
                self.response_headers.append((b"content-length", b"%d" % count))
        if self.body_allowed and self.content_length is not None and head is not None and count:
            total = self.response_bytes + count
            if total > self.content_length or (not more and total < self.content_length):
                self._wrong_length(total, more)
            self._pending_head = None
            self.sink.send_head(self, head[0], head[1], b"", False)
            sending = self.sink.sendfile(self, file, offset, count)
            if sending is not None:
                sent = await sending
                if self._disconnected():
                    raise ClientDisconnected("the client disconnected")
                if sent < count:
                    self._abort()  # the head promised more
                    raise ASGIMessageError(f"the file ended {count - sent} bytes early")
                self.response_bytes += count
                if not more:
                    self._send_body(b"", False)
                return
        loop = self.ctx.loop
        fd = file.fileno()
        while True:
            size = min(FILE_CHUNK, count)
            data = await loop.run_in_executor(None, os.pread, fd, size, offset) if size else b""
            if len(data) < size:
                self._send_error_or_abort()
                raise ASGIMessageError(f"the file ended {count - len(data)} bytes early")
            offset += size
            count -= size
            last = count == 0
            self._send_body(data, more or not last)
            if last:
                return
            drained = self.sink.drain()
            if drained is not None:
                await drained
            if self._disconnected():
                raise ClientDisconnected("the client disconnected")

    def _send_error_or_abort(self) -> None:
        if self._pending_head is not None:
            self._pending_head = None
            self.send_error(500)
        else:
            self._abort()

    def nothing_sent(self) -> bool:
        """True while no byte of the response reached the sink (no start, or
        a head still held back): the carrier may still answer with an error."""
        state = self.resp_state
        if state is RESP_START:
            return True
        return state is RESP_BODY and self._pending_head is not None

    def _disconnected(self) -> bool:
        return self.req_state is REQ_DISCONNECTED

    def _unexpected(self, mtype: object) -> str:
        if self.resp_state is RESP_DONE:
            return f"Unexpected ASGI message {mtype!r} sent, after response already completed."
        if self.resp_state is RESP_START:
            return f"Expected ASGI message 'http.response.start', but got {mtype!r}."
        if self.resp_state is RESP_TRAILERS:
            return f"Expected ASGI message 'http.response.trailers', but got {mtype!r}."
        return f"Expected ASGI message 'http.response.body', but got {mtype!r}."

    def _start(self, message: dict[str, Any]) -> None:
        status = message.get("status")
        if type(status) is not int:
            # An IntEnum such as http.HTTPStatus is fine; bool is not a status.
            if not isinstance(status, int) or isinstance(status, bool):
                raise ASGIMessageError(f"'status' must be an int between 200 and 599, got {status!r}")
            status = int(status)
        if not 200 <= status <= 599:
            if 100 <= status < 200:
                raise ASGIMessageError(
                    "send informational responses with an extension, not http.response.start"
                )
            raise ASGIMessageError(f"'status' must be an int between 200 and 599, got {status!r}")
        raw = message.get("headers", ())
        checked: Headers = []
        content_length = None
        try:
            # A list, as apps send them (compiled, a list is walked by index).
            headers: list[Any] = raw if type(raw) is list else list(raw)
            for item in headers:
                try:
                    kind = _CHECKED.get(item)
                except TypeError:  # unhashable: a list, bytearrays...
                    kind = None
                if kind is None:
                    name, value = item
                    if type(name) is not bytes or type(value) is not bytes:
                        name, value = bytes(name), bytes(value)  # bytearray, memoryview...
                    kind = _header_kind(name, value)
                    if type(item) is tuple and item[0] is name and item[1] is value:
                        if len(_CHECKED) >= _CHECKED_MAX:
                            _CHECKED.clear()
                        _CHECKED[item] = kind
                    else:
                        item = (name, value)
                if kind == _PLAIN:
                    checked.append(item)
                elif kind == _CONTENT_LENGTH:
                    value = item[1]
                    if content_length is not None:
                        raise ASGIMessageError("more than one Content-Length header")
                    content_length = _digits(value)
                    checked.append(item)
                elif kind == _CONNECTION:
                    if b"close" in item[1].lower():
                        self.keep_alive = False
                elif kind == _DEFAULT:
                    self.replaces_defaults = True
                    checked.append(item)
                # _FRAMING: dropped
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ASGIMessageError):
                raise
            raise ASGIMessageError(f"'headers' must be an iterable of [bytes, bytes] pairs: {exc}") from None
        if "trailers" in message:
            self.trailers = bool(message["trailers"])
        self.status = status
        self.response_headers = checked
        self.content_length = content_length
        self.body_allowed = status not in _NO_BODY_STATUS and self.method != "HEAD"
        self.resp_state = RESP_BODY
        self._pending_head = (status, checked)
        if content_length is None:
            # Without a Content-Length the body may be streamed, and the app
            # may await anything before its first chunk: flush the head on
            # the next loop turn.  With one, the body is on its way (that is
            # what frameworks send): it carries the head in the same write,
            # and a head-only flush would only cost a timer handle.
            self.ctx.loop.call_soon(self._flush_head)

    def _flush_head(self) -> None:
        """Send a head the app left waiting (it awaited between start and body)."""
        head = self._pending_head
        if head is not None and self.resp_state is RESP_BODY:
            self._pending_head = None
            self.sink.send_head(self, head[0], head[1], b"", False)

    def _send_body(self, body: bytes, more: bool) -> None:
        if not self.body_allowed:
            if (
                body
                and not more
                and self._pending_head is not None
                and self.content_length is None
                and self.method == "HEAD"
            ):
                # The app produced the GET body: a HEAD answer carries its length.
                self.content_length = len(body)
                self.response_headers.append((b"content-length", b"%d" % len(body)))
            body = b""
        elif self.content_length is not None:
            total = self.response_bytes + len(body)
            if total > self.content_length or (not more and total < self.content_length):
                self._wrong_length(total, more)
        self.response_bytes += len(body)
        if not more:
            if self.trailers:  # the trailers end the response
                self.resp_state = RESP_TRAILERS
                more = True
            else:
                self.resp_state = RESP_DONE
        head = self._pending_head
        if head is not None:
            self._pending_head = None
            self.sink.send_head(self, head[0], head[1], body, not more)
        elif body or not more:
            self.sink.send_body(self, body, not more)
        if not more:
            self._wake()
            if self.ctx.access_log:
                self.ctx.log_access(self)

    def _wrong_length(self, total: int, more: bool) -> None:
        message = (
            f"the response body ({total} bytes{' so far' if more else ''}) does not match "
            f"its Content-Length ({self.content_length})"
        )
        if self._pending_head is not None:
            # Nothing is on the wire yet: the client gets a clean 500.
            self._pending_head = None
            self.send_error(500)
        else:
            self._abort()
        raise ASGIMessageError(message)

    # -- the application task ---------------------------------------------------
    async def run_asgi(self) -> None:
        """Run the app for this request, then tell the sink."""
        app: Any = self.ctx.app  # Any: a wrong app may return a value, reported below
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self.app_failed(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if result is not None:
                logger.error("ASGI callable should return None, but returned '%s'.", result)
            if self.resp_state is not RESP_DONE:
                self.app_incomplete()
        finally:
            self.sink.cycle_done(self)

    def app_incomplete(self) -> None:
        """The app returned without finishing its response."""
        state = self.req_state
        if state is REQ_EOF or state is REQ_DISCONNECTED:
            # It saw http.disconnect: there is nobody to answer.
            self._abort()
            return
        if self.resp_state is RESP_START:
            logger.error("ASGI callable returned without starting response.")
        elif self.resp_state is RESP_TRAILERS:
            logger.error("ASGI callable returned without sending the trailers it announced.")
            self._end_with_trailers([])
            return
        else:
            logger.error("ASGI callable returned without completing response.")
        if self._pending_head is not None or self.resp_state is RESP_START:
            self.send_error(500)
        else:
            self._abort()

    def app_failed(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            self._abort()
            return
        gone = self.req_state is REQ_DISCONNECTED
        if not gone or not isinstance(exc, OSError):
            logger.error("Exception in ASGI application\n", exc_info=exc)
        if self.resp_state is RESP_DONE:
            return
        if not gone and (self.resp_state is RESP_START or self._pending_head is not None):
            self.send_error(500)
        else:
            self._abort()

    def _abort(self) -> None:
        self.keep_alive = False
        if self.resp_state is not RESP_DONE:
            self.resp_state = RESP_DONE
            self._pending_head = None
            self.sink.abort(self)
            self._wake()

    def send_error(self, status: int) -> None:
        body = STATUS_PHRASES[status]
        self.keep_alive = False
        self.status = status
        self.content_length = len(body)
        self.response_bytes = 0
        self.body_allowed = self.method != "HEAD"
        self.replaces_defaults = False
        self.resp_state = RESP_BODY
        self.response_headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        self._pending_head = (status, self.response_headers)
        self._send_body(body, False)


__all__ = [
    "FILE_CHUNK",
    "HIGH_WATER",
    "CycleContext",
    "RequestCycle",
    "RequestState",
    "ResponseState",
    "StreamSink",
]
