"""The supervisor of ``--workers N``: keeps N worker processes serving.

Theory of operation
-------------------
The parent bound every listener before it got here; it never serves a
request.  It spawns the workers (:class:`~monoceros.supervisors._process.Worker`)
and then sleeps in one ``wait()`` on everything that can need it: a wakeup
socket (signals, and the reloader's file changes), each worker's pipe
(``ready``, ``pong``, ``failed``), each worker's process sentinel (it
exited).  The only timer is the next health check.

*Slots.*  ``target`` workers should be serving.  A worker holds a slot
unless it is STOPPING or is a replacement not yet ready (``replaces`` set).
After every event :meth:`_reconcile` spawns workers for empty slots, at
once after a worker exits unexpectedly, rate-limited when they keep dying.

*Replacement* (SIGHUP rolling restart, ``--limit-max-rss``): one worker at
a time gets a replacement, and only once the replacement is ready is the
old one told to stop (SIGTERM: it finishes its requests).  The sockets are
shared, so while both live the kernel hands connections to either, and
none is refused.  If the replacement cannot start, the old worker stays and
the restart is abandoned.

*Health*: every second each serving worker is pinged; its event loop
answers with its memory use.  One silent for ``--timeout-worker-healthcheck``
seconds is killed (SIGKILL) and replaced like any dead worker.

*Startup failure*: a worker that exits with code 3 before it was ready
(the app does not import, lifespan startup failed) would fail the same way
on every respawn, so the whole server stops with the worker's message.

*Stop*: the first SIGINT/SIGTERM asks every worker to stop gracefully, a
second forces them (they get SIGINT after SIGTERM: a worker's own "second
signal"), a third kills them.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import wait
from typing import Any

from monoceros.config import STARTUP_FAILURE, Config
from monoceros.errors import StartupError
from monoceros.supervisors._process import Worker, WorkerState

logger = logging.getLogger("monoceros.error")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HANDLED_SIGNALS = (*STOP_SIGNALS, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
PING_INTERVAL = 1.0
# A worker that keeps dying is respawned at most RESPAWN_BURST times per
# RESPAWN_WINDOW seconds; beyond that the next respawn waits.
RESPAWN_BURST = 5
RESPAWN_WINDOW = 10.0
# After --timeout-graceful-shutdown, how long workers get before SIGKILL.
KILL_GRACE = 5.0
# The byte the reloader writes to the wakeup socket (signals write their number).
WAKE_CHANGES = 0
_STARTING, _SERVING, _STOPPING = WorkerState.STARTING, WorkerState.SERVING, WorkerState.STOPPING


class Multiprocess:
    """Run ``workers`` processes of ``config`` on ``sockets`` until a stop signal.

    Raises (from :meth:`run`):
        StartupError: a worker could not start (its own message).
    """

    name = "parent"

    def __init__(self, config: Config, sockets: list[socket.socket], workers: int) -> None:
        self.config = config
        self.sockets = sockets
        self.target = workers
        self.workers: list[Worker] = []
        self.replace_queue: collections.deque[Worker] = collections.deque()
        self.stop_signals = 0
        self.failure: str | None = None
        self.crashes: collections.deque[float] = collections.deque()
        self.respawn_at = 0.0
        self.stop_deadline: float | None = None
        self.max_rss = config.limit_max_rss * 1024 * 1024 if config.limit_max_rss else 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._next_ping = 0.0

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        logger.info("Started %s process [%d]", self.name, os.getpid())
        with self._signals():
            try:
                self._reconcile()
                while self.workers or not self.stopping:
                    self._step()
            finally:
                for worker in self.workers:  # only when the loop itself failed
                    worker.kill()
                    worker.reap()
                self._wake_r.close()
                self._wake_w.close()
        logger.info("Stopping %s process [%d]", self.name, os.getpid())
        if self.failure is not None:
            raise StartupError(self.failure)

    @property
    def stopping(self) -> bool:
        return self.stop_signals > 0

    def _step(self) -> None:
        now = time.monotonic()
        deadlines = [self._next_ping]
        if self.respawn_at > now:
            deadlines.append(self.respawn_at)
        if self.stop_deadline is not None:
            deadlines.append(self.stop_deadline)
        timeout = max(0.0, min(deadlines) - now)
        waitables: list[Any] = [self._wake_r]
        for worker in self.workers:
            waitables += [worker.conn, worker.sentinel]
        ready = set(wait(waitables, timeout))
        if self._wake_r in ready:
            self._wakeups()
        for worker in list(self.workers):
            if worker.conn in ready:
                for message in worker.receive():
                    self._message(worker, message)
            if worker.sentinel in ready:
                self._exited(worker)
        self._tick(time.monotonic())
        self._reconcile()

    def _wakeups(self) -> None:
        try:
            data = self._wake_r.recv(4096)
        except BlockingIOError:  # pragma: no cover - woken, then drained by a previous step
            return
        for number in data:
            if number == WAKE_CHANGES:
                self.files_changed()
            else:
                self._signal(signal.Signals(number))

    # -- events --------------------------------------------------------------------------------
    def _message(self, worker: Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        worker.last_seen = time.monotonic()
        if kind == "pong":
            worker.rss = message[1]
            if (
                self.max_rss
                and worker.rss > self.max_rss
                and worker.state is _SERVING
                and worker not in self.replace_queue
                and not self._is_being_replaced(worker)
            ):
                    logger.warning(
                        "Worker [%d] uses %d MB, more than --limit-max-rss %d MB: replacing it",
                        worker.pid, worker.rss // (1024 * 1024), self.config.limit_max_rss,
                    )  # fmt: skip
                    self.replace_queue.append(worker)
                    self._advance_replacements()
        elif kind == "ready":
            if worker.state is _STARTING:
                worker.state = _SERVING
            logger.info("Worker [%d] ready", worker.pid)
            old = worker.replaces
            if old is not None:
                worker.replaces = None
                if old in self.workers and old.state is not _STOPPING:
                    logger.info("Stopping worker [%d], replaced by [%d]", old.pid, worker.pid)
                    old.terminate()
                self._advance_replacements()
        elif kind == "failed":
            worker.failure = message[1]

    def _exited(self, worker: Worker) -> None:
        how = worker.reap()
        self.workers.remove(worker)
        was = worker.state
        for other in self.workers:  # its replacement takes the slot as it is
            if other.replaces is worker:
                other.replaces = None
        if was is _STOPPING or self.stopping:
            logger.info("Worker [%d] stopped (%s)", worker.pid, how)
            return
        if was is _STARTING and worker.exitcode == STARTUP_FAILURE:
            self.startup_failed(worker)
            return
        if worker.replaces is not None:
            logger.error(
                "Worker [%d] died before it was ready (%s); keeping worker [%d], restart abandoned",
                worker.pid, how, worker.replaces.pid,
            )  # fmt: skip
            self.replace_queue.clear()
            return
        if worker.exitcode == 0 and was is _SERVING:
            # --limit-max-requests: the worker retires itself.
            logger.info("Worker [%d] exited (%s); starting a new one", worker.pid, how)
            return
        logger.error("Worker [%d] died (%s); starting a new one", worker.pid, how)
        self.crashes.append(time.monotonic())

    def startup_failed(self, worker: Worker) -> None:
        """A worker exited with code 3 before it was ready."""
        message = worker.failure or f"worker [{worker.pid}] failed to start"
        if worker.replaces is not None:
            logger.error(
                "New worker [%d] failed to start: %s; keeping worker [%d], restart abandoned",
                worker.pid, message, worker.replaces.pid,
            )  # fmt: skip
            self.replace_queue.clear()
            return
        logger.error("Worker [%d] failed to start: stopping the server", worker.pid)
        self.failure = message
        self._stop()

    def files_changed(self) -> None:
        """The reloader saw changes (nothing to do without one)."""

    def _signal(self, sig: signal.Signals) -> None:
        if sig in STOP_SIGNALS:
            if not self.stopping:
                logger.info("Received %s, stopping the workers gracefully", sig.name)
            self._stop()
        elif self.stopping:
            return
        elif sig == signal.SIGHUP:
            logger.info("Received SIGHUP, restarting the workers one at a time")
            self.restart_all()
        elif sig == signal.SIGTTIN:
            self.target += 1
            logger.info("Received SIGTTIN, increasing the number of workers to %d", self.target)
        else:  # SIGTTOU
            if self.target <= 1:
                logger.info("Received SIGTTOU, but one worker is the minimum")
                return
            self.target -= 1
            logger.info("Received SIGTTOU, decreasing the number of workers to %d", self.target)
            holders = self._slot_holders()
            if len(holders) > self.target:
                holders[-1].terminate()

    def _stop(self) -> None:
        self.stop_signals += 1
        self.replace_queue.clear()
        if self.stop_signals == 2:
            logger.info("Forcing the workers to stop")
        if self.stop_signals >= 3:
            for worker in self.workers:
                worker.kill()
            return
        for worker in self.workers:
            if worker.state is not _STOPPING or self.stop_signals == 2:
                worker.terminate()
        timeout = self.config.timeout_graceful_shutdown
        if timeout is not None and self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + timeout + KILL_GRACE

    def restart_all(self) -> None:
        """Replace every worker, one at a time, each only once its replacement is ready."""
        for worker in self._slot_holders():
            if worker not in self.replace_queue:
                self.replace_queue.append(worker)
        self._advance_replacements()

    # -- slots, replacements, health -------------------------------------------------------------
    def _slot_holders(self) -> list[Worker]:
        return [w for w in self.workers if w.state is not _STOPPING and w.replaces is None]

    def _is_being_replaced(self, worker: Worker) -> bool:
        return any(w.replaces is worker for w in self.workers)

    def _advance_replacements(self) -> None:
        if self.stopping or any(w.replaces is not None for w in self.workers):
            return  # one at a time
        while self.replace_queue:
            old = self.replace_queue.popleft()
            if old in self.workers and old.state is not _STOPPING:
                self._spawn(replaces=old)
                return
        logger.debug("Replacements done")

    def _spawn(self, replaces: Worker | None = None) -> Worker:
        worker = Worker(self.config, self.sockets, replaces)
        self.workers.append(worker)
        logger.info("Started worker [%d]", worker.pid)
        return worker

    def _reconcile(self) -> None:
        if self.stopping:
            return
        missing = self.target - len(self._slot_holders())
        if missing <= 0:
            return
        now = time.monotonic()
        while self.crashes and now - self.crashes[0] > RESPAWN_WINDOW:
            self.crashes.popleft()
        if len(self.crashes) > RESPAWN_BURST:
            if self.respawn_at <= now:
                self.respawn_at = self.crashes[0] + RESPAWN_WINDOW
                logger.warning(
                    "Workers died %d times in %.0f s: waiting %.1f s before starting another",
                    len(self.crashes), RESPAWN_WINDOW, self.respawn_at - now,
                )  # fmt: skip
            return
        self.respawn_at = 0.0
        for _ in range(missing):
            self._spawn()

    def _tick(self, now: float) -> None:
        if self.stop_deadline is not None and now >= self.stop_deadline:
            self.stop_deadline = None
            for worker in self.workers:
                logger.error("Worker [%d] did not stop in time: killing it", worker.pid)
                worker.kill()
        if now < self._next_ping:
            return
        self._next_ping = now + PING_INTERVAL
        limit = self.config.timeout_worker_healthcheck
        for worker in self.workers:
            if worker.state is not _SERVING:
                continue
            if now - worker.last_seen > limit:
                logger.error(
                    "Worker [%d] did not answer health checks for %d s: killing it", worker.pid, limit
                )
                worker.kill()
            else:
                worker.ping()

    # -- signals ---------------------------------------------------------------------------------
    def wake(self, byte: int) -> None:
        """Wake the loop from another thread (the reloader)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(bytes([byte]))

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        # Handlers do nothing: the wakeup fd carries the signal number to
        # the loop, which handles it outside of signal context.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, _ignore) for sig in HANDLED_SIGNALS}
        previous_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _ignore(sig: int, frame: Any) -> None:
    """Python-level handler so the wakeup fd is written; the loop does the work."""


__all__ = ["Multiprocess"]
