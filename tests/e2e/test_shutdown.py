"""Graceful shutdown of the real process: signals, drain, timeouts, forced exit.

Each test starts ``python -m monoceros`` (see ``tests/procs.py``), waits for
its "running on" line, and drives it with raw sockets so that it knows
exactly which requests are in flight when the signal lands.  The app
(``tests/procapps.py``) writes ``app: ...`` lines that the tests wait for.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from procs import Monoceros, connect, recv_all

from monoceros import Config, Server

GET = b"GET %s HTTP/1.1\r\nHost: test\r\n\r\n"

# The signal handling differs between the two loops (uvloop runs Python
# signal handlers from its own wakeup fd): cover both, with both signals.
LOOP_AND_SIGNAL = [
    pytest.param("asyncio", signal.SIGTERM, id="asyncio-SIGTERM"),
    pytest.param("uvloop", signal.SIGINT, id="uvloop-SIGINT"),
]


def read_response(sock, body: bytes) -> bytes:
    """Read one response to a keep-alive request, up to and including ``body``."""
    data = b""
    while not data.endswith(body):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def assert_in_order(proc: Monoceros, *patterns: str) -> None:
    positions = [proc.index(p) for p in patterns]
    assert positions == sorted(positions), list(zip(patterns, positions, strict=True))


@pytest.mark.parametrize(("loop", "sig"), LOOP_AND_SIGNAL)
def test_in_flight_requests_finish_idle_connections_close(http_impl: str, loop: str, sig: int) -> None:
    args = ["--http", http_impl, "--loop", loop, "--timeout-keep-alive", "60", "--port", "0", "procapps:app"]
    with Monoceros(args) as proc:
        address = proc.url()
        idle = connect(address)
        idle.sendall(GET % b"/")
        assert read_response(idle, b"hello").startswith(b"HTTP/1.1 200")
        busy = [connect(address) for _ in range(5)]
        for sock in busy:
            sock.sendall(GET % b"/slow?1")
        proc.wait_for("app: slow started", count=5)

        proc.signal(sig)
        started = time.monotonic()
        # The idle keep-alive connection is closed at once, not after 60 s.
        assert idle.recv(1) == b""
        assert time.monotonic() - started < 1
        proc.wait_for("Waiting for connections to close")  # logged after the listeners closed
        with pytest.raises(ConnectionRefusedError):
            connect(address)  # no longer accepting
        for sock in busy:
            response = recv_all(sock)
            assert response.startswith(b"HTTP/1.1 200"), response
            assert b"\r\nconnection: close\r\n" in response.lower()
            assert response.endswith(b"\r\n\r\ndone")
            sock.close()
        idle.close()
        assert proc.wait() == 0
    assert_in_order(
        proc,
        "Shutting down",
        "Waiting for connections to close",
        "Waiting for application shutdown",
        "app: shutdown",
        "Application shutdown complete",
        "Finished server process",
    )


def test_response_started_before_the_signal_closes_when_done(http_impl: str) -> None:
    # Its head went out saying keep-alive; the connection must still close
    # as soon as the response ends, not when the keep-alive timeout fires.
    args = ["--http", http_impl, "--timeout-keep-alive", "60", "--port", "0", "procapps:app"]
    with Monoceros(args) as proc:
        sock = connect(proc.url())
        sock.sendall(GET % b"/stream?0.3")
        proc.wait_for("app: stream started")
        proc.signal()
        proc.wait_for("Waiting for connections to close")
        response = read_response(sock, b"0\r\n\r\n")
        ended = time.monotonic()
        assert b"transfer-encoding: chunked" in response.lower()
        assert response.endswith(b"6\r\nfirst,\r\n4\r\nlast\r\n0\r\n\r\n")
        assert sock.recv(1) == b""
        assert time.monotonic() - ended < 0.25  # closed with the response, not by a later sweep
        assert proc.wait() == 0
        sock.close()


def test_background_work_after_the_response_is_waited_for(http_impl: str) -> None:
    with Monoceros(["--http", http_impl, "--port", "0", "procapps:app"]) as proc:
        assert httpx.get(proc.url() + "/background?0.5").text == "sent"
        proc.wait_for("app: background started")
        proc.signal()
        assert proc.wait() == 0
    assert_in_order(
        proc,
        "Shutting down",
        "Waiting for background tasks to complete",
        "app: background done",
        "app: shutdown",
        "Finished server process",
    )


def test_graceful_timeout_cancels_what_is_left(http_impl: str) -> None:
    args = ["--http", http_impl, "--timeout-graceful-shutdown", "1", "--port", "0", "procapps:app"]
    with Monoceros(args) as proc:
        sock = connect(proc.url())
        sock.sendall(GET % b"/never")
        proc.wait_for("app: never started")
        proc.signal()
        started = time.monotonic()
        assert recv_all(sock) == b""  # dropped: no response was ever started
        assert proc.wait() == 0
        assert time.monotonic() - started < 5
        sock.close()
    assert_in_order(
        proc,
        "Waiting for connections to close",
        r"Cancel 1 running task\(s\), timeout graceful shutdown exceeded",
        "app: never cancelled",
        "app: shutdown",
        "Finished server process",
    )


def test_second_ctrl_c_forces_exit(http_impl: str) -> None:
    with Monoceros(["--http", http_impl, "--port", "0", "procapps:app"]) as proc:
        sock = connect(proc.url())
        sock.sendall(GET % b"/never")
        proc.wait_for("app: never started")
        proc.signal(signal.SIGINT)
        proc.wait_for(r"Waiting for connections to close. \(CTRL\+C to force quit\)")
        proc.signal(signal.SIGINT)
        assert proc.wait(5) == 0
        sock.close()
    assert "app: shutdown" not in proc.lines  # a forced exit skips lifespan shutdown, as uvicorn


def test_second_ctrl_c_during_a_hanging_startup() -> None:
    with Monoceros(["--port", "0", "procapps:hanging_startup"]) as proc:
        proc.wait_for("app: startup hangs")
        proc.signal(signal.SIGINT)
        proc.wait_for(r"Stopping once application startup finishes. \(CTRL\+C to force quit\)")
        proc.signal(signal.SIGINT)
        assert proc.wait(5) == 0
    assert not any("running on" in line for line in proc.lines)


async def _hello(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"hi"})


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_should_exit_from_another_thread(http_impl: str, loop: str) -> None:
    server = Server(Config(_hello, port=0, http=http_impl, loop=loop, log_config=None, timeout_keep_alive=60))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.wait_started(10)
    assert server.started
    url = server.addresses[0]
    with httpx.Client() as client:  # keeps an idle keep-alive connection open
        assert client.get(url).text == "hi"
        started = time.monotonic()
        server.should_exit = True
        thread.join(5)
        assert not thread.is_alive()
        assert time.monotonic() - started < 1
    assert not server.started
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
