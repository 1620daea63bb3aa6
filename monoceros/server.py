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

A :class:`~monoceros.context.ServerContext` is what every connection shares: the app, the
limits, the default headers (refreshed once a second for ``Date``), the
counters.  Its once-a-second sweep is also what enforces the keep-alive and
request-head timeouts, so no request pays for a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Awaitable, Iterator
from typing import Any, cast

from monoceros.config import BindSpec, Config, LoadedConfig
from monoceros.context import ServerContext
from monoceros.errors import StartupError
from monoceros.lifespan import Lifespan

logger = logging.getLogger("monoceros.error")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# After the graceful-shutdown timeout, how long cancelled app calls get to
# clean up before lifespan shutdown runs anyway.
CANCEL_GRACE = 1.0


class Server:
    """Serve one :class:`~monoceros.config.Config` (uvicorn's ``Server`` API).

    ``await server.serve()`` runs until a signal or ``server.should_exit =
    True`` (from any thread); ``server.started`` turns True once every
    listener is bound.  A first SIGINT/SIGTERM stops gracefully, a second
    SIGINT (or ``force_exit = True``) stops at once.  Signals are only caught
    when serving in the main thread; the server returns normally after a
    signal (the command line then exits 0).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loaded: LoadedConfig | None = None
        self.ctx: ServerContext | None = None
        self.started = False
        self._should_exit = False
        self._force_exit = False
        self.listeners: list[asyncio.AbstractServer] = []
        self.addresses: list[str] = []
        self._exit_event: asyncio.Event | None = None
        self._force_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_event: threading.Event = threading.Event()
        self._captured_signals: list[int] = []
        self._socket_files: list[str] = []

    # uvicorn users set ``server.should_exit = True``, from any thread.
    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value:
            self._wake(self._exit_event)

    @property
    def force_exit(self) -> bool:
        return self._force_exit

    @force_exit.setter
    def force_exit(self, value: bool) -> None:
        self._force_exit = value
        if value:
            self._should_exit = True
            self._wake(self._exit_event)
            self._wake(self._force_event)

    def _wake(self, event: asyncio.Event | None) -> None:
        # Thread-safe (and signal-handler-safe): the loop may be blocked in
        # select(), call_soon_threadsafe writes to its self-pipe.
        loop = self._loop
        if event is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)

    def wait_started(self, timeout: float | None = None) -> bool:
        """Block (another thread) until the server listens; False on timeout."""
        return self._started_event.wait(timeout)

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        """Run :meth:`serve` in a new event loop (``--loop``)."""
        from monoceros.loops import loop_factory, run_in_new_loop

        factory = loop_factory(self.config.loop)
        run_in_new_loop(lambda: self.serve(sockets=sockets), factory, abandon=lambda: self._force_exit)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, serve until asked to stop, shut down gracefully.

        With ``sockets`` the server listens on those (already bound) sockets
        instead of the configured addresses.

        Raises:
            ConfigError: a setting or the application is wrong.
            StartupError: a listener could not be bound, or the application's
                lifespan startup failed.
        """
        with self.capture_signals():
            await self._serve(sockets)

    async def _serve(self, sockets: list[socket.socket] | None) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._exit_event = asyncio.Event()
        self._force_event = asyncio.Event()
        if self._should_exit:
            self._exit_event.set()
        if self._force_exit:
            self._force_event.set()
        if self.loaded is None:
            self.loaded = self.config.load()
        loaded = self.loaded
        ctx = self.ctx = ServerContext(loaded, loop)
        ctx.on_max_requests = self._max_requests
        logger.info("Started server process [%d]", os.getpid())
        lifespan = Lifespan(loaded.app, loaded.lifespan, ctx.state)
        if not await self._unless_forced(lifespan.startup()):
            logger.info("Finished server process [%d]", os.getpid())
            return
        if lifespan.failed:
            raise StartupError("Application startup failed. Exiting.")
        try:
            await self._start_listeners(sockets)
        except BaseException:
            await self._unless_forced(lifespan.shutdown())
            raise
        if threading.current_thread() is threading.main_thread():
            # The server owns this process (the CLI, run(), a worker): all
            # that exists now (modules, the app, its startup state) lives as
            # long as it, so take it out of the collector's sight.  Otherwise
            # each full collection walks it all again (~20 ms here, a stall
            # every waiting connection sees: p99 of a Starlette app at c64
            # went from 28 ms to 3 ms).  A server embedded in a thread of
            # someone else's process leaves their heap alone.
            gc.collect()
            gc.freeze()
        self.started = True
        self._started_event.set()
        sweeper = loop.create_task(self._sweep_forever())
        try:
            await self._exit_event.wait()
        finally:
            try:
                await self._shutdown()
                if not self._force_exit:
                    await self._unless_forced(lifespan.shutdown())
            finally:
                sweeper.cancel()
                if ctx.eager is not None:
                    ctx.eager.close()
                if ctx.batched_access is not None:
                    ctx.batched_access.flush()
                self.started = False
                self._started_event.clear()
                logger.info("Finished server process [%d]", os.getpid())

    async def _unless_forced(self, aw: Awaitable[None], timeout: float | None = None) -> bool:
        """Await ``aw`` unless a forced exit (or ``timeout``) comes first; True if it finished."""
        task = asyncio.ensure_future(aw)
        force_event = self._force_event
        assert force_event is not None
        forced = asyncio.ensure_future(force_event.wait())
        try:
            await asyncio.wait((task, forced), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()
        if task.done():
            task.result()
            return True
        task.cancel()
        return False

    def _max_requests(self) -> None:
        limit = self.ctx.limit_max_requests if self.ctx else None
        logger.warning("Maximum request limit of %d exceeded. Terminating process.", limit)
        self.should_exit = True

    async def _sweep_forever(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        # callback_notify: a process manager (gunicorn's arbiter) restarts a
        # worker not heard from within timeout_notify; telling it from the
        # loop means a blocked loop is noticed.
        notify = self.config.callback_notify
        every = self.config.timeout_notify / 2
        notified = -every
        while True:
            await asyncio.sleep(1.0 - (time.time() % 1.0))
            ctx.sweep()
            if notify is not None and ctx.loop.time() - notified >= every:
                notified = ctx.loop.time()
                await notify()

    # -- listeners ---------------------------------------------------------------------
    async def _start_listeners(self, sockets: list[socket.socket] | None) -> None:
        from monoceros.protocols.http1 import HTTP11Protocol

        ctx = self.ctx
        loaded = self.loaded
        assert ctx is not None and loaded is not None
        loop = ctx.loop
        backlog = loaded.config.backlog

        def factory() -> HTTP11Protocol:
            return HTTP11Protocol(ctx)

        scheme = "https" if loaded.ssl else "http"
        self.addresses = []
        if sockets:
            for sock in sockets:
                server = await _serve_socket(loop, factory, sock, loaded, backlog)
                self.listeners.append(server)
                self.addresses.append(_describe(sock, scheme))
        else:
            for bind in loaded.binds:
                try:
                    server = await self._listen(bind, factory, loaded, backlog)
                except (OSError, StartupError) as exc:
                    self._close_listeners()
                    reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
                    raise StartupError(f"cannot listen on {bind}: {reason}") from None
                self.listeners.append(server)
                for sock in cast(Any, server).sockets:
                    self.addresses.append(_describe(sock, scheme))
        for address in self.addresses:
            logger.info("Monoceros running on %s (Press CTRL+C to quit)", address)

    async def _listen(
        self, bind: BindSpec, factory: Any, loaded: LoadedConfig, backlog: int
    ) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        if bind.kind == "unix":
            sock = _bind_unix(bind.path)
            self._socket_files.append(bind.path)  # ours to remove at exit
            return await _serve_socket(loop, factory, sock, loaded, backlog)
        if bind.kind == "fd":
            try:
                sock = socket.socket(fileno=bind.fd)
            except OSError as exc:
                raise StartupError(f"file descriptor {bind.fd} is not a socket ({exc.strerror})") from None
            return await _serve_socket(loop, factory, sock, loaded, backlog)
        return await loop.create_server(
            factory, host=bind.host, port=bind.port, ssl=loaded.ssl, backlog=backlog, reuse_address=True
        )

    def _close_listeners(self) -> None:
        for server in self.listeners:
            server.close()
        for path in self._socket_files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._socket_files = []
        self.listeners = []

    # -- shutdown ----------------------------------------------------------------------
    async def _shutdown(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        logger.info("Shutting down")
        ctx.accepting = False
        self._close_listeners()
        # Connections accepted just before the close get their
        # connection_made on this turn of the loop.
        await asyncio.sleep(0)
        timeout = self.config.timeout_graceful_shutdown
        if not await self._unless_forced(ctx.wait_drained(), timeout):
            if not self._force_exit:
                logger.error("Cancel %d running task(s), timeout graceful shutdown exceeded", ctx.active)
            tasks = _request_tasks(ctx)
            for conn in list(ctx.connections):
                conn.force_close()
            for task in tasks:
                task.cancel()
            if tasks and not self._force_exit:
                # Let the cancelled calls clean up before lifespan shutdown;
                # one that ignores the cancellation is not waited for long.
                await asyncio.wait(tasks, timeout=CANCEL_GRACE)
        ctx.drain_changed = None

    def handle_exit(self, sig: int, frame: Any = None) -> None:
        """A signal arrived: the first one stops gracefully, a second SIGINT forces."""
        self._captured_signals.append(sig)
        if self._should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True
            loop = self._loop
            if not self.started and loop is not None:
                # Nothing else would tell the user the signal was seen while
                # the app's startup still runs (logged from the loop, not
                # from inside the signal handler).
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(
                        logger.info, "Stopping once application startup finishes. (CTRL+C to force quit)"
                    )

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Route SIGINT/SIGTERM to :meth:`handle_exit` while serving (uvicorn's
        name: a subclass that embeds the server may override it)."""
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


async def _serve_socket(
    loop: asyncio.AbstractEventLoop, factory: Any, sock: socket.socket, loaded: LoadedConfig, backlog: int
) -> asyncio.AbstractServer:
    if sock.family == getattr(socket, "AF_UNIX", -1):
        return await loop.create_unix_server(factory, sock=sock, ssl=loaded.ssl, backlog=backlog)
    return await loop.create_server(factory, sock=sock, ssl=loaded.ssl, backlog=backlog)


def _request_tasks(ctx: ServerContext) -> list[asyncio.Task[Any]]:
    """The tasks running this server's request cycles, including those whose
    connection is gone (an app call may outlive its response)."""
    from monoceros.protocols.cycle import RequestCycle

    code = RequestCycle.run_asgi.__code__
    tasks = []
    for task in asyncio.all_tasks(ctx.loop):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if getattr(coro, "cr_code", None) is code and frame is not None:
            cycle = frame.f_locals.get("self")
            if isinstance(cycle, RequestCycle) and cycle.ctx is ctx:
                tasks.append(task)
    if ctx.eager is not None:
        tasks += ctx.eager.busy  # calls that waited after an eager first step
    return tasks


def _describe(sock: socket.socket, scheme: str) -> str:
    name = sock.getsockname()
    if sock.family == getattr(socket, "AF_UNIX", -1):
        return f"unix:{name}"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{name[0]}]:{name[1]}"
    return f"{scheme}://{name[0]}:{name[1]}"


def _bind_unix(path: str) -> socket.socket:
    """A unix socket bound at ``path``, after removing a stale socket file there.

    We bind it ourselves because asyncio's ``create_unix_server(path=...)``
    deletes any socket file at the path, even one a live server listens on.
    """
    _remove_stale_socket(path)
    if os.path.lexists(path) and not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise StartupError("the path exists and is not a socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o666)
    except OSError:
        sock.close()
        raise
    return sock


def _remove_stale_socket(path: str) -> None:
    """Remove a unix socket file nobody listens on (left by a crash).

    Anything else at ``path`` (a live socket, a regular file) is left alone:
    binding then fails with a clear error instead of deleting a user's file.
    """
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except OSError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        with contextlib.suppress(OSError):
            os.unlink(path)
    except OSError:
        pass
    finally:
        probe.close()


__all__ = ["Server", "ServerContext"]

if sys.platform == "win32":  # pragma: no cover
    HANDLED_SIGNALS = (signal.SIGINT, signal.SIGBREAK)  # type: ignore[attr-defined]
