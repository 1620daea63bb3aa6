"""Continuous load from real clients, counting what fails.

:class:`Traffic` runs ``clients`` threads, each an ``httpx.Client`` (keep-alive
connections, as a real client pool) sending GET requests in a loop until
stopped, bounded by ``limit`` requests per client.  Tests wait on
:meth:`wait_for` (a condition, no sleeping) for a number of answered
requests, so that traffic is known to flow before and after an event.
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx


class Traffic:
    def __init__(self, url: str, clients: int = 2, path: str = "/pid", limit: int = 20000) -> None:
        self.url = url + path
        self.limit = limit
        self.ok = 0
        self.failures: list[str] = []
        self.served_by: Counter[str] = Counter()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(self.limit):
                if self._stop.is_set():
                    return
                try:
                    response = client.get(self.url)
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    with self._cond:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                        self._cond.notify_all()
                    continue
                with self._cond:
                    self.ok += 1
                    self.served_by[response.text] += 1
                    self._cond.notify_all()

    def wait_for(self, more: int, timeout: float = 15) -> None:
        """Wait until ``more`` further requests were answered."""
        with self._cond:
            goal = self.ok + more
            if not self._cond.wait_for(lambda: self.ok >= goal, timeout):
                raise AssertionError(f"{self.ok}/{goal} requests answered; failures: {self.failures[:5]}")
