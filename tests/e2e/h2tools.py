"""An HTTP/2 client for frame-level tests: the ``h2`` library (client side)
over a real socket, plus raw frames (hyperframe) for what a well-behaved
client never sends."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from conftest import RunningServer
from hyperframe.frame import Frame


@dataclass
class Reply:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[int] = field(default_factory=list)
    reset: int | None = None  # the RST_STREAM error code, if the server reset the stream
    ended: bool = False

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None


class H2Client:
    """One HTTP/2 connection to ``srv`` (prior knowledge, or TLS with ALPN h2)."""

    def __init__(
        self,
        srv: RunningServer,
        settings: dict[int, int] | None = None,
        tls: ssl.SSLContext | None = None,
        auto_ack: bool = True,
    ) -> None:
        sock = srv.connect()
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
            sock = tls.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            # The tests send malformed requests on purpose.
            h2.config.H2Configuration(
                client_side=True, header_encoding=None, validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.flush()
        self.auto_ack = auto_ack  # give flow-control window back as DATA arrives
        self.closed = False
        self.events: list[Any] = []
        self.replies: dict[int, Reply] = {}
        self.remote_settings: dict[int, int] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_frame(self, frame: Frame) -> None:
        self.sock.sendall(frame.serialize())

    def request(
        self,
        path: str = "/",
        method: str = "GET",
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        end: bool = True,
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", method.encode()),
            (b":scheme", b"http"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
            *(headers or []),
        ]
        self.conn.send_headers(sid, fields, end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        self.replies[sid] = Reply()
        return sid

    def receive(self, until: Callable[[], bool], timeout: float = 10.0) -> None:
        """Read and handle events until ``until()`` holds or the server closes."""
        self.sock.settimeout(timeout)
        while not until() and not self.closed:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                break
            for event in self.conn.receive_data(data):
                self._handle(event)
            self.flush()

    def _handle(self, event: Any) -> None:
        self.events.append(event)
        sid = getattr(event, "stream_id", None)
        reply = self.replies.setdefault(sid, Reply()) if sid else None
        if isinstance(event, h2.events.ResponseReceived) and reply is not None:
            reply.headers = [(n, v) for n, v in event.headers if not n.startswith(b":")]
            reply.status = int(dict(event.headers)[b":status"])
        elif isinstance(event, h2.events.InformationalResponseReceived) and reply is not None:
            reply.informational.append(int(dict(event.headers)[b":status"]))
        elif isinstance(event, h2.events.TrailersReceived) and reply is not None:
            reply.trailers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived) and reply is not None:
            reply.body += event.data
            if self.auto_ack and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded) and reply is not None:
            reply.ended = True
        elif isinstance(event, h2.events.StreamReset) and reply is not None:
            reply.reset = event.error_code
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.remote_settings.update({k: v.new_value for k, v in event.changed_settings.items()})
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
            if event.error_code == 0:
                # h2 stops at any GOAWAY, but RFC 9113 §6.8 lets the streams
                # up to last_stream_id finish: keep reading them.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def response(self, sid: int, timeout: float = 10.0) -> Reply:
        """Wait for the whole response on ``sid`` (or its reset)."""
        reply = self.replies[sid]
        self.receive(lambda: reply.ended or reply.reset is not None, timeout)
        return reply

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Read (and drop) until the server closes the connection."""
        self.receive(lambda: False, timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
