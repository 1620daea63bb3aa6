"""Applications for the subprocess tests (``python -m monoceros procapps:app``).

They report what happens to them as lines on stderr (``app: ...``), which the
tests wait for and order against the server's own log lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

not_callable = 42
ballast: list[bytearray] = []


def say(text: str) -> None:
    # One write(2) per line: workers share the stderr pipe, and print() writes
    # the text and its newline separately, so two workers' lines could merge.
    os.write(sys.stderr.fileno(), f"app: {text}\n".encode())


async def respond(send: Any, body: bytes, status: int = 200, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello from startup"
            say("startup")
            await send({"type": "lifespan.startup.complete"})
            if os.environ.get("CRASH_AFTER_START"):  # a worker that keeps dying
                asyncio.get_running_loop().call_later(float(os.environ["CRASH_AFTER_START"]), os._exit, 1)
        else:
            say("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/`` hello, ``/slow?<seconds>``, ``/never``, ``/state``, ``/scheme``, ``/env?NAME``, ``/root``,
    ``/pid`` (which process), ``/grow?<MB>`` (hold memory), ``/block?<seconds>`` (block the loop)."""
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    path = scope["path"]
    if path == "/slow":
        seconds = float(scope["query_string"] or b"1")
        say(f"slow started {scope['client'][1] if scope['client'] else ''}")
        await asyncio.sleep(seconds)
        await respond(send, b"done")
    elif path == "/never":
        say("never started")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            say("never cancelled")
            raise
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first,", "more_body": True})
        say("stream started")
        await asyncio.sleep(float(scope["query_string"] or b"0.5"))
        await send({"type": "http.response.body", "body": b"last"})
    elif path == "/background":
        await respond(send, b"sent")
        say("background started")
        await asyncio.sleep(float(scope["query_string"] or b"0.5"))
        say("background done")
    elif path == "/pid":
        await respond(send, str(os.getpid()).encode())
    elif path == "/gc-frozen":  # objects the server froze at startup
        import gc

        await respond(send, str(gc.get_freeze_count()).encode())
    elif path == "/grow":
        # Holds N MB for the life of the process (--limit-max-rss tests).
        ballast.append(bytearray(int(scope["query_string"] or b"1") * 1024 * 1024))
        await respond(send, str(os.getpid()).encode())
    elif path == "/block":
        say("blocking the event loop")
        time.sleep(float(scope["query_string"] or b"60"))
        await respond(send, b"unblocked")
    elif path == "/state":
        await respond(send, json.dumps(scope["state"]).encode(), content_type=b"application/json")
    elif path == "/scheme":
        await respond(send, scope["scheme"].encode())
    elif path == "/env":
        await respond(send, os.environ.get(scope["query_string"].decode(), "").encode())
    elif path.endswith("/root"):
        body = json.dumps({"root_path": scope["root_path"], "path": path}).encode()
        await respond(send, body, content_type=b"application/json")
    else:
        await respond(send, b"hello")


async def no_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that only speaks HTTP (raises on anything else, as many do)."""
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope {scope['type']}")
    await respond(send, b"hello")


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    assert message["type"] == "lifespan.startup"
    await send({"type": "lifespan.startup.failed", "message": "the database is down"})


async def hanging_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    say("startup hangs")
    await asyncio.Event().wait()


async def raising_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    raise RuntimeError("startup exploded")


def factory() -> Any:
    say("factory called")
    return app


def wsgi_hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from wsgi"]


loops_made: list[object] = []


def counting_loop() -> Any:
    """A custom ``--loop module:factory``: asyncio's loop, counted."""
    loop = asyncio.new_event_loop()
    loops_made.append(loop)
    return loop
