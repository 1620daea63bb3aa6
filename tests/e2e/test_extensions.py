"""ASGI extensions on HTTP/1.1 (both parsers) and HTTP/2 alike, on real
sockets: http.response.trailers, early_hint, pathsend, zerocopysend, tls.

HTTP/1.1 responses are read raw (the bytes show the framing: chunked
trailers, a 103 before the 200); HTTP/2 ones with the h2 frame client."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import RunningServer, run_server
from cryptography import x509
from h1tools import Reader, read_response
from h2tools import H2Client, Reply
from tlsfiles import TLSFiles, make_tls_files

PROTOCOLS = ["h1-httptools", "h1-h11", "h2"]
DATA = bytes(range(256)) * 2400  # 600 kB: several copy steps, more than a socket buffer
SEEN: dict[str, Any] = {}


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    path = scope["path"]
    SEEN["extensions"] = scope.get("extensions")
    if path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")], "more_trailers": True})
        await send({"type": "http.response.trailers", "headers": [(b"X-Check", b"ok")]})
        return
    if path == "/early":
        await send({"type": "http.response.early_hint", "links": [b"</s.css>; rel=preload; as=style"]})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/pathsend":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": SEEN["file"]})
        return
    if path == "/zerocopy":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(SEEN["file"], "rb") as f:
            await send({"type": "http.response.zerocopysend", "file": f, "count": 1000, "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": f.fileno(), "offset": 500_000})
        return
    if path == "/misuse2":
        errors = SEEN["errors"] = []
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        with open(SEEN["file"], "rb") as f:
            for message in (
                {"type": "http.response.trailers", "headers": []},  # the body is not complete
                {"type": "http.response.pathsend", "path": "relative"},
                {"type": "http.response.zerocopysend", "file": f, "offset": -1},
            ):
                try:
                    await send(message)
                except Exception as exc:
                    errors.append(type(exc).__name__)
        await send({"type": "http.response.body", "body": b"abc"})
        for message in (
            {"type": "http.response.body", "body": b"more"},  # trailers are due
            {"type": "http.response.trailers", "headers": [(b"content-length", b"1")]},
            {"type": "http.response.trailers", "headers": [(b"x",)]},
        ):
            try:
                await send(message)
            except Exception as exc:
                errors.append(type(exc).__name__)
        return  # without the trailers: the response still ends
    if path == "/short-file":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(SEEN["file"], "rb") as f:
            try:
                await send({"type": "http.response.zerocopysend", "file": f, "count": len(DATA) + 10})
            except Exception as exc:
                SEEN["short"] = type(exc).__name__
        return
    if path == "/misuse":
        errors = []
        for message in (
            {"type": "http.response.trailers", "headers": []},  # before the start
            {"type": "http.response.pathsend", "path": "relative"},
        ):
            try:
                await send(message)
            except Exception as exc:
                errors.append(type(exc).__name__)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for message in (
            {"type": "http.response.early_hint", "links": [b"</x>"]},  # after the start
            {"type": "http.response.trailers", "headers": []},  # not announced
            {"type": "http.response.pathsend", "path": "/nonexistent/file"},
            {"type": "http.response.zerocopysend", "file": "not a file"},
        ):
            try:
                await send(message)
            except Exception as exc:
                errors.append(type(exc).__name__)
        body = ",".join(errors).encode()
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("files") / "data.bin"
    path.write_bytes(DATA)
    SEEN["file"] = str(path)
    return str(path)


@pytest.fixture(scope="module", params=PROTOCOLS)
def proto(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def srv(proto: str, data_file: str) -> Iterator[RunningServer]:
    http = proto.split("-")[1] if proto.startswith("h1") else "httptools"
    # asyncio's own loop: HTTP/1.1 pathsend goes through sendfile(2) there
    # (uvloop takes the copy, see test_pathsend_on_uvloop).
    with run_server(app, lifespan="off", http=http, loop="asyncio") as running:
        yield running


def h1_get(srv: RunningServer, path: str, headers: bytes = b"") -> tuple[bytes, bytes]:
    """(raw head+body bytes, body) of one HTTP/1.1 GET."""
    with srv.connect() as sock:
        head = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers
        sock.sendall(head + b"Connection: close\r\n\r\n")
        raw = Reader(sock).read_to_eof()
    return raw, raw.split(b"\r\n\r\n", 1)[1]


def h2_get(srv: RunningServer, path: str) -> Reply:
    with H2Client(srv) as client:
        return client.response(client.request(path))


def test_extensions_are_advertised(srv: RunningServer, proto: str) -> None:
    if proto == "h2":
        assert h2_get(srv, "/").status == 200
    else:
        h1_get(srv, "/")
    assert set(SEEN["extensions"]) == {
        "http.response.trailers",
        "http.response.early_hint",
        "http.response.pathsend",
        "http.response.zerocopysend",
    }


def test_trailers(srv: RunningServer, proto: str) -> None:
    if proto == "h2":
        reply = h2_get(srv, "/trailers")
        assert reply.body == b"abcdef"
        assert reply.trailers == [(b"x-sum", b"1"), (b"x-check", b"ok")]
        return
    raw, body = h1_get(srv, "/trailers", b"TE: trailers\r\n")
    assert b"transfer-encoding: chunked" in raw.lower()
    assert body == b"3\r\nabc\r\n3\r\ndef\r\n0\r\nx-sum: 1\r\nX-Check: ok\r\n\r\n"
    # A client that did not say "TE: trailers" gets none (RFC 9110 §6.5.1).
    _, body = h1_get(srv, "/trailers")
    assert body == b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"


def test_early_hint(srv: RunningServer, proto: str) -> None:
    if proto == "h2":
        reply = h2_get(srv, "/early")
        assert reply.informational == [103]
        assert reply.status == 200 and reply.body == b"ok"
        return
    raw, _ = h1_get(srv, "/early")
    hint = b"HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload; as=style\r\n\r\n"
    assert raw.startswith(hint + b"HTTP/1.1 200 OK")
    assert raw.endswith(b"\r\n\r\nok")


def test_pathsend(srv: RunningServer, proto: str) -> None:
    if proto == "h2":
        reply = h2_get(srv, "/pathsend")
        assert reply.header(b"content-length") == b"%d" % len(DATA)
        assert reply.body == DATA
        return
    with srv.connect() as sock:
        # Pipelined behind two plain answers (the second is held for a
        # batched write): the file goes out after both, in order.
        paths = [b"/a", b"/b", b"/pathsend", b"/after"]
        sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in paths))
        reader = Reader(sock)
        assert [read_response(reader).body for _ in range(2)] == [b"ok", b"ok"]
        response = read_response(reader)
        assert response.header(b"content-length") == b"%d" % len(DATA)
        assert response.body == DATA
        assert read_response(reader).body == b"ok"  # the connection goes on


def test_zerocopysend(srv: RunningServer, proto: str) -> None:
    expected = DATA[:1000] + DATA[500_000:]
    body = h2_get(srv, "/zerocopy").body if proto == "h2" else h1_body(srv, "/zerocopy")
    assert body == expected


def test_misuse_is_an_error_for_the_app(srv: RunningServer, proto: str) -> None:
    body = h2_get(srv, "/misuse").body if proto == "h2" else h1_body(srv, "/misuse")
    assert body == b",".join([b"ASGIMessageError"] * 6)


def test_more_misuse_and_a_missing_trailer(srv: RunningServer, proto: str) -> None:
    body = h2_get(srv, "/misuse2").body if proto == "h2" else h1_body(srv, "/misuse2")
    assert body == b"abc"
    assert SEEN["errors"] == ["ASGIMessageError"] * 6


def test_file_shorter_than_promised(srv: RunningServer, proto: str) -> None:
    """A 500 while nothing is on the wire; a cut connection after the head."""
    if proto == "h2":
        reply = h2_get(srv, "/short-file")
        assert reply.status == 500 or reply.reset is not None
    else:
        raw, _ = h1_get(srv, "/short-file")
        # asyncio's sendfile sent the head and the whole file, then the
        # connection was cut: fewer bytes than the Content-Length says.
        assert raw.startswith(b"HTTP/1.1 200 ") and b"content-length: %d" % (len(DATA) + 10) in raw
        assert len(raw.split(b"\r\n\r\n", 1)[1]) == len(DATA)
    assert SEEN["short"] == "ASGIMessageError"


def test_pathsend_to_head(srv: RunningServer, proto: str) -> None:
    if proto == "h2":
        with H2Client(srv) as client:
            reply = client.response(client.request("/pathsend", method="HEAD"))
        assert reply.header(b"content-length") == b"%d" % len(DATA) and reply.body == b""
        return
    with srv.connect() as sock:
        sock.sendall(b"HEAD /pathsend HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_response(Reader(sock), b"HEAD")
    assert response.header(b"content-length") == b"%d" % len(DATA) and response.body == b""


def test_pathsend_on_uvloop(data_file: str) -> None:
    with run_server(app, lifespan="off", loop="uvloop") as srv:
        _, body = h1_get(srv, "/pathsend")
        assert body == DATA


def h1_body(srv: RunningServer, path: str) -> bytes:
    """The body of one HTTP/1.1 GET, de-framed."""
    with srv.connect() as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        return read_response(Reader(sock)).body


# -- tls ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("exttls"))


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_tls_extension(tls: TLSFiles, http2: bool) -> None:
    with run_server(
        app, lifespan="off", ssl_certfile=tls.cert, ssl_keyfile=tls.key, ssl_ca_certs=tls.ca_cert,
        ssl_cert_reqs=int(ssl.CERT_OPTIONAL),
    ) as srv:
        context = ssl.create_default_context(cafile=tls.ca_cert)
        context.load_cert_chain(tls.client_cert, tls.client_key)
        with httpx.Client(http1=not http2, http2=http2, verify=context) as client:
            r = client.get(f"{srv.url}/")
            assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        info = SEEN["extensions"]["tls"]
        assert info["tls_version"] == 0x0304
        assert isinstance(info["cipher_suite"], int) and info["cipher_suite"] in (0x1301, 0x1302, 0x1303)
        assert info["server_cert"] == Path(tls.cert).read_text()
        client_pem = Path(tls.client_cert).read_text()
        assert [_der(p) for p in info["client_cert_chain"]] == [_der(client_pem)]
        subject = x509.load_pem_x509_certificate(client_pem.encode()).subject.rfc4514_string()
        assert info["client_cert_name"] == subject
        assert info["client_cert_error"] is None
        # Without a client certificate.
        httpx.get(f"{srv.url}/", verify=ssl.create_default_context(cafile=tls.ca_cert))
        assert SEEN["extensions"]["tls"]["client_cert_chain"] == []
        assert SEEN["extensions"]["tls"]["client_cert_name"] is None


def _der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


def test_no_tls_extension_in_cleartext(srv: RunningServer) -> None:
    h1_get(srv, "/")
    assert "tls" not in SEEN["extensions"]



