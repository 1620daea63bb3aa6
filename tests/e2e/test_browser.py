"""A real browser: headless Chromium talks WebSocket to monoceros.

monoceros serves ``browser_page.PAGE``; its script opens a WebSocket to the
same host, exchanges text both ways and one binary message, and writes each
event into the DOM.  The test starts Debian's ``chromium`` (installed here when
absent and running as root, as ``scripts/test`` does) with a fresh profile and
``--remote-debugging-port=0``, reads the DevTools port from the profile's
``DevToolsActivePort`` file, and asks the page through the DevTools protocol
(``Runtime.evaluate`` with ``awaitPromise``) for its log once it reports done.
The browser's process group is always killed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_page import BINARY, EXPECTED_LOG, PING, Exchange, make_app
from conftest import run_server
from websockets.asyncio.client import ClientConnection, connect

DEADLINE = 20.0  # seconds for the browser to start, load the page and finish the exchange
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]
# Resolves with the page's log when the page says it is done (polling in the page, so
# one DevTools call waits for it; rejects if the page reports an error).
READ_LOG = """new Promise((resolve) => {
  const check = () => {
    const state = document.body && document.body.dataset.state;
    if (state === "done" || state === "error") {
      const log = [...document.querySelectorAll("#log li")].map((li) => li.textContent);
      resolve(JSON.stringify({state, log}));
    } else {
      setTimeout(check, 10);
    }
  };
  check();
})"""


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True
        )
        path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed (scripts/test installs it when run as root)")
    return path


@contextlib.contextmanager
def browser(chromium: str, url: str, profile: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Headless Chromium on ``url`` in its own process group, killed on exit."""
    with (profile.parent / "chromium.log").open("wb") as log:
        proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # helpers (zygote, renderers) too
            proc.wait()


async def devtools_url(profile: Path, proc: subprocess.Popen[bytes], deadline: float) -> str:
    """The browser's DevTools WebSocket URL, once Chromium has written it."""
    active = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError):
            port, path = active.read_text().split()[:2]
            return f"ws://127.0.0.1:{int(port)}{path}"
        await asyncio.sleep(0.02)  # poll interval for a file Chromium writes once
    raise AssertionError("chromium did not write DevToolsActivePort in time")


class DevTools:
    """The few DevTools protocol calls the test needs, over one browser connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        request: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        await self.ws.send(json.dumps(request))
        while True:  # skip events until our answer
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result


async def page_log(url: str, deadline: float) -> dict[str, Any]:
    async with connect(url, max_size=None) as ws:
        cdp = DevTools(ws)
        while True:
            targets = (await cdp.call("Target.getTargets"))["targetInfos"]
            pages = [t for t in targets if t["type"] == "page"]
            if pages:
                break
            assert time.monotonic() < deadline, "chromium opened no page"
        attached = await cdp.call("Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True)
        session = attached["sessionId"]
        while True:
            try:
                result = await cdp.call(
                    "Runtime.evaluate", session, expression=READ_LOG, awaitPromise=True, returnByValue=True
                )
            except RuntimeError:  # the first (blank) document went away while we asked it
                assert time.monotonic() < deadline, "the page never became readable"
                continue
            if "exceptionDetails" in result:
                raise AssertionError(f"page script failed: {result['exceptionDetails']}")
            data: dict[str, Any] = json.loads(result["result"]["value"])
            return data


# The run itself is bounded by DEADLINE; the limit is for the one-off apt-get install of chromium.
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("ws", "http"), [("websockets", "httptools"), ("wsproto", "h11")], ids=["websockets", "wsproto"]
)
def test_browser_websocket(chromium: str, tmp_path: Path, ws: str, http: str) -> None:
    exchange = Exchange()
    with run_server(make_app(exchange), ws=ws, http=http) as srv:
        profile = tmp_path / "profile"
        deadline = time.monotonic() + DEADLINE
        with browser(chromium, f"http://127.0.0.1:{srv.port}/", profile) as proc:

            async def run() -> dict[str, Any]:
                url = await devtools_url(profile, proc, deadline)
                return await asyncio.wait_for(page_log(url, deadline), deadline - time.monotonic())

            result = asyncio.run(run())
    assert result == {"state": "done", "log": EXPECTED_LOG}
    assert exchange.path == "/ws"
    assert exchange.received == [PING, BINARY, "bye"]
