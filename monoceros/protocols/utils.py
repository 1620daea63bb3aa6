"""Small helpers shared by the protocols."""

from __future__ import annotations

import asyncio
import socket
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
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None and sock.family == getattr(socket, "AF_UNIX", -1):
        path = sock.getsockname()
        return ((str(path), None) if path else None), None
    return _address(transport.get_extra_info("sockname")), _address(transport.get_extra_info("peername"))


__all__ = ["Address", "get_addresses"]
