"""Eager start: an app call's first step runs at once, without a Task of its own.

Theory of operation
-------------------
Most requests to a web app never wait for anything: the app builds its answer
and sends it in one go.  Giving each such call an :class:`asyncio.Task` costs
more than the rest of the server's work for the request (the Task object, its
registration, a handle in the loop's queue, a turn of the loop; measured with
bench/run.py, ~1.3 us of ~14 us).  So the carrier hands the app's coroutine to
:meth:`EagerStart.start`, which runs its first step right away, in the call's
own context, the way Python 3.12's eager tasks do, and then:

* the coroutine finished (the usual case): no Task was made;
* it is waiting for something: a Task takes it over from where it stopped and
  runs it to the end, exactly as if it had run in that Task from the start.

What the app sees must not change, so the first step does not run "outside"
any task: ``asyncio.current_task()`` must name the Task that goes on with the
call if it waits, because anyio's cancel scopes, asyncio's ``timeout()`` and
``TaskGroup`` (and through them Starlette's ``BaseHTTPMiddleware``) remember
the task they were entered in.  That Task cannot be created on demand (a C
Task schedules its first step when it is created), so one is made ahead:
an idle *worker*, parked on a future.  During a first step the worker is
entered as the loop's current task (``asyncio.tasks._enter_task``, what a
Task step itself does).  If the call finishes, the worker is still idle and
serves the next call.  If the call waits, the future it waits on goes to the
worker through the parking future; the worker wakes, drives the coroutine
(each step in the call's context, see :func:`_drive`) and ends with it; the
next call gets a new worker.  A worker is used by one call that waits, never
shared by two, so its cancellation, ``cancelling()`` count and anyio state
belong to that call alone.

First steps never nest.  A call started while a first step runs (a pipelined
request, parsed inside the previous response's ``send``) waits in a queue and
gets its first step right after the running one, in the same loop: a
pipelined batch is answered in one go without a Task or a loop turn per
request.  At most ``RUN_MAX`` first steps run that way; the calls queued
after those get Tasks, so one client's long pipeline takes turns with the
other connections.  A call started from inside a Task (a worker, the previous
request's Task) gets a Task of its own, as before, since a first step cannot
run while another task is current.

A worker the app cancelled during a first step (``current_task().cancel()``)
is not used again; the call, if it waits, goes on in a fresh Task that first
delivers that cancellation, as the cancelled Task would have.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from asyncio.tasks import _enter_task, _leave_task  # no public names for what a Task step does
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final, Protocol, cast

try:  # 3.11's asyncio.current_task() is Python code around this dict: look it up directly
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]

    _task_of = _current_tasks.get
except ImportError:  # pragma: no cover - Pythons whose current_task() is C
    _task_of = asyncio.current_task


class Carried(Protocol):
    """What the Task that runs a call is recorded on (a request cycle)."""

    task: asyncio.Task[None] | None


_Job = tuple[Coroutine[Any, Any, None], contextvars.Context, Any]
_DONE: Final[Any] = object()  # what a first step "waits" on when the call finished
# The most first steps one start() runs (the call, then those started during
# the steps): a client that pipelines hundreds of requests in one packet gets
# this many answered at once, the rest in Tasks that take turns with the other
# connections, so it cannot hold the loop for long.
RUN_MAX: Final = 32


@types.coroutine
def _drive(
    coro: Coroutine[Any, Any, None], context: contextvars.Context, waiting: Any
) -> Generator[Any, Any, None]:
    """Go on with ``coro``, which stopped at ``waiting`` (what it yielded to
    its Task: a future, or None for a bare yield), each step in ``context``.
    Inside a Task this is ``yield from`` with the call's context; a plain
    ``await coro`` cannot resume a coroutine that is awaiting something."""
    run = context.run
    send = coro.send
    throw = coro.throw
    while True:
        try:
            yield waiting
        except BaseException as exc:  # a cancellation (or anything thrown in) goes to the app
            try:
                waiting = run(throw, exc)
            except StopIteration:
                return
        else:
            try:
                waiting = run(send, None)
            except StopIteration:
                return


async def _cancelled(coro: Coroutine[Any, Any, None], context: contextvars.Context) -> None:
    """Go on with a call whose Task was cancelled during its first step: the
    cancellation reaches it where it waits, as it would have in that Task."""
    try:
        waiting = context.run(coro.throw, asyncio.CancelledError())
    except StopIteration:
        return
    await _drive(coro, context, waiting)


class EagerStart:
    """Starts app calls on one loop (see the module docstring)."""

    __slots__ = ("_deferred", "_idle", "_loop", "_park", "_queue", "_stepping", "busy")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._idle: asyncio.Task[None] | None = None  # the parked worker
        self._park: asyncio.Future[_Job] | None = None  # what it is parked on
        self._stepping = False  # a first step is running
        self._queue: deque[tuple[Coroutine[Any, Any, None], contextvars.Context, Carried]] = deque()
        # Workers carrying a call that waited (server shutdown cancels them).
        self.busy: set[asyncio.Task[None]] = set()
        self._deferred: list[Callable[[], None]] = []  # see defer()

    def defer(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once the callbacks of this turn of the loop have run.

        A carrier holds the writes of calls it starts eagerly until then, so
        that they leave together after every read of the turn, as the writes
        of app Tasks would: a write right after each read, with the next read
        and app call in between, finds the client asleep again each time, and
        waking it costs the server more than the Task saved (on this VM,
        Starlette ran 13 % slower that way: bench/run.py, perf)."""
        if not self._deferred:
            self._loop.call_soon(self._run_deferred)
        self._deferred.append(fn)

    def _run_deferred(self) -> None:
        deferred = self._deferred
        self._deferred = []
        for fn in deferred:
            fn()

    def start(
        self,
        coro: Coroutine[Any, Any, None],
        context: contextvars.Context,
        owner: Carried,
        hold: Callable[[], None] | None = None,
    ) -> None:
        """Run ``coro`` in ``context``; ``owner.task`` is set to the Task that
        carries it, if one does (it stays None for a call done in its first
        step).  ``hold`` is called first if the call starts eagerly (see
        :meth:`defer`)."""
        if self._stepping:
            if hold is not None:
                hold()
            self._queue.append((coro, context, owner))
            return
        loop = self._loop
        if _task_of(loop) is not None:
            owner.task = loop.create_task(coro, context=context)
            return
        if hold is not None:
            hold()
        self._stepping = True
        queue = self._queue
        steps = RUN_MAX
        try:
            while True:  # this call, then those started during its first step
                worker = self._idle
                if worker is None or worker.cancelling():
                    # (A worker cancelled while idle, through a Task reference an
                    # earlier call kept: that cancellation is nobody's now.)
                    self._park = loop.create_future()
                    worker = self._idle = loop.create_task(self._work(self._park))
                _enter_task(loop, worker)
                try:
                    # The first step, as coro.send(None); next() with a default
                    # ends a call that returns without a StopIteration raised
                    # through here (a third of this function's cost when
                    # compiled, where a caught exception records a traceback).
                    waiting = context.run(next, coro.__await__(), _DONE)
                except asyncio.CancelledError:
                    # Done (a call ending cancelled ends quietly, as in its Task).
                    waiting = _DONE
                finally:
                    _leave_task(loop, worker)
                    if worker.cancelling():  # cancelled during the step: not used again
                        self._idle = None
                        self._park = None
                if waiting is not _DONE:
                    self._hand_over(worker, coro, context, waiting, owner)
                steps -= 1
                if not queue or not steps:
                    return
                coro, context, owner = queue.popleft()
        finally:
            self._stepping = False
            # Left over after RUN_MAX first steps (or an exception): Tasks,
            # which take turns with every other connection.
            while queue:
                coro, context, owner = queue.popleft()
                owner.task = loop.create_task(coro, context=context)

    def _hand_over(
        self,
        worker: asyncio.Task[None],
        coro: Coroutine[Any, Any, None],
        context: contextvars.Context,
        waiting: Any,
        owner: Carried,
    ) -> None:
        """The call waits: a Task goes on with it, its worker if it can."""
        park = self._park
        if park is None:  # its worker was cancelled: a fresh Task delivers that
            owner.task = self._loop.create_task(_cancelled(coro, context))
            return
        self._idle = None
        self._park = None
        park.set_result((coro, context, waiting))
        self.busy.add(worker)
        owner.task = worker

    async def _work(self, park: asyncio.Future[_Job]) -> None:
        coro, context, waiting = await park
        try:
            await _drive(coro, context, waiting)
        finally:
            self.busy.discard(cast("asyncio.Task[None]", asyncio.current_task(self._loop)))

    def close(self) -> None:
        """Cancel the idle worker (at the end of serving)."""
        worker = self._idle
        self._idle = None
        self._park = None
        if worker is not None:
            worker.cancel()


__all__ = ["RUN_MAX", "Carried", "EagerStart"]
