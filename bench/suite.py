#!/usr/bin/env python3
"""Every row of the performance targets (issue 8) in one run, with a table and a chart.

Run from the repository root with the project's venv::

    python bench/suite.py                         # everything: ~25 min on 2 cores
    python bench/suite.py --publish               # same, then copy to docs/benchmarks.md + .png
    python bench/suite.py --duration 1 --repeat 1 --parts http --groups plaintext-c64
    python bench/suite.py --list                  # parts, groups, targets

Parts, in the order they run:

``http``
    wrk against monoceros, uvicorn (httptools, uvloop, no access log),
    granian ``--interface asgi`` and hypercorn: plaintext c64/c256, JSON,
    pipelined x16, ``Connection: close``, Starlette and FastAPI hello worlds;
    the floor (``bench/floor.py``, no ASGI) in the groups without a framework;
    plus the pairs "both at their defaults" (access log on) and "pure Python"
    (``--http h11 --loop asyncio``).  Measurements come from
    ``bench/run.py``: fresh server per run, pinned cores, readiness probe,
    warm-up, noisy runs retried.
``idle``
    ``--idle-connections`` (10,000) keep-alive connections, each with one
    answered request, held idle by ``bench/idle.py``; the server's RSS.
``strace``
    ``strace -c -f -p`` on the server while ``wrk -t1 -c16`` runs: system
    calls per completed keep-alive request.
``ws``
    ``bench/wsbench.py`` (WebSocket echo, c1 and c50; uvicorn, monoceros,
    floor) as a child process.
``h2``
    ``bench/h2bench.py``, when that file exists, as a child process.

The http, idle and strace parts are measured in interleaved rounds: each
round runs every cell once, the server order rotating, so drifts in machine
noise hit all servers alike.  Every target is a ratio to the named peer from
this same run (except syscalls per request, an absolute count); the floor's
ratio to the same peer stands next to it as the ceiling, never as a peer.

Outputs: ``bench/results/suite-<stamp>.md`` (targets table, chart data,
details, versions), ``.png`` (the chart) and ``.json`` (every raw sample).
``--publish`` copies the table and chart to ``docs/benchmarks.md`` and
``docs/benchmark.png``.  See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import chart
from bench.run import (
    BENCH_DIR,
    CLIENT_BOUND,
    PY,
    REPO_ROOT,
    SCENARIOS_BY_NAME,
    SERVERS_BY_NAME,
    Cell,
    PortPicker,
    RunningServer,
    Sample,
    Scenario,
    Server,
    StartError,
    _fmt_ratio,
    _ratio,
    _split,
    add_measure_options,
    aggregate,
    build_scripts,
    check_measure_options,
    display_command,
    environment_versions,
    interruptible,
    log,
    log_tail,
    logged_quiet_check,
    measure_with_retries,
    module_available,
    parse_wrk,
    preflight,
    render_tables,
    run_wrk,
    server_env,
    tool_version,
    wrk_argv,
)

DOCS_DIR = REPO_ROOT / "docs"
H2BENCH = BENCH_DIR / "h2bench.py"
PEERS = ("uvicorn", "monoceros", "granian", "hypercorn")
# bench/floor.py: no ASGI at all, the ceiling of any Python server here.  Measured next
# to the peers where a target is a ratio to one of them; never a peer itself.
FLOOR = "floor"
# bench/floor.py asgi --inline: the bare ASGI call of the same app (no Task, nothing
# checked), the ceiling of an ASGI server that runs apps the way monoceros does.
BARE = "floor-asgi-inline"
WITH_FLOOR = (*PEERS, FLOOR, BARE)
NOT_PEERS = (FLOOR, BARE)
PARTS = ("http", "idle", "strace", "ws", "h2")


# --------------------------------------------------------------------------- what runs


@dataclass(frozen=True)
class Group:
    """Servers measured under one wrk scenario; the first server is the group's reference."""

    name: str
    scenario: str  # a bench/run.py scenario
    servers: tuple[str, ...]
    label: str  # chart label


GROUPS = [
    Group("plaintext-c64", "plaintext-c64", WITH_FLOOR, "plaintext\nc64"),
    Group("plaintext-c256", "plaintext-c256", WITH_FLOOR, "plaintext\nc256"),
    Group("json-c64", "json-c64", WITH_FLOOR, "JSON\nc64"),
    Group("pipeline16", "pipeline16", WITH_FLOOR, "pipelined\nx16"),
    Group("close-c64", "close-c64", WITH_FLOOR, "Connection:\nclose c64"),
    Group("defaults", "plaintext-c64", ("uvicorn-default", "monoceros-default"), "defaults\n(access log)"),
    Group("h11", "plaintext-c64", ("uvicorn-h11", "monoceros-h11"), "pure Python\n(h11, asyncio)"),
    Group("starlette-c64", "starlette-c64", (*PEERS, BARE), "Starlette\nc64"),
    Group("fastapi-c64", "fastapi-c64", (*PEERS, BARE), "FastAPI\nc64"),
]
GROUPS_BY_NAME = {g.name: g for g in GROUPS}
IDLE_SERVERS = ("uvicorn", "monoceros")
STRACE_SERVERS = ("uvicorn", "monoceros")
WS_SERVERS = f"uvicorn,monoceros,{FLOOR}"
SYSCALLS = Scenario("syscalls-c16", "plaintext", 16, "keep-alive GET under strace -c -f, 16 connections")
# Idle connections must not hit the keep-alive timeout (5 s by default) while the
# client is still opening the others; both servers get the same, longer one.
IDLE_KEEP_ALIVE = ["--timeout-keep-alive", "300"]
SYSCALL_KINDS = {
    "read": {"read", "readv", "recvfrom", "recvmsg", "recvmmsg"},
    "write": {"write", "writev", "sendto", "sendmsg", "sendmmsg"},
    "epoll": {"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll", "ppoll", "select"},
}


# --------------------------------------------------------------------------- records


@dataclass
class IdleSample:
    round: int
    server: str
    ok: bool = False
    error: str | None = None
    rss_before_kb: int | None = None
    rss_idle_kb: int | None = None
    connections: int = 0
    answered: int = 0
    still_open: int = 0
    open_s: float | None = None
    client: dict[str, Any] = field(default_factory=dict)
    server_log_tail: str = ""


@dataclass
class StraceSample:
    round: int
    server: str
    ok: bool = False
    error: str | None = None
    requests: int = 0
    calls: dict[str, int] = field(default_factory=dict)  # syscall -> count while wrk ran
    wrk_stdout: str = ""
    strace_stderr: str = ""

    def per_request(self, kind: str | None = None) -> float | None:
        if not self.ok or not self.requests:
            return None
        if kind is None:
            return sum(self.calls.values()) / self.requests
        if kind == "other":
            known = set().union(*SYSCALL_KINDS.values())
            return sum(n for name, n in self.calls.items() if name not in known) / self.requests
        return sum(n for name, n in self.calls.items() if name in SYSCALL_KINDS[kind]) / self.requests


@dataclass
class TargetRow:
    row: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run
    detail: str = ""
    floor: str = "—"  # the floor's ratio to the same peer under the same load (not part of `met`)
    bare: str = "—"  # the same for the bare ASGI call of the same app


# --------------------------------------------------------------------------- idle connections


@contextlib.contextmanager
def started(args: argparse.Namespace, server: Server, app: str, port: int, tmp: Path, tag: str,
            extra: Sequence[str] = ()) -> Any:  # fmt: skip
    """A pinned server process, ready (readiness probe passed); stopped on exit."""
    log_path = tmp / f"{server.name}-{tag}.log"
    argv = ["taskset", "-c", str(args.server_cpu), *server.argv(f"bench.apps:{app}", port), *extra]
    srv = RunningServer(argv, log_path)
    try:
        srv.wait_ready(port, args.startup_timeout)
        yield srv
    finally:
        srv.stop(args.stop_timeout)


def measure_idle(args: argparse.Namespace, server: Server, rnd: int, port: int, tmp: Path) -> IdleSample:
    sample = IdleSample(round=rnd, server=server.name, connections=args.idle_connections)
    tag = f"idle-r{rnd}"
    try:
        with started(args, server, "plaintext", port, tmp, tag, IDLE_KEEP_ALIVE) as srv:
            client = [
                "taskset", "-c", str(args.client_cpu), PY, "-m", "bench.idle", "--port", str(port),
                "--connections", str(args.idle_connections), "--server-pgid", str(srv.proc.pid),
            ]  # fmt: skip
            res = subprocess.run(
                client, cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True, timeout=300
            )
            try:
                data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                sample.error = f"idle client failed (exit {res.returncode}): {res.stderr.strip()[-300:]}"
                return sample
            if not srv.alive():
                sample.error = "server died while holding the connections"
    except StartError as exc:
        sample.error = f"failed to start: {exc}"
        return sample
    except subprocess.TimeoutExpired:
        sample.error = "idle client did not finish in 300 s"
        return sample
    finally:
        sample.server_log_tail = log_tail(tmp / f"{server.name}-{tag}.log")
    sample.client = data
    sample.rss_before_kb, sample.rss_idle_kb = data.get("rss_before_kb"), data.get("rss_idle_kb")
    sample.answered, sample.still_open = data.get("answered", 0), data.get("still_open", 0)
    sample.open_s = data.get("open_s")
    sample.error = sample.error or data.get("error")
    if sample.still_open < args.idle_connections and not sample.error:
        sample.error = f"only {sample.still_open} of {args.idle_connections} connections open and idle"
    sample.ok = sample.error is None and sample.rss_idle_kb is not None
    return sample


# --------------------------------------------------------------------------- syscalls per request


def parse_strace_summary(text: str) -> dict[str, int]:
    """syscall -> calls from ``strace -c`` output (the columns: % time, seconds, usecs/call,
    calls, [errors], syscall)."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5 or not parts[0].replace(".", "", 1).isdigit() or parts[-1] == "total":
            continue
        with contextlib.suppress(ValueError):
            calls[parts[-1]] = int(parts[3])
    return calls


def measure_syscalls(
    args: argparse.Namespace, server: Server, rnd: int, port: int, tmp: Path, script: Path
) -> StraceSample:
    sample = StraceSample(round=rnd, server=server.name)
    out = tmp / f"strace-{server.name}-r{rnd}.txt"
    try:
        with started(args, server, SYSCALLS.app, port, tmp, f"strace-r{rnd}") as srv:
            if args.warmup:
                run_wrk(wrk_argv(args, SYSCALLS, port, args.warmup, script), args.warmup)
            # strace shares the server's core: its tracing cost is the server's cost.
            tracer = subprocess.Popen(
                ["taskset", "-c", str(args.server_cpu), "strace", "-c", "-f", "-o", str(out),
                 "-p", str(srv.proc.pid)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert tracer.stderr is not None
            first = tracer.stderr.readline()  # "strace: Process N attached": tracing has begun
            if "attached" not in first:
                tracer.wait(10)
                sample.error = f"strace did not attach: {first.strip()} {tracer.stderr.read().strip()}"
                return sample
            run = run_wrk(wrk_argv(args, SYSCALLS, port, args.strace_seconds, script), args.strace_seconds)
            tracer.send_signal(signal.SIGINT)
            _, rest = tracer.communicate(timeout=30)
            sample.strace_stderr = (first + rest)[-2000:]
            sample.wrk_stdout = run.output
    except StartError as exc:
        sample.error = f"failed to start: {exc}"
        return sample
    try:
        sample.requests = int(parse_wrk(run.output)["requests"])
    except (ValueError, KeyError, json.JSONDecodeError):
        sample.error = f"wrk failed: {run.output.strip()[-300:]}"
        return sample
    sample.calls = parse_strace_summary(out.read_text() if out.exists() else "")
    if not sample.calls:
        sample.error = "no strace summary"
    sample.ok = sample.error is None and sample.requests > 0
    return sample


# --------------------------------------------------------------------------- child benchmarks


def run_child(argv: list[str], what: str) -> tuple[int, str]:
    """Run a benchmark script; its output is logged (indented) as it comes and returned."""
    cmd = [PY, *argv]
    log(f"{what}: {shlex.join(cmd).replace(PY, Path(PY).name)}")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=server_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        log("    " + line.rstrip("\n"))
    return proc.wait(), "".join(lines)


def run_wsbench(args: argparse.Namespace, common: list[str], tmp: Path) -> tuple[dict[str, Any] | None, str]:
    """bench/wsbench.py: its raw samples (JSON) and its markdown report (stdout)."""
    out = tmp / "ws"
    rc, report = run_child(
        ["bench/wsbench.py", "--servers", WS_SERVERS, "--duration", str(args.duration), "--warmup",
         str(args.warmup), "--results-dir", str(out), *common], "WebSocket echo",
    )  # fmt: skip
    jsons = sorted(out.glob("*.json"))
    if rc != 0 or not jsons:
        return None, f"bench/wsbench.py exited with {rc} and wrote no results"
    data: dict[str, Any] = json.loads(jsons[-1].read_text())
    return data, report


H2_ROW = re.compile(r"^\| (\S+) \| (\S+) \| ([\d.]+) \| ([\d.]+) \|")  # scenario, server, req/s, failed


def run_h2bench(args: argparse.Namespace, common: list[str]) -> tuple[dict[str, float] | None, str]:
    """bench/h2bench.py (h2load): median req/s by "server/scenario" from its table, and the table."""
    rc, out = run_child(["bench/h2bench.py", "--requests", str(20_000 * args.duration), *common], "HTTP/2")
    table = out[out.find("h2load -n") :] if "h2load -n" in out else ""
    rps: dict[str, float] = {}
    for line in table.splitlines():
        if m := H2_ROW.match(line):
            rps[f"{m[2]}/{m[1]}"] = float(m[3])
            rps[f"{m[2]}/{m[1]}/failed"] = float(m[4])
    if rc != 0 or not rps:
        return None, f"bench/h2bench.py exited with {rc}; no result table in its output"
    return rps, table


def child_medians(data: dict[str, Any], attr: str = "rps") -> dict[tuple[str, str], float]:
    """Medians of ``attr`` over the ok samples of wsbench's JSON, by (server, scenario)."""
    values: dict[tuple[str, str], list[float]] = {}
    for s in data.get("samples", []):
        if s.get("ok") and s.get(attr) is not None:
            values.setdefault((s["server"], s["scenario"]), []).append(float(s[attr]))
    return {k: statistics.median(v) for k, v in values.items()}


def child_client_cpu(data: dict[str, Any]) -> dict[tuple[str, str], float]:
    return child_medians(data, "client_cpu")


# --------------------------------------------------------------------------- targets


def _op_met(value: float | None, op: str, goal: float) -> bool | None:
    if value is None:
        return None
    return value >= goal if op == ">=" else value <= goal


def _flags(cell: Cell | None, quiet: float) -> str:
    if cell is None:
        return ""
    text = " ⚠" if cell.ok_runs < cell.runs or cell.errors else ""
    text += " ¹" if cell.client_cpu is not None and cell.client_cpu >= CLIENT_BOUND else ""
    return text + (" ³" if cell.noise is not None and cell.noise > quiet else "")


def http_row(
    cells: dict[tuple[str, str], Cell],
    quiet: float,
    row: str,
    scenario: str,
    server: str,
    peer: str,
    op: str,
    goal: float,
    *,
    attr: str = "rps",
    floor: bool = False,
) -> TargetRow:
    """``floor``: also the floor's and the bare ASGI call's ratios to the same peer (their groups
    run them next to the peers; a group without them shows —)."""
    cell, ref = cells.get((server, scenario)), cells.get((peer, scenario))
    mine = getattr(cell, attr) if cell else None
    theirs = getattr(ref, attr) if ref else None
    ratio = _ratio(mine, theirs)
    unit = "req/s" if attr == "rps" else "ms p99"
    fmt = "{:,.0f}" if attr == "rps" else "{:.2f}"
    detail = ""
    if mine is not None and theirs is not None:
        detail = f"{server} {fmt.format(mine)} vs {peer} {fmt.format(theirs)} {unit}"
    target = f"{op} {goal:g}x {peer}"
    flags = "".join(dict.fromkeys((_flags(cell, quiet) + _flags(ref, quiet)).split()))
    ceilings = ["—", "—"]
    if floor:
        for i, name in enumerate(NOT_PEERS):
            c = cells.get((name, scenario))
            r = _ratio(getattr(c, attr) if c else None, theirs)
            if r is not None:
                ceilings[i] = _fmt_ratio(r) + _flags(c, quiet)
    return TargetRow(row, target, _fmt_ratio(ratio) + (" " + flags if flags else ""),
                     _op_met(ratio, op, goal), detail, *ceilings)  # fmt: skip


def target_rows(
    cells: dict[tuple[str, str], Cell],
    idle: list[IdleSample],
    traces: list[StraceSample],
    ws: dict[str, Any] | None,
    h2: dict[str, Any] | None,
    quiet: float,
) -> list[TargetRow]:
    def row(*a: Any, **kw: Any) -> TargetRow:
        return http_row(cells, quiet, *a, **kw)

    def with_floor(*a: Any, attr: str = "rps") -> TargetRow:
        return http_row(cells, quiet, *a, attr=attr, floor=True)

    rows = [
        with_floor("plaintext keep-alive c64", "plaintext-c64", "monoceros", "uvicorn", ">=", 2.0),
        with_floor("plaintext keep-alive c256", "plaintext-c256", "monoceros", "uvicorn", ">=", 2.0),
        with_floor("plaintext keep-alive c64", "plaintext-c64", "monoceros", "granian", ">=", 1.15),
        with_floor("plaintext keep-alive c256", "plaintext-c256", "monoceros", "granian", ">=", 1.15),
        with_floor("JSON keep-alive c64", "json-c64", "monoceros", "uvicorn", ">=", 2.0),
        with_floor("pipelined x16 (c64)", "pipeline16", "monoceros", "uvicorn", ">=", 3.0),
        with_floor("`Connection: close` c64", "close-c64", "monoceros", "uvicorn", ">=", 1.5),
        row("both at defaults (access log on), c64", "plaintext-c64", "monoceros-default", "uvicorn-default",
            ">=", 4.0),
        row("pure-Python path (h11, asyncio), c64", "plaintext-c64", "monoceros-h11", "uvicorn-h11",
            ">=", 2.0),
        with_floor("p99 latency at c256", "plaintext-c256", "monoceros", "uvicorn", "<=", 0.5, attr="p99"),
    ]  # fmt: skip
    rows.append(idle_row(idle))
    rows += [
        with_floor("FastAPI hello world, c64", "fastapi-c64", "monoceros", "uvicorn", ">=", 1.3),
        with_floor("Starlette hello world, c64", "starlette-c64", "monoceros", "uvicorn", ">=", 1.3),
    ]
    rows.append(syscall_row(traces))
    rows += ws_rows(ws)
    rows += h2_rows(h2)
    return rows


def _median_of(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def idle_row(idle: list[IdleSample]) -> TargetRow:
    def rss(server: str) -> float | None:
        return _median_of(
            [float(s.rss_idle_kb) for s in idle if s.server == server and s.ok and s.rss_idle_kb]
        )

    def per_conn(server: str) -> float | None:
        ok = [s for s in idle if s.server == server and s.ok and s.rss_idle_kb and s.rss_before_kb]
        return _median_of([(s.rss_idle_kb - s.rss_before_kb) / s.connections for s in ok])  # type: ignore[operator]

    n = max((s.connections for s in idle), default=10_000)
    label = f"{n:,} idle keep-alive connections: RSS"
    mine, theirs = rss("monoceros"), rss("uvicorn")
    ratio = _ratio(mine, theirs)
    failed = [s for s in idle if not s.ok]
    detail = ""
    if mine and theirs:
        detail = f"monoceros {mine / 1024:.1f} MiB vs uvicorn {theirs / 1024:.1f} MiB"
        pm, pu = per_conn("monoceros"), per_conn("uvicorn")
        if pm is not None and pu is not None:
            detail += f" ({pm:.1f} vs {pu:.1f} KiB per connection)"
    return TargetRow(label, "<= 0.7x uvicorn", _fmt_ratio(ratio) + (" ⚠" if failed else ""),
                     _op_met(ratio, "<=", 0.7), detail)  # fmt: skip


def syscall_row(traces: list[StraceSample]) -> TargetRow:
    def med(server: str, kind: str | None = None) -> float | None:
        return _median_of(
            [v for s in traces if s.server == server and (v := s.per_request(kind)) is not None]
        )

    mine = med("monoceros")
    parts = [
        f"{kind} {v:.2f}" for kind in (*SYSCALL_KINDS, "other") if (v := med("monoceros", kind)) is not None
    ]
    detail = "monoceros: " + ", ".join(parts) if parts else ""
    if (ref := med("uvicorn")) is not None:
        detail += f"; uvicorn {ref:.2f} per request"
    return TargetRow("syscalls per keep-alive request (strace -c, wrk c16)", "<= 2.1",
                     "—" if mine is None else f"{mine:.2f}", _op_met(mine, "<=", 2.1), detail)  # fmt: skip


def ws_rows(ws: dict[str, Any] | None) -> list[TargetRow]:
    if ws is None:
        return [TargetRow("WebSocket echo (bench/wsbench.py)", "issue 4 targets", "not run", None)]
    rps, cpu = child_medians(ws), child_medians(ws, "cpu_per_msg_us")
    client_cpu = child_client_cpu(ws)

    def to_uvicorn(values: dict[tuple[str, str], float], server: str, scenario: str) -> float | None:
        return _ratio(values.get((server, scenario)), values.get(("uvicorn", scenario)))

    def floor_txt(values: dict[tuple[str, str], float], scenario: str) -> str:
        r = to_uvicorn(values, FLOOR, scenario)
        bound = r is not None and client_cpu.get((FLOOR, scenario), 0.0) >= CLIENT_BOUND
        return _fmt_ratio(r) + (" ¹" if bound else "")

    rows = []
    for scenario in ("echo-c1", "echo-c50"):
        r = to_uvicorn(cpu, "monoceros", scenario)
        detail = ""
        if r is not None:
            detail = (f"{cpu[('monoceros', scenario)]:.1f} vs {cpu[('uvicorn', scenario)]:.1f} µs CPU "
                      f"per echo")  # fmt: skip
        rows.append(TargetRow(f"WebSocket echo {scenario[5:]}: server CPU per message",
                              "<= 0.7x uvicorn", _fmt_ratio(r), _op_met(r, "<=", 0.7), detail,
                              floor_txt(cpu, scenario)))  # fmt: skip
    r = to_uvicorn(rps, "monoceros", "echo-c50")
    detail = ""
    if r is not None:
        detail = f"{rps[('monoceros', 'echo-c50')]:,.0f} vs {rps[('uvicorn', 'echo-c50')]:,.0f} round trips/s"
        if client_cpu.get(("monoceros", "echo-c50"), 0.0) >= CLIENT_BOUND:
            detail += " ¹"
    rows.append(TargetRow("WebSocket echo c50: round trips/s", ">= 1.3x uvicorn", _fmt_ratio(r),
                          _op_met(r, ">=", 1.3), detail, floor_txt(rps, "echo-c50")))  # fmt: skip
    return rows


def h2_rows(h2: dict[str, float] | None) -> list[TargetRow]:
    """HTTP/2 targets (issue 5): monoceros >= 3x hypercorn, >= 1.2x uvicorn-* (when it ran), per scenario."""
    if h2 is None:
        why = "not run" if H2BENCH.exists() else "bench/h2bench.py not on this branch"
        return [TargetRow("HTTP/2 h2c throughput (h2load)", "issue 5 targets", why, None)]
    rows = []
    for scenario in dict.fromkeys(key.split("/")[1] for key in h2 if key.count("/") == 1):
        mine = h2.get(f"monoceros/{scenario}")
        peers = [("hypercorn", 3.0)]
        peers += [
            (key.split("/")[0], 1.2) for key in h2 if key.startswith("uvicorn") and key.endswith(scenario)
        ]
        for peer, goal in peers:
            theirs = h2.get(f"{peer}/{scenario}")
            r = _ratio(mine, theirs)
            detail = f"{mine:,.0f} vs {theirs:,.0f} req/s" if mine and theirs else ""
            failed = h2.get(f"monoceros/{scenario}/failed", 0) + h2.get(f"{peer}/{scenario}/failed", 0)
            rows.append(TargetRow(f"HTTP/2 {scenario} (h2load -c32 -m10)", f">= {goal:g}x {peer}",
                                  _fmt_ratio(r) + (" ⚠" if failed else ""), _op_met(r, ">=", goal),
                                  detail))  # fmt: skip
    return rows


# --------------------------------------------------------------------------- report


def chart_groups(
    cells: dict[tuple[str, str], Cell], groups: list[Group], ws: dict[str, Any] | None
) -> list[chart.ChartGroup]:
    """Per group, each server's median req/s over the group reference's (uvicorn in the same mode)."""
    out: list[chart.ChartGroup] = []
    for g in groups:
        ref = cells.get((g.servers[0], g.scenario))
        ratios = {}
        for name in g.servers:
            r = _ratio(c.rps if (c := cells.get((name, g.scenario))) else None, ref.rps if ref else None)
            if r is not None and name not in NOT_PEERS:  # the floors are in the targets table, not the chart
                ratios[name.split("-")[0]] = r  # "monoceros-h11" is monoceros' bar in the h11 group
        if ratios:
            out.append((g.label, ratios))
    if ws is not None:
        rps = child_medians(ws)
        r = _ratio(rps.get(("monoceros", "echo-c50")), rps.get(("uvicorn", "echo-c50")))
        if r is not None:
            out.append(("WebSocket\necho c50", {"monoceros": r, "uvicorn": 1.0}))
    return out


def render_targets(rows: list[TargetRow]) -> list[str]:
    out = [
        "| row | target | measured | met | floor (no ASGI) | bare ASGI call | detail |",
        "|---|---|---:|:---:|---:|---:|---|",
    ]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        out.append(f"| {r.row} | {r.target} | {r.measured} | {met} | {r.floor} | {r.bare} | {r.detail} |")
    return out


def render_chart_table(groups: list[chart.ChartGroup]) -> list[str]:
    out = ["| scenario | " + " | ".join(chart.SERVERS) + " |", "|---|" + "---:|" * len(chart.SERVERS)]
    for label, ratios in groups:
        vals = [_fmt_ratio(ratios.get(s)) for s in chart.SERVERS]
        out.append(f"| {label.replace(chr(10), ' ')} | " + " | ".join(vals) + " |")
    return out


def render_idle(idle: list[IdleSample]) -> list[str]:
    out = [
        "| round | server | RSS before | RSS with the connections idle | per connection | open + answer time "
        "| still open | error |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in idle:
        before = f"{s.rss_before_kb / 1024:.1f} MiB" if s.rss_before_kb else "—"
        after = f"{s.rss_idle_kb / 1024:.1f} MiB" if s.rss_idle_kb else "—"
        per = (
            f"{(s.rss_idle_kb - s.rss_before_kb) / s.connections:.1f} KiB"
            if s.rss_idle_kb and s.rss_before_kb
            else "—"
        )
        opened = f"{s.open_s:.2f} s" if s.open_s is not None else "—"
        out.append(f"| {s.round} | {s.server} | {before} | {after} | {per} | {opened} | {s.still_open:,} "
                   f"| {s.error or ''} |")  # fmt: skip
    return out


def render_syscalls(traces: list[StraceSample]) -> list[str]:
    kinds = [*SYSCALL_KINDS, "other"]
    out = [
        "| round | server | requests | syscalls/request | " + " | ".join(kinds) + " | top calls |",
        "|---:|---|---:|---:|" + "---:|" * len(kinds) + "---|",
    ]
    for s in traces:
        if not s.ok:
            out.append(f"| {s.round} | {s.server} | — | — |" + " — |" * len(kinds) + f" {s.error} |")
            continue
        top = sorted(s.calls.items(), key=lambda kv: -kv[1])[:5]
        top_txt = ", ".join(f"{name} {n / s.requests:.2f}" for name, n in top)
        out.append(
            f"| {s.round} | {s.server} | {s.requests:,} | {s.per_request():.2f} | "
            + " | ".join(f"{s.per_request(k):.2f}" for k in kinds)
            + f" | {top_txt} |"
        )
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Every performance target in one run: a table and a chart (see bench/README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--parts", default=",".join(PARTS), help="comma list of parts: " + ", ".join(PARTS))
    p.add_argument("--groups", default=",".join(g.name for g in GROUPS), help="comma list of http groups")
    add_measure_options(p)
    p.add_argument("--idle-connections", type=int, default=10_000, help="connections held idle")
    p.add_argument("--strace-seconds", type=int, default=3, help="seconds of wrk -c16 under strace")
    p.add_argument("--publish", action="store_true", help="copy the report and chart into docs/")
    p.add_argument("--list", action="store_true", help="list the parts, groups and targets, then exit")
    args = p.parse_args(argv)
    check_measure_options(p, args)
    return args


NET_SETTINGS = (
    "net/core/somaxconn",
    "net/ipv4/tcp_max_syn_backlog",
    "net/ipv4/ip_local_port_range",
    "net/ipv4/tcp_tw_reuse",
    "fs/nr_open",
)


def system_limits() -> str:
    """The kernel settings and the descriptor limit that bound the idle-connections part."""
    values = []
    for name in NET_SETTINGS:
        try:
            values.append(f"{name.replace('/', '.')} {' '.join(Path('/proc/sys', name).read_text().split())}")
        except OSError:
            values.append(f"{name.replace('/', '.')} unknown")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return "; ".join([*values, f"RLIMIT_NOFILE {soft}/{hard}"])


def raise_nofile(needed: int) -> int:
    """Raise our RLIMIT_NOFILE (inherited by the servers and clients we start) as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (max(needed, soft), hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def estimate_s(args: argparse.Namespace, parts: list[str], groups: list[Group]) -> float:
    per_run = args.warmup + args.duration + 1.0
    total = 0.0
    if "http" in parts:
        total += args.repeat * sum(len(g.servers) for g in groups) * per_run
    if "idle" in parts:
        total += args.repeat * len(IDLE_SERVERS) * (3.0 + args.idle_connections / 2000)
    if "strace" in parts:
        total += args.repeat * len(STRACE_SERVERS) * (args.warmup + args.strace_seconds + 2.0)
    if "ws" in parts:
        total += 3 + args.repeat * 2 * len(_split(WS_SERVERS)) * (args.warmup + args.duration + 1.5)
    if "h2" in parts and H2BENCH.exists():
        total += 3 + args.repeat * 3 * per_run  # a guess: the script prints its own estimate
    return total


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for part in PARTS:
            print(f"part     {part}")
        for g in GROUPS:
            print(f"group    {g.name:15} scenario {g.scenario:15} servers {', '.join(g.servers)}")
        print(f"ws       bench/wsbench.py servers {', '.join(_split(WS_SERVERS))}")
        for r in target_rows({}, [], [], None, None, args.quiet_threshold):
            print(f"target   {r.row}: {r.target}")
        return 0
    parts, group_names = _split(args.parts), _split(args.groups)
    unknown = [p for p in parts if p not in PARTS] + [g for g in group_names if g not in GROUPS_BY_NAME]
    if unknown:
        log(f"unknown part/group: {', '.join(unknown)} (see --list)")
        return 2
    tools = ["taskset", "wrk"] + (["strace"] if "strace" in parts else [])
    if not preflight(args, tools):
        return 2
    nofile = raise_nofile(args.idle_connections + 1024)
    if "idle" in parts and nofile < args.idle_connections + 256:
        log(f"error: RLIMIT_NOFILE is {nofile}; {args.idle_connections} idle connections need more "
            "(raise the hard limit: ulimit -Hn, or prlimit)")  # fmt: skip
        return 2

    # Servers and frameworks that are missing are left out with a note (the row says "not measured").
    notes: list[str] = []
    available: dict[str, bool] = {}

    def have(module: str) -> bool:
        if module not in available:
            available[module] = module_available(module)
        return available[module]

    groups = []
    for name in group_names:
        g = GROUPS_BY_NAME[name]
        requires = SCENARIOS_BY_NAME[g.scenario].requires
        if requires and not have(requires):
            notes.append(f"group {g.name}: {requires} is not installed, skipped")
            continue
        servers = tuple(s for s in g.servers if have(SERVERS_BY_NAME[s].requires))
        notes += [f"group {g.name}: {s} is not installed, skipped" for s in g.servers if s not in servers]
        if servers:
            groups.append(Group(g.name, g.scenario, servers, g.label))
    for note in notes:
        log(f"note: {note}")

    quiet, busy_txt = logged_quiet_check(args)
    if quiet.warnings and args.strict_quiet:
        log("error: --strict-quiet and the machine is not quiet; not benchmarking")
        return 3
    used = {s for g in groups for s in g.servers} | set(IDLE_SERVERS) | set(STRACE_SERVERS)
    dists = [d for name in SERVERS_BY_NAME if name in used for d in SERVERS_BY_NAME[name].packages]
    dists += [d for g in groups if (d := SCENARIOS_BY_NAME[g.scenario].requires)]
    versions = environment_versions([*dists, "websockets"] if "ws" in parts else dists)
    versions["strace"] = tool_version(["strace", "-V"])
    cmdline = shlex.join([Path(PY).name, *sys.argv]) if argv is None else shlex.join(["suite.py", *argv])
    limits = system_limits()
    log(f"command: {cmdline}")
    log(f"limits: {limits}")
    log("versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()))
    log(f"parts: {', '.join(parts)}; estimated total ≈ {estimate_s(args, parts, groups) / 60:.1f} min "
        "(more if noisy runs are measured again)")  # fmt: skip

    samples: list[Sample] = []
    discarded: list[Sample] = []
    idle: list[IdleSample] = []
    traces: list[StraceSample] = []
    ws = h2 = None
    ws_md = h2_md = ""
    child_errors: list[str] = []
    started_at = dt.datetime.now()
    t0 = time.monotonic()
    pick_port = PortPicker()
    stamp = f"{started_at:%Y%m%d-%H%M%S}"
    with interruptible() as interruption, tempfile.TemporaryDirectory(prefix="monoceros-suite-") as tmpdir:
        tmp = Path(tmpdir)
        scripts = build_scripts(tmp)
        broken: set[tuple[str, str]] = set()
        for rnd in range(1, args.repeat + 1):

            def rotated(names: Sequence[str], rnd: int = rnd) -> list[str]:
                k = (rnd - 1) % len(names)
                return [*names[k:], *names[:k]]

            if "http" in parts:
                for g in groups:
                    scenario = SCENARIOS_BY_NAME[g.scenario]
                    for name in rotated(g.servers):
                        prefix = f"round {rnd} {g.name:15} {name:18}"
                        if (name, g.scenario) in broken:
                            log(f"{prefix} skipped (failed to start earlier)")
                            continue
                        kept, dropped = measure_with_retries(
                            args, SERVERS_BY_NAME[name], scenario, rnd, pick_port,
                            scripts[scenario.script], tmp, prefix,
                        )  # fmt: skip
                        samples.append(kept)
                        discarded += dropped
                        if kept.error and kept.error.startswith("failed to start"):
                            broken.add((name, g.scenario))
            if "idle" in parts:
                for name in rotated(IDLE_SERVERS):
                    s = measure_idle(args, SERVERS_BY_NAME[name], rnd, pick_port(), tmp)
                    idle.append(s)
                    rss = f"{s.rss_idle_kb / 1024:.1f} MiB" if s.rss_idle_kb else "—"
                    log(f"round {rnd} idle-{args.idle_connections:<10} {name:18} RSS {rss} "
                        f"({s.still_open:,} open){' ERROR: ' + s.error if s.error else ''}")  # fmt: skip
            if "strace" in parts:
                for name in rotated(STRACE_SERVERS):
                    t = measure_syscalls(args, SERVERS_BY_NAME[name], rnd, pick_port(), tmp, scripts[None])
                    traces.append(t)
                    per = t.per_request()
                    log(f"round {rnd} {'syscalls-c16':15} {name:18} "
                        + (f"{per:.2f} syscalls/request ({t.requests:,} requests)" if per is not None
                           else f"ERROR: {t.error}"))  # fmt: skip
        common = ["--repeat", str(args.repeat), "--server-cpu", str(args.server_cpu),
                  "--client-cpu", str(args.client_cpu)]  # fmt: skip
        if "ws" in parts:
            ws, ws_md = run_wsbench(args, common, tmp)
            child_errors += [] if ws else [ws_md]
        if "h2" in parts and H2BENCH.exists():
            h2, h2_md = run_h2bench(args, common)
            child_errors += [] if h2 else [h2_md]
    elapsed = time.monotonic() - t0
    interrupted = interruption.happened

    cells = aggregate(samples)
    rows = target_rows(cells, idle, traces, ws, h2, args.quiet_threshold)
    groups_chart = chart_groups(cells, groups, ws)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = args.results_dir / f"suite-{stamp}"
    title = f"monoceros vs uvicorn, granian, hypercorn: one worker, 2 cores, {started_at:%Y-%m-%d}"
    footnote = (
        f"Median req/s of {args.repeat} interleaved rounds / uvicorn's (httptools, uvloop, no access log) in "
        "the same run; 'defaults' and 'pure Python' bars are relative to uvicorn in the same mode, "
        "WebSocket to uvicorn --ws websockets-sansio. "
        f"monoceros {versions.get('monoceros git')}, uvicorn {versions.get('uvicorn')}, granian "
        f"{versions.get('granian')}, hypercorn {versions.get('hypercorn')}, {versions.get('python')}, "
        f"{versions.get('cpu')}."
    )
    chart_error = None
    if groups_chart:
        try:
            chart.draw(stem.with_suffix(".png"), groups_chart, title, footnote)
        except ImportError as exc:
            chart_error = f"no chart: {exc} (pip install -r bench/requirements.txt)"
            log(chart_error)

    met = [r for r in rows if r.met is not None]
    header = [
        f"# monoceros benchmarks, {started_at:%Y-%m-%d}" + (" (INTERRUPTED, partial)" if interrupted else ""),
        "",
        f"`{cmdline}` on {started_at:%Y-%m-%d %H:%M}, {elapsed / 60:.1f} min. "
        f"{sum(bool(r.met) for r in met)} of {len(met)} measured targets met. "
        "One worker per server, pinned to CPU "
        f"{args.server_cpu}; load generators pinned to CPU {args.client_cpu}; medians of {args.repeat} "
        "interleaved rounds; every ratio is to the named peer in this same run.",
        "",
        "- versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        "",
    ]
    body = ["## Targets (issue 8)", "", *render_targets(rows), "",
            "⚠ = some runs failed or the client counted errors; ¹ = the load generator used >= "
            f"{CLIENT_BOUND:.0%} of its core (the ratio understates the faster server); ³ = noisy run "
            "(other processes took CPU on the pinned cores).", "",
            "*floor (no ASGI)*: the same ratio for `bench/floor.py` (uvloop and httptools answering with "
            "canned bytes, raw WebSocket echo; no ASGI, no app) under the same load against the same peer: "
            "the ceiling any Python server reaches on this machine. It is not a peer and never counts for "
            "*met*; ¹ there means the client was the limit, so the ceiling is higher. — = no floor for that "
            "row.", "",
            "*bare ASGI call*: the same ratio for `bench/floor.py asgi --inline` serving the row's own "
            "app (the raw apps, Starlette, FastAPI): per request a scope and one call of the app, stepped at "
            "once without a Task (as monoceros' eager start does), with nothing checked, limited or timed. "
            "It is not a server either: it shows what the ASGI call itself leaves of the floor, the ceiling "
            "of an ASGI server in interpreted Python that runs the app this way (its own code is interpreted "
            "too; monoceros' compiled request path, monoceros/compiled.py, can pass it).", ""]  # fmt: skip
    if groups_chart:
        body += ["## Throughput relative to uvicorn (the chart)", "", *render_chart_table(groups_chart), ""]
    if samples:
        http_servers = [SERVERS_BY_NAME[n] for n in SERVERS_BY_NAME if any(n in g.servers for g in groups)]
        http_scenarios = [SCENARIOS_BY_NAME[n] for n in dict.fromkeys(g.scenario for g in groups)]
        body += ["## HTTP details (wrk)", ""]
        body += [line.replace("### ", "### HTTP: ") for line in
                 render_tables(cells, http_servers, http_scenarios, args.quiet_threshold)]  # fmt: skip
        body.append("")
    if idle:
        body += [f"## {args.idle_connections:,} idle keep-alive connections (bench/idle.py)", "",
                 "Server RSS (VmRSS summed over its process group) once every connection has had its "
                 "response and is idle; `--timeout-keep-alive 300` for both.", "",
                 *render_idle(idle), ""]  # fmt: skip
    if traces:
        body += ["## System calls per keep-alive request (strace -c -f, wrk -t1 -c16)", "",
                 "Counts while wrk ran, divided by the requests wrk completed (strace slows the server; "
                 "the counts per request are what matter).", "", *render_syscalls(traces), ""]  # fmt: skip
    for title_md, md, ok in (
        ("WebSocket echo (bench/wsbench.py)", ws_md, ws),
        ("HTTP/2 (bench/h2bench.py)", h2_md, h2),
    ):
        if ok:
            inner = [
                line.replace("# ", "### ", 1) if line.startswith("# ") else line for line in md.splitlines()
            ]
            body += [f"## {title_md}", "", *inner, ""]
    commands = {name: display_command(SERVERS_BY_NAME[name], args.server_cpu) for name in SERVERS_BY_NAME
                if name in used}  # fmt: skip
    body += ["## Setup", "",
             f"- {args.repeat} round(s), wrk {args.duration}s after {args.warmup}s warm-up, "
             f"-t{args.wrk_threads}; quiet check before the run: busy {busy_txt}; loadavg {quiet.loadavg}"
             + ("; WARNINGS: " + "; ".join(quiet.warnings) if quiet.warnings else ""),
             f"- limits (after raising RLIMIT_NOFILE): {limits}",
             *[f"- note: {n}" for n in notes + child_errors + ([chart_error] if chart_error else [])],
             "", "| server | command |", "|---|---|",
             *[f"| {name} | `{cmd}` |" for name, cmd in commands.items()]]  # fmt: skip

    def report(image: str) -> str:
        pic = [f"![throughput relative to uvicorn]({image})", ""] if groups_chart and not chart_error else []
        return "\n".join([*header, *pic, *body]) + "\n"

    stem.with_suffix(".md").write_text(report(stem.with_suffix(".png").name))
    raw = {
        "started": started_at.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "interrupted": interrupted,
        "command": cmdline,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "versions": versions,
        "targets": [asdict(r) for r in rows],
        "chart": {"title": title, "footnote": footnote,
                  "groups": [{"label": label, "ratios": ratios} for label, ratios in groups_chart]},
        "http": {"medians": [{"server": srv, "scenario": sc, **asdict(c)} for (srv, sc), c in cells.items()],
                 "samples": [asdict(s) for s in samples], "discarded": [asdict(s) for s in discarded]},
        "idle": [asdict(s) for s in idle],
        "syscalls": [asdict(s) for s in traces],
        "ws": ws,
        "h2": h2,
    }  # fmt: skip
    stem.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    log(f"wrote {stem}.md, .json" + (", .png" if stem.with_suffix(".png").exists() else ""))
    if args.publish and not interrupted:
        publish(stem, report)
    print("\n".join(render_targets(rows)), flush=True)
    return 130 if interrupted else 0


def publish(stem: Path, report: Callable[[str], str]) -> None:
    DOCS_DIR.mkdir(exist_ok=True)
    (DOCS_DIR / "benchmarks.md").write_text(report("benchmark.png"))
    if stem.with_suffix(".png").exists():
        shutil.copyfile(stem.with_suffix(".png"), DOCS_DIR / "benchmark.png")
    log(f"published to {DOCS_DIR / 'benchmarks.md'} and {DOCS_DIR / 'benchmark.png'}")


if __name__ == "__main__":
    sys.exit(main())
