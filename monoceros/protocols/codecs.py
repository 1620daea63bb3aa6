"""HTTP/1.1 request parsers behind one event vocabulary.

Theory of operation
-------------------
A codec turns the bytes of one connection into events shaped like h11's:
a :class:`~monoceros.protocols.headers.Request` head, :class:`Data` for each
piece of body, :data:`END_OF_MESSAGE`, and :data:`CLOSED` when the peer ends
the connection between messages.  :data:`NEED_DATA` means "feed me more",
:data:`PAUSED` means "a message ended and bytes of the next one are
buffered; they wait until :meth:`start_next_cycle`", which is how pipelining
is made safe: the connection never sees request N+1 before it finished
answering request N.  (With nothing buffered, a finished message gives
:data:`NEED_DATA`, so the caller keeps reading and sees an EOF.)

Both codecs share one skeleton (:class:`H1Codec`) that decides *where* each
message starts and ends; the parsers only decide *what* the bytes mean:

``HEAD``    bytes are collected until a complete head is there.  Leading empty
            lines (any CR and LF before a request line, as llhttp skips them)
            are dropped.  :meth:`H1Codec._scan_head` bounds the head and finds
            bare CR / bare LF, identically for both parsers; only a complete,
            bounded head reaches the parser.  So a slow head is never judged
            half-way by one parser and whole by the other, and a head sent one
            byte at a time is buffered at most ``max_head`` bytes.
``BODY``    the body of the current message, as framed by
            :func:`~monoceros.protocols.headers.check_request`.
``PAUSED``  the message is complete; later bytes wait in the buffer until
            :meth:`start_next_cycle` (after a ``Connection: close`` request
            they are dropped: nothing after it is ever parsed).
``CLOSED``  the peer closed, or an error was found: nothing more is parsed.

A parse error is raised from :meth:`next_event` as a
:class:`~monoceros.errors.RemoteProtocolError` carrying its status, in order:
events parsed before the error are delivered first.

Limits (see also docs/strict-http.md).  The request line (without its CRLF)
may be ``max_request_line`` bytes, else 414.  The head (request line to the
empty line included, leading empty lines excluded) may be ``max_head`` bytes,
else 431.  A bare CR or LF in the head is 400.  Whichever of the three the
byte stream reaches first decides, however the bytes are split into reads.
Inside a chunked body, a trailer section over ``max_head`` bytes, and
framing without data (a chunk-size line with its extensions, a trailer
section) still incomplete after about ``max_head`` bytes are answered 431;
llhttp's side counts these from callbacks and reads, so the exact threshold
may differ by a few bytes between the parsers.

httptools (llhttp) is fed the exact head, then the body up to the end of the
message: for Content-Length the count is known; a chunked message always ends
with CRLF CRLF, so the body is fed up to each CRLF CRLF and the codec stops
when llhttp reports the message complete.  llhttp therefore never parses a
pipelined request before its turn.

h11 is given the exact head (which it parses and validates) and a fresh
``h11.Connection`` per head; the body is framed here, because h11's chunked
reader is lenient where llhttp is strict (whitespace after the chunk size,
20-hex-digit sizes, any bytes in extensions, bare LF and obs-fold in
trailers).  The chunked decoder below follows llhttp's strict grammar.  The
few head forms h11 accepts and llhttp does not (obs-fold, bare LF, merged
``Content-Length`` duplicates, its own 501 for transfer codings) are refused
or re-judged here, so both parsers reach the same verdict.

The codecs only read.  Responses are rendered by :mod:`.http1` the same way
for both, so an error response is the same bytes whichever parser ran.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from typing import Any, Final

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


END_OF_MESSAGE: Final = _Marker("END_OF_MESSAGE")
NEED_DATA: Final = _Marker("NEED_DATA")
PAUSED: Final = _Marker("PAUSED")
CLOSED: Final = _Marker("CLOSED")

Event = Request | Data | _Marker


class _Phase(enum.Enum):
    """Where a codec is in the byte stream (see the module docstring)."""

    HEAD = 0
    BODY = 1
    PAUSED = 2
    CLOSED = 3


# The members as module constants: in Python 3.11 reading an enum member
# through its class costs ~70 ns, and the hot path does it dozens of times.
_P_HEAD: Final = _Phase.HEAD
_P_BODY: Final = _Phase.BODY
_P_PAUSED: Final = _Phase.PAUSED
_P_CLOSED: Final = _Phase.CLOSED


_MAX_CHUNK_SIZE: Final = 0xFFFF_FFFF_FFFF_FFFF  # llhttp keeps chunk sizes in 64 bits


def _first_bare(buf: bytes, start: int, stop: int) -> int:
    """Bytes needed to see the first bare CR or LF in ``buf[start:stop]``
    (the caller knows there is one): a bare LF is seen with itself, a bare CR
    with the next byte."""
    i = start
    while True:
        cr = buf.find(b"\r", i, stop)
        lf = buf.find(b"\n", i, stop)
        if lf >= 0 and (cr < 0 or lf < cr):
            return lf + 1
        if cr + 1 < stop and buf[cr + 1] == 10:
            i = cr + 2
            continue
        return cr + 2


def _strip_values(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers with trailing whitespace removed from the values (RFC 9112 §5:
    it is not part of the value); only called when the head has some."""
    return [(n, v.rstrip(b" \t")) for n, v in headers]


class H1Codec:
    """What :class:`~monoceros.protocols.http1.HTTP11Protocol` needs of a
    parser, and the framing skeleton both parsers share (module docstring)."""

    def __init__(self, max_head_size: int, max_request_line: int) -> None:
        self._max_head = max_head_size
        self._max_line = max_request_line
        # Events parsed and not yet taken; next_event() pops these first
        # (the connection pops them itself on its hot path).
        self.events: deque[Event] = deque()
        # The refusal next_event() raises once the events are taken, if any.
        self.error: RemoteProtocolError | None = None
        self._phase = _P_HEAD
        self._pending = b""  # received, not yet given to the parser
        self._scanned = 0  # bytes of _pending the head scan already passed
        self._line_done = False  # the scan saw the end of the request line
        self._eof = False
        self._last = False  # the current request forbids any further one
        self._req: Request | None = None

    # -- what the connection calls ----------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Feed bytes; ``b""`` means the peer closed its side."""
        phase = self._phase
        if phase is _P_CLOSED:
            return
        if not data:
            self._eof = True
        elif phase is _P_PAUSED and self._last:
            return  # nothing after a "Connection: close" request is parsed
        elif self._pending:
            self._pending += data
        else:
            self._pending = data
        if phase is not _P_PAUSED:
            self._pump()

    def next_event(self) -> Event:
        """The next event, :data:`NEED_DATA` or :data:`PAUSED`; may raise
        :class:`RemoteProtocolError`."""
        events = self.events
        if events:
            return events.popleft()
        if self.error is not None:
            raise self.error  # stays the answer from now on
        phase = self._phase
        if phase is _P_PAUSED:
            # Like h11: PAUSED only when bytes of the next message wait;
            # otherwise the caller keeps reading (and sees an EOF).
            return PAUSED if self._pending else NEED_DATA
        if phase is _P_CLOSED:
            return CLOSED
        return NEED_DATA

    def start_next_cycle(self) -> None:
        """The response to the current message is complete: move on."""
        if self._phase is _P_PAUSED:
            if self._last:
                self._phase = _P_CLOSED  # "Connection: close" was the last request
                return
            self._phase = _P_HEAD
            self._req = None
            if self._pending or self._eof:
                self._pump()

    def trailing_data(self) -> bytes:
        """Bytes received after the current message (for protocol upgrades)."""
        return self._pending

    # -- the framing loop -----------------------------------------------------
    def _pump(self) -> None:
        while True:
            phase = self._phase
            pending = self._pending
            if not pending:
                break
            if phase is _P_HEAD:
                if not self._scanned and (pending[0] == 13 or pending[0] == 10):
                    # RFC 9112 §2.2: empty lines before a request line are
                    # ignored (any CR/LF mix, which is what llhttp skips).
                    pending = self._pending = pending.lstrip(b"\r\n")
                    if not pending:
                        break
                size = self._scan_head(pending)
                if size < 0:
                    break
                if size == len(pending):
                    self._pending = b""
                    self._head(pending)
                else:
                    self._pending = pending[size:]
                    self._head(pending[:size])
            elif phase is _P_BODY:
                used = self._body(pending)
                if self._phase is _P_CLOSED:
                    return
                self._pending = pending[used:] if used < len(pending) else b""
                if not used:
                    break
            else:
                break
        if self._eof and self._phase is not _P_CLOSED and self._phase is not _P_PAUSED:
            if self._phase is _P_HEAD and not self._pending:
                self._phase = _P_CLOSED
                self.events.append(CLOSED)
            else:
                self._fail(RemoteProtocolError("connection closed in the middle of a request", 400))

    def _scan_head(self, buf: bytes) -> int:
        """The size of the complete head at the start of ``buf``, or -1 if it
        is not complete yet; fail with the 400/414/431 the stream has earned.

        The usual case, a whole head of less than ``max_request_line`` bytes
        in the buffer, costs one search: its line cannot be too long, and a
        bare CR or LF in it is refused by the parser (llhttp itself; the h11
        codec checks, h11 would take a bare LF).  Anything else takes
        :meth:`_scan_exact`."""
        if not self._scanned:
            end = buf.find(b"\r\n\r\n", 0, self._max_head)
            if 0 <= end < self._max_line - 2:
                return end + 4
        return self._scan_exact(buf)

    def _scan_exact(self, buf: bytes) -> int:
        """:meth:`_scan_head` for a partial or long head.

        Each fault is detected at a byte position: a bare LF when it arrives,
        a bare CR with the byte after it, a request line over the limit with
        its ``max_request_line + 1``-th byte, an unfinished head with its
        ``max_head + 1``-th byte.  The earliest wins, so the verdict does not
        depend on how the stream was split into reads.  Resumes where the
        previous call stopped (``_scanned``): a head trickled in byte by byte
        costs O(size), not O(size²)."""
        n = len(buf)
        max_head = self._max_head
        start = self._scanned
        end = buf.find(b"\r\n\r\n", start - 3 if start > 3 else 0, max_head)
        if end >= 0:
            stop = end + 4
        else:
            stop = n if n <= max_head else max_head + 1
            if stop == n and buf[n - 1] == 13:
                stop -= 1  # a CR whose LF may come with the next read
        first = 0  # bytes needed to see the earliest fault (0: none)
        status = 400
        if not self._line_done:
            max_line = self._max_line
            lf = buf.find(b"\n", start, stop)
            if lf >= 0:
                self._line_done = True
                too_long = (lf - 1 if lf and buf[lf - 1] == 13 else lf) > max_line
            else:
                too_long = stop > max_line + 1 or (stop == max_line + 1 and buf[max_line] != 13)
            if too_long:
                first = max_line + 2 if buf[max_line] == 13 else max_line + 1
                status = 414
        pairs = buf.count(b"\r\n", start, stop)
        if buf.count(b"\r", start, stop) != pairs or buf.count(b"\n", start, stop) != pairs:
            bare = _first_bare(buf, start, stop)
            if bare and (not first or bare < first):
                first = bare
                status = 400
        if end < 0 and n > max_head and (not first or max_head + 1 < first):
            first = max_head + 1
            status = 431
        if first:
            reason = {400: "bare CR or LF in the request head", 414: "request line too long"}
            self._fail(RemoteProtocolError(reason.get(status, "request header block too large"), status))
            return -1
        if end < 0:
            self._scanned = stop
            return -1
        self._scanned = 0
        self._line_done = False
        return stop

    def _fail(self, error: RemoteProtocolError) -> None:
        self._phase = _P_CLOSED
        self._pending = b""
        self.error = error

    def _accept(self, req: Request, ows: bool) -> None:
        """Check a parsed head and queue it: the one path both parsers share.
        ``ows``: some field value ends in whitespace (stripped after the check)."""
        check_request(req, self._max_line)
        if ows:
            req.headers = _strip_values(req.headers)
        self._req = req
        self._last = not req.keep_alive
        self.events.append(req)

    def _message_done(self) -> None:
        self.events.append(END_OF_MESSAGE)
        self._phase = _P_PAUSED
        if self._last:
            self._pending = b""

    # -- what each parser provides ----------------------------------------------
    def _head(self, head: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _body(self, data: bytes) -> int:  # pragma: no cover - abstract
        """Consume body bytes from the start of ``data``; return how many."""
        raise NotImplementedError


class HttpToolsCodec(H1Codec):
    """The fast path: llhttp through httptools, callbacks buffered into events."""

    def __init__(self, max_head_size: int, max_request_line: int) -> None:
        super().__init__(max_head_size, max_request_line)
        import httptools

        self._httptools: Any = httptools
        self._parser = self._new_parser()
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._ows = False  # a field value of this head ends in whitespace
        self._head_bytes = b""
        self._chunked = False
        self._remaining = 0  # Content-Length bytes still to feed
        self._tail = b""  # last bytes fed of a chunked body (a CRLF CRLF may straddle)
        self._quiet = 0  # chunked framing bytes fed since the last piece of data
        self._got_body = False
        self._renew = False  # llhttp will not take another message: new parser
        self._resume_body = False  # llhttp skipped the body of an upgrade request
        self._synthetic = False  # parsing our own head to resume such a body

    def receive_data(self, data: bytes) -> None:
        # The usual read is exactly one whole head (a keep-alive GET): give it
        # to the parser at once; this is what _pump and _scan_head would
        # decide, without their generality.
        if self._phase is _P_HEAD and not self._pending:
            n = len(data)
            if (
                4 <= n < self._max_line + 2
                and n <= self._max_head
                and data[0] != 13
                and data[0] != 10
                # (the first CRLF CRLF ends it; partition takes its argument
                # as is, where find() parses an argument tuple)
                and len(data.partition(b"\r\n\r\n")[0]) == n - 4
            ):
                self._head(data)
                return
        super().receive_data(data)

    def _new_parser(self) -> Any:
        parser = self._httptools.HttpRequestParser(self)
        # llhttp refuses HTTP/1.2+ (and 3.x...) as a parse error; let it pass
        # the digits so that check_request gives the one answer for both
        # parsers (1.x served as 1.1, 2-9 as 505, 0.x as 400).
        parser.set_dangerous_leniencies(lenient_version=True)
        return parser

    # -- llhttp callbacks -----------------------------------------------------
    # (No on_message_begin: httptools calls only the callbacks that exist, and
    # the per-message state is reset where each message's head and trailers
    # are done with, which saves a Python call per request.)
    def on_url(self, url: bytes) -> None:
        if not self._synthetic:
            self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        if value.rstrip(b" \t") is not value:  # rare: trailing whitespace to strip later
            self._ows = True

    def on_headers_complete(self) -> None:
        if self._synthetic:
            self._synthetic = False
            self._headers = []
            return
        parser = self._parser
        method = parser.get_method()
        url = self._url
        # llhttp allows several spaces between the parts of the request line
        # and "RTSP/1.0" or "ICE/1.0" for "HTTP/1.0"; h11 (and RFC 9112 §3)
        # allow neither: the line must be exactly "METHOD SP target SP HTTP/x.y".
        head = self._head_bytes
        end = len(method) + len(url) + 10
        if head[end - 8 : end - 3] != b"HTTP/" or head[end : end + 2] != b"\r\n":
            raise RemoteProtocolError("invalid request line", 400)
        req = Request(method, url, head[end - 3 : end], self._headers)
        # Trailer fields (llhttp validates them; ASGI has no place for them)
        # go to a list nobody reads, as h11 drops them.
        self._headers = []
        self._url = b""
        ows = self._ows
        self._ows = False
        self._accept(req, ows)
        self._phase = _P_BODY
        self._chunked = req.chunked
        self._remaining = req.content_length or 0
        if req.chunked:
            self._quiet = 0
            self._tail = b""
        if (req.chunked or self._remaining) and parser.should_upgrade():
            self._resume_body = True

    def on_body(self, body: bytes) -> None:
        self.events.append(Data(body))
        self._got_body = True

    def on_message_complete(self) -> None:
        if self._resume_body:
            return  # not the end: llhttp skipped the body (see _feed)
        trailers = self._headers
        if trailers:
            self._headers = []
            self._ows = False
            if sum(len(n) + len(v) + 4 for n, v in trailers) + 2 > self._max_head:
                raise RemoteProtocolError("trailer section too large", 431)
        if self._chunked and not self._last and not self._parser.should_keep_alive():
            # llhttp stops at a message it considers final (e.g. a trailer
            # said "Connection: close"); as we keep the connection, the next
            # message needs a fresh parser.
            self._renew = True
        self._message_done()

    # -- the parser's part of the framing -------------------------------------
    def _head(self, head: bytes) -> None:
        if self._renew:
            self._renew = False
            self._parser = self._new_parser()
        self._head_bytes = head
        self._feed(head)
        self._head_bytes = b""
        if self._phase is _P_HEAD:
            # A whole head that llhttp neither completed nor refused: it waits
            # for more ("PRI ... HTTP/x.y" expects the HTTP/2 preface).
            self._fail(RemoteProtocolError("malformed request head", 400))

    def _body(self, data: bytes) -> int:
        if not self._chunked:
            size = min(self._remaining, len(data))
            self._remaining -= size
            self._feed(data if size == len(data) else data[:size])
            return size
        # Feed up to the next CRLF CRLF (a possible end of the message), so
        # that llhttp never runs into the next request.
        tail = self._tail
        size = -1
        if tail:
            at = (tail + data[:3]).find(b"\r\n\r\n")
            if at >= 0:
                size = at + 4 - len(tail)
        if size < 0:
            at = data.find(b"\r\n\r\n")
            size = at + 4 if at >= 0 else len(data)
        piece = data if size == len(data) else data[:size]
        self._got_body = False
        self._feed(piece)
        if self._phase is _P_BODY:
            self._tail = (tail + piece)[-3:]
            if self._got_body:
                self._quiet = 0
            else:
                self._quiet += size
                if self._quiet > self._max_head:
                    self._fail(RemoteProtocolError("chunk framing or trailers too large", 431))
        return size

    def _feed(self, data: bytes) -> None:
        ht = self._httptools
        try:
            self._parser.feed_data(data)
        except ht.HttpParserUpgrade:
            # llhttp stops after the head of an upgrade request; the upgrade
            # is not taken here (WebSockets and h2c are their own layers), so
            # go on as HTTP/1.1 with a new parser.  We only ever fed it this
            # head, so no byte is lost.
            self._parser = self._new_parser()
            if self._resume_body:
                # It also skipped the body: give a new parser a head of ours
                # with the same framing, then the body as usual.
                self._resume_body = False
                self._synthetic = True
                req = self._req
                assert req is not None
                framing = (
                    b"transfer-encoding: chunked" if req.chunked else b"content-length: %d" % self._remaining
                )
                self._parser.feed_data(b"PUT / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
        except ht.HttpParserCallbackError as exc:
            ctx = exc.__context__
            if isinstance(ctx, RemoteProtocolError):
                self._fail(ctx)
                return
            raise  # pragma: no cover - a bug of ours, not the peer's
        except ht.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"malformed request: {exc}", 400))


# -- h11 ---------------------------------------------------------------------------
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_QCHAR = rb"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])"
_EXT_VALUE = rb'%s*(?:"%s*")?' % (_TOKEN, _QCHAR)
_EXT = rb"(?:;(?:%s+(?:=%s)?|=%s|(?=;)))" % (_TOKEN, _EXT_VALUE, _EXT_VALUE)
# llhttp's strict chunk line: hex size, then extensions, no whitespace anywhere.
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)%s*" % _EXT)
# What a chunk line may look like before its CRLF arrived.
_CHUNK_PREFIX = re.compile(
    rb"[0-9A-Fa-f]*|[0-9A-Fa-f]+%s*(?:;%s*(?:=%s*(?:\"%s*\\?)?)?)?|[0-9A-Fa-f]+%s*\r"
    % (_EXT, _TOKEN, _TOKEN, _QCHAR, _EXT)
)
_HEX = re.compile(rb"[0-9A-Fa-f]*")
_CTL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FIELD_VALUE = rb"[\t\x20-\x7e\x80-\xff]*"
_FIELD_LINE = re.compile(rb"(%s+):%s" % (_TOKEN, _FIELD_VALUE))
_FIELD_PREFIX = re.compile(rb"(%s*)|(%s+):%s\r?|\r" % (_TOKEN, _TOKEN, _FIELD_VALUE))
# Framing fields llhttp refuses in a trailer section (RFC 9110 §6.5.1).
_FRAMING_FIELDS: Final = (b"content-length", b"transfer-encoding")


class _Chunk(enum.Enum):
    """Where the h11 codec's chunked decoder is."""

    SIZE = 0  # reading a chunk size line
    DATA = 1  # inside chunk data
    DATA_END = 2  # expecting the CRLF after chunk data
    TRAILER = 3  # reading trailer fields


_C_SIZE: Final = _Chunk.SIZE
_C_DATA: Final = _Chunk.DATA
_C_DATA_END: Final = _Chunk.DATA_END
_C_TRAILER: Final = _Chunk.TRAILER


def _raw_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """The header fields of a validated head as llhttp reports them: names
    lower-cased, values without leading whitespace, duplicates and lists as
    sent (h11 merges ``Content-Length`` duplicates and lower-cases
    ``Transfer-Encoding``, which would hide what check_request must see)."""
    start = head.find(b"\r\n") + 2
    end = len(head) - 4
    if start >= end:  # (not head[start:-4]: mypyc's slice fails when start > end)
        return []
    block = head[start:end]
    fields = []
    for line in block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        fields.append((name.lower(), value.lstrip(b" \t")))
    return fields


class H11Codec(H1Codec):
    """The pure-Python path: h11 parses each head; the codec frames bodies.

    A fresh ``h11.Connection`` per head is cheaper than h11's own cycle (1 us
    against 15 us, measured) and never holds more than the head."""

    def __init__(self, max_head_size: int, max_request_line: int) -> None:
        super().__init__(max_head_size, max_request_line)
        self._chunked = False
        self._remaining = 0  # Content-Length bytes, or bytes left in a chunk
        self._chunk = _C_SIZE
        self._quiet = 0  # chunked framing bytes since the last piece of data
        self._checked = 0  # length of the partial line last checked

    def _head(self, head: bytes) -> None:
        pairs = head.count(b"\r\n")
        if head.count(b"\n") != pairs or head.count(b"\r") != pairs:
            # h11 takes a bare LF as a line end; llhttp refuses it (RFC 9112
            # §2.2 allows either; the scan refuses it early in partial heads).
            self._fail(RemoteProtocolError("bare CR or LF in the request head", 400))
            return
        if b"\r\n " in head or b"\r\n\t" in head:
            # obs-fold (or whitespace before the first field): h11 unfolds it,
            # llhttp refuses it; RFC 9112 §5.2 lets a server refuse with 400.
            self._fail(RemoteProtocolError("obsolete line folding in the request head", 400))
            return
        if _CTL.search(head) is not None:
            # h11 lets control characters other than NUL and whitespace into
            # field values; llhttp (RFC 9110 §5.5) refuses every CTL but HTAB.
            self._fail(RemoteProtocolError("control character in the request head", 400))
            return
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
        conn.receive_data(head)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            self._h11_error(head, exc)
            return
        if type(event) is not h11.Request:  # pragma: no cover - a whole head always parses to one
            self._fail(RemoteProtocolError("malformed request head", 400))
            return
        fields = _raw_fields(head)
        req = Request(event.method, event.target, event.http_version, fields)
        try:
            self._accept(req, b" \r\n" in head or b"\t\r\n" in head)
        except RemoteProtocolError as exc:
            self._fail(exc)
            return
        self._phase = _P_BODY
        self._chunked = req.chunked
        self._chunk = _C_SIZE
        self._quiet = 0
        self._remaining = req.content_length or 0
        if not req.chunked and not self._remaining:
            self._message_done()

    def _h11_error(self, head: bytes, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint
        if status == 501:
            # h11 answers 501 to any Transfer-Encoding but a lone "chunked";
            # llhttp parses the list, and check_request judges it (400 for
            # most, 501 only for codings before a final chunked).  h11 got as
            # far as the fields, so the request line is well formed.
            method, target, version = head[: head.find(b"\r\n")].split(b" ")
            req = Request(method, target, version[5:], _raw_fields(head))
            try:
                check_request(req, self._max_line)
            except RemoteProtocolError as error:
                self._fail(error)
                return
        self._fail(RemoteProtocolError(f"malformed request: {exc}", status))

    def _body(self, data: bytes) -> int:
        if not self._chunked:
            size = min(self._remaining, len(data))
            self._remaining -= size
            self.events.append(Data(data if size == len(data) else data[:size]))
            if not self._remaining:
                self._message_done()
            return size
        return self._chunks(data)

    def _chunks(self, data: bytes) -> int:
        """Decode chunked framing from ``data``; return the bytes consumed.

        A partial line is left for the next read, after checking that it can
        still become valid: llhttp refuses at the first wrong byte.  (Lines
        over 256 bytes are re-checked only when they have doubled, so that a
        line trickled in byte by byte costs O(n), not O(n²).)"""
        pos = 0
        n = len(data)
        events = self.events
        while pos < n:
            state = self._chunk
            if state is _C_DATA:
                size = min(self._remaining, n - pos)
                events.append(Data(data if size == n else data[pos : pos + size]))
                pos += size
                self._quiet = 0
                self._remaining -= size
                if not self._remaining:
                    self._chunk = _C_DATA_END
            elif state is _C_DATA_END:
                if data.startswith(b"\r\n", pos):
                    pos += 2
                    self._quiet += 2
                    self._chunk = _C_SIZE
                elif data[pos] == 13 and pos + 1 == n:
                    break  # the LF is still to come
                else:
                    return self._bad("missing CRLF after chunk data")
            else:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    partial = data[pos:]
                    if self._quiet + len(partial) > self._max_head:
                        self._fail(RemoteProtocolError("chunk framing or trailers too large", 431))
                        return pos
                    if len(partial) > 256 and len(partial) < 2 * self._checked:
                        break  # a long partial line is re-checked as it doubles: O(n) in all
                    self._checked = len(partial)
                    if state is _C_SIZE:
                        ok = _CHUNK_PREFIX.fullmatch(partial) is not None
                        digits = _HEX.match(partial)
                        if digits is not None and digits.end() and int(digits[0], 16) > _MAX_CHUNK_SIZE:
                            ok = False  # llhttp refuses the digit that overflows
                    else:
                        match = _FIELD_PREFIX.fullmatch(partial)
                        ok = match is not None and (match[2] or b"").lower() not in _FRAMING_FIELDS
                    if not ok:
                        return self._bad("invalid chunk framing")
                    break
                self._checked = 0
                line = data[pos:end]
                pos = end + 2
                self._quiet += len(line) + 2
                if state is _C_SIZE:
                    match = _CHUNK_LINE.fullmatch(line)
                    if match is None:
                        return self._bad("invalid chunk size line")
                    size = int(match[1], 16)
                    if size > _MAX_CHUNK_SIZE:
                        return self._bad("chunk size overflow")
                    if size:
                        self._remaining = size
                        self._chunk = _C_DATA
                    else:
                        self._chunk = _C_TRAILER
                        self._quiet = 0  # from here: the trailer section
                elif self._quiet > self._max_head:
                    self._fail(RemoteProtocolError("trailer section too large", 431))
                    return pos
                elif line:
                    match = _FIELD_LINE.fullmatch(line)
                    if match is None or match[1].lower() in _FRAMING_FIELDS:
                        return self._bad("invalid trailer field")
                else:
                    self._message_done()
                    return pos
        return pos

    def _bad(self, reason: str) -> int:
        self._fail(RemoteProtocolError(f"malformed request: {reason}", 400))
        return 0


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
