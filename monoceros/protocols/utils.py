"""Small helpers shared by the protocols."""

from __future__ import annotations

import asyncio
import socket
from typing import Any


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


def get_addresses(transport: asyncio.BaseTransport) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    """ASGI ``server`` and ``client`` of a connection.

    For a unix socket the server is ``(path, None)``-like in uvicorn; ASGI
    allows ``None``, which is what we give for the client there.
    """
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None and sock.family == getattr(socket, "AF_UNIX", -1):
        path = sock.getsockname()
        return ((str(path), 0) if path else None), None
    return _address(transport.get_extra_info("sockname")), _address(transport.get_extra_info("peername"))


__all__ = ["get_addresses"]
