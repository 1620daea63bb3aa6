"""ASGI types shared by the package (kept loose on purpose: apps send dicts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]



class Connection(Protocol):
    """What the server needs of every connection it tracks (HTTP/1.1, and
    whatever an upgrade hands the transport to): a deadline for the sweep,
    and the three ways a connection is told to stop."""

    #: loop time at which :meth:`timed_out` is due; 0 for none.
    deadline: float

    def timed_out(self) -> None:
        """The server's once-a-second sweep found ``deadline`` passed."""

    def shutdown(self) -> None:
        """Graceful shutdown began: finish what is in flight, then close."""

    def force_close(self) -> None:
        """Shutdown ran out of time: close now, cancel the app."""


class UpgradedProtocol(Connection, Protocol):
    """A protocol an upgrade hands the connection to
    (:meth:`~monoceros.protocols.http1.HTTP11Protocol.hand_over`); also an
    :class:`asyncio.Protocol`.  (Here rather than in http1, which mypyc
    compiles: it takes no class nested in a block.)"""

    def take_over(self, transport: asyncio.Transport, data: bytes) -> None:
        """Start on ``transport``, whose first ``data`` were already read."""


__all__ = ["ASGIApp", "Connection", "Headers", "Message", "Receive", "Scope", "Send", "UpgradedProtocol"]
