"""The access line's client text is kept per client address (see
``ServerContext.log_access``), at most 1024 of them: in memory, because the
number kept is what is pinned; tests/e2e/test_access_log.py covers the line
itself on a real socket."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from memtransport import MemoryTransport

from monoceros.config import Config
from monoceros.context import ServerContext
from monoceros.protocols.http1 import HTTP11Protocol


class PeerTransport(MemoryTransport):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("127.0.0.2", self.port)
        return super().get_extra_info(name, default)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_client_texts_are_kept_within_bounds(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("monoceros.access")
    saved = (logger.propagate, logger.disabled)
    logger.disabled, logger.propagate = False, True
    caplog.set_level(logging.INFO, logger="monoceros.access")

    async def main() -> int:
        loaded = Config(app, lifespan="off", log_config=None, proxy_headers=False).load()
        ctx = ServerContext(loaded, asyncio.get_running_loop())
        most = 0
        for port in range(1000, 2100):
            protocol = HTTP11Protocol(ctx)
            protocol.connection_made(PeerTransport(port))
            for _ in range(2):  # the second request finds its client's text
                protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                await asyncio.sleep(0)
            most = max(most, len(ctx.client_names))
        return most

    try:
        most = asyncio.run(main())
    finally:
        logger.propagate, logger.disabled = saved
    # (A set: a handler an earlier test left on a parent logger sees them too.)
    lines = {r.getMessage() for r in caplog.records if r.name == "monoceros.access"}
    assert lines == {f'127.0.0.2:{port} - "GET / HTTP/1.1" 200' for port in range(1000, 2100)}
    assert most == 1024
