"""EagerStart in memory: the edge cases of its bookkeeping (tests/e2e/test_eager.py
shows on a real server that apps cannot tell it from a Task per call)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from monoceros.protocols.eager import RUN_MAX, EagerStart


def in_loop(fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """A plain test that runs the coroutine function ``fn`` in a new event loop."""

    @functools.wraps(fn)
    def test() -> None:
        asyncio.run(fn())

    return test


async def start_now(eager: EagerStart, coro: Coroutine[Any, Any, None]) -> Owner:
    """``eager.start(coro)`` from a plain loop callback; the owner it filled in."""
    owner = Owner()
    context = contextvars.copy_context()
    await _from_callback(asyncio.get_running_loop(), lambda: eager.start(coro, context, owner))
    return owner


class Owner:
    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None


def _from_callback(loop: asyncio.AbstractEventLoop, fn: Any) -> asyncio.Future[Any]:
    """Run ``fn`` from a plain loop callback (no task current), as a protocol's
    ``data_received`` is."""
    done: asyncio.Future[Any] = loop.create_future()

    def call() -> None:
        try:
            done.set_result(fn())
        except BaseException as exc:  # handed to the test
            done.set_exception(exc)

    loop.call_soon(call)
    return done


@in_loop
async def test_a_call_done_in_its_first_step_needs_no_task() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)
    seen: list[Any] = []

    async def call() -> None:
        seen.append(asyncio.current_task())

    owners = [Owner(), Owner()]
    await _from_callback(loop, lambda: [eager.start(call(), contextvars.copy_context(), o) for o in owners])
    assert [o.task for o in owners] == [None, None]
    # Both ran as the same idle worker, which is a real, pending Task.
    assert seen[0] is seen[1] and isinstance(seen[0], asyncio.Task) and not seen[0].done()
    assert not eager.busy
    eager.close()
    await asyncio.sleep(0)
    assert seen[0].cancelled()


@in_loop
async def test_a_call_that_waits_goes_on_in_its_worker() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)
    gate = loop.create_future()
    tasks: list[Any] = []
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var")

    async def call(n: int) -> int:
        var.set(n)
        tasks.append(asyncio.current_task())
        await gate
        tasks.append(asyncio.current_task())
        return var.get()

    owner = await start_now(eager, call(1))
    worker = owner.task
    assert worker is tasks[0] and worker in eager.busy
    # The next call gets a new worker.
    other = await start_now(eager, call(2))
    assert other.task is tasks[1] and other.task is not worker
    gate.set_result(None)
    await asyncio.gather(worker, other.task)
    assert tasks[2:] == [worker, other.task] or tasks[2:] == [other.task, worker]
    assert not eager.busy
    eager.close()


@in_loop
async def test_calls_started_during_a_first_step_run_after_it_in_order() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)
    order: list[str] = []
    owners = [Owner() for _ in range(3)]

    async def inner(name: str) -> None:
        order.append(name)

    async def outer() -> None:
        order.append("outer start")
        eager.start(inner("a"), contextvars.copy_context(), owners[1])
        eager.start(inner("b"), contextvars.copy_context(), owners[2])
        order.append("outer end")

    await _from_callback(loop, lambda: eager.start(outer(), contextvars.copy_context(), owners[0]))
    assert order == ["outer start", "outer end", "a", "b"]
    assert [o.task for o in owners] == [None, None, None]
    eager.close()


@in_loop
async def test_inside_a_task_a_call_gets_its_own_task() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)
    owner = Owner()
    ran: list[Any] = []

    async def call() -> None:
        ran.append(asyncio.current_task())

    eager.start(call(), contextvars.copy_context(), owner)  # this test is a task
    assert isinstance(owner.task, asyncio.Task) and not ran
    await owner.task
    assert ran == [owner.task]
    eager.close()


@in_loop
async def test_an_escaping_base_exception_leaves_no_queued_call_behind() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)
    queued = Owner()
    ran: list[str] = []

    class Stop(BaseException):
        pass

    async def later() -> None:
        ran.append("later")

    async def boom() -> None:
        eager.start(later(), contextvars.copy_context(), queued)
        raise Stop

    with pytest.raises(Stop):
        await _from_callback(loop, lambda: eager.start(boom(), contextvars.copy_context(), Owner()))
    assert isinstance(queued.task, asyncio.Task)  # handed to a task, not lost
    await queued.task
    assert ran == ["later"]
    eager.close()


@in_loop
async def test_a_call_ending_cancelled_in_its_first_step_is_quiet() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)

    async def call() -> None:
        raise asyncio.CancelledError

    owner = await start_now(eager, call())
    assert owner.task is None
    eager.close()


@in_loop
async def test_a_worker_cancelled_during_a_first_step_is_not_reused() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)
    seen: list[Any] = []

    async def cancels_itself_and_waits() -> None:
        task = asyncio.current_task()
        assert task is not None
        seen.append(task)
        task.cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            seen.append("cancelled")

    async def cancels_itself() -> None:
        task = asyncio.current_task()
        assert task is not None
        seen.append(task)
        task.cancel()

    owner = await start_now(eager, cancels_itself_and_waits())
    assert owner.task is not None and owner.task is not seen[0]
    await owner.task
    assert seen[1] == "cancelled"
    second = await start_now(eager, cancels_itself())
    third = await start_now(eager, cancels_itself())
    assert seen[2] is not seen[3]  # the cancelled worker was dropped
    assert second.task is None and third.task is None
    eager.close()


@pytest.mark.parametrize("catches", [False, True], ids=["re-raises", "catches"])
def test_cancelling_a_busy_worker_reaches_the_call(catches: bool) -> None:
    async def main() -> None:
        eager = EagerStart(asyncio.get_running_loop())
        log: list[str] = []

        async def call() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                log.append("cancelled")
                if not catches:
                    raise
            log.append("finished")

        task = (await start_now(eager, call())).task
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        if catches:
            await task
            assert log == ["cancelled", "finished"] and not task.cancelled()
        else:
            with pytest.raises(asyncio.CancelledError):
                await task
            assert log == ["cancelled"]
        assert not eager.busy
        eager.close()

    asyncio.run(main())


@in_loop
async def test_at_most_run_max_first_steps_in_one_go() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)
    order: list[int] = []
    owners = [Owner() for _ in range(RUN_MAX + 8)]

    async def inner(n: int) -> None:
        order.append(n)

    async def outer() -> None:
        for n, owner in enumerate(owners[1:], 1):
            eager.start(inner(n), contextvars.copy_context(), owner)

    def go() -> list[int]:
        eager.start(outer(), contextvars.copy_context(), owners[0])
        return list(order)  # what ran before start() returned

    assert await _from_callback(loop, go) == list(range(1, RUN_MAX))  # the outer call and RUN_MAX - 1 more
    late = [o.task for o in owners[RUN_MAX:]]
    assert all(isinstance(t, asyncio.Task) for t in late)
    assert all(o.task is None for o in owners[:RUN_MAX])
    await asyncio.gather(*late)  # type: ignore[arg-type]
    assert order == list(range(1, RUN_MAX + 8))
    eager.close()


@in_loop
async def test_cancelling_a_task_reference_kept_from_a_finished_call_hurts_no_later_call() -> None:
    loop = asyncio.get_running_loop()
    eager = EagerStart(loop)
    kept: list[Any] = []
    log: list[str] = []

    async def keeps_its_task() -> None:
        kept.append(asyncio.current_task())

    async def waits() -> None:
        try:
            await asyncio.sleep(0)
            log.append("not cancelled")
        except asyncio.CancelledError:
            log.append("cancelled")

    await start_now(eager, keeps_its_task())
    kept[0].cancel()  # e.g. a watchdog firing after the call was done
    owner = await start_now(eager, waits())
    assert owner.task is not None and owner.task is not kept[0]
    await owner.task
    assert log == ["not cancelled"]
    eager.close()
