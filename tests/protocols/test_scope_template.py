"""Each request of a connection gets a scope of its own: from the second
request on the connection copies a template of its own values (see
``HTTP11Protocol._on_request``), which nothing an app does to its scope may
reach.  In memory, on both parsers; the e2e tests cover scopes on a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from memtransport import MemoryTransport

from monoceros.config import Config
from monoceros.context import ServerContext
from monoceros.protocols.http1 import HTTP11Protocol


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_an_app_changing_its_scope_changes_no_other(http: str) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append({**scope, "state": dict(scope["state"])})
        scope["client"] = ("10.0.0.1", 1)
        scope["scheme"] = "https"
        scope["path"] = "/changed"
        scope["state"]["x"] = 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        loaded = Config(app, http=http, lifespan="off", access_log=False, log_config=None).load()
        protocol = HTTP11Protocol(ServerContext(loaded, asyncio.get_running_loop()))
        protocol.connection_made(MemoryTransport())
        for i in range(4):
            protocol.data_received(b"GET /%d?q HTTP/1.1\r\nHost: t\r\n\r\n" % i)
            for _ in range(10):
                await asyncio.sleep(0)

    asyncio.run(main())
    assert [s["path"] for s in seen] == ["/0", "/1", "/2", "/3"]
    for scope in seen:
        assert scope["client"] == ("127.0.0.1", 5555)
        assert scope["server"] == ("127.0.0.1", 8000)
        assert scope["scheme"] == "http"
        assert scope["query_string"] == b"q"
        assert scope["state"] == {}
        assert list(scope) == list(seen[0])  # the same keys, in the same order
