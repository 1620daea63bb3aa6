"""The two faces of groups: ``channels['groups']`` and ``scope['groups']``.

:class:`BroadcastMiddleware` wraps a channels-interface application (the
first uvicorn README's); :class:`GroupsMiddleware` wraps an ASGI 3
application.  Both keep one :class:`~monoceros.broadcast.hub.Hub` per event
loop (a server runs one loop; tests and embedders may run several servers in
one process), created on first use and closed at lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from monoceros.broadcast.hub import Backend, Hub, Member
from monoceros.errors import ASGIMessageError, ConfigError
from monoceros.middleware._asgi import ASGIApp, Message, Receive, Scope, Send
from monoceros.middleware.channels import ChannelsApp, call_app, new_name

__all__ = ["URL_ENV", "BroadcastMiddleware", "ConnectionGroups", "GroupsChannel", "GroupsMiddleware"]

#: Where ``BroadcastMiddleware(app)`` connects when given no host, port or url.
URL_ENV = "MONOCEROS_BROADCAST_URL"
DEFAULT_URL = "redis://localhost:6379/0"


def _resolve_url(host: str | None, port: int | None, url: str | None) -> str:
    if url is not None:
        if host is not None or port is not None:
            raise ConfigError("give the broadcast backend either host/port or url=, not both")
        return url
    if host is None and port is None:
        return os.environ.get(URL_ENV) or DEFAULT_URL
    host = host or "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"redis://{host}:{port or 6379}/0"


def _backend_factory(url: str) -> Callable[[Hub], Backend]:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from monoceros.broadcast.memorybus import MemoryBackend

        name = url[len("memory://") :]
        return lambda hub: MemoryBackend(hub, name)
    if scheme in ("redis", "rediss", "unix"):
        try:
            from monoceros.broadcast.redisbus import RedisBackend
        except ImportError:
            raise ConfigError(
                f"broadcast over {scheme}:// needs the redis package: pip install 'monoceros[redis]'"
            ) from None
        return lambda hub: RedisBackend(hub, url)
    raise ConfigError(f"broadcast url {url!r}: use redis://HOST:PORT/DB, rediss://, unix:// or memory://")


class _Hubs:
    """One hub per event loop, for one backend url."""

    def __init__(self, host: str | None, port: int | None, url: str | None) -> None:
        self.url = _resolve_url(host, port, url)
        self._make_backend = _backend_factory(self.url)
        self._hubs: dict[asyncio.AbstractEventLoop, Hub] = {}

    def get(self) -> Hub:
        loop = asyncio.get_running_loop()
        hub = self._hubs.get(loop)
        if hub is None:
            hub = self._hubs[loop] = Hub(self._make_backend)
        return hub

    async def start(self) -> None:
        ready = getattr(self.get().backend, "ready", None)
        if ready is not None:
            await ready()

    async def aclose(self) -> None:
        hub = self._hubs.pop(asyncio.get_running_loop(), None)
        if hub is not None:
            await hub.aclose()


class GroupsChannel:
    """``channels['groups']``: ``send({'group': name, 'add' | 'discard' | 'send': ...})``.

    Raises (from ``send``):
        ASGIMessageError: a malformed groups message, or ``add`` of a name
            that is not an open WebSocket of this server.
        BroadcastUnavailable: ``send`` while Redis is unreachable (nothing
            was delivered).
        PartialDelivery: ``send`` reached only some of the instances.
    """

    name = "groups"

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def send(self, message: dict[str, Any]) -> None:
        if not isinstance(message, dict):
            raise ASGIMessageError(f"a groups message must be a dict, got {type(message).__name__}")
        group = message.get("group")
        if "send" in message:
            await self._hub.send(group, message["send"])  # type: ignore[arg-type]
        elif "add" in message:
            await self._hub.add(group, message["add"])  # type: ignore[arg-type]
        elif "discard" in message:
            await self._hub.discard(group, message["discard"])  # type: ignore[arg-type]
        else:
            raise ASGIMessageError(f"a groups message needs 'add', 'discard' or 'send', got {message!r}")


class BroadcastMiddleware:
    """Add ``channels['groups']`` to a channels-interface application.

    Group messages reach every member on every server instance connected to
    the same Redis (or, with ``url='memory://NAME'``, in the same process).
    A WebSocket leaves its groups when it closes.

    Args:
        app: the channels application.
        host, port: the Redis server; with neither (nor ``url``), the
            ``MONOCEROS_BROADCAST_URL`` environment variable, else
            ``redis://localhost:6379/0``.
        url: ``redis://HOST:PORT/DB``, ``rediss://...``, ``unix://PATH`` or
            ``memory://NAME``.

    Raises:
        ConfigError: an unusable url, or redis:// without the redis package.
    """

    def __init__(
        self, app: ChannelsApp, host: str | None = None, port: int | None = None, *, url: str | None = None
    ) -> None:
        self.app = app
        self._hubs = _Hubs(host, port, url)
        self.url = self._hubs.url

    async def __call__(self, message: dict[str, Any], channels: dict[str, Any]) -> None:
        hub = self._hubs.get()
        reply = channels.get("reply")
        kind = message.get("channel")
        if kind == "websocket.connect" and reply is not None and reply.name not in hub.members:
            member = Member(reply.name, reply.send)
            hub.register(member)
            on_open = getattr(reply, "on_open", None)
            if on_open is not None:
                on_open(member.opened)
            else:
                member.opened()
        try:
            await call_app(self.app, message, {**channels, "groups": GroupsChannel(hub)})
        finally:
            if kind == "websocket.disconnect" and reply is not None:
                hub.unregister(reply.name)

    async def astart(self) -> None:
        """Connect to the backend now (lifespan startup) rather than on first use."""
        await self._hubs.start()

    async def aclose(self) -> None:
        """Leave the backend (lifespan shutdown)."""
        await self._hubs.aclose()


#: The README's first spelling.
BroadCastMiddleware = BroadcastMiddleware


class ConnectionGroups:
    """``scope['groups']`` under :class:`GroupsMiddleware`.

    Attributes:
        name: this WebSocket's channel name (None for HTTP requests).
    """

    def __init__(self, hub: Hub, name: str | None) -> None:
        self._hub = hub
        self.name = name

    def _own(self) -> str:
        if self.name is None:
            raise ASGIMessageError("only a WebSocket connection can join or leave a group")
        return self.name

    async def add(self, group: str) -> None:
        """Add this WebSocket to ``group``; it leaves when it closes."""
        await self._hub.add(group, self._own())

    async def discard(self, group: str) -> None:
        """Remove this WebSocket from ``group``."""
        await self._hub.discard(group, self._own())

    async def send(self, group: str, message: dict[str, Any]) -> None:
        """Send ``{'text': str}``, ``{'bytes': bytes}`` (or an ASGI
        ``websocket.send``/``websocket.close`` message) to every member.

        Raises:
            BroadcastUnavailable: Redis is unreachable; no one got it.
            PartialDelivery: only some server instances got it.
        """
        await self._hub.send(group, message)


def _asgi_deliver(send: Send) -> Callable[[dict[str, Any]], Any]:
    async def deliver(message: dict[str, Any]) -> None:
        text, data, close = message.get("text"), message.get("bytes"), message.get("close")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        elif data is not None:
            await send({"type": "websocket.send", "bytes": data})
        if close is not None and close is not False:
            await send({"type": "websocket.close", "code": 1000 if close is True else close})

    return deliver


class GroupsMiddleware:
    """Groups for ASGI 3 applications: ``scope['groups']`` is a
    :class:`ConnectionGroups` in ``websocket`` and ``http`` scopes.

    Same arguments and backends as :class:`BroadcastMiddleware`.
    """

    def __init__(
        self, app: ASGIApp, host: str | None = None, port: int | None = None, *, url: str | None = None
    ) -> None:
        self.app = app
        self._hubs = _Hubs(host, port, url)
        self.url = self._hubs.url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        hub = self._hubs.get()
        if kind != "websocket":
            scope["groups"] = ConnectionGroups(hub, None)
            await self.app(scope, receive, send)
            return
        name = new_name("websocket.send")
        member = Member(name, _asgi_deliver(send))
        hub.register(member)
        scope["groups"] = ConnectionGroups(hub, name)

        async def watched_send(message: Message) -> None:
            await send(message)
            if message.get("type") == "websocket.accept":
                member.opened()

        try:
            await self.app(scope, receive, watched_send)
        finally:
            hub.unregister(name)

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            kind = message.get("type")
            if kind == "lifespan.startup.complete":
                await self._hubs.start()
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self._hubs.aclose()
            await send(message)

        return lifespan_send
