"""Worker processes: spawned with the bound sockets, linked to the parent by a pipe.

Theory of operation
-------------------
A worker is a fresh interpreter (multiprocessing's ``spawn`` start method:
no fork of a parent that holds threads, locks or an event loop).  It
inherits the listening sockets the parent bound (their descriptors travel
with the spawn, nothing is bound again) and one end of a duplex pipe.  Over
the pipe the worker sends, as small pickled tuples:

- ``("ready",)`` once its server listens;
- ``("pong", rss_bytes)`` in answer to each ``"ping"`` the parent sends;
- ``("failed", message)`` when it could not start (bad app, lifespan
  startup failed), just before it exits with code 3.

Pings are answered *from the worker's event loop*, not from the pipe's
thread, so a worker whose loop is stuck (an application blocking it
forever) stops answering and the parent replaces it.  Before the server
runs (imports, lifespan startup) the worker is not pinged: the parent waits
for ``ready``.

:class:`WorkerState` is the parent's view of one worker:

    STARTING --ready--> SERVING --terminate()--> STOPPING --exit--> (reaped)
        \\______________________terminate()_______/
"""

from __future__ import annotations

import contextlib
import enum
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from monoceros.config import STARTUP_FAILURE, Config
from monoceros.errors import ConfigError, StartupError

logger = logging.getLogger("monoceros.error")

_spawn = multiprocessing.get_context("spawn")


class WorkerState(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"


class Worker:
    """The parent's handle on one worker process.

    Args:
        config: what the worker serves (sent to it pickled).
        sockets: the bound listeners it inherits.
        replaces: the worker this one takes over from once it is ready
            (rolling restart, recycling); None for a plain new worker.
    """

    def __init__(self, config: Config, sockets: list[socket.socket], replaces: Worker | None = None) -> None:
        self.conn, child_conn = _spawn.Pipe(duplex=True)
        from monoceros.cli import worker_process

        self.process = _spawn.Process(
            target=worker_process, args=(config, sockets, child_conn), name="monoceros-worker", daemon=False
        )
        self.process.start()
        child_conn.close()
        self.pid: int = self.process.pid or 0
        self.sentinel: int = self.process.sentinel
        self.state = WorkerState.STARTING
        self.replaces = replaces
        self.started_at = time.monotonic()
        self.last_seen = self.started_at
        self.rss = 0
        self.failure: str | None = None
        self.signals_sent = 0

    def __repr__(self) -> str:
        return f"<Worker {self.pid} {self.state.value}>"

    def ping(self) -> None:
        with contextlib.suppress(OSError):  # it is exiting; its sentinel tells the rest
            self.conn.send("ping")

    def receive(self) -> list[tuple[Any, ...]]:
        """Every message waiting on the pipe (an empty list once it closed)."""
        messages = []
        try:
            while self.conn.poll():
                messages.append(self.conn.recv())
        except (EOFError, OSError):
            pass
        return messages

    def terminate(self) -> None:
        """Ask for a graceful stop (SIGTERM); a second call forces (SIGINT after SIGTERM)."""
        self.state = WorkerState.STOPPING
        self._signal(signal.SIGINT if self.signals_sent else signal.SIGTERM)
        self.signals_sent += 1

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone; reaped through its sentinel
            os.kill(self.pid, sig)

    def reap(self) -> str:
        """Collect the exited process; how it ended, for the log."""
        self.process.join()
        self.conn.close()
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"signal {signal.Signals(-code).name}"
        return f"exit code {code}"

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode


# -- inside the worker ----------------------------------------------------------------------------


def serve_worker(config: Config, sockets: list[socket.socket], conn: Connection) -> int:
    """Run one worker's server on the inherited sockets; its exit code.

    Errors before the server is ready are reported to the parent and give
    :data:`~monoceros.config.STARTUP_FAILURE`; the parent decides whether
    the whole server stops (``--workers``) or waits for a fix (``--reload``).
    """
    from monoceros.server import Server

    server = Server(config)
    link = _ParentLink(server, conn)
    link.start()
    try:
        server.run(sockets=sockets)
    except (ConfigError, StartupError) as exc:
        if link.ready:
            raise
        link.send(("failed", " ".join(str(exc).split())))
        return STARTUP_FAILURE
    except Exception as exc:
        if link.ready:
            raise
        # An import that raises (a syntax error while editing with --reload):
        # the traceback says where.
        logger.error("Error loading the application", exc_info=exc)
        link.send(("failed", f"cannot load the application: {type(exc).__name__}: {exc}"))
        return STARTUP_FAILURE
    return 0


class _ParentLink:
    """The worker's end of the pipe: announces readiness, answers pings from the loop."""

    def __init__(self, server: Any, conn: Connection) -> None:
        self.server = server
        self.conn = conn
        self.ready = False
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._run, name="monoceros-parent-link", daemon=True).start()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock, contextlib.suppress(OSError):  # the parent is gone
            self.conn.send(message)

    def _run(self) -> None:
        self.server.wait_started()
        self.ready = True
        self.send(("ready",))
        while True:
            try:
                self.conn.recv()
            except (EOFError, OSError):
                return
            ctx = self.server.ctx
            try:
                ctx.loop.call_soon_threadsafe(self._pong)
            except RuntimeError:  # the loop is closed: the worker is exiting
                return

    def _pong(self) -> None:
        self.send(("pong", resident_memory()))


def resident_memory() -> int:
    """This process's resident set size in bytes."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux: the peak is what the OS tells
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


__all__ = ["Worker", "WorkerState", "resident_memory", "serve_worker"]
