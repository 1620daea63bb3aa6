"""ASGI middlewares the server wraps applications in.

- :class:`ProxyHeadersMiddleware`: client address and scheme from trusted
  proxies' ``X-Forwarded-*`` / ``Forwarded`` headers.
- :class:`WSGIMiddleware`: serve a WSGI application, streaming both ways.
- :class:`ASGI2Middleware`: serve an ASGI 2 (double-callable) application.
- :class:`ChannelsMiddleware`: serve a legacy ``app(message, channels)`` application.
"""

from __future__ import annotations

from monoceros.middleware.asgi2 import ASGI2Middleware
from monoceros.middleware.channels import ChannelsMiddleware
from monoceros.middleware.proxy_headers import ProxyHeadersMiddleware
from monoceros.middleware.wsgi import WSGIMiddleware

__all__ = ["ASGI2Middleware", "ChannelsMiddleware", "ProxyHeadersMiddleware", "WSGIMiddleware"]
