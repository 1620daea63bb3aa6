"""HTTP/1.1 request parsers behind one event vocabulary.

Theory of operation
-------------------
A codec turns the bytes of one connection into events shaped like h11's:
a :class:`~monoceros.protocols.headers.Request` head, :class:`Data` for each
piece of body, :data:`END_OF_MESSAGE`, and :data:`CLOSED` when the peer ends
the connection between messages.  :data:`NEED_DATA` means "feed me more",
:data:`PAUSED` means "a message ended; the next one waits until
:meth:`start_next_cycle`", which is how pipelining is made safe: the
connection never sees request N+1 before it finished answering request N.

Both codecs hand every head to :func:`~monoceros.protocols.headers.check_request`
so that the strict rules, the framing decision and the head-size limits are
one piece of code.  A parse error is raised from :meth:`next_event` as a
:class:`~monoceros.errors.RemoteProtocolError` carrying its status, in order:
events parsed before the error are delivered first.

The codecs only read.  Responses are rendered by :mod:`.http1` the same way
for both, so an error response is the same bytes whichever parser ran.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Protocol

import h11

from monoceros.errors import RemoteProtocolError
from monoceros.protocols.headers import Request, check_request


class Data:
    """A piece of request body."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


END_OF_MESSAGE = _Marker("END_OF_MESSAGE")
NEED_DATA = _Marker("NEED_DATA")
PAUSED = _Marker("PAUSED")
CLOSED = _Marker("CLOSED")

Event = Request | Data | _Marker


class H1Codec(Protocol):
    """What :class:`~monoceros.protocols.http1.HTTP11Protocol` needs of a parser."""

    def receive_data(self, data: bytes) -> None:
        """Feed bytes; ``b""`` means the peer closed its side."""

    def next_event(self) -> Event:
        """The next event, :data:`NEED_DATA` or :data:`PAUSED`; may raise
        :class:`RemoteProtocolError`."""

    def start_next_cycle(self) -> None:
        """The response to the current message is complete: move on."""

    def trailing_data(self) -> bytes:
        """Bytes received after the current message (for protocol upgrades)."""


class _Head(enum.Enum):
    """Where an httptools codec is in the current message."""

    IDLE = 0  # between messages
    HEAD = 1  # inside the request line or headers
    BODY = 2  # head delivered, body (or its end) to come
    DONE = 3  # message complete; PAUSED until start_next_cycle()
    UPGRADE = 4  # the parser stopped at a protocol upgrade
    ERROR = 5


class HttpToolsCodec:
    """The fast path: llhttp through httptools, callbacks buffered into events."""

    def __init__(self, max_head_size: int, max_request_line: int) -> None:
        import httptools

        self._httptools = httptools
        self._parser = httptools.HttpRequestParser(self)
        self._max_head = max_head_size
        self._max_line = max_request_line
        self._events: deque[Event | RemoteProtocolError] = deque()
        self._state = _Head.IDLE
        self._head_bytes = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._messages_done = 0  # completed messages still in _events
        self._paused = False
        self._trailing = b""

    # -- llhttp callbacks -----------------------------------------------------
    def on_message_begin(self) -> None:
        self._state = _Head.HEAD
        self._url = b""
        self._headers = []
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_line:
            raise RemoteProtocolError("request target too long", 414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size + len(self._url) > self._max_head:
            raise RemoteProtocolError("request header block too large", 431)
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        req = Request(
            parser.get_method(), self._url, parser.get_http_version().encode("ascii"), self._headers
        )
        self._events.append(check_request(req, self._max_line))
        self._state = _Head.BODY
        self._head_bytes = 0

    def on_body(self, body: bytes) -> None:
        self._events.append(Data(body))

    def on_message_complete(self) -> None:
        self._events.append(END_OF_MESSAGE)
        self._state = _Head.IDLE

    # -- H1Codec --------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if self._state is _Head.ERROR or self._state is _Head.UPGRADE:
            if self._state is _Head.UPGRADE:
                self._trailing += data
            return
        if not data:
            if self._state is _Head.IDLE:
                self._events.append(CLOSED)
            else:
                self._fail(RemoteProtocolError("connection closed in the middle of a request", 400))
            return
        ht = self._httptools
        try:
            self._parser.feed_data(data)
        except ht.HttpParserUpgrade as exc:
            offset = exc.args[0]
            self._trailing = data[offset:]
            if self._events and self._events[-1] is END_OF_MESSAGE:
                # The upgrade is not taken here (WebSockets and h2c are their
                # own layers): go on parsing the bytes after it as HTTP/1.1.
                rest = self._trailing
                self._trailing = b""
                self._parser = ht.HttpRequestParser(self)
                self._state = _Head.IDLE
                if rest:
                    self.receive_data(rest)
                return
            self._state = _Head.UPGRADE
            return
        except ht.HttpParserCallbackError as exc:
            ctx = exc.__context__
            if isinstance(ctx, RemoteProtocolError):
                self._fail(ctx)
                return
            raise  # pragma: no cover - a bug of ours, not the peer's
        except ht.HttpParserInvalidMethodError:
            self._fail(RemoteProtocolError("unknown method", 400))
            return
        except ht.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"malformed request: {exc}", 400))
            return
        if self._state is _Head.HEAD:
            # The head is still incomplete: bound what a slow or hostile
            # client can make us buffer (llhttp keeps a partial value).
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head:
                line_done = bool(self._headers) or b"\n" in data
                self._fail(
                    RemoteProtocolError("request target too long", 414)
                    if not line_done and len(self._url) >= self._max_line // 2
                    else RemoteProtocolError("request header block too large", 431)
                )

    def _fail(self, error: RemoteProtocolError) -> None:
        self._state = _Head.ERROR
        self._events.append(error)

    def next_event(self) -> Event:
        if self._paused:
            # Like h11: PAUSED only when something of the next message is
            # buffered; otherwise the caller keeps reading (and sees an EOF).
            return PAUSED if self._events or self._state is not _Head.IDLE else NEED_DATA
        events = self._events
        if not events:
            return NEED_DATA
        event = events.popleft()
        if event is END_OF_MESSAGE:
            self._paused = True
        elif isinstance(event, RemoteProtocolError):
            events.appendleft(event)  # stays the answer from now on
            raise event
        return event

    def start_next_cycle(self) -> None:
        self._paused = False

    def trailing_data(self) -> bytes:
        return self._trailing


class H11Codec:
    """The pure-Python path: h11 parses; a fresh h11 connection per request.

    h11 insists on seeing our response before it parses the next request; we
    render responses ourselves (one renderer for both codecs), so instead of
    feeding h11 a response we start a new ``h11.Connection`` with the bytes
    the old one had not consumed (cheaper, measured: 1 us against 15 us).
    """

    def __init__(self, max_head_size: int, max_request_line: int) -> None:
        self._max_head = max_head_size
        self._max_line = max_request_line
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_size)
        self._head: list[bytes] = []  # raw bytes of the head being parsed
        self._in_head = True
        self._error: RemoteProtocolError | None = None

    def receive_data(self, data: bytes) -> None:
        if self._in_head and data:
            self._head.append(data)
        try:
            self._conn.receive_data(data)
        except RuntimeError:  # data after EOF: nothing more to parse
            pass

    def _raise(self, error: RemoteProtocolError) -> None:
        self._error = error
        raise error

    def next_event(self) -> Event:
        if self._error is not None:
            raise self._error
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            if status == 431 and self._in_head:
                head = b"".join(self._head)
                if b"\n" not in head[: self._max_line + 64]:
                    status = 414
            self._raise(RemoteProtocolError(f"malformed request: {exc}", status))
            raise  # pragma: no cover - _raise always raises
        t = type(event)
        if t is h11.Request:
            self._in_head = False
            head = b"".join(self._head)
            self._head = []
            tail, _ = self._conn.trailing_data
            head = head[: len(head) - len(tail)] if tail else head
            # h11 accepts a bare LF as line end; llhttp does not: refuse it on
            # both so that the two parsers agree (RFC 9112 §2.2 allows either).
            if head.count(b"\n") != head.count(b"\r\n"):
                self._raise(RemoteProtocolError("bare LF in the request head", 400))
            assert isinstance(event, h11.Request)
            req = Request(event.method, event.target, event.http_version, list(event.headers))
            try:
                return check_request(req, self._max_line)
            except RemoteProtocolError as exc:
                self._raise(exc)
        if t is h11.Data:
            assert isinstance(event, h11.Data)
            return Data(bytes(event.data))
        if t is h11.EndOfMessage:
            return END_OF_MESSAGE
        if event is h11.NEED_DATA:
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        return CLOSED  # h11.ConnectionClosed

    def start_next_cycle(self) -> None:
        data, closed = self._conn.trailing_data
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_head)
        self._in_head = True
        self._head = [data] if data else []
        if data:
            self._conn.receive_data(data)
        if closed:
            self._conn.receive_data(b"")

    def trailing_data(self) -> bytes:
        return self._conn.trailing_data[0]


def make_codec(name: str, max_head_size: int, max_request_line: int) -> H1Codec:
    """The codec called ``name`` ('httptools' or 'h11')."""
    if name == "httptools":
        return HttpToolsCodec(max_head_size, max_request_line)
    return H11Codec(max_head_size, max_request_line)


__all__ = [
    "CLOSED",
    "END_OF_MESSAGE",
    "NEED_DATA",
    "PAUSED",
    "Data",
    "Event",
    "H1Codec",
    "H11Codec",
    "HttpToolsCodec",
    "make_codec",
]
