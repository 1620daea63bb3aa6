"""``memory://NAME``: groups shared by the servers of one process.

Every hub that uses the same name, on any event loop of the process (several
servers in threads, tests), sees the others' group messages.  Delivery is a
``call_soon_threadsafe`` onto the receiving loop, so per sender order holds
and nothing can be unreachable: a send never fails.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monoceros.broadcast.hub import Hub

__all__ = ["MemoryBackend"]

_lock = threading.Lock()
# name -> group -> the backends subscribed to it
_buses: dict[str, dict[str, set[MemoryBackend]]] = {}


class MemoryBackend:
    """A :class:`~monoceros.broadcast.hub.Backend` inside one process."""

    def __init__(self, hub: Hub, name: str) -> None:
        self.hub = hub
        self.loop = asyncio.get_running_loop()
        with _lock:
            self._bus = _buses.setdefault(name, {})

    async def subscribe(self, group: str) -> None:
        with _lock:
            self._bus.setdefault(group, set()).add(self)

    async def unsubscribe(self, group: str) -> None:
        with _lock:
            subscribers = self._bus.get(group)
            if subscribers is not None:
                subscribers.discard(self)
                if not subscribers:
                    del self._bus[group]

    async def publish(self, group: str, data: bytes) -> None:
        with _lock:
            targets = [b for b in self._bus.get(group, ()) if b is not self]
        for target in targets:
            try:
                target.loop.call_soon_threadsafe(target.hub.receive, group, data)
            except RuntimeError:  # that server's loop is closed: it is gone
                with _lock:
                    for subscribers in self._bus.values():
                        subscribers.discard(target)

    async def aclose(self) -> None:
        with _lock:
            for group in [g for g, subs in self._bus.items() if self in subs]:
                subs = self._bus[group]
                subs.discard(self)
                if not subs:
                    del self._bus[group]
