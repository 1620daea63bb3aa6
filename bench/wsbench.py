#!/usr/bin/env python3
"""WebSocket echo benchmark: monoceros against uvicorn ``--ws websockets-sansio``.

Run from the repository root with the project's venv::

    python bench/wsbench.py                            # defaults: 3 rounds x 5 s
    python bench/wsbench.py --duration 3 --repeat 2    # quick run
    python bench/wsbench.py --servers monoceros --scenarios echo-c50
    python bench/wsbench.py --list

Same method as ``bench/run.py`` (whose helpers it imports): every measurement
starts a fresh server (one worker, ``bench.wsapps:app``, httptools + uvloop,
no access log, pinned to ``--server-cpu``) on a fresh port, waits for it with a
readiness probe, and runs the load generator ``bench/wsclient.py`` pinned to
``--client-cpu``: ``--connections`` WebSocket connections, each sending a small
pre-masked text message and waiting for its echo before sending the next.
No compression is negotiated (the client offers no extension).  Rounds are
interleaved and the server order rotates.  Reported per (server, scenario):
echo round trips per second and server CPU time (utime + stime) per echoed
message, both as ratios to uvicorn.  See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    CLIENT_BOUND,
    PY,
    REPO_ROOT,
    RESULTS_DIR,
    ArgvBuilder,
    Cell,
    PortPicker,
    RunningServer,
    Sample,
    StartError,
    WrkRun,
    _floor,
    _fmt_ratio,
    _interrupt,
    _ratio,
    _uvicorn_style,
    aggregate,
    cpu_model,
    cpu_shares,
    git_revision,
    log,
    log_tail,
    module_available,
    package_version,
    quiet_check,
    record_cpu,
    server_env,
)

APP = "bench.wsapps:app"
REFERENCE = "uvicorn"


@dataclass(frozen=True)
class WsServer:
    name: str
    module: str  # run with ``python -m``; monoceros and uvicorn share the CLI
    ws: str  # --ws value
    packages: tuple[str, ...]  # distributions whose versions are reported
    default: bool = True
    command: ArgvBuilder | None = None  # a server without uvicorn's CLI (the floor); ``ws`` unused

    def argv(self, port: int) -> list[str]:
        if self.command is not None:
            return self.command(APP, port)
        return [*_uvicorn_style(self.module, "httptools", "uvloop")(APP, port), "--ws", self.ws]

    @property
    def requires(self) -> str:
        """The module that must be importable for this server to run."""
        return self.module if self.command is not None else f"{self.module}.__main__"


SERVERS = [
    WsServer("uvicorn", "uvicorn", "websockets-sansio", ("uvicorn", "websockets", "httptools", "uvloop")),
    WsServer("monoceros", "monoceros", "websockets", ("monoceros", "websockets", "httptools", "uvloop")),
    WsServer("monoceros-wsproto", "monoceros", "wsproto", ("monoceros", "wsproto")),
    WsServer("uvicorn-wsproto", "uvicorn", "wsproto", ("uvicorn", "wsproto"), default=False),
    # No ASGI at all (bench/floor.py): the ceiling of any Python server on this machine.
    WsServer("floor", "bench.floor", "", ("httptools", "uvloop"), default=False, command=_floor("ws")),
]
SERVERS_BY_NAME = {s.name: s for s in SERVERS}


@dataclass(frozen=True)
class WsScenario:
    name: str
    connections: int
    description: str


SCENARIOS = [
    WsScenario("echo-c1", 1, "one connection, sequential round trips (send, wait for the echo, repeat)"),
    WsScenario("echo-c50", 50, "50 connections, each with one message in flight"),
]
SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass
class WsSample(Sample):
    """``rps`` = echo round trips/s, ``requests`` = echoes; plus server CPU per echo."""

    cpu_per_msg_us: float | None = None


def measure(
    args: argparse.Namespace, server: WsServer, scenario: WsScenario, rnd: int, port: int, tmp: Path
) -> WsSample:
    sample = WsSample(round=rnd, scenario=scenario.name, server=server.name, port=port)
    log_path = tmp / f"{server.name}-{scenario.name}-r{rnd}.log"
    srv = RunningServer(["taskset", "-c", str(args.server_cpu), *server.argv(port)], log_path)
    try:
        try:
            sample.startup_s = round(srv.wait_ready(port, args.startup_timeout), 3)
        except StartError as exc:
            sample.error = f"failed to start: {exc}"
            return sample
        sample.wrk_argv = client_argv = [
            "taskset", "-c", str(args.client_cpu), PY, "-m", "bench.wsclient",
            "--port", str(port), "--connections", str(scenario.connections),
            "--duration", str(args.duration), "--warmup", str(args.warmup),
            "--size", str(args.size), "--server-pgid", str(srv.proc.pid),
        ]  # fmt: skip
        limit = args.warmup + args.duration + 60
        try:
            res = subprocess.run(
                client_argv, cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True, timeout=limit
            )
        except subprocess.TimeoutExpired:
            sample.error = f"load generator did not finish in {limit:.0f} s"
            return sample
        sample.wrk_stdout = res.stdout[-2000:] + res.stderr[-2000:]
        if not srv.alive():
            sample.error = "server died during the measurement"
        try:
            data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            sample.error = sample.error or f"load generator failed (exit {res.returncode})"
            return sample
        sample.errors = dict(data.get("errors") or {})
        if "echoes" not in data:
            sample.error = sample.error or data.get("error") or "no result"
            return sample
        echoes, window = int(data["echoes"]), float(data["window_s"])
        cpus = cpu_shares(data["cpu_stat_before"], data["cpu_stat_after"])
        record_cpu(
            sample, WrkRun(res.returncode, "", data["client_cpu_s"], data["server_cpu_s"], window, cpus), args
        )
        sample.requests, sample.duration_s = echoes, round(window, 3)
        sample.rps = echoes / window if window > 0 else 0.0
        if echoes and data["server_cpu_s"] is not None:
            sample.cpu_per_msg_us = data["server_cpu_s"] / echoes * 1e6
        sample.error = sample.error or data.get("error")
        sample.ok = sample.error is None and echoes > 0
        return sample
    finally:
        sample.stopped_by = srv.stop(args.stop_timeout)
        sample.server_log_tail = log_tail(log_path)


def cpu_per_msg(samples: list[WsSample]) -> dict[tuple[str, str], float]:
    per: dict[tuple[str, str], list[float]] = {}
    for s in samples:
        if s.ok and s.cpu_per_msg_us is not None:
            per.setdefault((s.server, s.scenario), []).append(s.cpu_per_msg_us)
    return {k: statistics.median(v) for k, v in per.items()}


def render(
    cells: dict[tuple[str, str], Cell],
    cpu: dict[tuple[str, str], float],
    servers: list[WsServer],
    scenarios: list[WsScenario],
    noisy: float,
) -> list[str]:
    def mark(cell: Cell | None) -> str:
        if cell is None:
            return ""
        text = " ⚠" if cell.ok_runs < cell.runs or cell.errors else ""
        text += " ¹" if cell.client_cpu is not None and cell.client_cpu >= CLIENT_BOUND else ""
        return text + (" ³" if cell.noise is not None and cell.noise > noisy else "")

    names = [s.name for s in scenarios]
    out = [
        f"### Relative to {REFERENCE} (`--ws websockets-sansio`): echo round trips/s (higher is better) "
        "and server CPU per echoed message (lower is better)",
        "",
        "| server | " + " | ".join(f"{n} rt/s" for n in names) + " | "
        + " | ".join(f"{n} CPU/msg" for n in names) + " |",
        "|---|" + "---:|" * (2 * len(names)),
    ]  # fmt: skip
    for server in servers:
        row = []
        for sc in scenarios:
            cell, ref = cells.get((server.name, sc.name)), cells.get((REFERENCE, sc.name))
            ratio = _ratio(cell.rps, ref.rps) if cell and ref else None
            row.append(_fmt_ratio(ratio) + mark(cell))
        for sc in scenarios:
            ratio = _ratio(cpu.get((server.name, sc.name)), cpu.get((REFERENCE, sc.name)))
            row.append(_fmt_ratio(ratio) + mark(cells.get((server.name, sc.name))))
        out.append(f"| {server.name} | " + " | ".join(row) + " |")
    out += [
        "",
        "⚠ = some runs failed or the load generator counted errors (see details).  ",
        f"¹ = the load generator used >= {CLIENT_BOUND:.0%} of its core: it may be the bottleneck.  ",
        f"³ = noisy: other processes took > {noisy:.0%} of a core on the pinned CPUs in the median run.",
        "",
        "### Details (medians over rounds; absolute numbers are machine-specific)",
        "",
        "| scenario | server | round trips/s | rt/s range | server CPU µs/msg | server CPU | client CPU "
        "| noise | ok runs | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for sc in scenarios:
        for server in servers:
            cell = cells.get((server.name, sc.name))
            if cell is None:
                continue
            us = cpu.get((server.name, sc.name))
            errors = ", ".join(f"{k} {v}" for k, v in cell.errors.items()) or "0"
            out.append(
                "| " + " | ".join([
                    sc.name, server.name,
                    "—" if cell.rps is None else f"{cell.rps:,.0f}",
                    "—" if cell.rps_range is None else f"{cell.rps_range:.0%}",
                    "—" if us is None else f"{us:.1f}",
                    "—" if cell.server_cpu is None else f"{cell.server_cpu:.0%}",
                    "—" if cell.client_cpu is None else f"{cell.client_cpu:.0%}",
                    "—" if cell.noise is None else f"{cell.noise:.0%}",
                    f"{cell.ok_runs}/{cell.runs}", errors,
                ]) + " |"
            )  # fmt: skip
    notes = [f"- {srv} / {sc}: {note}" for (srv, sc), cell in cells.items() for note in cell.notes]
    return out + (["", "Failures:", "", *notes] if notes else [])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="WebSocket echo benchmark (ratios to uvicorn --ws websockets-sansio).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--servers", default=",".join(s.name for s in SERVERS if s.default), help="comma list")
    p.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS), help="comma list")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    p.add_argument("--size", type=int, default=16, help="message size in bytes (text, ASCII)")
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU the load generator is pinned to")
    p.add_argument("--startup-timeout", type=float, default=30.0, help="readiness probe deadline, seconds")
    p.add_argument("--stop-timeout", type=float, default=5.0, help="SIGTERM grace before SIGKILL, seconds")
    p.add_argument("--quiet-threshold", type=float, default=0.10, help="busy fraction that counts as noise")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the .md and .json go")
    p.add_argument("--list", action="store_true", help="list servers and scenarios, then exit")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.duration <= 0 or args.warmup < 0 or not 1 <= args.size <= 65535:
        p.error("--repeat >= 1, --duration > 0, --warmup >= 0, 1 <= --size <= 65535")
    return args


def display_command(server: WsServer, cpu: int) -> str:
    sentinel = 65432
    argv = ["taskset", "-c", str(cpu), *server.argv(sentinel)]
    return shlex.join(argv).replace(str(sentinel), "$PORT").replace(PY, Path(PY).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for server in SERVERS:
            note = "" if server.default else "(not default) "
            print(f"server   {server.name:18} {note}{display_command(server, args.server_cpu)}")
        for sc in SCENARIOS:
            print(f"scenario {sc.name:18} {sc.description}")
        return 0
    wanted = [n.strip() for n in args.servers.split(",") if n.strip()]
    scenario_names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in SERVERS_BY_NAME]
    unknown += [n for n in scenario_names if n not in SCENARIOS_BY_NAME]
    if unknown:
        log(f"unknown server/scenario: {', '.join(unknown)} (see --list)")
        return 2
    if REFERENCE not in wanted:
        wanted.insert(0, REFERENCE)
    servers, skipped = [], []
    for server in SERVERS:
        if server.name not in wanted:
            continue
        if module_available(server.requires):
            servers.append(server)
        else:
            skipped.append(f"{server.name}: {server.module} is not importable, skipped")
    scenarios = [SCENARIOS_BY_NAME[n] for n in scenario_names]
    for note in skipped:
        log(f"note: {note}")
    if REFERENCE not in {s.name for s in servers} or not scenarios:
        log("error: the reference server uvicorn is not available, or no scenarios")
        return 2

    quiet = quiet_check([args.server_cpu, args.client_cpu], args.quiet_threshold)
    busy_txt = ", ".join(f"{k} {v:.0%}" for k, v in sorted(quiet.busy.items()))
    log(f"quiet-machine check (1 s): busy {busy_txt}; loadavg {quiet.loadavg}")
    for w in quiet.warnings:
        log(f"WARNING: noisy machine: {w}")
    versions = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": platform.release(),
        "cpu": cpu_model(),
        "monoceros git": git_revision(),
    }
    for dist in dict.fromkeys(d for s in servers for d in s.packages):
        versions[dist] = package_version(dist)
    commands = {s.name: display_command(s, args.server_cpu) for s in servers}
    cmdline = shlex.join([Path(PY).name, *sys.argv]) if argv is None else shlex.join(["wsbench.py", *argv])
    n_runs = args.repeat * len(scenarios) * len(servers)
    log(f"command: {cmdline}")
    log("versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()))
    for name, cmd in commands.items():
        log(f"  {name:18} {cmd}")
    log(
        f"{n_runs} runs, {args.warmup:g}s warm-up + {args.duration:g}s each; "
        f"estimated total ≈ {n_runs * (args.warmup + args.duration + 1.5) / 60:.1f} min"
    )

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    samples: list[WsSample] = []
    started, t0, interrupted = dt.datetime.now(), time.monotonic(), False
    pick_port = PortPicker()
    try:
        with tempfile.TemporaryDirectory(prefix="monoceros-wsbench-") as tmpdir:
            done = 0
            for rnd in range(1, args.repeat + 1):
                shift = (rnd - 1) % len(servers)
                order = servers[shift:] + servers[:shift]
                for scenario in scenarios:
                    for server in order:
                        done += 1
                        s = measure(args, server, scenario, rnd, pick_port(), Path(tmpdir))
                        samples.append(s)
                        prefix = f"[{done}/{n_runs}] round {rnd} {scenario.name:9} {server.name:18}"
                        if s.ok and s.rps is not None:
                            per = f"{s.cpu_per_msg_us:6.1f} µs CPU/msg" if s.cpu_per_msg_us else ""
                            log(f"{prefix} {s.rps:>10,.0f} rt/s {per} (client CPU {s.client_cpu or 0:.0%})")
                        else:
                            log(f"{prefix} FAILED: {s.error} {s.errors or ''}")
                            if s.server_log_tail:
                                log("    " + s.server_log_tail.replace("\n", "\n    "))
    except KeyboardInterrupt:
        interrupted = True
        log("\ninterrupted: servers stopped; reporting what was measured so far")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    cells = aggregate(list[Sample](samples))
    cpu = cpu_per_msg(samples)
    lines = [
        f"# monoceros WebSocket benchmark {started:%Y-%m-%d %H:%M:%S}" + (" (INTERRUPTED)" * interrupted),
        "",
    ]
    lines += render(cells, cpu, servers, scenarios, args.quiet_threshold)
    lines += [
        "",
        "### Setup",
        "",
        f"- command: `{cmdline}`",
        f"- {args.repeat} interleaved round(s), {args.duration:g}s per run after {args.warmup:g}s warm-up; "
        f"{args.size}-byte text messages, no compression; server pinned to CPU {args.server_cpu}, "
        f"bench/wsclient.py to CPU {args.client_cpu}; took {(time.monotonic() - t0) / 60:.1f} min",
        f"- quiet check: busy {busy_txt}; loadavg {quiet.loadavg}",
        "- versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        *[f"- scenario `{sc.name}`: {sc.description}" for sc in scenarios],
        *[f"- note: {n}" for n in skipped],
        *[f"- `{name}`: `{cmd}`" for name, cmd in commands.items()],
    ]
    report = "\n".join(lines) + "\n"
    if samples:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stem = args.results_dir / f"ws-{started:%Y%m%d-%H%M%S}"
        stem.with_suffix(".md").write_text(report)
        raw = {
            "command": cmdline,
            "versions": versions,
            "server_commands": commands,
            "samples": [asdict(s) for s in samples],
        }
        stem.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
        log(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.json')}")
    print(report, flush=True)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
