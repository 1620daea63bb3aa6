"""ProxyHeadersMiddleware: trusted-host forms, X-Forwarded-*, RFC 7239 Forwarded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from monoceros.errors import ConfigError
from monoceros.middleware import ProxyHeadersMiddleware
from monoceros.middleware._asgi import Message, Receive, Scope, Send
from monoceros.middleware.proxy_headers import TrustedHosts, parse_forwarded

PEER = ("127.0.0.1", 50000)
SERVER = ("10.9.9.9", 8000)


def make_scope(
    headers: list[tuple[bytes, bytes]] | None = None,
    client: Any = PEER,
    server: Any = SERVER,
    kind: str = "http",
) -> dict[str, Any]:
    return {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "client": client,
        "server": server,
        "headers": list(headers or []),
        "path": "/",
    }


def run(
    trusted: Any = "127.0.0.1",
    headers: list[tuple[bytes, bytes]] | None = None,
    **scope_kwargs: Any,
) -> Scope:
    """Call the middleware once; return the scope the application saw."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    middleware = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
    asyncio.run(middleware(make_scope(headers, **scope_kwargs), receive, send))
    return seen[0]


def xff(value: str) -> tuple[bytes, bytes]:
    return (b"x-forwarded-for", value.encode("latin-1"))


def fwd(value: str) -> tuple[bytes, bytes]:
    return (b"forwarded", value.encode("latin-1"))


def header(scope: Scope, name: bytes) -> list[bytes]:
    return [v for n, v in scope["headers"] if n == name]


# -- trusted hosts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "peer", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("::1", "::1", True),
        ("::1", "0:0:0:0:0:0:0:1", True),  # compared as addresses, not text
        ("0:0:0:0:0:0:0:1", "::1", True),
        ("10.0.0.0/8", "10.200.3.4", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("fd00::/8", "fd12:3456::1", True),
        ("fd00::/8", "fe80::1", False),
        ("fd00::/8", "10.0.0.1", False),  # v4 peer vs v6 network
        ("10.0.0.0/8", "fd00::1", False),
        ("127.0.0.1", "::ffff:127.0.0.1", True),  # dual-stack listener
        ("10.0.0.0/8", "::ffff:10.1.2.3", True),
        ("127.0.0.1", "::ffff:127.0.0.2", False),
        ("*", "203.0.113.9", True),
        (["*"], "203.0.113.9", True),
        ("127.0.0.1, *", "203.0.113.9", True),
        ("192.168.0.1, 10.0.0.0/8", "10.1.1.1", True),
        (" 192.168.0.1 ,, 10.0.0.0/8 ,", "192.168.0.1", True),
        (["192.168.0.1", "10.0.0.0/8, fd00::/8"], "fd00::2", True),
        ([], "127.0.0.1", False),
        ("", "127.0.0.1", False),
        ("testclient", "testclient", True),  # a non-IP client name matched as a literal
        ("testclient", "other", False),
        ("localhost", "127.0.0.1", False),  # literals are not resolved
    ],
)
def test_peer_trust(trusted: Any, peer: str, expected: bool) -> None:
    scope = run(trusted, [xff("198.51.100.7")], client=(peer, 1234))
    assert (scope["client"] == ("198.51.100.7", 0)) is expected


@pytest.mark.parametrize(
    ("trusted", "client", "server", "expected"),
    [
        # A unix socket peer: only a literal (the socket path) or '*' trusts it.
        ("/tmp/app.sock", None, ("/tmp/app.sock", None), True),
        ("/tmp/app.sock", None, ("/tmp/app.sock", 0), True),
        ("/tmp/other.sock", None, ("/tmp/app.sock", None), False),
        ("127.0.0.1", None, ("/tmp/app.sock", None), False),
        ("127.0.0.1", None, None, False),
        ("*", None, None, True),
        ("*", None, ("/tmp/app.sock", None), True),
        # Some servers give the unix peer a name: it can be trusted literally,
        # but an IP in the trust list never matches a unix peer.
        ("peer-name", ("peer-name", 0), ("/tmp/app.sock", None), True),
        ("127.0.0.1", ("127.0.0.1", 0), ("/tmp/app.sock", None), False),
        ("/tmp/app.sock", ("", 0), ("/tmp/app.sock", None), True),
        ("127.0.0.1", ("", 0), SERVER, False),
    ],
)
def test_unix_socket_peer(trusted: str, client: Any, server: Any, expected: bool) -> None:
    scope = run(trusted, [xff("198.51.100.7")], client=client, server=server)
    assert (scope["client"] == ("198.51.100.7", 0)) is expected


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "10.0.0.0/33", "fd00::1/8", "::/129", "10.0.0.0/x"])
def test_invalid_network_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError, match="invalid trusted network"):
        TrustedHosts(entry)


def test_trusted_hosts_parsed_once() -> None:
    trusted = TrustedHosts("127.0.0.1, 10.0.0.0/8, fd00::/8, /tmp/a.sock, _proxy")
    assert {str(a) for a in trusted.addresses} == {"127.0.0.1"}
    assert [str(n) for n in trusted.networks] == ["10.0.0.0/8", "fd00::/8"]
    assert trusted.literals == {"/tmp/a.sock", "_proxy"}
    assert not trusted.always_trust
    assert "10.1.2.3" in trusted
    assert "_proxy" in trusted
    assert "11.0.0.1" not in trusted
    assert 42 not in trusted
    assert None not in trusted


def test_trust_cache_is_bounded() -> None:
    trusted = TrustedHosts("10.0.0.0/8")
    for i in range(3000):
        assert f"10.{i // 256 % 256}.{i % 256}.1" in trusted
    assert len(trusted._cache) <= 1024
    assert trusted.host_info("10.0.0.1") == (True, True)
    assert trusted.host_info("10.0.0.1") == (True, True)  # served from the cache
    long_name = "x" * 100
    assert trusted.host_info(long_name) == (False, False)
    assert long_name not in trusted._cache


# -- scope types -----------------------------------------------------------------


def test_lifespan_passes_through_untouched() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        pass

    scope = {"type": "lifespan"}  # no headers, no client: must not be looked at
    asyncio.run(ProxyHeadersMiddleware(app, "*")(scope, receive, send))
    assert seen == [{"type": "lifespan"}]


def test_untrusted_peer_is_left_alone() -> None:
    headers = [xff("1.2.3.4"), (b"x-forwarded-proto", b"https"), fwd("for=5.6.7.8;proto=https")]
    scope = run("10.0.0.1", headers, client=("203.0.113.1", 555))
    assert scope["client"] == ("203.0.113.1", 555)
    assert scope["scheme"] == "http"


def test_no_proxy_headers_changes_nothing() -> None:
    scope = run("*", [(b"host", b"example.com"), (b"accept", b"*/*")])
    assert scope["client"] == PEER
    assert scope["server"] == SERVER
    assert scope["scheme"] == "http"
    assert scope["headers"] == [(b"host", b"example.com"), (b"accept", b"*/*")]


# -- X-Forwarded-For -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("198.51.100.7", ("198.51.100.7", 0)),
        ("198.51.100.7:4711", ("198.51.100.7", 4711)),
        ("[2001:db8::1]:4711", ("2001:db8::1", 4711)),
        ("[2001:db8::1]", ("2001:db8::1", 0)),
        ("2001:db8::1", ("2001:db8::1", 0)),
        ("unknown", ("unknown", 0)),
        ("_hidden", ("_hidden", 0)),
        ("  198.51.100.7  ", ("198.51.100.7", 0)),
        ("203.0.113.5, 198.51.100.7", ("198.51.100.7", 0)),  # the rightmost untrusted
        ("203.0.113.5, 198.51.100.7, 127.0.0.1", ("198.51.100.7", 0)),  # skip trusted
        ("127.0.0.1, 127.0.0.1", ("127.0.0.1", 0)),  # all trusted: the leftmost
    ],
)
def test_x_forwarded_for(value: str, expected: tuple[str, int]) -> None:
    assert run("127.0.0.1", [xff(value)])["client"] == expected


def test_x_forwarded_for_walks_networks() -> None:
    value = "198.51.100.7, 10.1.1.1, 192.168.0.3:80, [fd00::5]:443"
    scope = run(["127.0.0.1", "10.0.0.0/8", "192.168.0.0/16", "fd00::/8"], [xff(value)])
    assert scope["client"] == ("198.51.100.7", 0)


def test_x_forwarded_for_multiple_header_lines() -> None:
    scope = run("127.0.0.1, 10.0.0.1", [xff("203.0.113.5, 198.51.100.7"), xff("10.0.0.1")])
    assert scope["client"] == ("198.51.100.7", 0)


def test_x_forwarded_for_trust_all_takes_leftmost() -> None:
    scope = run("*", [xff("198.51.100.7:1000, 10.0.0.1, 10.0.0.2")])
    assert scope["client"] == ("198.51.100.7", 1000)


def test_x_forwarded_for_websocket() -> None:
    scope = run("127.0.0.1", [xff("198.51.100.7")], kind="websocket")
    assert scope["client"] == ("198.51.100.7", 0)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "198.51.100.7,",  # empty rightmost item
        "1.2.3.4:abc",
        "1.2.3.4:99999",
        "1.2.3.4:",
        ":80",
        "[2001:db8::1",
        "[]:80",
        "[2001:db8::1]x",
        "[2001:db8::1]:",
        "[2001:db8::1]:port",
        "bad value",
        "1.2.3.4\t5",
        "caf\xe9",
        "<script>",
        "198.51.100.7, 1.2.3.4:bad, 127.0.0.1",  # a bad hop stops the walk
    ],
)
def test_x_forwarded_for_malformed_is_ignored(value: str) -> None:
    assert run("127.0.0.1", [xff(value)])["client"] == PEER


# -- X-Forwarded-Proto / X-Forwarded-Port --------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("http", "https", "https"),
        ("http", "http", "http"),
        ("http", "HTTPS", "https"),
        ("http", " https ", "https"),
        ("http", "wss", "https"),
        ("http", "ws", "http"),
        ("websocket", "https", "wss"),
        ("websocket", "http", "ws"),
        ("websocket", "wss", "wss"),
        ("websocket", "ws", "ws"),
        ("http", "ftp", "http"),
        ("http", "", "http"),
        ("http", "https;", "http"),
        ("websocket", "gopher", "ws"),
    ],
)
def test_x_forwarded_proto(kind: str, value: str, expected: str) -> None:
    scope = run("127.0.0.1", [(b"x-forwarded-proto", value.encode())], kind=kind)
    assert scope["scheme"] == expected


@pytest.mark.parametrize(
    ("xff_value", "proto_values", "expected"),
    [
        # One proto value applies whatever the chain.
        ("198.51.100.7, 10.0.0.1", ["https"], "https"),
        # Each proxy appended to both lists: the client hop's own value.
        ("198.51.100.7, 10.0.0.1", ["https, http"], "https"),
        ("198.51.100.7, 10.0.0.1", ["https", "http"], "https"),
        ("10.0.0.1, 10.0.0.2", ["https, http"], "https"),  # all trusted: leftmost hop
        # Counts disagree: only the rightmost (written by our peer) is safe.
        ("198.51.100.7", ["http, https"], "https"),
        ("198.51.100.7, 10.0.0.1, 10.0.0.2", ["https, http"], "http"),
        # No usable X-Forwarded-For: the rightmost value.
        (None, ["http, https"], "https"),
        ("bad value, 10.0.0.1", ["http, https"], "https"),
    ],
)
def test_x_forwarded_proto_list_pick(xff_value: str | None, proto_values: list[str], expected: str) -> None:
    headers = [(b"x-forwarded-proto", v.encode()) for v in proto_values]
    if xff_value is not None:
        headers.append(xff(xff_value))
    assert run("127.0.0.1, 10.0.0.0/8", headers)["scheme"] == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["443"], ("10.9.9.9", 443)),
        ([" 8443 "], ("10.9.9.9", 8443)),
        (["65535"], ("10.9.9.9", 65535)),
        (["443, 80"], ("10.9.9.9", 80)),
        (["0"], SERVER),
        (["65536"], SERVER),
        (["abc"], SERVER),
        (["-1"], SERVER),
        (["+443"], SERVER),
        ([""], SERVER),
        (["4 43"], SERVER),
    ],
)
def test_x_forwarded_port(values: list[str], expected: tuple[str, int]) -> None:
    headers = [(b"x-forwarded-port", v.encode()) for v in values]
    assert run("127.0.0.1", headers)["server"] == expected


def test_x_forwarded_port_without_server_address() -> None:
    scope = run("*", [(b"x-forwarded-port", b"443")], server=None)
    assert scope["server"] is None


def test_x_forwarded_all_together() -> None:
    headers = [
        xff("198.51.100.7:6000, 10.0.0.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-port", b"443"),
    ]
    scope = run("127.0.0.1, 10.0.0.1", headers)
    assert scope["client"] == ("198.51.100.7", 6000)
    assert scope["scheme"] == "https"
    assert scope["server"] == ("10.9.9.9", 443)


# -- Forwarded (RFC 7239) ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("for=198.51.100.7", ("198.51.100.7", 0)),
        ('for="198.51.100.7"', ("198.51.100.7", 0)),
        ('for="198.51.100.7:4711"', ("198.51.100.7", 4711)),
        ('for="[2001:db8:cafe::17]:4711"', ("2001:db8:cafe::17", 4711)),
        ('for="[2001:db8:cafe::17]"', ("2001:db8:cafe::17", 0)),
        ("for=_hidden", ("_hidden", 0)),
        ("for=_SEVKISEK", ("_SEVKISEK", 0)),
        ('for="_hidden:_port"', ("_hidden", 0)),
        ('for="198.51.100.7:_p-1"', ("198.51.100.7", 0)),
        ('for="_hidden:8080"', ("_hidden", 8080)),
        ("for=unknown", None),
        ("for=UNKNOWN", None),
        ('for="unknown:80"', None),
        ("FOR=198.51.100.7", ("198.51.100.7", 0)),  # parameter names are case-insensitive
        ("for=198.51.100.7;by=203.0.113.60", ("198.51.100.7", 0)),
        ("by=203.0.113.60;for=198.51.100.7", ("198.51.100.7", 0)),
        ("for=198.51.100.7; proto=https", ("198.51.100.7", 0)),  # OWS around ';' tolerated
        ("for=198.51.100.7;;", ("198.51.100.7", 0)),  # empty pairs are allowed
        (";for=198.51.100.7", ("198.51.100.7", 0)),
        ('for=198.51.100.7;ext="x;y,z"', ("198.51.100.7", 0)),  # extensions ignored
        ("for=203.0.113.5, for=198.51.100.7", ("198.51.100.7", 0)),  # rightmost untrusted
        ("for=198.51.100.7, for=127.0.0.1", ("198.51.100.7", 0)),  # trusted hop skipped
        ("for=127.0.0.1, for=127.0.0.1", ("127.0.0.1", 0)),  # all trusted: leftmost
        ("for=198.51.100.7, , for=127.0.0.1,", ("198.51.100.7", 0)),  # empty elements
        ("for=198.51.100.7, for=unknown", None),  # unknown is never trusted
    ],
)
def test_forwarded_for(value: str, expected: tuple[str, int] | None) -> None:
    assert run("127.0.0.1", [fwd(value)])["client"] == expected


def test_forwarded_for_obfuscated_trusted_literal() -> None:
    scope = run("127.0.0.1, _proxy1", [fwd("for=198.51.100.7, for=_proxy1")])
    assert scope["client"] == ("198.51.100.7", 0)


def test_forwarded_trust_all_walks_past_unknown() -> None:
    scope = run("*", [fwd("for=198.51.100.7;proto=https, for=unknown, for=10.0.0.1")])
    assert scope["client"] == ("198.51.100.7", 0)
    assert scope["scheme"] == "https"


def test_forwarded_multiple_headers() -> None:
    headers = [fwd("for=203.0.113.5"), fwd('for="[2001:db8::1]:99";proto=https'), fwd("for=10.0.0.1")]
    scope = run("127.0.0.1, 10.0.0.0/8", headers)
    assert scope["client"] == ("2001:db8::1", 99)
    assert scope["scheme"] == "https"


def test_forwarded_proto_and_host_come_from_the_chosen_element() -> None:
    value = 'for=203.0.113.5;proto=http;host=evil.test, for=198.51.100.7;proto=https;host="example.com:8443"'
    scope = run("127.0.0.1", [fwd(value), (b"host", b"internal:8000")])
    assert scope["client"] == ("198.51.100.7", 0)
    assert scope["scheme"] == "https"
    assert header(scope, b"host") == [b"example.com:8443"]


@pytest.mark.parametrize(
    ("kind", "proto", "expected"),
    [
        ("http", "https", "https"),
        ("http", "HTTPS", "https"),
        ("http", "wss", "https"),
        ("websocket", "https", "wss"),
        ("websocket", "http", "ws"),
        ("http", "ftp", "http"),
        ("websocket", '"ftp"', "ws"),
    ],
)
def test_forwarded_proto(kind: str, proto: str, expected: str) -> None:
    scope = run("127.0.0.1", [fwd(f"for=198.51.100.7;proto={proto}")], kind=kind)
    assert scope["scheme"] == expected


def test_forwarded_element_without_for_stops_the_walk() -> None:
    # The hop cannot be identified, so nothing left of it is believed; its own
    # proto and host still describe the request.
    scope = run("127.0.0.1", [fwd("for=203.0.113.5;proto=http, proto=https;host=example.com")])
    assert scope["client"] == PEER
    assert scope["scheme"] == "https"
    assert header(scope, b"host") == [b"example.com"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", [b"example.com"]),
        ('"example.com:8443"', [b"example.com:8443"]),
        ('"[2001:db8::1]:8443"', [b"[2001:db8::1]:8443"]),
        ("EXAMPLE.com", [b"EXAMPLE.com"]),
        ('"bad host"', [b"original"]),
        ('"a/b"', [b"original"]),
        ('"example.com:port"', [b"original"]),
        ('""', [b"original"]),
    ],
)
def test_forwarded_host(host: str, expected: list[bytes]) -> None:
    scope = run("127.0.0.1", [(b"host", b"original"), fwd(f"for=198.51.100.7;host={host}")])
    assert header(scope, b"host") == expected


def test_forwarded_host_replaces_every_host_header_keeping_order() -> None:
    headers = [(b"a", b"1"), (b"host", b"one"), (b"b", b"2"), (b"host", b"two"), fwd("host=example.com")]
    scope = run("127.0.0.1", headers)
    assert [n for n, _ in scope["headers"]] == [b"a", b"host", b"b", b"forwarded"]
    assert header(scope, b"host") == [b"example.com"]


def test_forwarded_host_added_when_missing() -> None:
    scope = run("127.0.0.1", [fwd("host=example.com")])
    assert header(scope, b"host") == [b"example.com"]


def test_x_forwarded_takes_precedence_over_forwarded() -> None:
    # A client-sent Forwarded passed through by an X-Forwarded-For proxy
    # must not choose the client address.
    headers = [
        xff("203.0.113.5"),
        (b"x-forwarded-proto", b"https"),
        fwd("for=198.51.100.7;proto=http"),
    ]
    scope = run("127.0.0.1", headers)
    assert scope["client"] == ("203.0.113.5", 0)
    assert scope["scheme"] == "https"


def test_forwarded_used_without_x_forwarded() -> None:
    scope = run("127.0.0.1", [fwd("for=198.51.100.7;proto=https")])
    assert scope["client"] == ("198.51.100.7", 0)
    assert scope["scheme"] == "https"
    assert scope["server"] == SERVER


@pytest.mark.parametrize("value", ["", " ", ",", " , ,", ";"])
def test_empty_forwarded_falls_back_to_x_forwarded(value: str) -> None:
    scope = run("127.0.0.1", [fwd(value), xff("203.0.113.5"), (b"x-forwarded-proto", b"https")])
    assert scope["client"] == ("203.0.113.5", 0)
    assert scope["scheme"] == "https"


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "for",
        "for=",
        "for =198.51.100.7",
        "for= 198.51.100.7",
        "for=198.51.100.7 proto=https",
        "for=[2001:db8::1]",  # IPv6 must be quoted
        'for="198.51.100.7',  # unterminated quote
        'for="198.51.100.7"x',
        "for=198.51.100.7;for=203.0.113.5",  # repeated parameter
        "for=198.51.100.7;FOR=203.0.113.5",
        'for="198.51.100.7:99999"',
        'for="198.51.100.7:"',
        'for="198.51.100.7:abc"',
        'for="198.51.100.7.1"',
        'for="999.1.1.1"',
        "for=example.com",  # not a node name
        'for="[2001:db8::1"',
        'for="[2001:db8::1]x"',
        'for="[198.51.100.7]"',  # IPv4 in brackets
        'for="[_hidden]"',
        'for="[]"',
        'for="2001:db8::1"',  # IPv6 without brackets
        "for=_",
        'for="_a b"',
        "for=198.51.100.7\x00",
        "for=\xe9",
        'for="\x01"',
        # A malformed hop anywhere right of the client stops the walk.
        "for=198.51.100.7, garbage",
        "for=198.51.100.7, for=127.0.0.1;for=127.0.0.1",
        "for=198.51.100.7, for=not-an-ip",
    ],
)
def test_forwarded_malformed_is_ignored(value: str) -> None:
    headers = [fwd(value), (b"host", b"h")]
    scope = run("127.0.0.1", headers)
    assert scope["client"] == PEER
    assert scope["scheme"] == "http"
    assert header(scope, b"host") == [b"h"]


def test_forwarded_malformed_left_of_the_client_does_not_matter() -> None:
    scope = run("127.0.0.1", [fwd('garbage, for="[2001:db8::1"; for=x, for=198.51.100.7;proto=https')])
    assert scope["client"] == ("198.51.100.7", 0)
    assert scope["scheme"] == "https"


def test_forwarded_quote_cannot_swallow_the_proxy_element() -> None:
    # The client sent `for="` and the proxy appended its own element to the
    # same line: no parse may let the client's text replace the proxy's.
    for client_part in ['for="', 'for="x, for=1.1.1.1', 'for="x\\", for=1.1.1.1']:
        value = client_part + ', for="198.51.100.7:1234"'
        scope = run("127.0.0.1", [fwd(value)])
        assert scope["client"] in (PEER, ("198.51.100.7", 1234)), value
    scope = run("127.0.0.1", [fwd('for="x, for=1.1.1.1, for=198.51.100.7')])
    assert scope["client"] == ("198.51.100.7", 0)


def test_forwarded_lines_are_parsed_separately() -> None:
    # An unterminated quote on the client's line cannot reach the proxy's line.
    scope = run("127.0.0.1", [fwd('for="1.1.1.1'), fwd("for=198.51.100.7")])
    assert scope["client"] == ("198.51.100.7", 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("for=a", [{"for": "a"}]),
        ('for="a\\"b"', [{"for": 'a"b'}]),
        ('for="a\\\\b"', [{"for": "a\\b"}]),
        ('for="a,b;c=d"', [{"for": "a,b;c=d"}]),
        ('for="tab\there"', [{"for": "tab\there"}]),
        ("for=a;By=b;PROTO=https", [{"for": "a", "by": "b", "proto": "https"}]),
        ("for=a , for=b", [{"for": "a"}, {"for": "b"}]),
        ("for=a;for=b, for=c", [None, {"for": "c"}]),
        ("x, for=c", [None, {"for": "c"}]),
        ("for=a\tproto=b", [None]),
        ("", []),
        (", ,", []),
        ("for=a,", [{"for": "a"}]),
        ('for="\\', [None]),
    ],
)
def test_parse_forwarded(value: str, expected: list[dict[str, str] | None]) -> None:
    assert parse_forwarded(value) == expected
