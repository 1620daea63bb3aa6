"""Framework hello worlds for the benchmark, built when this module is imported.

``bench.frameworks:starlette_app`` and ``bench.frameworks:fastapi_app`` answer
``GET /`` with ``Hello, world!`` as ``text/plain``, through the framework's
router and response classes.  They live apart from ``bench/apps.py`` so that
the raw apps never pay for importing a framework (start-up time, the RSS of
the idle-connections measurement), and they are plain module attributes
because hypercorn finds its app with ``eval`` in the module's namespace, which
a module ``__getattr__`` cannot serve.  ``bench.apps:starlette_app`` and
``bench.apps:fastapi_app`` still resolve here, lazily.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse as FastAPIPlainText
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["fastapi_app", "starlette_app"]


async def _hello(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


starlette_app = Starlette(routes=[Route("/", _hello)])

fastapi_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@fastapi_app.get("/", response_class=FastAPIPlainText)
async def hello() -> str:
    return "Hello, world!"
