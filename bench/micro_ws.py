"""CPU cost of one echoed WebSocket message inside the server, without sockets.

The WebSocket counterpart of ``bench/micro.py``: a handshake, then the same
small masked text frame fed again and again to monoceros' and uvicorn's
WebSocket protocol objects through a fake transport, each echoed by the same
ASGI app.  Reports wall time per message, or with ``--callgrind`` instructions
per message counted by valgrind (repeatable on a noisy machine).  It measures
the Python path only (codec, ASGI cycle, task switch); ``bench/wsbench.py``
measures whole servers on real sockets.

    python bench/micro_ws.py                 # wall time
    python bench/micro_ws.py --callgrind     # instructions per message (needs valgrind)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import micro  # bench/ is not on the path when run as a script

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n\r\n"
)
# "Hello, world!..." (16 bytes), masked with 0x01020304
_PAYLOAD = b"Hello, world!..."
_MASK = b"\x01\x02\x03\x04"
FRAME = bytes((0x81, 0x80 | len(_PAYLOAD))) + _MASK + bytes(b ^ _MASK[i % 4] for i, b in enumerate(_PAYLOAD))

SERVERS = {
    "uvicorn": "websockets-sansio",
    "monoceros": "websockets",
    "monoceros-wsproto": "wsproto",
}


async def echo(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})


class FakeTransport(micro.FakeTransport):
    """micro.py's transport, which also remembers a hand-over."""

    protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


def make_protocol(server: str) -> Any:
    ws = SERVERS[server]
    kwargs: dict[str, Any] = {
        "ws": ws, "log_config": None, "access_log": False, "lifespan": "off", "ws_per_message_deflate": False
    }
    if server.startswith("monoceros"):
        from monoceros import Config
        from monoceros.context import ServerContext
        from monoceros.protocols.http1 import HTTP11Protocol

        loaded = Config(echo, http="httptools", **kwargs).load()
        return HTTP11Protocol(ServerContext(loaded, asyncio.get_running_loop()))
    from uvicorn.config import Config as UConfig
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from uvicorn.server import ServerState

    config = UConfig(echo, **kwargs)
    config.load()
    return WebSocketsSansIOProtocol(config, ServerState(), {})


async def drive(server: str, n: int) -> float:
    protocol = make_protocol(server)
    transport = FakeTransport()
    transport.protocol = protocol
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    for _ in range(5):
        await asyncio.sleep(0)
    if transport.writes != 1:
        raise SystemExit(f"{server}: no handshake response")
    protocol = transport.protocol  # monoceros hands the connection over on accept
    start = time.perf_counter()
    for _ in range(n):
        protocol.data_received(FRAME)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    if transport.writes < n + 1:
        raise SystemExit(f"{server}: only {transport.writes - 1} echoes for {n} messages")
    return elapsed


def run_one(server: str, n: int) -> float:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(drive(server, n))


def callgrind_count(server: str, n: int) -> int:
    """Instructions for ``n`` echoed messages."""
    return micro.instructions([__file__, "--child", server, str(n)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callgrind", action="store_true", help="count instructions with valgrind")
    parser.add_argument("--messages", type=int, default=0, help="messages per measurement")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(args.child[0], int(args.child[1]))
        return
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    costs: dict[str, float] = {}
    for server in args.servers.split(","):
        if args.callgrind:
            n = args.messages or 2000
            # the difference of two runs removes start-up cost
            costs[server] = (callgrind_count(server, 2 * n) - callgrind_count(server, n)) / n
        else:
            n = args.messages or 30000
            costs[server] = sorted(run_one(server, n) / n * 1e6 for _ in range(3))[1]
    unit = "instructions/message" if args.callgrind else "us/message (median of 3)"
    base = costs.get("uvicorn")
    print(f"| server | {unit} | vs uvicorn |")
    print("|---|---:|---:|")
    for server, cost in costs.items():
        ratio = f"{cost / base:.2f}x" if base else "-"
        print(f"| {server} | {cost:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
