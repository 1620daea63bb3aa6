"""The first thing a user does: start the server and GET a page."""

from __future__ import annotations

import httpx

from monoceros._types import Receive, Scope, Send


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    body = b"Hello, world!"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def test_get_hello(server, http_impl):
    with server(hello) as srv, httpx.Client(base_url=srv.url) as client:
        for _ in range(3):  # keep-alive: the same connection serves again
            r = client.get("/")
            assert r.status_code == 200
            assert r.text == "Hello, world!"
            assert r.headers["server"] == "monoceros"
            assert "date" in r.headers
