"""The command line: uvicorn's surface, our additions, and one-line errors.

Most tests run the real command (``python -m monoceros``) as a subprocess and
look at its exit code and stderr, as a user would.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest
from procs import Monoceros, clean_env, connect, recv_all, run_cli
from tlsfiles import TLSFiles, make_tls_files
from uvicorn import main as uvicorn_command

import monoceros
from monoceros import __version__

# uvicorn offers these implementation choices through packages that are not ours.
NOT_OURS = {"zttp", "zuvloop"}
# Where we differ from uvicorn on purpose: HTTP/2 is on by default (--no-http2 turns it off).
DIFFERENT_DEFAULTS = {"http2"}
OPTION_LINE = re.compile(r"^  (--[a-z0-9-]+)(?: ?/ ?(--[a-z0-9-]+))?(?: (\[[^\]]*\]|[A-Z]+))?")


def parse_help(text: str) -> dict[str, list[str]]:
    """``--flag`` -> its choice values (empty when it has none), from a --help page."""
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = OPTION_LINE.match(line)
        if not m:
            continue
        primary, secondary, metavar = m.groups()
        choices = metavar[1:-1].split("|") if metavar and metavar.startswith("[") else []
        options[primary] = choices
        if secondary:
            options[secondary] = []
    return options


@pytest.fixture(scope="module")
def help_pages() -> tuple[str, str]:
    uvicorn_help = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--help"], capture_output=True, text=True, check=True
    ).stdout
    ours = run_cli(["--help"])
    assert ours.returncode == 0, ours.stderr
    return uvicorn_help, ours.stdout


def test_help_offers_every_uvicorn_option(help_pages: tuple[str, str]) -> None:
    uvicorn_help, our_help = help_pages
    theirs, ours = parse_help(uvicorn_help), parse_help(our_help)
    assert len(theirs) > 50, "the uvicorn help page was not parsed"
    missing = sorted(set(theirs) - set(ours))
    assert not missing, f"uvicorn options missing from monoceros --help: {missing}"
    for flag, choices in theirs.items():
        wanted = set(choices) - NOT_OURS
        assert wanted <= set(ours[flag]), f"{flag}: uvicorn offers {choices}, we offer {ours[flag]}"
    assert not NOT_OURS & {c for cs in ours.values() for c in cs}
    # and ours on top
    for extra in ("--bind", "--timeout-request-header", "--limit-request-body", "--access-log-format"):
        assert extra in ours


def _comparable(value: object) -> object:
    return int(value) if isinstance(value, int) else value  # IntEnum defaults (ssl) compare as numbers


def test_cli_defaults_and_kinds_match_uvicorn() -> None:
    theirs = {p.name: p for p in uvicorn_command.params}
    ours = {p.name: p for p in monoceros.main.params}
    for name, param in theirs.items():
        assert name in ours, name
        mine = ours[name]
        assert mine.opts == param.opts, name
        if name in DIFFERENT_DEFAULTS:
            assert mine.default is not param.default and mine.secondary_opts, name
        else:
            assert mine.secondary_opts == param.secondary_opts, name
            assert _comparable(mine.default) == _comparable(param.default), name
        assert mine.multiple == param.multiple, name
        if isinstance(param, click.Option):
            assert isinstance(mine, click.Option)
            assert mine.is_flag == param.is_flag, name
        if isinstance(param.type, click.Choice):
            assert isinstance(mine.type, click.Choice), name
            assert set(param.type.choices) - NOT_OURS <= set(mine.type.choices), name
        elif param.type.name in ("integer", "float", "boolean", "path"):
            assert mine.type.name == param.type.name, name


def test_version() -> None:
    result = run_cli(["--version"])
    assert result.returncode == 0
    assert result.stdout.startswith(f"Running monoceros {__version__} with ")
    assert monoceros.__version__ == __version__


def test_help_exits_zero() -> None:
    result = run_cli(["--help"])
    assert result.returncode == 0
    assert "Usage:" in result.stdout and "--bind ADDRESS" in result.stdout


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


# -- bad input: one line on stderr, a non-zero exit, never a traceback ----------------------------
BAD_INPUT = [
    pytest.param(["no_such_module:app"], 1, 'Could not import module "no_such_module"', id="missing-module"),
    pytest.param(
        ["procapps:nothing_here"], 1, r'"nothing_here" not found .* has: .*\bapp\b', id="missing-attr"
    ),
    pytest.param(["procapps:not_callable"], 1, "not callable", id="not-callable"),
    pytest.param(["procapps"], 1, 'must be in format "<module>:<attribute>"', id="no-colon"),
    pytest.param(["--factory", "procapps:wsgi_hello"], 1, "factory", id="bad-factory"),
    pytest.param([], 2, "Missing argument 'APP'", id="no-app"),
    pytest.param(["--no-such-flag", "procapps:app"], 2, "No such option", id="unknown-flag"),
    pytest.param(["--port", "abc", "procapps:app"], 2, "'--port'", id="port-not-int"),
    pytest.param(
        ["--port", "70000", "procapps:app"], 1, "--port must be between 0 and 65535", id="port-range"
    ),
    pytest.param(["--bind", "[::1", "procapps:app"], 1, r"--bind '\[::1'", id="bind-bracket"),
    pytest.param(["--bind", "localhost:http", "procapps:app"], 1, "port must be a number", id="bind-port"),
    pytest.param(["--bind", "::1:80", "procapps:app"], 1, "brackets", id="bind-ipv6"),
    pytest.param(["--bind", "unix:", "procapps:app"], 1, "needs a path", id="bind-unix"),
    pytest.param(["--bind", "fd://x", "procapps:app"], 1, "file descriptor number", id="bind-fd"),
    pytest.param(["--fd", "987", "procapps:app"], 3, "file descriptor 987", id="fd-not-open"),
    pytest.param(["--http", "zttp", "procapps:app"], 2, "'--http'", id="http-zttp"),
    pytest.param(["--loop", "zuvloop", "procapps:app"], 1, "--loop 'zuvloop'", id="loop-zuvloop"),
    pytest.param(["--loop", "no_such_module:factory", "procapps:app"], 1, "no_such_module", id="loop-import"),
    pytest.param(["--lifespan", "sometimes", "procapps:app"], 2, "'--lifespan'", id="lifespan-choice"),
    pytest.param(["--log-level", "loud", "procapps:app"], 2, "'--log-level'", id="log-level"),
    pytest.param(
        ["--log-config", "/no/such/file.json", "procapps:app"], 2, "does not exist", id="log-config"
    ),
    pytest.param(["--env-file", "/no/such/.env", "procapps:app"], 2, "does not exist", id="env-file"),
    pytest.param(["--ssl-keyfile", "/no/key.pem", "procapps:app"], 1, "--ssl-certfile", id="ssl-key-only"),
    pytest.param(
        ["--ssl-certfile", "/no/cert.pem", "--ssl-keyfile", "/no/key.pem", "procapps:app"],
        1,
        "--ssl-certfile '/no/cert.pem': no such file",
        id="ssl-missing-files",
    ),
    pytest.param(
        ["--ssl-certfile", "procapps.py", "--ssl-keyfile", "/no/key.pem", "procapps:app"],
        1,
        "--ssl-keyfile '/no/key.pem': no such file",
        id="ssl-missing-key",
    ),
    pytest.param(
        ["--ssl-certfile", "procapps.py", "procapps:app"], 1, "not a PEM certificate", id="ssl-not-pem"
    ),
    pytest.param(["--header", "no-colon", "procapps:app"], 1, "Name:Value", id="header"),
    pytest.param(
        ["--limit-concurrency", "0", "procapps:app"], 1, "--limit-concurrency must be > 0", id="limit"
    ),
    pytest.param(
        ["--h2-max-concurrent-streams", "0", "procapps:app"], 1, "--h2-max-concurrent-streams must be > 0",
        id="h2-streams",
    ),
    pytest.param(
        ["--h2-initial-window-size", "0", "procapps:app"], 1, "--h2-initial-window-size must be between",
        id="h2-window",
    ),
    pytest.param(
        ["--h2-max-header-list-size", "10", "procapps:app"], 1, "--h2-max-header-list-size must be between",
        id="h2-header-list",
    ),
    pytest.param(["--ws", "bogus", "procapps:app"], 2, "Invalid value for '--ws'", id="ws"),
    pytest.param(["--ws-max-size", "0", "procapps:app"], 1, "--ws-max-size must be > 0", id="ws-max"),
    pytest.param(["--ws-max-queue", "-1", "procapps:app"], 1, "--ws-max-queue must be > 0", id="ws-queue"),
    pytest.param(
        ["--ws-ping-interval", "-1", "procapps:app"], 1, "--ws-ping-interval must be >= 0", id="ws-ping"
    ),
]


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, pattern: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize(("args", "code", "pattern"), BAD_INPUT)
def test_bad_input_is_one_line(args: list[str], code: int, pattern: str) -> None:
    assert_one_line_error(run_cli(["--log-level", "warning", "--lifespan", "off", *args]), code, pattern)


def test_bad_log_config_file(tmp_path) -> None:
    bad = tmp_path / "logging.json"
    bad.write_text("{not json")
    result = run_cli(["--log-config", str(bad), "procapps:app"])
    assert_one_line_error(result, 1, "logging.json")


def test_encrypted_key_without_password(tls: TLSFiles) -> None:
    result = run_cli(
        [
            "--ssl-certfile",
            tls.cert,
            "--ssl-keyfile",
            tls.encrypted_key,
            "--log-level",
            "warning",
            "procapps:app",
        ]
    )
    assert_one_line_error(result, 1, "encrypted: give --ssl-keyfile-password")
    result = run_cli(
        [
            "--ssl-certfile", tls.cert, "--ssl-keyfile", tls.encrypted_key,
            "--ssl-keyfile-password", "wrong", "--log-level", "warning", "procapps:app",
        ]
    )  # fmt: skip
    assert_one_line_error(result, 1, "wrong --ssl-keyfile-password")


def test_key_of_another_certificate(tls: TLSFiles) -> None:
    result = run_cli(
        ["--ssl-certfile", tls.cert, "--ssl-keyfile", tls.other_key, "--log-level", "warning", "procapps:app"]
    )
    assert_one_line_error(result, 1, "is not the key of the certificate")


def test_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["--port", str(port), "--log-level", "warning", "procapps:no_lifespan"])
    assert_one_line_error(result, 3, f"cannot listen on 127.0.0.1:{port}: .*in use")


def test_lifespan_startup_failure_exits_3() -> None:
    result = run_cli(["--port", "0", "procapps:failing_startup"])
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "Error: Application startup failed. Exiting."
    assert "the database is down" in result.stderr


def test_workers_one_and_ws_none_are_accepted() -> None:
    with Monoceros(["--workers", "1", "--ws", "none", "--ws", "auto", "--port", "0", "procapps:app"]) as proc:
        assert httpx.get(proc.url()).text == "hello"


# -- environment variables ---------------------------------------------------------------------------
def test_every_option_reads_a_monoceros_variable() -> None:
    env = clean_env(MONOCEROS_LIFESPAN="sometimes")
    assert_one_line_error(run_cli(["procapps:app"], env=env), 2, "'--lifespan'")
    env = clean_env(MONOCEROS_WORKERS="0")
    assert_one_line_error(run_cli(["procapps:app"], env=env), 1, "--workers must be > 0")
    env = clean_env(MONOCEROS_SSL_KEYFILE="/no/key.pem")
    assert_one_line_error(run_cli(["procapps:app"], env=env), 1, "--ssl-certfile")


def test_web_concurrency() -> None:
    env = clean_env(WEB_CONCURRENCY="many")
    assert_one_line_error(run_cli(["procapps:app"], env=env), 1, "WEB_CONCURRENCY='many'")
    env = clean_env(WEB_CONCURRENCY="1", MONOCEROS_PORT="0")
    with Monoceros(["procapps:app"], env=env) as proc:
        assert httpx.get(proc.url()).text == "hello"
    assert "Started parent process" not in "\n".join(proc.stderr)  # one worker: no supervisor
    env = clean_env(WEB_CONCURRENCY="2", MONOCEROS_PORT="0")
    with Monoceros(["procapps:app"], env=env) as proc:
        proc.wait_for(r"Worker \[\d+\] ready", 2)
        assert httpx.get(proc.url()).text == "hello"


def test_settings_from_environment(tmp_path) -> None:
    env = clean_env(
        MONOCEROS_APP="procapps:app",
        MONOCEROS_BIND="127.0.0.1:0 127.0.0.1:0",  # a multiple option: whitespace separated
        MONOCEROS_ACCESS_LOG="false",
        MONOCEROS_HEADERS="x-from-env:yes",  # named after the parameter, as uvicorn
        FORWARDED_ALLOW_IPS="*",
    )
    with Monoceros([], env=env) as proc:
        first, second = proc.ready(2)
        assert first != second
        r = httpx.get(first + "/scheme", headers={"x-forwarded-proto": "https"})
        assert r.headers["x-from-env"] == "yes"
        assert r.text == "https"  # FORWARDED_ALLOW_IPS trusted the proxy header
        proc.signal()
        assert proc.wait() == 0
    assert not any('"GET /scheme' in line for line in proc.lines)


# -- options that change what is served --------------------------------------------------------------
def test_headers_and_default_header_switches(http_impl: str) -> None:
    args = ["--http", http_impl, "--port", "0", "--header", "X-One: 1", "--header", "X-Two:2"]
    with Monoceros([*args, "--no-date-header", "--no-server-header", "procapps:app"]) as proc:
        r = httpx.get(proc.url())
        assert (r.headers["x-one"], r.headers["x-two"]) == ("1", "2")
        assert "date" not in r.headers and "server" not in r.headers
    with Monoceros(["--http", http_impl, "--port", "0", "--header", "server:custom", "procapps:app"]) as proc:
        r = httpx.get(proc.url())
        assert r.headers.get_list("server") == ["custom"]
        assert "date" in r.headers


def test_factory_flag_and_detection() -> None:
    with Monoceros(["--factory", "--port", "0", "procapps:factory"]) as proc:
        assert httpx.get(proc.url()).text == "hello"
        assert not any("factory detected" in line for line in proc.lines)
    with Monoceros(["--port", "0", "procapps:factory"]) as proc:
        assert httpx.get(proc.url()).text == "hello"
        proc.wait_for("WARNING: +ASGI app factory detected")
        proc.wait_for("app: factory called")


@pytest.mark.parametrize("interface", ["wsgi", "auto"])
def test_wsgi_interface(interface: str, http_impl: str) -> None:
    args = ["--http", http_impl, "--interface", interface, "--port", "0", "procapps:wsgi_hello"]
    with Monoceros(args) as proc:
        assert httpx.get(proc.url()).text == "hello from wsgi"


def test_env_file(tmp_path) -> None:
    env_file = tmp_path / "settings.env"
    env_file.write_text("GREETING=from-env-file\n")
    with Monoceros(["--env-file", str(env_file), "--port", "0", "procapps:app"]) as proc:
        assert httpx.get(proc.url() + "/env?GREETING").text == "from-env-file"


def test_root_path(http_impl: str) -> None:
    with Monoceros(["--http", http_impl, "--root-path", "/api", "--port", "0", "procapps:app"]) as proc:
        assert httpx.get(proc.url() + "/root").json() == {"root_path": "/api", "path": "/api/root"}


def test_limit_max_requests_stops_the_process(http_impl: str) -> None:
    with Monoceros(["--http", http_impl, "--limit-max-requests", "2", "--port", "0", "procapps:app"]) as proc:
        url = proc.url()
        for _ in range(2):
            with httpx.Client() as client:  # new connection each time
                assert client.get(url).status_code == 200
        assert proc.wait() == 0
        proc.wait_for("Maximum request limit of 2 exceeded")


def test_timeout_keep_alive_and_request_header(http_impl: str) -> None:
    args = ["--http", http_impl, "--timeout-keep-alive", "1", "--timeout-request-header", "1", "--port", "0"]
    with Monoceros([*args, "procapps:app"]) as proc:
        address = proc.url()
        # Both at once: the same once-a-second sweep ends them.
        with connect(address) as idle, connect(address) as slow:
            idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            slow.sendall(b"GET / HTTP/1.1\r\n")  # a head that never ends
            assert recv_all(idle).startswith(b"HTTP/1.1 200")  # then closed when idle for 1 s
            assert recv_all(slow).startswith(b"HTTP/1.1 408")


def test_limit_request_body(http_impl: str) -> None:
    with Monoceros(
        ["--http", http_impl, "--limit-request-body", "10", "--port", "0", "procapps:app"]
    ) as proc:
        assert httpx.post(proc.url(), content=b"x" * 11).status_code == 413
        assert httpx.post(proc.url(), content=b"x" * 10).status_code == 200


# -- logging -----------------------------------------------------------------------------------------
def test_access_log_format(http_impl: str) -> None:
    fmt = '%(h)s "%(r)s" %(s)s %(b)s'
    with Monoceros(["--http", http_impl, "--access-log-format", fmt, "--port", "0", "procapps:app"]) as proc:
        httpx.get(proc.url() + "/?q=1")
        proc.wait_for(r'127\.0\.0\.1 "GET /\?q=1 HTTP/1\.1" 200 5$')


@pytest.mark.parametrize("colours", ["--no-use-colors", "--use-colors"])
def test_default_access_lines_are_uvicorns_and_none_is_lost(colours: str) -> None:
    """The batched access writer (the default configuration) prints uvicorn's
    bytes, and the lines of requests answered just before a SIGTERM are there."""
    paths = ["/", "/?q=1&r=%20", "/missing"]
    seen: dict[str, list[str]] = {}
    for name, command, running in (
        ("monoceros", (sys.executable, "-m", "monoceros"), r"Monoceros running on (\S+)"),
        ("uvicorn", (sys.executable, "-m", "uvicorn"), r"Uvicorn running on (\S+)"),
    ):
        with Monoceros([colours, "--port", "0", "procapps:app"], command=command) as proc:
            url = re.sub(r"\x1b\[[0-9;]*m", "", proc.wait_for(running)[0].group(1))
            with httpx.Client() as client:
                for path in paths * 30:
                    client.get(url + path)
            proc.signal()
            code = proc.wait()
            assert code == 0 or name == "uvicorn"  # uvicorn re-raises the signal after its shutdown
        port = re.compile(r"127\.0\.0\.1:\d+")
        seen[name] = [port.sub("CLIENT", line) for line in proc.stdout]
    assert len(seen["monoceros"]) == 90
    assert seen["monoceros"] == seen["uvicorn"]


def test_startup_heap_is_frozen_in_a_server_process() -> None:
    # The collector skips what existed at startup (see Server._serve); a
    # server in a thread of the test process (run_server) leaves it alone.
    with Monoceros(["--port", "0", "procapps:app"]) as proc:
        assert int(httpx.get(proc.url() + "/gc-frozen").text) > 10_000


def test_log_level_trace(http_impl: str) -> None:
    with Monoceros(["--http", http_impl, "--log-level", "trace", "--port", "0", "procapps:app"]) as proc:
        httpx.get(proc.url())
        proc.wait_for(r"TRACE: +ASGI \[\d+\] Started scope=")
        proc.wait_for(r"TRACE: +ASGI \[\d+\] Send \{'type': 'http.response.body', 'body': '<5 bytes>'")
        proc.wait_for(r"TRACE: +ASGI \[\d+\] Completed")
    with Monoceros(["--http", http_impl, "--port", "0", "procapps:app"]) as proc:
        httpx.get(proc.url())
        proc.wait_for('"GET / HTTP/1.1" 200')
        assert not any("TRACE" in line for line in proc.lines)


def _file_logging(log_file: str) -> dict[str, object]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s %(levelname)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": log_file, "formatter": "plain"}},
        "loggers": {
            "monoceros.error": {"handlers": ["file"], "level": "INFO", "propagate": False},
            "monoceros.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
        },
    }


def _write_config(path, kind: str, log_file) -> None:
    if kind == "json":
        path.write_text(json.dumps(_file_logging(str(log_file))))
    elif kind == "yaml":
        yaml = pytest.importorskip("yaml")
        path.write_text(yaml.safe_dump(_file_logging(str(log_file))))
    else:
        path.write_text(
            "[loggers]\nkeys=root,access,error\n\n"
            "[handlers]\nkeys=file\n\n"
            "[formatters]\nkeys=plain\n\n"
            "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
            "[logger_access]\nlevel=INFO\nhandlers=file\npropagate=0\nqualname=monoceros.access\n\n"
            "[logger_error]\nlevel=INFO\nhandlers=file\npropagate=0\nqualname=monoceros.error\n\n"
            f"[handler_file]\nclass=FileHandler\nformatter=plain\nargs=({str(log_file)!r},)\n\n"
            "[formatter_plain]\nformat=%(name)s %(levelname)s %(message)s\n"
        )


@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
def test_log_config_file_takes_effect(tmp_path, kind: str) -> None:
    log_file = tmp_path / "server.log"
    config = tmp_path / f"logging.{kind}"
    _write_config(config, kind, log_file)
    # The startup line goes to the file, not to stderr: listen on a socket we
    # made, so the request simply waits in its backlog until the server serves.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        args = ["--log-config", str(config), "--fd", str(listener.fileno()), "procapps:app"]
        with Monoceros(args, pass_fds=[listener.fileno()]) as proc:
            assert httpx.get(f"http://127.0.0.1:{port}/state", timeout=10).status_code == 200
            proc.signal()
            assert proc.wait() == 0
    text = log_file.read_text()
    assert "monoceros.error INFO Monoceros running on http://127.0.0.1:" in text
    assert "monoceros.access INFO 127.0.0.1:" in text and '"GET /state HTTP/1.1" 200' in text
    assert "monoceros.error INFO Finished server process" in text
    assert not any("running on" in line for line in proc.lines)


# -- in process -------------------------------------------------------------------------------------
def test_main_in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert monoceros.main.main(["--version"], standalone_mode=False) == 0
    assert capsys.readouterr().out.startswith("Running monoceros")
    calls = []
    monkeypatch.setattr("monoceros.cli.run", lambda app, **kwargs: calls.append((app, kwargs)))
    with pytest.raises(SystemExit) as info:
        monoceros.main.main(["--port", "9", "--header", "a:b", "x:app"])
    assert info.value.code == 0
    # Only what was given is passed on (defaults live in Config), plus uvicorn's app_dir "".
    assert calls == [("x:app", {"port": 9, "headers": ["a:b"], "app_dir": ""})]

    def interrupted(app: str, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("monoceros.cli.run", interrupted)
    with pytest.raises(SystemExit) as info:
        monoceros.main.main(["x:app"])
    assert info.value.code == 130
    assert capsys.readouterr().err.strip() == "Error: Aborted."


def test_example_hello_app(http_impl: str) -> None:
    repo = Path(__file__).resolve().parent.parent
    args = ["--http", http_impl, "--port", "0", "--app-dir", str(repo), "examples.hello:app"]
    with Monoceros(args, app_dir=False) as proc:
        r = httpx.get(proc.url())
        assert r.status_code == 200 and r.text == "Hello, world!"
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        proc.signal()
        assert proc.wait() == 0
    assert any("ASGI 'lifespan' protocol appears unsupported." in line for line in proc.lines)
