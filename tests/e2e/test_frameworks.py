"""Real frameworks served by monoceros, on both HTTP/1.1 parsers.

FastAPI, Starlette, Django (ASGI), Litestar and Quart as ASGI 3 apps; Flask
as WSGI, both with ``interface="wsgi"`` and detected by ``interface="auto"``.
"""

# No ``from __future__ import annotations``: FastAPI and Litestar read the
# annotations of handlers defined inside the tests.
import contextlib
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from monoceros.config import detect_interface


def test_fastapi(server, http_impl: str) -> None:
    from fastapi import FastAPI, Request
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str
        price: float

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"prefix": "fast"}  # lifespan state, reaches every request

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q}

    @app.post("/items")
    async def create_item(item: Item) -> dict[str, Any]:
        return {"created": item.name, "price": item.price}

    @app.get("/state")
    async def state(request: Request) -> str:
        return str(request.state.prefix)

    with server(app) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.get("/items/5", params={"q": "x y"}).json() == {"item_id": 5, "q": "x y"}
        r = client.post("/items", json={"name": "pen", "price": 1.5})
        assert r.status_code == 200 and r.json() == {"created": "pen", "price": 1.5}
        assert client.post("/items", json={"name": "pen"}).status_code == 422
        assert client.get("/state").json() == "fast"
        assert client.get("/missing").status_code == 404


def test_starlette(server, http_impl: str) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.path_params['name']}, {request.state.greeting}")

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield b"chunk%d;" % i

        return StreamingResponse(chunks(), media_type="text/plain")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        yield {"greeting": "welcome"}

    app = Starlette(routes=[Route("/hello/{name}", hello), Route("/stream", stream)], lifespan=lifespan)
    with server(app) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.get("/hello/ada").text == "hello ada, welcome"
        r = client.get("/stream")
        assert r.text == "chunk0;chunk1;chunk2;"
        assert r.headers["transfer-encoding"] == "chunked"


@pytest.fixture(scope="module")
def django_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Django's ASGI application, with minimal settings in a temporary module."""
    folder = tmp_path_factory.mktemp("django_project")
    (folder / "monoceros_django_settings.py").write_text(
        textwrap.dedent(
            """
            SECRET_KEY = "not-secret"
            DEBUG = False
            ALLOWED_HOSTS = ["*"]
            ROOT_URLCONF = "monoceros_django_urls"
            INSTALLED_APPS = []
            MIDDLEWARE = []
            USE_TZ = True
            """
        )
    )
    (folder / "monoceros_django_urls.py").write_text(
        textwrap.dedent(
            """
            from django.http import HttpResponse, JsonResponse
            from django.urls import path

            def hello(request):
                return HttpResponse("hello from django", content_type="text/plain")

            def echo(request):
                return JsonResponse({"method": request.method, "body": request.body.decode(),
                                     "scheme": request.scheme, "q": request.GET.get("q")})

            urlpatterns = [path("", hello), path("echo", echo)]
            """
        )
    )
    sys.path.insert(0, str(folder))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_SETTINGS_MODULE", "monoceros_django_settings")
        from django.core.asgi import get_asgi_application

        app = get_asgi_application()
    yield app
    sys.path.remove(str(folder))


def test_django(server, http_impl: str, django_app: Any) -> None:
    with server(django_app) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.get("/")
        assert r.status_code == 200 and r.text == "hello from django"
        r = client.post("/echo?q=1", content=b"payload", headers={"content-type": "text/plain"})
        assert r.json() == {"method": "POST", "body": "payload", "scheme": "http", "q": "1"}
        assert client.get("/nope").status_code == 404


def test_litestar(server, http_impl: str) -> None:
    from litestar import Litestar, get, post
    from litestar.params import JSONBody

    @get("/")
    async def index() -> dict[str, str]:
        return {"framework": "litestar"}

    @post("/double")
    async def double(data: JSONBody[dict[str, int]]) -> dict[str, int]:
        return {"value": data["value"] * 2}

    app = Litestar(route_handlers=[index, double])
    with server(app) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.get("/").json() == {"framework": "litestar"}
        r = client.post("/double", json={"value": 21})
        assert r.status_code == 201 and r.json() == {"value": 42}


def test_quart(server, http_impl: str) -> None:
    from quart import Quart, jsonify, request

    app = Quart(__name__)
    started: list[bool] = []

    @app.before_serving
    async def startup() -> None:
        started.append(True)

    @app.route("/")
    async def index() -> Any:
        return jsonify(framework="quart", started=bool(started))

    @app.route("/echo", methods=["POST"])
    async def echo() -> Any:
        return jsonify(received=(await request.get_data()).decode())

    with server(app) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.get("/").json() == {"framework": "quart", "started": True}  # lifespan ran
        assert client.post("/echo", content=b"hi quart").json() == {"received": "hi quart"}


def _flask_app() -> Any:
    from flask import Flask, jsonify, request

    app = Flask(__name__)

    @app.route("/")
    def index() -> Any:
        return jsonify(framework="flask", scheme=request.scheme, path=request.path)

    @app.route("/echo", methods=["POST"])
    def echo() -> Any:
        return request.get_data()

    return app


@pytest.mark.parametrize("interface", ["wsgi", "auto"])
def test_flask(server, http_impl: str, interface: str) -> None:
    app = _flask_app()
    assert detect_interface(app) == "wsgi"
    with server(app, interface=interface) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.get("/").json() == {"framework": "flask", "scheme": "http", "path": "/"}
        assert client.post("/echo", content=b"x" * 100_000).content == b"x" * 100_000
        assert srv.server.loaded is not None and srv.server.loaded.interface == "wsgi"


def test_interface_detection() -> None:
    from starlette.applications import Starlette

    async def asgi3(scope: Any, receive: Any, send: Any) -> None: ...

    class ASGI2:
        def __init__(self, scope: Any) -> None: ...

    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        return []

    assert detect_interface(asgi3) == "asgi3"
    assert detect_interface(Starlette()) == "asgi3"
    assert detect_interface(ASGI2) == "asgi2"
    assert detect_interface(wsgi) == "wsgi"
    assert detect_interface(_flask_app()) == "wsgi"
