"""Minimal ASGI 3 type aliases shared by the middlewares.

They are deliberately loose (``MutableMapping[str, Any]``): the middlewares
only read and write a handful of keys and must not reject extension keys.
They will later be re-exported from a package-wide types module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGI2App", "ASGI2Instance", "ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: What an ASGI 2 application returns for a scope: a coroutine function
#: taking ``receive`` and ``send``.
ASGI2Instance = Callable[[Receive, Send], Awaitable[None]]
ASGI2App = Callable[[Scope], ASGI2Instance]
