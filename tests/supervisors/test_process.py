"""The worker side of the supervisor's pipe, in this process (the subprocess tests
cover it end to end; here its messages are read directly)."""

from __future__ import annotations

import multiprocessing
import socket
import threading
from pathlib import Path

import httpx

from monoceros.config import STARTUP_FAILURE, Config
from monoceros.supervisors._process import serve_worker


def test_worker_announces_ready_answers_pings_from_its_loop_and_retires() -> None:
    parent, child = multiprocessing.Pipe()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        config = Config("procapps:app", log_config=None, limit_max_requests=1, lifespan="off")
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(serve_worker(config, [sock], child)))
        thread.start()
        assert parent.poll(10)
        assert parent.recv() == ("ready",)
        parent.send("ping")
        assert parent.poll(10)
        kind, rss = parent.recv()
        assert kind == "pong" and rss > 1024 * 1024
        with httpx.Client() as client:
            for _ in range(2):
                assert client.get(f"http://127.0.0.1:{port}/").text == "hello"
        thread.join(10)
    assert codes == [0]


def test_worker_that_cannot_start_reports_why(tmp_path: Path) -> None:
    parent, child = multiprocessing.Pipe()
    assert serve_worker(Config("procapps:missing", log_config=None), [], child) == STARTUP_FAILURE
    kind, message = parent.recv()
    assert kind == "failed" and message.startswith('Attribute "missing" not found in module "procapps"')

    (tmp_path / "typo.py").write_text("def app(:\n")
    config = Config("typo:app", log_config=None, app_dir=str(tmp_path))
    assert serve_worker(config, [], child) == STARTUP_FAILURE
    kind, message = parent.recv()
    assert kind == "failed" and message.startswith("cannot load the application: SyntaxError")
