"""Small helpers shared by the protocols."""

from __future__ import annotations

import asyncio
from typing import Any


def _address(info: Any) -> Address | None:
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


Address = tuple[str, int | None]


def get_addresses(transport: asyncio.BaseTransport) -> tuple[Address | None, Address | None]:
    """ASGI ``server`` and ``client`` of a connection.

    For a unix socket the ASGI spec says ``server`` is ``(path, None)``; the
    client of a unix socket has no address (``None``).
    """
    # A TCP socket's name is a (host, port[, flow, scope]) tuple; a unix
    # socket's is its path (str, or bytes for an abstract one).  Asking for
    # the names is cheaper than for the socket object (one per connection).
    sockname = transport.get_extra_info("sockname")
    if isinstance(sockname, tuple):
        return (sockname[0], sockname[1]), _address(transport.get_extra_info("peername"))
    if isinstance(sockname, (str, bytes)):
        path = sockname.decode("latin-1") if isinstance(sockname, bytes) else sockname
        return ((path, None) if path else None), None
    return None, _address(transport.get_extra_info("peername"))


__all__ = ["Address", "get_addresses"]
