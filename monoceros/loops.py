"""Event loop factories for ``--loop``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from monoceros.errors import ConfigError


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory for ``auto`` (uvloop when installed), ``asyncio`` or ``uvloop``."""
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ConfigError("--loop uvloop needs uvloop: pip install 'monoceros[standard]'") from None
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


__all__ = ["loop_factory"]
