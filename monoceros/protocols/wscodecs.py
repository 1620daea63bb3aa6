"""WebSocket frame codecs: websockets and wsproto behind one interface.

Theory of operation
-------------------
A codec is the sans-I/O frame layer of one WebSocket connection *after* its
opening handshake: bytes in, events out; messages in, bytes out.  The
handshake itself (validating the request, choosing the subprotocol, writing
the 101 or 200) belongs to the carrier (:mod:`.websocket` for HTTP/1.1), and
the ASGI side to :mod:`.wscycle`; both are written once for both libraries.
Only :meth:`WSCodec.negotiate`, the permessage-deflate negotiation, is part
of the handshake, because each library negotiates its own extension objects.

:meth:`WSCodec.receive` returns a list of events, the cheapest vocabulary
that says everything the ASGI side needs:

* a ``str`` or ``bytes``: one complete message (fragments are joined here,
  text is UTF-8-checked fragment by fragment, so invalid text fails fast);
* :data:`PONG`: a pong arrived (the keep-alive ping was answered);
* :class:`Close`: the peer started or finished the closing handshake; the
  reply, if one is due, is already in :meth:`WSCodec.data_to_send`;
* :class:`Failed`: the peer broke the protocol (1002), sent invalid UTF-8
  (1007) or a message over ``max_size`` (1009); the close frame with that
  code is already in :meth:`WSCodec.data_to_send`, and nothing more is read.

Pings are answered inside the codec.  After a :class:`Close` or
:class:`Failed` (or after our own close was answered) :attr:`WSCodec.finished`
is true: the carrier writes what is left and closes the connection (RFC 6455
§7.1.1: the server closes the TCP connection first).
"""

from __future__ import annotations

import codecs
import struct
from typing import Any, Protocol

_UTF8 = codecs.getincrementaldecoder("utf-8")


class Close:
    """The peer's close frame: ``code`` (1005 when it had none) and ``reason``."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.reason!r})"


class Failed(Close):
    """We failed the connection with ``code`` because of what the peer sent."""


class _Pong:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PONG"


PONG = _Pong()

Event = str | bytes | Close | _Pong


class WSCodec(Protocol):
    """What :class:`~monoceros.protocols.wscycle.WebSocketCycle` needs of a
    WebSocket library."""

    #: The close handshake is over (or the connection failed): write
    #: :meth:`data_to_send` and close the connection.
    finished: bool
    #: :meth:`data_to_send` may have bytes (a plain attribute: checked per message).
    pending: bool

    def negotiate(self, offers: list[bytes]) -> bytes | None:
        """Take the request's ``Sec-WebSocket-Extensions`` values; return the
        response's value (None: no extension).  Called once, before use."""

    def receive(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; the events they complete."""

    def send(self, message: str | bytes) -> bytes:
        """The frame(s) of one message."""

    def close(self, code: int, reason: str) -> bytes:
        """Our close frame (b"" if one was sent already)."""

    def ping(self, payload: bytes) -> bytes:
        """A ping frame."""

    def data_to_send(self) -> bytes:
        """Bytes the codec produced by itself (pongs, the close reply)."""


class _Assembler:
    """Joins fragments into messages, checks UTF-8 as it goes and bounds the
    size; shared by both codecs (websockets gives frames, wsproto pieces)."""

    def __init__(self, max_size: int | None, decode: bool) -> None:
        self.max_size = max_size
        self._decode = decode  # text arrives as UTF-8 bytes (websockets), not str (wsproto)
        self._parts: list[Any] = []
        self._size = 0
        self._text = False
        self._decoder: Any = None

    def begin(self, text: bool) -> None:
        self._text = text
        self._parts = []
        self._size = 0
        self._decoder = _UTF8() if text and self._decode else None

    def add(self, data: Any, final: bool) -> str | bytes | None:
        """Add a fragment; the message when ``final``.  Raises
        UnicodeDecodeError (1007) or OverflowError (1009)."""
        self._size += len(data)
        if self.max_size is not None and self._size > self.max_size:
            raise OverflowError(f"message over {self.max_size} bytes")
        decoder = self._decoder
        if decoder is not None:
            data = decoder.decode(data, final)
        if final and not self._parts:
            return data  # type: ignore[no-any-return]
        self._parts.append(data)
        if not final:
            return None
        parts, self._parts = self._parts, []
        return "".join(parts) if self._text else b"".join(parts)


# -- websockets ----------------------------------------------------------------------
_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack


def _frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked, final frame (a server's frame, no extension)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return _PACK_16(0x80 | opcode, 126, n) + payload
    return _PACK_64(0x80 | opcode, 127, n) + payload


class WebsocketsCodec:
    """The frame layer of websockets' sans-I/O ``ServerProtocol``.

    Fast path (measured: the library's generator-based parser and frame
    objects were most of our own per-message cost): a whole, final,
    uncompressed text or binary frame of less than 64 KiB that starts at a
    frame boundary while the library holds no partial frame and no
    fragmented message is decoded here; sending without a negotiated
    extension frames here.  Everything else (control frames, fragments,
    compression, large or partial frames, every error) goes through the
    library, which therefore always sees the stream from a frame boundary
    in a state our fast frames do not change.
    """

    def __init__(self, max_size: int | None, deflate: bool) -> None:
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        from websockets.frames import Opcode
        from websockets.protocol import State
        from websockets.server import ServerProtocol

        class _Protocol(ServerProtocol):
            def recv_frame(self, frame: Any) -> None:
                # RFC 6455 §5.4 lets a close frame come between the fragments
                # of a message (the message is then abandoned); websockets
                # fails that with 1002, Autobahn case 7.1.5 expects the echo.
                if frame.opcode is Opcode.CLOSE:
                    self.current_size = None
                super().recv_frame(frame)

        # The protocol starts OPEN: the handshake was ours.  Its max_size is
        # the whole-message bound (it counts fragments and inflated bytes).
        self._p = _Protocol(
            extensions=[ServerPerMessageDeflateFactory()] if deflate else None,
            state=State.OPEN,
            max_size=max_size,
        )
        try:
            from websockets.speedups import apply_mask
        except ImportError:  # pragma: no cover - websockets built without its C extension
            from websockets.utils import apply_mask

        self._apply_mask = apply_mask
        self._op = Opcode
        self._state = State
        self._open = State.OPEN
        self._max_size = max_size if max_size is not None else 1 << 62
        self._plain_send = not deflate  # no extension can be negotiated
        self._message = _Assembler(None, True)  # the protocol bounds the size
        self.finished = False
        self._out: list[bytes] = []
        self.pending = False  # the library may have output to collect

    def negotiate(self, offers: list[bytes]) -> bytes | None:
        from websockets.datastructures import Headers
        from websockets.exceptions import InvalidHandshake

        headers = Headers()
        for value in offers:
            headers["Sec-WebSocket-Extensions"] = value.decode("latin-1")
        try:
            answer, extensions = self._p.process_extensions(headers)
        except InvalidHandshake:
            return None  # an offer we cannot parse is declined, not fatal
        self._p.extensions = extensions
        self._plain_send = not extensions
        return answer.encode("latin-1") if answer is not None else None

    def receive(self, data: bytes) -> list[Event]:
        p = self._p
        events: list[Event] = []
        if not p.reader.buffer and p.current_size is None and p.state is self._open:
            data = self._fast_frames(data, events)
            if not data:
                return events
        self.pending = True
        p.receive_data(data)
        op = self._op
        frames: list[Any] = p.events_received()
        for frame in frames:
            opcode = frame.opcode
            try:
                if opcode is op.TEXT or opcode is op.BINARY:
                    if frame.fin and opcode is op.BINARY:
                        events.append(frame.data)
                        continue
                    self._message.begin(opcode is op.TEXT)
                    message = self._message.add(frame.data, frame.fin)
                elif opcode is op.CONT:
                    message = self._message.add(frame.data, frame.fin)
                elif opcode is op.PONG:
                    events.append(PONG)
                    continue
                elif opcode is op.CLOSE:
                    close = p.close_rcvd
                    events.append(Close(close.code, close.reason) if close is not None else Close(1005, ""))
                    break
                else:  # PING: answered by the protocol
                    continue
            except UnicodeDecodeError:
                p.fail(1007, "invalid UTF-8 in a text message")
                events.append(Failed(1007, "invalid UTF-8 in a text message"))
                break
            if message is not None:
                events.append(message)
        exc = p.parser_exc
        if exc is not None and not (events and type(events[-1]) is Failed):
            sent = p.close_sent
            code = sent.code if sent is not None else 1002
            events.append(Failed(code, str(exc)))
        self._collect()
        return events

    def _fast_frames(self, data: bytes, events: list[Event]) -> bytes:
        """Decode the leading simple frames of ``data`` (see the class
        docstring); the rest, from the first other frame on."""
        pos = 0
        n = len(data)
        unmask = self._apply_mask
        while n - pos >= 6:
            first = data[pos]
            length = data[pos + 1] ^ 0x80  # clears the MASK bit a client must set
            if (first != 0x81 and first != 0x82) or length > 126:
                break  # not FIN + text/binary without RSV, unmasked, or 64-bit length
            start = pos + 6
            if length == 126:
                start = pos + 8
                if start > n:
                    break
                length = data[pos + 2] << 8 | data[pos + 3]
            end = start + length
            if end > n or length > self._max_size:
                break
            payload = unmask(data[start:end], data[start - 4 : start])
            if first == 0x81:
                try:
                    events.append(payload.decode())
                except UnicodeDecodeError:
                    break  # the library fails the connection with 1007
            else:
                events.append(payload)
            pos = end
        return data[pos:] if pos else data

    def send(self, message: str | bytes) -> bytes:
        if self._plain_send and self._p.state is self._open:
            if type(message) is str:
                return _frame(1, message.encode())
            return _frame(2, message)  # type: ignore[arg-type]
        p = self._p
        self.pending = True
        if type(message) is str:
            p.send_text(message.encode())
        else:
            p.send_binary(message)  # type: ignore[arg-type]
        return self.data_to_send()

    def close(self, code: int, reason: str) -> bytes:
        p = self._p
        self.pending = True
        if p.state is self._state.OPEN:
            p.send_close(code, reason)
        return self.data_to_send()

    def ping(self, payload: bytes) -> bytes:
        self.pending = True
        self._p.send_ping(payload)
        return self.data_to_send()

    def _collect(self) -> None:
        for chunk in self._p.data_to_send():
            if chunk:
                self._out.append(chunk)
            else:  # the protocol's "close the connection now"
                self.finished = True

    def data_to_send(self) -> bytes:
        self.pending = False
        self._collect()
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)


# -- wsproto -------------------------------------------------------------------------
class WsprotoCodec:
    """The frame layer of wsproto (``wsproto.connection.Connection``)."""

    def __init__(self, max_size: int | None, deflate: bool) -> None:
        from wsproto import events as ev
        from wsproto.connection import Connection, ConnectionState, ConnectionType

        self._ev = ev
        self._states = ConnectionState
        self._make: Any = lambda extensions: Connection(ConnectionType.SERVER, extensions)
        self._conn = self._make([])
        self._deflate = deflate
        self._message = _Assembler(max_size, False)
        self._in_message = False
        self.finished = False
        self.pending = False
        self._out = b""

    def negotiate(self, offers: list[bytes]) -> bytes | None:
        if not self._deflate:
            return None
        from wsproto.extensions import PerMessageDeflate

        extension = PerMessageDeflate()
        for value in offers:
            for offer in value.decode("latin-1").split(","):
                name = offer.split(";", 1)[0].strip()
                if name != extension.name:
                    continue
                accepted = extension.accept(offer.strip())
                if accepted is None or accepted is False:
                    continue
                self._conn = self._make([extension])
                answer = f"{name}; {accepted}" if isinstance(accepted, str) and accepted else name
                return answer.encode("latin-1")
        return None

    def receive(self, data: bytes) -> list[Event]:
        conn = self._conn
        ev = self._ev
        conn.receive_data(data)
        events: list[Event] = []
        for event in conn.events():
            t = type(event)
            if t is ev.TextMessage or t is ev.BytesMessage:
                if not self._in_message:
                    self._in_message = True
                    self._message.begin(t is ev.TextMessage)
                try:
                    message = self._message.add(event.data, event.message_finished)  # type: ignore[attr-defined]
                except OverflowError as exc:
                    events.append(self._fail(1009, str(exc)))
                    break
                if message is not None:
                    self._in_message = False
                    events.append(message)
            elif t is ev.Ping:
                self.pending = True
                self._out += conn.send(event.response())  # type: ignore[attr-defined]
            elif t is ev.Pong:
                events.append(PONG)
            else:  # CloseConnection
                code, reason = int(event.code), event.reason or ""  # type: ignore[attr-defined]
                state = conn.state
                if state is self._states.REMOTE_CLOSING:  # the peer starts closing: echo
                    self.pending = True
                    self._out += conn.send(event.response())  # type: ignore[attr-defined]
                elif state is not self._states.CLOSED:  # not a reply to ours: wsproto found a fault
                    events.append(self._fail(code, reason))
                    break
                self.finished = True
                events.append(Close(code, reason))
                break
        return events

    def _fail(self, code: int, reason: str) -> Failed:
        conn = self._conn
        if conn.state is self._states.OPEN:
            self.pending = True
            self._out += conn.send(self._ev.CloseConnection(code=code, reason=reason))
        self.finished = True
        return Failed(code, reason)

    def send(self, message: str | bytes) -> bytes:
        ev = self._ev
        if type(message) is str:
            return self._conn.send(ev.TextMessage(data=message))
        return self._conn.send(ev.BytesMessage(data=message))

    def close(self, code: int, reason: str) -> bytes:
        conn = self._conn
        if conn.state is not self._states.OPEN:
            return b""
        return conn.send(self._ev.CloseConnection(code=code, reason=reason))

    def ping(self, payload: bytes) -> bytes:
        return self._conn.send(self._ev.Ping(payload=payload))

    def data_to_send(self) -> bytes:
        self.pending = False
        out, self._out = self._out, b""
        return out


WS_CODECS: dict[str, type[WebsocketsCodec] | type[WsprotoCodec]] = {
    "websockets": WebsocketsCodec,
    "websockets-sansio": WebsocketsCodec,
    "wsproto": WsprotoCodec,
}


def resolve_ws(name: str) -> str | None:
    """The library behind ``--ws``: None for ``none`` (and for ``auto`` when
    neither library is installed)."""
    if name == "none":
        return None
    if name == "auto":
        for candidate in ("websockets", "wsproto"):
            try:
                __import__(candidate)
            except ImportError:
                continue
            return candidate
        return None
    return "websockets" if name == "websockets-sansio" else name


__all__ = ["PONG", "WS_CODECS", "Close", "Failed", "WSCodec", "WebsocketsCodec", "WsprotoCodec", "resolve_ws"]
