"""Turn a :class:`~monoceros.config.Config` into a :class:`~monoceros.config.LoadedConfig`.

Everything here may fail because of what the user typed, so every failure is
a :class:`~monoceros.errors.ConfigError` with one line that says what to fix.
"""

from __future__ import annotations

import inspect
import logging
import os
import ssl
import sys
from collections.abc import Callable, Mapping
from typing import Any, cast

from monoceros._types import ASGIApp, Message, Receive, Scope, Send
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
asgi_logger = logging.getLogger("monoceros.asgi")
TRACE = LOG_LEVELS["trace"]


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


class _NeedsPassword(Exception):
    """The key file is encrypted and no password was given."""


def _no_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal and hang a
    # server started by a process manager.
    raise _NeedsPassword


def _explain_ssl_error(config: Config, exc: ssl.SSLError) -> str:
    """One line that says which TLS file is wrong (OpenSSL only says 'PEM lib')."""
    certfile = os.fspath(config.ssl_certfile or "")
    try:
        ssl.create_default_context(cafile=certfile)
    except (ssl.SSLError, ValueError):
        return f"--ssl-certfile {certfile!r}: not a PEM certificate"
    keyfile = os.fspath(config.ssl_keyfile or certfile)
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"--ssl-keyfile {keyfile!r} is not the key of the certificate in {certfile!r}"
    if config.ssl_keyfile_password:
        return f"--ssl-keyfile {keyfile!r}: cannot load the key (wrong --ssl-keyfile-password?)"
    return f"--ssl-keyfile {keyfile!r}: not a PEM private key"


def create_ssl_context(config: Config) -> ssl.SSLContext:
    """The server's TLS context from the ``ssl_*`` settings; ALPN offers h2
    (unless ``--no-http2``) and HTTP/1.1."""
    if not config.ssl_certfile:
        raise ConfigError("--ssl-keyfile needs --ssl-certfile too")
    try:
        ctx = ssl.SSLContext(config.ssl_version)
    except ValueError as exc:
        raise ConfigError(f"--ssl-version {config.ssl_version}: {exc}") from None
    for flag, path in (("--ssl-certfile", config.ssl_certfile), ("--ssl-keyfile", config.ssl_keyfile)):
        # OpenSSL's error would not say which file is missing.
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{flag} {os.fspath(path)!r}: no such file")
    password = config.ssl_keyfile_password
    get_password = (lambda: password) if password else _no_password
    try:
        ctx.load_cert_chain(config.ssl_certfile, config.ssl_keyfile, get_password)
    except _NeedsPassword:
        keyfile = os.fspath(config.ssl_keyfile or config.ssl_certfile)
        raise ConfigError(f"--ssl-keyfile {keyfile!r} is encrypted: give --ssl-keyfile-password") from None
    except ssl.SSLError as exc:
        raise ConfigError(_explain_ssl_error(config, exc)) from None
    except OSError as exc:  # pragma: no cover - permission denied; the tests run as root
        raise ConfigError(f"cannot read the SSL certificate/key: {exc.strerror}") from None
    try:
        ctx.verify_mode = ssl.VerifyMode(config.ssl_cert_reqs)
    except ValueError:
        raise ConfigError(f"--ssl-cert-reqs {config.ssl_cert_reqs}: use 0, 1 or 2") from None
    if config.ssl_ca_certs:
        ca_certs = os.fspath(config.ssl_ca_certs)
        try:
            ctx.load_verify_locations(ca_certs)
        except ssl.SSLError:
            raise ConfigError(f"--ssl-ca-certs {ca_certs!r}: no PEM certificate in it") from None
        except OSError as exc:
            raise ConfigError(f"--ssl-ca-certs {ca_certs!r}: {exc.strerror}") from None
    if config.ssl_ciphers:
        try:
            ctx.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError:
            raise ConfigError(f"--ssl-ciphers {config.ssl_ciphers!r}: no cipher matches") from None
    # HTTP/2 first: a client that speaks both gets it (RFC 9113 §3.2).
    ctx.set_alpn_protocols(["h2", "http/1.1"] if config.http2 else ["http/1.1"])
    return ctx


def resolve_binds(config: Config) -> list[BindSpec]:
    """Where to listen: systemd's sockets when it passed some, else ``--bind``,
    else ``--fd``, ``--uds`` or ``--host``/``--port``."""
    from monoceros.listeners import activation_binds

    activated = activation_binds()
    if activated:
        return activated
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


def import_app(config: Config) -> Callable[..., Any]:
    """Import (and, with ``factory``, call) the application; one line on failure."""
    from monoceros.importer import import_from_string

    if config.app_dir is not None and config.app_dir not in sys.path:
        sys.path.insert(0, config.app_dir)
    app: Any = import_from_string(config.app)
    if config.factory:
        if not callable(app):
            raise ConfigError(f"the application factory {config.app!r} is not callable")
        try:
            app = app()
        except TypeError as exc:
            raise ConfigError(f"Error loading ASGI app factory: {exc}") from None
    elif _is_factory_like(app):
        # uvicorn calls an app that takes no arguments and warns; an ASGI or
        # WSGI application always takes some, so nothing else is called.
        logger.warning(
            "ASGI app factory detected. Using it, but please consider setting the --factory flag explicitly."
        )
        app = app()
    if not callable(app):
        raise ConfigError(f"the application {config.app!r} is not callable (got {type(app).__name__})")
    return cast(Callable[..., Any], app)


def _is_factory_like(app: Any) -> bool:
    if not (inspect.isfunction(app) or inspect.ismethod(app)) or inspect.iscoroutinefunction(app):
        return False
    try:
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - functions always have one
        return False
    return not any(p.default is p.empty and p.kind is not p.VAR_KEYWORD for p in params)


class TraceMessages:
    """``--log-level trace``: log every ASGI message the app receives and sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.count += 1
        number = self.count
        prefix = f"ASGI [{number}]"
        asgi_logger.log(TRACE, "%s Started scope=%s", prefix, _short(scope))

        async def traced_receive() -> Message:
            message = await receive()
            asgi_logger.log(TRACE, "%s Receive %s", prefix, _short(message))
            return message

        async def traced_send(message: Message) -> None:
            asgi_logger.log(TRACE, "%s Send %s", prefix, _short(message))
            await send(message)

        try:
            await self.app(scope, traced_receive, traced_send)
        except BaseException:
            asgi_logger.log(TRACE, "%s Raised exception", prefix)
            raise
        asgi_logger.log(TRACE, "%s Completed", prefix)


def _short(message: Mapping[str, Any]) -> dict[str, Any]:
    """The message with bodies replaced by their size, so a trace line stays short."""
    out = {}
    for key, value in message.items():
        if key in ("body", "bytes", "text") and value is not None:
            out[key] = f"<{len(value)} {'chars' if isinstance(value, str) else 'bytes'}>"
        elif key == "state":
            out[key] = f"<{len(value)} keys>"
        else:
            out[key] = value
    return out


def wrap_app(app: Any, interface: str, config: Config, allow_ips: list[str]) -> ASGIApp:
    """Adapt ``app`` to ASGI 3 and apply the server-side middleware."""
    if interface == "asgi2":
        from monoceros.middleware.asgi2 import ASGI2Middleware

        app = ASGI2Middleware(app)
    elif interface == "wsgi":
        from monoceros.middleware.wsgi import WSGIMiddleware

        app = WSGIMiddleware(app)
    elif interface == "channels":
        from monoceros.middleware.channels import ChannelsMiddleware

        app = ChannelsMiddleware(app)
    if asgi_logger.isEnabledFor(TRACE):
        app = TraceMessages(app)
    # Proxy headers are applied by the server itself (ServerContext.proxy):
    # trust is decided once per connection, not per request.
    return cast(ASGIApp, app)


def _ws_impl(name: str) -> str | None:
    """The WebSocket library behind ``--ws`` (None: upgrades stay HTTP)."""
    from monoceros.protocols.wscodecs import resolve_ws

    impl = resolve_ws(name)
    if impl is not None:
        try:
            __import__(impl)
        except ImportError:
            raise ConfigError(f"--ws {name} needs {impl}: pip install 'monoceros[standard]'") from None
    return impl


def load_environment(config: Config) -> None:
    """Configure logging and read ``--env-file``: what every process of a server does first."""
    from monoceros.logging import configure_logging

    configure_logging(config.log_config, config.log_level, config.access_log, config.use_colors)
    if config.env_file is not None:
        _load_env_file(config.env_file)


def load_config(config: Config) -> LoadedConfig:
    """Resolve ``config``; see :meth:`Config.load`."""
    validate(config)
    load_environment(config)
    http_impl = config.http
    if http_impl == "auto":
        try:
            import httptools
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
    ws_impl = _ws_impl(config.ws) if interface != "wsgi" else None
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
        binds=resolve_binds(config),
        ssl=ssl_ctx,
        default_headers=_default_headers(config),
        http_impl=http_impl,
        ws_impl=ws_impl,
        max_head_size=config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_SIZE,
        max_request_line=MAX_REQUEST_LINE,
        log_level=_log_level(config.log_level),
        lifespan=config.lifespan,
        interface=interface,
        forwarded_allow_ips=allow_ips,
        limit_max_requests=max_requests,
    )
