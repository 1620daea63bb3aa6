"""Logging: uvicorn-compatible formatters, the default configuration, access lines.

The server logs to three loggers, named like uvicorn's with ``monoceros`` in
place of ``uvicorn``: ``monoceros.error`` (startup, shutdown, errors),
``monoceros.access`` (one line per request) and ``monoceros.asgi`` (ASGI
message tracing).  :data:`LOGGING_CONFIG` wires them to stderr/stdout with
:class:`DefaultFormatter` and :class:`AccessFormatter`, whose output matches
uvicorn's byte for byte, colours included.

:class:`AccessLogFormat` turns one finished request into its access line,
either uvicorn's default line or a gunicorn-style ``--access-log-format``.
"""

from __future__ import annotations

import http
import json
import logging
import logging.config
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, Final, Literal
from urllib.parse import quote

from monoceros.errors import ConfigError

__all__ = [
    "DEFAULT_ACCESS_MESSAGE",
    "LOGGING_CONFIG",
    "LOG_LEVELS",
    "TRACE_LOG_LEVEL",
    "AccessFormatter",
    "AccessLogFormat",
    "ColourizedFormatter",
    "DefaultFormatter",
    "configure_logging",
    "get_logger",
    "trace_enabled",
]

TRACE_LOG_LEVEL: Final = 5
logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")

LOG_LEVELS: Final[Mapping[str, int]] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE_LOG_LEVEL,
}

#: The message of uvicorn's default access line; its five arguments are the
#: client address, the method, the path with its query, the HTTP version
#: ("1.1") and the status code.  :class:`AccessFormatter` recognises records
#: carrying exactly these arguments.
DEFAULT_ACCESS_MESSAGE: Final = '%s - "%s %s HTTP/%s" %d'

LOGGING_CONFIG: Final[dict[str, Any]] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "monoceros.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "monoceros.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            "use_colors": None,
        },
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "monoceros": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "monoceros.error": {"level": "INFO"},
        "monoceros.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

# ANSI SGR sequences; the codes are the standard ones terminals understand.
_RESET: Final = "\033[0m"
_BOLD: Final = "\033[1m"
_RED: Final = "\033[31m"
_GREEN: Final = "\033[32m"
_YELLOW: Final = "\033[33m"
_BLUE: Final = "\033[34m"
_CYAN: Final = "\033[36m"
_BRIGHT_RED: Final = "\033[91m"
_BRIGHT_WHITE: Final = "\033[97m"

_LEVEL_COLOURS: Final[Mapping[int, str]] = {
    TRACE_LOG_LEVEL: _BLUE,
    logging.DEBUG: _CYAN,
    logging.INFO: _GREEN,
    logging.WARNING: _YELLOW,
    logging.ERROR: _RED,
    logging.CRITICAL: _BRIGHT_RED,
}
# Keyed by status // 100.
_STATUS_COLOURS: Final[Mapping[int, str]] = {
    1: _BRIGHT_WHITE,
    2: _GREEN,
    3: _YELLOW,
    4: _RED,
    5: _BRIGHT_RED,
}


def _isatty(stream: IO[str] | None) -> bool:
    # sys.stderr/stdout can be None (pythonw, some daemons) or closed.
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _copy_record(record: logging.LogRecord) -> logging.LogRecord:
    # The record is shared by every handler that sees it, so the formatter
    # works on a shallow copy; this is several times cheaper than copy.copy().
    clone = logging.LogRecord.__new__(type(record))
    clone.__dict__.update(record.__dict__)
    return clone


class ColourizedFormatter(logging.Formatter):
    """A formatter that adds ``%(levelprefix)s``: the level name, a colon, and
    padding to 9 characters so that messages line up (``INFO:     ``).

    With colours the level name is coloured like uvicorn's, and a record
    logged with ``extra={"color_message": ...}`` uses that message instead.

    Args:
        fmt, datefmt, style: as for :class:`logging.Formatter`.
        use_colors: True/False forces colours on/off; None colours when the
            stream this formatter normally writes to is a terminal.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        use_colors: bool | None = None,
    ) -> None:
        super().__init__(fmt=fmt, datefmt=datefmt, style=style)
        self.use_colors: bool = self.should_use_colors() if use_colors is None else bool(use_colors)
        # Level prefixes are a handful of distinct strings; build each once.
        self._prefixes: dict[tuple[int, str], str] = {}

    def should_use_colors(self) -> bool:
        """Whether colours are on when ``use_colors`` is None (stdout is a tty)."""
        return _isatty(sys.stdout)

    def level_prefix(self, levelno: int, levelname: str) -> str:
        """The ``%(levelprefix)s`` of a record: ``"INFO:     "``, maybe coloured."""
        key = (levelno, levelname)
        prefix = self._prefixes.get(key)
        if prefix is None:
            padding = " " * max(0, 8 - len(levelname))
            colour = _LEVEL_COLOURS.get(levelno) if self.use_colors else None
            name = f"{colour}{levelname}{_RESET}" if colour else levelname
            prefix = self._prefixes[key] = f"{name}:{padding}"
        return prefix

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Format *record* with ``levelprefix`` (and ``color_message``) added."""
        record = _copy_record(record)
        if self.use_colors and "color_message" in record.__dict__:
            record.msg = record.__dict__["color_message"]
            record.message = record.getMessage()
        record.__dict__["levelprefix"] = self.level_prefix(record.levelno, record.levelname)
        return super().formatMessage(record)


class DefaultFormatter(ColourizedFormatter):
    """The formatter of ``monoceros`` / ``monoceros.error`` (written to stderr).

    ``DefaultFormatter("%(levelprefix)s %(message)s")`` gives uvicorn's
    ``INFO:     Started server process [123]``.
    """

    def should_use_colors(self) -> bool:
        """Colour when stderr, where the default handler writes, is a tty."""
        return _isatty(sys.stderr)


def _status_text(status: int, use_colors: bool) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        # An unregistered code has no phrase; the trailing space stays, as in
        # uvicorn, so that lines are the same byte for byte.
        phrase = ""
    text = f"{status} {phrase}"
    colour = _STATUS_COLOURS.get(status // 100) if use_colors else None
    return f"{colour}{text}{_RESET}" if colour else text


class AccessFormatter(ColourizedFormatter):
    """The formatter of ``monoceros.access`` (written to stdout).

    A record logged as ``logger.info(DEFAULT_ACCESS_MESSAGE, client, method,
    full_path, http_version, status)`` gets the fields ``client_addr``,
    ``request_line`` (``GET /path?q=1 HTTP/1.1``, bold with colours) and
    ``status_code`` (``200 OK``, coloured by class with colours); with
    :data:`LOGGING_CONFIG`'s format this is uvicorn's line::

        INFO:     127.0.0.1:54321 - "GET /path?q=1 HTTP/1.1" 200 OK

    Any other record on the access logger (a line already built by
    :meth:`AccessLogFormat.format` from a custom ``--access-log-format``) is
    written as its message alone: the user's format is the whole line.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        use_colors: bool | None = None,
    ) -> None:
        super().__init__(fmt=fmt, datefmt=datefmt, style=style, use_colors=use_colors)
        self._status_texts: dict[int, str] = {}

    def get_status_code(self, status_code: int) -> str:
        """``"200 OK"`` for 200, coloured by status class when colours are on."""
        text = self._status_texts.get(status_code)
        if text is None:
            text = self._status_texts[status_code] = _status_text(status_code, self.use_colors)
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Format an access record (see the class docstring)."""
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            return record.message
        client_addr, method, full_path, http_version, status_code = args
        request_line = f"{method} {full_path} HTTP/{http_version}"
        if self.use_colors:
            request_line = f"{_BOLD}{request_line}{_RESET}"
        record = _copy_record(record)
        record.__dict__["client_addr"] = client_addr
        record.__dict__["request_line"] = request_line
        record.__dict__["status_code"] = self.get_status_code(int(status_code))  # type: ignore[call-overload]
        return super().formatMessage(record)


# The default access format (monoceros.accesslog writes its lines directly).
_DEFAULT_ACCESS_FMT: Final = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'


# -- configuration -------------------------------------------------------------

# Formatter factories that take ``use_colors``; configure_logging() passes
# the --use-colors/--no-use-colors choice only to these, so that a user's own
# formatter classes are never handed an argument they do not accept.
_COLOUR_FACTORIES: Final = frozenset(
    {
        "monoceros.logging.ColourizedFormatter",
        "monoceros.logging.DefaultFormatter",
        "monoceros.logging.AccessFormatter",
        "uvicorn.logging.ColourizedFormatter",
        "uvicorn.logging.DefaultFormatter",
        "uvicorn.logging.AccessFormatter",
    }
)


def _with_colours(config: dict[str, Any], use_colors: bool) -> dict[str, Any]:
    # Copy only the levels we change: the caller's dict (often LOGGING_CONFIG
    # itself) must stay as it was, and a deep copy could choke on live
    # objects (streams, filters) a dict config may hold.
    formatters = config.get("formatters")
    if not isinstance(formatters, dict):
        return config
    new_formatters = dict(formatters)
    for name, spec in formatters.items():
        if not isinstance(spec, dict):
            continue
        factory = spec.get("()")
        if factory in _COLOUR_FACTORIES or (
            isinstance(factory, type) and issubclass(factory, ColourizedFormatter)
        ):
            new_formatters[name] = {**spec, "use_colors": use_colors}
    return {**config, "formatters": new_formatters}


def _one_line(exc: BaseException) -> str:
    # dictConfig wraps the real problem ("Unable to configure handler 'x'"),
    # so show the cause too; the user gets one line, never a traceback.
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None:
        text = f"{text}: {cause or type(cause).__name__}"
    return " ".join(text.split())


def _dict_config(config: object, source: str) -> None:
    if not isinstance(config, dict):
        raise ConfigError(f"Invalid logging configuration {source}: expected a mapping at the top level.")
    try:
        logging.config.dictConfig(config)
    except Exception as exc:  # dictConfig raises many types for a bad config
        raise ConfigError(f"Invalid logging configuration {source}: {_one_line(exc)}") from exc


def _load_file(path: str) -> None:
    if not os.path.isfile(path):
        raise ConfigError(f'Logging configuration file "{path}" does not exist.')
    source = f'in "{path}"'
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as file:
                loaded = json.load(file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Invalid logging configuration {source}: {_one_line(exc)}") from exc
        _dict_config(loaded, source)
    elif path.endswith((".yaml", ".yml")):
        try:
            # PyYAML is optional (monoceros[standard]); only YAML configs need it.
            import yaml
        except ImportError as exc:
            raise ConfigError(
                f'Install PyYAML (pip install "monoceros[standard]") to use the YAML logging '
                f'configuration "{path}".'
            ) from exc
        try:
            with open(path, encoding="utf-8") as file:
                loaded = yaml.safe_load(file)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"Invalid logging configuration {source}: {_one_line(exc)}") from exc
        _dict_config(loaded, source)
    else:
        try:
            # See the note on fileConfig() in the logging.config documentation:
            # without this, loggers created before now would be disabled.
            logging.config.fileConfig(path, disable_existing_loggers=False)
        except Exception as exc:  # configparser, eval() of handler args, imports...
            raise ConfigError(f"Invalid logging configuration {source}: {_one_line(exc)}") from exc


def _level_number(log_level: str | int) -> int:
    if isinstance(log_level, bool) or not isinstance(log_level, (str, int)):
        raise ConfigError(f"Invalid log level {log_level!r}: use a level name or number.")
    if isinstance(log_level, int):
        return log_level
    try:
        return LOG_LEVELS[log_level.lower()]
    except KeyError:
        names = ", ".join(LOG_LEVELS)
        raise ConfigError(f'Invalid log level "{log_level}": use one of {names}.') from None


def configure_logging(
    log_config: dict[str, Any] | str | os.PathLike[str] | None,
    log_level: str | int | None,
    access_log: bool,
    use_colors: bool | None,
) -> None:
    """Set up logging for the server, the way uvicorn does.

    Args:
        log_config: a :func:`logging.config.dictConfig` dict (normally
            :data:`LOGGING_CONFIG`; it is not modified), or the path of a
            ``.json``, ``.yaml``/``.yml`` (needs PyYAML) or any other
            (:func:`logging.config.fileConfig` INI) file; None leaves the
            logging configuration alone.
        log_level: ``critical``, ``error``, ``warning``, ``info``, ``debug``,
            ``trace`` (any case) or a number, set on ``monoceros``,
            ``monoceros.error``, ``monoceros.access`` and ``monoceros.asgi``;
            None keeps the configured levels.
        access_log: False removes the access logger's handlers, stops its
            propagation and disables it, so ``isEnabledFor()`` is False and
            the server skips building access lines.
        use_colors: True/False is passed as ``use_colors`` to the dict
            config's monoceros (or uvicorn) formatters; None lets them decide.

    Raises:
        ConfigError: the file is missing or invalid, the configuration is
            rejected by :mod:`logging.config`, or the level is unknown.
    """
    # The level number is checked first so that a bad level fails before the
    # global logging state changes.
    level = None if log_level is None else _level_number(log_level)

    if log_config is not None:
        if isinstance(log_config, dict):
            if use_colors is not None:
                log_config = _with_colours(log_config, use_colors)
            _dict_config(log_config, "(dict)")
        else:
            _load_file(os.fspath(log_config))

    if level is not None:
        for name in ("monoceros", "monoceros.error", "monoceros.access", "monoceros.asgi"):
            logging.getLogger(name).setLevel(level)

    if not access_log:
        access_logger = logging.getLogger("monoceros.access")
        access_logger.handlers = []
        access_logger.propagate = False
        # With no handlers the logger would still say it is enabled for INFO;
        # disabling it makes the server's isEnabledFor() check skip the work.
        access_logger.disabled = True


def get_logger(name: str) -> logging.Logger:
    """The logger ``monoceros.<name>``; a name that already starts with
    ``monoceros`` (such as ``__name__`` inside the package) is used as is."""
    if name == "monoceros" or name.startswith("monoceros."):
        return logging.getLogger(name)
    return logging.getLogger(f"monoceros.{name}" if name else "monoceros")


def trace_enabled(logger: logging.Logger) -> bool:
    """Whether *logger* emits TRACE records; check before building trace text."""
    return logger.isEnabledFor(TRACE_LOG_LEVEL)


# -- access lines ---------------------------------------------------------------

_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Atoms whose value is computed from the request; "f" and "a" are request
# headers and handled as such.
_COMPUTED_ATOMS: Final = frozenset("htrmUqHsBbTDMLp")
_HEADER_ATOMS: Final[Mapping[str, bytes]] = {"f": b"referer", "a": b"user-agent"}
# Atoms holding numbers, so that %(s)d or %(D)06d work as in gunicorn.
_INT_ATOMS: Final = frozenset("sBTDM")

# Untrusted text goes into the log escaped the way Apache escapes it: quotes
# and backslashes so the line stays parseable, control characters so it
# cannot forge lines or drive the terminal.
_ESCAPES: Final[dict[int, str]] = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))},
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}


def _escape(value: str) -> str:
    if value.isprintable() and '"' not in value and "\\" not in value:
        return value  # the common case: nothing to do
    return value.translate(_ESCAPES)


def _mapping_keys(fmt: str) -> list[str]:
    # Python's %-operator finds a mapping key by counting parentheses; do the
    # same so that the keys found here are exactly the ones it will look up.
    keys: list[str] = []
    i = 0
    end = len(fmt)
    while (i := fmt.find("%", i)) >= 0:
        i += 1
        if i < end and fmt[i] == "%":
            i += 1
            continue
        if i >= end or fmt[i] != "(":
            raise ConfigError(
                f"Invalid access log format {fmt!r}: every conversion must name an atom, "
                'as in "%(h)s" (write "%%" for a percent sign).'
            )
        depth = 1
        j = i + 1
        while j < end and depth:
            if fmt[j] == "(":
                depth += 1
            elif fmt[j] == ")":
                depth -= 1
            j += 1
        if depth:
            raise ConfigError(f"Invalid access log format {fmt!r}: unclosed parenthesis.")
        keys.append(fmt[i + 1 : j - 1])
        i = j
    return keys


def _clf_time(now: float) -> str:
    # Common Log Format time, "[10/Oct/2000:13:55:36 -0700]", in local time;
    # month names are fixed English, unlike strftime's %b under a locale.
    tm = time.localtime(now)
    offset = (tm.tm_gmtoff or 0) // 60
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    return (
        f"[{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:"
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {sign}{hours:02d}{minutes:02d}]"
    )


def _full_path(path: str, query: bytes) -> str:
    # Like uvicorn: the decoded path percent-quoted again, the raw query as is
    # (non-ASCII bytes, which parsers may let through, shown escaped).
    full = quote(path)
    if query:
        full = f"{full}?{query.decode('ascii', 'backslashreplace')}"
    return full


class AccessLogFormat:
    """How access lines are built: uvicorn's default line or a gunicorn format.

    ``AccessLogFormat()`` (no format) is uvicorn's line.  The server logs it
    with the five arguments that :class:`AccessFormatter` knows::

        logger.info(DEFAULT_ACCESS_MESSAGE, *fmt.default_args(
            client=..., method=..., path=..., query=..., http_version=..., status=...))

    that is ``logger.info('%s - "%s %s HTTP/%s" %d', client, method,
    full_path, http_version, status)``.

    ``AccessLogFormat('%(h)s "%(r)s" %(s)s %(b)s')`` is a gunicorn-style
    format, parsed once here; :meth:`format` computes only the atoms it uses
    and returns the finished line, which the server logs as
    ``logger.info(line)`` (no arguments, so ``%`` in it is harmless).
    :meth:`log` does whichever is right.

    Atoms: ``h`` client address, ``l`` ``-``, ``u`` user (always ``-``),
    ``t`` time ``[10/Oct/2000:13:55:36 -0700]``, ``r`` request line, ``m``
    method, ``U`` path without query, ``q`` query string, ``H`` protocol
    (``HTTP/1.1``), ``s`` status, ``B`` response body length, ``b`` the same
    or ``-`` when empty, ``f`` referer, ``a`` user agent, ``T`` request time
    in whole seconds, ``D`` in microseconds, ``M`` in milliseconds, ``L`` in
    decimal seconds (``0.012345``), ``p`` process id (``<1234>``, as gunicorn
    writes it), ``{name}i`` a request header, ``{name}o`` a response header
    (header names in any case; repeated headers joined with ``", "``),
    ``{NAME}e`` the environment variable ``NAME``.  Missing values and
    unknown atoms are ``-``; ``s``, ``B``, ``T``, ``D`` and ``M`` are numbers,
    the rest text with quotes, backslashes and control characters escaped.

    Raises:
        ConfigError: the format is empty or not a valid ``%(atom)s`` format.
    """

    __slots__ = (
        "_computed",
        "_constants",
        "_env",
        "_fmt",
        "_request_headers",
        "_response_headers",
        "_time_cache",
    )

    def __init__(self, fmt: str | None = None) -> None:
        self._fmt = fmt
        # Values that are the same for every request (mostly "-").
        self._constants: dict[str, str | int] = {}
        # Computed atoms the format uses, in the order they appear.
        self._computed: tuple[str, ...] = ()
        # Lower-case header name -> the format's keys showing it.
        self._request_headers: dict[bytes, list[str]] = {}
        self._response_headers: dict[bytes, list[str]] = {}
        # (key, environment variable name)
        self._env: tuple[tuple[str, str], ...] = ()
        # The last second formatted for "t", and its text.
        self._time_cache: tuple[int, str] = (-1, "")
        if fmt is None:
            return
        if not fmt:
            raise ConfigError("The access log format is empty.")

        computed: list[str] = []
        env: list[tuple[str, str]] = []
        for key in dict.fromkeys(_mapping_keys(fmt)):  # unique, in order
            self._constants[key] = "-"
            if key in _COMPUTED_ATOMS:
                computed.append(key)
            elif key in _HEADER_ATOMS:
                self._request_headers.setdefault(_HEADER_ATOMS[key], []).append(key)
            elif len(key) > 3 and key[0] == "{" and key[-2] == "}" and key[-1] in "ioe":
                name = key[1:-2]
                if key[-1] == "e":
                    env.append((key, name))
                else:
                    table = self._request_headers if key[-1] == "i" else self._response_headers
                    table.setdefault(name.lower().encode("latin-1", "replace"), []).append(key)
            # Anything else ("l", "u", unknown atoms) stays "-", as in gunicorn.
        self._computed = tuple(computed)
        self._env = tuple(env)

        # Try the format once on values of the right types, so that a bad
        # conversion ("%(s)z", "%(h)d") is a ConfigError now, not on every
        # request.
        sample = dict(self._constants)
        for key in computed:
            sample[key] = 0 if key in _INT_ATOMS else "-"
        try:
            fmt % sample
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"Invalid access log format {fmt!r}: {exc}.") from None

    @property
    def custom(self) -> bool:
        """True for a gunicorn-style format, False for uvicorn's default line."""
        return self._fmt is not None

    @staticmethod
    def default_args(
        *, client: str, method: str, path: str, query: bytes, http_version: str, status: int
    ) -> tuple[str, str, str, str, int]:
        """The five arguments of :data:`DEFAULT_ACCESS_MESSAGE`.

        Args:
            client: ``"host:port"`` (``""`` when unknown), as uvicorn shows it.
            path: the decoded ASGI ``path``; it is percent-quoted again.
            query: the raw ASGI ``query_string``.
            http_version: ``"1.1"``, ``"1.0"``...
        """
        return client, method, _full_path(path, query), http_version, status

    def format(
        self,
        *,
        client: str,
        method: str,
        path: str,
        query: bytes,
        http_version: str,
        status: int,
        request_headers: list[tuple[bytes, bytes]],
        response_headers: list[tuple[bytes, bytes]],
        response_length: int,
        duration_s: float,
    ) -> str:
        """The access line of one request, without colours or level prefix.

        For the default format this is uvicorn's message
        (``127.0.0.1:54321 - "GET / HTTP/1.1" 200``); log it through
        :meth:`default_args` instead so that :class:`AccessFormatter` can
        colour it.  For a custom format it is the whole line.

        Args:
            client: the client address as shown by ``h`` (``""`` if unknown).
            method: the request method.
            path: the decoded ASGI ``path`` (percent-quoted again for ``r``/``U``).
            query: the raw query string, without ``?``.
            http_version: ``"1.1"``, ``"1.0"``...
            status: the response status code.
            request_headers, response_headers: ASGI header lists.
            response_length: bytes of response body sent.
            duration_s: seconds from the request's start to the response's end.
        """
        fmt = self._fmt
        if fmt is None:
            return DEFAULT_ACCESS_MESSAGE % (client, method, _full_path(path, query), http_version, status)

        atoms = self._constants.copy()
        quoted_path: str | None = None
        for atom in self._computed:
            # Ordered roughly by how often formats use them.
            if atom == "h":
                atoms["h"] = _escape(client) if client else "-"
            elif atom == "r":
                if quoted_path is None:
                    quoted_path = quote(path)
                line = f"{method} {quoted_path}"
                if query:
                    line = f"{line}?{query.decode('ascii', 'backslashreplace')}"
                atoms["r"] = _escape(f"{line} HTTP/{http_version}")
            elif atom == "s":
                atoms["s"] = status
            elif atom == "t":
                second = int(time.time())
                if second != self._time_cache[0]:
                    self._time_cache = (second, _clf_time(second))
                atoms["t"] = self._time_cache[1]
            elif atom == "b":
                atoms["b"] = str(response_length) if response_length > 0 else "-"
            elif atom == "B":
                atoms["B"] = response_length
            elif atom == "m":
                atoms["m"] = _escape(method)
            elif atom == "U":
                if quoted_path is None:
                    quoted_path = quote(path)
                atoms["U"] = _escape(quoted_path)
            elif atom == "q":
                atoms["q"] = _escape(query.decode("ascii", "backslashreplace"))
            elif atom == "H":
                atoms["H"] = f"HTTP/{http_version}"
            elif atom == "D":
                atoms["D"] = int(duration_s * 1_000_000)
            elif atom == "M":
                atoms["M"] = int(duration_s * 1_000)
            elif atom == "T":
                atoms["T"] = int(duration_s)
            elif atom == "L":
                atoms["L"] = f"{duration_s:.6f}"
            else:  # "p"; _COMPUTED_ATOMS has no other letter
                # Not cached: workers fork after this object is built.
                atoms["p"] = f"<{os.getpid()}>"
        if self._request_headers:
            _header_atoms(atoms, request_headers, self._request_headers)
        if self._response_headers:
            _header_atoms(atoms, response_headers, self._response_headers)
        for key, name in self._env:
            value = os.environ.get(name)
            if value is not None:
                atoms[key] = _escape(value)
        return fmt % atoms

    def log(
        self,
        logger: logging.Logger,
        *,
        client: str,
        method: str,
        path: str,
        query: bytes,
        http_version: str,
        status: int,
        request_headers: list[tuple[bytes, bytes]],
        response_headers: list[tuple[bytes, bytes]],
        response_length: int,
        duration_s: float,
    ) -> None:
        """Log one request's access line at INFO on *logger*, in this format.

        The arguments are those of :meth:`format`.  Callers should check
        ``logger.isEnabledFor(logging.INFO)`` first to skip the work.
        """
        if self._fmt is None:
            logger.info(DEFAULT_ACCESS_MESSAGE, client, method, _full_path(path, query), http_version, status)
        else:
            logger.info(
                self.format(
                    client=client,
                    method=method,
                    path=path,
                    query=query,
                    http_version=http_version,
                    status=status,
                    request_headers=request_headers,
                    response_headers=response_headers,
                    response_length=response_length,
                    duration_s=duration_s,
                )
            )


def _header_atoms(
    atoms: dict[str, str | int], headers: list[tuple[bytes, bytes]], wanted: dict[bytes, list[str]]
) -> None:
    found: dict[bytes, str] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in wanted:
            text = value.decode("latin-1")
            previous = found.get(lname)
            found[lname] = text if previous is None else f"{previous}, {text}"
    for lname, text in found.items():
        escaped = _escape(text)
        for key in wanted[lname]:
            atoms[key] = escaped
