"""The access log of the HTTP/1.1 server, on both parsers: uvicorn's line by
default, nothing with ``access_log=False``, a gunicorn-style line with
``access_log_format``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from h1tools import Reader, get, read_response, respond

ACCESS = "monoceros.access"


@pytest.fixture
def access_records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The access logger's records; its state is restored afterwards
    (``access_log=False`` disables the logger for the whole process, as in uvicorn)."""
    logger = logging.getLogger(ACCESS)
    saved = (logger.handlers[:], logger.propagate, logger.disabled, logger.level)
    # An earlier test's access_log=False may have left it disabled and not propagating.
    logger.disabled, logger.propagate = False, True
    caplog.set_level(logging.INFO, logger=ACCESS)
    try:
        yield caplog
    finally:
        logger.handlers, logger.propagate, logger.disabled, logger.level = saved


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    status = 404 if scope["path"] == "/missing" else 200
    await respond(send, b"hello", status=status, headers=[(b"content-type", b"text/plain")])


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ACCESS]


def test_default_access_line(server, http_impl, access_records):
    with server(app) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/p?q=1") + get("/missing") + get("/p", version="1.0"))
        for _ in range(3):
            read_response(reader)
        port = sock.getsockname()[1]
    assert _access_lines(access_records) == [
        f'127.0.0.1:{port} - "GET /p?q=1 HTTP/1.1" 200',
        f'127.0.0.1:{port} - "GET /missing HTTP/1.1" 404',
        f'127.0.0.1:{port} - "GET /p HTTP/1.0" 200',
    ]


def test_access_log_off(server, http_impl, access_records):
    with server(app, access_log=False) as srv, srv.connect() as sock:
        sock.sendall(get("/p?q=1"))
        assert read_response(Reader(sock)).status == 200
    assert _access_lines(access_records) == []


def test_custom_access_log_format(server, http_impl, access_records):
    fmt = '%(h)s "%(r)s" %(s)s %(b)s "%({content-type}o)s" %(D)s'
    with server(app, access_log_format=fmt) as srv, srv.connect() as sock:
        reader = Reader(sock)
        sock.sendall(get("/p?q=1") + get("/missing", method="HEAD"))
        read_response(reader)
        read_response(reader, b"HEAD")
    lines = _access_lines(access_records)
    assert len(lines) == 2
    assert re.fullmatch(r'127\.0\.0\.1 "GET /p\?q=1 HTTP/1\.1" 200 5 "text/plain" \d+', lines[0]), lines[0]
    # HEAD: no body bytes went out
    assert re.fullmatch(r'127\.0\.0\.1 "HEAD /missing HTTP/1\.1" 404 - "text/plain" \d+', lines[1]), lines[1]
