"""The byte cases of the strict HTTP/1.1 tests, shared by the end-to-end tests
(tests/e2e/test_malformed.py, real sockets) and the codec tests
(tests/protocols/test_codecs.py, in memory).

Each case id names the RFC section it comes from (RFC 9112 unless it says
rfc9110).  A :class:`Bad` case must be refused with ``status`` and a closed
connection on both parsers; ``in_body`` marks faults after a valid head (the
application sees the request, then a disconnect, never a second request).
A :class:`Good` case must be served on both parsers; ``requests`` lists what
the application sees, in order: (method, target, body).
"""

from __future__ import annotations

from dataclasses import dataclass

HOST = b"Host: example.com"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"


def head(line: bytes, *fields: bytes) -> bytes:
    """A request head: the line, the fields, the empty line (CRLF everywhere)."""
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def get(*fields: bytes, line: bytes = b"GET / HTTP/1.1") -> bytes:
    return head(line, HOST, *fields)


def chunked(body: bytes, *fields: bytes) -> bytes:
    """A chunked POST whose (raw) chunked body is ``body``."""
    return head(b"POST / HTTP/1.1", HOST, b"Transfer-Encoding: chunked", *fields) + body


@dataclass(frozen=True)
class Bad:
    id: str
    data: bytes
    status: int = 400
    in_body: bool = False


@dataclass(frozen=True)
class Good:
    id: str
    data: bytes
    requests: tuple[tuple[bytes, bytes, bytes], ...]


BAD: list[Bad] = [
    # -- §2.2 message parsing: CRLF only ------------------------------------------
    Bad("rfc9112-2.2-bare-lf-line-endings", b"GET / HTTP/1.1\nHost: example.com\n\n"),
    Bad("rfc9112-2.2-bare-lf-after-a-field", b"GET / HTTP/1.1\r\nHost: example.com\nX-A: 1\r\n\r\n"),
    Bad("rfc9112-2.2-bare-lf-ends-the-head", b"GET / HTTP/1.1\r\nHost: example.com\r\n\n"),
    Bad("rfc9112-2.2-bare-lf-hides-transfer-encoding", get(b"X-A: 1\nTransfer-Encoding: chunked")),
    Bad("rfc9112-2.2-bare-cr-after-request-line", b"GET / HTTP/1.1\rHost: example.com\r\n\r\n"),
    Bad("rfc9112-2.2-bare-cr-in-a-field", get(b"X-A: 1\rX-B: 2")),
    Bad("rfc9112-2.2-bare-cr-ends-the-head", b"GET / HTTP/1.1\r\nHost: example.com\r\n\rX"),
    Bad("rfc9112-2.2-whitespace-before-first-field", head(b"GET / HTTP/1.1", b" " + HOST)),
    # -- §2.3 HTTP version -----------------------------------------------------------
    Bad("rfc9112-2.3-major-version-2-is-505", get(line=b"GET / HTTP/2.0"), 505),
    Bad("rfc9112-2.3-major-version-3-is-505", get(line=b"GET / HTTP/3.1"), 505),
    Bad("rfc9112-2.3-major-version-9-is-505", get(line=b"GET / HTTP/9.9"), 505),
    Bad("rfc9112-2.3-http-0.9-request-line", b"GET /\r\n\r\n"),
    Bad("rfc9112-2.3-http-0.9-version", get(line=b"GET / HTTP/0.9")),
    Bad("rfc9112-2.3-lowercase-protocol-name", get(line=b"GET / http/1.1")),
    Bad("rfc9112-2.3-two-digit-major", get(line=b"GET / HTTP/10.1")),
    Bad("rfc9112-2.3-letter-as-minor", get(line=b"GET / HTTP/1.x")),
    Bad("rfc9112-2.3-version-without-dot", get(line=b"GET / HTTP/11")),
    # -- §3 request line --------------------------------------------------------------
    Bad("rfc9112-3-unknown-method", get(line=b"FOO / HTTP/1.1")),
    Bad("rfc9112-3-pri-method", get(line=b"PRI / HTTP/1.1")),
    Bad("rfc9113-3.4-http2-preface-on-http1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    Bad("rfc9112-3-lowercase-method", get(line=b"get / HTTP/1.1")),
    Bad("rfc9112-3-delimiter-in-method", get(line=b"G(T / HTTP/1.1")),
    Bad("rfc9112-3-two-spaces-before-target", get(line=b"GET  / HTTP/1.1")),
    Bad("rfc9112-3-two-spaces-before-version", get(line=b"GET /  HTTP/1.1")),
    Bad("rfc9112-3-tab-as-separator", get(line=b"GET\t/ HTTP/1.1")),
    Bad("rfc9112-3-space-after-version", get(line=b"GET / HTTP/1.1 ")),
    Bad("rfc9112-3-space-before-method", get(line=b" GET / HTTP/1.1")),
    Bad("rfc9112-3-rtsp-protocol", get(line=b"GET / RTSP/1.0")),
    Bad("rfc9112-3-ice-protocol", get(line=b"SOURCE / ICE/1.0")),
    # -- §3.2 request target, Host ---------------------------------------------------------
    Bad("rfc9112-3.2-space-in-target", get(line=b"GET /a b HTTP/1.1")),
    Bad("rfc9112-3.2-non-ascii-in-target", get(line=b"GET /\xc3\xa9 HTTP/1.1")),
    Bad("rfc9112-3.2-control-in-target", get(line=b"GET /\x01 HTTP/1.1")),
    Bad("rfc9112-3.2-del-in-target", get(line=b"GET /\x7f HTTP/1.1")),
    Bad("rfc9112-3.2-fragment-in-target", get(line=b"GET /a#b HTTP/1.1")),
    Bad("rfc9112-3.2-relative-target", get(line=b"GET a/b HTTP/1.1")),
    Bad("rfc9112-3.2.2-absolute-form-with-userinfo", get(line=b"GET http://u@example.com/ HTTP/1.1")),
    Bad("rfc9112-3.2.2-absolute-form-other-scheme", get(line=b"GET ftp://example.com/ HTTP/1.1")),
    Bad("rfc9112-3.2.2-absolute-form-fragment", get(line=b"GET http://example.com#x HTTP/1.1")),
    Bad(
        "rfc9112-3.2.3-connect-is-501",
        head(b"CONNECT example.com:443 HTTP/1.1", b"Host: example.com:443"),
        501,
    ),
    Bad("rfc9112-3.2.3-connect-with-invalid-authority", head(b"CONNECT exa#mple.com:443 HTTP/1.1", HOST)),
    Bad("rfc9112-3.2.3-connect-with-origin-form-is-501", head(b"CONNECT / HTTP/1.1", HOST), 501),
    Bad("rfc9112-3.2.4-asterisk-form-with-get", get(line=b"GET * HTTP/1.1")),
    Bad("rfc9112-3.2-missing-host", head(b"GET / HTTP/1.1")),
    Bad("rfc9112-3.2-missing-host-before-connect-501", head(b"CONNECT example.com:443 HTTP/1.1")),
    Bad("rfc9112-3.2-missing-host-http-1.2", head(b"GET / HTTP/1.2")),
    Bad("rfc9112-3.2-two-hosts", get(b"Host: example.org")),
    Bad("rfc9112-3.2-two-hosts-http-1.0", head(b"GET / HTTP/1.0", HOST, HOST)),
    Bad("rfc9112-3.2-space-in-host", head(b"GET / HTTP/1.1", b"Host: exa mple.com")),
    Bad("rfc9112-3.2-userinfo-in-host", head(b"GET / HTTP/1.1", b"Host: u@example.com")),
    # -- §5 field syntax ---------------------------------------------------------------
    Bad("rfc9112-5.1-space-before-colon", get(b"X-A : 1")),
    Bad("rfc9112-5.1-tab-before-colon", get(b"X-A\t: 1")),
    Bad("rfc9112-5.1-empty-field-name", get(b": 1")),
    Bad("rfc9112-5.1-field-without-colon", get(b"X-A")),
    Bad("rfc9112-5.1-space-in-field-name", get(b"X A: 1")),
    Bad("rfc9112-5.2-obs-fold", get(b"X-A: 1", b" 2")),
    Bad("rfc9112-5.2-obs-fold-with-tab", get(b"X-A: 1", b"\t2")),
    Bad("rfc9112-5.2-whitespace-only-line", get(b" ")),
    Bad("rfc9110-5.1-nul-in-field-name", get(b"X\x00A: 1")),
    Bad("rfc9110-5.1-non-ascii-field-name", get(b"X\xc3\xa9: 1")),
    Bad("rfc9110-5.5-nul-in-value", get(b"X-A: 1\x002")),
    Bad("rfc9110-5.5-vt-in-value", get(b"X-A: 1\x0b2")),
    Bad("rfc9110-5.5-ff-in-value", get(b"X-A: 1\x0c2")),
    Bad("rfc9110-5.5-esc-in-value", get(b"X-A: \x1b[31mred")),
    Bad("rfc9110-5.5-del-in-value", get(b"X-A: 1\x7f")),
    # -- §6.1 Transfer-Encoding (and TE.TE obfuscations) ---------------------------------
    Bad("rfc9112-6.1-transfer-encoding-in-http-1.0", head(b"POST / HTTP/1.0", b"Transfer-Encoding: chunked")),
    Bad("rfc9112-6.3-te-not-chunked", chunked(b"0\r\n\r\n").replace(b"chunked", b"gzip", 1)),
    Bad(
        "rfc9112-6.3-te-chunked-then-identity",
        chunked(b"0\r\n\r\n").replace(b"chunked", b"chunked, identity", 1),
    ),
    Bad("rfc9112-6.3-te-xchunked", chunked(b"0\r\n\r\n").replace(b"chunked", b"xchunked", 1)),
    Bad(
        "rfc9112-6.3-te-chunked-twice-in-a-list",
        chunked(b"0\r\n\r\n").replace(b"chunked", b"chunked, chunked", 1),
    ),
    Bad("rfc9112-6.3-te-duplicated-field", chunked(b"0\r\n\r\n", b"Transfer-Encoding: chunked")),
    Bad(
        "rfc9112-6.3-te-gzip-field-then-chunked-field",
        chunked(b"0\r\n\r\n", b"Transfer-Encoding: x").replace(
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
            b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
        ),
    ),
    Bad("rfc9112-6.3-te-empty", chunked(b"0\r\n\r\n").replace(b" chunked", b"", 1)),
    Bad("rfc9112-6.3-te-quoted", chunked(b"0\r\n\r\n").replace(b"chunked", b'"chunked"', 1)),
    Bad("rfc9112-6.3-te-with-parameter", chunked(b"0\r\n\r\n").replace(b"chunked", b"chunked;q=1", 1)),
    Bad("rfc9112-6.3-te-vt-before-value", chunked(b"0\r\n\r\n").replace(b": chunked", b":\x0bchunked", 1)),
    Bad("rfc9112-6.3-te-ff-after-value", chunked(b"0\r\n\r\n").replace(b"chunked", b"chunked\x0c", 1)),
    Bad("rfc9112-6.3-te-trailing-tab", chunked(b"0\r\n\r\n").replace(b"chunked", b"chunked\t", 1)),
    Bad("rfc9112-6.3-te-space-before-colon", chunked(b"0\r\n\r\n").replace(b"Encoding:", b"Encoding :", 1)),
    Bad(
        "rfc9112-6.1-unknown-coding-before-chunked-is-501",
        chunked(b"0\r\n\r\n").replace(b"chunked", b"gzip, chunked", 1),
        501,
    ),
    # -- §6.3 Content-Length, CL.TE and TE.CL ------------------------------------------------
    Bad(
        "rfc9112-6.3-cl-te",
        head(b"POST / HTTP/1.1", HOST, b"Content-Length: 6", b"Transfer-Encoding: chunked") + b"0\r\n\r\nX",
    ),
    Bad(
        "rfc9112-6.3-te-cl",
        head(b"POST / HTTP/1.1", HOST, b"Transfer-Encoding: chunked", b"Content-Length: 4")
        + b"5c\r\nGPOST / HTTP/1.1\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n",
    ),
    Bad("rfc9112-6.3-two-content-lengths", get(b"Content-Length: 1", b"Content-Length: 2") + b"xy"),
    Bad("rfc9112-6.3-two-equal-content-lengths", get(b"Content-Length: 1", b"Content-Length: 1") + b"x"),
    Bad("rfc9112-6.3-content-length-list", get(b"Content-Length: 1, 1") + b"x"),
    Bad("rfc9112-6.3-negative-content-length", get(b"Content-Length: -1")),
    Bad("rfc9112-6.3-plus-sign-content-length", get(b"Content-Length: +1") + b"x"),
    Bad("rfc9112-6.3-hex-content-length", get(b"Content-Length: 0x1") + b"x"),
    Bad("rfc9112-6.3-empty-content-length", get(b"Content-Length:")),
    Bad("rfc9112-6.3-space-inside-content-length", get(b"Content-Length: 1 1") + b"x"),
    Bad("rfc9112-6.3-content-length-of-19-digits", get(b"Content-Length: 1000000000000000000")),
    Bad("rfc9112-6.3-content-length-overflow", get(b"Content-Length: 99999999999999999999999")),
    Bad(
        "rfc9112-6.3-framing-fault-before-version-505",
        get(b"Content-Length: 1", b"Content-Length: 1", line=b"GET / HTTP/2.0") + b"x",
    ),
    # -- §7.1 chunked transfer coding (the head is valid: the app sees the request) ------
    Bad("rfc9112-7.1-chunk-size-0x-prefix", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-size-negative", chunked(b"-5\r\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-size-not-hex", chunked(b"zz\r\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-size-empty", chunked(b"\r\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-size-overflow", chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-size-then-space", chunked(b"5 \r\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-size-then-bare-lf", chunked(b"5\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-size-then-bare-cr", chunked(b"5\rhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-data-without-crlf", chunked(b"5\r\nhelloXX0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-data-then-bare-lf", chunked(b"5\r\nhello\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-chunk-data-longer-than-its-size", chunked(b"3\r\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1-last-chunk-then-bare-lf", chunked(b"0\n\r\n"), in_body=True),
    Bad(
        "rfc9112-7.1.1-chunk-ext-space-after-semicolon",
        chunked(b"5; a=b\r\nhello\r\n0\r\n\r\n"),
        in_body=True,
    ),
    Bad(
        "rfc9112-7.1.1-chunk-ext-space-around-equals", chunked(b"5;a = b\r\nhello\r\n0\r\n\r\n"), in_body=True
    ),
    Bad("rfc9112-7.1.1-chunk-ext-empty", chunked(b"5;\r\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad(
        "rfc9112-7.1.1-chunk-ext-control-in-quoted-value",
        chunked(b'5;a="\x01"\r\nhello\r\n0\r\n\r\n'),
        in_body=True,
    ),
    Bad("rfc9112-7.1.1-chunk-ext-cr-in-quoted-value", chunked(b'5;a="x\r\nhello\r\n0\r\n\r\n'), in_body=True),
    Bad("rfc9112-7.1.1-chunk-ext-then-bare-lf", chunked(b"5;a=b\nhello\r\n0\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1.2-trailer-content-length", chunked(b"0\r\nContent-Length: 5\r\n\r\n"), in_body=True),
    Bad(
        "rfc9112-7.1.2-trailer-transfer-encoding",
        chunked(b"0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        in_body=True,
    ),
    Bad("rfc9112-7.1.2-trailer-obs-fold", chunked(b"0\r\nX-T: 1\r\n 2\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1.2-trailer-space-before-colon", chunked(b"0\r\nX-T : 1\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1.2-trailer-control-in-value", chunked(b"0\r\nX-T: \x01\r\n\r\n"), in_body=True),
    Bad("rfc9112-7.1.2-trailers-end-with-bare-lf", chunked(b"0\r\nX-T: 1\r\n\n"), in_body=True),
]

GOOD: list[Good] = [
    Good("rfc9112-2.2-leading-empty-line", b"\r\n" + get(), ((b"GET", b"/", b""),)),
    Good("rfc9112-2.2-leading-empty-lines", b"\r\n\r\n\n\r" + get(), ((b"GET", b"/", b""),)),
    Good(
        "rfc9112-2.2-empty-line-after-a-body",
        head(b"POST /1 HTTP/1.1", HOST, b"Content-Length: 3") + b"abc\r\n" + get(line=b"GET /2 HTTP/1.1"),
        ((b"POST", b"/1", b"abc"), (b"GET", b"/2", b"")),
    ),
    Good("rfc9110-2.5-http-1.2-is-served-as-1.1", get(line=b"GET / HTTP/1.2"), ((b"GET", b"/", b""),)),
    Good("rfc9112-3.2-http-1.0-without-host", head(b"GET /old HTTP/1.0"), ((b"GET", b"/old", b""),)),
    Good(
        "rfc9112-3.2.2-absolute-form",
        get(line=b"GET http://example.com/a/b?c=d HTTP/1.1"),
        ((b"GET", b"http://example.com/a/b?c=d", b""),),
    ),
    Good("rfc9112-3.2.4-options-asterisk", get(line=b"OPTIONS * HTTP/1.1"), ((b"OPTIONS", b"*", b""),)),
    Good(
        "rfc9112-5-value-whitespace-is-not-part-of-the-value", get(b"X-A: \t v v \t"), ((b"GET", b"/", b""),)
    ),
    Good(
        "rfc9112-6.3-content-length-with-leading-zeros",
        get(b"Content-Length: 003") + b"abc",
        ((b"GET", b"/", b"abc"),),
    ),
    Good(
        "rfc9112-7.1-chunked-with-extensions-and-trailers",
        chunked(
            b'5;name=value;quoted="a \\"b\\"";flag\r\nhello\r\n'
            b"6\r\n world\r\n0;last\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
        ),
        ((b"POST", b"/", b"hello world"),),
    ),
    Good(
        "rfc9112-7.1-chunk-size-case-and-zeros",
        chunked(b"000A\r\n0123456789\r\n00\r\n\r\n"),
        ((b"POST", b"/", b"0123456789"),),
    ),
    Good(
        "rfc9112-6.1-chunked-case-insensitive",
        chunked(b"3\r\nabc\r\n0\r\n\r\n").replace(b"chunked", b"Chunked "),
        ((b"POST", b"/", b"abc"),),
    ),
    Good(
        "rfc9112-9.3.2-pipelined-requests",
        get(line=b"GET /1 HTTP/1.1")
        + head(b"POST /2 HTTP/1.1", HOST, b"Content-Length: 5")
        + b"hello"
        + head(b"POST /3 HTTP/1.1", HOST, b"Transfer-Encoding: chunked")
        + b"3\r\nabc\r\n0\r\n\r\n"
        + get(line=b"GET /4 HTTP/1.1"),
        ((b"GET", b"/1", b""), (b"POST", b"/2", b"hello"), (b"POST", b"/3", b"abc"), (b"GET", b"/4", b"")),
    ),
    Good(
        "rfc9110-7.8-upgrade-request-not-taken",
        get(b"Connection: Upgrade", b"Upgrade: example/1", line=b"GET /ws HTTP/1.1")
        + get(line=b"GET /after HTTP/1.1"),
        ((b"GET", b"/ws", b""), (b"GET", b"/after", b"")),
    ),
    Good(
        "rfc9110-10.1.1-unknown-expectation-is-ignored",
        get(b"Expect: something", b"Content-Length: 2") + b"ab",
        ((b"GET", b"/", b"ab"),),
    ),
    Good(
        "rfc9110-7.8-upgrade-request-with-a-body",
        head(b"POST /up HTTP/1.1", HOST, b"Connection: Upgrade", b"Upgrade: h2c", b"Content-Length: 3")
        + b"abc"
        + get(line=b"GET /after HTTP/1.1"),
        ((b"POST", b"/up", b"abc"), (b"GET", b"/after", b"")),
    ),
]

__all__ = ["BAD", "GOOD", "HOST", "SMUGGLED", "Bad", "Good", "chunked", "get", "head"]
