from __future__ import annotations

import calendar
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest

import monoceros.logging as mlog
from monoceros.errors import ConfigError
from monoceros.logging import (
    DEFAULT_ACCESS_MESSAGE,
    LOGGING_CONFIG,
    TRACE_LOG_LEVEL,
    AccessFormatter,
    AccessLogFormat,
    ColourizedFormatter,
    DefaultFormatter,
    configure_logging,
    get_logger,
    trace_enabled,
)

DEFAULT_FMT = "%(levelprefix)s %(message)s"
ACCESS_FMT = LOGGING_CONFIG["formatters"]["access"]["fmt"]
OUR_LOGGERS = ("monoceros", "monoceros.error", "monoceros.access", "monoceros.asgi")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Configuration is global: put every logger back as it was."""
    manager = logging.Logger.manager
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled, lg.filters[:])
        for name, lg in manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    yield
    for name, lg in list(manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger):
            continue
        if name in saved:
            lg.handlers, level, lg.propagate, lg.disabled, lg.filters = saved[name]
            lg.setLevel(level)
        else:
            lg.handlers = []
            lg.setLevel(logging.NOTSET)
            lg.propagate = True
            lg.disabled = False
    root.handlers, level = saved_root
    root.setLevel(level)


def record(msg: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("test", level, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def access_record(status: int = 200, path: str = "/path?q=1") -> logging.LogRecord:
    return record(DEFAULT_ACCESS_MESSAGE, "127.0.0.1:54321", "GET", path, "1.1", status)


# -- formatters ------------------------------------------------------------------


def test_trace_level_is_registered() -> None:
    assert TRACE_LOG_LEVEL == 5
    assert logging.getLevelName(5) == "TRACE"


@pytest.mark.parametrize(
    ("level", "plain"),
    [
        (TRACE_LOG_LEVEL, "TRACE:    Started"),
        (logging.DEBUG, "DEBUG:    Started"),
        (logging.INFO, "INFO:     Started"),
        (logging.WARNING, "WARNING:  Started"),
        (logging.ERROR, "ERROR:    Started"),
        (logging.CRITICAL, "CRITICAL: Started"),
    ],
)
def test_default_formatter_without_colours(level: int, plain: str) -> None:
    formatter = DefaultFormatter(DEFAULT_FMT, use_colors=False)
    assert formatter.format(record("Started", level=level)) == plain


@pytest.mark.parametrize(
    ("level", "coloured"),
    [
        (TRACE_LOG_LEVEL, "\033[34mTRACE\033[0m:    Started"),
        (logging.DEBUG, "\033[36mDEBUG\033[0m:    Started"),
        (logging.INFO, "\033[32mINFO\033[0m:     Started"),
        (logging.WARNING, "\033[33mWARNING\033[0m:  Started"),
        (logging.ERROR, "\033[31mERROR\033[0m:    Started"),
        (logging.CRITICAL, "\033[91mCRITICAL\033[0m: Started"),
    ],
)
def test_default_formatter_with_colours(level: int, coloured: str) -> None:
    formatter = DefaultFormatter(DEFAULT_FMT, use_colors=True)
    assert formatter.format(record("Started", level=level)) == coloured


def test_uvicorn_style_line() -> None:
    formatter = DefaultFormatter(DEFAULT_FMT, use_colors=False)
    assert formatter.format(record("Started server process [%d]", 123)) == (
        "INFO:     Started server process [123]"
    )


def test_unknown_and_long_level_names() -> None:
    formatter = DefaultFormatter(DEFAULT_FMT, use_colors=True)
    # No colour for a level without one; no negative padding for long names.
    assert formatter.format(record("x", level=25)) == "Level 25: x"
    assert formatter.format(record("x", level=25)) == "Level 25: x"  # cached prefix


def test_color_message_only_with_colours() -> None:
    extra: dict[str, Any] = {"color_message": "Running on \033[1m%s\033[0m"}
    plain = DefaultFormatter(DEFAULT_FMT, use_colors=False)
    coloured = DefaultFormatter(DEFAULT_FMT, use_colors=True)
    rec = record("Running on %s", "http://x", **extra)
    assert plain.format(rec) == "INFO:     Running on http://x"
    rec = record("Running on %s", "http://x", **extra)
    assert coloured.format(rec) == "\033[32mINFO\033[0m:     Running on \033[1mhttp://x\033[0m"
    # The shared record is left as it was for other handlers.
    assert rec.msg == "Running on %s"
    assert rec.getMessage() == "Running on http://x"
    assert "levelprefix" not in rec.__dict__


def test_brace_style() -> None:
    formatter = DefaultFormatter("{levelprefix} {message}", style="{", use_colors=False)
    assert formatter.format(record("hi")) == "INFO:     hi"


def test_colourized_formatter_auto_uses_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    assert ColourizedFormatter(use_colors=None).use_colors is True
    assert AccessFormatter(use_colors=None).use_colors is True
    assert ColourizedFormatter(use_colors=False).use_colors is False


def test_default_formatter_auto_uses_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    class Closed:
        def isatty(self) -> bool:
            raise ValueError("I/O operation on closed file")

    monkeypatch.setattr(sys, "stderr", Tty())
    assert DefaultFormatter().use_colors is True
    monkeypatch.setattr(sys, "stderr", Closed())
    assert DefaultFormatter().use_colors is False
    monkeypatch.setattr(sys, "stderr", None)
    assert DefaultFormatter().use_colors is False


def test_access_formatter_without_colours() -> None:
    formatter = AccessFormatter(ACCESS_FMT, use_colors=False)
    assert formatter.format(access_record()) == 'INFO:     127.0.0.1:54321 - "GET /path?q=1 HTTP/1.1" 200 OK'


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (101, "\033[97m101 Switching Protocols\033[0m"),
        (200, "\033[32m200 OK\033[0m"),
        (304, "\033[33m304 Not Modified\033[0m"),
        (404, "\033[31m404 Not Found\033[0m"),
        (500, "\033[91m500 Internal Server Error\033[0m"),
        (299, "\033[32m299 \033[0m"),
        (600, "600 "),
    ],
)
def test_access_formatter_with_colours(status: int, text: str) -> None:
    formatter = AccessFormatter(ACCESS_FMT, use_colors=True)
    line = formatter.format(access_record(status))
    assert line == f'\033[32mINFO\033[0m:     127.0.0.1:54321 - "\033[1mGET /path?q=1 HTTP/1.1\033[0m" {text}'
    assert formatter.format(access_record(status)) == line  # cached status text


def test_access_formatter_unknown_status_without_colours() -> None:
    formatter = AccessFormatter(ACCESS_FMT, use_colors=False)
    assert formatter.format(access_record(599)).endswith('HTTP/1.1" 599 ')


def test_access_formatter_passes_other_records_through() -> None:
    formatter = AccessFormatter(ACCESS_FMT, use_colors=True)
    line = '127.0.0.1 - - "GET / HTTP/1.1" 200 100%'
    assert formatter.format(record(line)) == line


# -- configure_logging -------------------------------------------------------------


def emit_both() -> None:
    logging.getLogger("monoceros.error").info("Started server process [%d]", 42)
    logging.getLogger("monoceros.access").info(
        DEFAULT_ACCESS_MESSAGE, "127.0.0.1:5000", "GET", "/", "1.1", 204
    )


def test_default_config_writes_uvicorn_lines(capsys: pytest.CaptureFixture[str]) -> None:
    before = deepcopy(LOGGING_CONFIG)
    configure_logging(LOGGING_CONFIG, None, True, False)
    emit_both()
    out, err = capsys.readouterr()
    assert err == "INFO:     Started server process [42]\n"
    assert out == 'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 204 No Content\n'
    assert before == LOGGING_CONFIG  # use_colors was injected into a copy


def test_default_config_with_colours(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LOGGING_CONFIG, None, True, True)
    emit_both()
    out, err = capsys.readouterr()
    assert err == "\033[32mINFO\033[0m:     Started server process [42]\n"
    assert out.endswith("\033[32m204 No Content\033[0m\n")
    assert LOGGING_CONFIG["formatters"]["default"]["use_colors"] is None


def test_use_colors_only_reaches_colour_formatters(capsys: pytest.CaptureFixture[str]) -> None:
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "plain %(message)s"},
            "cls": {"()": DefaultFormatter, "fmt": DEFAULT_FMT},
            "custom": {"()": logging.Formatter, "fmt": "custom %(message)s"},
            "odd": "not a dict",
        },
        "handlers": {
            "a": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
            "b": {"class": "logging.StreamHandler", "formatter": "cls", "stream": "ext://sys.stderr"},
            "c": {"class": "logging.StreamHandler", "formatter": "custom", "stream": "ext://sys.stderr"},
        },
        "loggers": {"monoceros": {"handlers": ["a", "b", "c"], "level": "INFO", "propagate": False}},
    }
    # "odd" would make dictConfig fail; check the injection alone first.
    injected = mlog._with_colours(config, True)
    assert injected["formatters"]["cls"]["use_colors"] is True
    assert "use_colors" not in injected["formatters"]["plain"]
    assert "use_colors" not in injected["formatters"]["custom"]
    assert injected["formatters"]["odd"] == "not a dict"
    assert "use_colors" not in config["formatters"]["cls"]
    assert mlog._with_colours({"version": 1}, True) == {"version": 1}

    del config["formatters"]["odd"]
    configure_logging(config, None, True, True)
    logging.getLogger("monoceros").info("hi")
    assert capsys.readouterr().err == "plain hi\n\033[32mINFO\033[0m:     hi\ncustom hi\n"


def test_invalid_dict_config() -> None:
    config = {"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}
    with pytest.raises(ConfigError, match=r"^Invalid logging configuration \(dict\): Unable to configure"):
        configure_logging(config, None, True, None)


def test_json_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps(LOGGING_CONFIG))
    configure_logging(str(path), None, True, None)
    emit_both()
    out, err = capsys.readouterr()
    # use_colors is None and the captured streams are not terminals.
    assert err == "INFO:     Started server process [42]\n"
    assert out == 'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 204 No Content\n'


def test_json_config_path_like(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps(LOGGING_CONFIG))
    configure_logging(path, None, True, None)
    emit_both()
    assert capsys.readouterr().err == "INFO:     Started server process [42]\n"


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_config(tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str) -> None:
    path = tmp_path / f"log{suffix}"
    path.write_text(
        """
version: 1
disable_existing_loggers: false
formatters:
  simple:
    format: "yaml %(levelname)s %(message)s"
handlers:
  console:
    class: logging.StreamHandler
    formatter: simple
    stream: ext://sys.stderr
loggers:
  monoceros:
    handlers: [console]
    level: DEBUG
    propagate: false
"""
    )
    configure_logging(path, None, True, None)
    logging.getLogger("monoceros.error").debug("hello")
    assert capsys.readouterr().err == "yaml DEBUG hello\n"


def test_ini_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.ini"
    path.write_text(
        """
[loggers]
keys=root,monoceros

[handlers]
keys=console

[formatters]
keys=simple

[logger_root]
level=WARNING
handlers=

[logger_monoceros]
level=INFO
handlers=console
propagate=0
qualname=monoceros

[handler_console]
class=StreamHandler
formatter=simple
args=(sys.stderr,)

[formatter_simple]
format=ini %(name)s %(message)s
"""
    )
    existing = logging.getLogger("monoceros.some.module")
    configure_logging(path, None, True, None)
    logging.getLogger("monoceros.error").info("hello")
    assert capsys.readouterr().err == "ini monoceros.error hello\n"
    assert not existing.disabled  # disable_existing_loggers=False


@pytest.mark.parametrize("name", ["missing.json", "missing.yaml", "missing.ini", "missing"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(ConfigError) as info:
        configure_logging(path, None, True, None)
    assert str(info.value) == f'Logging configuration file "{path}" does not exist.'


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        configure_logging(tmp_path, None, True, None)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.json", "{not json", "Expecting property name"),
        ("bad.json", b"\xff\xfe", "codec can't decode"),
        ("list.json", "[1, 2]", "expected a mapping at the top level"),
        ("bad.yaml", "a: [1, 2", "expected ',' or ']'"),
        ("scalar.yml", "just text", "expected a mapping at the top level"),
        ("badversion.json", '{"version": 2}', "Unsupported version: 2"),
        ("bad.ini", "[loggers]\nkeys=root\n", "formatters"),
        ("bad.conf", "not an ini file", "File contains no section headers"),
    ],
)
def test_invalid_file(tmp_path: Path, name: str, content: str | bytes, problem: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        configure_logging(str(path), None, True, None)
    message = str(info.value)
    assert message.startswith(f'Invalid logging configuration in "{path}": ')
    assert problem in message
    assert "\n" not in message


def test_yaml_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log.yaml"
    path.write_text("version: 1\n")
    # None in sys.modules makes "import yaml" raise ImportError.
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(
        ConfigError, match=r"^Install PyYAML .*monoceros\[standard\].* \"[^\"]+log\.yaml\"\.$"
    ):
        configure_logging(path, None, True, None)


def test_none_config_leaves_logging_alone() -> None:
    logger = logging.getLogger("monoceros")
    handlers = logger.handlers[:]
    configure_logging(None, None, True, None)
    assert logger.handlers == handlers


@pytest.mark.parametrize(
    ("log_level", "number"),
    [
        ("critical", logging.CRITICAL),
        ("error", logging.ERROR),
        ("warning", logging.WARNING),
        ("info", logging.INFO),
        ("debug", logging.DEBUG),
        ("trace", TRACE_LOG_LEVEL),
        ("TRACE", TRACE_LOG_LEVEL),
        ("Debug", logging.DEBUG),
        (15, 15),
    ],
)
def test_log_level(log_level: str | int, number: int) -> None:
    configure_logging(LOGGING_CONFIG, log_level, True, False)
    for name in OUR_LOGGERS:
        assert logging.getLogger(name).level == number


def test_log_level_none_keeps_configured_levels() -> None:
    configure_logging(LOGGING_CONFIG, None, True, False)
    assert logging.getLogger("monoceros.error").level == logging.INFO
    assert logging.getLogger("monoceros.asgi").level == logging.NOTSET


@pytest.mark.parametrize("log_level", ["verbose", True, 1.5])
def test_invalid_log_level(log_level: Any) -> None:
    logger = logging.getLogger("monoceros")
    handlers = logger.handlers[:]
    with pytest.raises(ConfigError, match=r"^Invalid log level"):
        configure_logging(LOGGING_CONFIG, log_level, True, False)
    assert logger.handlers == handlers  # nothing changed before the error


def test_invalid_log_level_lists_names() -> None:
    with pytest.raises(ConfigError) as info:
        configure_logging(None, "verbose", True, None)
    assert str(info.value) == (
        'Invalid log level "verbose": use one of critical, error, warning, info, debug, trace.'
    )


def test_access_log_off(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LOGGING_CONFIG, "info", False, False)
    access = logging.getLogger("monoceros.access")
    assert access.handlers == []
    assert access.propagate is False
    assert not access.isEnabledFor(logging.INFO)
    emit_both()
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "INFO:     Started server process [42]\n"

    # Configuring again with the access log on brings it back.
    configure_logging(LOGGING_CONFIG, None, True, False)
    assert access.isEnabledFor(logging.INFO)
    emit_both()
    assert capsys.readouterr().out.endswith("204 No Content\n")


def test_get_logger() -> None:
    assert get_logger("monoceros") is logging.getLogger("monoceros")
    assert get_logger("") is logging.getLogger("monoceros")
    assert get_logger("error") is logging.getLogger("monoceros.error")
    assert get_logger("monoceros.protocols.http") is logging.getLogger("monoceros.protocols.http")
    assert get_logger("monocerosx") is logging.getLogger("monoceros.monocerosx")


def test_trace_enabled() -> None:
    logger = logging.getLogger("monoceros.asgi")
    logger.setLevel(logging.DEBUG)
    assert not trace_enabled(logger)
    logger.setLevel(TRACE_LOG_LEVEL)
    assert trace_enabled(logger)


# -- AccessLogFormat -----------------------------------------------------------------

REQUEST: dict[str, Any] = {
    "client": "10.0.0.1:4242",
    "method": "GET",
    "path": "/a b/c",
    "query": b"x=1&y=2",
    "http_version": "1.1",
    "status": 404,
    "request_headers": [
        (b"host", b"example.com"),
        (b"user-agent", b"curl/8.0"),
        (b"referer", b"http://ref/"),
        (b"x-multi", b"one"),
        (b"X-Multi", b"two"),
    ],
    "response_headers": [(b"Content-Type", b"text/plain"), (b"content-length", b"9")],
    "response_length": 9,
    "duration_s": 1.2345678,
}


def fmt(format_string: str, **changes: Any) -> str:
    return AccessLogFormat(format_string).format(**{**REQUEST, **changes})


def test_default_format() -> None:
    access = AccessLogFormat()
    assert access.custom is False
    assert access.format(**REQUEST) == '10.0.0.1:4242 - "GET /a%20b/c?x=1&y=2 HTTP/1.1" 404'
    assert access.format(**{**REQUEST, "query": b""}) == '10.0.0.1:4242 - "GET /a%20b/c HTTP/1.1" 404'


def test_default_args() -> None:
    args = AccessLogFormat.default_args(
        client="1.2.3.4:5", method="POST", path="/p", query=b"a=\xff", http_version="1.0", status=201
    )
    assert args == ("1.2.3.4:5", "POST", "/p?a=\\xff", "1.0", 201)
    formatter = AccessFormatter(ACCESS_FMT, use_colors=False)
    assert formatter.format(record(DEFAULT_ACCESS_MESSAGE, *args)) == (
        'INFO:     1.2.3.4:5 - "POST /p?a=\\xff HTTP/1.0" 201 Created'
    )


@pytest.mark.parametrize(
    ("atom", "expected"),
    [
        ("h", "10.0.0.1:4242"),
        ("l", "-"),
        ("u", "-"),
        ("r", "GET /a%20b/c?x=1&y=2 HTTP/1.1"),
        ("m", "GET"),
        ("U", "/a%20b/c"),
        ("q", "x=1&y=2"),
        ("H", "HTTP/1.1"),
        ("s", "404"),
        ("B", "9"),
        ("b", "9"),
        ("f", "http://ref/"),
        ("a", "curl/8.0"),
        ("T", "1"),
        ("D", "1234567"),
        ("M", "1234"),
        ("L", "1.234568"),
        ("p", f"<{os.getpid()}>"),
        ("{host}i", "example.com"),
        ("{Host}i", "example.com"),
        ("{x-multi}i", "one, two"),
        ("{missing}i", "-"),
        ("{content-type}o", "text/plain"),
        ("{CONTENT-LENGTH}o", "9"),
        ("{host}o", "-"),
        ("{MONOCEROS_TEST_VAR}e", "from env"),
        ("{MONOCEROS_TEST_UNSET}e", "-"),
        ("nonsense", "-"),
        ("{}i", "-"),
        ("{x}z", "-"),
    ],
)
def test_atoms(monkeypatch: pytest.MonkeyPatch, atom: str, expected: str) -> None:
    monkeypatch.setenv("MONOCEROS_TEST_VAR", "from env")
    monkeypatch.delenv("MONOCEROS_TEST_UNSET", raising=False)
    assert AccessLogFormat(f"%({atom})s").custom is True
    assert fmt(f"%({atom})s") == expected


def test_empty_values() -> None:
    empty: dict[str, Any] = {
        "client": "",
        "query": b"",
        "request_headers": [],
        "response_headers": [],
        "response_length": 0,
    }
    assert fmt('%(h)s "%(r)s" %(q)s %(b)s %(B)s %(f)s %(a)s', **empty) == '- "GET /a%20b/c HTTP/1.1"  - 0 - -'


def test_time_atom(monkeypatch: pytest.MonkeyPatch) -> None:
    now = float(calendar.timegm((2000, 10, 10, 13, 55, 36, 0, 0, 0)))
    calls: list[float] = []

    def fake_localtime(secs: float | None = None) -> time.struct_time:
        assert secs is not None
        calls.append(secs)
        fields = time.gmtime(secs - 7 * 3600)
        return time.struct_time((*fields[:9], "MST", -7 * 3600))

    monkeypatch.setattr(time, "time", lambda: now)
    monkeypatch.setattr(time, "localtime", fake_localtime)
    access = AccessLogFormat("%(t)s")
    assert access.format(**REQUEST) == "[10/Oct/2000:06:55:36 -0700]"
    assert access.format(**REQUEST) == "[10/Oct/2000:06:55:36 -0700]"
    assert calls == [now]  # the text is reused within a second


def test_time_atom_positive_offset() -> None:
    ts = 971185536
    expected = time.strftime("%d/%%s/%Y:%H:%M:%S %z", time.localtime(ts))
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[
        time.localtime(ts).tm_mon - 1
    ]
    assert mlog._clf_time(ts) == f"[{expected % month}]"


def test_time_atom_real_clock() -> None:
    line = fmt("%(t)s")
    assert line.startswith("[") and line.endswith("]")
    assert len(line) == len("[10/Oct/2000:13:55:36 -0700]")


def test_gunicorn_default_format() -> None:
    line = fmt('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"')
    assert line.startswith("10.0.0.1:4242 - - [")
    assert line.endswith('] "GET /a%20b/c?x=1&y=2 HTTP/1.1" 404 9 "http://ref/" "curl/8.0"')


def test_number_conversions_and_percent() -> None:
    assert fmt("%(s)d %(D)010d %(M)5d 100%%") == "404 0001234567  1234 100%"


def test_path_atoms_share_the_quoted_path() -> None:
    assert fmt("%(r)s|%(U)s") == "GET /a%20b/c?x=1&y=2 HTTP/1.1|/a%20b/c"
    assert fmt("%(U)s|%(r)s") == "/a%20b/c|GET /a%20b/c?x=1&y=2 HTTP/1.1"


def test_repeated_atoms() -> None:
    assert fmt("%(s)s %(s)s %({host}i)s %({HOST}i)s") == "404 404 example.com example.com"


def test_escaping() -> None:
    headers = [(b"user-agent", b'evil "agent"\\ \x1b[31m\tx\r\n'), (b"referer", b"caf\xe9 \x85")]
    line = fmt('"%(a)s" "%(f)s"', request_headers=headers)
    assert line == '"evil \\"agent\\"\\\\ \\x1b[31m\\tx\\r\\n" "caf\xe9 \\x85"'
    assert fmt("%(q)s", query=b'a="b"') == 'a=\\"b\\"'
    assert fmt("%(m)s", method='G"ET') == 'G\\"ET'


def test_escaping_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONOCEROS_TEST_VAR", 'say "hi"')
    assert fmt("%({MONOCEROS_TEST_VAR}e)s") == 'say \\"hi\\"'


def test_format_is_only_parsed_once() -> None:
    access = AccessLogFormat("%(s)s %(D)s")
    assert access.format(**REQUEST) == "404 1234567"
    assert access.format(**{**REQUEST, "status": 200, "duration_s": 0.5}) == "200 500000"


@pytest.mark.parametrize(
    ("format_string", "problem"),
    [
        ("", "The access log format is empty."),
        ("%s", "every conversion must name an atom"),
        ("%(h)s %s", "every conversion must name an atom"),
        ("100%", "every conversion must name an atom"),
        ("%(h", "unclosed parenthesis"),
        ("%(h)d", "a real number is required"),
        ("%(h)z", "unsupported format character"),
        ("%(h)", "incomplete format"),
        ("%(s)*d", "not enough arguments"),
    ],
)
def test_invalid_format(format_string: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        AccessLogFormat(format_string)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_nested_parentheses_in_key() -> None:
    assert fmt("%({x(y)}i)s|%(s)s", request_headers=[(b"x(y)", b"v")]) == "v|404"


def test_log_default_and_custom(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LOGGING_CONFIG, None, True, False)
    logger = logging.getLogger("monoceros.access")
    AccessLogFormat().log(logger, **REQUEST)
    AccessLogFormat('%(h)s "%(r)s" %(s)s 100%%').log(logger, **REQUEST)
    assert capsys.readouterr().out == (
        'INFO:     10.0.0.1:4242 - "GET /a%20b/c?x=1&y=2 HTTP/1.1" 404 Not Found\n'
        '10.0.0.1:4242 "GET /a%20b/c?x=1&y=2 HTTP/1.1" 404 100%\n'
    )
