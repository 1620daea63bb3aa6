"""Apps for tests/e2e/test_broadcast.py (served by subprocesses and threads)."""

from __future__ import annotations

import logging
from typing import Any

from monoceros.broadcast import BroadcastError, BroadcastMiddleware, GroupsMiddleware, PartialDelivery

logger = logging.getLogger("monoceros.error")


async def _chat(message: dict[str, Any], channels: dict[str, Any]) -> None:
    """The README's broadcast chat, plus what the outage test watches: a group
    send that fails is answered to its sender, and /echo never uses Redis."""
    kind, reply = message["channel"], channels["reply"]
    if kind == "http.request":
        await reply.send({"status": 200, "content": b"ok"})
    elif message["path"] == "/echo":
        if kind == "websocket.receive":
            await reply.send({"text": message["text"]})
    elif kind == "websocket.connect":
        await channels["groups"].send({"group": "chat", "add": reply.name})
    elif kind == "websocket.receive":
        try:
            await channels["groups"].send({"group": "chat", "send": {"text": message["text"]}})
        except PartialDelivery:
            await reply.send({"text": "partial:" + message["text"]})
        except BroadcastError as exc:
            logger.warning("group send failed: %s", exc)
            await reply.send({"text": "unavailable:" + message["text"]})


chat = BroadcastMiddleware(_chat)  # MONOCEROS_BROADCAST_URL, as the README's default would be


async def _asgi_chat(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI 3 app using scope['groups']: bytes in, bytes to the group."""
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            await send({"type": event["type"] + ".complete"})
            if event["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await receive()
        await scope["groups"].send("room", {"bytes": b"from http"})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()
    await scope["groups"].add("room")  # before accepting: a member once the client is connected
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        if event.get("text") == "leave":
            await scope["groups"].discard("room")
            await send({"type": "websocket.send", "text": "left"})
        else:
            await scope["groups"].send("room", {"type": "websocket.send", "bytes": event["bytes"]})


def asgi_chat(url: str) -> GroupsMiddleware:
    return GroupsMiddleware(_asgi_chat, url=url)
