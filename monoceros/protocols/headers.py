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

Division of labour.  Field *syntax* is not re-checked here, because both
parsers already refuse it before a :class:`Request` exists (llhttp in strict
mode, h11 with the additions of :mod:`.codecs`): field names are tokens, no
whitespace before the colon, values hold no CTL but HTAB, no obs-fold, every
line ends in CRLF, the head is within its size limits.  Repeating those
regexes per header cost ~0.3 us a header; this function looks only at the
fields that decide framing and routing.  Values arrive with leading
whitespace removed and trailing whitespace kept (what llhttp produces); the
codecs strip the trailing whitespace only after this check.

The checks run in an order that reproduces what the parsers report while
still parsing (framing fields and Host first, all 400), so a request with
several faults gets the same status from both parsers.

Where RFC 9112 lets a server choose, we choose the safe side (the full list,
with the status of every refusal, is docs/strict-http.md):

* a bare LF (or CR) as a line end: 400 (§2.2 allows accepting a bare LF; a
  proxy that disagrees about line ends disagrees about message ends).  The
  codecs enforce it, before the parser sees the head.
* empty lines before a request line: any number of CR/LF bytes is ignored
  (§2.2: SHOULD ignore at least one).  This is what llhttp does, also for
  pipelined requests it parses itself, so the h11 codec does the same.
* obs-fold and whitespace-only lines: 400 (§5.2 allows refusing), as is
  whitespace between a field name and its colon (§5.1 requires it).
* several ``Content-Length`` fields, even with equal values, or a list value
  (``5, 5``): 400 (RFC 9112 §6.3 item 5 allows merging equal values; we refuse).
  More than 18 digits: 400.
* ``Transfer-Encoding`` together with ``Content-Length``: 400, never "TE wins"
  (§6.3 item 3 allows processing it; refusing closes the smuggling door).
* ``Transfer-Encoding`` on an HTTP/1.0 request: 400 (§6.1).
* more than one ``Transfer-Encoding`` field: 400 (even ``gzip`` then ``chunked``).
* a transfer coding list whose last member is not ``chunked``, with
  ``chunked`` twice, with an empty member or a character outside tokens and
  list separators: 400 (§6.3 item 4 requires 400 when chunked is not final).
  ``chunked`` preceded by other codings (``gzip, chunked``): 501 (§6.1: a
  coding we do not implement).  ``chunked`` followed by a tab is refused like
  llhttp does (it does not take a trailing HTAB as whitespace there).
* a missing ``Host`` on HTTP/1.1 (and 1.2+), or more than one ``Host``, or a
  ``Host`` value that is not a valid authority (userinfo included): 400
  (RFC 9112 §3.2).
* request target: origin-form with visible ASCII but ``#`` (a fragment is not
  part of a request target, RFC 9112 §3.2); absolute-form only for
  ``http``/``https`` with a plain authority (no userinfo, RFC 9110 §4.2.4);
  ``*`` only for ``OPTIONS``; everything else 400.  Raw non-ASCII: 400.
* methods: a token that llhttp also knows; anything else is 400, so that
  both parsers answer alike (llhttp cannot parse other methods).
* ``CONNECT``: 501 (there is no ASGI mapping for a tunnel).
* version: ``HTTP/1.0`` and ``HTTP/1.1``; ``HTTP/1.2``-``1.9`` are served as
  1.1 (RFC 9110 §2.5); major version 0 (HTTP/0.9, a request line without a
  version included) is 400, never answered as 0.9; majors 2-9 are 505.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

from monoceros.errors import RemoteProtocolError
from monoceros.middleware.proxy_headers import PROXY_HEADERS

_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Visible ASCII without "#": origin-form path and query (RFC 3986 has no raw
# octets; "#" starts a fragment, which a request target never carries).
_TARGET: Final = re.compile(rb"[\x21\x22\x24-\x7e]+")
# Origin-form targets already found valid: a server is asked for the same
# few paths again and again (a set lookup costs a quarter of the match).
# Short ones only, and at most _GOOD_MAX, so that a client cannot fill it.
_GOOD_TARGETS: Final[set[bytes]] = set()
_GOOD_LEN: Final = 256
_GOOD_MAX: Final = 1024
# http(s)://authority[/path][?query]; the authority without userinfo.
_ABSOLUTE: Final = re.compile(rb"https?://[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]+(?:[/?][\x21\x22\x24-\x7e]*)?")
# What llhttp accepts before the first "/" or "?" of a CONNECT target.
_CONNECT_TARGET: Final = re.compile(rb'[^"#<>\\^`{|}/?]*(?:[/?]|$)')
_HOST: Final = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]*")
# Host values already found valid: a server sees the same few again and again.
_GOOD_HOSTS: Final[set[bytes]] = set()
_DIGITS: Final = re.compile(rb"[0-9]{1,18}")
_CODING: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# The methods llhttp (httptools' parser) accepts in an HTTP/1.x request line;
# see the module docstring.
KNOWN_METHODS: Final = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND "
    b"PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split()
)

STATUS_PHRASES: Final[dict[int, bytes]] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}

# The first bytes of the names of the proxy headers (see carries_proxy_headers).
_PROXY_FIRST: Final = frozenset(name[0] for name in PROXY_HEADERS)


def carries_proxy_headers(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's (lower-cased) fields may hold one the proxy rewrite
    reads: the servers skip the rewrite (interpreted, 3 % of a keep-alive
    request) for one that does not.  By first byte: a false yes only costs
    the rewrite that would have run anyway."""
    return any(name[0] in _PROXY_FIRST for name, _ in headers)


def validate_header(name: bytes, value: bytes) -> bool:
    """True if ``name: value`` may be sent on the wire as it is."""
    return _TOKEN.fullmatch(name) is not None and _BAD_VALUE.search(value) is None


class Request:
    """A request head as a parser produced it, completed by :func:`check_request`.

    ``headers`` hold lower-cased names and values, in arrival order,
    duplicates kept; a value has no leading whitespace, and its trailing
    whitespace is removed by the codec after :func:`check_request`.  The
    framing attributes (``content_length``, ``chunked``, ``keep_alive``,
    ``expect_continue``, ``upgrade``) are filled in by :func:`check_request`.
    A plain slotted class rather than a frozen dataclass: one is built per
    request, and frozen construction costs 3x.
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
    return {t.strip(b" \t").lower() for t in value.split(b",")}


def _chunked_status(te: bytes) -> int:
    """0 if ``te`` (one Transfer-Encoding value) means plain chunked, else the
    status refusing it (see the module docstring)."""
    if te.rstrip(b" ").lower() == b"chunked":  # llhttp's own rule: SP may follow, HTAB may not
        return 0
    codings = [c.strip(b" \t").lower() for c in te.split(b",")]
    if codings == [b"chunked"]:
        return 400  # "chunked<HTAB>": llhttp would not frame it as chunked
    for coding in codings:
        if _CODING.fullmatch(coding) is None:
            return 400
    if codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
        return 400
    return 501


def check_request(req: Request, max_request_line: int) -> Request:
    """Apply the strict rules of the module docstring to ``req`` and fill in
    its framing; raise :class:`RemoteProtocolError` with the status to send."""
    # 1. The fields the parsers themselves refuse while parsing (always 400),
    # so that a request with several faults is refused alike by both.
    hosts = 0
    host_ok = True
    content_length = None
    te: bytes | None = None
    conn_tokens: set[bytes] | None = None
    upgrade: bytes | None = None
    for name, value in req.headers:
        # Most headers are none of the ones below; test the first letter first.
        c = name[0]
        if c == 104 and name == b"host":  # h
            hosts += 1
            if value not in _GOOD_HOSTS:
                if _HOST.fullmatch(value.rstrip(b" \t")) is None:
                    host_ok = False
                elif len(_GOOD_HOSTS) < 256 and len(value) <= _GOOD_LEN:  # a server sees few
                    _GOOD_HOSTS.add(value)
        elif c == 99:  # c
            if name == b"content-length":
                if content_length is not None:
                    raise RemoteProtocolError("more than one Content-Length", 400)
                stripped = value.rstrip(b" \t")
                if _DIGITS.fullmatch(stripped) is None:
                    raise RemoteProtocolError("invalid Content-Length", 400)
                content_length = int(stripped)
            elif name == b"connection":
                tokens = _connection_tokens(value)
                conn_tokens = tokens if conn_tokens is None else conn_tokens | tokens
        elif c == 116 and name == b"transfer-encoding":  # t
            if te is not None:
                raise RemoteProtocolError("more than one Transfer-Encoding", 400)
            te = value
        elif c == 101 and name == b"expect":  # e
            if value.strip(b" \t").lower() == b"100-continue":
                req.expect_continue = True
        elif c == 117 and name == b"upgrade":  # u
            upgrade = value.strip(b" \t").lower()
    # h11 counts Host fields while parsing, so this belongs here too.
    if hosts != 1 and (hosts > 1 or req.http_version != b"1.0"):
        raise RemoteProtocolError("a request needs exactly one Host header", 400)
    if not host_ok:
        raise RemoteProtocolError("invalid Host header", 400)
    te_status = 0
    if te is not None:
        if content_length is not None:
            raise RemoteProtocolError("both Transfer-Encoding and Content-Length", 400)
        te_status = _chunked_status(te)
        if te_status == 400:
            raise RemoteProtocolError("the final transfer coding must be chunked", 400)

    # 2. The request line.
    method = req.method
    if method not in KNOWN_METHODS:
        raise RemoteProtocolError(f"unknown method {method[:32]!r}", 400)
    target = req.target
    if len(target) > max_request_line:
        raise RemoteProtocolError("request target too long", 414)
    if method == b"CONNECT":
        # llhttp parses a CONNECT target as an authority and refuses some
        # characters in it; those are 400, the rest 501 (not supported).
        if _CONNECT_TARGET.match(target) is None:
            raise RemoteProtocolError("invalid CONNECT target", 400)
        raise RemoteProtocolError("CONNECT is not supported", 501)
    if target[:1] == b"/":
        if target not in _GOOD_TARGETS:
            if _TARGET.fullmatch(target) is None:
                raise RemoteProtocolError("invalid characters in the request target", 400)
            if len(target) <= _GOOD_LEN:
                if len(_GOOD_TARGETS) >= _GOOD_MAX:
                    _GOOD_TARGETS.clear()
                _GOOD_TARGETS.add(target)
    elif target == b"*":
        if method != b"OPTIONS":
            raise RemoteProtocolError("asterisk-form is for OPTIONS only", 400)
    elif _ABSOLUTE.fullmatch(target) is None:
        raise RemoteProtocolError("invalid request target", 400)
    version = req.http_version
    if version == b"1.1":
        keep_alive = True
    elif version == b"1.0":
        keep_alive = False
    elif version[:2] == b"1.":
        keep_alive = True  # a later 1.x minor is served as 1.1
    elif version[:2] == b"0.":
        raise RemoteProtocolError("HTTP/0.9 is not supported", 400)
    else:
        raise RemoteProtocolError("HTTP version not supported", 505)

    # 3. The rest of the head.
    if te is not None:
        if version == b"1.0":
            raise RemoteProtocolError("Transfer-Encoding in an HTTP/1.0 request", 400)
        if te_status:
            raise RemoteProtocolError("unsupported transfer coding", 501)
        req.chunked = True
    req.content_length = content_length
    if conn_tokens is not None:
        if b"close" in conn_tokens:
            keep_alive = False
        elif b"keep-alive" in conn_tokens:
            keep_alive = True
        if b"upgrade" in conn_tokens:
            req.upgrade = upgrade
    req.keep_alive = keep_alive
    return req


__all__ = [
    "KNOWN_METHODS",
    "STATUS_PHRASES",
    "Request",
    "carries_proxy_headers",
    "check_request",
    "validate_header",
]
