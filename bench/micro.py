"""CPU cost of one keep-alive request inside the server, without sockets.

Feeds the same request to monoceros' and uvicorn's HTTP/1.1 protocol objects
through a fake transport and reports, per request, either wall time (noisy on
a shared machine) or, with ``--callgrind``, instructions counted by valgrind
(repeatable: the same number run after run, whatever else the machine does).
It measures the Python request path only: parsing, the ASGI cycle, response
rendering; `bench/run.py` measures the whole server with wrk.

    python bench/micro.py                      # wall time, both servers, both parsers
    python bench/micro.py --callgrind          # instructions per request (needs valgrind)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from typing import Any

REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


async def plaintext(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world!"})


class FakeTransport:
    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(key, default)

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def set_protocol(self, protocol: Any) -> None:
        pass


def make_protocol(server: str, http: str, proxy_headers: bool) -> Any:
    if server == "monoceros":
        from monoceros import Config
        from monoceros.context import ServerContext
        from monoceros.protocols.http1 import HTTP11Protocol

        loaded = Config(
            plaintext, http=http, log_config=None, access_log=False, proxy_headers=proxy_headers
        ).load()
        return HTTP11Protocol(ServerContext(loaded, asyncio.get_running_loop()))
    from uvicorn.config import Config as UConfig
    from uvicorn.server import ServerState

    config = UConfig(plaintext, http=http, log_config=None, access_log=False, proxy_headers=proxy_headers)
    config.load()
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol(config, ServerState(), {})
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol(config, ServerState(), {})


async def drive(server: str, http: str, n: int, proxy_headers: bool) -> float:
    protocol = make_protocol(server, http, proxy_headers)
    transport = FakeTransport()
    protocol.connection_made(transport)
    start = time.perf_counter()
    for _ in range(n):
        protocol.data_received(REQUEST)
        # one turn for the app task, one for anything it scheduled
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    if transport.writes < n:
        raise SystemExit(f"{server}/{http}: only {transport.writes} writes for {n} requests")
    return elapsed


def run_one(server: str, http: str, n: int, proxy_headers: bool) -> float:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(drive(server, http, n, proxy_headers))


def instructions(argv: list[str]) -> int:
    """Instructions a Python run of ``argv`` executes (valgrind's I refs)."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, *argv]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    match = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if not match:
        raise SystemExit(f"no instruction count from valgrind:\n{out[-2000:]}")
    return int(match.group(1).replace(",", ""))


def callgrind_count(server: str, http: str, n: int, proxy_headers: bool) -> int:
    """Instructions for ``n`` requests."""
    return instructions([__file__, "--child", server, http, str(n), "1" if proxy_headers else "0"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callgrind", action="store_true", help="count instructions with valgrind")
    parser.add_argument("--requests", type=int, default=0, help="requests per measurement")
    parser.add_argument("--http", default="httptools,h11")
    parser.add_argument("--no-proxy-headers", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        server, http, n, ph = args.child
        run_one(server, http, int(n), ph == "1")
        return
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proxy = not args.no_proxy_headers
    print("| parser | monoceros | uvicorn | ratio (uvicorn / monoceros) | unit |")
    print("|---|---|---|---|---|")
    for http in args.http.split(","):
        costs = {}
        for server in ("uvicorn", "monoceros"):
            if args.callgrind:
                n = args.requests or 2000
                # the difference of two runs removes start-up cost
                twice = callgrind_count(server, http, 2 * n, proxy)
                costs[server] = (twice - callgrind_count(server, http, n, proxy)) / n
            else:
                n = args.requests or 30000
                samples = sorted(run_one(server, http, n, proxy) / n * 1e6 for _ in range(3))
                costs[server] = samples[1]
        unit = "instructions/request" if args.callgrind else "us/request (median of 3)"
        print(
            f"| {http} | {costs['monoceros']:.1f} | {costs['uvicorn']:.1f} | "
            f"{costs['uvicorn'] / costs['monoceros']:.2f}x | {unit} |"
        )


if __name__ == "__main__":
    main()
