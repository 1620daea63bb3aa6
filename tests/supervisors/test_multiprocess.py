"""``--workers``: the real command line, real signals, real clients under load.

Readiness is always a log line (``Worker [pid] ready``, ``Worker [pid]
stopped``) or an answered request, never a sleep.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections import Counter

import httpx
import pytest
from procs import Monoceros, clean_env, run_cli
from traffic import Traffic

READY = r"Worker \[(\d+)\] ready"
STOPPED = r"Worker \[(\d+)\] stopped"
QUIET = ["--no-access-log", "--port", "0"]


def ready_pids(proc: Monoceros, count: int) -> list[int]:
    return [int(m.group(1)) for m in proc.wait_for(READY, count)]


def expect_failure(url: str) -> None:
    """A request whose worker is killed or forced to stop."""
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=20)


def test_kill_9_worker_under_load_is_replaced_within_2_seconds() -> None:
    with Monoceros(["--workers", "2", *QUIET, "procapps:app"]) as proc:
        first, second = ready_pids(proc, 2)
        with Traffic(proc.url(), clients=2) as traffic:
            traffic.wait_for(100)
            os.kill(first, signal.SIGKILL)
            killed = time.monotonic()
            *_, (new,) = [ready_pids(proc, 3)[2:]]
            replaced_in = time.monotonic() - killed
            proc.wait_for(rf"Worker \[{first}\] died \(signal SIGKILL\); starting a new one")
            traffic.wait_for(200)
            before = traffic.served_by[str(new)]
            traffic.wait_for(200)
        assert replaced_in < 2.0, f"replacement ready after {replaced_in:.2f} s"
        # Only requests in flight on the killed worker may fail: at most one per client.
        assert len(traffic.failures) <= 2, traffic.failures
        assert traffic.served_by[str(second)] > 0
        assert traffic.served_by[str(new)] >= before  # the replacement serves
        assert new not in (first, second)
        print(f"replaced {replaced_in:.3f} s after SIGKILL; failed requests: {len(traffic.failures)}")


def test_sighup_rolling_restart_under_load_fails_no_request() -> None:
    with Monoceros(["--workers", "2", *QUIET, "procapps:app"]) as proc:
        old = set(ready_pids(proc, 2))
        with Traffic(proc.url(), clients=4) as traffic:
            traffic.wait_for(100)
            proc.signal(signal.SIGHUP)
            proc.wait_for(STOPPED, 2, timeout=20)
            new = set(ready_pids(proc, 4)[2:])
            traffic.wait_for(200)
        assert traffic.failures == []
        assert not new & old and len(new) == 2
        assert any(traffic.served_by[str(pid)] for pid in new)
        # One at a time: each old worker stopped only after a new one was ready.
        lines = proc.stderr
        first_ready = min(i for i, line in enumerate(lines) if re.search(READY, line) and
                          int(re.search(READY, line).group(1)) in new)  # type: ignore[union-attr]
        first_stop = min(i for i, line in enumerate(lines) if re.search(STOPPED, line))
        assert first_ready < first_stop
        assert proc.index("Stopping worker") < proc.index(r"Worker \[\d+\] stopped")


def test_sigterm_completes_slow_requests_in_flight() -> None:
    with Monoceros(["--workers", "2", *QUIET, "procapps:app"]) as proc:
        ready_pids(proc, 2)
        url = proc.url()
        results: list[str] = []

        def slow() -> None:
            results.append(httpx.get(url + "/slow?1", timeout=10).text)

        threads = [threading.Thread(target=slow) for _ in range(4)]
        for thread in threads:
            thread.start()
        proc.wait_for("app: slow started", 4)
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
        for thread in threads:
            thread.join(10)
    assert results == ["done"] * 4
    assert "Received SIGTERM, stopping the workers gracefully" in "\n".join(proc.stderr)
    proc.wait_for(STOPPED, 2)
    proc.wait_for(r"Stopping parent process")


def test_second_signal_forces_and_graceful_timeout_is_honoured() -> None:
    args = ["--workers", "2", "--timeout-graceful-shutdown", "1", *QUIET, "procapps:app"]
    with Monoceros(args) as proc:
        ready_pids(proc, 2)
        url = proc.url()
        failed: list[Exception] = []

        def never() -> None:
            try:
                httpx.get(url + "/never", timeout=10)
            except httpx.HTTPError as exc:
                failed.append(exc)

        thread = threading.Thread(target=never)
        thread.start()
        proc.wait_for("app: never started")
        started = time.monotonic()
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
        took = time.monotonic() - started
        thread.join(10)
    assert failed  # the app never answers: cancelled after the timeout
    assert 1.0 <= took < 5.0
    proc.wait_for("Cancel 1 running task")

    with Monoceros(["--workers", "2", *QUIET, "procapps:app"]) as proc:
        ready_pids(proc, 2)
        url = proc.url()
        thread = threading.Thread(target=expect_failure, args=(url + "/never",))
        thread.start()
        proc.wait_for("app: never started")
        proc.signal(signal.SIGTERM)
        proc.wait_for("Waiting for connections to close")
        proc.signal(signal.SIGINT)
        assert proc.wait() == 0
        thread.join(10)
    proc.wait_for("Forcing the workers to stop")


def test_ttin_ttou_change_the_number_of_workers() -> None:
    with Monoceros(["--workers", "2", *QUIET, "procapps:app"]) as proc:
        first = set(ready_pids(proc, 2))
        proc.signal(signal.SIGTTIN)
        proc.wait_for("increasing the number of workers to 3")
        third = ready_pids(proc, 3)[2]
        pids = set()
        with httpx.Client() as client:  # new connections until all three workers answered
            for _ in range(300):
                pids.add(int(client.get(proc.url() + "/pid", headers={"connection": "close"}).text))
                if len(pids) == 3:
                    break
        assert pids == {*first, third}
        proc.signal(signal.SIGTTOU)
        proc.wait_for("decreasing the number of workers to 2")
        proc.signal(signal.SIGTTOU)
        proc.wait_for("decreasing the number of workers to 1")
        proc.wait_for(STOPPED, 2)
        proc.signal(signal.SIGTTOU)
        proc.wait_for("one worker is the minimum")
        assert httpx.get(proc.url()).text == "hello"


def test_limit_max_requests_recycles_workers() -> None:
    args = ["--workers", "2", "--limit-max-requests", "3", "--limit-max-requests-jitter", "1", *QUIET]
    with Monoceros([*args, "procapps:app"]) as proc:
        ready_pids(proc, 2)
        pids = []
        with httpx.Client(timeout=10) as client:
            # A new connection each time: the two workers together serve at
            # most 2 x (3 + 1) requests, so 20 need at least one replacement,
            # however the kernel spreads the connections.
            for _ in range(20):
                pids.append(client.get(proc.url() + "/pid", headers={"connection": "close"}).text)
        proc.wait_for(r"Worker \[\d+\] exited \(exit code 0\); starting a new one", 2)
    counts = Counter(pids)
    assert len(counts) >= 3
    # 3 + at most 1 of jitter; the server retires on the request after its limit
    assert all(count <= 5 for count in counts.values()), counts


def test_limit_max_rss_replaces_a_growing_worker() -> None:
    with Monoceros(["--workers", "2", "--limit-max-rss", "200", *QUIET, "procapps:app"]) as proc:
        ready_pids(proc, 2)
        grown = int(httpx.get(proc.url() + "/grow?250", timeout=10).text)
        proc.wait_for(rf"Worker \[{grown}\] uses \d+ MB, more than --limit-max-rss 200 MB: replacing it")
        ready_pids(proc, 3)
        proc.wait_for(rf"Worker \[{grown}\] stopped")
        assert not proc.index(r"more than --limit-max-rss") > proc.index(rf"Worker \[{grown}\] stopped")


def test_hung_worker_is_killed_and_replaced() -> None:
    args = ["--workers", "2", "--timeout-worker-healthcheck", "1", *QUIET]
    with Monoceros([*args, "procapps:app"]) as proc:
        ready_pids(proc, 2)
        url = proc.url()
        thread = threading.Thread(target=expect_failure, args=(url + "/block",))
        thread.start()
        proc.wait_for("app: blocking the event loop")
        (hung,) = [int(m.group(1)) for m in proc.wait_for(r"Worker \[(\d+)\] did not answer health checks")]
        proc.wait_for(rf"Worker \[{hung}\] died \(signal SIGKILL\)")
        ready_pids(proc, 3)
        assert httpx.get(url).text == "hello"
        thread.join(10)


def test_worker_startup_failure_stops_the_server_with_its_error() -> None:
    result = run_cli(["--workers", "2", "--port", "0", "procapps:failing_startup"])
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "Error: Application startup failed. Exiting."
    assert "failed to start: stopping the server" in result.stderr
    assert result.stderr.count("Started worker") == 2  # no respawn loop

    result = run_cli(["--workers", "2", "--port", "0", "procapps:missing"])
    assert result.returncode == 3, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith('Error: Attribute "missing" not found in module "procapps"')


def test_respawns_are_rate_limited() -> None:
    env = clean_env(CRASH_AFTER_START="0.1")
    with Monoceros(["--workers", "3", *QUIET, "procapps:app"], env=env) as proc:
        proc.wait_for(r"Workers died \d+ times in 10 s: waiting \d+\.\d s before starting", timeout=20)
        proc.wait_for(r"Worker \[\d+\] died \(exit code 1\)")
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0


def test_pid_file_names_the_supervisor(tmp_path) -> None:
    pid_file = tmp_path / "monoceros.pid"
    pid_file.write_text("999999999\n")  # stale: that process does not exist
    with Monoceros(["--workers", "2", "--pid-file", str(pid_file), *QUIET, "procapps:app"]) as proc:
        ready_pids(proc, 2)
        assert pid_file.read_text() == f"{proc.proc.pid}\n"
        proc.wait_for("Replacing the stale pid file")
        # A second server with the same pid file refuses to start.
        result = run_cli(["--workers", "2", "--pid-file", str(pid_file), "--port", "0", "procapps:app"])
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"Error: --pid-file '{pid_file}': process {proc.proc.pid} is running (another server?)"
        ]
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        assert proc.wait() == 0
    assert not pid_file.exists()


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["--workers", "0"], {}, 1, "Error: --workers must be > 0, not 0"),
        (["--workers", "two"], {}, 2, "Error: Invalid value for '--workers': 'two' is not a valid integer."),
        ([], {"WEB_CONCURRENCY": "-2"}, 1, "Error: WEB_CONCURRENCY=-2: the number of workers must be > 0"),
        (["--timeout-worker-healthcheck", "0"], {}, 1,
         "Error: --timeout-worker-healthcheck must be > 0, not 0"),
        (["--workers", "2", "--pid-file", "/no/such/dir/x.pid"], {}, 1,
         "Error: --pid-file '/no/such/dir/x.pid': cannot write it (No such file or directory)"),
        (["--reload", "--reload-dir", "procapps.py"], {}, 1,
         "Error: --reload-dir 'procapps.py': not a directory"),
        (["--workers", "2", "--ssl-certfile", "procapps.py"], {}, 1,
         "Error: --ssl-certfile 'procapps.py': not a PEM certificate"),
    ],
)  # fmt: skip
def test_bad_process_settings_are_one_line(
    args: list[str], env: dict[str, str], code: int, message: str
) -> None:
    result = run_cli([*args, "--port", "0", "procapps:app"], env=clean_env(**env))
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    assert not [line for line in lines if line.startswith("Error")][:-1]


def test_workers_need_an_import_string() -> None:
    from monoceros import run
    from monoceros.errors import ConfigError

    async def app(scope, receive, send):  # pragma: no cover - never served
        pass

    with pytest.raises(ConfigError, match=r"^--workers 2 needs the application as an import string"):
        run(app, workers=2)
    with pytest.raises(ConfigError, match=r"^--reload needs the application as an import string"):
        run(app, reload=True)


def test_parent_binds_unix_and_tcp_once_and_cleans_up(tmp_path) -> None:
    path = tmp_path / "app.sock"
    binds = ["--bind", f"unix:{path}", "--bind", "127.0.0.1:0"]
    with Monoceros(["--workers", "2", *binds, "procapps:app"]) as proc:
        ready_pids(proc, 2)
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport) as client:
            assert client.get("http://localhost/").text == "hello"
    assert not path.exists()  # the parent removes the socket file it bound
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--workers", "2", "--bind", f"unix:{path}", "--bind", f"127.0.0.1:{port}", "procapps:app"]
        result = run_cli(args)
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert not path.exists()
