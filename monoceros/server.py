"""The server: listeners, lifetimes, signals and graceful shutdown.

Theory of operation
-------------------
:meth:`Server.serve` runs, in order: load the config, lifespan startup, bind
every listener, then wait on an :class:`asyncio.Event` until something asks
the server to stop (a signal, ``should_exit``, ``--limit-max-requests``).
Shutdown then closes the listeners, closes idle connections at once, lets
active ones finish their current response (they close after it), waits on a
"drained" event for the last connection with ``--timeout-graceful-shutdown``
as the bound, cancels what is left, and runs lifespan shutdown.  Nothing
polls: readiness is ``started`` (an event), drain is an event.

A :class:`ServerContext` is what every connection shares: the app, the
limits, the default headers (refreshed once a second for ``Date``), the
counters.  Its once-a-second sweep is also what enforces the keep-alive and
request-head timeouts, so no request pays for a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from monoceros.config import BindSpec, Config, LoadedConfig
from monoceros.errors import StartupError
from monoceros.lifespan import Lifespan

if TYPE_CHECKING:
    from monoceros.protocols.cycle import RequestCycle
    from monoceros.protocols.http1 import HTTP11Protocol

logger = logging.getLogger("monoceros.error")
access_logger = logging.getLogger("monoceros.access")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ServerContext:
    """State shared by every connection of one server."""

    def __init__(self, loaded: LoadedConfig, loop: asyncio.AbstractEventLoop) -> None:
        config = loaded.config
        self.loaded = loaded
        self.loop = loop
        self.app = loaded.app
        self.http_impl = loaded.http_impl
        self.max_head_size = loaded.max_head_size
        self.max_request_line = loaded.max_request_line
        self.root_path = config.root_path
        self.limit_concurrency = config.limit_concurrency
        self.limit_request_body = config.limit_request_body
        self.limit_max_requests = loaded.limit_max_requests
        self.timeout_keep_alive = float(config.timeout_keep_alive)
        self.timeout_request_header = float(config.timeout_request_header)
        self.reset_contextvars = config.reset_contextvars
        self.date_header = config.date_header
        self.base_headers = loaded.default_headers
        self.state: dict[str, Any] = {}
        self.connections: set[HTTP11Protocol] = set()
        self.active = 0
        self.requests = 0
        self.accepting = True
        self.drained: asyncio.Event | None = None
        self.on_max_requests: Any = None
        from monoceros.logging import AccessLogFormat

        self.access_format = AccessLogFormat(config.access_log_format)
        self.access_log = config.access_log and access_logger.isEnabledFor(logging.INFO)
        self.access_log_needs_time = self.access_log and self.access_format.custom
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

    def connection_closed(self, conn: HTTP11Protocol) -> None:
        self.connections.discard(conn)
        if not self.connections and self.drained is not None:
            self.drained.set()

    def max_requests_reached(self) -> None:
        if self.on_max_requests is not None:
            callback, self.on_max_requests = self.on_max_requests, None
            callback()

    def log_access(self, cycle: RequestCycle) -> None:
        scope = cycle.scope
        fmt = self.access_format
        query = scope["query_string"]
        client = scope["client"]
        client_str = f"{client[0]}:{client[1]}" if client else ""
        if not fmt.custom:
            path = scope["raw_path"].decode("latin-1")
            if query:
                path = f"{path}?{query.decode('latin-1')}"
            access_logger.info(
                '%s - "%s %s HTTP/%s" %d', client_str, cycle.method, path, scope["http_version"], cycle.status
            )
            return
        fmt.log(
            access_logger,
            client=client_str,
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


class Server:
    """Serve one :class:`~monoceros.config.Config` (uvicorn's ``Server`` API).

    ``await server.serve()`` runs until a signal or ``server.should_exit =
    True``; ``server.started`` turns True once every listener is bound.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loaded: LoadedConfig | None = None
        self.ctx: ServerContext | None = None
        self.started = False
        self._should_exit = False
        self.force_exit = False
        self.listeners: list[asyncio.AbstractServer] = []
        self.addresses: list[str] = []
        self._exit_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_event: threading.Event = threading.Event()
        self._captured_signals: list[int] = []

    # uvicorn users set ``server.should_exit = True``, from any thread.
    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value and self._exit_event is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._exit_event.set)

    def wait_started(self, timeout: float | None = None) -> bool:
        """Block (another thread) until the server listens; False on timeout."""
        return self._started_event.wait(timeout)

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        """Run :meth:`serve` in a new event loop (``--loop``)."""
        from monoceros.loops import loop_factory

        factory = loop_factory(self.config.loop)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(self.serve(sockets=sockets))

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, serve until asked to stop, shut down gracefully."""
        with self._capture_signals():
            await self._serve(sockets)

    async def _serve(self, sockets: list[socket.socket] | None) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._exit_event = asyncio.Event()
        if self._should_exit:
            self._exit_event.set()
        if self.loaded is None:
            self.loaded = self.config.load()
        loaded = self.loaded
        ctx = self.ctx = ServerContext(loaded, loop)
        ctx.on_max_requests = self._max_requests
        logger.info("Started server process [%d]", os.getpid())
        lifespan = Lifespan(loaded.app, loaded.lifespan, ctx.state)
        await lifespan.startup()
        if lifespan.failed:
            # The app's own startup failed; uvicorn exits with 3.
            raise StartupError("Application startup failed. Exiting.")
        try:
            await self._start_listeners(sockets)
        except BaseException:
            await lifespan.shutdown()
            raise
        self.started = True
        self._started_event.set()
        sweeper = loop.create_task(self._sweep_forever())
        try:
            await self._exit_event.wait()
        finally:
            sweeper.cancel()
            await self._shutdown()
            await lifespan.shutdown()
            self.started = False
            self._started_event.clear()
            logger.info("Finished server process [%d]", os.getpid())

    def _max_requests(self) -> None:
        logger.warning("Maximum request limit of %d exceeded. Terminating process.", self.ctx.limit_max_requests)  # type: ignore[union-attr]
        self.should_exit = True

    async def _sweep_forever(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        while True:
            await asyncio.sleep(1.0 - (time.time() % 1.0))
            ctx.sweep()

    # -- listeners ---------------------------------------------------------------------
    async def _start_listeners(self, sockets: list[socket.socket] | None) -> None:
        from monoceros.protocols.http1 import HTTP11Protocol

        ctx = self.ctx
        loaded = self.loaded
        assert ctx is not None and loaded is not None
        loop = ctx.loop
        config = loaded.config

        def factory() -> HTTP11Protocol:
            return HTTP11Protocol(ctx)

        scheme = "https" if loaded.ssl else "http"
        backlog = config.backlog
        if sockets:
            for sock in sockets:
                self.listeners.append(
                    await loop.create_server(factory, sock=sock, ssl=loaded.ssl, backlog=backlog)
                )
                self.addresses.append(_describe(sock, scheme))
        for bind in loaded.binds:
            try:
                server = await self._listen(bind, factory, loaded, backlog)
            except OSError as exc:
                self._close_listeners()
                raise StartupError(f"cannot listen on {bind}: {exc.strerror or exc}") from None
            self.listeners.append(server)
            for sock in server.sockets:
                self.addresses.append(_describe(sock, scheme))
        for address in self.addresses:
            if address.startswith("unix:"):
                logger.info("Monoceros running on %s (Press CTRL+C to quit)", address)
            else:
                logger.info("Monoceros running on %s (Press CTRL+C to quit)", address)

    async def _listen(
        self, bind: BindSpec, factory: Any, loaded: LoadedConfig, backlog: int
    ) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        if bind.kind == "unix":
            if os.path.exists(bind.path) and _is_stale_socket(bind.path):
                os.unlink(bind.path)
            server = await loop.create_unix_server(factory, path=bind.path, ssl=loaded.ssl, backlog=backlog)
            os.chmod(bind.path, 0o666)
            return server
        if bind.kind == "fd":
            try:
                sock = socket.socket(fileno=bind.fd)
            except OSError as exc:
                raise StartupError(f"--fd {bind.fd}: not a socket ({exc.strerror})") from None
            if sock.family == socket.AF_UNIX:
                return await loop.create_unix_server(factory, sock=sock, ssl=loaded.ssl, backlog=backlog)
            return await loop.create_server(factory, sock=sock, ssl=loaded.ssl, backlog=backlog)
        return await loop.create_server(
            factory, host=bind.host, port=bind.port, ssl=loaded.ssl, backlog=backlog, reuse_address=True
        )

    def _close_listeners(self) -> None:
        for server in self.listeners:
            server.close()
        for bind in self.loaded.binds if self.loaded else ():
            if bind.kind == "unix" and os.path.exists(bind.path):
                with contextlib.suppress(OSError):
                    os.unlink(bind.path)
        self.listeners = []

    # -- shutdown ----------------------------------------------------------------------
    async def _shutdown(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        logger.info("Shutting down")
        ctx.accepting = False
        self._close_listeners()
        ctx.drained = asyncio.Event()
        for conn in list(ctx.connections):
            conn.shutdown()
        if ctx.connections and not self.force_exit:
            if ctx.active:
                logger.info("Waiting for connections to close. (CTRL+C to force quit)")
            timeout = self.config.timeout_graceful_shutdown
            self._force_event = asyncio.Event()
            drained = asyncio.ensure_future(ctx.drained.wait())
            forced = asyncio.ensure_future(self._force_event.wait())
            done, pending = await asyncio.wait({drained, forced}, timeout=timeout, return_when="FIRST_COMPLETED")
            for fut in pending:
                fut.cancel()
            if not done and timeout is not None:
                logger.error("Cancel %d running task(s), timeout graceful shutdown exceeded", ctx.active)
        for conn in list(ctx.connections):
            conn.force_close()
        # Let cancelled app tasks run their cleanup before lifespan shutdown.
        await asyncio.sleep(0)

    def handle_exit(self, sig: int, frame: Any = None) -> None:
        """A signal arrived: first one stops gracefully, a second forces."""
        self._captured_signals.append(sig)
        if self._should_exit and sig == signal.SIGINT:
            self.force_exit = True
            event = getattr(self, "_force_event", None)
            if event is not None:
                event.set()
        else:
            self.should_exit = True

    @contextlib.contextmanager
    def _capture_signals(self) -> Any:
        # Signal handlers can only be set in the main thread.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _describe(sock: socket.socket, scheme: str) -> str:
    name = sock.getsockname()
    if sock.family == getattr(socket, "AF_UNIX", -1):
        return f"unix:{name}"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{name[0]}]:{name[1]}"
    return f"{scheme}://{name[0]}:{name[1]}"


def _is_stale_socket(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return True
    finally:
        probe.close()
    return False


__all__ = ["Server", "ServerContext"]

if sys.platform == "win32":  # pragma: no cover
    HANDLED_SIGNALS = (signal.SIGINT, signal.SIGBREAK)  # type: ignore[attr-defined]
