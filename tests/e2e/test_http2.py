"""HTTP/2 on real sockets: httpx (HTTP/2), curl (prior knowledge, h2c
upgrade, TLS with ALPN) and the h2 library as a frame-level client.

Every stream is one request cycle (cycle.py), so these tests look at what is
HTTP/2's own: the three ways in, flow control both ways, SETTINGS, resets,
GOAWAY, connection errors, and the attack limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest
from conftest import HTTP_IMPLS, RunningServer, run_server
from h1tools import Reader, ThreadEvent
from h2tools import H2Client, Reply
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    SettingsFrame,
)
from tlsfiles import TLSFiles, make_tls_files

ErrorCodes = h2.errors.ErrorCodes
CURL = shutil.which("curl")

GATE = ThreadEvent()  # /slowread reads its body only once this is set
HOLD = ThreadEvent()  # /hold answers only once this is set
STARTED = ThreadEvent()  # /hold and /disconnect are running
DISCONNECTED = ThreadEvent()  # /disconnect saw http.disconnect
SENT: list[int] = []  # /big: bytes handed to send() so far
SEEN_HEADERS: list[list[tuple[bytes, bytes]]] = []  # the scope headers of each request


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    path = scope["path"]
    SEEN_HEADERS.append(list(scope["headers"]))
    if path == "/no-read":  # answers without reading the request body
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/slowread":
        await GATE.wait_async()
    if path == "/disconnect":
        STARTED.set()
        while (await receive())["type"] != "http.disconnect":
            pass
        DISCONNECTED.set()
        return
    if path == "/hold":
        STARTED.set()
        await HOLD.wait_async()
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path == "/big":
        size = int(scope["query_string"] or 100_000)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(size // 10_000):
            await send({"type": "http.response.body", "body": b"x" * 10_000, "more_body": True})
            SENT.append(10_000)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/own-server":
        headers = [(b"server", b"mine"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/boom":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom")
    if path == "/trailers":
        size = int(scope["query_string"] or 0)
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"t" * size})
        await send({"type": "http.response.trailers", "headers": [(b"x-t", b"1")] if size else []})
        return
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"X-Kind", b"Stream")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    info = {
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "method": scope["method"],
        "path": path,
        "query": scope["query_string"].decode(),
        "host": [v.decode() for n, v in scope["headers"] if n == b"host"],
        "pseudo": [n.decode() for n, _ in scope["headers"] if n.startswith(b":")],
        "body": len(body),
    }
    reply = json.dumps(info).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"Connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": reply})


@pytest.fixture(scope="module")
def srv() -> Iterator[RunningServer]:
    with run_server(app, lifespan="off", h2_stall_timeout=1.0) as running:
        yield running


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("h2tls"))


@pytest.fixture(autouse=True)
def _reset_events() -> Iterator[None]:
    yield
    for event in (GATE, HOLD, STARTED, DISCONNECTED):
        event._event.clear()
    SENT.clear()


# -- the three ways in, with real clients ----------------------------------------------------
def test_httpx_prior_knowledge(srv: RunningServer) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        r = client.post(f"{srv.url}/echo?a=1", content=b"x" * 100_000)
        assert r.http_version == "HTTP/2"
        info = r.json()
        assert info == {
            "http_version": "2",
            "scheme": "http",
            "method": "POST",
            "path": "/echo",
            "query": "a=1",
            "host": [f"{srv.host}:{srv.port}"],  # from :authority, first, once
            "pseudo": [],
            "body": 100_000,
        }
        # The app's Connection header is HTTP/1.1's: not sent on HTTP/2.
        assert "connection" not in r.headers
        assert r.headers["server"] == "monoceros"
        r = client.get(f"{srv.url}/stream")
        assert r.text == "part0;part1;part2;"
        assert r.headers["x-kind"] == "Stream"


@pytest.mark.parametrize("http_impl", HTTP_IMPLS)
def test_prior_knowledge_whatever_the_http1_parser(http_impl: str) -> None:
    with (
        run_server(app, lifespan="off", http=http_impl) as srv,
        httpx.Client(http1=False, http2=True, timeout=10) as client,
    ):
        assert client.get(f"{srv.url}/pk").json()["http_version"] == "2"
        assert httpx.get(f"{srv.url}/h1").json()["http_version"] == "1.1"  # the same port


def test_httpx_many_concurrent_streams(srv: RunningServer) -> None:
    async def main() -> list[int]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
            replies = await asyncio.gather(*(client.get(f"{srv.url}/n{i}") for i in range(50)))
            return [r.status_code for r in replies]

    assert asyncio.run(main()) == [200] * 50


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_prior_knowledge(srv: RunningServer) -> None:
    # One URL per curl: curl 7.88 fails (exit 16) to reuse a prior-knowledge
    # connection, against any server.
    out = subprocess.run(
        [CURL, "-s", "--http2-prior-knowledge", "-i", "--data-binary", "abc", f"{srv.url}/x"],
        capture_output=True, timeout=20, check=True,
    ).stdout
    assert out.startswith(b"HTTP/2 200")
    assert json.loads(out.rsplit(b"\r\n\r\n", 1)[1])["body"] == 3


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
@pytest.mark.parametrize("data", [None, "a" * 5000], ids=["no-body", "body"])
def test_curl_upgrade_h2c(srv: RunningServer, data: str | None) -> None:
    cmd = [CURL, "-s", "--http2", "-i", f"{srv.url}/up"]
    if data is not None:
        cmd += ["--data-binary", data]
    out = subprocess.run(cmd, capture_output=True, timeout=20, check=True).stdout
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"HTTP/2 200" in out
    info = json.loads(out.rsplit(b"\r\n\r\n", 1)[1])
    assert info["http_version"] == "2"
    assert info["method"] == ("POST" if data else "GET")
    assert info["body"] == (len(data) if data else 0)
    assert info["host"] == [f"{srv.host}:{srv.port}"]


@pytest.mark.parametrize("http_impl", HTTP_IMPLS)
def test_upgrade_then_more_streams_on_the_connection(http_impl: str) -> None:
    """The h2c upgrade by hand, on both HTTP/1.1 parsers: 101, stream 1
    answered over HTTP/2, then the client's own streams."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    settings = conn.initiate_upgrade_connection()
    with run_server(app, lifespan="off", http=http_impl) as srv, srv.connect() as sock:
        sock.sendall(
            b"POST /up HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\nContent-Length: 3\r\n\r\nabc"
            + conn.data_to_send()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 ")
        events = conn.receive_data(rest) if rest else []
        bodies: dict[int, bytes] = {}
        ended: set[int] = set()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"),
                                (b":path", b"/two")], end_stream=True)
        sock.sendall(conn.data_to_send())
        while not {1, sid} <= ended:
            for event in events:
                if isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                elif isinstance(event, h2.events.StreamEnded):
                    ended.add(event.stream_id)
            if {1, sid} <= ended:
                break
            events = conn.receive_data(sock.recv(65536))
            sock.sendall(conn.data_to_send())
        assert json.loads(bodies[1])["body"] == 3
        assert json.loads(bodies[1])["path"] == "/up"
        assert json.loads(bodies[sid])["path"] == "/two"


def test_upgrade_with_an_absolute_target(srv: RunningServer) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    settings = conn.initiate_upgrade_connection()
    with srv.connect() as sock:
        sock.sendall(
            b"GET http://localhost/abs?q=1 HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: " + settings + b"\r\n\r\n" + conn.data_to_send()
        )
        reader = Reader(sock)
        assert reader.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")
        body = b""
        ended = False
        data = reader.buf
        while not ended:
            for event in conn.receive_data(data or sock.recv(65536)):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == 1:
                    body += event.data
                ended = ended or (isinstance(event, h2.events.StreamEnded) and event.stream_id == 1)
            data = b""
            sock.sendall(conn.data_to_send())
        info = json.loads(body)
        assert (info["path"], info["query"], info["http_version"]) == ("/abs", "q=1", "2")


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 0\r\n",  # no HTTP2-Settings (RFC 7540 §3.2.1: then no upgrade)
        b"HTTP2-Settings: AAMAAABk\r\nHTTP2-Settings: AAMAAABk\r\nContent-Length: 0\r\n",  # two
        b"HTTP2-Settings: AAMAAA\r\nContent-Length: 0\r\n",  # not whole settings
        b"HTTP2-Settings: A\r\nContent-Length: 0\r\n",  # not base64
        b"HTTP2-Settings: AAMAAABk\r\nTransfer-Encoding: chunked\r\n",  # a body of unknown length
        b"HTTP2-Settings: AAMAAABk\r\nContent-Length: 70000\r\n",  # more than we read before switching
    ],
    ids=["no-settings", "two-settings", "broken-settings", "not-base64", "chunked", "large-body"],
)
def test_upgrade_not_taken(srv: RunningServer, fields: bytes) -> None:
    """Served as HTTP/1.1 instead (RFC 9110 §7.8 lets a server ignore Upgrade)."""
    body = b"3\r\nabc\r\n0\r\n\r\n" if b"chunked" in fields else b"b" * 70000 if b"70000" in fields else b""
    with srv.connect() as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                     b"Upgrade: h2c\r\n" + fields + b"\r\n" + body)
        data = Reader(sock).read_until(b"}")
        assert data.startswith(b"HTTP/1.1 200 "), data
        assert b'"http_version": "1.1"' in data


def test_tls_alpn_h2_with_httpx_and_curl(tls: TLSFiles) -> None:
    with run_server(app, lifespan="off", ssl_certfile=tls.cert, ssl_keyfile=tls.key) as srv:
        with httpx.Client(http2=True, verify=tls_context(tls), timeout=10) as client:
            r = client.get(f"{srv.url}/tls")
            assert r.http_version == "HTTP/2"
            assert r.json()["scheme"] == "https"
            r = httpx.get(f"{srv.url}/tls", verify=tls_context(tls), timeout=10)  # HTTP/1.1 by ALPN
            assert r.http_version == "HTTP/1.1"
        if CURL is not None:
            out = subprocess.run(
                [CURL, "-s", "-i", "--http2", "--cacert", tls.ca_cert, f"https://localhost:{srv.port}/c"],
                capture_output=True, timeout=20, check=True,
            ).stdout
            assert out.startswith(b"HTTP/2 200")


def test_http2_off(tls: TLSFiles) -> None:
    with run_server(app, lifespan="off", http2=False) as srv, srv.connect() as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")


def tls_context(tls: TLSFiles):  # type: ignore[no-untyped-def]
    import ssl

    return ssl.create_default_context(cafile=tls.ca_cert)


# -- frames -----------------------------------------------------------------------------------
def test_settings_advertised_from_config() -> None:
    with (
        run_server(app, lifespan="off", h2_max_concurrent_streams=7, h2_max_header_list_size=9000,
                   h2_initial_window_size=12345) as srv,
        H2Client(srv) as client,
    ):
        client.receive(lambda: bool(client.remote_settings))
        s = h2.settings.SettingCodes
        assert client.remote_settings[s.MAX_CONCURRENT_STREAMS] == 7
        assert client.remote_settings[s.MAX_HEADER_LIST_SIZE] == 9000
        assert client.remote_settings[s.INITIAL_WINDOW_SIZE] == 12345
        sids = [client.request("/hold") for _ in range(7)]
        HOLD.set()
        for sid in sids:
            assert client.response(sid).status == 200


def test_ping_is_answered(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        client.conn.ping(b"12345678")
        client.flush()
        client.receive(lambda: any(isinstance(e, h2.events.PingAckReceived) for e in client.events))
        ack = next(e for e in client.events if isinstance(e, h2.events.PingAckReceived))
        assert ack.ping_data == b"12345678"


def test_head_and_204_and_expect_continue(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        reply = client.response(client.request("/h", method="HEAD"))
        assert reply.status == 200 and reply.body == b""
        sid = client.request("/c", method="POST", headers=[(b"expect", b"100-continue")], end=False)
        client.receive(lambda: bool(client.replies[sid].informational))
        assert client.replies[sid].informational == [100]
        client.conn.send_data(sid, b"abc", end_stream=True)
        client.flush()
        assert json.loads(client.response(sid).body)["body"] == 3


def test_reset_stream_is_http_disconnect(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        sid = client.request("/disconnect", method="POST", end=False)
        assert STARTED.wait()
        client.conn.reset_stream(sid, ErrorCodes.CANCEL)
        client.flush()
        assert DISCONNECTED.wait()
        # The connection goes on.
        assert client.response(client.request("/after")).status == 200


GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")]
MALFORMED = {
    # RFC 9113 §8.3.1 and our target rules (the same as HTTP/1.1's)
    "path-no-slash": [*GET[:3], (b":path", b"no-slash")],
    "path-fragment": [*GET[:3], (b":path", b"/a#frag")],
    "asterisk-not-options": [*GET[:3], (b":path", b"*")],
    "path-missing": GET[:3],
    "path-empty": [*GET[:3], (b":path", b"")],
    "method-missing": GET[1:],
    "method-invalid": [(b":method", b"G(T"), *GET[1:]],
    "scheme-missing": [GET[0], *GET[2:]],
    "authority-invalid": [*GET[:2], (b":authority", b"a b"), GET[3]],
    # §8.3: pseudo-headers
    "pseudo-after-regular": [*GET[:3], (b"accept", b"*/*"), GET[3]],
    "pseudo-twice": [*GET, (b":path", b"/again")],
    "pseudo-unknown": [*GET, (b":custom", b"x")],
    "pseudo-response-only": [*GET, (b":status", b"200")],
    "pseudo-value-nul": [*GET[:2], (b":authority", b"a\x00b"), GET[3]],
    "protocol-without-connect": [*GET, (b":protocol", b"websocket")],
    "connect-with-path": [(b":method", b"CONNECT"), (b":authority", b"x:443"), (b":path", b"/")],
    # §8.2: fields
    "uppercase-name": [*GET, (b"Accept", b"*/*")],
    "empty-name": [*GET, (b"", b"x")],
    "space-in-name": [*GET, (b"a b", b"x")],
    "colon-in-name": [*GET, (b"a:b", b"x")],
    "connection-field": [*GET, (b"connection", b"keep-alive")],
    "upgrade-field": [*GET, (b"upgrade", b"h2c")],
    "te-not-trailers": [*GET, (b"te", b"gzip")],
    "value-leading-space": [*GET, (b"accept", b" x")],
    "value-trailing-tab": [*GET, (b"accept", b"x\t")],
    "value-nul": [*GET, (b"accept", b"a\x00b")],
    "value-lf": [*GET, (b"accept", b"a\nb")],
    "two-hosts": [*GET, (b"host", b"x"), (b"host", b"x")],
    "host-differs": [*GET, (b"host", b"y")],
}


def test_malformed_requests_are_stream_errors(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        for case, fields in MALFORMED.items():
            sid = client.conn.get_next_available_stream_id()
            client.conn.send_headers(sid, fields, end_stream=True)
            client.flush()
            client.replies[sid] = Reply()
            assert client.response(sid).reset == ErrorCodes.PROTOCOL_ERROR, case
        # Still serving on the same connection.
        assert client.response(client.request("/ok")).status == 200
    # A Content-Length that cannot be read: on a request without a body (the
    # fast path, see FastStream) a stream error like the rest, and so is one
    # that promises a body which never comes ...
    with H2Client(srv) as client:
        for values in ([b"x1"], [b"1", b"2"], [b"+1"], [b"5"]):
            sid = client.request("/", headers=[(b"content-length", v) for v in values])
            assert client.response(sid).reset == ErrorCodes.PROTOCOL_ERROR, values
        assert client.response(client.request("/ok")).status == 200
    # ... with a body, h2 checks the body against it: a connection error.
    for values in ([b"x1"], [b"1", b"2"]):
        with H2Client(srv) as client:
            client.request("/", headers=[(b"content-length", v) for v in values], body=b"x")
            client.wait_closed()
            assert client.goaway is not None and client.goaway.error_code == ErrorCodes.PROTOCOL_ERROR


def test_well_formed_edge_cases(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        # Host without :authority; split cookies joined (RFC 9113 §8.2.3); TE: trailers.
        fields = [*GET[:2], GET[3], (b"host", b"example.com"), (b"cookie", b"a=1"), (b"te", b"trailers"),
                  (b"cookie", b"b=2"), (b"accept", b"")]
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(sid, fields, end_stream=True)
        client.flush()
        client.replies[sid] = Reply()
        assert json.loads(client.response(sid).body)["host"] == ["example.com"]
        assert SEEN_HEADERS[-1].count((b"cookie", b"a=1; b=2")) == 1
        # Request trailers are read and dropped; a pseudo-header in them is malformed.
        sid = client.request("/", method="POST", body=b"abc", end=False)
        client.conn.send_headers(sid, [(b"x-sum", b"1")], end_stream=True)
        client.flush()
        assert json.loads(client.response(sid).body)["body"] == 3
        sid = client.request("/", method="POST", body=b"abc", end=False)
        client.conn.send_headers(sid, [(b":path", b"/x")], end_stream=True)
        client.flush()
        assert client.response(sid).reset == ErrorCodes.PROTOCOL_ERROR


def test_connection_error_closes_with_goaway_and_others_go_on(srv: RunningServer) -> None:
    with H2Client(srv) as bad, H2Client(srv) as good:
        bad.sock.sendall(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")  # DATA on stream 0: PROTOCOL_ERROR
        bad.wait_closed()
        assert bad.goaway is not None and bad.goaway.error_code == ErrorCodes.PROTOCOL_ERROR
        assert good.response(good.request("/ok")).status == 200


def test_options_asterisk_and_connect(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        assert json.loads(client.response(client.request("*", method="OPTIONS")).body)["path"] == "*"
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(sid, [(b":method", b"CONNECT"), (b":authority", b"example.com:443")],
                                 end_stream=True)
        client.flush()
        client.replies[sid] = Reply()
        assert client.response(sid).status == 501


# -- flow control -----------------------------------------------------------------------------
def test_window_is_given_back_as_the_app_reads() -> None:
    with run_server(app, lifespan="off", h2_initial_window_size=20_000) as srv, H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        sid = client.request("/slowread", method="POST", end=False)
        client.conn.send_data(sid, b"a" * 10_000)
        client.conn.send_data(sid, b"a" * 10_000)
        client.flush()
        # The app has not read: the stream window stays shut (a PING round
        # trip shows the server had the chance to open it).
        client.conn.ping(b"pingpong")
        client.flush()
        client.receive(lambda: any(isinstance(e, h2.events.PingAckReceived) for e in client.events))
        assert client.conn.local_flow_control_window(sid) == 0
        GATE.set()  # the app reads: the window opens again
        client.receive(lambda: client.conn.local_flow_control_window(sid) > 0)
        client.conn.send_data(sid, b"b" * 10_000, end_stream=True)
        client.flush()
        assert json.loads(client.response(sid).body)["body"] == 30_000


def test_send_waits_for_the_client_window(srv: RunningServer) -> None:
    s = h2.settings.SettingCodes
    with H2Client(srv, settings={s.INITIAL_WINDOW_SIZE: 15_000}, auto_ack=False) as client:
        sid = client.request("/big?100000")
        client.receive(lambda: len(client.replies[sid].body) >= 15_000)
        # The window is spent: the app's send() waits (it got one 10 kB chunk
        # beyond the window at most).
        client.conn.ping(b"pingpong")
        client.flush()
        client.receive(lambda: any(isinstance(e, h2.events.PingAckReceived) for e in client.events))
        assert len(client.replies[sid].body) == 15_000
        assert sum(SENT) <= 30_000
        client.auto_ack = True
        client.conn.acknowledge_received_data(15_000, sid)
        client.conn.increment_flow_control_window(15_000, sid)
        client.flush()
        reply = client.response(sid)
        assert len(reply.body) == 100_000 and reply.ended


def test_zero_window_stall_resets_the_stream(srv: RunningServer) -> None:
    s = h2.settings.SettingCodes
    with H2Client(srv, settings={s.INITIAL_WINDOW_SIZE: 0}, auto_ack=False) as client:
        sid = client.request("/big?50000")
        reply = client.response(sid)  # h2_stall_timeout=1.0: the sweep resets it
        assert reply.reset == ErrorCodes.CANCEL
        assert reply.body == b""


# -- shutdown ---------------------------------------------------------------------------------
def test_graceful_shutdown_sends_goaway_and_completes_streams() -> None:
    with run_server(app, lifespan="off") as srv, H2Client(srv) as client:
        sid = client.request("/hold")
        assert STARTED.wait()
        srv.server.should_exit = True
        client.receive(lambda: client.goaway is not None)
        assert client.goaway.error_code == ErrorCodes.NO_ERROR
        assert client.goaway.last_stream_id == sid
        HOLD.set()
        assert client.response(sid).status == 200  # the stream in flight completes
        client.wait_closed()
        assert client.closed


# -- attack limits ----------------------------------------------------------------------------
def test_rapid_reset_is_stopped() -> None:
    with run_server(app, lifespan="off", h2_max_resets=20) as srv, H2Client(srv) as client:
        for _ in range(30):
            sid = client.request("/hold", end=False)
            client.conn.reset_stream(sid, ErrorCodes.CANCEL)
        client.flush()
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        HOLD.set()


def test_ping_flood_is_stopped() -> None:
    with run_server(app, lifespan="off", h2_max_control_frames=50) as srv, H2Client(srv) as client:
        client.sock.sendall(b"".join(PingFrame(0, opaque_data=b"%08d" % i).serialize() for i in range(60)))
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_priority_flood_is_stopped() -> None:
    with run_server(app, lifespan="off", h2_max_control_frames=50) as srv, H2Client(srv) as client:
        frames = (PriorityFrame(2 * i + 1, depends_on=0, stream_weight=15).serialize() for i in range(60))
        client.sock.sendall(b"".join(frames))
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_settings_flood_is_stopped() -> None:
    with run_server(app, lifespan="off", h2_max_control_frames=50) as srv, H2Client(srv) as client:
        client.sock.sendall(b"".join(SettingsFrame(0, settings={4: 65535}).serialize() for _ in range(60)))
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_empty_data_flood_is_stopped() -> None:
    with run_server(app, lifespan="off", h2_max_control_frames=50) as srv, H2Client(srv) as client:
        sid = client.request("/slowread", method="POST", end=False)
        client.sock.sendall(b"".join(DataFrame(sid, data=b"").serialize() for _ in range(60)))
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        GATE.set()


def test_continuation_flood_is_stopped(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        enc = Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")])
        frames = [HeadersFrame(1, data=enc)]
        frames += [ContinuationFrame(1, data=b"") for _ in range(100)]  # never END_HEADERS
        client.sock.sendall(b"".join(f.serialize() for f in frames))
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.PROTOCOL_ERROR


def test_continuation_bytes_are_bounded(srv: RunningServer) -> None:
    """A header block in large CONTINUATION frames is refused once it passes
    --h2-max-header-list-size (64 KiB) + 16 KiB, long before 64 frames."""
    with H2Client(srv) as client:
        enc = Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")])
        frames = [HeadersFrame(1, data=enc)]
        frames += [ContinuationFrame(1, data=b"\x00" * 16384) for _ in range(6)]  # 96 KiB, never END_HEADERS
        client.sock.sendall(b"".join(f.serialize() for f in frames))
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_hpack_bomb_is_stopped(srv: RunningServer) -> None:
    """One 4 kB header in the dynamic table, referenced many times: the
    decoded list passes --h2-max-header-list-size (64 KiB)."""
    with H2Client(srv) as client:
        encoder = Encoder()
        fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"x")]
        block = encoder.encode([*fields, (b"x-bomb", b"b" * 4000)])
        block += encoder.encode([(b"x-bomb", b"b" * 4000)]) * 40  # each an index into the table: 1 byte
        assert len(block) < 16384
        client.send_frame(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]))
        client.wait_closed()
        assert client.goaway is not None and client.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_reset_apps_still_running_count_against_streams() -> None:
    """Resetting streams does not let a client run more apps than
    --h2-max-concurrent-streams: the apps of reset streams still count."""
    with (
        run_server(app, lifespan="off", h2_max_concurrent_streams=3, h2_max_resets=1000) as srv,
        H2Client(srv) as client,
    ):
        sids = [client.request("/hold") for _ in range(3)]
        client.conn.ping(b"pingpong")
        client.flush()
        client.receive(lambda: any(isinstance(e, h2.events.PingAckReceived) for e in client.events))
        for sid in sids:
            client.conn.reset_stream(sid, ErrorCodes.CANCEL)
        client.flush()
        # h2 now counts no open stream, but the three apps still run.
        assert client.response(client.request("/one-more")).reset == ErrorCodes.REFUSED_STREAM
        HOLD.set()


def test_limits_shared_with_http1() -> None:
    with (
        run_server(app, lifespan="off", limit_request_body=10) as srv,
        H2Client(srv) as client,
    ):
        assert client.response(client.request("/", method="POST", body=b"x" * 11,
                                              headers=[(b"content-length", b"11")])).status == 413
        sid = client.request("/slowread", method="POST", body=b"x" * 20, end=False)
        GATE.set()
        assert client.response(sid).status == 413


# -- more of the stream's life ------------------------------------------------------------------
def test_app_headers_and_failures(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        reply = client.response(client.request("/own-server"))
        assert [v for n, v in reply.headers if n == b"server"] == [b"mine"]
        assert reply.header(b"date") is not None
        # A streamed response the app cannot finish: RST_STREAM, never a short "complete" one.
        reply = client.response(client.request("/boom"))
        assert reply.body == b"partial" and reply.reset == ErrorCodes.INTERNAL_ERROR
        # Trailers with no fields end the stream with an empty DATA frame.
        reply = client.response(client.request("/trailers"))
        assert reply.ended and reply.trailers == []


def test_trailers_wait_for_the_window(srv: RunningServer) -> None:
    s = h2.settings.SettingCodes
    with H2Client(srv, settings={s.INITIAL_WINDOW_SIZE: 1000}, auto_ack=False) as client:
        sid = client.request("/trailers?5000")
        client.receive(lambda: len(client.replies[sid].body) >= 1000)
        assert client.replies[sid].trailers == []
        client.auto_ack = True
        client.conn.increment_flow_control_window(10_000, sid)
        client.flush()
        reply = client.response(sid)
        assert len(reply.body) == 5000 and reply.trailers == [(b"x-t", b"1")]


def test_request_body_timeout_is_408_and_the_connection_goes_on() -> None:
    with run_server(app, lifespan="off", timeout_request_body=1) as srv, H2Client(srv) as client:
        sid = client.request("/", method="POST", body=b"abc", end=False)  # the rest never comes
        started = time.monotonic()
        reply = client.response(sid)
        assert reply.status == 408 and 0.5 < time.monotonic() - started < 3.5
        # A body that keeps coming, slower than the timeout in all, is not late.
        sid = client.request("/", method="POST", body=b"a", end=False)
        for _ in range(4):
            time.sleep(0.4)
            client.conn.send_data(sid, b"b", end_stream=False)
            client.flush()
        client.conn.end_stream(sid)
        client.flush()
        assert json.loads(client.response(sid).body)["body"] == 5


def test_large_body_pauses_the_cycle() -> None:
    """More than the cycle's high-water mark arrives before the app reads."""
    with run_server(app, lifespan="off", h2_initial_window_size=300_000) as srv, H2Client(srv) as client:
        client.receive(lambda: bool(client.remote_settings))
        client.conn.increment_flow_control_window(1_000_000)
        sid = client.request("/slowread", method="POST", end=False)
        for _ in range(15):
            client.conn.send_data(sid, b"z" * 10_000)
        client.flush()
        client.conn.ping(b"pingpong")
        client.flush()
        client.receive(lambda: any(isinstance(e, h2.events.PingAckReceived) for e in client.events))
        GATE.set()
        client.conn.send_data(sid, b"", end_stream=True)
        client.flush()
        assert json.loads(client.response(sid).body)["body"] == 150_000


def test_concurrency_limit_is_503() -> None:
    with run_server(app, lifespan="off", limit_concurrency=1) as srv, H2Client(srv) as client:
        held = client.request("/hold")
        assert STARTED.wait()
        assert client.response(client.request("/x")).status == 503
        HOLD.set()
        assert client.response(held).status == 200


def test_client_goaway_closes(srv: RunningServer) -> None:
    with H2Client(srv) as client:
        assert client.response(client.request("/x")).status == 200
        client.conn.close_connection()
        client.flush()
        client.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        client.wait_closed()
        assert client.closed


def test_new_streams_after_goaway_are_refused_and_shutdown_times_out() -> None:
    with run_server(app, lifespan="off", timeout_graceful_shutdown=1) as srv, H2Client(srv) as client:
        held = client.request("/hold")
        assert STARTED.wait()
        srv.server.should_exit = True
        client.receive(lambda: client.goaway is not None)
        assert client.response(client.request("/late")).reset == ErrorCodes.REFUSED_STREAM
        # The held app never answers: the shutdown timeout cancels it and closes.
        client.wait_closed()
        assert client.replies[held].status == 0
        HOLD.set()  # (ends the thread the cancelled app waited in)


class LogEvent(logging.Handler):
    """Sets an event when a record with ``text`` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = ThreadEvent()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_client_that_reads_nothing_is_dropped() -> None:
    """The kernel buffers fill, the transport pauses writing, and after
    --h2-stall-timeout the connection is aborted (not closed politely: its
    buffer would never drain)."""
    s = h2.settings.SettingCodes
    logger = logging.getLogger("monoceros.error")
    seen = LogEvent("stopped reading")
    logger.addHandler(seen)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with (
            run_server(app, lifespan="off", h2_stall_timeout=1.0) as srv,
            H2Client(srv, settings={s.INITIAL_WINDOW_SIZE: 2**31 - 1}) as client,
        ):
            client.conn.increment_flow_control_window(2**31 - 1 - 65535)
            client.request("/big?50000000")
            assert seen.event.wait(15), "the server kept the stalled connection"
            client.wait_closed()  # what was in flight, then the end
            assert client.closed
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)


def test_debug_log_line_for_bad_input(srv: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "monoceros.error")
    with H2Client(srv) as client:
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(sid, MALFORMED["uppercase-name"], end_stream=True)
        client.flush()
        client.replies[sid] = Reply()
        assert client.response(sid).reset == ErrorCodes.PROTOCOL_ERROR
    lines = [r for r in caplog.records if "Malformed HTTP/2 request" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG


def test_response_before_the_request_body_stops_it() -> None:
    """RST_STREAM NO_ERROR after the response, and the unread body goes back
    to the connection window: 80 such streams pass more than its 65535
    bytes, one connection."""
    with (
        run_server(app, lifespan="off", h2_initial_window_size=1000, h2_max_concurrent_streams=2) as srv,
        H2Client(srv) as client,
    ):
        client.receive(lambda: bool(client.remote_settings))
        for _ in range(80):
            sid = client.request("/no-read", method="POST", body=b"u" * 1000, end=False)
            reply = client.response(sid)
            assert reply.status == 200 and reply.body == b"ok"
            client.receive(lambda s=sid: client.replies[s].reset is not None)
            assert client.replies[sid].reset == ErrorCodes.NO_ERROR
