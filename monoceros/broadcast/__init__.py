"""WebSocket groups across server instances (Redis Pub/Sub, or in memory).

- :class:`BroadcastMiddleware` (also spelled ``BroadCastMiddleware``, as in
  the first uvicorn README) adds ``channels['groups']`` to a channels-interface
  application: ``{'group': g, 'add': name}``, ``{'group': g, 'discard': name}``,
  ``{'group': g, 'send': message}``.
- :class:`GroupsMiddleware` gives ASGI 3 applications the same groups as
  ``scope['groups']`` (:class:`ConnectionGroups`: ``add``, ``discard``,
  ``send``).
- A send while Redis is unreachable raises :class:`BroadcastUnavailable`;
  one that reached only some instances raises :class:`PartialDelivery`; both
  are :class:`BroadcastError`.

See ``docs/channels.md``.
"""

from __future__ import annotations

from monoceros.broadcast.middleware import (
    BroadCastMiddleware,
    BroadcastMiddleware,
    ConnectionGroups,
    GroupsMiddleware,
)
from monoceros.errors import BroadcastError, BroadcastUnavailable, PartialDelivery

__all__ = [
    "BroadCastMiddleware",
    "BroadcastError",
    "BroadcastMiddleware",
    "BroadcastUnavailable",
    "ConnectionGroups",
    "GroupsMiddleware",
    "PartialDelivery",
]
