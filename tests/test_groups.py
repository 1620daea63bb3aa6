"""monoceros.broadcast in one process: memory:// across two real servers,
the message format and bad input, and the Redis backend's bookkeeping
(peers, partial delivery, unreachable Redis) against a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import run_server
from redisproc import RedisServer, free_port
from websockets.asyncio.client import connect

from monoceros.broadcast import (
    BroadcastMiddleware,
    BroadcastUnavailable,
    GroupsMiddleware,
    PartialDelivery,
)
from monoceros.broadcast.hub import MAX_PENDING, Hub, Member, decode, encode
from monoceros.broadcast.middleware import URL_ENV, GroupsChannel
from monoceros.errors import ASGIMessageError, ConfigError


def run(coro: Any, timeout: float = 20) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


# -- memory:// across two servers ----------------------------------------------------------


async def _room(message: dict[str, Any], channels: dict[str, Any]) -> None:
    groups, reply = channels["groups"], channels["reply"]
    kind = message["channel"]
    if kind == "websocket.connect":
        await groups.send({"group": "room", "add": reply.name})
    elif kind == "websocket.receive":
        text = message["text"]
        if text == "leave":
            await groups.send({"group": "room", "discard": reply.name})
            await groups.send({"group": "room", "discard": reply.name})  # twice: nothing happens
            await reply.send({"text": "left"})
        else:
            await groups.send({"group": "room", "send": {"text": text}})
    elif kind == "http.request":
        await groups.send({"group": "room", "send": {"bytes": b"\x00http", "close": 4000}})
        await reply.send({"status": 204})


def test_memory_groups_across_two_servers() -> None:
    app = BroadcastMiddleware(_room, url="memory://two-servers")
    with run_server(app) as one, run_server(app) as two:

        async def main() -> list[Any]:
            a = await connect(one.url.replace("http", "ws") + "/")
            b = await connect(two.url.replace("http", "ws") + "/")
            c = await connect(two.url.replace("http", "ws") + "/")
            await a.send("hi")
            got = [await a.recv(), await b.recv(), await c.recv()]
            await c.send("leave")
            got.append(await c.recv())
            await c.close()
            await b.close()  # its membership ends with it
            await a.send("again")
            got.append(await a.recv())
            import httpx

            async with httpx.AsyncClient() as http:
                got.append((await http.get(one.url + "/")).status_code)
            got.append(await a.recv())
            await a.wait_closed()
            got.append(a.close_code)
            return got

        got = run(main())
    assert got == ["hi", "hi", "hi", "left", "again", 204, b"\x00http", 4000]


def test_groups_middleware_memory() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                await send({"type": event["type"] + ".complete"})
                if event["type"] == "lifespan.shutdown":
                    return
        if scope["type"] == "http":
            with pytest.raises(ASGIMessageError, match="only a WebSocket"):
                await scope["groups"].add("g")
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": scope["groups"].name or b"none"})
            return
        await receive()
        await scope["groups"].add("g")
        await send({"type": "websocket.accept"})
        event = await receive()
        await scope["groups"].send("g", {"type": "websocket.close", "code": 4002})
        await scope["groups"].discard("g")
        assert event["type"] == "websocket.receive"
        assert (await receive())["type"] == "websocket.disconnect"  # the group's close came

    with run_server(GroupsMiddleware(app, url="memory://asgi3")) as srv:
        import httpx

        assert httpx.get(srv.url + "/").content == b"none"

        async def main() -> int | None:
            async with connect(srv.url.replace("http", "ws") + "/") as ws:
                await ws.send("go")
                await ws.wait_closed()
                return ws.close_code

        assert run(main()) == 4002


# -- the message format and bad input -----------------------------------------------------


def test_encode_keeps_bytes_and_lookalike_dicts() -> None:
    message = {"bytes": b"\x00\xff", "x": [b"a", {"$b": "not bytes"}, {"$d": 1}], "n": None, "f": 1.5}
    assert decode(encode(message)) == message
    with pytest.raises(ASGIMessageError, match="cannot hold set"):
        encode({"x": {1}})
    with pytest.raises(ASGIMessageError, match="keys must be str"):
        encode({"x": {1: 2}})


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("nope", "must be a dict"),
        ({"group": "g"}, "needs 'add', 'discard' or 'send'"),
        ({"group": 3, "send": {"text": "x"}}, "non-empty str"),
        ({"group": "g", "add": "websocket.send!nobody"}, "not an open WebSocket"),
        ({"group": "g", "send": "text"}, "must be a dict"),
        ({"group": "g", "send": {"text": b"x"}}, "'text' must be a str"),
        ({"group": "g", "send": {"bytes": "x"}}, "'bytes' must be bytes"),
        ({"group": "g", "send": {"close": "now"}}, "'close' must be True"),
        ({"group": "g", "send": {"other": 1}}, "needs 'text', 'bytes' or 'close'"),
    ],
)
def test_groups_channel_refuses_bad_messages(message: Any, error: str) -> None:
    async def main() -> None:
        channel = GroupsChannel(Hub(_NullBackend))
        with pytest.raises(ASGIMessageError, match=error):
            await channel.send(message)

    run(main())


class _NullBackend:
    def __init__(self, hub: Hub) -> None:
        pass

    async def subscribe(self, group: str) -> None:
        pass

    async def unsubscribe(self, group: str) -> None:
        pass

    async def publish(self, group: str, data: bytes) -> None:
        pass

    async def aclose(self) -> None:
        pass


def test_member_that_does_not_read_is_closed_with_1013() -> None:
    async def main() -> list[dict[str, Any]]:
        delivered: list[dict[str, Any]] = []
        gate = asyncio.Event()

        async def deliver(message: dict[str, Any]) -> None:
            delivered.append(message)
            await gate.wait()

        member = Member("m", deliver)
        for i in range(MAX_PENDING + 5):
            member.deliver({"text": str(i)})  # not open yet: all wait
        member.opened()
        await asyncio.sleep(0)
        gate.set()
        await asyncio.sleep(0)
        return delivered

    assert run(main()) == [{"close": 1013}]


def test_member_delivery_failure_drops_the_member() -> None:
    async def main() -> bool:
        async def deliver(message: dict[str, Any]) -> None:
            raise ConnectionResetError

        member = Member("m", deliver)
        member.opened()
        member.deliver({"text": "x"})
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        member.deliver({"text": "y"})  # gone: ignored
        return member.gone

    assert run(main())


def test_backend_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    async def app(message: Any, channels: Any) -> None:
        pass

    monkeypatch.delenv(URL_ENV, raising=False)
    assert BroadcastMiddleware(app).url == "redis://localhost:6379/0"
    assert BroadcastMiddleware(app, "redis.local").url == "redis://redis.local:6379/0"
    assert BroadcastMiddleware(app, "::1", 7000).url == "redis://[::1]:7000/0"
    monkeypatch.setenv(URL_ENV, "redis://elsewhere:1/2")
    assert BroadcastMiddleware(app).url == "redis://elsewhere:1/2"
    assert GroupsMiddleware(app, url="memory://x").url == "memory://x"
    with pytest.raises(ConfigError, match="not both"):
        BroadcastMiddleware(app, "h", url="redis://h")
    with pytest.raises(ConfigError, match="use redis://"):
        BroadcastMiddleware(app, url="http://h")


# -- the Redis backend against a real redis-server -----------------------------------------


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@contextlib.asynccontextmanager
async def hub_on(url: str) -> Any:
    from monoceros.broadcast.middleware import _backend_factory

    hub = Hub(_backend_factory(url))
    try:
        yield hub
    finally:
        await hub.aclose()


def _member(hub: Hub, name: str, inbox: list[Any]) -> None:
    async def deliver(message: dict[str, Any]) -> None:
        inbox.append(message)

    member = Member(name, deliver)
    hub.register(member)
    member.opened()


def test_partial_delivery_and_peers(redis_server: RedisServer) -> None:
    """A peer that says it has members of a group but is not subscribed makes
    a send raise PartialDelivery (the local members still get it); its
    'bye' ends that; what is not ours on the control channel is ignored."""

    async def main() -> list[Any]:
        import redis.asyncio as aioredis

        outside = aioredis.Redis.from_url(redis_server.url)
        inbox: list[Any] = []
        async with hub_on(redis_server.url) as hub:
            backend = hub.backend
            assert await backend.ready()  # type: ignore[attr-defined]
            _member(hub, "a", inbox)
            await hub.add("g", "a")
            control = b"monoceros:control"
            await outside.publish(control, b"not json")
            await outside.publish(
                control, json.dumps({"op": "hello", "id": "ghost", "seq": 1, "groups": ["g"]})
            )
            await backend._settle()  # type: ignore[attr-defined]
            with pytest.raises(PartialDelivery) as info:
                await hub.send("g", {"text": "one"})
            await outside.publish(control, json.dumps({"op": "bye", "id": "ghost"}))
            await backend._settle()  # type: ignore[attr-defined]
            await hub.send("g", {"text": "two"})
            # Another instance's message reaches our member.
            await outside.publish(b"monoceros:group:g", b"peer " + encode({"text": "three"}))
            await backend._settle()  # type: ignore[attr-defined]
            await hub.discard("g", "a")
            await asyncio.sleep(0)
        await outside.aclose()
        return [info.value.delivered, info.value.expected, inbox]

    delivered, expected, inbox = run(main())
    assert (delivered, expected) == (1, 2)
    assert inbox == [{"text": "one"}, {"text": "two"}, {"text": "three"}]


def test_unreachable_redis_at_start() -> None:
    async def main() -> str:
        async with hub_on(f"redis://user:secret@127.0.0.1:{free_port()}/0") as hub:
            assert not await hub.backend.ready()  # type: ignore[attr-defined]
            _member(hub, "a", [])
            await hub.add("g", "a")  # recorded; subscribed once Redis is there
            with pytest.raises(BroadcastUnavailable) as info:
                await hub.send("g", {"text": "x"})
            return str(info.value)

    message = run(main())
    assert "is unreachable, nothing was sent" in message
    assert "redis://user:***@127.0.0.1:" in message and "secret" not in message
