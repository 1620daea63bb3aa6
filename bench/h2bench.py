#!/usr/bin/env python3
"""HTTP/2 benchmark: monoceros against hypercorn and ``uvicorn --http zttp --http2``.

Run from the repository root with the project's venv::

    python bench/h2bench.py                          # defaults: 3 rounds, h2c, 100000 requests
    python bench/h2bench.py --repeat 1 --requests 30000
    python bench/h2bench.py --tls                    # HTTP/2 over TLS (ALPN h2) as well
    python bench/h2bench.py --list

Every measurement starts a fresh server (one worker, ``bench.apps:plaintext``,
no access log, pinned to ``--server-cpu``) on a fresh port, waits for it with a
readiness probe (``h2load -n 1`` until it gets a 2xx), and runs
``h2load -n REQUESTS -c 32 -m 10`` pinned to ``--client-cpu``.  Rounds are
interleaved and the server order rotates, so slow drifts in machine noise hit
all servers alike.  Reported per (server, scenario): the median requests per
second, h2load's failed/errored counts, and monoceros' ratio to each other
server.  A server whose module is missing is skipped (zttp is an optional
package: ``pip install zttp``).  Stdlib only, plus h2load (nghttp2-client).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import PY, REPO_ROOT, PortPicker

HOST = "127.0.0.1"
APP = "bench.apps:plaintext"


@dataclass(frozen=True)
class Server:
    name: str
    module: str  # must be importable for the server to run
    argv: tuple[str, ...]  # after `python -m`, before the host/port/TLS options
    tls_flags: tuple[str, str]  # how the server takes a certificate and a key
    port_flag: str  # "--port" style, or "-b" (host:port)
    cleartext_h2: bool = True


SERVERS = [
    Server("monoceros", "monoceros", ("monoceros", APP, "--no-access-log", "--log-level", "warning",
                                      "--loop", "uvloop"), ("--ssl-certfile", "--ssl-keyfile"), "--port"),
    Server("hypercorn", "hypercorn", ("hypercorn", "-w", "1", "--log-level", "warning", APP),
           ("--certfile", "--keyfile"), "-b"),
    Server("uvicorn-zttp", "zttp", ("uvicorn", APP, "--http", "zttp", "--http2", "--no-access-log",
                                    "--log-level", "warning", "--loop", "uvloop"),
           ("--ssl-certfile", "--ssl-keyfile"), "--port"),
]  # fmt: skip


def importable(module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([PY, "-c", code], cwd=REPO_ROOT).returncode == 0


# hypercorn ends an HTTP/2 connection after 1000 requests by default
# (keep_alive_max_requests; h2load does not reconnect, so the rest would
# fail): this config file lifts that, and nothing else.
HYPERCORN_CONFIG = "keep_alive_max_requests = 2**31\n"


def command(server: Server, port: int, tls: tuple[str, str] | None, folder: str) -> list[str]:
    cmd = [PY, "-m", *server.argv]
    if server.name == "hypercorn":
        config = os.path.join(folder, "hypercorn_config.py")
        Path(config).write_text(HYPERCORN_CONFIG)
        cmd += ["--config", f"file:{config}"]
    if server.port_flag == "-b":
        cmd += ["-b", f"{HOST}:{port}"]
    else:
        cmd += ["--host", HOST, "--port", str(port)]
    if tls is not None:
        cmd += [server.tls_flags[0], tls[0], server.tls_flags[1], tls[1]]
    return cmd


def h2load(url: str, requests: int, clients: int, streams: int, cpu: int | None) -> dict[str, float]:
    cmd = ["h2load", "-n", str(requests), "-c", str(clients), "-m", str(streams), url]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    finished = re.search(r"finished in ([\d.]+)(s|ms|us), ([\d.]+) req/s", out)
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored", out)
    status = re.search(r"status codes: (\d+) 2xx", out)
    if not finished or not counts or not status:
        raise RuntimeError(f"cannot read h2load's output:\n{out[-1500:]}")
    seconds = float(finished.group(1)) / {"s": 1, "ms": 1e3, "us": 1e6}[finished.group(2)]
    return {
        # Succeeded requests per second (h2load's own figure counts failed ones too).
        "rps": int(counts.group(3)) / seconds if seconds else 0.0,
        "done": int(counts.group(2)),
        "failed": int(counts.group(4)),
        "errored": int(counts.group(5)),
        "2xx": int(status.group(1)),
    }


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if h2load(url, 1, 1, 1, None)["2xx"] == 1:
                return
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.05)
    raise RuntimeError("the server did not answer in time")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def make_cert(folder: str) -> tuple[str, str]:
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", key, "-out", cert, "-days", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", default=",".join(s.name for s in SERVERS))
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--streams", type=int, default=10, help="concurrent streams per connection (-m)")
    parser.add_argument("--tls", action="store_true", help="also measure HTTP/2 over TLS")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for s in SERVERS:
            print(f"{s.name:14} python -m {' '.join(s.argv)}")
        return 0
    if shutil.which("h2load") is None:
        print("h2load is not installed (Debian: nghttp2-client)", file=sys.stderr)
        return 2
    wanted = args.servers.split(",")
    servers = []
    for s in SERVERS:
        if s.name not in wanted:
            continue
        if importable(s.module):
            servers.append(s)
        else:
            print(f"skipped {s.name}: module {s.module!r} is not installed")
    scenarios = ["h2c"] + (["tls"] if args.tls else [])
    ports = PortPicker()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        cert = make_cert(folder) if args.tls else None
        for round_ in range(args.repeat):
            order = servers[round_ % len(servers):] + servers[: round_ % len(servers)]
            for scenario in scenarios:
                for s in order:
                    port = ports()
                    tls = cert if scenario == "tls" else None
                    url = f"{'https' if tls else 'http'}://{HOST}:{port}/"
                    cmd = ["taskset", "-c", str(args.server_cpu), *command(s, port, tls, folder)]
                    with open(os.path.join(folder, f"{s.name}.log"), "ab") as log:
                        proc = subprocess.Popen(
                            cmd, cwd=REPO_ROOT, stdout=log, stderr=log, start_new_session=True
                        )
                    try:
                        wait_ready(url, proc)
                        h2load(url, min(args.requests, 5000), args.clients, args.streams, args.client_cpu)
                        r = h2load(url, args.requests, args.clients, args.streams, args.client_cpu)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        print(f"round {round_ + 1} {scenario} {s.name}: {exc}")
                        continue
                    finally:
                        stop(proc)
                    results.setdefault((s.name, scenario), []).append(r)
                    print(f"round {round_ + 1} {scenario:4} {s.name:14} {r['rps']:9.0f} req/s "
                          f"({r['failed']:.0f} failed, {r['errored']:.0f} errored)", flush=True)
    cmd_line = f"h2load -n {args.requests} -c {args.clients} -m {args.streams}"
    print(f"\n{cmd_line}, median of {args.repeat} interleaved rounds\n")
    print("| scenario | server | req/s | failed | monoceros / server |")
    print("|---|---|---:|---:|---:|")
    for scenario in scenarios:
        ours = results.get(("monoceros", scenario))
        base = statistics.median(r["rps"] for r in ours) if ours else None
        for s in servers:
            runs = results.get((s.name, scenario))
            if not runs:
                continue
            rps = statistics.median(r["rps"] for r in runs)
            bad = sum(r["failed"] for r in runs)  # h2load counts errored ones among the failed
            ratio = f"{base / rps:.2f}x" if base else "-"
            print(f"| {scenario} | {s.name} | {rps:.0f} | {bad:.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
