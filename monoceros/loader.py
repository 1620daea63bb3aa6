"""Turn a :class:`~monoceros.config.Config` into a :class:`~monoceros.config.LoadedConfig`.

Everything here may fail because of what the user typed, so every failure is
a :class:`~monoceros.errors.ConfigError` with one line that says what to fix.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
from typing import Any, cast

from monoceros._types import ASGIApp
from monoceros.config import (
    DEFAULT_MAX_HEAD_SIZE,
    LOG_LEVELS,
    MAX_REQUEST_LINE,
    BindSpec,
    Config,
    LoadedConfig,
    detect_interface,
    parse_bind,
    validate,
)
from monoceros.errors import ConfigError

logger = logging.getLogger("monoceros.error")


def _load_env_file(path: str | os.PathLike[str]) -> None:
    try:
        from dotenv import load_dotenv
    except ImportError:
        raise ConfigError("--env-file needs python-dotenv: pip install 'monoceros[standard]'") from None
    if not os.path.isfile(path):
        raise ConfigError(f"--env-file {os.fspath(path)!r}: no such file")
    logger.info("Loading environment from '%s'", os.fspath(path))
    load_dotenv(dotenv_path=path)


def _log_level(value: str | int | None) -> int:
    if value is None:
        return logging.INFO
    if isinstance(value, int):
        return value
    return LOG_LEVELS[value.lower()]


def create_ssl_context(config: Config) -> ssl.SSLContext:
    """The server's TLS context from the ``ssl_*`` settings; ALPN offers HTTP/1.1."""
    if not config.ssl_certfile:
        raise ConfigError("--ssl-keyfile needs --ssl-certfile too")
    try:
        ctx = ssl.SSLContext(config.ssl_version)
    except ValueError as exc:
        raise ConfigError(f"--ssl-version {config.ssl_version}: {exc}") from None
    password = config.ssl_keyfile_password
    try:
        ctx.load_cert_chain(config.ssl_certfile, config.ssl_keyfile, (lambda: password) if password else None)
    except FileNotFoundError as exc:
        raise ConfigError(f"SSL certificate or key file not found: {exc.filename}") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"cannot load the SSL certificate/key ({exc.reason or exc}): wrong password?") from None
    try:
        ctx.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
    except ValueError:
        raise ConfigError(f"--ssl-cert-reqs {config.ssl_cert_reqs}: use 0, 1 or 2") from None
    if config.ssl_ca_certs:
        try:
            ctx.load_verify_locations(config.ssl_ca_certs)
        except (FileNotFoundError, ssl.SSLError) as exc:
            raise ConfigError(f"--ssl-ca-certs {os.fspath(config.ssl_ca_certs)!r}: {exc}") from None
    if config.ssl_ciphers:
        try:
            ctx.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError:
            raise ConfigError(f"--ssl-ciphers {config.ssl_ciphers!r}: no cipher matches") from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _binds(config: Config) -> list[BindSpec]:
    if config.bind:
        binds = [config.bind] if isinstance(config.bind, str) else list(config.bind)
        return [parse_bind(b) for b in binds]
    if config.fd is not None:
        return [BindSpec("fd", fd=config.fd)]
    if config.uds:
        return [BindSpec("unix", path=config.uds)]
    host = config.host[1:-1] if config.host.startswith("[") else config.host
    return [BindSpec("tcp", host=host, port=config.port)]


def _encode_header(item: Any) -> tuple[bytes, bytes]:
    if isinstance(item, str):
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"--header {item!r}: write it as Name:Value")
        item = (name.strip(), value.strip())
    try:
        name, value = item
        return (name.encode("latin-1") if isinstance(name, str) else bytes(name)).lower(), (
            value.encode("latin-1") if isinstance(value, str) else bytes(value)
        )
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ConfigError(f"header {item!r}: give a 'Name:Value' string or a (name, value) pair") from None


def _default_headers(config: Config) -> list[tuple[bytes, bytes]]:
    from monoceros.protocols.headers import validate_header

    headers = [_encode_header(h) for h in (config.headers or [])]
    for name, value in headers:
        if not validate_header(name, value):
            raise ConfigError(f"header {name!r}: {value!r} is not a valid HTTP header")
    names = {n for n, _ in headers}
    if config.server_header and b"server" not in names:
        headers.insert(0, (b"server", b"monoceros"))
    return headers


def _forwarded_allow_ips(config: Config) -> list[str]:
    value = config.forwarded_allow_ips
    if value is None:
        value = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def import_app(config: Config) -> Any:
    """Import (and, with ``factory``, call) the application; one line on failure."""
    from monoceros.importer import import_from_string

    if config.app_dir is not None:
        sys.path.insert(0, config.app_dir)
    app = import_from_string(config.app)
    if config.factory:
        try:
            app = app()
        except TypeError as exc:
            raise ConfigError(f"Error loading ASGI app factory: {exc}") from None
    elif isinstance(config.app, str) and not config.factory:
        # uvicorn's hint: a zero-argument function named like a factory.
        pass
    if not callable(app):
        raise ConfigError(f"the application {config.app!r} is not callable (got {type(app).__name__})")
    return app


def wrap_app(app: Any, interface: str, config: Config, allow_ips: list[str]) -> ASGIApp:
    """Adapt ``app`` to ASGI 3 and apply the server-side middleware."""
    if interface == "asgi2":
        from monoceros.middleware.asgi2 import ASGI2Middleware

        app = ASGI2Middleware(app)
    elif interface == "wsgi":
        from monoceros.middleware.wsgi import WSGIMiddleware

        app = WSGIMiddleware(app)
    if config.proxy_headers:
        from monoceros.middleware.proxy_headers import ProxyHeadersMiddleware

        app = ProxyHeadersMiddleware(app, trusted_hosts=allow_ips)
    return cast(ASGIApp, app)


def load_config(config: Config) -> LoadedConfig:
    """Resolve ``config``; see :meth:`Config.load`."""
    validate(config)
    from monoceros.logging import configure_logging

    configure_logging(config.log_config, config.log_level, config.access_log, config.use_colors)
    if config.env_file is not None:
        _load_env_file(config.env_file)
    http_impl = config.http
    if http_impl == "auto":
        try:
            import httptools  # noqa: F401
        except ImportError:  # pragma: no cover - httptools is in the test environment
            http_impl = "h11"
        else:
            http_impl = "httptools"
    elif http_impl == "httptools":
        try:
            import httptools  # noqa: F401
        except ImportError:  # pragma: no cover
            raise ConfigError("--http httptools needs httptools: pip install 'monoceros[standard]'") from None
    raw_app = import_app(config)
    interface = config.interface
    if interface == "auto":
        interface = detect_interface(raw_app)
    allow_ips = _forwarded_allow_ips(config)
    app = wrap_app(raw_app, interface, config, allow_ips)
    ssl_ctx = None
    if config.ssl_context_factory is not None:
        ssl_ctx = config.ssl_context_factory(config, lambda: create_ssl_context(config))
    elif config.is_ssl:
        ssl_ctx = create_ssl_context(config)
    max_requests = config.limit_max_requests
    if max_requests is not None and config.limit_max_requests_jitter:
        import random

        max_requests += random.randint(0, config.limit_max_requests_jitter)
    return LoadedConfig(
        config=config,
        app=app,
        binds=_binds(config),
        ssl=ssl_ctx,
        default_headers=_default_headers(config),
        http_impl=http_impl,
        max_head_size=config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_SIZE,
        max_request_line=MAX_REQUEST_LINE,
        log_level=_log_level(config.log_level),
        lifespan=config.lifespan,
        interface=interface,
        forwarded_allow_ips=allow_ips,
        limit_max_requests=max_requests,
    )
