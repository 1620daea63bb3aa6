"""A real ``redis-server`` for the broadcast tests.

:class:`RedisServer` runs one on a free port in a temporary folder, without
persistence, and waits for it the way a client would: its "Ready to accept
connections" log line, then a ``PING`` answered ``PONG``.  ``stop()`` and
``start()`` restart it on the same port (the outage test).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
from typing import Any

READY = "Ready to accept connections"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(port: int, timeout: float = 5) -> bool:
    """True when the server on ``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:  # pragma: no cover - scripts/test installs it
            raise RuntimeError("redis-server is not installed (scripts/test installs it)")
        self.executable = executable
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="monoceros-redis-")
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def start(self, timeout: float = 15) -> None:
        argv = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--logfile", "",
        ]  # fmt: skip
        proc = self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
        ready = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if READY in line:
                    ready.set()
            ready.set()  # it exited: let the waiter look

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or proc.poll() is not None or not ping(self.port):
            raise RuntimeError("redis-server did not start:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc is not None:
            self._reader.join(10)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        self.proc = None

    def client(self) -> Any:
        """A synchronous redis-py client for test-side probes."""
        import redis

        return redis.Redis.from_url(self.url)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()
