"""WebSockets over HTTP/2 (RFC 8441, extended CONNECT) on a real socket:
the h2 library as the HTTP/2 client, wsproto's frame protocol for the
WebSocket frames inside the stream's DATA."""

from __future__ import annotations

from collections.abc import Iterator

import h2.settings
import pytest
from conftest import RunningServer, run_server
from h1tools import ThreadEvent
from h2tools import H2Client, Reply
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode

EVENTS: list[str] = []
DISCONNECTED = ThreadEvent()  # the app saw websocket.disconnect


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "websocket":
        return
    EVENTS.append(f"{scope['scheme']} {scope['path']} {scope['http_version']} {scope['subprotocols']}")
    await receive()  # websocket.connect
    if scope["path"] == "/deny":
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept", "subprotocol": "chat" if scope["subprotocols"] else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append(f"disconnect {message['code']}")
            DISCONNECTED.set()
            return
        await send({"type": "websocket.send", "text": "echo:" + message["text"]})


@pytest.fixture(scope="module", params=["websockets", "wsproto"])
def srv(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with run_server(app, lifespan="off", ws=request.param) as running:
        yield running


def connect(client: H2Client, path: str = "/ws", extra: list[tuple[bytes, bytes]] | None = None) -> int:
    sid = client.conn.get_next_available_stream_id()
    fields = [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", b"localhost"),
        *(extra if extra is not None else [(b"sec-websocket-version", b"13")]),
    ]
    client.conn.send_headers(sid, fields)
    client.flush()
    client.replies[sid] = Reply()
    client.receive(lambda: client.replies[sid].status != 0 or client.replies[sid].reset is not None)
    return sid


def frames(client: H2Client, sid: int, ws: FrameProtocol, count: int) -> list[tuple[Opcode, object]]:
    """Read until ``count`` WebSocket frames arrived on the stream."""
    got: list[tuple[Opcode, object]] = []

    def enough() -> bool:
        reply = client.replies[sid]
        if reply.body:
            ws.receive_bytes(reply.body)
            reply.body = b""
            got.extend((f.opcode, f.payload) for f in ws.received_frames())
        return len(got) >= count

    client.receive(enough)
    return got


def test_settings_enable_connect_protocol(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        assert client.remote_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1


def test_echo_and_close(srv: RunningServer) -> None:
    EVENTS.clear()
    DISCONNECTED._event.clear()
    with H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        offer = [(b"sec-websocket-version", b"13"), (b"sec-websocket-protocol", b"chat")]
        sid = connect(client, "/ws", offer)
        reply = client.replies[sid]
        assert reply.status == 200
        assert reply.header(b"sec-websocket-protocol") == b"chat"
        assert EVENTS[0] == "ws /ws 2 ['chat']"
        ws = FrameProtocol(client=True, extensions=[])
        for text in ("hello", "world"):
            client.conn.send_data(sid, ws.send_data(text, fin=True))
            client.flush()
        assert frames(client, sid, ws, 2) == [(Opcode.TEXT, "echo:hello"), (Opcode.TEXT, "echo:world")]
        # Close handshake, then the server ends the stream.
        client.conn.send_data(sid, ws.close(1000, "bye"))
        client.flush()
        got = frames(client, sid, ws, 1)
        assert got[0] == (Opcode.CLOSE, (CloseReason.NORMAL_CLOSURE, "bye"))
        client.receive(lambda: client.replies[sid].ended)
        assert DISCONNECTED.wait()
        assert "disconnect 1000" in EVENTS
        # The connection carries on with ordinary requests.
        assert client.response(client.request("/plain")).reset is None


def test_denial_and_wrong_version(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        sid = connect(client, "/deny")
        assert client.response(sid).status == 403
        sid = connect(client, "/ws", [(b"sec-websocket-version", b"8")])
        reply = client.response(sid)
        assert reply.status == 426 and reply.header(b"sec-websocket-version") == b"13"


def test_reset_stream_is_a_disconnect(srv: RunningServer) -> None:
    EVENTS.clear()
    DISCONNECTED._event.clear()
    with H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        sid = connect(client)
        client.conn.reset_stream(sid)
        client.flush()
        assert DISCONNECTED.wait()
        assert "disconnect 1006" in EVENTS


def test_websockets_off() -> None:
    with run_server(app, lifespan="off", ws="none") as srv, H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        assert client.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0) == 0
        assert client.response(connect(client)).status == 501


def test_shutdown_closes_with_1012() -> None:
    with run_server(app, lifespan="off") as srv, H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        sid = connect(client)
        ws = FrameProtocol(client=True, extensions=[])
        srv.server.should_exit = True
        got = frames(client, sid, ws, 1)
        assert got[0][0] is Opcode.CLOSE and got[0][1][0] == 1012  # type: ignore[index]
        client.conn.send_data(sid, ws.close(1012))
        client.flush()
        client.wait_closed()
        assert client.goaway is not None


