"""HTTP/2 over an asyncio transport: one request cycle per stream.

Theory of operation
-------------------
:class:`H2Protocol` owns one transport and one sans-IO ``h2`` connection.
Bytes go into ``h2``; its events come out in order and are turned into
plain method calls on the :class:`~.cycle.RequestCycle` of each stream, the
same cycle HTTP/1.1 uses (``cycle.py`` never sees a frame).  Each stream is
an :class:`H2Stream`, the cycle's :class:`~.cycle.StreamSink`: it renders
the cycle's response parts as HEADERS and DATA frames.

One shortcut, for speed: :meth:`H2Protocol._scan` reads the 9-byte frame
headers itself and gives ``h2`` whole frames only; a request that comes
whole in one HEADERS frame without a body (most requests) skips ``h2``'s
stream machinery and runs on a :class:`FastStream`, which frames its own
response (its docstring says what ``h2`` is still told).  Everything else,
in order, goes through ``h2``.

A connection arrives three ways, all through
:meth:`HTTP11Protocol.hand_over <monoceros.protocols.http1.HTTP11Protocol.hand_over>`:
TLS whose ALPN chose ``h2``, a cleartext connection that opens with the
HTTP/2 preface (prior knowledge), and an HTTP/1.1 request with
``Upgrade: h2c`` (that request, body included, becomes stream 1).

Flow control, both ways:

* in: a stream's window is opened again only as its app *reads* the body
  (the cycle calls ``resume_reading`` whenever the app waits for more, when
  everything fed so far was consumed); the connection window is as large as
  all stream windows together, so one app that does not read cannot stall the
  other streams;
* out: DATA is sent as far as the client's windows allow; the rest waits in
  the stream and ``drain()`` makes the app's ``send()`` wait until
  WINDOW_UPDATE lets it out.  A response stalled longer than
  ``--h2-stall-timeout`` is reset (a client advertising a zero window cannot
  hold a stream forever).

The connection is in one :class:`H2State`; each stream in one
:class:`StreamState`.  Frames are written in batches: whatever the streams
produce in one turn of the event loop goes out in one ``write()``.

Errors: ``h2`` turns a connection error into GOAWAY with the RFC 9113 code
(we then close); a malformed request that ``h2`` lets through (bad ``:path``,
authority, method or Content-Length) is a stream error, RST_STREAM with
PROTOCOL_ERROR.  Each is logged once at debug level.  Abuse (rapid reset,
PING/SETTINGS floods, too many apps still running for reset streams) gets
GOAWAY with ENHANCE_YOUR_CALM; the limits are ``--h2-*`` settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import struct
from typing import TYPE_CHECKING, Any, BinaryIO, Final, cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionInputs, ConnectionState
from h2.errors import ErrorCodes
from h2.stream import StreamClosedBy
from hpack import HPACKError, OversizedHeaderListError
from hyperframe.frame import GoAwayFrame

from monoceros._types import Headers
from monoceros.errors import ASGIMessageError
from monoceros.protocols.cycle import REQ_BODY, RequestCycle
from monoceros.protocols.headers import STATUS_PHRASES, Request, carries_proxy_headers, validate_header
from monoceros.protocols.hpackcache import CachingDecoder, CachingEncoder
from monoceros.protocols.utils import http_scope, start_app, start_task
from monoceros.protocols.websocket import websocket_scope
from monoceros.protocols.wscodecs import WS_CODECS
from monoceros.protocols.wscycle import WebSocketCycle

if TYPE_CHECKING:
    from monoceros.context import ServerContext
    from monoceros.protocols.http1 import HTTP11Protocol

logger = logging.getLogger("monoceros.error")

#: What every prior-knowledge HTTP/2 connection starts with (RFC 9113 §3.4).
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Abuse counters are per window of this many seconds.
ABUSE_WINDOW = 10.0

# Request field rules h2 leaves to us (it checks pseudo-header presence,
# order and names, uppercase names, connection-specific fields, TE, and
# NUL/CR/LF in values).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH = re.compile(rb"/[\x21\x22\x24-\x7e]*")  # origin-form, no fragment
_AUTHORITY = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]+")
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*")
# RFC 9113 §8.2.1: names are lowercase tokens; values hold no NUL, CR or LF
# and neither start nor end with whitespace.
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")
# Request fields already checked (clients repeat theirs); bounded.
_GOOD_FIELDS: set[tuple[bytes, bytes]] = set()
_GOOD_FIELDS_MAX = 4096
_GOOD_FIELD_SIZE = 256  # longer values are checked every time

# Response fields that mean nothing (and are forbidden) in HTTP/2.
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
# The HTTP/1.1 fields of an h2c upgrade request that do not describe stream 1.
_UPGRADE_FIELDS = _CONNECTION_SPECIFIC | {b"http2-settings"}
_STATUS: dict[int, bytes] = {code: b"%d" % code for code in STATUS_PHRASES}

# Frame layout (RFC 9113 §4.1) for the fast path: length (24 bits) and type
# packed as one 32-bit number, flags, stream id.
_FRAME_HEAD: Final = struct.Struct(">IBI")
_U32: Final = struct.Struct(">I")
_T_DATA: Final = 0x0
_T_HEADERS: Final = 0x1
_T_PRIORITY: Final = 0x2
_T_RST_STREAM: Final = 0x3
_T_PUSH_PROMISE: Final = 0x5
_T_WINDOW_UPDATE: Final = 0x8
_T_CONTINUATION: Final = 0x9
_F_END_STREAM: Final = 0x1
_F_END_HEADERS: Final = 0x4
_F_PADDED: Final = 0x8
_F_PRIORITY: Final = 0x20
MAX_WINDOW: Final = 2**31 - 1
_ID_MASK: Final = 0x7FFFFFFF  # a stream id or window increment without its reserved bit
# h2's connection states in which a request may open a stream.
_H2_IDLE: Final = ConnectionState.IDLE
_H2_OPEN: Final = ConnectionState.SERVER_OPEN


class H2State(enum.Enum):
    OPEN = 0
    GOING_AWAY = 1  # GOAWAY sent: streams in flight finish, no new ones start
    CLOSED = 2


class StreamState(enum.Enum):
    OPEN = 0  # the response is being produced
    ENDING = 1  # the app's response is complete; its last DATA waits for window
    DONE = 2  # the response is out, or the stream was reset: nothing more is sent


_OPEN: Final = H2State.OPEN
_GOING_AWAY: Final = H2State.GOING_AWAY
_CLOSED: Final = H2State.CLOSED
_S_OPEN: Final = StreamState.OPEN
_S_ENDING: Final = StreamState.ENDING
_S_DONE: Final = StreamState.DONE


class MalformedRequest(Exception):
    """A request RFC 9113 §8.1.1 calls malformed: a stream error."""


def _check_field(name: bytes, value: bytes) -> None:
    """One regular field of a request or trailer section (RFC 9113 §8.2)."""
    if _FIELD_NAME.fullmatch(name) is None:
        raise MalformedRequest(f"invalid field name {name[:40]!r}")
    if name in _CONNECTION_SPECIFIC:
        raise MalformedRequest(f"connection-specific field {name!r}")
    if name == b"te" and value.lower() != b"trailers":
        raise MalformedRequest("TE other than 'trailers'")
    if _BAD_VALUE.search(value) is not None:
        raise MalformedRequest(f"invalid value of {name!r}")


class H2Stream:
    """One stream: the :class:`~.cycle.StreamSink` of its cycle."""

    fast = False  # a FastStream (h2 does not know it)

    __slots__ = (
        "blocked_since",
        "body_deadline",
        "conn",
        "cycle",
        "paused",
        "pending",
        "pending_end",
        "pending_trailers",
        "received",
        "state",
        "stream_id",
        "task",
        "unacked",
        "waiter",
        "ws",
    )

    def __init__(self, conn: H2Protocol, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.state = _S_OPEN
        self.cycle: RequestCycle | None = None
        self.task: asyncio.Task[None] | None = None
        self.unacked = 0  # flow-controlled bytes received and not yet given back
        self.received = 0  # request body bytes (for --limit-request-body)
        # DATA the client's window did not let out yet, and whether the
        # stream ends after it; None when nothing waits.
        self.pending: bytes | None = None
        self.pending_end = False
        self.pending_trailers: Headers | None = None  # trailers to send after the pending DATA
        self.blocked_since = 0.0
        self.body_deadline = 0.0  # when the client is late with the body the app waits for
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False  # a WebSocket's reader is full: the window stays shut
        # The WebSocket an extended CONNECT (RFC 8441) carries on this stream.
        self.ws: WebSocketCycle | None = None

    # -- StreamSink --------------------------------------------------------------------
    def send_head(self, cycle: RequestCycle, status: int, headers: Headers, body: bytes, end: bool) -> None:
        if self.state is not _S_OPEN:
            return
        conn = self.conn
        fields = [(b":status", _STATUS.get(status) or b"%d" % status)]
        ctx = conn.ctx
        if cycle.replaces_defaults:
            own = {name.lower() for name, _ in headers}
            fields += [(n, v) for n, v in ctx.default_headers if n not in own]
        else:
            fields += ctx.default_headers
        for name, value in headers:
            name = name.lower()
            if name not in _CONNECTION_SPECIFIC:
                fields.append((name, value))
        if not cycle.body_allowed:
            body = b""
        elif end and cycle.content_length is None:
            fields.append((b"content-length", b"%d" % len(body)))
        self._headers(fields, end and not body)
        if body:
            self._send_data(body, end)
        conn.flush_soon()
        if end:
            self._done()

    def send_body(self, cycle: RequestCycle, data: bytes, end: bool) -> None:
        if self.state is not _S_OPEN:
            return
        self._send_data(data, end)
        self.conn.flush_soon()
        if end:
            self._done()

    def send_informational(self, status: int, headers: Headers) -> None:
        if self.state is _S_OPEN:
            fields = [(b":status", _STATUS[status])]
            fields += [(n.lower(), v) for n, v in headers]
            self._headers(fields, False)
            self.conn.flush_soon()

    def send_trailers(self, cycle: RequestCycle, headers: Headers) -> None:
        if self.state is not _S_OPEN:
            return
        fields = [(n.lower(), v) for n, v in headers]
        fields = [(n, v) for n, v in fields if n not in _CONNECTION_SPECIFIC]
        if self.pending is not None:
            self.pending_trailers = fields  # after the DATA still waiting for window
            self.state = _S_ENDING
            return
        self._end(fields)
        self.conn.flush_soon()
        self._done()

    def _end(self, trailers: Headers) -> None:
        if trailers:
            self._headers(trailers, True)
        else:
            self._data(b"", True)

    def sendfile(self, cycle: RequestCycle, file: BinaryIO, offset: int, count: int) -> None:
        return None  # DATA frames are copies anyway: the cycle copies the file in chunks

    def abort(self, cycle: RequestCycle) -> None:
        if self.state is _S_OPEN:
            self.reset(ErrorCodes.INTERNAL_ERROR)

    def pause_reading(self) -> None:
        # A request body's window opens only as the app reads anyway; a
        # WebSocket's stays shut from now on until its reader resumes.
        self.paused = True
        if self.body_deadline:  # the app is behind, not the client
            self.conn.body_done(self)

    def resume_reading(self) -> None:
        # The app consumed all that was fed: give the window back, and the
        # client --timeout-request-body to send more.
        self.paused = False
        cycle = self.cycle
        if cycle is not None and cycle.req_state is REQ_BODY and self.ws is None:
            self.conn.body_awaited(self)
        unacked = self.unacked
        if unacked:
            self.unacked = 0
            conn = self.conn
            if conn.state is not _CLOSED:
                conn.h2.acknowledge_received_data(unacked, self.stream_id)
                conn.flush_soon()

    def drain(self) -> asyncio.Future[None] | None:
        if self.state is not _S_OPEN:
            return None
        conn = self.conn
        if self.pending is None and not conn.write_paused:
            if not conn.flush_scheduled:
                return None
            # Frames wait for this turn's flush: let it run before the app
            # produces more, or a streaming app would pile up its whole
            # body in h2's buffer before the transport could push back.
            conn.drainers.append(self)
        waiter = self.waiter
        if waiter is None or waiter.done():
            waiter = self.waiter = conn.ctx.loop.create_future()
        return waiter

    def cycle_done(self, cycle: RequestCycle) -> None:
        conn = self.conn
        conn.ctx.cycle_ended()
        self.task = None
        conn.running -= 1
        if self.state is _S_OPEN and (self.ws is None or self.ws.pipe is None):
            # The cycle always finishes its response or aborts; this is a
            # stream whose app returned while the client still sends.
            self.reset(ErrorCodes.INTERNAL_ERROR)
        conn.stream_finished(self)

    # -- sending DATA within the client's windows ---------------------------------------
    def _send_data(self, data: bytes, end: bool) -> None:
        if self.pending is not None:
            self.pending += data
            self.pending_end = end
            return
        self._push(data, end)

    def _push(self, data: bytes, end: bool) -> None:
        """Send as much of ``data`` as the windows allow; keep the rest."""
        conn = self.conn
        h2c = conn.h2
        while data:
            window = self._window()
            if window <= 0:
                self.pending = data
                self.pending_end = end
                if not self.blocked_since:
                    self.blocked_since = conn.ctx.loop.time()
                    conn.stream_blocked(self)
                return
            size = min(window, h2c.max_outbound_frame_size)
            if size >= len(data):
                self._data(data, end)
                self.pending = None
                return
            self._data(data[:size], False)
            data = data[size:]
        self.pending = None
        if end:
            self._data(b"", True)

    def window_opened(self) -> None:
        """WINDOW_UPDATE or SETTINGS: try the waiting DATA again."""
        pending = self.pending
        if pending is None or self.state is _S_DONE:
            return
        self.pending = None
        self.blocked_since = 0.0
        self._push(pending, self.pending_end)
        if self.pending is None:
            self.conn.blocked.pop(self.stream_id, None)
            trailers = self.pending_trailers
            if trailers is not None:
                self.pending_trailers = None
                self._end(trailers)
            if self.state is _S_ENDING:
                self._finished()
            elif not self.conn.write_paused:
                self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _done(self) -> None:
        if self.pending is None:
            self._finished()
        else:
            self.state = _S_ENDING  # DONE once the last DATA left (window_opened)

    def _finished(self) -> None:
        """The whole response is out."""
        cycle = self.cycle
        if cycle is not None and cycle.req_state is REQ_BODY and self.ws is None:
            self._stop_request_body()
        self.state = _S_DONE
        self.conn.stream_finished(self)

    def _stop_request_body(self) -> None:
        """The response is complete before the request body: RST_STREAM
        NO_ERROR tells the client to stop sending (RFC 9113 §8.1), and what
        came unread goes back to the connection window (or every such
        stream would shrink it for good)."""
        conn = self.conn
        unacked, self.unacked = self.unacked, 0
        if unacked:
            conn.h2.acknowledge_received_data(unacked, self.stream_id)
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            conn.h2.reset_stream(self.stream_id, ErrorCodes.NO_ERROR)
        conn.flush_soon()

    # -- frames: through h2 (FastStream writes its own) -----------------------------------
    def _headers(self, fields: Headers, end: bool) -> None:
        self.conn.h2.send_headers(self.stream_id, fields, end_stream=end)

    def _window(self) -> int:
        return self.conn.h2.local_flow_control_window(self.stream_id)

    def _data(self, data: bytes, end: bool) -> None:
        self.conn.h2.send_data(self.stream_id, data, end_stream=end)

    def _rst(self, code: ErrorCodes) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):  # the client reset it first
            self.conn.h2.reset_stream(self.stream_id, code)

    # -- a WebSocket over this stream (RFC 8441) -----------------------------------------
    def accept_websocket(self, cycle: WebSocketCycle, headers: Headers) -> H2Stream:
        """WebSocketCarrier: 200 to the extended CONNECT; the stream is the pipe."""
        fields = [(b":status", b"200"), *self.conn.ctx.default_headers]
        for name, value in headers:
            if not validate_header(name, value):
                raise ASGIMessageError(f"invalid response header {name!r}: {value!r}")
            name = name.lower()
            if name not in _CONNECTION_SPECIFIC:
                fields.append((name, value))
        if self.state is _S_OPEN:
            self._headers(fields, False)
            self.conn.flush_soon()
        return self

    def write(self, data: bytes) -> None:
        """WebSocketPipe: frame bytes as DATA."""
        if data and self.state is _S_OPEN:
            self._send_data(data, False)
            self.conn.flush_soon()

    def close(self) -> None:
        """WebSocketPipe: END_STREAM (the TCP close of RFC 6455, RFC 8441 §4)."""
        if self.state is _S_OPEN:
            self._send_data(b"", True)
            self.conn.flush_soon()
            self._done()

    def reset(self, code: ErrorCodes) -> None:
        """Reset the stream (our side); its app hears a disconnect."""
        self.state = _S_DONE
        self.pending = None
        conn = self.conn
        conn.blocked.pop(self.stream_id, None)
        if conn.state is not _CLOSED:
            self._rst(code)
            conn.flush_soon()
        self.gone()

    def gone(self) -> None:
        """The stream is over for the client (reset, or the connection closed)."""
        self.state = _S_DONE
        cycle = self.cycle
        if cycle is not None:
            cycle.client_gone()
        ws = self.ws
        if ws is not None:
            ws.lost()
        self.wake()


class FastStream(H2Stream):
    """A stream ``h2`` never sees: a request that came whole in one HEADERS
    frame (END_HEADERS and END_STREAM), taken by :meth:`H2Protocol._scan`.

    Such a stream is half-closed (remote) from its first frame, so only its
    response remains, and that is simple enough to frame here: HEADERS
    (CONTINUATION when the block is larger than a frame), DATA within the
    client's windows, RST_STREAM.  ``h2`` stays the authority for the
    connection: the HPACK tables (the same encoder and decoder objects), the
    connection window (``outbound_flow_control_window``, shared), the highest
    stream id, and the frames go into its send buffer, in order with its own.
    It is told the stream closed (``_closed_streams``) as soon as it starts,
    so any later DATA or HEADERS on it is h2's connection error
    STREAM_CLOSED; the stream's own window (WINDOW_UPDATE, SETTINGS) and a
    client's RST_STREAM are handled by the connection for it.

    Why: for a request without a body, h2's frame objects, state machines
    and per-stream bookkeeping were most of the cost of a request
    (``python bench/h2bench.py``).
    """

    __slots__ = ("window",)

    fast = True

    def __init__(self, conn: H2Protocol, stream_id: int, window: int) -> None:
        super().__init__(conn, stream_id)
        self.window = window  # the client's window for this stream

    def _headers(self, fields: Headers, end: bool) -> None:
        h2c = self.conn.h2
        block = h2c.encoder.encode(fields)
        out = h2c._data_to_send
        limit = h2c.max_outbound_frame_size
        sid = self.stream_id
        flags = _F_END_STREAM if end else 0
        if len(block) <= limit:
            out += _FRAME_HEAD.pack(len(block) << 8 | _T_HEADERS, flags | _F_END_HEADERS, sid)
            out += block
            return
        out += _FRAME_HEAD.pack(limit << 8 | _T_HEADERS, flags, sid)
        out += block[:limit]
        for at in range(limit, len(block), limit):
            chunk = block[at : at + limit]
            last = at + limit >= len(block)
            out += _FRAME_HEAD.pack(len(chunk) << 8 | _T_CONTINUATION, _F_END_HEADERS if last else 0, sid)
            out += chunk

    def _window(self) -> int:
        connection = self.conn.h2.outbound_flow_control_window
        return connection if connection < self.window else self.window

    def _data(self, data: bytes, end: bool) -> None:
        h2c = self.conn.h2
        size = len(data)
        h2c.outbound_flow_control_window -= size
        self.window -= size
        out = h2c._data_to_send
        out += _FRAME_HEAD.pack(size << 8 | _T_DATA, _F_END_STREAM if end else 0, self.stream_id)
        out += data

    def _rst(self, code: ErrorCodes) -> None:
        h2c = self.conn.h2
        h2c._data_to_send += _FRAME_HEAD.pack(4 << 8 | _T_RST_STREAM, 0, self.stream_id) + _U32.pack(code)
        h2c._closed_streams[self.stream_id] = StreamClosedBy.SEND_RST_STREAM

    def window_update(self, increment: int) -> None:
        """A WINDOW_UPDATE for this stream (RFC 9113 §6.9)."""
        if self.state is _S_DONE:
            return
        self.window += increment
        if self.window > MAX_WINDOW:
            self.conn._debug("HTTP/2 client %s: %s", f"overflowed the window of stream {self.stream_id}")
            self.reset(ErrorCodes.FLOW_CONTROL_ERROR)
        elif self.pending is not None:
            self.window_opened()
            self.conn._set_deadline()


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (a :class:`monoceros._types.Connection`)."""

    def __init__(
        self, ctx: ServerContext, origin: HTTP11Protocol, upgrade: tuple[Request, bytes, bytes] | None = None
    ) -> None:
        """``origin``: the HTTP/1.1 side that accepted the connection;
        ``upgrade``: for ``Upgrade: h2c``, the request, its body and its
        HTTP2-Settings value."""
        self.ctx = ctx
        config = ctx.loaded.config
        # What the HTTP/1.1 side learnt about the connection.
        self.server = origin.server
        self.client = origin.client
        self.scheme = origin.scheme
        self.proxy = origin.proxy
        self.context = origin.context
        self.extensions = origin.extensions
        self.upgrade = upgrade
        self.state = _OPEN
        self.deadline = 0.0
        self.streams: dict[int, H2Stream] = {}
        self.blocked: dict[int, H2Stream] = {}  # streams waiting for window, in order
        self.awaiting_body: dict[int, H2Stream] = {}  # apps waiting for request body (the body timeout)
        self.running = 0  # app calls of this connection still running
        self.write_paused = False
        self.flush_scheduled = False
        self.drainers: list[H2Stream] = []  # streams waiting for the next flush
        self.max_streams = config.h2_max_concurrent_streams
        self.max_resets = config.h2_max_resets
        self.max_control = config.h2_max_control_frames
        self.stall_timeout = float(config.h2_stall_timeout)
        self._abuse_start = 0.0
        self._resets = 0
        self._control = 0
        self._inbuf = b""  # the start of a frame (the fast path passes h2 whole frames only)
        # A header block in CONTINUATION frames is buffered until it ends: it
        # may be at most this large (encoded HPACK is no larger than the list
        # it decodes to, plus slack), not h2's 64 frames of up to 16 KiB.
        self._block_bytes = 0
        self._max_block = config.h2_max_header_list_size + 16384
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                # Request fields are checked (and cookies joined) in
                # _scope, in the one pass that reads them anyway.
                validate_inbound_headers=False,
                normalize_inbound_headers=False,
                # The cycle validated the app's fields; we lowercase them
                # and drop the connection-specific ones ourselves.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        window = config.h2_initial_window_size
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: config.h2_max_header_list_size,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
                # WebSockets over HTTP/2 (RFC 8441), unless --ws none.
                h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: int(ctx.ws_impl is not None),
            },
        )
        # HPACK with a memo of repeated blocks (hpackcache.py).  The decoder
        # gets our header list limit now: h2 would apply it only once the
        # client acknowledged it, and an HPACK bomb in the first request must
        # meet it too.
        self.h2.encoder = CachingEncoder()
        self.h2.decoder = CachingDecoder(config.h2_max_header_list_size)
        # The connection window holds every stream's window (see the module docstring).
        self._conn_window = min(2**31 - 1, max(65535, window * self.max_streams))

    # -- taking the connection ----------------------------------------------------------
    def take_over(self, transport: asyncio.Transport, data: bytes) -> None:
        self.transport = transport
        h2c = self.h2
        ctx = self.ctx
        upgrade = self.upgrade
        if upgrade is None:
            h2c.initiate_connection()
        else:
            h2c.initiate_upgrade_connection(upgrade[2])
        if self._conn_window > 65535:
            h2c.increment_flow_control_window(self._conn_window - 65535)
        self.flush()
        self.deadline = ctx.loop.time() + ctx.timeout_request_header
        if upgrade is not None:
            self.upgrade = None
            req, body, _ = upgrade
            self._start_upgraded(req, body)
        if data:
            self.data_received(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover
        raise RuntimeError("H2Protocol starts through take_over()")

    # -- asyncio.Protocol ----------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.state is _CLOSED:
            return
        if self._inbuf:
            data = self._inbuf + data
            self._inbuf = b""
        preface = self.h2.incoming_buffer._preamble_len
        if preface:  # (the rest of) the client's preface, for h2 to check
            if not self._feed(data[:preface]):
                return
            data = data[preface:]
        if data:
            self._scan(data)
        self.flush()

    def _scan(self, data: bytes) -> None:
        """Split ``data`` into frames: the few the fast path takes (a whole
        request without a body, a WINDOW_UPDATE, a RST_STREAM on a
        :class:`FastStream`) are handled here, runs of all others go to h2
        in order, and an incomplete last frame waits for more bytes."""
        h2c = self.h2
        incoming = h2c.incoming_buffer
        max_frame = incoming.max_frame_size
        in_block = bool(incoming._headers_buffer)  # CONTINUATION frames are due: all go to h2
        size = len(data)
        pos = start = 0
        while size - pos >= 9:
            word, flags, sid = _FRAME_HEAD.unpack_from(data, pos)
            length = word >> 8
            if length > max_frame:
                # h2 would wait for the whole frame before refusing it.
                if start < pos and not self._feed(data[start:pos]):
                    return
                self._debug("HTTP/2 connection error from %s: %s", f"a frame of {length} bytes")
                h2c.close_connection(ErrorCodes.FRAME_SIZE_ERROR)
                self._close_after_flush()
                return
            end = pos + 9 + length
            if end > size:
                break
            kind = word & 0xFF
            sid &= _ID_MASK
            if in_block:
                if kind == _T_CONTINUATION:
                    self._block_bytes += length
                    if flags & _F_END_HEADERS:
                        in_block = False
                    elif self._block_bytes > self._max_block:
                        if start < pos and not self._feed(data[start:pos]):
                            return
                        self._calm_down(f"sent a header block over {self._max_block} bytes")
                        return
            elif kind == _T_HEADERS:
                if not flags & _F_END_HEADERS:
                    in_block = True
                    self._block_bytes = length
                elif flags & (_F_END_STREAM | _F_PADDED) == _F_END_STREAM:
                    # h2 first takes what came before: it decides whether this
                    # stream id is new, and how many streams are running.
                    if start < pos:
                        if not self._feed(data[start:pos]):
                            return
                        start = pos
                    at = pos + 9
                    if flags & _F_PRIORITY:
                        at += 5
                        if length < 5 or _U32.unpack_from(data, pos + 9)[0] & _ID_MASK == sid:
                            at = 0  # h2 answers a bad priority
                    if (
                        at
                        and sid & 1
                        and sid > h2c.highest_inbound_stream_id
                        and self.state is _OPEN
                        and (h2c.state_machine.state is _H2_OPEN or h2c.state_machine.state is _H2_IDLE)
                        and self.running < self.max_streams
                        and len(self.streams) < self.max_streams
                    ):
                        start = end
                        self._fast_request(sid, data[at:end])
                        if self.transport.is_closing():
                            return
            elif kind == _T_WINDOW_UPDATE:
                if length == 4:
                    increment = _U32.unpack_from(data, pos + 9)[0] & _ID_MASK
                    if increment and sid == 0:
                        if h2c.outbound_flow_control_window + increment <= MAX_WINDOW:
                            if start < pos and not self._feed(data[start:pos]):
                                return
                            start = end
                            h2c.outbound_flow_control_window += increment
                            if self.blocked:
                                self._windows_opened()
                    elif increment:
                        stream = self.streams.get(sid)
                        if stream is not None and stream.fast:
                            if start < pos and not self._feed(data[start:pos]):
                                return
                            start = end
                            cast(FastStream, stream).window_update(increment)
            elif kind == _T_RST_STREAM:
                if length == 4:
                    stream = self.streams.get(sid)
                    if stream is not None and stream.fast:
                        if start < pos and not self._feed(data[start:pos]):
                            return
                        start = end
                        h2c._closed_streams[sid] = StreamClosedBy.RECV_RST_STREAM
                        self._stream_reset(sid, True)
                        if self.transport.is_closing():
                            return
            elif kind == _T_DATA:
                stream = self.streams.get(sid)
                if stream is not None and stream.fast and stream.state is not _S_DONE:
                    # DATA after END_STREAM: h2 answers RST_STREAM
                    # STREAM_CLOSED (and counts the bytes against the
                    # connection window); nothing more may be sent on it.
                    if start < pos and not self._feed(data[start:pos]):
                        return
                    start = pos
                    h2c._closed_streams[sid] = StreamClosedBy.SEND_RST_STREAM
                    self._stream_reset(sid, False)
            elif kind == _T_PRIORITY:
                # Cheap to send, not to process (h2's priority tree): a
                # flood like PINGs.
                self._count_control()
                if self.transport.is_closing():
                    return
            elif kind == _T_PUSH_PROMISE and not flags & _F_END_HEADERS:
                in_block = True
                self._block_bytes = length
            pos = end
        if pos < size:
            self._inbuf = data[pos:]
        if start < pos:
            self._feed(data[start:pos])

    def _feed(self, data: bytes) -> bool:
        """Frames for h2, and what its events mean; False once the connection closed."""
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 queued the GOAWAY with the error code.
            self._debug("HTTP/2 connection error from %s: %s", exc)
            self._close_after_flush()
            return False
        for event in events:
            t = type(event)
            if t is h2.events.DataReceived:
                self._on_data(cast(h2.events.DataReceived, event))
            elif t is h2.events.RequestReceived:
                self._on_request(cast(h2.events.RequestReceived, event))
            elif t is h2.events.StreamEnded:
                self._on_end(cast(h2.events.StreamEnded, event).stream_id)
            elif t is h2.events.WindowUpdated:
                self._windows_opened()
            elif t is h2.events.RemoteSettingsChanged:
                self._count_control()
                self._on_settings(cast(h2.events.RemoteSettingsChanged, event))
            elif t is h2.events.StreamReset:
                event = cast(h2.events.StreamReset, event)
                self._stream_reset(event.stream_id, event.remote_reset)
            elif t is h2.events.PingReceived:
                self._count_control()
            elif t is h2.events.TrailersReceived:
                self._on_trailers(cast(h2.events.TrailersReceived, event))
            elif t is h2.events.ConnectionTerminated:
                # The client's GOAWAY: it is done with the connection (and h2
                # sends nothing more after one).
                self._close_after_flush()
            if self.transport.is_closing():  # a limit or an error closed it
                return False
        return True

    def eof_received(self) -> bool:
        return False  # the client is done: close (connection_lost tells the streams)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _CLOSED
        self.ctx.connection_closed(self)
        for stream in list(self.streams.values()):
            stream.gone()
        self.blocked.clear()
        self.awaiting_body.clear()

    def pause_writing(self) -> None:
        self.write_paused = True
        if not self.deadline:
            self.deadline = self.ctx.loop.time() + self.stall_timeout

    def resume_writing(self) -> None:
        self.write_paused = False
        self._set_deadline()
        for stream in list(self.streams.values()):
            if stream.pending is None:
                stream.wake()

    # -- writing -------------------------------------------------------------------------
    def flush_soon(self) -> None:
        """Write what the streams produce in this turn of the loop in one go."""
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.ctx.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        data = self.h2.data_to_send()
        if data and self.state is not _CLOSED:
            self.transport.write(data)
        drainers = self.drainers
        if drainers and not self.write_paused:  # else resume_writing wakes them
            self.drainers = []
            for stream in drainers:
                if stream.pending is None:
                    stream.wake()

    def _close_after_flush(self) -> None:
        self.flush()
        self.state = _CLOSED
        self.transport.close()

    # -- events ------------------------------------------------------------------------
    def _on_request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id
        if self.state is not _OPEN:
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        if self.running >= self.max_streams or len(self.streams) >= self.max_streams:
            # h2 counts only the open streams it knows (not the FastStreams),
            # and the apps of streams the client reset may still run.  A
            # client that resets streams to pile up app calls (rapid reset)
            # is refused here and counted below.
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            self._count_reset()
            return
        try:
            scope, req = self._scope(event.headers)
        except MalformedRequest as exc:
            self._debug("Malformed HTTP/2 request from %s: %s", exc)
            self.h2.reset_stream(sid, ErrorCodes.PROTOCOL_ERROR)
            return
        stream = H2Stream(self, sid)
        self.streams[sid] = stream
        self._set_deadline()
        ended = event.stream_ended is not None
        self._start(stream, scope, req, not ended)

    def _fast_request(self, sid: int, block: bytes) -> None:
        """A whole request without a body (see :class:`FastStream`)."""
        h2c = self.h2
        try:
            fields = cast("list[tuple[bytes, bytes]]", h2c.decoder.decode(block, raw=True))
        except (HPACKError, IndexError, TypeError, UnicodeDecodeError) as exc:
            # What h2 answers for the same block.
            self._debug("HTTP/2 connection error from %s: %s", f"header block: {exc}")
            bomb = isinstance(exc, OversizedHeaderListError)
            h2c.close_connection(ErrorCodes.ENHANCE_YOUR_CALM if bomb else ErrorCodes.PROTOCOL_ERROR)
            self._close_after_flush()
            return
        if h2c.state_machine.state is _H2_IDLE:
            h2c.state_machine.process_input(ConnectionInputs.RECV_HEADERS)  # as h2 does for a first request
        h2c.highest_inbound_stream_id = sid
        h2c._closed_streams[sid] = StreamClosedBy.RECV_END_STREAM
        stream = FastStream(self, sid, h2c.remote_settings.initial_window_size)
        try:
            scope, req = self._scope(fields)
            if req.content_length:
                raise MalformedRequest("a Content-Length and no body")
        except MalformedRequest as exc:
            self._debug("Malformed HTTP/2 request from %s: %s", exc)
            stream._rst(ErrorCodes.PROTOCOL_ERROR)
            return
        self.streams[sid] = stream
        self._set_deadline()
        self._start(stream, scope, req, False)

    def _start_upgraded(self, req: Request, body: bytes) -> None:
        """Stream 1 of an ``Upgrade: h2c``: the HTTP/1.1 request, its body read already."""
        req.headers = [(n, v) for n, v in req.headers if n not in _UPGRADE_FIELDS]
        target = req.target
        if target[:1] != b"/" and target != b"*":  # absolute-form: the path after the authority
            slash = target.find(b"/", target.find(b"//") + 2)
            req.target = target[slash:] if slash >= 0 else b"/"
        scope = self._h1_scope(req)
        stream = H2Stream(self, 1)
        self.streams[1] = stream
        self._set_deadline()
        self._start(stream, scope, req, bool(body))
        cycle = stream.cycle
        if body and cycle is not None:
            cycle.feed_body(body)
            cycle.feed_end()

    def _start(self, stream: H2Stream, scope: dict[str, Any], req: Request, body_expected: bool) -> None:
        ctx = self.ctx
        if ctx.limit_concurrency is not None and ctx.active >= ctx.limit_concurrency:
            logger.warning("Exceeded concurrency limit.")
            self._refuse(stream, 503)
            return
        limit = ctx.limit_request_body
        if limit is not None and req.content_length is not None and req.content_length > limit:
            self._refuse(stream, 413)
            return
        if req.method == b"CONNECT":
            if req.upgrade == b"websocket" and ctx.ws_impl is not None:
                self._start_websocket(stream, scope, req)
            else:
                self._refuse(stream, 501)  # a tunnel, or another protocol: no ASGI mapping
            return
        if self.proxy is not None and carries_proxy_headers(scope["headers"]):
            self.proxy.rewrite(scope)
        cycle = stream.cycle = RequestCycle(
            ctx, stream, scope, scope["method"], body_expected, req.expect_continue, True
        )
        self.running += 1
        stream.task = start_app(self, cycle)

    def _start_websocket(self, stream: H2Stream, scope: dict[str, Any], req: Request) -> None:
        """An extended CONNECT for a WebSocket (RFC 8441 §4): a WebSocketCycle
        whose carrier and pipe is the stream; a RequestCycle on the stream
        answers a denial."""
        ctx = self.ctx
        versions = [v for n, v in req.headers if n == b"sec-websocket-version"]
        if versions != [b"13"]:
            self._refuse(stream, 426, [(b"sec-websocket-version", b"13")])
            return
        offers = websocket_scope(scope, req.headers)
        if self.proxy is not None and carries_proxy_headers(scope["headers"]):
            self.proxy.rewrite(scope)
        response = stream.cycle = RequestCycle(ctx, stream, scope, "CONNECT", False, False, False)
        codec = WS_CODECS[ctx.ws_impl](ctx.ws_max_size, ctx.ws_per_message_deflate)  # type: ignore[index]
        ws = stream.ws = WebSocketCycle(ctx, scope, codec, stream, response, offers)
        self.running += 1
        stream.task = start_task(self, ws.run_asgi())

    def _refuse(self, stream: H2Stream, status: int, headers: Headers | None = None) -> None:
        """Answer a stream ourselves (no app call): a short plain-text error."""
        body = STATUS_PHRASES[status]
        fields = [(b":status", _STATUS[status]), *self.ctx.default_headers, *(headers or [])]
        fields += [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
        stream._headers(fields, False)
        stream._push(body, True)
        stream._done()

    def _answer_instead(self, stream: H2Stream, status: int) -> None:
        """Stop a request the client got wrong (too large, too slow): its
        app hears a disconnect; the client gets ``status`` if nothing was
        sent yet, else a reset."""
        cycle = stream.cycle
        if cycle is not None and cycle.nothing_sent():
            cycle.client_gone()
            stream.cycle = None
            self._refuse(stream, status)
        else:
            stream.reset(ErrorCodes.CANCEL)

    def _on_data(self, event: h2.events.DataReceived) -> None:
        sid = event.stream_id
        size = event.flow_controlled_length
        data = event.data
        stream = self.streams.get(sid)
        if not data and not event.stream_ended:
            self._count_control()  # empty DATA frames are a flood like PINGs
        if stream is not None and stream.ws is not None:
            self._ws_data(stream, stream.ws, data, size)
            return
        cycle = stream.cycle if stream is not None else None
        if stream is None or cycle is None or cycle.req_state is not REQ_BODY or stream.state is not _S_OPEN:
            # Nobody reads it (a refused or finished stream): give the window back now.
            if size:
                self.h2.acknowledge_received_data(size, sid)
            return
        stream.received += len(data)
        limit = self.ctx.limit_request_body
        if limit is not None and stream.received > limit:
            self.h2.acknowledge_received_data(size, sid)
            self._answer_instead(stream, 413)
            return
        stream.unacked += size
        if stream.body_deadline:  # the client moved
            stream.body_deadline = self.ctx.loop.time() + self.ctx.timeout_request_body
        if data:
            cycle.feed_body(data)

    def _ws_data(self, stream: H2Stream, ws: WebSocketCycle, data: bytes, size: int) -> None:
        if stream.paused:
            stream.unacked += size
        elif size:
            self.h2.acknowledge_received_data(size, stream.stream_id)
        if data:
            ws.feed(data)

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        """Request trailers are dropped (ASGI has no message for them), but
        must be well-formed: no pseudo-header, valid fields."""
        stream = self.streams.get(event.stream_id)
        try:
            for name, value in event.headers:
                if name[:1] == b":":
                    raise MalformedRequest("a pseudo-header in trailers")
                _check_field(name, value)
        except MalformedRequest as exc:
            self._debug("Malformed HTTP/2 trailers from %s: %s", exc)
            if stream is not None:
                stream.reset(ErrorCodes.PROTOCOL_ERROR)
            else:
                self.h2.reset_stream(event.stream_id, ErrorCodes.PROTOCOL_ERROR)

    def _on_end(self, sid: int) -> None:
        stream = self.streams.get(sid)
        if stream is None:
            return
        if stream.body_deadline:
            self.body_done(stream)
        if stream.ws is not None:
            stream.ws.lost()  # the client's END_STREAM is its TCP close
        elif stream.cycle is not None:
            stream.cycle.feed_end()

    def _stream_reset(self, sid: int, remote: bool) -> None:
        stream = self.streams.pop(sid, None)
        if stream is not None:
            self.blocked.pop(sid, None)
            if stream.body_deadline:
                self.body_done(stream)
            stream.gone()
        if remote:
            self._count_reset()

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        """The client's SETTINGS: h2 applied them to its streams; a new
        initial window also moves the windows of the fast streams (RFC 9113
        §6.9.2)."""
        changed = event.changed_settings.get(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE)
        if changed is not None and changed.original_value is not None:
            delta = changed.new_value - changed.original_value
            for stream in self.streams.values():
                if stream.fast:
                    fast = cast(FastStream, stream)
                    fast.window += delta
                    if fast.window > MAX_WINDOW:
                        self._debug("HTTP/2 client %s: %s", "overflowed a stream window with SETTINGS")
                        self.h2.close_connection(ErrorCodes.FLOW_CONTROL_ERROR)
                        self._close_after_flush()
                        return
        self._windows_opened()

    def _windows_opened(self) -> None:
        for stream in list(self.blocked.values()):
            stream.window_opened()
        self._set_deadline()

    # -- limits --------------------------------------------------------------------------
    def _abuse_window(self) -> None:
        now = self.ctx.loop.time()
        if now - self._abuse_start > ABUSE_WINDOW:
            self._abuse_start = now
            self._resets = 0
            self._control = 0

    def _count_reset(self) -> None:
        self._abuse_window()
        self._resets += 1
        if self._resets > self.max_resets:
            self._calm_down("too many stream resets")

    def _count_control(self) -> None:
        self._abuse_window()
        self._control += 1
        if self._control > self.max_control:
            self._calm_down("too many control frames")

    def _calm_down(self, why: str) -> None:
        self._debug("HTTP/2 client %s: %s; closing", why)
        if self.state is not _CLOSED:
            self.h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
            self._close_after_flush()

    def stream_blocked(self, stream: H2Stream) -> None:
        self.blocked[stream.stream_id] = stream
        if not self.deadline:
            self.deadline = stream.blocked_since + self.stall_timeout

    def body_awaited(self, stream: H2Stream) -> None:
        """The app waits for request body: the client has --timeout-request-body to send some."""
        timeout = self.ctx.timeout_request_body
        if timeout:
            stream.body_deadline = self.ctx.loop.time() + timeout
            self.awaiting_body[stream.stream_id] = stream
            if not self.deadline or stream.body_deadline < self.deadline:
                self.deadline = stream.body_deadline

    def body_done(self, stream: H2Stream) -> None:
        """The body is complete, the stream is over, or the app stopped reading."""
        stream.body_deadline = 0.0
        self.awaiting_body.pop(stream.stream_id, None)

    def stream_finished(self, stream: H2Stream) -> None:
        """A stream's response ended (or it was reset), or its app returned:
        forget it once both happened."""
        if stream.body_deadline:
            self.body_done(stream)
        if stream.state is _S_DONE and stream.task is None:
            self.streams.pop(stream.stream_id, None)
            self.blocked.pop(stream.stream_id, None)
            if not self.streams:
                self._idle()

    def _idle(self) -> None:
        if self.state is _GOING_AWAY:
            self._close_after_flush()
        elif self.state is _OPEN:
            self.deadline = self.ctx.loop.time() + self.ctx.timeout_keep_alive

    def _set_deadline(self) -> None:
        """The next time the sweep must look at us: a stalled stream, or idleness."""
        if self.state is _CLOSED:
            return
        if self.write_paused:
            return  # pause_writing set it
        if self.blocked or self.awaiting_body:
            deadlines = [s.blocked_since + self.stall_timeout for s in self.blocked.values()]
            deadlines += [s.body_deadline for s in self.awaiting_body.values()]
            self.deadline = min(deadlines)
        elif self.streams:
            self.deadline = 0.0
        else:
            self.deadline = self.ctx.loop.time() + self.ctx.timeout_keep_alive

    # -- Connection --------------------------------------------------------------------
    def timed_out(self) -> None:
        """Idle too long, or a response stalled on the client's windows."""
        if self.state is _CLOSED:
            return
        now = self.ctx.loop.time()
        if self.write_paused:
            # The client reads nothing at all: every stream is stalled, and
            # a polite close would wait for a buffer that never drains.
            self._debug("HTTP/2 client %s: %s", "stopped reading")
            self.force_close()
            self.transport.abort()
            return
        if not self.streams:
            self.shutdown()
            return
        for stream in list(self.blocked.values()):
            if now - stream.blocked_since >= self.stall_timeout:
                self._debug("HTTP/2 client %s: %s", f"kept stream {stream.stream_id} at a zero window")
                stream.reset(ErrorCodes.CANCEL)
        for stream in list(self.awaiting_body.values()):
            if now >= stream.body_deadline:
                self._debug("HTTP/2 client %s: %s", f"sent no body on stream {stream.stream_id} in time")
                self.body_done(stream)
                self._answer_instead(stream, 408)
        self._set_deadline()
        self.flush()

    def shutdown(self) -> None:
        """GOAWAY: streams in flight complete, then the connection closes."""
        if self.state is not _OPEN:
            return
        self.state = _GOING_AWAY
        for stream in list(self.streams.values()):
            if stream.ws is not None:
                stream.ws.shutdown()  # close 1012; the stream ends with the close handshake
        # Written by hand: after h2's own close_connection() it refuses to
        # send anything more, and the streams in flight must still finish.
        self.flush()
        goaway = GoAwayFrame(0)
        goaway.last_stream_id = self.h2.highest_inbound_stream_id
        goaway.error_code = ErrorCodes.NO_ERROR
        self.transport.write(goaway.serialize())
        if not self.streams:
            self._close_after_flush()

    def force_close(self) -> None:
        self.state = _CLOSED
        for stream in self.streams.values():
            task = stream.task
            if task is not None and not task.done():
                task.cancel()
        self.transport.close()

    # -- requests -------------------------------------------------------------------------
    def _scope(self, fields: list[tuple[bytes, bytes]]) -> tuple[dict[str, Any], Request]:
        """The ASGI scope of a request, after RFC 9113 §8.2-8.3 (h2's own
        header validation is off: this pass is the one that looks at every
        field, once)."""
        method = path = authority = protocol = scheme = host = None
        headers: Headers = []
        content_length: int | None = None
        expect = False
        cookies = 0
        regular = False
        for field in fields:
            name, value = field
            if name[:1] == b":":
                if regular:
                    raise MalformedRequest("a pseudo-header after a regular field")
                if _BAD_VALUE.search(value) is not None:
                    raise MalformedRequest(f"invalid {name!r}")
                if name == b":method" and method is None:
                    method = value
                elif name == b":path" and path is None:
                    path = value
                elif name == b":scheme" and scheme is None:
                    scheme = value
                elif name == b":authority" and authority is None:
                    authority = value
                elif name == b":protocol" and protocol is None:
                    protocol = value  # extended CONNECT (RFC 8441)
                else:
                    raise MalformedRequest(f"unknown or repeated pseudo-header {name!r}")
                continue
            regular = True
            if field not in _GOOD_FIELDS:
                _check_field(name, value)
                if len(name) + len(value) <= _GOOD_FIELD_SIZE:  # a client must not fill our memory
                    if len(_GOOD_FIELDS) >= _GOOD_FIELDS_MAX:
                        _GOOD_FIELDS.clear()
                    _GOOD_FIELDS.add(field)
            c = name[0]
            if c == 104 and name == b"host":  # h
                if host is not None:
                    raise MalformedRequest("more than one host")
                host = value
                continue  # re-added first, from :authority (ASGI spec)
            if c == 99:  # c
                if name == b"content-length":
                    # h2 refused a conflicting one (a connection error) before
                    # this event existed; the fast path did not ask h2.
                    if not value.isdigit() or (content_length is not None and int(value) != content_length):
                        raise MalformedRequest("invalid Content-Length")
                    content_length = int(value)
                elif name == b"cookie":
                    cookies += 1
            elif c == 101 and name == b"expect" and value.lower() == b"100-continue":  # e
                expect = True
            headers.append(field)
        if method is None or _TOKEN.fullmatch(method) is None:
            raise MalformedRequest("missing or invalid :method")
        if method == b"CONNECT" and protocol is None:
            # RFC 9113 §8.5: authority only.
            if scheme is not None or path is not None or authority is None:
                raise MalformedRequest("a CONNECT has :authority and no :scheme or :path")
        else:
            if protocol is not None and method != b"CONNECT":
                raise MalformedRequest(":protocol is for CONNECT only")
            if scheme is None or _SCHEME.fullmatch(scheme) is None:
                raise MalformedRequest("missing or invalid :scheme")
            if path == b"*":
                if method != b"OPTIONS":
                    raise MalformedRequest("'*' is for OPTIONS only")
            elif path is None or _PATH.fullmatch(path) is None:
                raise MalformedRequest("missing or invalid :path")
        if host is not None:
            if authority is None:
                authority = host
            elif host != authority:
                raise MalformedRequest("host and :authority differ")
        if authority is not None:
            if _AUTHORITY.fullmatch(authority) is None:
                raise MalformedRequest("invalid :authority")
            headers.insert(0, (b"host", authority))
        if cookies > 1:
            # RFC 9113 §8.2.3: one field again for an HTTP/1.1-shaped app.
            crumbs = b"; ".join(v for n, v in headers if n == b"cookie")
            headers = [f for f in headers if f[0] != b"cookie"]
            headers.append((b"cookie", crumbs))
        req = Request(method, path or b"/", b"2", headers)
        req.content_length = content_length
        req.expect_continue = expect
        req.upgrade = protocol
        return self._h1_scope(req), req

    def _h1_scope(self, req: Request) -> dict[str, Any]:
        return http_scope(self, req.method.decode("ascii"), req.target, "2", req.headers)

    def _debug(self, message: str, detail: object) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            client = self.client
            who = f"{client[0]}:{client[1]}" if client else "client"
            logger.debug(message, who, detail)


__all__ = ["PREFACE", "FastStream", "H2Protocol", "H2State", "H2Stream", "StreamState"]
