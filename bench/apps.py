"""ASGI applications used by the side-by-side benchmark (``bench/run.py``).

Every server under test is pointed at ``bench.apps:<name>``.  The raw apps are
deliberately minimal so the numbers measure the server, not the app:

* ``plaintext`` -- raw ASGI 3, ``Hello, world!`` as ``text/plain`` with an explicit
  ``content-length``.
* ``json`` -- raw ASGI 3, ``{"message": "Hello, world!"}`` serialised with
  ``json.dumps`` on every request.
* ``starlette_app`` / ``fastapi_app`` -- framework hello-worlds.  They are built
  lazily on first attribute access (PEP 562), so this module imports fine when
  neither framework is installed.

All apps implement the lifespan protocol so no server logs "lifespan unsupported"
or takes a different start-up path because of it.
"""

from __future__ import annotations

import json as _json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# starlette_app and fastapi_app are provided lazily by __getattr__ below.
__all__ = ["json", "plaintext"]

PLAINTEXT_BODY = b"Hello, world!"
_PLAINTEXT_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"content-length", str(len(PLAINTEXT_BODY)).encode("ascii")),
]
JSON_PAYLOAD = {"message": "Hello, world!"}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def plaintext(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": _PLAINTEXT_HEADERS})
    await send({"type": "http.response.body", "body": PLAINTEXT_BODY})


async def json(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        return
    body = _json.dumps(JSON_PAYLOAD).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _make_starlette_app() -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def hello(request: Request) -> Response:
        return PlainTextResponse("Hello, world!")

    app: ASGIApp = Starlette(routes=[Route("/", hello)])
    return app


def _make_fastapi_app() -> ASGIApp:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @api.get("/", response_class=PlainTextResponse)
    async def hello() -> str:
        return "Hello, world!"

    app: ASGIApp = api
    return app


_LAZY_FACTORIES: dict[str, Callable[[], ASGIApp]] = {
    "starlette_app": _make_starlette_app,
    "fastapi_app": _make_fastapi_app,
}


def __getattr__(name: str) -> ASGIApp:
    factory = _LAZY_FACTORIES.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = factory()
    globals()[name] = app  # build once, then it is an ordinary module attribute
    return app
