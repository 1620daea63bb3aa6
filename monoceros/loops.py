"""Event loops for ``--loop``, and running the server in one.

``auto`` is uvloop when it is installed, else asyncio; ``none`` is asyncio's
own loop (uvicorn's spelling); ``module:factory`` imports a callable that
returns a new event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, cast

from monoceros.errors import ConfigError


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory for ``auto``, ``asyncio``, ``none``, ``uvloop`` or ``module:factory``."""
    if name in ("asyncio", "none"):
        return asyncio.new_event_loop
    if ":" in name:
        from monoceros.importer import import_from_string

        factory = import_from_string(name)
        if not callable(factory):
            raise ConfigError(f"--loop {name!r} is not callable")
        return cast(Callable[[], asyncio.AbstractEventLoop], factory)
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ConfigError("--loop uvloop needs uvloop: pip install 'monoceros[standard]'") from None
        return asyncio.new_event_loop
    uvloop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return uvloop_factory


def run_in_new_loop(
    main: Callable[[], Coroutine[Any, Any, None]],
    factory: Callable[[], asyncio.AbstractEventLoop],
    abandon: Callable[[], bool],
) -> None:
    """Run ``main()`` to completion in a new loop, then clean the loop up.

    Like :func:`asyncio.run` with a loop factory (which Python 3.10 lacks),
    except that when ``abandon()`` is true at the end (a forced exit) the
    tasks still running are not waited for: a task that ignores
    cancellation must not keep a user's second Ctrl+C from working.
    """
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
    finally:
        try:
            if not abandon():
                _cancel_all_tasks(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            context = {"message": "unhandled exception during shutdown", "exception": task.exception()}
            loop.call_exception_handler({**context, "task": task})


__all__ = ["loop_factory", "run_in_new_loop"]
