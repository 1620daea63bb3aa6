"""The ASGI lifespan protocol around a real server: on, off, auto, state, failures."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from procs import run_cli

from monoceros import Config, Server
from monoceros.errors import StartupError


class LifespanApp:
    """Speaks lifespan; records what happened; serves ``scope["state"]`` as text."""

    def __init__(self, *, startup: str = "complete", shutdown: str = "complete") -> None:
        self.startup, self.shutdown = startup, shutdown
        self.events: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.events.append("startup")
                    scope["state"]["db"] = "connected"
                    scope["state"]["hits"] = []
                    await send({"type": f"lifespan.startup.{self.startup}", "message": "no database"})
                else:
                    self.events.append("shutdown")
                    await send({"type": f"lifespan.shutdown.{self.shutdown}", "message": "flush failed"})
                    return
        state = scope["state"]
        state["mine"] = scope["path"]  # a copy per request: the next request must not see it
        body = repr(sorted(state.items())).encode()
        state["hits"].append(scope["path"])  # the values are shared (a shallow copy)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def http_only(scope, receive, send) -> None:
    assert scope["type"] == "http"  # raises for lifespan: "does not speak it"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": repr(scope.get("state")).encode()})


async def returns_at_once(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body"})


@pytest.fixture
def error_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="monoceros.error")
    return caplog


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "monoceros.error"]


def serve(app, **kwargs) -> None:
    """Serve in this thread until the server stops by itself (startup failure)."""
    kwargs.setdefault("port", 0)
    asyncio.run(Server(Config(app, log_config=None, **kwargs)).serve())


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_state_reaches_every_request_as_a_copy(server, http_impl: str, mode: str, error_log) -> None:
    app = LifespanApp()
    with server(app, lifespan=mode) as srv, httpx.Client(base_url=srv.url) as client:
        first = client.get("/one").text
        second = client.get("/two").text
    assert first == repr([("db", "connected"), ("hits", []), ("mine", "/one")])
    # "mine" from the first request is gone; the shared list kept its entry.
    assert second == repr([("db", "connected"), ("hits", ["/one"]), ("mine", "/two")])
    assert app.events == ["startup", "shutdown"]
    assert messages(error_log)[1:3] == ["Waiting for application startup.", "Application startup complete."]
    assert "Application shutdown complete." in messages(error_log)


def test_lifespan_off_never_calls_the_app_for_it(server, http_impl: str) -> None:
    app = LifespanApp()
    with server(app, lifespan="off") as srv:
        assert httpx.get(srv.url + "/x").status_code == 500  # no state["hits"]: the app fails
    assert app.events == []
    with server(http_only, lifespan="off") as srv:
        assert httpx.get(srv.url).text == "{}"


@pytest.mark.parametrize("app", [http_only, returns_at_once], ids=["raises", "returns"])
def test_auto_serves_an_app_without_lifespan(server, http_impl: str, app, error_log) -> None:
    with server(app, lifespan="auto") as srv:
        assert httpx.get(srv.url).status_code in (200, 204)
    assert "ASGI 'lifespan' protocol appears unsupported." in messages(error_log)
    assert not any(r.levelno >= logging.ERROR for r in error_log.records)


@pytest.mark.parametrize("app", [http_only, returns_at_once], ids=["raises", "returns"])
def test_on_fails_for_an_app_without_lifespan(app, error_log) -> None:
    with pytest.raises(StartupError, match="Application startup failed"):
        serve(app, lifespan="on")
    assert any(m.startswith("Application startup failed.") for m in messages(error_log))


def test_startup_failed_message(error_log) -> None:
    app = LifespanApp(startup="failed")
    with pytest.raises(StartupError):
        serve(app)
    assert "Application startup failed. no database" in messages(error_log)
    assert app.events == ["startup"]  # no shutdown after a failed startup


def test_exception_during_startup_fails_even_in_auto(error_log) -> None:
    async def app(scope, receive, send) -> None:
        await receive()
        raise RuntimeError("cannot reach the database")

    with pytest.raises(StartupError):
        serve(app, lifespan="auto")
    failure = [r for r in error_log.records if r.getMessage().startswith("Exception in 'lifespan' protocol")]
    assert failure and "cannot reach the database" in str(failure[0].exc_info[1])


def test_wrong_message_from_the_app(error_log) -> None:
    async def app(scope, receive, send) -> None:
        await receive()
        await send({"type": "lifespan.shutdown.complete"})  # not now

    with pytest.raises(StartupError):
        serve(app)
    failure = [r for r in error_log.records if r.exc_info]
    assert "Unexpected ASGI lifespan message 'lifespan.shutdown.complete'" in str(failure[0].exc_info[1])


def test_shutdown_failed_is_logged(server, error_log) -> None:
    app = LifespanApp(shutdown="failed")
    with server(app) as srv:
        httpx.get(srv.url)
    assert app.events == ["startup", "shutdown"]
    assert "Application shutdown failed. flush failed" in messages(error_log)


def test_an_app_that_stops_listening_does_not_hang_shutdown(server, error_log) -> None:
    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            raise RuntimeError("lifespan task died")  # while serving
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"still serving"})

    with server(app) as srv:
        assert httpx.get(srv.url).text == "still serving"
    assert "Exception in 'lifespan' protocol\n" in messages(error_log)
    assert "Waiting for application shutdown." not in messages(error_log)


def test_cli_lifespan_on_without_support_exits_3() -> None:
    result = run_cli(["--lifespan", "on", "--port", "0", "procapps:no_lifespan"])
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1] == "Error: Application startup failed. Exiting."


def test_cli_lifespan_exception_exits_3() -> None:
    result = run_cli(["--port", "0", "procapps:raising_startup"])
    assert result.returncode == 3
    assert "RuntimeError: startup exploded" in result.stderr  # the app's own traceback is shown
    assert result.stderr.splitlines()[-1] == "Error: Application startup failed. Exiting."
