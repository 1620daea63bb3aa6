"""monoceros.utils on real sockets: a Flask app through ASGIAdapter served by
monoceros, channels apps through WSGIAdapter served by wsgiref, and the
round trip WSGI -> channels -> WSGI."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from flask import Flask, Response, request
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from monoceros.utils import ASGIAdapter, WSGIAdapter

# The README's examples, as written there.
_spec = importlib.util.spec_from_file_location(
    "quickstart", Path(__file__).resolve().parent.parent / "seedapps" / "quickstart.py"
)
assert _spec is not None and _spec.loader is not None
quickstart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quickstart)

MiB = 1024 * 1024
BODY = bytes(range(256)) * (4 * 1024)  # 1 MiB


def flask_app() -> Flask:
    app = Flask("adapters")

    @app.get("/hello")
    def hello() -> Response:
        return Response(f"hello {request.args.get('name', '?')} at {request.path}", mimetype="text/plain")

    @app.post("/echo")
    def echo() -> Response:
        data = request.get_data()
        return Response(data, headers={"X-Length": str(len(data))}, mimetype="application/octet-stream")

    @app.get("/stream")
    def stream() -> Response:
        return Response((part for part in (b"one ", b"two ", b"three")), mimetype="text/plain")

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def wsgiref_server(app: Any) -> Iterator[str]:
    """A wsgiref server in a thread; its URL."""
    httpd: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(10)
        httpd.server_close()


def check_flask_app(url: str) -> None:
    with httpx.Client(base_url=url, timeout=20) as client:
        hello = client.get("/hello", params={"name": "you"})
        assert hello.status_code == 200
        assert hello.text == "hello you at /hello"
        assert hello.headers["content-type"].startswith("text/plain")
        echo = client.post("/echo", content=BODY)
        assert echo.status_code == 200
        assert echo.headers["x-length"] == str(MiB)
        assert echo.content == BODY
        assert client.get("/stream").content == b"one two three"
        assert client.get("/missing").status_code == 404


def test_flask_through_asgi_adapter_on_monoceros(server: Any, http_impl: str) -> None:
    adapter = ASGIAdapter(flask_app().wsgi_app)
    with server(adapter) as srv:
        assert srv.server.loaded.interface == "channels"
        check_flask_app(srv.url)
        chunked = httpx.post(srv.url + "/echo", content=iter([BODY[:1000], BODY[1000:]]))
        assert chunked.content == BODY

        async def websocket() -> int:
            with pytest.raises(InvalidStatus) as info:
                async with connect(srv.url.replace("http", "ws") + "/"):
                    pass
            return info.value.response.status_code

        assert asyncio.run(websocket()) == 403


def test_flask_round_trip_wsgi_channels_wsgi() -> None:
    """Flask -> ASGIAdapter -> WSGIAdapter -> wsgiref: the same answers."""
    adapter = WSGIAdapter(ASGIAdapter(flask_app().wsgi_app))
    try:
        with wsgiref_server(adapter) as url:
            check_flask_app(url)
    finally:
        adapter.close()


def test_readme_apps_under_wsgiref() -> None:
    apps = {
        name: WSGIAdapter(getattr(quickstart, name))
        for name in ("hello_world", "echo_body", "stream_response")
    }
    try:
        with contextlib.ExitStack() as stack:
            urls = {name: stack.enter_context(wsgiref_server(app)) for name, app in apps.items()}
            hello = httpx.get(urls["hello_world"] + "/")
            echo = httpx.post(urls["echo_body"] + "/", content=BODY, timeout=20)
            empty = httpx.post(urls["echo_body"] + "/")
            stream = httpx.get(urls["stream_response"] + "/")
    finally:
        for app in apps.values():
            app.close()
    assert (hello.status_code, hello.text, hello.headers["content-type"]) == (
        200,
        "Hello, world",
        "text/plain",
    )
    assert echo.content == BODY
    assert empty.content == b""
    assert stream.text == "Hello, world"


def test_wsgi_adapter_request_message_and_errors() -> None:
    seen: list[dict[str, Any]] = []

    async def app(message: dict[str, Any], channels: dict[str, Any]) -> None:
        seen.append(message)
        path = message["path"]
        if path == "/raise":
            raise ValueError("boom")
        if path == "/late":
            await channels["reply"].send({"status": 200, "content": b"part", "more_content": True})
            raise ValueError("after the head")
        if path == "/teapot":
            await channels["reply"].send({"status": 418, "headers": [[b"x-tea", b"yes"]]})

    adapter = WSGIAdapter(app)
    try:
        with wsgiref_server(adapter) as url:
            teapot = httpx.get(url + "/teapot?a=1", headers={"X-Custom": "v"})
            failed = httpx.get(url + "/raise")
            silent = httpx.get(url + "/nothing")
            # The error reaches wsgiref, which ends the (close-delimited) response.
            late = httpx.get(url + "/late")
    finally:
        adapter.close()
    assert (teapot.status_code, teapot.headers["x-tea"]) == (418, "yes")
    assert failed.status_code == 500 and silent.status_code == 500
    assert late.content == b"part"
    message = seen[0]
    assert message["channel"] == "http.request" and message["method"] == "GET"
    assert message["path"] == "/teapot" and message["query_string"] == b"a=1"
    assert [b"x-custom", b"v"] in message["headers"]
    assert message["http_version"] == "1.1" and message["scheme"] == "http"
    assert message["client"][0] == "127.0.0.1"
