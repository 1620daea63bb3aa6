"""Small helpers shared by the protocols."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from monoceros._types import Headers

if TYPE_CHECKING:
    from monoceros.protocols.cycle import RequestCycle
    from monoceros.server import ServerContext

# create_task(context=...) exists from Python 3.11 on.
_TASK_CONTEXT = sys.version_info >= (3, 11)


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


class Carrier(Protocol):
    """What a connection (HTTP/1.1 or HTTP/2) knows that every scope needs."""

    ctx: ServerContext
    server: Address | None
    client: Address | None
    scheme: str
    context: contextvars.Context


def http_scope(
    conn: Carrier, method: str, target: bytes, http_version: str, headers: Headers
) -> dict[str, Any]:
    """The ASGI ``http`` scope of a request whose target is origin-form (or ``*``)."""
    raw_path, _, query = target.partition(b"?")
    path = raw_path.decode("ascii")
    if "%" in path:
        path = unquote(path)
    ctx = conn.ctx
    root_path = ctx.root_path
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "server": conn.server,
        "client": conn.client,
        "scheme": conn.scheme,
        "method": method,
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
        "state": ctx.state.copy(),
    }


def start_app(conn: Carrier, cycle: RequestCycle) -> asyncio.Task[None]:
    """Count the app call and run it in a copy of the connection's context
    (never the context of whichever task parsed the request)."""
    ctx = conn.ctx
    ctx.active += 1
    ctx.requests += 1
    if ctx.access_log_needs_time:
        cycle.start_time = ctx.loop.time()
    context = contextvars.Context() if ctx.reset_contextvars else conn.context.copy()
    if _TASK_CONTEXT:
        return ctx.loop.create_task(cycle.run_asgi(), context=context)
    return context.run(ctx.loop.create_task, cycle.run_asgi())  # pragma: no cover - Python 3.10


__all__ = ["Address", "Carrier", "get_addresses", "http_scope", "start_app"]
