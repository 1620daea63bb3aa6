"""The middlewares behind a real server, over a real socket, with a real client."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from flask import Flask, Response, request

from monoceros.middleware._asgi import Message, Receive, Scope, Send

# -- applications --------------------------------------------------------------


async def echo_scope(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app answering with what the proxy middleware left in the scope."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    host = [v.decode() for n, v in scope["headers"] if n == b"host"]
    body = json.dumps(
        {
            "client": list(scope["client"]) if scope["client"] else None,
            "scheme": scope["scheme"],
            "server_port": scope["server"][1] if scope["server"] else None,
            "host": host,
        }
    ).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def make_flask_app() -> Flask:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> Any:
        return {
            "args": request.args.to_dict(),
            "remote": request.remote_addr,
            "scheme": request.scheme,
            "url": request.url,
        }

    @app.post("/upload")
    def upload() -> Any:
        total = 0
        while chunk := request.stream.read(65536):
            total += len(chunk)
        return {"total": total}

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("boom")

    @app.get("/stream")
    def stream() -> Response:
        return Response((f"line {i}\n" for i in range(100)), mimetype="text/plain")

    return app


class ASGI2Echo:
    """An ASGI 2 application."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        if self.scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message: Message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send(
            {"type": "http.response.body", "body": b"asgi2:" + self.scope["path"].encode() + b":" + body}
        )


# -- WSGI ----------------------------------------------------------------------


def test_wsgi_flask_roundtrip(server: Any, http_impl: str) -> None:
    with server(make_flask_app(), interface="wsgi") as srv, httpx.Client(base_url=srv.url) as client:
        for _ in range(2):  # keep-alive across WSGI requests
            r = client.get("/hello", params={"name": "monoceros"})
            assert r.status_code == 200
            data = r.json()
            assert data["args"] == {"name": "monoceros"}
            assert data["remote"] == "127.0.0.1"
            assert data["scheme"] == "http"
        head = client.head("/hello")
        assert head.status_code == 200
        assert head.content == b""
        assert client.get("/nope").status_code == 404
        assert client.get("/boom").status_code == 500  # Flask's own error page
        r = client.get("/stream")
        assert r.text == "".join(f"line {i}\n" for i in range(100))


def test_wsgi_root_path(server: Any) -> None:
    with server(make_flask_app(), interface="wsgi", root_path="/app") as srv:
        r = httpx.get(srv.url + "/hello")
        assert r.status_code == 200
        assert r.json()["url"] == f"{srv.url}/app/hello"


def test_wsgi_upload_streams_through_wsgi_input(server: Any, http_impl: str) -> None:
    """The app reads the start of the body while the client still holds the rest."""
    first_chunk_read = threading.Event()
    chunk = 65536
    count = 64

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        total = len(stream.read(chunk))
        first_chunk_read.set()
        while data := stream.read(chunk):
            total += len(data)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(total).encode()]

    waited: list[bool] = []

    def body() -> Iterator[bytes]:
        yield b"a" * chunk
        # Hold the rest back until the app has consumed the first chunk: if
        # the body were buffered before the app runs, this would time out.
        waited.append(first_chunk_read.wait(10))
        for _ in range(count - 1):
            yield b"b" * chunk

    with server(app, interface="wsgi") as srv:
        r = httpx.post(srv.url + "/upload", content=body(), timeout=30)
    assert waited == [True]
    assert r.status_code == 200
    assert r.text == str(chunk * count)


def test_wsgi_large_upload_with_content_length(server: Any) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    with server(make_flask_app(), interface="wsgi") as srv:
        r = httpx.post(srv.url + "/upload", content=payload, timeout=30)
    assert r.status_code == 200
    assert r.json() == {"total": len(payload)}


def test_wsgi_streamed_response_has_backpressure(server: Any) -> None:
    """A client that stops reading stops the app (no unbounded buffering)."""
    produced = 0
    chunk = b"x" * 65536
    total_chunks = 1024  # 64 MiB: far more than socket buffers hold

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        nonlocal produced
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        for _ in range(total_chunks):
            produced += 1
            yield chunk

    with server(app, interface="wsgi") as srv, httpx.stream("GET", srv.url + "/", timeout=30) as r:
        stream = r.iter_raw(65536)
        received = len(next(stream))
        time.sleep(0.5)  # a stalled client
        stalled_at = produced
        for data in stream:
            received += len(data)
    assert stalled_at < total_chunks
    assert received == total_chunks * len(chunk)


def test_wsgi_exception_before_response_is_a_500(server: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("broken app")

    with server(app, interface="wsgi") as srv:
        r = httpx.get(srv.url + "/")
    assert r.status_code == 500


# -- ASGI 2 --------------------------------------------------------------------


def test_asgi2_interface(server: Any, http_impl: str) -> None:
    with server(ASGI2Echo, interface="asgi2") as srv:
        r = httpx.post(srv.url + "/path", content=b"payload")
    assert r.status_code == 200
    assert r.content == b"asgi2:/path:payload"


# -- proxy headers ---------------------------------------------------------------


def test_proxy_headers_from_trusted_peer(server: Any, http_impl: str) -> None:
    with server(echo_scope, proxy_headers=True, forwarded_allow_ips="127.0.0.1") as srv:
        r = httpx.get(
            srv.url + "/",
            headers={
                "X-Forwarded-For": "198.51.100.7:4000, 127.0.0.1",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Port": "443",
            },
        )
        assert r.json() == {
            "client": ["198.51.100.7", 4000],
            "scheme": "https",
            "server_port": 443,
            "host": [f"127.0.0.1:{srv.port}"],
        }
        r = httpx.get(
            srv.url + "/",
            headers={
                "Forwarded": 'for="[2001:db8::1]:4711";proto=https;host=example.com',
            },
        )
        assert r.json() == {
            "client": ["2001:db8::1", 4711],
            "scheme": "https",
            "server_port": srv.port,
            "host": ["example.com"],
        }
        r = httpx.get(srv.url + "/", headers={"Forwarded": 'for="[2001:db8::1'})
        assert r.status_code == 200
        assert r.json()["client"][0] == "127.0.0.1"


def test_proxy_headers_trust_by_network(server: Any) -> None:
    with server(echo_scope, proxy_headers=True, forwarded_allow_ips="10.0.0.0/8, 127.0.0.0/8") as srv:
        r = httpx.get(srv.url + "/", headers={"X-Forwarded-For": "198.51.100.7, 10.1.2.3"})
    assert r.json()["client"] == ["198.51.100.7", 0]


def test_proxy_headers_from_untrusted_peer(server: Any) -> None:
    with server(echo_scope, proxy_headers=True, forwarded_allow_ips="10.1.2.3") as srv:
        r = httpx.get(
            srv.url + "/", headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
        )
    data = r.json()
    assert data["client"][0] == "127.0.0.1"
    assert data["scheme"] == "http"


def test_proxy_headers_disabled(server: Any) -> None:
    with server(echo_scope, proxy_headers=False, forwarded_allow_ips="*") as srv:
        r = httpx.get(srv.url + "/", headers={"X-Forwarded-For": "198.51.100.7"})
    assert r.json()["client"][0] == "127.0.0.1"


def test_proxy_headers_with_wsgi(server: Any) -> None:
    with server(make_flask_app(), interface="wsgi", proxy_headers=True, forwarded_allow_ips="*") as srv:
        r = httpx.get(
            srv.url + "/hello",
            headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "Host": "example.com"},
        )
    data = r.json()
    assert data["remote"] == "198.51.100.7"
    assert data["scheme"] == "https"
    assert data["url"] == "https://example.com/hello"


def test_proxy_headers_over_unix_socket_trusted_by_path(server: Any) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        path = os.path.join(directory, "s.sock")
        for allow, expected in ((path, ["198.51.100.7", 0]), ("127.0.0.1", None)):
            with (
                server(echo_scope, uds=path, proxy_headers=True, forwarded_allow_ips=allow),
                httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client,
            ):
                r = client.get("http://localhost/", headers={"X-Forwarded-For": "198.51.100.7"})
            assert r.json()["client"] == expected
