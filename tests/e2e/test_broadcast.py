"""WebSocket groups across real server instances through a real Redis.

Subprocess instances serve the README's broadcast chat (tests/seedapps,
as written there) or tests/broadcastapps.py; `websockets` clients connect
to all of them; ``redis-server`` runs on a free port (tests/redisproc.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import Monoceros, clean_env
from redisproc import RedisServer
from websockets.asyncio.client import ClientConnection, connect

SEEDS = Path(__file__).resolve().parent.parent / "seedapps"


def run(coro: Awaitable[Any], timeout: float = 40) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@contextlib.contextmanager
def instances(count: int, args: list[str], redis_url: str, **kwargs: Any) -> Iterator[list[Monoceros]]:
    env = clean_env(MONOCEROS_BROADCAST_URL=redis_url)
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(Monoceros([*args, "--bind", "127.0.0.1:0"], env=env, **kwargs))
            for _ in range(count)
        ]
        for proc in procs:
            proc.ready()
        yield procs


def ws_url(proc: Monoceros, path: str = "/") -> str:
    return proc.url().replace("http", "ws", 1) + path


class Inbox:
    """Everything one client received, with a condition to wait on."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[str] = []
        self.changed = asyncio.Condition()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.ws:
                async with self.changed:
                    self.messages.append(str(message))
                    self.changed.notify_all()

    async def wait_for(self, predicate: Any) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: predicate(self.messages))

    async def say(self, text: str) -> str:
        """Send ``text``; its outcome: 'delivered' (it came back through the
        group) or the error the app answered ('unavailable', 'partial')."""
        await self.ws.send(text)
        outcomes = {text: "delivered", "unavailable:" + text: "unavailable", "partial:" + text: "partial"}
        await self.wait_for(lambda messages: any(m in outcomes for m in messages[-64:]) or text in messages)
        for message in reversed(self.messages):
            if message in outcomes and outcomes[message] != "delivered":
                return outcomes[message]
        return "delivered"


def check_order(received: list[str], senders: int) -> None:
    """Each sender's messages (``S:N``) arrive in the order sent."""
    last = [-1] * senders
    for message in received:
        sender, seq = (int(part) for part in message.split(":"))
        assert seq > last[sender], f"{message} after {sender}:{last[sender]}"
        last[sender] = seq


def test_readme_broadcast_chat_30_clients_over_3_instances(redis_server: RedisServer) -> None:
    """The README's broadcast chat on three instances: 30 clients, 10
    messages each; every client gets all 300, none twice, each sender's in order."""
    folder = SEEDS / "broadcast_chat"
    with instances(3, ["app:chat_server"], redis_server.url, app_dir=False, cwd=folder) as procs:
        pages = [httpx.get(proc.url() + "/") for proc in procs]

        async def main() -> list[list[str]]:
            inboxes = [Inbox(await connect(ws_url(procs[i % 3]))) for i in range(30)]

            async def talk(sender: int) -> None:
                for seq in range(10):
                    await inboxes[sender].ws.send(f"{sender}:{seq}")

            await asyncio.gather(*(talk(i) for i in range(30)))
            for inbox in inboxes:
                await inbox.wait_for(lambda messages: len(messages) >= 300)
            for inbox in inboxes:
                await inbox.ws.close()
                await inbox.task
            return [inbox.messages for inbox in inboxes]

        everything = run(main())
    for page in pages:
        assert page.content == (folder / "index.html").read_bytes()
    expected = sorted(f"{s}:{n}" for s in range(30) for n in range(10))
    for received in everything:
        assert sorted(received) == expected  # all 300, none twice
        check_order(received, 30)


def test_redis_restart(redis_server: RedisServer) -> None:
    """Redis stops and comes back while clients chat across two instances:
    sends fail with a clear error while it is down, HTTP and WebSockets
    that need no Redis keep working, the instances reconnect and resubscribe
    by themselves, and no message is lost silently."""
    with instances(2, ["broadcastapps:chat"], redis_server.url) as procs:

        async def main() -> tuple[list[Inbox], dict[str, str]]:
            inboxes = [Inbox(await connect(ws_url(procs[i % 2]))) for i in range(4)]
            outcome: dict[str, str] = {}

            async def say(sender: int, text: str) -> str:
                result = outcome[text] = await inboxes[sender].say(text)
                return result

            # Up: everyone gets everything.
            assert await asyncio.gather(*(say(i, f"{i}:0") for i in range(4))) == ["delivered"] * 4
            # Down: a clear error to the sender; HTTP and /echo still work.
            await asyncio.to_thread(redis_server.stop)
            for proc in procs:
                await asyncio.to_thread(proc.wait_for, "Broadcast: lost the connection to Redis")
            assert await asyncio.gather(*(say(i, f"{i}:1") for i in range(4))) == ["unavailable"] * 4
            async with httpx.AsyncClient() as http:
                for proc in procs:
                    assert (await http.get(proc.url() + "/")).status_code == 200
            for proc in procs:
                async with connect(ws_url(proc, "/echo")) as echo:
                    await echo.send("still here")
                    assert await echo.recv() == "still here"
            # Back: clients keep talking while the instances reconnect.
            reconnected = asyncio.Event()

            async def chatter(sender: int) -> None:
                seq = 2
                while not reconnected.is_set():
                    await say(sender, f"{sender}:{seq}")
                    seq += 1
                for after in range(seq, seq + 3):  # reconnected: these must get through
                    result = await say(sender, f"{sender}:{after}")
                    assert result == "delivered", "\n".join(procs[sender % 2].lines[-20:])

            async def restart() -> None:
                await asyncio.to_thread(redis_server.start)
                for proc in procs:
                    await asyncio.to_thread(proc.wait_for, "Broadcast: reconnected to Redis")
                reconnected.set()

            await asyncio.gather(restart(), *(chatter(i) for i in range(4)))
            delivered = [text for text, result in outcome.items() if result == "delivered"]
            for inbox in inboxes:
                await inbox.wait_for(lambda messages: all(text in messages for text in delivered))
            for inbox in inboxes:
                await inbox.ws.close()
                await inbox.task
            return inboxes, outcome

        inboxes, outcome = run(main())
    assert "unavailable" in outcome.values()
    for inbox in inboxes:
        plain = [m for m in inbox.messages if ":" in m and m.split(":")[0].isdigit()]
        assert len(plain) == len(set(plain))  # none twice
        check_order(plain, 4)
        for text, result in outcome.items():
            if result == "delivered":
                assert text in plain  # delivered means delivered to everyone
            elif result == "unavailable":
                assert text not in plain  # the sender was told: no one got it


def test_asgi3_groups_over_redis(redis_server: RedisServer, server: Any) -> None:
    """GroupsMiddleware: two in-process servers share a group through Redis;
    bytes survive, an HTTP request can send to the group, discard works."""
    from broadcastapps import asgi_chat

    with server(asgi_chat(redis_server.url)) as one, server(asgi_chat(redis_server.url)) as two:

        async def main() -> tuple[list[Any], list[Any], int]:
            a = await connect(one.url.replace("http", "ws") + "/")
            b = await connect(two.url.replace("http", "ws") + "/")
            await a.send(b"\x00\xffbin")
            got = [await a.recv(), await b.recv()]
            async with httpx.AsyncClient() as http:
                status = (await http.post(two.url + "/")).status_code
            got += [await a.recv(), await b.recv()]
            await b.send("leave")
            left = [await b.recv()]
            await a.send(b"after")
            left.append(await a.recv())
            await a.close()
            await b.close()
            return got, left, status

        got, left, status = run(main())
    assert got == [b"\x00\xffbin", b"\x00\xffbin", b"from http", b"from http"]
    assert status == 204
    assert left == ["left", b"after"]
