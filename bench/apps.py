"""ASGI applications used by the side-by-side benchmark (``bench/run.py``).

Every server under test is pointed at ``bench.apps:<name>``.  The raw apps are
deliberately minimal so the numbers measure the server, not the app:

* ``plaintext`` -- raw ASGI 3, ``Hello, world!`` as ``text/plain`` with an explicit
  ``content-length``.
* ``json`` -- raw ASGI 3, ``{"message": "Hello, world!"}`` serialised with
  ``json.dumps`` on every request.
* ``starlette_app`` / ``fastapi_app`` -- framework hello-worlds, defined in
  ``bench/frameworks.py`` and looked up from here lazily on first attribute
  access (PEP 562), so this module imports fine when neither framework is
  installed.  The benchmark points servers at ``bench.frameworks:...``
  directly (hypercorn cannot see lazy attributes).

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


_FRAMEWORK_APPS = ("starlette_app", "fastapi_app")


def __getattr__(name: str) -> ASGIApp:
    if name not in _FRAMEWORK_APPS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from bench import frameworks  # imports starlette and fastapi: only when asked for

    app: ASGIApp = getattr(frameworks, name)
    return app
