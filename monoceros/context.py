"""What every connection of one server shares: :class:`ServerContext`.

The app, the limits, the default headers (refreshed once a second for
``Date``), the counters, the access log.  Its once-a-second sweep is also what
enforces the keep-alive and request-head timeouts, so no request pays for a
timer.  Every request reads a dozen of its attributes, which is why it lives
apart from :mod:`monoceros.server`: it is one of the modules mypyc compiles
(:mod:`monoceros.compiled`), where these reads are a native class's fields.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Final

from monoceros.config import LoadedConfig
from monoceros.middleware.proxy_headers import ProxyHeadersMiddleware
from monoceros.protocols.eager import EagerStart

if TYPE_CHECKING:
    from monoceros._types import Connection
    from monoceros.protocols.cycle import RequestCycle

logger = logging.getLogger("monoceros.error")
access_logger = logging.getLogger("monoceros.access")
# The most client addresses whose access-log text is kept (then all are dropped).
_CLIENT_NAMES_MAX: Final = 1024


class ServerContext:
    """State shared by every connection of one server."""

    # Slots, not an instance dict: every request reads a dozen of these from
    # compiled code, and past 30 attributes an instance dict stops sharing
    # its keys (a slot read is a descriptor, no dict lookup).
    __slots__ = (
        "accepting",
        "access_custom",
        "access_format",
        "access_log",
        "access_log_needs_time",
        "active",
        "app",
        "base_headers",
        "batched_access",
        "client_names",
        "connections",
        "date_header",
        "default_headers",
        "default_headers_h1",
        "drain_changed",
        "eager",
        "http2",
        "http_impl",
        "limit_concurrency",
        "limit_max_requests",
        "limit_request_body",
        "loaded",
        "loop",
        "max_head_size",
        "max_request_line",
        "on_max_requests",
        "proxy",
        "requests",
        "reset_contextvars",
        "root_path",
        "server_cert",
        "state",
        "timeout_keep_alive",
        "timeout_request_body",
        "timeout_request_header",
        "ws_impl",
        "ws_max_queue",
        "ws_max_size",
        "ws_per_message_deflate",
        "ws_ping_interval",
        "ws_ping_timeout",
    )

    def __init__(self, loaded: LoadedConfig, loop: asyncio.AbstractEventLoop) -> None:
        config = loaded.config
        self.loaded = loaded
        self.loop = loop
        self.app = loaded.app
        self.http_impl = loaded.http_impl
        self.ws_impl = loaded.ws_impl
        self.ws_max_size = config.ws_max_size
        self.ws_max_queue = config.ws_max_queue
        self.ws_ping_interval = config.ws_ping_interval
        self.ws_ping_timeout = config.ws_ping_timeout
        self.ws_per_message_deflate = config.ws_per_message_deflate
        self.max_head_size = loaded.max_head_size
        self.max_request_line = loaded.max_request_line
        self.root_path = config.root_path
        self.limit_concurrency = config.limit_concurrency
        self.limit_request_body = config.limit_request_body
        self.limit_max_requests = loaded.limit_max_requests
        self.timeout_keep_alive = float(config.timeout_keep_alive)
        self.timeout_request_header = float(config.timeout_request_header)
        self.timeout_request_body = float(config.timeout_request_body)
        self.reset_contextvars = config.reset_contextvars
        # First steps of app calls without a Task (.protocols.eager); it needs
        # create_task(context=...), Python 3.11+.
        self.eager = EagerStart(loop) if config.eager_start and sys.version_info >= (3, 11) else None
        self.date_header = config.date_header
        self.http2 = config.http2
        # For the ASGI tls extension: the certificate the server presents.
        self.server_cert: str | None = None
        if loaded.ssl is not None:
            from monoceros.protocols.utils import read_server_cert

            self.server_cert = read_server_cert(str(config.ssl_certfile) if config.ssl_certfile else None)
        self.base_headers = loaded.default_headers
        self.state: dict[str, Any] = {}
        self.proxy: ProxyHeadersMiddleware | None = None
        if config.proxy_headers:
            self.proxy = ProxyHeadersMiddleware(self.app, trusted_hosts=loaded.forwarded_allow_ips)
        self.connections: set[Connection] = set()
        self.active = 0  # application calls running
        self.requests = 0
        self.accepting = True
        # Set while draining: woken whenever a connection closes or an app
        # call ends, so shutdown waits on events, never on a poll.
        self.drain_changed: asyncio.Event | None = None
        self.on_max_requests: Any = None
        from monoceros.accesslog import BatchedAccessLog
        from monoceros.logging import AccessLogFormat

        self.access_format = AccessLogFormat(config.access_log_format)
        self.access_log = config.access_log and access_logger.isEnabledFor(logging.INFO)
        self.access_custom = self.access_format.custom
        self.client_names: dict[tuple[Any, ...], str] = {}  # client -> "host:port" (access lines)
        self.access_log_needs_time = self.access_log and self.access_custom
        self.batched_access = (
            BatchedAccessLog.for_logger(access_logger, loop)
            if self.access_log and not self.access_custom
            else None
        )
        self.default_headers_h1 = b""
        self.refresh_headers()

    def refresh_headers(self) -> None:
        """Rebuild the default header block (once a second, for Date)."""
        headers = list(self.base_headers)
        if self.date_header:
            headers.insert(1 if headers and headers[0][0] == b"server" else 0,
                           (b"date", formatdate(usegmt=True).encode("ascii")))
        self.default_headers = headers
        self.default_headers_h1 = b"".join(b"%s: %s\r\n" % (n, v) for n, v in headers)

    def sweep(self) -> None:
        """Once a second: refresh Date, enforce the connection deadlines."""
        self.refresh_headers()
        now = self.loop.time()
        for conn in list(self.connections):
            if conn.deadline and now >= conn.deadline:
                conn.timed_out()
        if not self.accepting:
            # A connection accepted just before the listeners closed.
            self.close_idle()

    def close_idle(self) -> None:
        for conn in list(self.connections):
            conn.shutdown()

    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if self.drain_changed is not None:
            self.drain_changed.set()

    async def wait_drained(self) -> None:
        """Wait until every connection closed and every app call ended."""
        changed = self.drain_changed = asyncio.Event()
        self.close_idle()
        if self.connections:
            logger.info("Waiting for connections to close. (CTRL+C to force quit)")
            while self.connections:
                changed.clear()
                await changed.wait()
        if self.active:
            logger.info("Waiting for background tasks to complete. (CTRL+C to force quit)")
            while self.active:
                changed.clear()
                await changed.wait()

    def cycle_ended(self) -> None:
        """An application call ended (HTTP/2 streams; HTTP/1.1 inlines this)."""
        self.active -= 1
        if self.drain_changed is not None:  # shutting down: the drain waits on this
            self.drain_changed.set()
        if self.limit_max_requests is not None and self.requests >= self.limit_max_requests:
            self.max_requests_reached()

    def max_requests_reached(self) -> None:
        if self.on_max_requests is not None:
            callback, self.on_max_requests = self.on_max_requests, None
            callback()

    def log_access(self, cycle: RequestCycle) -> None:
        scope = cycle.scope
        fmt = self.access_format
        query: bytes = scope["query_string"]  # (typed: compiled, decode() is a primitive)
        client = scope["client"]
        if not self.access_custom:
            if type(client) is tuple:
                # A connection's requests share its client tuple: its text is
                # looked up, not formatted, from the second request on.
                names = self.client_names
                client_str = names.get(client)
                if client_str is None:
                    if len(names) >= _CLIENT_NAMES_MAX:
                        names.clear()
                    client_str = names[client] = f"{client[0]}:{client[1]}"
            else:
                client_str = f"{client[0]}:{client[1]}" if client else ""
            raw_path: bytes = scope["raw_path"]
            path = raw_path.decode("latin-1")
            if query:
                path = f"{path}?{query.decode('latin-1')}"
            batched = self.batched_access
            if batched is not None:
                batched.add(client_str, cycle.method, path, scope["http_version"], cycle.status)
                return
            access_logger.info(
                '%s - "%s %s HTTP/%s" %d', client_str, cycle.method, path, scope["http_version"], cycle.status
            )
            return
        fmt.log(
            access_logger,
            client=client[0] if client else "",  # gunicorn's %(h)s is the host alone
            method=cycle.method,
            path=scope["path"],
            query=query,
            http_version=scope["http_version"],
            status=cycle.status,
            request_headers=scope["headers"],
            response_headers=cycle.response_headers,
            response_length=cycle.response_bytes,
            duration_s=self.loop.time() - cycle.start_time,
        )


__all__ = ["ServerContext"]
