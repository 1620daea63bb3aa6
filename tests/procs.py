"""Run the real command line (``python -m monoceros``) as a subprocess.

:class:`Monoceros` starts it, collects stdout and stderr line by line in
background threads, and lets a test wait for a log line (a condition
variable, woken by every new line: no sleeping).  Readiness is the
``running on`` line, which also gives the addresses.  The apps the
subprocess tests serve live in ``tests/procapps.py`` (``--app-dir`` points
at this folder).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
RUNNING = re.compile(r"Monoceros running on (\S+)")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without the variables monoceros reads
    as settings (MONOCEROS_PURE stays: the pure pass's servers run pure too)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (k == "MONOCEROS_PURE" or not k.startswith("MONOCEROS_"))
        and k not in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(args: Sequence[str], timeout: float = 20, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m monoceros ARGS`` to completion (for commands that exit)."""
    kwargs.setdefault("env", clean_env())
    kwargs.setdefault("cwd", TESTS)
    return subprocess.run(
        [sys.executable, "-m", "monoceros", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        **kwargs,
    )


class Monoceros:
    """A running ``python -m monoceros`` process; use as a context manager."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        pass_fds: Iterable[int] = (),
        app_dir: bool = True,
        cwd: str | os.PathLike[str] = TESTS,
        command: Sequence[str] = (sys.executable, "-m", "monoceros"),
    ) -> None:
        argv = [*command, *args]
        if app_dir:
            argv += ["--app-dir", str(TESTS)]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env if env is not None else clean_env(),
            cwd=cwd,
            pass_fds=tuple(pass_fds),
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self._open = 2
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self._cond:
                lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    @property
    def lines(self) -> list[str]:
        """Every line so far, stderr then stdout."""
        with self._cond:
            return [*self.stderr, *self.stdout]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 15) -> list[re.Match[str]]:
        """Wait until ``count`` output lines match ``pattern``; their matches."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for line in [*self.stderr, *self.stdout] if (m := regex.search(line))]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if self._open == 0 or remaining <= 0:
                    raise AssertionError(
                        f"no {count} line(s) matching {pattern!r} (exit code {self.proc.poll()}); "
                        "output:\n" + "\n".join([*self.stderr, *self.stdout])
                    )
                self._cond.wait(remaining)

    def ready(self, count: int = 1) -> list[str]:
        """Wait for the 'running on' line(s); the addresses they name."""
        return [m.group(1) for m in self.wait_for(RUNNING.pattern, count)]

    def url(self) -> str:
        return self.ready()[0]

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def index(self, pattern: str) -> int:
        """The position of the first output line (stderr) matching ``pattern``."""
        regex = re.compile(pattern)
        for i, line in enumerate(self.stderr):
            if regex.search(line):
                return i
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.stderr))

    def __enter__(self) -> Monoceros:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            # Stop it the way a user would, so it also writes its coverage data.
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def host_port(address: str) -> tuple[str, int]:
    """``http://127.0.0.1:8000`` -> ``("127.0.0.1", 8000)``."""
    hostport = address.split("://", 1)[1]
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


def connect(address: str, timeout: float = 5) -> socket.socket:
    """A raw socket connected to a 'running on' address (tcp or unix)."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address[5:])
        return sock
    return socket.create_connection(host_port(address), timeout=timeout)


def recv_all(sock: socket.socket) -> bytes:
    """Read until the peer closes."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
