"""The one declaration of every setting.

:class:`Config` is a frozen dataclass.  Each field carries, in its metadata, what
the command line needs (flag names, click type, help); :mod:`monoceros.cli`
builds the click command from these fields, :func:`monoceros.run` passes its
keywords straight to ``Config`` (so an unknown keyword is Python's own clear
``TypeError``), and :meth:`Config.load` turns the declaration into a
:class:`LoadedConfig`: the imported and wrapped application, the SSL context,
the listening addresses, the encoded default headers.  Nothing else in the
package repeats a default.
"""

# ``setting()`` returns a ``dataclasses.field``; ruff cannot see that.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

import click

from monoceros._types import ASGIApp
from monoceros.errors import ConfigError

STARTUP_FAILURE = 3
SSL_PROTOCOL_VERSION: int = ssl.PROTOCOL_TLS_SERVER
LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}
HTTP_IMPLEMENTATIONS = ("auto", "h11", "httptools")
LOOP_IMPLEMENTATIONS = ("auto", "asyncio", "uvloop")
# uvicorn also takes "none" (asyncio's own default loop) and a "module:factory"
# import string; neither is offered in the help, both are accepted.
LOOP_HIDDEN = ("none",)
INTERFACES = ("auto", "asgi3", "asgi2", "wsgi", "channels")
LIFESPANS = ("auto", "on", "off")
WS_IMPLEMENTATIONS = ("auto", "none", "websockets", "websockets-sansio", "wsproto")

logger = logging.getLogger("monoceros.error")


def setting(
    default: Any = None,
    help: str = "",
    *,
    flag: str | None = None,
    type: Any = None,
    is_flag: bool = False,
    secondary: str | None = None,
    multiple: bool = False,
    metavar: str | None = None,
    cli: bool = True,
    later: str | None = None,
    allowed: tuple[Any, ...] = (),
    cli_default: Any = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare one setting: its default and how the command line spells it.

    Args:
        flag: the long option, ``--name-with-dashes`` by default.
        secondary: the negative flag of an on/off option (``--no-access-log``).
        later: this setting belongs to a feature that is not built yet; any
            value other than the default (or one of ``allowed``) is refused
            with this explanation.
        cli_default: what the command line passes when the option is not
            given, where that differs from the Python default (uvicorn's
            ``--app-dir`` is ``""`` on the command line, None for ``run()``).
        cli: False for settings that only ``run()``/``Config`` take
            (objects that cannot be typed on a command line).
    """
    meta = {
        "help": help,
        "flag": flag,
        "type": type,
        "is_flag": is_flag,
        "secondary": secondary,
        "multiple": multiple,
        "metavar": metavar,
        "cli": cli,
        "later": later,
        "allowed": allowed,
        "cli_default": cli_default,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _default_log_config() -> dict[str, Any]:
    from monoceros.logging import LOGGING_CONFIG

    return LOGGING_CONFIG


@dataclass(frozen=True)
class Config:
    """Every setting of the server, with uvicorn's names and defaults.

    ``Config(app, **settings)`` takes the application (an object or an
    ``"module:attribute"`` string) and keyword settings; an unknown keyword
    raises :class:`TypeError`.  Call :meth:`load` to resolve it.
    """

    app: ASGIApp | Callable[..., Any] | str
    _: KW_ONLY
    # -- where to listen -------------------------------------------------------
    host: str = setting("127.0.0.1", "Bind socket to this host.")
    port: int = setting(8000, "Bind socket to this port. If 0, an available port will be picked.", type=int)
    uds: str | None = setting(None, "Bind to a UNIX domain socket.")
    fd: int | None = setting(None, "Bind to socket from this file descriptor.", type=int)
    bind: Sequence[str] = setting(
        (),
        "Bind to this address (repeatable): HOST:PORT, [::1]:PORT, unix:PATH or fd://N. "
        "Replaces --host/--port/--uds/--fd.",
        multiple=True,
        metavar="ADDRESS",
    )
    backlog: int = setting(2048, "Maximum number of connections to hold in backlog", type=int)
    # -- development and processes (their own issues) -------------------------
    reload: bool = setting(False, "Enable auto-reload.", is_flag=True)
    reload_dirs: Sequence[str] | None = setting(
        None,
        "Set reload directories explicitly, instead of using the current working directory.",
        flag="--reload-dir",
        multiple=True,
        type=click.Path(exists=True),
    )
    reload_includes: Sequence[str] | None = setting(
        None,
        "Set glob patterns to include while watching for files. Includes '*.py' by default; these "
        "defaults can be overridden with `--reload-exclude`.",
        flag="--reload-include",
        multiple=True,
    )
    reload_excludes: Sequence[str] | None = setting(
        None,
        "Set glob patterns to exclude while watching for files. Includes '.*, .py[cod], .sw.*, ~*' "
        "by default; these defaults can be overridden with `--reload-include`.",
        flag="--reload-exclude",
        multiple=True,
    )
    reload_delay: float = setting(
        0.25,
        "Delay between previous and next check if application needs to be. Defaults to 0.25s.",
        type=float,
    )
    # WEB_CONCURRENCY is read when the config is resolved (as uvicorn's Config
    # does), so run() honours it too; MONOCEROS_WORKERS comes from the prefix.
    workers: int | None = setting(
        None,
        "Number of worker processes. Defaults to the $WEB_CONCURRENCY environment variable "
        "if available, or 1. Not valid with --reload.",
        type=int,
    )
    pid_file: str | None = setting(
        None, "Write the process id of the server (the supervisor with --workers/--reload) to this file."
    )
    # -- implementations ------------------------------------------------------
    loop: str = setting(
        "auto",
        "Event loop factory implementation, or a 'module:factory' import string.",
        metavar=f"[{'|'.join(LOOP_IMPLEMENTATIONS)}]",
    )
    http: str = setting("auto", "HTTP protocol implementation.", type=click.Choice(HTTP_IMPLEMENTATIONS))
    http2: bool = setting(
        True,
        "Enable/Disable HTTP/2 (TLS by ALPN; cleartext by prior knowledge or Upgrade: h2c).",
        secondary="--no-http2",
    )
    h2_max_concurrent_streams: int = setting(
        100, "HTTP/2: streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).", type=int
    )
    h2_max_header_list_size: int = setting(
        65536,
        "HTTP/2: largest decoded header list in bytes (SETTINGS_MAX_HEADER_LIST_SIZE); "
        "a larger one closes the connection.",
        type=int,
    )
    h2_initial_window_size: int = setting(
        65535,
        "HTTP/2: the flow-control window a stream's request body gets (SETTINGS_INITIAL_WINDOW_SIZE); "
        "it is opened again as the app reads.",
        type=int,
    )
    h2_max_resets: int = setting(
        200,
        "HTTP/2: streams a client may reset per 10 seconds before the connection is closed "
        "(rapid reset, CVE-2023-44487).",
        type=int,
    )
    h2_max_control_frames: int = setting(
        1000,
        "HTTP/2: PING, SETTINGS, PRIORITY and empty frames a client may send per 10 seconds before the "
        "connection is closed (floods).",
        type=int,
    )
    h2_stall_timeout: float = setting(
        30.0,
        "HTTP/2: seconds a response may wait for the client to open its flow-control window "
        "before the stream is reset.",
        type=float,
    )
    ws: str = setting(
        "auto",
        "WebSocket protocol implementation.",
        type=click.Choice(WS_IMPLEMENTATIONS),
    )
    ws_max_size: int = setting(16 * 1024 * 1024, "WebSocket max size message in bytes", type=int)
    ws_max_queue: int = setting(32, "The maximum length of the WebSocket message queue.", type=int)
    ws_ping_interval: float | None = setting(20.0, "WebSocket ping interval in seconds.", type=float)
    ws_ping_timeout: float | None = setting(20.0, "WebSocket ping timeout in seconds.", type=float)
    ws_per_message_deflate: bool = setting(True, "WebSocket per-message-deflate compression", type=bool)
    lifespan: str = setting("auto", "Lifespan implementation.", type=click.Choice(LIFESPANS))
    interface: str = setting(
        "auto",
        "Select ASGI3, ASGI2, WSGI, or the legacy channels interface (app(message, channels)) "
        "as the application interface.",
        type=click.Choice(INTERFACES),
    )
    # -- application ----------------------------------------------------------
    env_file: str | None = setting(None, "Environment configuration file.", type=click.Path(exists=True))
    app_dir: str | None = setting(
        None,
        "Look for APP in the specified directory, by adding this to the PYTHONPATH. "
        "Defaults to the current working directory.",
        cli_default="",
    )
    factory: bool = setting(
        False, "Treat APP as an application factory, i.e. a () -> <ASGI app> callable.", is_flag=True
    )
    reset_contextvars: bool = setting(
        False,
        "Run each ASGI request in a fresh contextvars.Context. Hides context set in the lifespan.",
        is_flag=True,
    )
    eager_start: bool = setting(
        True,
        "Enable/Disable running the first step of each HTTP request's app call at once, without a task "
        "of its own (a call that waits goes on in a task; asyncio.current_task() names it throughout).",
        secondary="--no-eager-start",
    )
    # -- logging --------------------------------------------------------------
    log_config: dict[str, Any] | str | os.PathLike[str] | None = setting(
        help="Logging configuration file. Supported formats: .ini, .json, .yaml.",
        type=click.Path(exists=True),
        default_factory=_default_log_config,
    )
    log_level: str | int | None = setting(
        None, "Log level. [default: info]", type=click.Choice(list(LOG_LEVELS))
    )
    access_log: bool = setting(True, "Enable/Disable access log.", secondary="--no-access-log")
    access_log_format: str | None = setting(
        None,
        "Access log line in gunicorn's atoms, e.g. '%(h)s \"%(r)s\" %(s)s %(b)s %(D)s'. "
        "Defaults to uvicorn's line.",
    )
    use_colors: bool | None = setting(None, "Enable/Disable colorized logging.", secondary="--no-use-colors")
    # -- HTTP -----------------------------------------------------------------
    proxy_headers: bool = setting(
        True,
        "Enable/Disable X-Forwarded-Proto, X-Forwarded-For, Forwarded to populate url scheme "
        "and remote address info.",
        secondary="--no-proxy-headers",
    )
    server_header: bool = setting(
        True, "Enable/Disable default Server header.", secondary="--no-server-header"
    )
    date_header: bool = setting(True, "Enable/Disable default Date header.", secondary="--no-date-header")
    forwarded_allow_ips: str | Sequence[str] | None = setting(
        None,
        "Comma separated list of IP Addresses, IP Networks, or literals (e.g. UNIX Socket path) "
        "to trust with proxy headers. Defaults to the $FORWARDED_ALLOW_IPS environment variable "
        "if available, or '127.0.0.1,::1'. The literal '*' means trust everything.",
    )
    root_path: str = setting(
        "", "Set the ASGI 'root_path' for applications submounted below a given URL path."
    )
    headers: Sequence[Any] | None = setting(
        None,
        "Specify custom default HTTP response headers as a Name:Value pair",
        flag="--header",
        multiple=True,
    )
    limit_concurrency: int | None = setting(
        None,
        "Maximum number of concurrent connections or tasks to allow, before issuing HTTP 503 responses.",
        type=int,
    )
    limit_max_requests: int | None = setting(
        None, "Maximum number of requests to service before terminating the process.", type=int
    )
    limit_max_requests_jitter: int = setting(
        0,
        "Maximum jitter to add to limit_max_requests. Staggers worker restarts to avoid all workers "
        "restarting simultaneously.",
        type=int,
    )
    limit_max_rss: int | None = setting(
        None,
        "Maximum resident memory of a worker process in MB; a worker that grows beyond it is "
        "replaced gracefully (with --workers).",
        type=int,
    )
    limit_request_body: int | None = setting(
        None, "Maximum request body size in bytes; larger requests get 413.", type=int
    )
    timeout_keep_alive: float = setting(
        5,
        "Close Keep-Alive connections if no new data is received within this timeout (in seconds).",
        type=int,
    )
    timeout_request_header: float = setting(
        10.0,
        "Seconds a client has to send a whole request head; slower ones get 408 and a close.",
        type=float,
    )
    timeout_request_body: float = setting(
        60.0,
        "Seconds a client may send nothing of a request body the app is waiting for; then 408 "
        "(or a close, once the response started). 0 turns it off.",
        type=float,
    )
    timeout_graceful_shutdown: float | None = setting(
        None, "Maximum number of seconds to wait for graceful shutdown.", type=int
    )
    timeout_worker_healthcheck: int = setting(
        5,
        "Maximum number of seconds to wait for a worker to respond to a healthcheck.",
        type=int,
    )
    timeout_notify: int = setting(30, cli=False)
    callback_notify: Callable[..., Any] | None = setting(None, cli=False)
    h11_max_incomplete_event_size: int | None = setting(
        None,
        "The maximum size of a request head (request line and headers), for both HTTP parsers. "
        "[default: 16384]",
        type=int,
    )
    # -- TLS ------------------------------------------------------------------
    ssl_keyfile: str | os.PathLike[str] | None = setting(None, "SSL key file")
    ssl_certfile: str | os.PathLike[str] | None = setting(None, "SSL certificate file")
    ssl_keyfile_password: str | None = setting(None, "SSL keyfile password")
    ssl_version: int = setting(
        int(SSL_PROTOCOL_VERSION), "SSL version to use (see stdlib ssl module's)", type=int
    )
    ssl_cert_reqs: int = setting(
        int(ssl.CERT_NONE), "Whether client certificate is required (see stdlib ssl module's)", type=int
    )
    ssl_ca_certs: str | os.PathLike[str] | None = setting(None, "CA certificates file")
    ssl_ciphers: str | None = setting(
        None, "Ciphers to use (see stdlib ssl module's). Defaults to OpenSSL's safe defaults."
    )
    ssl_context_factory: Callable[..., ssl.SSLContext] | None = setting(None, cli=False)

    @property
    def is_ssl(self) -> bool:
        return bool(self.ssl_keyfile or self.ssl_certfile)

    def load(self) -> LoadedConfig:
        """Resolve every setting; raise :class:`ConfigError` with one clear line."""
        from monoceros.loader import load_config

        return load_config(self)


DEFAULT_MAX_HEAD_SIZE = 16 * 1024
MAX_REQUEST_LINE = 8 * 1024


@dataclass(frozen=True)
class BindSpec:
    """One place to listen: ``kind`` is 'tcp', 'unix' or 'fd'."""

    kind: Literal["tcp", "unix", "fd"]
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_bind(text: str) -> BindSpec:
    """Parse one ``--bind`` value (``HOST:PORT``, ``[::1]:PORT``, ``unix:PATH``, ``fd://N``)."""
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise ConfigError(f"--bind {text!r}: a unix socket needs a path, e.g. unix:/tmp/app.sock")
        return BindSpec("unix", path=path)
    if text.startswith("fd://"):
        try:
            return BindSpec("fd", fd=int(text[5:]))
        except ValueError:
            raise ConfigError(f"--bind {text!r}: fd:// takes a file descriptor number") from None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"--bind {text!r}: an IPv6 address is written [ADDRESS]:PORT")
        port_text = rest[1:] if rest else "8000"
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, "8000"
        if ":" in host:
            raise ConfigError(f"--bind {text!r}: write an IPv6 address in brackets, e.g. [::1]:8000")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"--bind {text!r}: the port must be a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--bind {text!r}: the port must be between 0 and 65535")
    return BindSpec("tcp", host=host or "0.0.0.0", port=port)


@dataclass
class LoadedConfig:
    """What :meth:`Config.load` resolves; read by the server at run time."""

    config: Config
    app: ASGIApp
    binds: list[BindSpec]
    ssl: ssl.SSLContext | None
    default_headers: list[tuple[bytes, bytes]]
    http_impl: str
    ws_impl: str | None  # "websockets", "wsproto", or None: upgrades are plain HTTP
    max_head_size: int
    max_request_line: int
    log_level: int
    lifespan: str
    interface: str
    forwarded_allow_ips: list[str]
    limit_max_requests: int | None
    sockets: list[socket.socket] = dataclasses.field(default_factory=list)


def settings() -> list[dataclasses.Field[Any]]:
    """The declared settings, in declaration order (``app`` excluded)."""
    return [f for f in dataclasses.fields(Config) if f.name != "app"]


def _signature_kind(app: Any) -> tuple[bool, int | None]:
    """(is async, number of positional parameters) of an application callable."""
    target = app
    if not inspect.isfunction(app) and not inspect.ismethod(app) and not inspect.isclass(app):
        target = getattr(app, "__call__", app)  # noqa: B004 - we want the bound __call__
    is_async = inspect.iscoroutinefunction(target)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return is_async, None
    count = 0
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
        elif p.kind is p.VAR_POSITIONAL:
            return is_async, None
    return is_async, count


def detect_interface(app: Any) -> str:
    """Guess the interface of ``app`` the way ``--interface auto`` does.

    An async callable of exactly two positional parameters ``(message,
    channels)`` is the legacy channels interface, any other async callable is
    ASGI 3; a class is ASGI 2 unless its instances are awaitable; a plain
    callable of two positional parameters ``(environ, start_response)`` is
    WSGI; any other plain callable is ASGI 2.
    """
    if inspect.isclass(app):
        return "asgi3" if hasattr(app, "__await__") else "asgi2"
    is_async, count = _signature_kind(app)
    if is_async:
        return "channels" if count == 2 else "asgi3"
    if count == 2:
        return "wsgi"
    return "asgi2"


def _is_default(value: Any, f: dataclasses.Field[Any]) -> bool:
    if value == f.default:
        return True
    # An empty list of reload dirs is "not given", as None is.
    return f.default is None and isinstance(value, (list, tuple)) and not value


def _later_settings_used(config: Config) -> None:
    for f in settings():
        later = f.metadata.get("later")
        value = getattr(config, f.name)
        if later and not _is_default(value, f) and value not in f.metadata.get("allowed", ()):
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            raise ConfigError(f"{flag} {value!r}: {later} is not available in this version of monoceros yet")


def worker_count(config: Config) -> int:
    """``--workers``, else ``$WEB_CONCURRENCY``, else 1; :class:`ConfigError` if it is not a count."""
    if config.workers is not None:
        return config.workers
    text = os.environ.get("WEB_CONCURRENCY", "").strip()
    if not text:
        return 1
    try:
        workers = int(text)
    except ValueError:
        raise ConfigError(f"WEB_CONCURRENCY={text!r}: the number of workers must be an integer") from None
    if workers < 1:
        raise ConfigError(f"WEB_CONCURRENCY={text}: the number of workers must be > 0")
    return workers


def _ensure_positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"--{name.replace('_', '-')} must be {bound}, not {value}")


def validate(config: Config) -> None:
    """Checks that need no I/O; raises :class:`ConfigError`."""
    _later_settings_used(config)
    _ensure_positive("workers", config.workers)
    worker_count(config)
    _ensure_positive("backlog", config.backlog)
    _ensure_positive("limit_concurrency", config.limit_concurrency)
    _ensure_positive("limit_max_requests", config.limit_max_requests)
    _ensure_positive("limit_max_requests_jitter", config.limit_max_requests_jitter, allow_zero=True)
    _ensure_positive("limit_request_body", config.limit_request_body, allow_zero=True)
    _ensure_positive("limit_max_rss", config.limit_max_rss)
    _ensure_positive("timeout_worker_healthcheck", config.timeout_worker_healthcheck)
    _ensure_positive("reload_delay", config.reload_delay, allow_zero=True)
    _ensure_positive("timeout_keep_alive", config.timeout_keep_alive, allow_zero=True)
    _ensure_positive("timeout_request_header", config.timeout_request_header)
    _ensure_positive("timeout_request_body", config.timeout_request_body, allow_zero=True)
    _ensure_positive("timeout_graceful_shutdown", config.timeout_graceful_shutdown, allow_zero=True)
    _ensure_positive("h11_max_incomplete_event_size", config.h11_max_incomplete_event_size)
    for name in ("h2_max_concurrent_streams", "h2_max_resets", "h2_max_control_frames", "h2_stall_timeout"):
        _ensure_positive(name, getattr(config, name))
    for name, low in (("h2_max_header_list_size", 1024), ("h2_initial_window_size", 1)):
        value = getattr(config, name)
        if not low <= value <= 2**31 - 1:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be between {low} and {2**31 - 1}, not {value}")
    _ensure_positive("ws_max_size", config.ws_max_size)
    _ensure_positive("ws_max_queue", config.ws_max_queue)
    _ensure_positive("ws_ping_interval", config.ws_ping_interval, allow_zero=True)
    _ensure_positive("ws_ping_timeout", config.ws_ping_timeout, allow_zero=True)
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, not {config.port}")
    level = config.log_level
    if isinstance(level, str) and level.lower() not in LOG_LEVELS:
        raise ConfigError(f"--log-level {level!r}: choose one of {', '.join(LOG_LEVELS)}")
    loop = config.loop
    if loop not in LOOP_IMPLEMENTATIONS and loop not in LOOP_HIDDEN and ":" not in loop:
        raise ConfigError(
            f"--loop {loop!r}: choose one of {', '.join(LOOP_IMPLEMENTATIONS)} or give a 'module:factory'"
        )
    for name, choices in (
        ("http", HTTP_IMPLEMENTATIONS),
        ("interface", INTERFACES),
        ("lifespan", LIFESPANS),
        ("ws", WS_IMPLEMENTATIONS),
    ):
        value = getattr(config, name)
        if value not in choices:
            raise ConfigError(f"--{name} {value!r}: choose one of {', '.join(choices)}")


__all__ = [
    "LOG_LEVELS",
    "STARTUP_FAILURE",
    "BindSpec",
    "Config",
    "LoadedConfig",
    "detect_interface",
    "parse_bind",
    "settings",
    "worker_count",
]
