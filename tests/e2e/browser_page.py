"""The ASGI app the real-browser test (``test_browser.py``) serves.

``GET /`` returns :data:`PAGE`, whose script opens a WebSocket to ``/ws`` on the
same host and writes every event into ``<ol id="log">``; ``/ws`` talks to it:

1. server -> page: text ``welcome ü✓`` (non-ASCII, so UTF-8 goes both ways)
2. page -> server: text ``ping ü✓``;      server -> page: ``pong ü✓``
3. page -> server: bytes 01 02 03 ff;      server -> page: the bytes reversed
4. page -> server: text ``bye``;           server closes with 4000 ``see you``

The page sets ``data-state`` on ``<body>`` to ``done`` when the socket closes (or
``error``), so the test knows when to read the log.  What the app received
and the close it saw are kept in :class:`Exchange` for the test to compare.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WELCOME = "welcome ü✓"
PING = "ping ü✓"
BINARY = bytes([1, 2, 3, 255])
CLOSE_CODE, CLOSE_REASON = 4000, "see you"

# What the page's log must show, in order.
EXPECTED_LOG = [
    "open",
    f"text {WELCOME}",
    "text pong ü✓",
    "binary 255,3,2,1",
    f"close {CLOSE_CODE} {CLOSE_REASON}",
]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>monoceros websocket</title></head>
<body data-state="loading"><ol id="log"></ol>
<script>
const log = (text) => {
  const li = document.createElement("li");
  li.textContent = text;
  document.getElementById("log").appendChild(li);
};
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.binaryType = "arraybuffer";
let step = 0;
ws.onopen = () => log("open");
ws.onmessage = (event) => {
  if (typeof event.data === "string") {
    log("text " + event.data);
  } else {
    log("binary " + Array.from(new Uint8Array(event.data)).join(","));
  }
  step += 1;
  if (step === 1) ws.send("ping ü✓");
  else if (step === 2) ws.send(new Uint8Array([1, 2, 3, 255]));
  else if (step === 3) ws.send("bye");
};
ws.onerror = () => { log("error"); document.body.dataset.state = "error"; };
ws.onclose = (event) => {
  log(`close ${event.code} ${event.reason}`);
  if (document.body.dataset.state !== "error") document.body.dataset.state = "done";
};
</script></body></html>
""".encode()


@dataclass
class Exchange:
    """What the WebSocket endpoint received from the page."""

    received: list[str | bytes] = field(default_factory=list)
    path: str = ""


def make_app(exchange: Exchange) -> Callable[[Message, Receive, Send], Awaitable[None]]:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            status, body = (200, PAGE) if scope["path"] == "/" else (404, b"not found")
            headers = [(b"content-type", b"text/html; charset=utf-8" if status == 200 else b"text/plain")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "websocket":
            return
        exchange.path = scope["path"]
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": WELCOME})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message["text"] if message.get("text") is not None else message["bytes"]
            exchange.received.append(data)
            if data == PING:
                await send({"type": "websocket.send", "text": "pong ü✓"})
            elif isinstance(data, bytes):
                await send({"type": "websocket.send", "bytes": data[::-1]})
            else:
                await send({"type": "websocket.close", "code": CLOSE_CODE, "reason": CLOSE_REASON})
                return

    return app
