#!/usr/bin/env python3
"""Side-by-side ASGI server benchmark: monoceros against uvicorn and friends.

Run from anywhere with the project's venv active::

    python bench/run.py                               # everything, defaults
    python bench/run.py --duration 2 --repeat 1       # quick smoke run
    python bench/run.py --servers uvicorn,monoceros --scenarios plaintext-c64,pipeline16
    python bench/run.py --list                        # show servers and scenarios

Every measurement starts a fresh server process (one worker, pinned to the
server CPU) on a fresh port, waits for it with a readiness probe, warms it up,
measures it with ``wrk`` (pinned to the client CPU) and stops it again.  Rounds
are interleaved: in each of ``--repeat`` rounds every server runs every
scenario once, so slow drifts in machine noise hit all servers alike.  The
headline output is the ratio to uvicorn; see ``bench/README.md``.

Stdlib only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
REPORT_LUA = BENCH_DIR / "report.lua"
HOST = "127.0.0.1"
PY = sys.executable
REFERENCE = "uvicorn"
# Rough per-run overhead on top of warm-up + duration: start-up, probe, stop.
RUN_OVERHEAD_S = 1.0


# --------------------------------------------------------------------------- servers

ArgvBuilder = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class Server:
    """One server configuration under test.  Add more entries to ``SERVERS``."""

    name: str
    argv: ArgvBuilder  # (app target "bench.apps:plaintext", port) -> command (without taskset)
    requires: str  # module that must be findable for the server to run (checked in a subprocess)
    packages: tuple[str, ...]  # distributions whose versions are reported
    baseline: str | None = None  # extra ratio column against this server (e.g. h11 vs h11)
    default: bool = True  # run when --servers is not given


def _uvicorn_style(module: str, http: str, loop: str) -> ArgvBuilder:
    """uvicorn's CLI; monoceros is uvicorn-compatible, so it shares this."""

    def build(target: str, port: int) -> list[str]:
        return [
            PY, "-m", module, target,
            "--host", HOST, "--port", str(port),
            "--http", http, "--loop", loop,
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    return build


def _uvicorn_defaults(module: str) -> ArgvBuilder:
    """uvicorn's CLI with nothing but the address: its defaults, access log and info logging on."""

    def build(target: str, port: int) -> list[str]:
        return [PY, "-m", module, target, "--host", HOST, "--port", str(port)]

    return build


def _granian(target: str, port: int) -> list[str]:
    return [
        PY, "-m", "granian",
        "--interface", "asgi", "--http", "1", "--workers", "1",
        "--host", HOST, "--port", str(port),
        "--no-access-log", "--log-level", "warning",
        target,
    ]  # fmt: skip


def _hypercorn(target: str, port: int) -> list[str]:
    return [PY, "-m", "hypercorn", "-w", "1", "-b", f"{HOST}:{port}", "--log-level", "warning", target]


def _floor(mode: str) -> ArgvBuilder:
    """bench/floor.py: no ASGI, a canned answer (the app's name picks the canned body)."""

    def build(target: str, port: int) -> list[str]:
        body = "json" if target.endswith(":json") else "plaintext"
        return [PY, "-m", "bench.floor", mode, "--host", HOST, "--port", str(port), "--body", body]

    return build


def _floor_asgi(inline: bool) -> ArgvBuilder:
    """bench/floor.py asgi: the bare ASGI call of the scenario's app."""

    def build(target: str, port: int) -> list[str]:
        extra = ["--inline"] if inline else []
        return [PY, "-m", "bench.floor", "asgi", "--host", HOST, "--port", str(port), "--app", target, *extra]

    return build


def _pure(build: ArgvBuilder) -> ArgvBuilder:
    """``build`` under MONOCEROS_PURE=1."""
    return lambda target, port: ["env", "MONOCEROS_PURE=1", *build(target, port)]


SERVERS: list[Server] = [
    Server("uvicorn", _uvicorn_style("uvicorn", "httptools", "uvloop"), "uvicorn.__main__",
           ("uvicorn", "httptools", "uvloop")),
    Server("uvicorn-h11", _uvicorn_style("uvicorn", "h11", "asyncio"), "uvicorn.__main__",
           ("uvicorn", "h11")),
    Server("monoceros", _uvicorn_style("monoceros", "httptools", "uvloop"), "monoceros.__main__",
           ("monoceros", "httptools", "uvloop")),
    # The same with the pure-Python modules where compiled ones are built (monoceros/compiled.py).
    Server("monoceros-pure", _pure(_uvicorn_style("monoceros", "httptools", "uvloop")), "monoceros.__main__",
           ("monoceros", "httptools", "uvloop"), default=False),
    Server("monoceros-h11", _uvicorn_style("monoceros", "h11", "asyncio"), "monoceros.__main__",
           ("monoceros", "h11"), baseline="uvicorn-h11"),
    Server("granian", _granian, "granian.__main__", ("granian",)),
    Server("hypercorn", _hypercorn, "hypercorn.__main__", ("hypercorn", "h11")),
    # Both at their defaults (access log on, log level info; the log goes to a file).
    Server("uvicorn-default", _uvicorn_defaults("uvicorn"), "uvicorn.__main__",
           ("uvicorn", "httptools", "uvloop"), default=False),
    Server("monoceros-default", _uvicorn_defaults("monoceros"), "monoceros.__main__",
           ("monoceros", "httptools", "uvloop"), baseline="uvicorn-default", default=False),
    # No ASGI at all (bench/floor.py): the ceiling of any Python server on this machine.
    Server("floor", _floor("http"), "bench.floor", ("httptools", "uvloop"), default=False),
    # The bare ASGI call, nothing checked (bench/floor.py asgi): with a Task per
    # request, and stepped at once without one (as monoceros' eager start).
    Server("floor-asgi", _floor_asgi(False), "bench.floor", ("httptools", "uvloop"), default=False),
    Server("floor-asgi-inline", _floor_asgi(True), "bench.floor", ("httptools", "uvloop"), default=False),
]  # fmt: skip
SERVERS_BY_NAME = {s.name: s for s in SERVERS}


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    app: str  # attribute of ``module``
    connections: int
    description: str
    headers: tuple[str, ...] = ()
    script: str | None = None  # Lua file in bench/, combined with report.lua
    script_args: tuple[str, ...] = ()
    requires: str | None = None  # module needed by the app (e.g. starlette)
    default: bool = True
    # wrk 4.1 cannot report latency percentiles with pipelining (wg/wrk#236): its
    # coordinated-omission correction uses a per-response interval, adds samples below
    # the histogram minimum, and every percentile comes out as 0.
    latency_ok: bool = True
    module: str = "bench.apps"  # where ``app`` is

    @property
    def target(self) -> str:
        return f"{self.module}:{self.app}"


SCENARIOS: list[Scenario] = [
    Scenario("plaintext-c64", "plaintext", 64, "keep-alive GET, 13-byte text/plain body, 64 connections"),
    Scenario("plaintext-c256", "plaintext", 256, "same as plaintext-c64 with 256 connections"),
    Scenario("json-c64", "json", 64, "keep-alive GET, json.dumps() of a small object per request"),
    Scenario(
        "close-c64",
        "plaintext",
        64,
        "plaintext with 'Connection: close': one TCP connection per request",
        headers=("Connection: close",),
    ),
    Scenario(
        "pipeline16",
        "plaintext",
        64,
        "plaintext, 16 pipelined requests per write (bench/pipeline.lua), 64 connections",
        script="pipeline.lua",
        script_args=("16",),
        latency_ok=False,
    ),
    Scenario(
        "starlette-c64",
        "starlette_app",
        64,
        "Starlette hello world (PlainTextResponse), keep-alive, 64 connections",
        requires="starlette",
        default=False,
        module="bench.frameworks",
    ),
    Scenario(
        "fastapi-c64",
        "fastapi_app",
        64,
        "FastAPI hello world (PlainTextResponse), keep-alive, 64 connections",
        requires="fastapi",
        default=False,
        module="bench.frameworks",
    ),
]
SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}


# --------------------------------------------------------------------------- records


@dataclass
class Sample:
    round: int
    scenario: str
    server: str
    port: int
    ok: bool = False
    error: str | None = None
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    duration_s: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    client_cpu: float | None = None  # wrk's CPU time / wall time (1.0 = one core saturated)
    server_cpu: float | None = None  # the server processes' CPU time / wall time
    # CPU time on the two pinned cores that belongs to neither the server nor wrk
    # (other processes, hypervisor steal), as a fraction of one core: the noise indicator.
    noise: float | None = None
    cores: dict[str, dict[str, float]] = field(default_factory=dict)  # /proc/stat shares
    startup_s: float | None = None
    stopped_by: str | None = None
    wrk_argv: list[str] = field(default_factory=list)
    wrk_stdout: str = ""
    server_log_tail: str = ""
    attempt: int = 0  # > 0: an earlier attempt was discarded as noisy (see "discarded" in the JSON)


class StartError(Exception):
    """The server did not come up (exited, timed out, or answered badly)."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class Interruption:
    happened: bool = False


@contextlib.contextmanager
def interruptible() -> Iterator[Interruption]:
    """Ctrl+C, SIGTERM and SIGHUP end the block early (servers are stopped by their own
    ``finally``); the caller then reports what was measured, marked partial."""
    state = Interruption()
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield state
    except KeyboardInterrupt:
        state.happened = True
        log("\ninterrupted: servers stopped; reporting what was measured so far")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def log(msg: str = "", stream: TextIO | None = None) -> None:
    print(msg, file=stream or sys.stderr, flush=True)


# --------------------------------------------------------------------------- environment checks


def module_available(module: str) -> bool:
    """find_spec in a child interpreter (cwd = repo root), so nothing is imported here."""
    code = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    try:
        res = subprocess.run(
            [PY, "-c", code], cwd=REPO_ROOT, env=server_env(), capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        pass
    # Not installed as a distribution (e.g. monoceros run from the source tree).
    code = f"import {dist}._version as v; print(v.__version__)"
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        res = subprocess.run(
            [PY, "-c", code], cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True, timeout=30
        )
        if res.returncode == 0 and res.stdout.strip():
            return res.stdout.strip() + " (source tree)"
    return "not installed"


def tool_version(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        out = (res.stdout + res.stderr).strip().splitlines()
        if out:
            return out[0].strip()
    return "unknown"


def git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        rev = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        if rev:
            return rev + ("-dirty" if dirty else "")
    return "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


CpuStat = dict[str, list[int]]  # "cpu0" -> [user, nice, system, idle, iowait, irq, softirq, steal]


def read_cpu_stat() -> CpuStat:
    stat: CpuStat = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            break
        name, *rest = line.split()
        stat[name] = [int(v) for v in rest[:8]]
    return stat


@dataclass
class CpuShare:
    """How one CPU spent an interval, as fractions of it."""

    busy: float  # everything except idle and iowait
    task: float  # user + nice + system: time charged to processes
    steal: float  # taken by the hypervisor for other guests


def cpu_shares(before: CpuStat, after: CpuStat) -> dict[str, CpuShare]:
    shares: dict[str, CpuShare] = {}
    for name, v1 in after.items():
        d = [x1 - x0 for x1, x0 in zip(v1, before.get(name, v1), strict=True)]
        total = sum(d)
        if total <= 0:
            shares[name] = CpuShare(0.0, 0.0, 0.0)
            continue
        shares[name] = CpuShare(
            busy=max(0.0, 1.0 - (d[3] + d[4]) / total),
            task=(d[0] + d[1] + d[2]) / total,
            steal=d[7] / total,
        )
    return shares


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system, all threads) of the live processes in a process group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = raw[raw.rindex(")") + 2 :].split()  # fields from "state" (3rd) on
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


@dataclass
class QuietCheck:
    busy: dict[str, float]  # cpu name -> busy fraction (incl. steal) over the sample
    loadavg: str
    warnings: list[str]


def quiet_check(cpus: Sequence[int], threshold: float, seconds: float = 1.0) -> QuietCheck:
    before = read_cpu_stat()
    time.sleep(seconds)
    busy = {name: share.busy for name, share in cpu_shares(before, read_cpu_stat()).items()}
    try:
        loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        loadavg = "unknown"
    warnings = []
    for cpu in cpus:
        frac = busy.get(f"cpu{cpu}")
        if frac is not None and frac > threshold:
            warnings.append(
                f"cpu{cpu} is {frac:.0%} busy before the benchmark started (threshold {threshold:.0%})"
            )
    total = busy.get("cpu")
    if total is not None and total > threshold:
        warnings.append(f"the machine is {total:.0%} busy overall (threshold {threshold:.0%})")
    return QuietCheck(busy, loadavg, warnings)


# --------------------------------------------------------------------------- processes


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONASYNCIODEBUG", None)
    env.pop("PYTHONDEVMODE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class PortPicker:
    """Hands out a fresh, currently bindable port per run, below the ephemeral range.

    Staying below ``ip_local_port_range`` means wrk's own client sockets (thousands
    of them in close-c64) can never collide with the server's listening port, and
    never reusing a port means no run sees a previous run's TIME_WAIT sockets.
    """

    def __init__(self) -> None:
        low = 32768
        with contextlib.suppress(OSError, ValueError, IndexError):
            low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        self.low, self.high = (10000, low - 1) if low > 11000 else (0, 0)
        self.next = random.randint(self.low, max(self.low, self.high - 2000)) if self.high else 0
        self.used: set[int] = set()

    def __call__(self) -> int:
        if not self.high:
            return self._kernel_port()
        for _ in range(self.high - self.low + 1):
            port, self.next = self.next, self.next + 1
            if self.next > self.high:
                self.next = self.low
            if port in self.used:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((HOST, port))  # no SO_REUSEADDR: also fails while TIME_WAIT lingers
                except OSError:
                    continue
            self.used.add(port)
            return port
        return self._kernel_port()

    def _kernel_port(self) -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port: int = s.getsockname()[1]
            return port


def probe(port: int, timeout: float = 1.0) -> int | None:
    """One readiness probe: connect, GET /, return the status code (None if no answer)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(
                b"GET / HTTP/1.1\r\nHost: " + f"{HOST}:{port}".encode() + b"\r\nConnection: close\r\n\r\n"
            )
            buf = b""
            while b"\r\n" not in buf and len(buf) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except OSError:
        return None
    m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    return int(m.group(1)) if m else None


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


class RunningServer:
    """A server process in its own session/process group, pinned with taskset."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=server_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: we can signal workers too; Ctrl+C does not reach it
        )

    def wait_ready(self, port: int, timeout: float) -> float:
        start = time.monotonic()
        deadline = start + timeout
        last_status: int | None = None
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise StartError(f"exited with code {rc} before answering")
            last_status = probe(port)
            if last_status is not None and 200 <= last_status < 300:
                return time.monotonic() - start
            if time.monotonic() >= deadline:
                detail = f" (last probe answered {last_status})" if last_status else ""
                raise StartError(f"not ready after {timeout:.0f}s{detail}")
            time.sleep(0.05)  # poll interval between probes, not a fixed start-up sleep

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float) -> str:
        """SIGTERM the group, SIGKILL after ``timeout``; returns how it ended."""
        how = f"exited on its own (code {self.proc.returncode})"
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
                how = "SIGTERM"
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
                how = f"SIGKILL (no exit {timeout:.0f}s after SIGTERM)"
        # Reap any worker processes left behind in the group (ours, by construction).
        self._signal_group(signal.SIGKILL)
        self._log.close()
        return how


# --------------------------------------------------------------------------- wrk

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(stdout: str) -> dict[str, float]:
    """Numbers from the report.lua JSON line; falls back to wrk's human-readable text."""
    for line in stdout.splitlines():
        if line.startswith("BENCH_WRK_JSON "):
            data: dict[str, float] = json.loads(line.split(" ", 1)[1])
            return data
    out: dict[str, float] = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", stdout)
    if m:
        out["requests"] = float(m.group(1))
        out["duration_us"] = float(m.group(2)) * _UNIT_MS[m.group(3)] * 1000.0
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", stdout, re.M)
        if m:
            out[key] = float(m.group(1)) * _UNIT_MS[m.group(2)] * 1000.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", stdout)
    if m:
        out.update(zip(("connect", "read", "write", "timeout"), map(float, m.groups()), strict=True))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if m:
        out["status"] = float(m.group(1))
    if "requests" not in out:
        raise ValueError("could not find results in wrk output")
    return out


def wrk_argv(
    args: argparse.Namespace, scenario: Scenario, port: int, seconds: int, script: Path
) -> list[str]:
    argv = [
        "taskset", "-c", str(args.client_cpu), "wrk",
        "-t", str(min(args.wrk_threads, scenario.connections)),
        "-c", str(scenario.connections),
        "-d", f"{seconds}s",
        "--timeout", f"{args.wrk_timeout}s",
        "--latency",
        "-s", str(script),
    ]  # fmt: skip
    for header in scenario.headers:
        argv += ["-H", header]
    argv.append(f"http://{HOST}:{port}/")
    if scenario.script_args:
        argv += ["--", *scenario.script_args]
    return argv


@dataclass
class WrkRun:
    returncode: int
    output: str
    cpu_s: float  # user + system CPU seconds of wrk
    server_cpu_s: float | None  # user + system CPU seconds of the server's process group
    wall_s: float
    cpus: dict[str, CpuShare]  # /proc/stat shares per CPU over the run


def run_wrk(argv: list[str], seconds: int, server_pgid: int | None = None) -> WrkRun:
    # Only wrk is reaped while this runs, so the RUSAGE_CHILDREN delta is wrk's CPU time.
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    srv0 = group_cpu_seconds(server_pgid) if server_pgid else None
    stat0 = read_cpu_stat()
    t0 = time.monotonic()
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        rc, out = res.returncode, res.stdout + (("\n[stderr]\n" + res.stderr) if res.stderr.strip() else "")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc, out = -1, out + "\n[bench] wrk did not finish in time and was killed"
    wall = time.monotonic() - t0
    cpus = cpu_shares(stat0, read_cpu_stat())
    srv_cpu = group_cpu_seconds(server_pgid) - srv0 if server_pgid and srv0 is not None else None
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return WrkRun(rc, out, cpu, srv_cpu, wall, cpus)


def build_scripts(tmp: Path) -> dict[str | None, Path]:
    """One wrk script per scenario script: the scenario's Lua (if any) + report.lua."""
    report = REPORT_LUA.read_text()
    scripts: dict[str | None, Path] = {}
    for script in {s.script for s in SCENARIOS}:
        body = (BENCH_DIR / script).read_text() + "\n" if script else ""
        path = tmp / f"wrk-{Path(script).stem if script else 'plain'}.lua"
        path.write_text(body + report)
        scripts[script] = path
    return scripts


# --------------------------------------------------------------------------- one measurement


def record_cpu(sample: Sample, run: WrkRun, args: argparse.Namespace) -> None:
    if run.wall_s <= 0:
        return
    sample.client_cpu = round(run.cpu_s / run.wall_s, 3)
    if run.server_cpu_s is not None:
        sample.server_cpu = round(run.server_cpu_s / run.wall_s, 3)
    srv_core = run.cpus.get(f"cpu{args.server_cpu}")
    cli_core = run.cpus.get(f"cpu{args.client_cpu}")
    sample.cores = {
        name: {k: round(v, 3) for k, v in asdict(share).items()}
        for name, share in run.cpus.items()
        if name in (f"cpu{args.server_cpu}", f"cpu{args.client_cpu}")
    }
    if srv_core is None or cli_core is None or sample.server_cpu is None:
        return
    # Busy time on each pinned core that its owner does not account for, plus steal.  A
    # process's CPU time includes the softirq work done on its behalf (loopback TCP), so
    # "busy" (which counts irq time) is the matching measure, not user + system.
    other = max(0.0, srv_core.busy - sample.server_cpu) + max(0.0, cli_core.busy - sample.client_cpu)
    sample.noise = round(other + srv_core.steal + cli_core.steal, 3)


def measure(
    args: argparse.Namespace,
    server: Server,
    scenario: Scenario,
    rnd: int,
    port: int,
    script: Path,
    tmp: Path,
) -> Sample:
    sample = Sample(round=rnd, scenario=scenario.name, server=server.name, port=port)
    argv = ["taskset", "-c", str(args.server_cpu), *server.argv(scenario.target, port)]
    log_path = tmp / f"{server.name}-{scenario.name}-r{rnd}.log"
    srv = RunningServer(argv, log_path)
    try:
        try:
            sample.startup_s = round(srv.wait_ready(port, args.startup_timeout), 3)
        except StartError as exc:
            sample.error = f"failed to start: {exc}"
            return sample
        if args.warmup > 0:
            run_wrk(wrk_argv(args, scenario, port, args.warmup, script), args.warmup)
            if not srv.alive():
                sample.error = "server died during warm-up"
                return sample
        sample.wrk_argv = wrk_argv(args, scenario, port, args.duration, script)
        run = run_wrk(sample.wrk_argv, args.duration, srv.proc.pid)
        rc, out = run.returncode, run.output
        sample.wrk_stdout = out
        record_cpu(sample, run, args)
        if not srv.alive():
            sample.error = "server died during the measurement"
        try:
            data = parse_wrk(out)
        except (ValueError, json.JSONDecodeError):
            sample.error = sample.error or f"wrk failed (exit {rc}): {out.strip()[-300:]}"
            return sample
        requests = int(data["requests"])
        duration_s = data.get("duration_us", args.duration * 1e6) / 1e6
        sample.requests = requests
        sample.duration_s = round(duration_s, 3)
        sample.rps = requests / duration_s if duration_s > 0 else 0.0
        # wrk reports 0 for every percentile when its histogram is empty or inconsistent
        # (always with pipelining); never let a 0 into the medians.
        if scenario.latency_ok and requests > 0 and data.get("p99_us", 0.0) > 0:
            sample.p50_ms = data.get("p50_us", 0.0) / 1000.0
            sample.p99_ms = data["p99_us"] / 1000.0
        sample.errors = {k: int(data.get(k, 0)) for k in ("connect", "read", "write", "timeout", "status")}
        sample.errors = {k: v for k, v in sample.errors.items() if v}
        if rc != 0 and not sample.error:
            sample.error = f"wrk exited with {rc}"
        sample.ok = sample.error is None and requests > 0
        if requests == 0 and not sample.error:
            sample.error = "no successful requests"
        return sample
    finally:
        sample.stopped_by = srv.stop(args.stop_timeout)
        sample.server_log_tail = log_tail(log_path)


def measure_with_retries(
    args: argparse.Namespace,
    server: Server,
    scenario: Scenario,
    rnd: int,
    pick_port: Callable[[], int],
    script: Path,
    tmp: Path,
    prefix: str,
) -> tuple[Sample, list[Sample]]:
    """Measure once, again (up to --retry-noisy times) if the run was noisy; log the outcome.

    Returns the least noisy successful attempt and the discarded ones.
    """
    attempts: list[Sample] = []
    while True:
        sample = measure(args, server, scenario, rnd, pick_port(), script, tmp)
        sample.attempt = len(attempts)
        attempts.append(sample)
        noise = sample.noise or 0.0
        if not (sample.ok and noise > args.quiet_threshold) or len(attempts) > args.retry_noisy:
            break
        log(f"{prefix} {noise:.0%} of a core went to other processes; measuring again")
    ok_attempts = [a for a in attempts if a.ok] or attempts
    kept = min(ok_attempts, key=lambda a: a.noise or 0.0)
    dropped = [a for a in attempts if a is not kept]

    if kept.error and kept.error.startswith("failed to start"):
        log(f"{prefix} FAILED: {kept.error}")
        if kept.server_log_tail:
            log("    " + kept.server_log_tail.replace("\n", "\n    "))
        return kept, dropped
    errs = ", ".join(f"{k} {v}" for k, v in kept.errors.items())
    rps = f"{kept.rps:,.0f} req/s" if kept.rps is not None else "no result"
    p99 = f"p99 {kept.p99_ms:.2f} ms" if kept.p99_ms is not None else ""
    extra = f" errors: {errs}" if errs else ""
    extra += f" ERROR: {kept.error}" if kept.error else ""
    if kept.noise is not None and kept.noise > args.quiet_threshold:
        extra += f" (noisy: {kept.noise:.0%} foreign CPU)"
    log(f"{prefix} {rps:>16} {p99}{extra}")
    return kept, dropped


# --------------------------------------------------------------------------- aggregation & report


@dataclass
class Cell:
    rps: float | None = None
    p99: float | None = None
    rps_range: float | None = None  # (max - min) / median
    client_cpu: float | None = None  # median wrk CPU (cores)
    server_cpu: float | None = None  # median server CPU (cores)
    noise: float | None = None  # median foreign CPU on the pinned cores (cores)
    ok_runs: int = 0
    runs: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def aggregate(samples: list[Sample]) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for s in samples:
        cell = cells.setdefault((s.server, s.scenario), Cell())
        cell.runs += 1
        if s.ok:
            cell.ok_runs += 1
        elif s.error and s.error not in cell.notes:
            cell.notes.append(s.error)
        for k, v in s.errors.items():
            cell.errors[k] = cell.errors.get(k, 0) + v
    for (server, scenario), cell in cells.items():
        ok = [s for s in samples if s.server == server and s.scenario == scenario and s.ok]
        rps = [s.rps for s in ok if s.rps is not None]
        p99 = [s.p99_ms for s in ok if s.p99_ms is not None]
        if rps:
            cell.rps = statistics.median(rps)
            cell.rps_range = (max(rps) - min(rps)) / cell.rps if cell.rps else None
        if p99:
            cell.p99 = statistics.median(p99)
        client = [s.client_cpu for s in ok if s.client_cpu is not None]
        server_cpu = [s.server_cpu for s in ok if s.server_cpu is not None]
        noise = [s.noise for s in ok if s.noise is not None]
        cell.client_cpu = statistics.median(client) if client else None
        cell.server_cpu = statistics.median(server_cpu) if server_cpu else None
        cell.noise = statistics.median(noise) if noise else None
    return cells


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}x"


def _fmt_errors(cell: Cell) -> str:
    parts = [f"{k} {v}" for k, v in cell.errors.items()]
    if cell.runs and cell.ok_runs < cell.runs:
        parts.append(f"{cell.runs - cell.ok_runs}/{cell.runs} runs failed")
    return ", ".join(parts) if parts else "0"


CLIENT_BOUND = 0.90  # wrk using this much of its core means the client may be the bottleneck


def render_tables(
    cells: dict[tuple[str, str], Cell], servers: list[Server], scenarios: list[Scenario], noisy: float
) -> list[str]:
    out: list[str] = []
    names = [s.name for s in scenarios]

    def flagged(cell: Cell) -> bool:
        return cell.ok_runs < cell.runs or bool(cell.errors)

    def ratio_cell(server: Server, scenario: Scenario, attr: str) -> str:
        cell = cells.get((server.name, scenario.name))
        if cell is None:
            return "—"
        if attr == "p99" and not scenario.latency_ok:
            return "n/a²"
        ref = cells.get((REFERENCE, scenario.name))
        text = _fmt_ratio(_ratio(getattr(cell, attr), getattr(ref, attr) if ref else None))
        base = cells.get((server.baseline, scenario.name)) if server.baseline else None
        if base is not None:
            text += f" ({_fmt_ratio(_ratio(getattr(cell, attr), getattr(base, attr)))} vs {server.baseline})"
        if flagged(cell):
            text += " ⚠"
        if attr == "rps" and cell.client_cpu is not None and cell.client_cpu >= CLIENT_BOUND:
            text += " ¹"
        if cell.noise is not None and cell.noise > noisy:
            text += " ³"
        return text

    def matrix(title: str, attr: str) -> None:
        out.extend([title, "", "| server | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)])
        for server in servers:
            out.append(
                f"| {server.name} | " + " | ".join(ratio_cell(server, sc, attr) for sc in scenarios) + " |"
            )
        out.append("")

    matrix(f"### Throughput relative to {REFERENCE} (median req/s / {REFERENCE}'s; higher is better)", "rps")
    matrix(f"### p99 latency relative to {REFERENCE} (median p99 / {REFERENCE}'s; lower is better)", "p99")
    out.append("⚠ = some runs failed or wrk counted errors (see details).  ")
    out.append(
        f"¹ = wrk used >= {CLIENT_BOUND:.0%} of its core: the client may be the bottleneck, "
        "so this ratio understates the faster server.  "
    )
    out.append("² = wrk cannot measure latency percentiles with pipelining (wg/wrk#236).  ")
    out.append(
        f"³ = noisy: in the median run, other processes (or hypervisor steal) took > {noisy:.0%} "
        "of a core on the pinned CPUs; re-run this on a quieter machine."
    )
    out.append("")
    out.append("### Details (medians over rounds; absolute numbers are machine-specific)")
    out.append("")
    out.append(
        f"| scenario | server | req/s vs {REFERENCE} | vs h11 baseline | p99 vs {REFERENCE} "
        "| median req/s | median p99 ms | req/s range | server CPU | wrk CPU | noise | ok runs | wrk errors |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for scenario in scenarios:
        ref = cells.get((REFERENCE, scenario.name))
        for server in servers:
            cell = cells.get((server.name, scenario.name))
            if cell is None:
                continue
            base = cells.get((server.baseline, scenario.name)) if server.baseline else None
            vs_base = ""
            if server.baseline:
                vs_base = f"{_fmt_ratio(_ratio(cell.rps, base.rps if base else None))} vs {server.baseline}"
            p99_ratio = (
                _fmt_ratio(_ratio(cell.p99, ref.p99 if ref else None)) if scenario.latency_ok else "n/a"
            )
            row = [
                scenario.name,
                server.name,
                _fmt_ratio(_ratio(cell.rps, ref.rps if ref else None)),
                vs_base,
                p99_ratio,
                "—" if cell.rps is None else f"{cell.rps:,.0f}",
                "—" if cell.p99 is None else f"{cell.p99:.2f}",
                "—" if cell.rps_range is None else f"{cell.rps_range:.0%}",
                "—" if cell.server_cpu is None else f"{cell.server_cpu:.0%}",
                "—" if cell.client_cpu is None else f"{cell.client_cpu:.0%}",
                "—" if cell.noise is None else f"{cell.noise:.0%}",
                f"{cell.ok_runs}/{cell.runs}",
                _fmt_errors(cell),
            ]
            out.append("| " + " | ".join(row) + " |")
    notes = [
        f"- {server} / {scenario}: {note}"
        for (server, scenario), cell in cells.items()
        for note in cell.notes
    ]
    if notes:
        out.extend(["", "Failures:", "", *notes])
    return out


# --------------------------------------------------------------------------- main


def add_measure_options(p: argparse.ArgumentParser) -> None:
    """The options of one wrk measurement and its setting (shared with bench/suite.py)."""
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    p.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run")
    p.add_argument(
        "--warmup", type=int, default=1, help="seconds of wrk warm-up before each measurement (0: none)"
    )
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (all on the client CPU)")
    p.add_argument("--wrk-timeout", type=int, default=5, help="wrk --timeout, seconds")
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU wrk is pinned to")
    p.add_argument("--startup-timeout", type=float, default=30.0, help="readiness probe deadline, seconds")
    p.add_argument("--stop-timeout", type=float, default=5.0, help="SIGTERM grace before SIGKILL, seconds")
    p.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.10,
        help="max busy fraction of a CPU before the run counts as noisy",
    )
    p.add_argument("--strict-quiet", action="store_true", help="fail instead of warning on a noisy machine")
    p.add_argument(
        "--retry-noisy",
        type=int,
        default=1,
        help="re-measure a run up to N times when other processes took more than --quiet-threshold "
        "of the pinned cores during it (the least noisy attempt is kept)",
    )
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the .md and .json go")


def check_measure_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.repeat < 1 or args.duration < 1 or args.warmup < 0 or args.wrk_threads < 1:
        p.error("--repeat and --duration must be >= 1, --warmup >= 0, --wrk-threads >= 1")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Side-by-side ASGI server benchmark (ratios to uvicorn).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--servers",
        default=",".join(s.name for s in SERVERS if s.default),
        help="comma list of servers (uvicorn is always added as the reference)",
    )
    p.add_argument(
        "--scenarios",
        default=",".join(s.name for s in SCENARIOS if s.default),
        help="comma list of scenarios",
    )
    add_measure_options(p)
    p.add_argument("--list", action="store_true", help="list servers and scenarios, then exit")
    args = p.parse_args(argv)
    check_measure_options(p, args)
    return args


def preflight(args: argparse.Namespace, tools: Sequence[str] = ("wrk", "taskset")) -> bool:
    """Tools on PATH and the pinned CPUs usable; logs what is wrong."""
    for tool in tools:
        if shutil.which(tool) is None:
            log(f"error: {tool!r} not found on PATH")
            return False
    allowed = os.sched_getaffinity(0)
    for cpu in (args.server_cpu, args.client_cpu):
        if cpu not in allowed:
            log(f"error: CPU {cpu} is not available (affinity {sorted(allowed)})")
            return False
    if args.server_cpu == args.client_cpu:
        log("warning: server and wrk share a CPU; results will mostly measure contention")
    return True


def logged_quiet_check(args: argparse.Namespace) -> tuple[QuietCheck, str]:
    """quiet_check() on the pinned CPUs, logged; returns it and its one-line summary."""
    quiet = quiet_check([args.server_cpu, args.client_cpu], args.quiet_threshold)
    busy_txt = ", ".join(f"{k} {v:.0%}" for k, v in sorted(quiet.busy.items()))
    log(f"quiet-machine check (1 s): busy {busy_txt}; loadavg {quiet.loadavg}")
    for w in quiet.warnings:
        log(f"WARNING: noisy machine: {w}")
    return quiet, busy_txt


def environment_versions(dists: Sequence[str] = ()) -> dict[str, str]:
    """Interpreter, wrk, kernel, CPU, monoceros revision, then each distribution's version."""
    versions: dict[str, str] = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "wrk": tool_version(["wrk", "-v"]).split(" Copyright")[0],
        "kernel": platform.release(),
        "cpu": cpu_model(),
        "monoceros git": git_revision(),
        "monoceros build": monoceros_build(),
    }
    for dist in dists:
        versions.setdefault(dist, package_version(dist))
    return versions


def monoceros_build() -> str:
    """Whether ``python -m monoceros`` from the repository runs compiled modules."""
    code = "import monoceros.compiled as c; print('compiled (mypyc)' if c.is_compiled() else 'pure Python')"
    try:
        out = subprocess.run(
            [PY, "-c", code], cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def display_command(server: Server, cpu: int) -> str:
    sentinel = 65432
    argv = ["taskset", "-c", str(cpu), *server.argv("bench.apps:APP", sentinel)]
    return shlex.join(argv).replace(str(sentinel), "$PORT").replace(PY, Path(PY).name)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for server in SERVERS:
            print(f"server   {server.name:15} {display_command(server, args.server_cpu)}")
        for sc in SCENARIOS:
            print(f"scenario {sc.name:15} {'' if sc.default else '(not default) '}{sc.description}")
        return 0

    unknown = [n for n in _split(args.servers) if n not in SERVERS_BY_NAME]
    unknown += [n for n in _split(args.scenarios) if n not in SCENARIOS_BY_NAME]
    if unknown:
        log(f"unknown server/scenario: {', '.join(unknown)} (see --list)")
        return 2
    if not preflight(args):
        return 2

    wanted = _split(args.servers)
    if REFERENCE not in wanted:
        log(f"note: adding {REFERENCE} as the reference for the ratio columns")
        wanted.insert(0, REFERENCE)
    servers: list[Server] = []
    skipped: list[str] = []
    availability: dict[str, bool] = {}
    for server in SERVERS:  # table order, uvicorn first
        if server.name not in wanted:
            continue
        if server.requires not in availability:
            availability[server.requires] = module_available(server.requires)
        if availability[server.requires]:
            servers.append(server)
        else:
            skipped.append(f"{server.name}: {server.requires.split('.')[0]} is not importable yet, skipped")
    scenarios: list[Scenario] = []
    for name in _split(args.scenarios):
        sc = SCENARIOS_BY_NAME[name]
        if sc.requires and not module_available(sc.requires):
            skipped.append(f"scenario {sc.name}: {sc.requires} is not installed, skipped")
            continue
        scenarios.append(sc)
    for note in skipped:
        log(f"note: {note}")
    if REFERENCE not in {s.name for s in servers}:
        log(f"error: the reference server {REFERENCE} is not available")
        return 2
    if not scenarios:
        log("error: no scenarios to run")
        return 2

    quiet, busy_txt = logged_quiet_check(args)
    if quiet.warnings and args.strict_quiet:
        log("error: --strict-quiet and the machine is not quiet; not benchmarking")
        return 3

    versions = environment_versions(
        [d for s in servers for d in s.packages] + [sc.requires for sc in scenarios if sc.requires]
    )
    commands = {s.name: display_command(s, args.server_cpu) for s in servers}
    server_pkgs = {d for s in servers for d in s.packages}
    server_versions = {s.name: ", ".join(f"{d} {versions[d]}" for d in s.packages) for s in servers}
    cmdline = shlex.join([Path(PY).name, *sys.argv]) if argv is None else shlex.join(["run.py", *argv])

    n_runs = args.repeat * len(scenarios) * len(servers)
    est = n_runs * (args.duration + args.warmup + RUN_OVERHEAD_S)
    log(f"command: {cmdline}")
    log("environment: " + "; ".join(f"{k} {v}" for k, v in versions.items() if k not in server_pkgs))
    for name, cmd in commands.items():
        log(f"  {name:15} [{server_versions[name]}]\n  {'':15} {cmd}")
    log(
        f"{n_runs} runs = {args.repeat} rounds x {len(scenarios)} scenarios x {len(servers)} servers, "
        f"{args.warmup}s warm-up + {args.duration}s each; estimated total ≈ {est / 60:.1f} min"
        + (
            f" (up to {est * (1 + args.retry_noisy) / 60:.1f} min if noisy runs are retried)"
            if args.retry_noisy
            else ""
        )
    )

    samples: list[Sample] = []
    discarded: list[Sample] = []
    broken: set[tuple[str, str]] = set()
    started = dt.datetime.now()
    t0 = time.monotonic()
    pick_port = PortPicker()
    with interruptible() as interruption, tempfile.TemporaryDirectory(prefix="monoceros-bench-") as tmpdir:
        tmp = Path(tmpdir)
        scripts = build_scripts(tmp)
        done = 0
        for rnd in range(1, args.repeat + 1):
            # Rotate the start position each round so no server is always first after a switch.
            order = servers[(rnd - 1) % len(servers) :] + servers[: (rnd - 1) % len(servers)]
            for scenario in scenarios:
                for server in order:
                    done += 1
                    prefix = f"[{done}/{n_runs}] round {rnd} {scenario.name:15} {server.name:14}"
                    if (server.name, scenario.name) in broken:
                        log(f"{prefix} skipped (failed to start earlier)")
                        continue
                    kept, dropped = measure_with_retries(
                        args, server, scenario, rnd, pick_port, scripts[scenario.script], tmp, prefix
                    )
                    samples.append(kept)
                    discarded += dropped
                    if kept.error and kept.error.startswith("failed to start"):
                        broken.add((server.name, scenario.name))
    elapsed = time.monotonic() - t0
    interrupted = interruption.happened

    cells = aggregate(samples)
    lines = [
        f"# monoceros benchmark {started:%Y-%m-%d %H:%M:%S}"
        + (" (INTERRUPTED, partial)" if interrupted else ""),
        "",
    ]
    lines += render_tables(cells, servers, scenarios, args.quiet_threshold)
    lines += [
        "",
        "### Setup",
        "",
        f"- command: `{cmdline}`",
        f"- {args.repeat} interleaved round(s), {args.duration}s per run after {args.warmup}s warm-up, "
        f"wrk -t{args.wrk_threads} pinned to CPU {args.client_cpu}, servers (1 worker) pinned to CPU "
        f"{args.server_cpu}; fresh server process and port per run; took {elapsed / 60:.1f} min",
        f"- quiet check: busy {busy_txt}; loadavg {quiet.loadavg}"
        + ("; WARNINGS: " + "; ".join(quiet.warnings) if quiet.warnings else ""),
        "- environment: " + "; ".join(f"{k} {v}" for k, v in versions.items() if k not in server_pkgs),
    ]
    lines += [f"- scenario `{sc.name}`: {sc.description}" for sc in scenarios]
    lines += [f"- note: {n}" for n in skipped]
    lines += ["", "| server | versions | command |", "|---|---|---|"]
    lines += [f"| {name} | {server_versions[name]} | `{cmd}` |" for name, cmd in commands.items()]
    report = "\n".join(lines) + "\n"
    if samples:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stem = args.results_dir / f"{started:%Y%m%d-%H%M%S}"
        stem.with_suffix(".md").write_text(report)
        raw: dict[str, Any] = {
            "started": started.isoformat(timespec="seconds"),
            "elapsed_s": round(elapsed, 1),
            "interrupted": interrupted,
            "command": cmdline,
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "versions": versions,
            "server_commands": commands,
            "quiet_check": asdict(quiet),
            "skipped": skipped,
            "scenarios": [asdict(sc) for sc in scenarios],
            "medians": [{"server": srv, "scenario": sc, **asdict(cell)} for (srv, sc), cell in cells.items()],
            "samples": [asdict(s) for s in samples],
            "discarded": [asdict(s) for s in discarded],
        }
        stem.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
        written = f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.json')}"
    else:
        written = "nothing measured, no results written"
    # Results are on disk before anything goes to stdout (a closed pipe must not lose them).
    print(report, flush=True)
    log(written)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
