"""ASGI WebSocket apps for the WebSocket benchmark (``bench/wsbench.py``) and
the Autobahn|Testsuite run (``scripts/autobahn``).

* ``app`` -- accepts every WebSocket and echoes each text and binary message
  back unchanged until the client disconnects.  Plain HTTP requests get
  ``bench.apps.plaintext`` (``200 Hello, world!``), so the readiness probe of
  ``bench/run.py`` works unchanged, and lifespan is handled the same way.

The app is deliberately minimal so the numbers measure the server's WebSocket
path (handshake, framing, masking, UTF-8 checks, the ASGI cycle), not the app.
"""

from __future__ import annotations

from bench.apps import Receive, Scope, Send, plaintext

__all__ = ["app"]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        await plaintext(scope, receive, send)
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
