"""Run an ASGI 2 ("double-callable") application under an ASGI 3 server."""

from __future__ import annotations

from monoceros.middleware._asgi import ASGI2App, Receive, Scope, Send

__all__ = ["ASGI2Middleware"]


class ASGI2Middleware:
    """Adapt an ASGI 2 application to the ASGI 3 single-callable interface.

    An ASGI 2 application is called with the scope only and returns an
    instance, which is then awaited with ``receive`` and ``send``.  Every scope
    type (``http``, ``websocket``, ``lifespan``) is forwarded unchanged, so the
    application's own lifespan support is preserved.

    Args:
        app: the ASGI 2 application.
    """

    def __init__(self, app: ASGI2App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Instantiate the application for ``scope`` and run the instance."""
        instance = self.app(scope)
        await instance(receive, send)
