"""systemd socket activation: LISTEN_FDS/LISTEN_PID name sockets passed from fd 3 on."""

from __future__ import annotations

import socket
import sys

import httpx
import pytest
from procs import Monoceros, clean_env

# What systemd does: the socket at fd 3, LISTEN_PID = the server's own pid
# (the pid survives the exec).
ACTIVATE = (
    "import os, sys; os.dup2(int(os.environ['PASSED_FD']), 3);"
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1');"
    "os.execv(sys.executable, [sys.executable, '-m', 'monoceros', *sys.argv[1:]])"
)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serves_on_the_socket_systemd_passed(workers: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = clean_env(PASSED_FD=str(listener.fileno()))
        command = (sys.executable, "-c", ACTIVATE)
        # --port would pick another port: the passed socket wins.
        args = ["--workers", workers, "--port", "0", "procapps:app"]
        with Monoceros(args, env=env, pass_fds=[listener.fileno()], command=command) as proc:
            proc.wait_for("Using 1 socket\\(s\\) passed by systemd socket activation")
            assert proc.url() == f"http://127.0.0.1:{port}"
            assert httpx.get(f"http://127.0.0.1:{port}/env?LISTEN_FDS").text == ""  # not passed on
            assert httpx.get(f"http://127.0.0.1:{port}").text == "hello"


def test_variables_for_another_process_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from monoceros.errors import ConfigError
    from monoceros.listeners import activation_binds

    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_PID", "1")  # init's, not ours
    assert activation_binds() == []
    monkeypatch.setenv("LISTEN_PID", str(__import__("os").getpid()))
    monkeypatch.setenv("LISTEN_FDS", "many")
    with pytest.raises(ConfigError, match="LISTEN_FDS='many'"):
        activation_binds()
