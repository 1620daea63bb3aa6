"""HTTP field rules shared by every parser and every HTTP version.

Theory of operation
-------------------
Each HTTP/1.1 parser (h11, httptools) turns bytes into a :class:`Request` with
raw method, target, version and lower-cased headers.  :func:`check_request`
then applies RFC 9112/9110 the same way whatever the parser, so a request is
accepted or refused identically (and refused with the same bytes) on both.
It also decides the message framing (Content-Length or chunked), keep-alive
and ``Expect: 100-continue``; because every ambiguous framing is refused
here, the parser's own framing always agrees with ours.

Where RFC 9112 lets a server choose, we choose the safe side:

* several ``Content-Length`` fields, even with equal values, or a list value
  (``5, 5``): 400 (RFC 9112 §6.3 allows merging equal values; we refuse).
* ``Transfer-Encoding`` together with ``Content-Length``: 400, never "TE wins"
  (§6.3 item 3 allows processing it; refusing closes the smuggling door).
* ``Transfer-Encoding`` on an HTTP/1.0 request: 400 (§6.1).
* a transfer coding other than one final ``chunked``: 400 when ``chunked`` is
  not last, 501 when an unknown coding precedes it (§6.1).
* non-ASCII bytes in the request target: 400 (RFC 3986 has no raw octets).
* methods: a token that llhttp also knows; anything else is 400, so that
  both parsers answer alike (llhttp cannot parse other methods).
* ``CONNECT``: 501 (there is no ASGI mapping for a tunnel).
"""

from __future__ import annotations

import re
from http import HTTPStatus

from monoceros.errors import RemoteProtocolError

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_HOST = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]*")
_DIGITS = re.compile(rb"[0-9]{1,18}")

# The methods llhttp (httptools' parser) recognises; see the module docstring.
KNOWN_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND "
    b"PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split()
)

STATUS_PHRASES: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}


def validate_header(name: bytes, value: bytes) -> bool:
    """True if ``name: value`` may be sent on the wire as it is."""
    return _TOKEN.fullmatch(name) is not None and _BAD_VALUE.search(value) is None


class Request:
    """A request head as a parser produced it, completed by :func:`check_request`.

    ``headers`` hold lower-cased names and raw values, in arrival order,
    duplicates kept.  The framing attributes (``content_length``, ``chunked``,
    ``keep_alive``, ``expect_continue``, ``upgrade``) are filled in by
    :func:`check_request`.  A plain slotted class rather than a frozen
    dataclass: one is built per request, and frozen construction costs 3x.
    """

    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "target",
        "upgrade",
    )

    def __init__(
        self, method: bytes, target: bytes, http_version: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = True
        self.expect_continue = False
        self.upgrade: bytes | None = None

    def __repr__(self) -> str:
        return f"<Request {self.method!r} {self.target!r} HTTP/{self.http_version.decode()}>"


def _connection_tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",")}


def check_request(req: Request, max_request_line: int) -> Request:
    """Apply the strict rules of the module docstring to ``req`` and fill in
    its framing; raise :class:`RemoteProtocolError` with the status to send."""
    method = req.method
    if method not in KNOWN_METHODS:
        raise RemoteProtocolError(f"unknown method {method[:32]!r}", 400)
    target = req.target
    if len(target) > max_request_line:
        raise RemoteProtocolError("request target too long", 414)
    if _TARGET.fullmatch(target) is None:
        raise RemoteProtocolError("invalid characters in the request target", 400)
    first = target[0]
    if first != 47:  # b"/"
        if target == b"*":
            if method != b"OPTIONS":
                raise RemoteProtocolError("asterisk-form is for OPTIONS only", 400)
        elif method == b"CONNECT":
            raise RemoteProtocolError("CONNECT is not supported", 501)
        elif not (target.startswith((b"http://", b"https://")) and len(target) > 8):
            raise RemoteProtocolError("invalid request target", 400)
    elif method == b"CONNECT":
        raise RemoteProtocolError("CONNECT is not supported", 501)
    version = req.http_version
    if version == b"1.1":
        keep_alive = True
    elif version == b"1.0":
        keep_alive = False
    elif version[:2] == b"1.":
        keep_alive = True
    else:
        raise RemoteProtocolError("HTTP version not supported", 505)

    hosts = 0
    content_length = None
    te: bytes | None = None
    conn_upgrade = False
    upgrade: bytes | None = None
    for name, value in req.headers:
        if _TOKEN.fullmatch(name) is None:
            raise RemoteProtocolError("invalid header name", 400)
        if _BAD_VALUE.search(value) is not None:
            raise RemoteProtocolError("invalid character in a header value", 400)
        # Most headers are none of the ones below; test the first letter first.
        c = name[0]
        if c == 104 and name == b"host":  # h
            hosts += 1
            if _HOST.fullmatch(value.strip()) is None:
                raise RemoteProtocolError("invalid Host header", 400)
        elif c == 99:  # c
            if name == b"content-length":
                if content_length is not None:
                    raise RemoteProtocolError("more than one Content-Length", 400)
                stripped = value.strip()
                if _DIGITS.fullmatch(stripped) is None:
                    raise RemoteProtocolError("invalid Content-Length", 400)
                content_length = int(stripped)
            elif name == b"connection":
                tokens = _connection_tokens(value)
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
                if b"upgrade" in tokens:
                    conn_upgrade = True
        elif c == 116 and name == b"transfer-encoding":  # t
            if te is not None:
                raise RemoteProtocolError("more than one Transfer-Encoding", 400)
            te = value
        elif c == 101 and name == b"expect":  # e
            if value.strip().lower() == b"100-continue":
                req.expect_continue = True
        elif c == 117 and name == b"upgrade":  # u
            upgrade = value.strip().lower()

    if hosts != 1 and (hosts > 1 or version == b"1.1"):
        raise RemoteProtocolError("a request needs exactly one Host header", 400)
    if te is not None:
        if version == b"1.0":
            raise RemoteProtocolError("Transfer-Encoding in an HTTP/1.0 request", 400)
        if content_length is not None:
            raise RemoteProtocolError("both Transfer-Encoding and Content-Length", 400)
        codings = [c.strip().lower() for c in te.split(b",")]
        if codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
            raise RemoteProtocolError("the final transfer coding must be chunked", 400)
        if len(codings) > 1:
            raise RemoteProtocolError("unsupported transfer coding", 501)
        req.chunked = True
    req.content_length = content_length
    req.keep_alive = keep_alive
    if conn_upgrade:
        req.upgrade = upgrade
    return req


__all__ = ["KNOWN_METHODS", "STATUS_PHRASES", "Request", "check_request", "validate_header"]
