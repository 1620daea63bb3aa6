"""Groups on one event loop: local members, delivery, and the wire format.

Theory of operation
-------------------
A :class:`Hub` lives on one event loop of one server instance.  It knows the
*members* connected here (one :class:`Member` per WebSocket, by channel name)
and which local members belong to which group.  The group state is local:
an instance subscribes, through its :class:`Backend`, to the groups it has
members of, and a group send is published to the backend (which carries it to
every other subscribed instance) and then delivered to the local members.
Adding and discarding therefore never fail because of the backend; sending
does, and raises rather than lose a message silently (see
:class:`~monoceros.errors.BroadcastUnavailable` and
:class:`~monoceros.errors.PartialDelivery`).

Each member has an outbox drained by one task, so a member gets the messages
of each sender in the order they were sent, a slow client does not hold the
others up, and nothing is written before the WebSocket is accepted.  An
outbox that grows past :data:`MAX_PENDING` means a client that does not read:
it is closed with 1013 rather than buffered without bound.

Messages cross processes as JSON in which bytes (and dicts that would be
mistaken for them) are tagged, so a message may hold bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from monoceros.errors import ASGIMessageError, PartialDelivery

__all__ = ["MAX_PENDING", "Backend", "Hub", "Member", "decode", "encode", "group_message"]

logger = logging.getLogger("monoceros.error")

#: Group messages waiting for one client before it is closed with 1013.
MAX_PENDING: Final = 1024
_OVERFLOW: Final = {"close": 1013}

#: Delivers one group message to a connection (channels reply format).
Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class Backend(Protocol):
    """Carries group messages between the server instances."""

    async def subscribe(self, group: str) -> None:
        """Receive the group's messages from now on (after it returns)."""

    async def unsubscribe(self, group: str) -> None: ...

    async def publish(self, group: str, data: bytes) -> None:
        """Hand ``data`` to every other subscribed instance.

        Raises:
            BroadcastUnavailable: no instance got it.
            PartialDelivery: some instances known to hold members did not.
        """

    async def aclose(self) -> None: ...


class Member:
    """A local connection that receives group messages, in order."""

    def __init__(self, name: str, deliver: Deliver) -> None:
        self.name = name
        self._deliver = deliver
        self._outbox: deque[dict[str, Any]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._open = False
        self.gone = False

    def opened(self) -> None:
        """The WebSocket is accepted: deliveries may start."""
        self._open = True
        self._kick()

    def deliver(self, message: dict[str, Any]) -> None:
        if self.gone:
            return
        outbox = self._outbox
        if len(outbox) >= MAX_PENDING:
            logger.warning("WebSocket %s does not read its group messages: closing it with 1013", self.name)
            self.gone = True
            outbox.clear()
            outbox.append(_OVERFLOW)
        else:
            outbox.append(message)
        self._kick()

    def close(self) -> None:
        """The connection ended: drop what waits."""
        self.gone = True
        self._outbox.clear()

    def _kick(self) -> None:
        if self._open and self._task is None and self._outbox:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        outbox = self._outbox
        try:
            while outbox:
                await self._deliver(outbox.popleft())
        except Exception as exc:  # the client left, or the connection broke
            logger.debug("group delivery to %s stopped: %r", self.name, exc)
            self.close()
        finally:
            self._task = None


class Hub:
    """The groups of one event loop; see the module docstring.

    Args:
        make_backend: builds the backend for this hub.
    """

    def __init__(self, make_backend: Callable[[Hub], Backend]) -> None:
        self.members: dict[str, Member] = {}
        self.groups: dict[str, set[str]] = {}
        self._memberships: dict[str, set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.backend = make_backend(self)

    def register(self, member: Member) -> None:
        self.members[member.name] = member

    def unregister(self, name: str) -> None:
        """The connection ``name`` ended: discard it from every group."""
        member = self.members.pop(name, None)
        if member is not None:
            member.close()
        for group in self._memberships.pop(name, ()):
            names = self.groups.get(group)
            if names is not None:
                names.discard(name)
                if not names:
                    del self.groups[group]
                    task = asyncio.get_running_loop().create_task(self._unsubscribe(group))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def add(self, group: str, name: str) -> None:
        """Add the local connection ``name`` to ``group``.

        Raises:
            ASGIMessageError: ``name`` is not an open WebSocket of this server.
        """
        _check_group(group)
        if name not in self.members:
            raise ASGIMessageError(f"cannot add {name!r} to a group: not an open WebSocket of this server")
        names = self.groups.get(group)
        self._memberships.setdefault(name, set()).add(group)
        if names is None:
            self.groups[group] = {name}
            await self.backend.subscribe(group)
        else:
            names.add(name)

    async def discard(self, group: str, name: str) -> None:
        """Remove ``name`` from ``group`` (nothing happens if it is not in it)."""
        _check_group(group)
        names = self.groups.get(group)
        if names is None or name not in names:
            return
        names.discard(name)
        self._memberships[name].discard(group)
        if not names:
            del self.groups[group]
            await self._unsubscribe(group)

    async def _unsubscribe(self, group: str) -> None:
        # The group may have gained a member again since it emptied.
        if group not in self.groups:
            await self.backend.unsubscribe(group)

    async def send(self, group: str, message: Any) -> None:
        """Deliver ``message`` to every member of ``group``, on every instance.

        Raises:
            ASGIMessageError: ``message`` is not a group message.
            BroadcastUnavailable: the backend is unreachable; no one got it.
            PartialDelivery: some instances did not get it (the others did).
        """
        _check_group(group)
        data = encode(group_message(message))
        try:
            await self.backend.publish(group, data)
        except PartialDelivery:
            self.receive(group, data)
            raise
        self.receive(group, data)

    def receive(self, group: str, data: bytes) -> None:
        """A message for ``group``: hand it to the local members."""
        names = self.groups.get(group)
        if not names:
            return
        message = decode(data)
        members = self.members
        for name in names:
            members[name].deliver(message)

    async def aclose(self) -> None:
        await self.backend.aclose()


def _check_group(group: object) -> None:
    if not isinstance(group, str) or not group:
        raise ASGIMessageError(f"a group name must be a non-empty str, got {group!r}")


def group_message(message: Any) -> dict[str, Any]:
    """Check a group message: ``text`` or ``bytes`` and/or ``close``; an
    ASGI ``websocket.send``/``websocket.close`` message is taken too."""
    if not isinstance(message, dict):
        raise ASGIMessageError(f"a group message must be a dict, got {type(message).__name__}")
    kind = message.get("type")
    if kind == "websocket.close":
        return {"close": message.get("code", 1000)}
    out = {k: v for k, v in message.items() if k in ("text", "bytes", "close")}
    text, data = out.get("text"), out.get("bytes")
    if text is not None and not isinstance(text, str):
        raise ASGIMessageError(f"group message 'text' must be a str, got {type(text).__name__}")
    if data is not None and not isinstance(data, bytes | bytearray | memoryview):
        raise ASGIMessageError(f"group message 'bytes' must be bytes, got {type(data).__name__}")
    close = out.get("close")
    if close is not None and close is not True and close is not False and type(close) is not int:
        raise ASGIMessageError(f"group message 'close' must be True or a close code, got {close!r}")
    if text is None and data is None and close in (None, False):
        raise ASGIMessageError(f"a group message needs 'text', 'bytes' or 'close', got {message!r}")
    return out


# -- the wire format ------------------------------------------------------------
_BYTES: Final = "$b"
_DICT: Final = "$d"


def _tag(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ASGIMessageError(f"group message keys must be str, got {key!r}")
            out[key] = _tag(item)
        return {_DICT: out} if _BYTES in out or _DICT in out else out
    if isinstance(value, list | tuple):
        return [_tag(item) for item in value]
    raise ASGIMessageError(f"a group message cannot hold {type(value).__name__} values")


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            if _BYTES in value:
                return base64.b64decode(value[_BYTES])
            if _DICT in value:
                return {key: _untag(item) for key, item in value[_DICT].items()}
        return {key: _untag(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untag(item) for item in value]
    return value


def encode(message: dict[str, Any]) -> bytes:
    """A group message as bytes (JSON; bytes values survive)."""
    return json.dumps(_tag(message), separators=(",", ":")).encode()


def decode(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = _untag(json.loads(data))
    return result
