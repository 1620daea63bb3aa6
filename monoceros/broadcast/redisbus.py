"""``redis://``: groups across server instances through Redis Pub/Sub.

Theory of operation
-------------------
Each hub (one per event loop of each server instance) has an id and two
kinds of Redis connections: a pool for ``PUBLISH`` and one Pub/Sub
connection, read by the *listener* task, subscribed to a control channel and
to ``PREFIX:group:NAME`` for every group with local members.  A group send
publishes ``ID SP payload`` to the group's channel; every subscribed
instance but the sender hands the payload to its hub; the sender delivers to
its own members directly.

The link is in one :class:`Link` state.  ``DOWN`` until every channel of the
(re)connection is confirmed subscribed, then ``UP``; a read error on the
Pub/Sub connection takes it ``DOWN`` again and the listener reconnects with
a growing delay (``RETRY_MIN`` .. ``RETRY_MAX``) and resubscribes to every
group the hub has members of at that moment.

No silent loss.  While the link is down a send raises
:class:`~monoceros.errors.BroadcastUnavailable` before publishing anything
(our own members would miss it too).  Instances also tell each other which
groups they have members of: a ``state`` message on the control channel
after every change (after the subscription is confirmed when joining, before
unsubscribing when leaving), after each reconnection (``hello``, which
makes the others answer with theirs) and every ``HEARTBEAT`` seconds.  That
belief survives a Redis restart, so when ``PUBLISH`` answers that fewer
instances received the message than hold members of the group (one has not
resubscribed yet), the sender gets :class:`~monoceros.errors.PartialDelivery`.
A peer silent for ``PEER_TIMEOUT`` while we were connected is forgotten (it
stopped or died).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from monoceros.errors import BroadcastUnavailable, PartialDelivery

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

    from monoceros.broadcast.hub import Hub

__all__ = ["HEARTBEAT", "PEER_TIMEOUT", "Link", "RedisBackend"]

logger = logging.getLogger("monoceros.error")

HEARTBEAT: Final = 1.0
PEER_TIMEOUT: Final = 3 * HEARTBEAT
RETRY_MIN: Final = 0.05
RETRY_MAX: Final = 1.0
CONNECT_TIMEOUT: Final = 2.0
# A PUBLISH that takes longer than this means a Redis in trouble.
COMMAND_TIMEOUT: Final = 5.0
_FAILURES = (RedisError, OSError)


class Link(enum.Enum):
    DOWN = 0
    UP = 1
    CLOSED = 2


_DOWN: Final = Link.DOWN
_UP: Final = Link.UP
_CLOSED: Final = Link.CLOSED


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _wake(waiters: Any) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


@dataclass
class _Peer:
    seen: float
    seq: int = -1
    groups: set[str] = field(default_factory=set)


class RedisBackend:
    """A :class:`~monoceros.broadcast.hub.Backend` over Redis Pub/Sub.

    Args:
        hub: the hub it carries messages for.
        url: ``redis://[[user]:password@]host:port/db``, ``rediss://`` or
            ``unix://``, as redis-py takes it.
        prefix: the prefix of every Redis channel it uses.
    """

    def __init__(self, hub: Hub, url: str, prefix: str = "monoceros") -> None:
        self.hub = hub
        self.url = _redacted(url)  # for messages: no password in logs
        self.loop = asyncio.get_running_loop()
        self.id = os.urandom(8).hex()
        self._tag = self.id.encode() + b" "
        self._group_prefix = f"{prefix}:group:".encode()
        self._control = f"{prefix}:control".encode()
        self.client: Redis = Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
        )
        self.link = _DOWN
        self.peers: dict[str, _Peer] = {}
        self._since = 0.0  # loop time of the last connection
        self._seq = 0
        self._pubsub: PubSub | None = None
        self._confirmed: set[bytes] = set()
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._pings: list[asyncio.Future[None]] = []  # PINGs sent on the Pub/Sub connection
        self._attempted = asyncio.Event()  # the first connection attempt is over
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener = self.loop.create_task(self._listen())
        self._beat = self.loop.create_task(self._heartbeat())

    def _channel(self, group: str) -> bytes:
        return self._group_prefix + group.encode()

    async def ready(self) -> bool:
        """Wait for the first connection attempt; True if Redis is reachable."""
        await self._attempted.wait()
        return self.link is _UP

    # -- the listener -------------------------------------------------------------------
    async def _listen(self) -> None:
        delay = RETRY_MIN
        while True:
            pubsub = self._pubsub = self.client.pubsub()
            try:
                channels = [self._control, *(self._channel(g) for g in self.hub.groups)]
                pending = set(channels)
                await pubsub.subscribe(*channels)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:  # pragma: no cover - only with health checks
                        continue
                    kind, channel = message["type"], message["channel"]
                    if kind == "message":
                        self._on_message(channel, message["data"])
                    elif kind == "subscribe":
                        self._confirmed.add(channel)
                        _wake(self._waiters.pop(channel, ()))
                        pending.discard(channel)
                        if self.link is _DOWN and not pending:
                            # Pooled connections from before an outage are dead.
                            await self.client.connection_pool.disconnect(inuse_connections=False)
                            self._connected()
                            delay = RETRY_MIN
                    elif kind == "unsubscribe":
                        self._confirmed.discard(channel)
                    elif kind == "pong" and self._pings:
                        _wake([self._pings.pop(0)])
            except _FAILURES as exc:
                self._lost(exc)
            except Exception as exc:  # pragma: no cover - a bug: never go deaf silently
                logger.exception("Broadcast: the Redis listener failed; reconnecting")
                self._lost(exc)
            finally:
                with contextlib.suppress(*_FAILURES):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    def _connected(self) -> None:
        first = not self._attempted.is_set()
        self.link = _UP
        self._since = self.loop.time()
        self._attempted.set()
        if first:
            logger.info("Broadcast: connected to Redis at %s", self.url)
        else:
            logger.warning("Broadcast: reconnected to Redis at %s; groups resubscribed", self.url)
        self._announce("hello")

    def _lost(self, exc: BaseException) -> None:
        if self.link is _UP:
            logger.warning("Broadcast: lost the connection to Redis at %s (%s); reconnecting", self.url, exc)
        elif not self._attempted.is_set():
            logger.warning("Broadcast: cannot reach Redis at %s (%s); retrying", self.url, exc)
        self.link = _DOWN
        self._attempted.set()
        self._pubsub = None
        self._confirmed.clear()
        waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            _wake(futures)
        pings, self._pings = self._pings, []
        _wake(pings)

    def _on_message(self, channel: bytes, data: bytes) -> None:
        if channel == self._control:
            self._on_control(data)
        elif not data.startswith(self._tag):
            _, sep, payload = data.partition(b" ")
            if sep and channel.startswith(self._group_prefix):
                self.hub.receive(channel[len(self._group_prefix) :].decode(), payload)

    # -- who holds members of which group -------------------------------------------
    def _on_control(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            op, peer_id = message["op"], message["id"]
        except (ValueError, KeyError, TypeError):
            return  # not ours
        if peer_id == self.id:
            return
        if op == "bye":
            self.peers.pop(peer_id, None)
            return
        peer = self.peers.get(peer_id)
        if peer is None:
            peer = self.peers[peer_id] = _Peer(self.loop.time())
        peer.seen = self.loop.time()
        seq = message.get("seq", -1)
        if isinstance(seq, int) and seq > peer.seq:
            peer.seq = seq
            peer.groups = set(message.get("groups", ()))
        if op == "hello":
            self._announce("state")

    def _state(self, op: str) -> bytes:
        self._seq += 1
        state = {"op": op, "id": self.id, "seq": self._seq, "groups": sorted(self.hub.groups)}
        return json.dumps(state).encode()

    def _announce(self, op: str) -> None:
        if self.link is _UP:
            self._spawn(self._publish_control(self._state(op)))

    async def _publish_control(self, data: bytes) -> None:
        with contextlib.suppress(*_FAILURES):
            await self.client.publish(self._control, data)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            self._announce("state")

    def _expected(self, group: str) -> int:
        """How many instances (this one included) should receive ``group``."""
        now, since = self.loop.time(), self._since
        count = 1 if self._channel(group) in self._confirmed else 0
        for peer_id, peer in list(self.peers.items()):
            if now - max(peer.seen, since) > PEER_TIMEOUT:
                del self.peers[peer_id]
            elif group in peer.groups:
                count += 1
        return count

    async def _settle(self) -> None:
        """Return once the listener has read what Redis sent it before now
        (a PING through the Pub/Sub connection comes back after it)."""
        pubsub = self._pubsub
        if pubsub is None or self.link is not _UP:
            return
        waiter = self.loop.create_future()
        self._pings.append(waiter)
        try:
            await pubsub.ping()
        except _FAILURES:
            with contextlib.suppress(ValueError):
                self._pings.remove(waiter)
            return
        # Bounded: a Redis that stops answering must not hang the sender.
        with contextlib.suppress(asyncio.TimeoutError):  # TimeoutError from 3.11 on
            await asyncio.wait_for(asyncio.shield(waiter), COMMAND_TIMEOUT)

    # -- the Backend interface -------------------------------------------------------
    async def subscribe(self, group: str) -> None:
        await self._attempted.wait()
        channel = self._channel(group)
        pubsub = self._pubsub
        if pubsub is None:
            return  # down: the listener subscribes when it reconnects
        waiter = None
        if self.link is _UP and channel not in self._confirmed:
            waiter = self.loop.create_future()
            self._waiters.setdefault(channel, []).append(waiter)
        try:
            await pubsub.subscribe(channel)
        except _FAILURES:
            return  # the listener sees the failure too, and resubscribes
        if waiter is not None:
            await waiter
        self._announce("state")

    async def unsubscribe(self, group: str) -> None:
        if self.link is _UP:
            # Others learn we left before Redis stops sending us the group,
            # so that they do not count us as missing (see _settle).
            await self._publish_control(self._state("state"))
        pubsub = self._pubsub
        if pubsub is not None and group not in self.hub.groups:
            with contextlib.suppress(*_FAILURES):
                await pubsub.unsubscribe(self._channel(group))

    async def publish(self, group: str, data: bytes) -> None:
        await self._attempted.wait()
        if self.link is not _UP:
            raise BroadcastUnavailable(
                f"group {group!r}: Redis at {self.url} is unreachable, nothing was sent (reconnecting)"
            )
        expected = self._expected(group)
        try:
            received = await self.client.publish(self._channel(group), self._tag + data)
        except _FAILURES as exc:
            raise BroadcastUnavailable(
                f"group {group!r}: Redis at {self.url} is unreachable, nothing was sent ({exc})"
            ) from exc
        if received < expected:
            # Perhaps an instance left the group and said so in a message
            # our listener has not read yet: read up to now and count again.
            await self._settle()
            expected = self._expected(group)
        if received < expected:
            raise PartialDelivery(
                f"group {group!r}: the message reached {received} of the {expected} server instances "
                "with members (the others are reconnecting to Redis)",
                received,
                expected,
            )

    async def aclose(self) -> None:
        if self.link is _UP:
            bye = {"op": "bye", "id": self.id}
            await self._publish_control(json.dumps(bye).encode())
        self.link = _CLOSED
        tasks = [self._listener, self._beat, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(*_FAILURES):
            await self.client.aclose()
