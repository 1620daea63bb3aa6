"""Where the server listens: --bind (repeatable), --host/--port, --uds, --fd, sockets=."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import threading

import httpx
import pytest
from procs import Monoceros

from monoceros import Config, Server
from monoceros.config import BindSpec, parse_bind
from monoceros.errors import ConfigError, StartupError


async def where_app(scope, receive, send) -> None:
    """Answers with the ASGI ``server`` of the request."""
    if scope["type"] != "http":
        return
    body = repr(scope["server"]).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def uds_get(path: str, url: str = "http://localhost/") -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
        return client.get(url)


def test_two_tcp_binds_at_once(server, http_impl: str) -> None:
    with server(where_app, bind=["127.0.0.1:0", "127.0.0.1:0"]) as srv:
        addresses = srv.server.addresses
        assert len(addresses) == 2 and addresses[0] != addresses[1]
        for address in addresses:
            port = int(address.rsplit(":", 1)[1])
            assert httpx.get(address).text == repr(("127.0.0.1", port))


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_bind(server, http_impl: str) -> None:
    with server(where_app, bind=["[::1]:0", "127.0.0.1:0"]) as srv:
        v6, v4 = srv.server.addresses
        assert v6.startswith("http://[::1]:") and v4.startswith("http://127.0.0.1:")
        assert httpx.get(v6).text.startswith("('::1', ")
        assert httpx.get(v4).status_code == 200
    with server(where_app, host="::1") as srv:  # --host takes a bare IPv6 address too
        assert srv.url.startswith("http://[::1]:")
        assert httpx.get(srv.url).status_code == 200


def test_unix_bind(server, http_impl: str, tmp_path) -> None:
    path = str(tmp_path / "app.sock")
    with server(where_app, bind=[f"unix:{path}", "127.0.0.1:0"]) as srv:
        assert srv.server.addresses[0] == f"unix:{path}"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        r = uds_get(path)
        assert r.status_code == 200
        assert r.text == f"({path!r}, None)"  # the ASGI spec's unix-socket form
        assert httpx.get(srv.server.addresses[1]).status_code == 200
    assert not os.path.exists(path)  # removed at exit


def test_uds_setting_and_a_stale_socket_file(server, tmp_path) -> None:
    path = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as crashed:
        crashed.bind(path)  # left behind by a process that died: nobody listens
    with server(where_app, uds=path) as srv:
        assert srv.server.addresses == [f"unix:{path}"]
        assert uds_get(path).status_code == 200


def test_unix_path_in_use_or_not_a_socket(server, tmp_path) -> None:
    path = str(tmp_path / "live.sock")
    with server(where_app, uds=path):
        with pytest.raises(RuntimeError, match="server did not start") as info, server(where_app, uds=path):
            pass
        assert "Address already in use" in str(info.value.__cause__)
        assert uds_get(path).status_code == 200  # the first server was left alone
    precious = tmp_path / "precious.txt"
    precious.write_text("user data")
    with (
        pytest.raises(RuntimeError, match="server did not start") as info,
        server(where_app, uds=str(precious)),
    ):
        pass
    assert "exists and is not a socket" in str(info.value.__cause__)
    assert precious.read_text() == "user data"  # never deleted


def test_port_zero_and_the_startup_log(tmp_path) -> None:
    path = str(tmp_path / "cli.sock")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        fd = listener.fileno()
        fd_port = listener.getsockname()[1]
        args = ["--bind", "127.0.0.1:0", "--bind", f"unix:{path}", "--bind", f"fd://{fd}", "procapps:app"]
        with Monoceros(args, pass_fds=[fd]) as proc:
            tcp, unix, passed = proc.ready(3)
            assert tcp.startswith("http://127.0.0.1:") and not tcp.endswith(":0")
            assert unix == f"unix:{path}"
            assert passed == f"http://127.0.0.1:{fd_port}"
            assert httpx.get(tcp).text == "hello"
            assert uds_get(path).text == "hello"
            assert httpx.get(passed).text == "hello"
            proc.signal()
            assert proc.wait() == 0
    with Monoceros(["--port", "0", "procapps:app"]) as proc:
        address = proc.url()
        assert not address.endswith(":0")
        assert httpx.get(address).text == "hello"


def test_fd_and_uds_options(tmp_path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with Monoceros(
            ["--fd", str(listener.fileno()), "procapps:app"], pass_fds=[listener.fileno()]
        ) as proc:
            assert proc.url() == f"http://127.0.0.1:{port}"
            assert httpx.get(proc.url()).text == "hello"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        path = str(tmp_path / "passed.sock")
        listener.bind(path)
        listener.listen()
        with Monoceros(
            ["--fd", str(listener.fileno()), "procapps:app"], pass_fds=[listener.fileno()]
        ) as proc:
            assert proc.url() == f"unix:{path}"
            assert uds_get(path).text == "hello"
    path = str(tmp_path / "uds.sock")
    with Monoceros(["--uds", path, "procapps:app"]) as proc:
        assert proc.url() == f"unix:{path}"
        assert uds_get(path).text == "hello"
        proc.signal()
        assert proc.wait() == 0
    assert not os.path.exists(path)


def test_sockets_given_to_run_replace_the_binds(http_impl: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = Server(Config(where_app, port=1, http=http_impl, log_config=None))  # port 1 is never bound
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.wait_started(10)
        assert server.addresses == [f"http://127.0.0.1:{port}"]
        assert httpx.get(server.addresses[0]).status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
    sock.close()


def test_bind_port_in_use_is_a_startup_error(server) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server_ = Server(Config(where_app, bind=["127.0.0.1:0", f"127.0.0.1:{port}"], log_config=None))
        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port}: .*in use"):
            asyncio.run(server_.serve())
        assert server_.listeners == []  # the first listener was closed again


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("127.0.0.1:8001", BindSpec("tcp", host="127.0.0.1", port=8001)),
        ("localhost", BindSpec("tcp", host="localhost", port=8000)),
        (":9000", BindSpec("tcp", host="0.0.0.0", port=9000)),
        ("[::1]:8002", BindSpec("tcp", host="::1", port=8002)),
        ("[::]", BindSpec("tcp", host="::", port=8000)),
        ("unix:/run/app.sock", BindSpec("unix", path="/run/app.sock")),
        ("fd://3", BindSpec("fd", fd=3)),
    ],
)
def test_parse_bind(text: str, spec: BindSpec) -> None:
    assert parse_bind(text) == spec
    assert str(spec) in (text, f"{text}:8000", f"0.0.0.0{text}")


@pytest.mark.parametrize(
    "text", ["[::1", "[::1]x", "::1:80", "host:port", "host:70000", "unix:", "fd://three"]
)
def test_parse_bind_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="--bind"):
        parse_bind(text)
