"""``Config``: the one declaration of every setting, and how it resolves."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import sys
import threading

import httpx
import procapps
import pytest
import uvicorn

import monoceros
from monoceros import Config
from monoceros.cli import main as cli_main
from monoceros.config import LOG_LEVELS, detect_interface, settings
from monoceros.errors import ConfigError
from monoceros.loader import TraceMessages, import_app
from monoceros.loops import loop_factory


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def load(**kwargs):
    kwargs.setdefault("log_config", None)
    return Config(app, **kwargs).load()


# -- the declaration ---------------------------------------------------------------------------------
def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bogus"):
        monoceros.run(app, bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        Config(app, bogus=1)
    with pytest.raises(TypeError):
        Config(app, "127.0.0.1")  # settings are keywords only


def test_config_is_frozen() -> None:
    config = Config(app)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


def test_defaults_match_uvicorn_config() -> None:
    theirs = inspect.signature(uvicorn.Config.__init__).parameters
    ours = {f.name: f for f in settings()}
    shared = [name for name in theirs if name not in ("self", "app")]
    missing = [name for name in shared if name not in ours]
    assert not missing, f"uvicorn.Config settings we do not declare: {missing}"
    for name in shared:
        if name == "log_config":
            continue  # both default to their package's own dictConfig (checked below)
        default = ours[name].default
        if name == "http2":  # on purpose: HTTP/2 is on unless --no-http2
            assert default is True and theirs[name].default is False
            continue
        assert default == theirs[name].default, f"{name}: {default!r} != {theirs[name].default!r}"
    log_config = Config(app).log_config
    assert isinstance(log_config, dict)
    assert set(log_config["loggers"]) >= {"monoceros", "monoceros.error", "monoceros.access"}
    assert set(log_config["handlers"]) == set(uvicorn.config.LOGGING_CONFIG["handlers"])


def test_every_command_line_setting_has_help_and_one_option() -> None:
    names = [p.name for p in cli_main.params]
    assert len(names) == len(set(names))
    for f in settings():
        if f.metadata["cli"]:
            assert f.metadata["help"], f.name
            assert f.name in names, f.name
        else:
            assert f.name not in names  # objects (callables) only run() can take
    assert {f.name for f in settings() if not f.metadata["cli"]} == {
        "timeout_notify",
        "callback_notify",
        "ssl_context_factory",
    }


# -- settings of features not built yet ----------------------------------------------------------------
def test_no_setting_waits_for_a_feature_any_more() -> None:
    # HTTP/2 was the last one (config.setting(later=...) stays for the next).
    assert [f.name for f in settings() if f.metadata["later"]] == []


def test_later_settings_at_their_accepted_values() -> None:
    loaded = load(workers=1, ws="none", reload_dirs=[], reload_includes=None)
    assert loaded.config.workers == 1
    assert load(ws="auto").config.ws == "auto"


def test_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    from monoceros.config import worker_count

    assert worker_count(Config("m:a")) == 1
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert worker_count(Config("m:a")) == 3
    assert worker_count(Config("m:a", workers=1)) == 1  # an explicit setting wins over the environment
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY='many'"):
        load()
    monkeypatch.setenv("WEB_CONCURRENCY", "0")
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY=0: the number of workers must be > 0"):
        load()


# -- validation --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": -1}, "--port must be between 0 and 65535"),
        ({"backlog": 0}, "--backlog must be > 0"),
        ({"timeout_keep_alive": -1}, "--timeout-keep-alive must be >= 0"),
        ({"timeout_request_header": 0}, "--timeout-request-header must be > 0"),
        ({"timeout_request_body": -1}, "--timeout-request-body must be >= 0"),
        ({"timeout_graceful_shutdown": -1}, "--timeout-graceful-shutdown must be >= 0"),
        ({"limit_request_body": -5}, "--limit-request-body must be >= 0"),
        ({"limit_max_requests": 0}, "--limit-max-requests must be > 0"),
        ({"h11_max_incomplete_event_size": 0}, "--h11-max-incomplete-event-size must be > 0"),
        ({"log_level": "loud"}, "--log-level 'loud'"),
        ({"loop": "zuvloop"}, "--loop 'zuvloop'"),
        ({"http": "zttp"}, "--http 'zttp'"),
        ({"interface": "asgi4"}, "--interface 'asgi4'"),
        ({"lifespan": "maybe"}, "--lifespan 'maybe'"),
        ({"headers": ["no colon"]}, "--header 'no colon': write it as Name:Value"),
        ({"headers": [("x-bad", "a\r\nb")]}, "is not a valid HTTP header"),
        ({"headers": [42]}, "give a 'Name:Value' string or a"),
    ],
)
def test_invalid_settings(kwargs, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(**kwargs)
    assert message in str(info.value)


def test_resolved_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load(
        headers=["X-A: 1", ("X-B", "2"), (b"X-C", b"3")],
        h11_max_incomplete_event_size=1000,
        log_level="trace",
        limit_max_requests=10,
        limit_max_requests_jitter=5,
        forwarded_allow_ips="10.0.0.1, 10.0.0.2",
    )
    assert loaded.default_headers == [
        (b"server", b"monoceros"),
        (b"x-a", b"1"),
        (b"x-b", b"2"),
        (b"x-c", b"3"),
    ]
    assert loaded.max_head_size == 1000
    assert loaded.log_level == LOG_LEVELS["trace"] == 5
    assert 10 <= loaded.limit_max_requests <= 15
    assert loaded.forwarded_allow_ips == ["10.0.0.1", "10.0.0.2"]
    assert loaded.http_impl == "httptools" and loaded.interface == "asgi3"
    assert load(server_header=False).default_headers == []
    assert load(headers=["Server: mine"]).default_headers == [(b"server", b"mine")]
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert load().forwarded_allow_ips == ["*"]
    assert load(forwarded_allow_ips=["1.2.3.4"]).forwarded_allow_ips == ["1.2.3.4"]
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    assert load().forwarded_allow_ips == ["127.0.0.1", "::1"]


def test_app_loading() -> None:
    assert import_app(Config("procapps:app")) is procapps.app
    assert import_app(Config("procapps:factory", factory=True)) is procapps.app
    with pytest.raises(ConfigError, match="Error loading ASGI app factory"):
        import_app(Config("procapps:app", factory=True))  # needs arguments: not a factory
    with pytest.raises(ConfigError, match="is not callable"):
        import_app(Config("procapps:not_callable"))
    with pytest.raises(ConfigError, match="factory 'procapps:not_callable' is not callable"):
        import_app(Config("procapps:not_callable", factory=True))


def test_factory_detected_without_the_flag(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="monoceros.error")
    assert import_app(Config("procapps:factory")) is procapps.app
    assert "ASGI app factory detected" in caplog.text


# -- loops -------------------------------------------------------------------------------------------
def test_loop_factories() -> None:
    import asyncio

    import uvloop

    assert loop_factory("asyncio") is asyncio.new_event_loop
    assert loop_factory("none") is asyncio.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("procapps:counting_loop") is procapps.counting_loop
    with pytest.raises(ConfigError, match="is not callable"):
        loop_factory("procapps:not_callable")


def test_custom_loop_serves(server) -> None:
    before = len(procapps.loops_made)
    with server(app, loop="procapps:counting_loop") as srv:
        assert httpx.get(srv.url).text == "ok"
    assert len(procapps.loops_made) == before + 1


# -- logging -----------------------------------------------------------------------------------------
@pytest.fixture
def restore_logging():
    """dictConfig changes global state: put the monoceros loggers back afterwards."""
    names = ["monoceros", "monoceros.error", "monoceros.access", "monoceros.asgi"]
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate, logger.disabled)
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers, logger.level, logger.propagate, logger.disabled = (
            handlers,
            level,
            propagate,
            disabled,
        )


def test_log_config_dict_through_run(tmp_path, http_impl: str, restore_logging) -> None:
    log_file = tmp_path / "access.log"
    log_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log_file)}},
        "loggers": {"monoceros.access": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    server = monoceros.Server(Config(app, port=0, http=http_impl, log_config=log_config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert server.wait_started(10)
        assert httpx.get(server.addresses[0] + "/logged?x=1").text == "ok"
    finally:
        server.should_exit = True
        thread.join(10)
    assert '"GET /logged?x=1 HTTP/1.1" 200' in log_file.read_text()


def test_trace_level_wraps_the_app(restore_logging) -> None:
    loaded = load(log_config={"version": 1, "disable_existing_loggers": False}, log_level="trace")
    inner = loaded.app
    while not isinstance(inner, TraceMessages):
        inner = inner.app  # under the proxy-headers middleware
    assert inner.app is app
    logging.getLogger("monoceros.asgi").setLevel(logging.INFO)
    assert not _contains_trace(load(log_level="info").app)


def _contains_trace(wrapped) -> bool:
    while wrapped is not None:
        if isinstance(wrapped, TraceMessages):
            return True
        wrapped = getattr(wrapped, "app", None)
    return False


def test_trace_lines(server, http_impl: str, caplog: pytest.LogCaptureFixture, restore_logging) -> None:
    caplog.set_level(LOG_LEVELS["trace"], logger="monoceros.asgi")
    with server(app, log_level="trace") as srv:
        httpx.post(srv.url, content=b"12345")
    lines = [r.getMessage() for r in caplog.records if r.name == "monoceros.asgi"]
    asgi = {"version": "3.0", "spec_version": "2.0"}
    lifespan_scope = {"type": "lifespan", "asgi": asgi, "state": "<0 keys>"}
    assert lines[0] == f"ASGI [1] Started scope={lifespan_scope}"
    assert lines[1] == "ASGI [1] Completed"  # it returned: no lifespan support
    assert lines[2].startswith("ASGI [2] Started scope={'type': 'http'")
    assert "ASGI [2] Send {'type': 'http.response.body', 'body': '<2 bytes>'}" in lines
    assert lines[-1] == "ASGI [2] Completed"


def test_trace_shows_receive_and_exceptions(
    server, caplog: pytest.LogCaptureFixture, restore_logging
) -> None:
    async def failing(scope, receive, send) -> None:
        if scope["type"] == "http":
            await receive()
            raise RuntimeError("boom")

    caplog.set_level(LOG_LEVELS["trace"], logger="monoceros.asgi")
    with server(failing, log_level="trace", lifespan="off") as srv:
        assert httpx.post(srv.url, content=b"abc").status_code == 500
    lines = [r.getMessage() for r in caplog.records if r.name == "monoceros.asgi"]
    assert "ASGI [1] Receive {'type': 'http.request', 'body': '<3 bytes>', 'more_body': False}" in lines
    assert lines[-1] == "ASGI [1] Raised exception"


def test_numeric_log_level() -> None:
    assert load(log_level=logging.DEBUG).log_level == logging.DEBUG
    assert load().log_level == logging.INFO


def test_env_file_through_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MONOCEROS_TEST_FROM_ENV_FILE=yes\n")
    monkeypatch.delenv("MONOCEROS_TEST_FROM_ENV_FILE", raising=False)
    load(env_file=str(env_file))
    import os

    assert os.environ.pop("MONOCEROS_TEST_FROM_ENV_FILE") == "yes"
    with pytest.raises(ConfigError, match=r"--env-file '/no/\.env': no such file"):
        load(env_file="/no/.env")
    monkeypatch.setitem(sys.modules, "dotenv", None)  # not installed
    with pytest.raises(ConfigError, match="--env-file needs python-dotenv"):
        load(env_file=str(env_file))


def test_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.setitem(sys.modules, "uvloop", None)  # not installed
    assert loop_factory("auto") is asyncio.new_event_loop
    with pytest.raises(ConfigError, match="--loop uvloop needs uvloop"):
        loop_factory("uvloop")


def test_interface_detection_corner_cases() -> None:
    def star_args(*args):  # could be anything: ASGI 2 as uvicorn guesses
        raise NotImplementedError

    def asgi2(scope):
        raise NotImplementedError

    class Awaitable:
        def __init__(self, scope, receive, send) -> None: ...

        def __await__(self):
            yield

    class Unreadable:
        def __call__(self, scope):
            raise NotImplementedError

        __call__.__signature__ = "not a signature"  # inspect.signature() raises

    assert detect_interface(Unreadable()) == "asgi2"
    assert detect_interface(star_args) == "asgi2"
    assert detect_interface(asgi2) == "asgi2"
    assert detect_interface(min) == "asgi2"  # no signature to read
    assert detect_interface(Awaitable) == "asgi3"


def test_channels_interface_detection() -> None:
    async def consumer(message, channels):
        raise NotImplementedError

    async def asgi3(scope, receive, send):
        raise NotImplementedError

    class Consumer:
        async def __call__(self, message, channels):
            raise NotImplementedError

    def wsgi(environ, start_response):
        raise NotImplementedError

    assert detect_interface(consumer) == "channels"
    assert detect_interface(Consumer()) == "channels"
    assert detect_interface(asgi3) == "asgi3"
    assert detect_interface(wsgi) == "wsgi"  # a plain two-argument callable stays WSGI


def test_tls_key_errors(tmp_path) -> None:
    from tlsfiles import make_tls_files

    tls = make_tls_files(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match=r"--ssl-keyfile '.*junk.pem': not a PEM private key"):
        load(ssl_certfile=tls.cert, ssl_keyfile=str(junk))
    assert load(ssl_certfile=tls.cert, ssl_keyfile=tls.key).ssl is not None
    assert Config(app, ssl_keyfile=tls.key).is_ssl and not Config(app).is_ssl


# -- the Server object ------------------------------------------------------------------------------
def test_should_exit_before_run_starts_and_stops() -> None:
    server = monoceros.Server(Config(app, port=0, log_config=None))
    server.should_exit = True
    assert server.should_exit
    server.run()  # returns by itself: it was asked to stop before it started
    assert server.addresses and not server.started


def test_force_exit_before_run() -> None:
    server = monoceros.Server(Config(app, port=0, log_config=None))
    server.force_exit = True
    assert server.force_exit and server.should_exit
    server.run()
    assert not server.started


def test_tasks_left_at_exit_are_cancelled(server, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    seen: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    tasks = []

    async def spawner(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            await asyncio.Event().wait()  # and never returns
        tasks.extend([asyncio.create_task(forever()), asyncio.create_task(stubborn())])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    with server(spawner) as srv:
        assert httpx.get(srv.url).status_code == 204
    assert seen == ["cancelled"]
    assert "unhandled exception during shutdown" in caplog.text


def test_lifespan_app_returning_at_shutdown_without_answer(server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="monoceros.error")

    async def rude(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            return  # no shutdown.complete
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    with server(rude) as srv:
        httpx.get(srv.url)
    assert "Application shutdown failed. The application returned without answering." in caplog.text
