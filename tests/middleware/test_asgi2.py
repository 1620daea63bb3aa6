"""ASGI2Middleware: the double-callable interface adapted to ASGI 3."""

from __future__ import annotations

import asyncio
from typing import Any

from monoceros.middleware import ASGI2Middleware
from monoceros.middleware._asgi import Message, Receive, Scope, Send


class ASGI2App:
    """A classic ASGI 2 application: instantiated per scope, then awaited."""

    instances: list[ASGI2App] = []

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        ASGI2App.instances.append(self)

    async def __call__(self, receive: Receive, send: Send) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"] + self.scope["path"].encode()})


def test_asgi2_app_gets_scope_then_receive_and_send() -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"hello ", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "path": "/world"}
    ASGI2App.instances.clear()
    asyncio.run(ASGI2Middleware(ASGI2App)(scope, receive, send))
    assert [i.scope for i in ASGI2App.instances] == [scope]
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"hello /world"


def test_every_scope_type_is_forwarded() -> None:
    seen: list[str] = []

    def app(scope: Scope) -> Any:
        async def instance(receive: Receive, send: Send) -> None:
            seen.append(scope["type"])

        return instance

    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    middleware = ASGI2Middleware(app)
    for kind in ("lifespan", "websocket", "http"):
        asyncio.run(middleware({"type": kind}, receive, send))
    assert seen == ["lifespan", "websocket", "http"]
    assert middleware.app is app
