"""gunicorn with monoceros's worker classes: the real ``gunicorn`` command."""

from __future__ import annotations

import signal
import ssl
import sys
import threading

import httpx
import pytest
from procs import Monoceros
from tlsfiles import TLSFiles, make_tls_files

GUNICORN = (sys.executable, "-m", "gunicorn")
LISTENING = r"Listening at: (\S+)"
BOOTED = r"Booting worker with pid: (\d+)"


@pytest.mark.parametrize("worker", ["MonocerosWorker", "MonocerosH11Worker"])
def test_gunicorn_serves_with_the_worker_class(worker: str) -> None:
    args = ["-k", f"monoceros.workers.{worker}", "-b", "127.0.0.1:0", "-w", "2", "--graceful-timeout", "5"]
    with Monoceros([*args, "procapps:app"], command=GUNICORN, app_dir=False) as proc:
        url = proc.wait_for(LISTENING)[0].group(1)
        proc.wait_for(BOOTED, 2)
        proc.wait_for("app: startup", 2)
        assert httpx.get(url).text == "hello"
        assert httpx.get(url + "/state").json() == {"greeting": "hello from startup"}
        # SIGTERM: gunicorn stops its workers gracefully; the slow request completes.
        result: list[str] = []
        thread = threading.Thread(target=lambda: result.append(httpx.get(url + "/slow?1", timeout=10).text))
        thread.start()
        proc.wait_for("app: slow started")
        proc.signal(signal.SIGTERM)
        thread.join(10)
        assert proc.wait() == 0
    assert result == ["done"]
    proc.wait_for("app: shutdown", 2)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def test_gunicorn_max_requests_and_tls(tls: TLSFiles) -> None:
    args = [
        "-k", "monoceros.workers.MonocerosWorker", "-b", "127.0.0.1:0", "--max-requests", "2",
        "--certfile", tls.cert, "--keyfile", tls.key,
    ]  # fmt: skip
    with Monoceros([*args, "procapps:app"], command=GUNICORN, app_dir=False) as proc:
        url = proc.wait_for(LISTENING)[0].group(1).replace("http://", "https://")
        proc.wait_for(BOOTED)
        pids = []
        with httpx.Client(verify=ssl.create_default_context(cafile=tls.ca_cert)) as client:
            for _ in range(6):
                pids.append(client.get(url + "/pid").text)
        proc.wait_for(BOOTED, 3)
        assert len(set(pids)) >= 2, pids  # each worker retires after its limit
        assert "Maximum request limit of 2 exceeded" in "\n".join(proc.stderr)


def test_gunicorn_stops_when_the_app_cannot_start() -> None:
    args = ["-k", "monoceros.workers.MonocerosWorker", "-b", "127.0.0.1:0", "procapps:failing_startup"]
    with Monoceros(args, command=GUNICORN, app_dir=False) as proc:
        assert proc.wait(20) != 0
    assert "Application startup failed" in "\n".join(proc.stderr)
    assert "Worker failed to boot" in "\n".join(proc.stderr)
