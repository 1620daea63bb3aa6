"""HTTP/1.1 over an asyncio transport, for both parsers.

Theory of operation
-------------------
:class:`HTTP11Protocol` owns one transport, one codec (h11 or httptools, see
:mod:`.codecs`) and at most one *current* :class:`~.cycle.RequestCycle`.  Bytes
go into the codec; events come out in order:

* a ``Request`` starts a cycle (unless a limit answers it first);
* ``Data`` / ``END_OF_MESSAGE`` feed the current cycle;
* ``PAUSED`` means the current request is complete: the next one is parsed
  only once the current response is complete, so responses never overtake
  each other.  Reading goes on meanwhile (so that a client's EOF reaches the
  app as ``http.disconnect``) until bytes of a next request arrive; then it
  stops until the response is done;
* a :class:`~monoceros.errors.RemoteProtocolError` is answered by
  :meth:`HTTP11Protocol.fail`, the one place that turns errors into bytes.

The connection is in one :class:`ConnState`:

``IDLE``      waiting for a request head (keep-alive, or a fresh connection)
``ACTIVE``    a request is being answered
``DRAINING``  the response is done but the app did not read the whole request
              body: the rest is read and dropped (up to ``DRAIN_LIMIT``), then
              IDLE; a body that may never come (a pending ``Expect:
              100-continue``) or is too long gets ``Connection: close`` instead
``WAITING``   the response is done but the client does not read fast enough
              (the transport paused writing): nothing more is parsed or read
              until it resumes, so a pipelining client that never reads cannot
              pile up responses in memory
``CLOSING``   no more requests (error, ``Connection: close``, shutdown); after
              a refusal the connection lingers a moment (see ``_linger``)
``UPGRADING`` an ``Upgrade: h2c`` request with a body: the body is read here
              (RFC 7540 §3.2 has the client send it whole first), then the
              connection goes to HTTP/2 with the request as stream 1

HTTP/2 starts here too and leaves at once (:mod:`.http2`): TLS whose ALPN
chose ``h2`` (in ``connection_made``), a cleartext connection whose first
bytes are the HTTP/2 preface (looked at only for the first read of a
connection, never on the keep-alive path), and ``Upgrade: h2c``.  A first
read that is neither HTTP/1.x nor the preface is closed without an HTTP/1.1
answer (a broken preface, RFC 9113 §3.4), see ``_not_http1``.

When a response completes the connection goes back to IDLE and parses what
is already buffered (pipelining) before reading more.  The application task
may outlive its response (background work after the body): that does not hold
the connection.  Apps run in a copy of the context the connection was
accepted in (or a fresh one with ``reset_contextvars``), never in the context
of whichever task happened to parse their request.

A client that half-closes after a complete request (EOF) is told to the app
as ``http.disconnect`` (clients that close their socket are nearly always
gone); the response may still be written, then the connection closes.

Timeouts are not timers: each connection keeps a ``deadline`` that the
server's once-a-second sweep checks (:meth:`monoceros.server.ServerContext.sweep`),
so a keep-alive request costs one clock read, not a timer handle.  While a
request is ACTIVE the deadline is the request body's: it runs only while the
app waits for body we are reading (``resume_reading``), moves on with every
body chunk, and stops when the body is complete or the app's buffer is full
(then the client is not the one who is late).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import enum
import logging
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, BinaryIO, Final, cast
from urllib.parse import unquote

from monoceros._types import Headers
from monoceros.errors import RemoteProtocolError
from monoceros.protocols.codecs import END_OF_MESSAGE, NEED_DATA, PAUSED, Data, make_codec
from monoceros.protocols.cycle import HIGH_WATER, REQ_BODY, RequestCycle
from monoceros.protocols.headers import KNOWN_METHODS, STATUS_PHRASES, Request, carries_proxy_headers
from monoceros.protocols.utils import get_addresses, http_extensions, start_task
from monoceros.protocols.websocket import WebSocketProtocol, accept_response, check_handshake
from monoceros.protocols.wscodecs import WS_CODECS
from monoceros.protocols.wscycle import WebSocketCycle

if TYPE_CHECKING:
    from monoceros._types import UpgradedProtocol
    from monoceros.context import ServerContext

logger = logging.getLogger("monoceros.error")

STATUS_LINES: Final[dict[int, bytes]] = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, phrase) for code, phrase in STATUS_PHRASES.items()
}
_METHODS: Final[dict[bytes, str]] = {}
# An HTTP scope's keys, in the order they are shown, with the values that
# never change (see _on_request).
_SCOPE: Final[dict[str, Any]] = dict.fromkeys(
    (
        "type", "asgi", "http_version", "server", "client", "scheme", "method", "root_path",
        "path", "raw_path", "query_string", "headers", "state", "extensions",
    )
)
_SCOPE.update(type="http", http_version="1.1")
_ASGI: Final[dict[str, str]] = {"version": "3.0", "spec_version": "2.4"}
# The start of the HTTP/2 connection preface (RFC 9113 §3.4): enough to tell
# it from any HTTP/1.1 request ("PRI" is no method we serve).
PREFACE_START: Final = b"PRI * HTTP/2.0\r\n"
# The most whole responses of a pipelined batch sent in one write (see _cork).
BATCH_MAX: Final = 32
# How much of a connection's first bytes fail() may look at.
_FIRST_LINE: Final = 64
SWITCHING_TO_H2C: Final = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"


class ConnState(enum.Enum):
    IDLE = 0
    ACTIVE = 1
    DRAINING = 2
    WAITING = 3
    CLOSING = 4
    UPGRADING = 5


# The members as module constants: in Python 3.11 reading an enum member
# through its class costs ~70 ns, and the hot path does it dozens of times.
_IDLE: Final = ConnState.IDLE
_ACTIVE: Final = ConnState.ACTIVE
_DRAINING: Final = ConnState.DRAINING
_WAITING: Final = ConnState.WAITING
_CLOSING: Final = ConnState.CLOSING
_UPGRADING: Final = ConnState.UPGRADING


# A response that ends before the app read the whole request body leaves the
# rest on the wire.  Up to this much of it is read and dropped to keep the
# connection; a longer rest (or one that may never come, see _can_drain) gets
# the connection closed instead.
DRAIN_LIMIT: Final = 1024 * 1024

# At graceful shutdown, an idle connection is closed once it has been idle
# this long (see HTTP11Protocol.shutdown).
SHUTDOWN_IDLE_GRACE: Final = 0.5

# After a refusal, how much of what the client still sends is read and
# dropped, and for how long, before the close (see HTTP11Protocol._linger).
LINGER_BYTES: Final = 1024 * 1024
LINGER_SECONDS: Final = 2.0

# create_task(context=...) exists from Python 3.11 on.
_TASK_CONTEXT: Final = sys.version_info >= (3, 11)


def render_error(status: int, default_headers: bytes, headers: Headers | None = None) -> bytes:
    """The complete response for a request we refuse ourselves.

    Used for every parser, so refusals are the same bytes whichever parser
    found the fault.
    """
    body = STATUS_PHRASES.get(status, b"Error")
    if headers:
        default_headers += b"".join(b"%s: %s\r\n" % pair for pair in headers)
    return b"".join(
        (
            STATUS_LINES.get(status) or b"HTTP/1.1 %d Error\r\n" % status,
            default_headers,
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body),
            body,
        )
    )


class HTTP11Protocol(asyncio.Protocol):
    """One HTTP/1.1 connection; the :class:`~.cycle.StreamSink` of its cycles."""

    # Slots, not an instance dict: past 30 attributes CPython 3.11 stops
    # sharing the keys of instance dicts, and every attribute read on the hot
    # path gets slower (+2.6k instructions/request at 30, bench/micro.py).
    __slots__ = (
        "_drain_waiter",
        "_read_paused",
        "_write_paused",
        "body_length",
        "body_received",
        "chunked",
        "client",
        "codec",
        "context",
        "ctx",
        "cycle",
        "deadline",
        "drain_until",
        "extensions",
        "first_bytes",
        "fresh",
        "head_started",
        "http10",
        "idle_since",
        "linger_left",
        "out",
        "out_seen",
        "proxy",
        "scheme",
        "scope_base",
        "served",
        "server",
        "starting",
        "state",
        "task",
        "tls",
        "transport",
        "upgrade_body",
        "upgrade_request",
        "ws_cycle",
        "ws_key",
    )

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.codec = make_codec(ctx.http_impl, ctx.max_head_size, ctx.max_request_line)
        self.state = _IDLE
        self.cycle: RequestCycle | None = None
        self.task: asyncio.Task[None] | None = None  # a WebSocket handshake's app call
        self.starting: RequestCycle | None = None  # a request whose app is about to start
        self.deadline = 0.0
        self.idle_since = 0.0  # when the connection last became idle (shutdown's grace)
        self.head_started = False  # bytes of a head arrived while IDLE
        self.chunked = False  # the current response uses chunked framing
        self.http10 = False
        self.body_length: int | None = None  # the request's Content-Length
        self.body_received = 0  # request body bytes of the current request
        self.drain_until = 0  # DRAINING: close once body_received passes this
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.linger_left = 0  # bytes still read and dropped after a refusal
        self.fresh = True  # nothing received yet: an HTTP/2 preface may come
        self.first_bytes = b""  # the start of a fresh cleartext connection (see fail)
        self.upgrade_body: list[bytes] = []  # the body of an h2c upgrade request
        self.upgrade_request: Request | None = None
        self.ws_cycle: WebSocketCycle | None = None  # a WebSocket handshake the app has not answered
        self.ws_key = b""
        # Responses of a pipelined batch waiting to go out in one write (see _cork).
        self.out: list[bytes] | None = None
        self.out_seen: RequestCycle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        ctx = self.ctx
        self.server, self.client = get_addresses(transport)
        self.tls = bool(transport.get_extra_info("sslcontext"))
        self.scheme = "https" if self.tls else "http"
        ssl_object = transport.get_extra_info("ssl_object") if self.tls else None
        self.extensions = http_extensions(ssl_object, ctx.server_cert)
        self.scope_base: dict[str, Any] | None = None  # see _on_request
        self.served = False
        # Apps run in a copy of the context the connection was accepted in,
        # never of whatever task happens to parse the request: a pipelined
        # request is parsed inside the previous app's send(), and the
        # transport's callbacks take the context of whoever resumed reading.
        self.context = contextvars.copy_context()
        # Whether the peer may set proxy headers is decided once per connection.
        proxy = ctx.proxy
        peer = {"client": self.client, "server": self.server}
        if proxy is not None and not proxy.trusted_hosts.trusts_peer(peer):
            proxy = None
        self.proxy = proxy
        ctx.connections.add(self)
        self.idle_since = ctx.loop.time()
        self.deadline = self.idle_since + ctx.timeout_request_header
        if ssl_object is not None and ctx.http2 and ssl_object.selected_alpn_protocol() == "h2":
            self._to_http2(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _CLOSING
        self.out = None
        self.ctx.connection_closed(self)
        cycle = self.cycle
        if cycle is not None:
            cycle.client_gone()
        if self.ws_cycle is not None:
            self.ws_cycle.lost()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool:
        if self.state is _CLOSING:
            return False  # the client is done (e.g. after our refusal): close
        self.codec.receive_data(b"")
        self._process()  # an EOF inside a head or body is an error; between requests, a close
        if self.state is not _ACTIVE:
            return False
        if self.ws_cycle is not None:  # gone before its handshake was answered
            self.ws_cycle.lost()
            return False
        # The client closed its sending side after a complete request: the
        # app hears http.disconnect, but the response may still go out (the
        # write side stays open, except under TLS where asyncio cannot).
        cycle = cast(RequestCycle, self.cycle)
        cycle.keep_alive = False
        cycle.client_eof()
        return not self.tls

    def data_received(self, data: bytes) -> None:
        if self.state is _IDLE and not self.head_started:
            if self.fresh:  # the first bytes of the connection
                self.fresh = False
                if self._http2_preface(data):
                    return
            self.head_started = True
            self.codec.receive_data(data)
            self._process()
            if self.state is _IDLE and self.head_started:
                # Only part of a head came: from now on the client has
                # timeout_request_header to finish it.  (A whole request,
                # the usual case, needs no clock read here.)
                self.deadline = self.ctx.loop.time() + self.ctx.timeout_request_header
            return
        if self.state is _CLOSING:  # lingering after a refusal: drop
            self.linger_left -= len(data)
            if self.linger_left <= 0:
                self.transport.close()
            return
        # The request was complete before these bytes came: they are the
        # next one, pipelined, and wait for the current response.  Reading
        # stops so that a flood of them stays one read's worth.
        pipelined = (
            self.state is _ACTIVE
            and cast(RequestCycle, self.cycle).req_state is not REQ_BODY
        )
        self.codec.receive_data(data)
        self._process()
        if pipelined:
            self.pause_reading()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self.state is _WAITING:  # the client caught up: next request
            self.state = _IDLE
            self.codec.start_next_cycle()
            self.resume_reading()
            self._process()

    # -- the event loop of the connection ------------------------------------------
    def _process(self) -> None:
        # The app of a request found here starts once the parser has nothing
        # more for now, whichever way this returns (see _on_request).
        try:
            codec = self.codec
            events = codec.events  # what next_event() would pop first, without the call
            while self.state is not _CLOSING:
                if events:
                    event = events.popleft()
                else:
                    try:
                        event = codec.next_event()
                    except RemoteProtocolError as exc:
                        self.fail(exc)
                        return
                t = type(event)
                if t is Data:
                    self._on_data(event.data)  # type: ignore[union-attr]
                elif t is Request:
                    self._on_request(event)  # type: ignore[arg-type]
                elif event is END_OF_MESSAGE:
                    if self.state is _DRAINING:
                        self._next_cycle()  # the unread body is gone: next request
                    elif self.cycle is not None:
                        self.deadline = 0.0  # the body is complete (see the body timeout)
                        self.cycle.feed_end()
                    elif self.state is _UPGRADING:  # the h2c upgrade request is complete
                        self._to_http2(self.codec.trailing_data())
                        return
                elif event is NEED_DATA:
                    return
                elif event is PAUSED:
                    # The current request is complete; the next one is parsed
                    # after the response.  Reading goes on (an EOF must still
                    # reach the app) until bytes of a next request come, see
                    # data_received.
                    return
                else:  # CLOSED: the client is done sending
                    if self.state is _IDLE:
                        self._close()
                    return  # while ACTIVE, eof_received tells the cycle
        finally:
            starting = self.starting
            if starting is not None:
                self._launch(starting)

    def _on_request(self, req: Request) -> None:
        ctx = self.ctx
        self.state = _ACTIVE
        self.head_started = False
        self.deadline = 0.0
        self.http10 = req.http_version == b"1.0"
        if ctx.limit_concurrency is not None and ctx.active >= ctx.limit_concurrency:
            self.fail(RemoteProtocolError("too many concurrent requests", 503))
            logger.warning("Exceeded concurrency limit.")
            return
        limit = ctx.limit_request_body
        if limit is not None and req.content_length is not None and req.content_length > limit:
            self.fail(RemoteProtocolError("request body too large", 413))
            return
        method = _METHODS.get(req.method)
        if method is None:
            method = _METHODS[req.method] = req.method.decode("ascii")
        target = req.target
        if target[0] != 47 and target != b"*":
            # absolute-form: the path starts after the authority.  ("OPTIONS *"
            # keeps "*" as its path, as uvicorn and hypercorn give it.)
            slash = target.find(b"/", target.find(b"//") + 2)
            target = target[slash:] if slash >= 0 else b"/"
        # utils.http_scope() and utils.start_app(), inline: the two calls
        # cost 0.6 % of a keep-alive request (bench/micro.py --callgrind).
        raw_path, _, query = target.partition(b"?")
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        root_path = ctx.root_path
        # A copy of a template, then this request's values: compiled, a dict
        # display inserts key by key into a dict that grows twice on the way.
        # From its second request on, a connection keeps a template with its
        # own values (five insertions fewer per request); not before, or each
        # of thousands of connections that ask once and idle would hold one.
        base = self.scope_base
        if base is not None:
            scope = base.copy()
        else:
            scope = _SCOPE.copy()
            scope["server"] = self.server
            scope["client"] = self.client
            scope["scheme"] = self.scheme
            scope["root_path"] = root_path
            scope["extensions"] = self.extensions
            if self.served:
                self.scope_base = scope.copy()
            self.served = True
        scope["asgi"] = _ASGI.copy()
        if self.http10:
            scope["http_version"] = "1.0"
        scope["method"] = method
        scope["path"] = root_path + path if root_path else path
        scope["raw_path"] = raw_path
        scope["query_string"] = query
        scope["headers"] = req.headers
        scope["state"] = ctx.state.copy()
        if req.upgrade is not None:
            if req.upgrade == b"websocket" and ctx.ws_impl is not None:
                self._start_websocket(req, scope, method)
                return
            if self._upgrade(req):  # h2c
                return
        if self.proxy is not None and carries_proxy_headers(req.headers):
            self.proxy.rewrite(scope)
        body_expected = req.chunked or bool(req.content_length)
        cycle = self.cycle = RequestCycle(
            ctx, self, scope, method, body_expected, req.expect_continue, req.keep_alive
        )
        self.chunked = False
        self.body_length = req.content_length
        self.body_received = 0
        ctx.active += 1
        ctx.requests += 1
        if ctx.access_log_needs_time:
            cycle.start_time = ctx.loop.time()
        # The app starts once the parser has nothing more for now (_process),
        # so that the body that came with the head is already buffered.
        self.starting = cycle

    def _launch(self, cycle: RequestCycle) -> None:
        """Run the app for ``cycle``: its first step at once where it can
        (see .eager), else in a Task of its own."""
        self.starting = None
        ctx = self.ctx
        context = contextvars.Context() if ctx.reset_contextvars else self.context.copy()
        eager = ctx.eager
        if eager is not None:
            eager.start(cycle.run_asgi(), context, cycle, self._hold if self.out is None else None)
        elif _TASK_CONTEXT:
            cycle.task = ctx.loop.create_task(cycle.run_asgi(), context=context)
        else:  # pragma: no cover - Python 3.10
            cycle.task = context.run(ctx.loop.create_task, cycle.run_asgi())

    def _start_websocket(self, req: Request, scope: dict[str, Any], method: str) -> None:
        """A WebSocket opening handshake: run the app in a WebSocketCycle,
        with a RequestCycle ready for a denial (see websocket.py)."""
        ctx = self.ctx
        try:
            self.ws_key, offers = check_handshake(req, scope)
        except RemoteProtocolError as exc:
            self.fail(exc)
            return
        if self.proxy is not None and carries_proxy_headers(req.headers):
            self.proxy.rewrite(scope)
        response = self.cycle = RequestCycle(ctx, self, scope, method, False, False, False)
        self.chunked = False
        self.body_length = 0
        self.body_received = 0
        codec = WS_CODECS[cast(str, ctx.ws_impl)](ctx.ws_max_size, ctx.ws_per_message_deflate)
        ws = self.ws_cycle = WebSocketCycle(ctx, scope, codec, self, response, offers)
        self.task = start_task(self, ws.run_asgi())

    def accept_websocket(self, cycle: WebSocketCycle, headers: Headers) -> WebSocketProtocol:
        """WebSocketCarrier: the app accepted; write the 101 and hand over."""
        head = accept_response(self.ws_key, headers, self.ctx.default_headers_h1)
        self._write(head)
        pipe = WebSocketProtocol(self.ctx, cycle, self.task)
        self.ws_cycle = None
        self.hand_over(pipe, self.codec.trailing_data())
        return pipe

    def _on_data(self, data: bytes) -> None:
        self.body_received += len(data)
        limit = self.ctx.limit_request_body
        if limit is not None and self.body_received > limit:
            self.fail(RemoteProtocolError("request body too large", 413))
        elif self.state is _ACTIVE:
            if self.deadline:  # the body timeout runs: the client moved
                self.deadline = self.ctx.loop.time() + self.ctx.timeout_request_body
            cast(RequestCycle, self.cycle).feed_body(data)
        elif self.state is _UPGRADING:
            self.upgrade_body.append(data)
        elif self.body_received > self.drain_until:  # DRAINING, and too much of it
            self._close()

    # -- the one place errors become bytes ---------------------------------------------
    def fail(self, exc: RemoteProtocolError) -> None:
        """Refuse the request with ``exc.status_hint`` (if no response has
        started) and close the connection; the app, if running, sees a
        disconnect."""
        if self.state is _CLOSING:
            return
        if logger.isEnabledFor(logging.DEBUG):
            client = self.client
            who = f"{client[0]}:{client[1]}" if client else "client"
            logger.debug("Invalid HTTP request from %s: %s", who, exc)
        self.state = _CLOSING
        cycle = self.cycle
        if cycle is not None:
            cycle.client_gone()
        if (cycle is None or cycle.nothing_sent()) and not _not_http1(self.first_bytes):
            self._write(render_error(exc.status_hint, self.ctx.default_headers_h1, exc.headers))
        self._linger()

    def _linger(self) -> None:
        """Close after a refusal without losing it.

        Closing a socket while request bytes are still unread (the rest of
        a refused body, a pipelined request) makes the kernel answer with a
        reset, which may destroy our response before the client read it.
        So, as nginx's lingering close does, we send FIN after the response
        and read and drop what still comes, for at most ``LINGER_BYTES`` or
        ``LINGER_SECONDS``, then close.
        """
        if self.out is not None:
            self._uncork()
        transport = self.transport
        if self.tls or not transport.can_write_eof() or transport.is_closing():
            transport.close()
            return
        transport.write_eof()
        self.linger_left = LINGER_BYTES
        self.deadline = self.ctx.loop.time() + LINGER_SECONDS
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()

    # -- StreamSink --------------------------------------------------------------------
    def send_head(self, cycle: RequestCycle, status: int, headers: Headers, body: bytes, end: bool) -> None:
        if cycle is not self.cycle or self.state is not _ACTIVE:
            return
        ctx = self.ctx
        defaults = ctx.default_headers_h1
        if cycle.replaces_defaults:
            defaults = _defaults_without(ctx.default_headers, headers)
        parts = [STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status, defaults]
        for name, value in headers:
            # (compiled, four appends cost less than one += of a tuple)
            parts.append(name)
            parts.append(b": ")
            parts.append(value)
            parts.append(b"\r\n")
        if not cycle.body_allowed:
            body = b""
        elif cycle.content_length is None:
            if end:
                parts.append(b"content-length: %d\r\n" % len(body))
            elif not self.http10:
                parts.append(b"transfer-encoding: chunked\r\n")
                self.chunked = True
                if body:
                    body = b"%x\r\n%s\r\n" % (len(body), body)
            else:
                cycle.keep_alive = False  # HTTP/1.0: the close ends the body
        if cycle.keep_alive and (
            not ctx.accepting or (end and cycle.req_state is REQ_BODY and not self._can_drain(cycle))
        ):
            cycle.keep_alive = False
        if not cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        elif self.http10:
            parts.append(b"connection: keep-alive\r\n")
        if end and self.chunked:
            body += b"0\r\n\r\n"
        parts.append(b"\r\n")
        parts.append(body)
        out = self.out
        if out is None:
            self.transport.write(b"".join(parts))
        elif end:
            out.append(b"".join(parts))  # one whole response of a pipelined batch
            if len(out) >= BATCH_MAX:  # (the batch goes on)
                self.transport.write(b"".join(out))
                out.clear()
        else:
            self._write(b"".join(parts))
        if end:
            self._response_done(cycle)

    def send_body(self, cycle: RequestCycle, data: bytes, end: bool) -> None:
        if cycle is not self.cycle or self.state is not _ACTIVE:
            return
        if self.chunked:
            if data:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            if end:
                data += b"0\r\n\r\n"
        if data:
            self._write(data)
        if end:
            self._response_done(cycle)

    def send_informational(self, status: int, headers: Headers) -> None:
        if self.state is not _ACTIVE or self.http10:
            return
        parts = [STATUS_LINES[status]]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self._write(b"".join(parts))

    def send_trailers(self, cycle: RequestCycle, headers: Headers) -> None:
        if cycle is not self.cycle or self.state is not _ACTIVE:
            return
        if self.chunked:
            # RFC 9110 §6.5.1: only to a client that said "TE: trailers".
            if headers and _wants_trailers(cycle.scope["headers"]):
                fields = b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers)
                self._write(b"0\r\n" + fields + b"\r\n")
            else:
                self._write(b"0\r\n\r\n")
        self._response_done(cycle)

    def sendfile(
        self, cycle: RequestCycle, file: BinaryIO, offset: int, count: int
    ) -> Awaitable[int] | None:
        # asyncio's own loop can sendfile(2) on a plain socket transport;
        # TLS, chunked framing and uvloop take the copy in cycle.py.
        if (
            cycle is not self.cycle
            or self.state is not _ACTIVE
            or self.tls
            or self.chunked
            or not isinstance(self.ctx.loop, asyncio.selector_events.BaseSelectorEventLoop)
        ):
            return None
        # (No pipelined batch can be waiting: this response's head went out
        # through _write, which sent it.)
        return self._sendfile(file, offset, count)

    async def _sendfile(self, file: BinaryIO, offset: int, count: int) -> int:
        try:
            return await self.ctx.loop.sendfile(self.transport, file, offset, count, fallback=True)
        except OSError:  # the client went away
            cycle = self.cycle
            if cycle is not None:
                cycle.client_gone()
            self._close()
            return 0

    def abort(self, cycle: RequestCycle) -> None:
        if cycle is self.cycle and self.state is not _CLOSING:
            self._close()

    def pause_reading(self) -> None:
        if not self._read_paused and self.state is not _CLOSING:
            self._read_paused = True
            self.transport.pause_reading()
            if self.state is _ACTIVE:
                self.deadline = 0.0  # the app is behind, not the client

    def resume_reading(self) -> None:
        if self._read_paused and self.state is not _CLOSING:
            self._read_paused = False
            self.transport.resume_reading()
        if self.state is _ACTIVE:
            # The app waits for body (or has room for more): the client has
            # timeout_request_body to send some.
            timeout = self.ctx.timeout_request_body
            cycle = self.cycle
            if timeout and cycle is not None and cycle.req_state is REQ_BODY:
                self.deadline = self.ctx.loop.time() + timeout

    def drain(self) -> asyncio.Future[None] | None:
        if not self._write_paused or self.state is _CLOSING:
            return None
        waiter = self._drain_waiter
        if waiter is None or waiter.done():  # done: cancelled with an app that gave up waiting
            waiter = self._drain_waiter = self.ctx.loop.create_future()
        return waiter

    def cycle_done(self, cycle: RequestCycle) -> None:
        ctx = self.ctx
        ctx.active -= 1
        if ctx.drain_changed is not None:  # shutting down: the drain waits on this
            ctx.drain_changed.set()
        if ctx.limit_max_requests is not None and ctx.requests >= ctx.limit_max_requests:
            ctx.max_requests_reached()
        if cycle is self.cycle and self.state is _CLOSING:
            self.task = None

    # -- keep-alive ---------------------------------------------------------------------
    def _can_drain(self, cycle: RequestCycle) -> bool:
        """Whether the unread rest of the request body can be read and dropped
        to keep the connection once the response is done."""
        if cycle.expect_continue:
            return False  # the client waits for a 100 that will not come
        length = self.body_length
        return length is None or length - self.body_received <= DRAIN_LIMIT

    def _response_done(self, cycle: RequestCycle) -> None:
        """The response went out whole: close, drain the unread request body,
        or go back to IDLE and parse any pipelined request already buffered."""
        if not cycle.keep_alive:
            self._close()
            return
        if cycle.req_state is REQ_BODY:
            if not self._can_drain(cycle):
                self._close()
                return
            self.state = _DRAINING
            self.drain_until = self.body_received + DRAIN_LIMIT
            self.deadline = self.ctx.loop.time() + self.ctx.timeout_keep_alive
            self.resume_reading()
        else:
            self._next_cycle()
        codec = self.codec
        if codec.events or codec.error is not None:  # else _process would only hear NEED_DATA
            self._process()
            if self.out is None and self.state is _ACTIVE and self.cycle is not cycle:
                self._cork()  # a pipelined request was waiting: more may follow

    # -- pipelined batches ----------------------------------------------------------
    # A client that pipelines sends many requests in one packet; answered one
    # by one, each response costs a write(2) of its own, which on a loopback
    # or a VM costs more than the whole Python request path.  So when a
    # response goes out and the next request is already buffered, the
    # connection corks: the whole responses of the batch collect in ``out``,
    # and a check queued behind the next request's task writes them in one
    # go as soon as a turn of the event loop passes without a new request of
    # the batch starting (the batch is answered, or an app is waiting on
    # something: nobody's response waits for a slow app behind it).  Any
    # other write (a streamed body, an error, an upgrade) and every close
    # send what is corked first, so the order on the wire never changes.
    def _cork(self) -> None:
        self.out = []
        self.out_seen = self.cycle
        self.ctx.loop.call_soon(self._batch_check)

    def _batch_check(self) -> None:
        if self.out is None:  # already sent
            return
        cycle = self.cycle
        if cycle is not None and cycle is not self.out_seen and self.state is _ACTIVE:
            # A request of the batch started since the last look; its task
            # runs before the check queued now.
            self.out_seen = cycle
            self.ctx.loop.call_soon(self._batch_check)
            return
        self._uncork()

    def _hold(self) -> None:
        """An app call starts eagerly: its answer waits in ``out`` until the
        reads of this loop turn are done (see EagerStart.defer)."""
        self.out = []
        self.ctx.eager.defer(self._uncork)  # type: ignore[union-attr]  # (only called when there is one)

    def _uncork(self) -> None:
        out = self.out
        self.out = None
        self.out_seen = None
        if out:
            self.transport.write(b"".join(out))

    def _write(self, data: bytes) -> None:
        """``transport.write`` for everything but a batch's whole responses."""
        if self.out is not None:
            self._uncork()
        self.transport.write(data)

    def _next_cycle(self) -> None:
        self.cycle = None
        self.task = None
        ctx = self.ctx
        if not ctx.accepting:  # shutting down: this connection is done
            self._close()
            return
        self.idle_since = ctx.loop.time()
        self.deadline = self.idle_since + ctx.timeout_keep_alive
        if self._write_paused:
            # The client reads its responses slower than we write them (it
            # pipelines and does not read): answer nothing more until it
            # catches up, or its responses pile up in memory.
            self.state = _WAITING
            self.pause_reading()
            return
        self.state = _IDLE
        self.codec.start_next_cycle()
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()

    def _close(self) -> None:
        self.state = _CLOSING
        if self.out is not None:
            self._uncork()
        self.transport.close()

    # -- HTTP/2 ---------------------------------------------------------------------
    def _upgrade(self, req: Request) -> bool:
        """Take an ``Upgrade`` the request asks for, if we can; False serves it
        as plain HTTP/1.1 (RFC 9110 §7.8 lets a server ignore an upgrade)."""
        if req.upgrade != b"h2c" or not self.ctx.http2 or self.tls or req.chunked:
            return False
        settings = [v for n, v in req.headers if n == b"http2-settings"]
        # RFC 7540 §3.2.1: exactly one HTTP2-Settings, base64url of whole settings.
        if len(settings) != 1 or not _valid_h2_settings(settings[0]):
            return False
        if (req.content_length or 0) > HIGH_WATER:
            return False  # the whole body would be read before switching: serve it as it is
        self.upgrade_request = req
        if req.content_length:
            # RFC 7540 §3.2: the client sends the whole body before any
            # HTTP/2 frame; it becomes stream 1's body.
            self.state = _UPGRADING
            self.deadline = self.ctx.loop.time() + self.ctx.timeout_request_header
        else:
            self._to_http2(self.codec.trailing_data())
        return True

    def _http2_preface(self, data: bytes) -> bool:
        """At the start of a cleartext connection: hand it to HTTP/2 if it
        opens with the preface (prior knowledge, RFC 9113 §3.3)."""
        if not self.ctx.http2 or self.tls:
            return False
        if data.startswith(PREFACE_START):
            self._to_http2(data)
            return True
        self.first_bytes = data[:_FIRST_LINE]
        return False

    def _to_http2(self, data: bytes) -> None:
        """Hand the connection to HTTP/2 (ALPN, preface or h2c upgrade)."""
        from monoceros.protocols.http2 import H2Protocol

        upgrade = None
        req = self.upgrade_request
        if req is not None:
            settings = next(v for n, v in req.headers if n == b"http2-settings")
            upgrade = (req, b"".join(self.upgrade_body), settings)
            self._write(SWITCHING_TO_H2C)
        self.hand_over(H2Protocol(self.ctx, self, upgrade), data)

    def hand_over(self, protocol: UpgradedProtocol, data: bytes) -> None:
        """Give the transport to another protocol (an accepted upgrade).

        ``protocol`` replaces this one as the transport's protocol and in the
        server's connections, and starts with ``take_over(transport, data)``
        (``data``: the bytes already received after the upgrade request).
        This connection is done: nothing more is parsed or written here.
        (A pipelined batch was sent by the write that accepted the upgrade.)"""
        self.state = _CLOSING
        self.cycle = None
        self.task = None
        transport = self.transport
        connections = self.ctx.connections
        connections.discard(self)
        connections.add(protocol)
        transport.set_protocol(cast(asyncio.BaseProtocol, protocol))
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        protocol.take_over(transport, data)

    def shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the current response.

        A connection idle for less than :data:`SHUTDOWN_IDLE_GRACE` may have
        the client's next request already on the wire (keep-alive under load,
        or just connected): closing it would fail that request.  It stays
        open until then; a request arriving meanwhile is answered with
        ``Connection: close``.
        """
        state = self.state
        if state is _IDLE and not self.head_started:
            loop = self.ctx.loop
            if loop.time() - self.idle_since >= SHUTDOWN_IDLE_GRACE:
                self._close()
            else:
                loop.call_at(self.idle_since + SHUTDOWN_IDLE_GRACE, self._close_if_idle)
        elif state is _WAITING or state is _CLOSING:  # lingering after a refusal
            self._close()

    def _close_if_idle(self) -> None:
        if self.state is _IDLE and not self.head_started:
            self._close()

    def timed_out(self) -> None:
        """The sweep found our deadline passed: an idle keep-alive connection,
        a head or a request body not received in time, a body not drained in
        time, or a client that stopped reading its responses."""
        state = self.state
        if state is _IDLE and self.head_started:
            self.fail(RemoteProtocolError("request head not received in time", 408))
        elif state is not _ACTIVE:  # idle, draining, waiting, or lingering
            self._close()
        elif self.cycle is not None and self.cycle.req_state is REQ_BODY:
            self.fail(RemoteProtocolError("request body not received in time", 408))

    def force_close(self) -> None:
        """Shutdown ran out of time: drop the connection and cancel its app."""
        task = self.task  # a WebSocket handshake's, else the request's
        if task is None and self.cycle is not None:
            task = self.cycle.task
        if task is not None and not task.done():
            task.cancel()
        self._close()


def _not_http1(first: bytes) -> bool:
    """Whether a connection's first bytes are no HTTP/1.x request at all
    (an unknown method and no "HTTP/" version): with HTTP/2 by prior knowledge
    on the same port that is a broken HTTP/2 preface, and an HTTP/1.1 reply
    would be garbage to the client (RFC 9113 §3.4 wants the connection
    closed).  Only looked at when a request is refused."""
    if b"\n" not in first:
        return False  # nothing, or a long line: judge it as HTTP/1.1
    line = first.split(b"\n", 1)[0].rstrip(b"\r")
    return line.split(b" ", 1)[0] not in KNOWN_METHODS and b"HTTP/" not in line.upper()


def _wants_trailers(headers: Headers) -> bool:
    return any(name == b"te" and b"trailers" in value.lower() for name, value in headers)


def _valid_h2_settings(value: bytes) -> bool:
    try:
        payload = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    except ValueError:
        return False
    return len(payload) % 6 == 0


def _defaults_without(defaults: Headers, headers: Headers) -> bytes:
    """The default header block minus the names the app set itself."""
    own = {name.lower() for name, _ in headers}
    return b"".join(b"%s: %s\r\n" % (name, value) for name, value in defaults if name not in own)


__all__ = ["DRAIN_LIMIT", "ConnState", "HTTP11Protocol", "render_error"]
