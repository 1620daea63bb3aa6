"""Take the client address, scheme and host from headers set by trusted proxies.

When a reverse proxy fronts the server, the TCP peer is the proxy, not the
client.  A proxy reports what it saw in ``X-Forwarded-For`` /
``X-Forwarded-Proto`` / ``X-Forwarded-Port`` or in the standard RFC 7239
``Forwarded`` header.  Those headers are only believed when the direct peer is
in the trusted list; otherwise any client could claim any address.

Precedence: the two sources are never mixed (that could pair the client
address written by one proxy with the scheme written by another).  When any
``X-Forwarded-*`` header is present, only those are used and ``Forwarded`` is
ignored; ``Forwarded`` is used only when no ``X-Forwarded-*`` header is.  The
common proxies (nginx, HAProxy, Traefik, cloud load balancers) write
``X-Forwarded-For`` and pass a client-sent ``Forwarded`` through untouched, so
letting ``Forwarded`` win would let any client choose its own address behind
them.  A proxy that writes only ``Forwarded`` must drop client-sent
``X-Forwarded-*`` headers, which is what such proxies do.

Malformed values never fail the request: a hop that cannot be parsed stops the
walk and nothing is taken from that header, the scope keeps what the server
put there (the proxy's own address).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from monoceros.errors import ConfigError
from monoceros.middleware._asgi import ASGIApp, Receive, Scope, Send

__all__ = ["ProxyHeadersMiddleware", "TrustedHosts"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The verdict cache is cleared when full rather than LRU-evicted: cheaper, and
# the working set (the proxies in front of us plus recent clients) refills it
# at once.  Long keys are not cached so hostile headers cannot pin memory.
_CACHE_MAX = 1024
_CACHE_KEY_MAX = 64

_FORWARDED = b"forwarded"
_X_FORWARDED_FOR = b"x-forwarded-for"
_X_FORWARDED_PROTO = b"x-forwarded-proto"
_X_FORWARDED_PORT = b"x-forwarded-port"
# The fields rewrite() reads (the server skips it for a request with none).
PROXY_HEADERS = frozenset((_FORWARDED, _X_FORWARDED_FOR, _X_FORWARDED_PROTO, _X_FORWARDED_PORT))

_WWW_SCOPES = frozenset(("http", "websocket"))

# Forwarded proto -> scope["scheme"], per scope type: an http scope never gets
# a ws scheme and vice versa, whichever spelling the proxy used.
_SCHEMES: dict[str, dict[str, str]] = {
    "http": {"http": "http", "https": "https", "ws": "http", "wss": "https"},
    "websocket": {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"},
}

# RFC 7239 section 4: forwarded-pair = token "=" value, value = token / quoted-string.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QDTEXT = r"[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]"
_QUOTED_PAIR = r"\\[\t\x20-\x7e\x80-\xff]"
_PAIR_RE = re.compile(rf'[ \t]*({_TOKEN})=(?:({_TOKEN})|"((?:{_QDTEXT}|{_QUOTED_PAIR})*)")[ \t]*')
_UNESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
# RFC 7239 section 6.3: obfnode / obfport.
_OBFUSCATED_RE = re.compile(r"_[A-Za-z0-9._-]+")
_PORT_RE = re.compile(r"[0-9]{1,5}")
# Host header: bracketed IPv6 literal or a registered name / IPv4, optional port.
_HOST_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{1,5})?")
# X-Forwarded-For has no grammar; accept what addresses and identifiers use.
_XFF_NODE_RE = re.compile(r"[0-9A-Za-z._:%\[\]-]+")

#: One parsed ``Forwarded`` element (lower-cased parameter -> value), or None
#: when the element is malformed.
_Element = dict[str, str] | None


class TrustedHosts:
    """The set of peers whose proxy headers are believed.

    Parsed once; membership tests are answered from a small cache so the
    per-request cost is a dict lookup.

    Args:
        trusted_hosts: a comma-separated string or a list of entries.  Each
            entry is an IPv4/IPv6 address, a CIDR network (``10.0.0.0/8``,
            ``fd00::/8``), ``*`` (trust everyone) or any other literal string,
            matched verbatim (e.g. a unix socket path).

    Raises:
        ConfigError: an entry is an IP address with an invalid network suffix
            (``10.0.0.1/8`` has host bits set, ``10.0.0.0/33``).
    """

    def __init__(self, trusted_hosts: str | Iterable[str]) -> None:
        self.always_trust = False
        self.addresses: set[_IPAddress] = set()
        self.networks: list[_IPNetwork] = []
        self.literals: set[str] = set()
        self._cache: dict[str, tuple[bool, bool]] = {}
        items = [trusted_hosts] if isinstance(trusted_hosts, str) else trusted_hosts
        for item in items:
            for raw in item.split(","):
                entry = raw.strip()
                if entry == "*":
                    self.always_trust = True
                elif entry:
                    self._add(entry)

    def _add(self, entry: str) -> None:
        address, slash, _ = entry.partition("/")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            # Not an address: a literal such as a unix socket path.
            self.literals.add(entry)
            return
        if not slash:
            self.addresses.add(ip)
            return
        try:
            network = ipaddress.ip_network(entry)
        except ValueError as exc:
            # It clearly meant to be a network; silently turning it into a
            # literal that never matches would hide the mistake.
            raise ConfigError(f"invalid trusted network {entry!r}: {exc}") from None
        self.networks.append(network)

    def host_info(self, host: str) -> tuple[bool, bool]:
        """Return ``(is_ip_address, trusted)`` for a host string."""
        info = self._cache.get(host)
        if info is None:
            info = self._compute(host)
            if len(host) <= _CACHE_KEY_MAX:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[host] = info
        return info

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and self.host_info(host)[1]

    def _compute(self, host: str) -> tuple[bool, bool]:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False, self.always_trust or host in self.literals
        return True, self.always_trust or self._ip_trusted(ip)

    def _ip_trusted(self, ip: _IPAddress) -> bool:
        if ip in self.addresses or any(ip in network for network in self.networks):
            return True
        # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; a user
        # who trusted a.b.c.d means that peer too.
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return mapped is not None and self._ip_trusted(mapped)

    def trusts_peer(self, scope: Scope) -> bool:
        """Whether the direct peer of ``scope`` may set proxy headers.

        A unix-socket peer (``scope["client"]`` is None, or ``scope["server"]``
        is ``(path, None)`` or ``(path, 0)``) has no address: it is trusted
        only through ``*`` or a literal equal to the client name or the socket
        path.
        """
        if self.always_trust:
            return True
        client = scope.get("client")
        server = scope.get("server")
        unix = not client or not client[0] or (server is not None and not server[1])
        if client is not None and not unix:
            return self.host_info(client[0])[1]
        if client is not None and client[0] in self.literals:
            return True
        return server is not None and server[0] in self.literals


def _parse_port(value: str) -> int | None:
    """Parse a decimal port 0-65535; None when malformed."""
    if _PORT_RE.fullmatch(value) is None:
        return None
    port = int(value)
    return port if port <= 65535 else None


def _split_list(values: list[bytes]) -> list[str]:
    """Split comma-separated header lines into stripped items."""
    joined = ",".join(value.decode("latin-1") for value in values)
    return [item.strip() for item in joined.split(",")]


def _pick(values: list[str], index: int | None, hops: int | None) -> str:
    """Choose the X-Forwarded-Proto/-Port item describing the client's hop.

    A single value is the common case.  When every proxy appended to both
    lists, the item at the chosen X-Forwarded-For index was written by the
    same proxy.  Otherwise the rightmost item, written by the trusted peer
    itself, is the only one that cannot have come from the client.
    """
    if len(values) == 1:
        return values[0]
    if index is not None and len(values) == hops:
        return values[index]
    return values[-1]


def _parse_xff_node(entry: str) -> tuple[str, int] | None:
    """Split an X-Forwarded-For item into host and port (0 when absent)."""
    if _XFF_NODE_RE.fullmatch(entry) is None:
        return None
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            return None
        host, rest = entry[1:end], entry[end + 1 :]
        if not host:
            return None
        if not rest:
            return host, 0
        port = _parse_port(rest[1:]) if rest[0] == ":" else None
        return None if port is None else (host, port)
    if entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
        port = _parse_port(port_text)
        return None if port is None or not host else (host, port)
    # A bare IPv6 address (several colons) or a name: no port.
    return entry, 0


def _parse_element(value: str, pos: int) -> tuple[dict[str, str] | None, int]:
    """Parse the element starting at ``pos``; return it and the position of
    the comma (or end) that ends it.  None means malformed, and then the
    position is where the error was found."""
    element: dict[str, str] = {}
    end = len(value)
    while True:
        while pos < end and value[pos] in " \t":
            pos += 1
        match = _PAIR_RE.match(value, pos)
        if match is not None:
            name = match[1].lower()
            if name in element:
                return None, pos
            quoted = match[3]
            if match[2] is not None:
                element[name] = match[2]
            elif "\\" in quoted:
                element[name] = _UNESCAPE_RE.sub(r"\1", quoted)
            else:
                element[name] = quoted
            pos = match.end()
        if pos < end and value[pos] == ";":
            pos += 1
        elif pos == end or value[pos] == ",":
            return element, pos
        else:
            return None, pos


def parse_forwarded(value: str) -> list[_Element]:
    """Parse one ``Forwarded`` header line into its elements.

    Each element is a dict of lower-cased parameter names to (unquoted)
    values, or None when it is malformed (bad syntax or a repeated
    parameter).  Empty list elements are dropped, as RFC 9110 section 5.6.1
    requires.  After an error, parsing resumes after the next comma, so that a
    proxy's element appended after a client's garbage is still found; each
    line is parsed alone so a quote cannot swallow the next line.
    """
    elements: list[_Element] = []
    pos, end = 0, len(value)
    while True:
        element, pos = _parse_element(value, pos)
        if element is None:
            comma = value.find(",", pos)
            pos = end if comma < 0 else comma
            elements.append(None)
        elif element:
            elements.append(element)
        if pos >= end:
            return elements
        pos += 1


class ProxyHeadersMiddleware:
    """Rewrite ``client``, ``scheme``, ``server`` and the Host header from
    proxy headers, for requests whose direct peer is trusted.

    Applies to ``http`` and ``websocket`` scopes; ``lifespan`` passes through.
    The scope is updated in place, as the server builds a fresh scope for every
    request and reads it back afterwards (the access log shows the real
    client).

    ``X-Forwarded-For``: items are walked from the right, skipping trusted
    proxies; the first untrusted item is the client (``host``, ``host:port``,
    ``[v6]:port``; an unknown port becomes 0).  If every item is trusted the
    leftmost one is used.  ``X-Forwarded-Proto`` (http/https/ws/wss) sets the
    scheme and ``X-Forwarded-Port`` the port of ``scope["server"]``.

    ``Forwarded`` (RFC 7239): elements are walked the same way on their
    ``for=`` parameter; ``for``, ``proto`` and ``host`` of the chosen element
    set the client, the scheme and the Host header.  ``for=unknown`` sets the
    client to None; an obfuscated identifier (``_hidden``) becomes the client
    host with port 0 (a trusted literal can name one).  An element without
    ``for`` stops the walk, its hop being unidentifiable.

    Args:
        app: the ASGI application to call.
        trusted_hosts: see :class:`TrustedHosts`.  Default: only 127.0.0.1.
    """

    def __init__(self, app: ASGIApp, trusted_hosts: list[str] | str = "127.0.0.1") -> None:
        self.app = app
        self.trusted_hosts = TrustedHosts(trusted_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the scope if the peer is trusted, then call the app."""
        if scope["type"] in _WWW_SCOPES and self.trusted_hosts.trusts_peer(scope):
            self.rewrite(scope)
        await self.app(scope, receive, send)

    def rewrite(self, scope: Scope) -> None:
        """Apply the proxy headers of ``scope`` (whose peer is trusted).

        The server calls this directly (no extra coroutine per request), having
        decided once per connection whether the peer is trusted.
        """
        found: dict[bytes, list[bytes]] | None = None
        for name, value in scope["headers"]:
            if name in PROXY_HEADERS:
                if found is None:
                    found = {}
                found.setdefault(name, []).append(value)
        if found is None:
            return
        forwarded = found.get(_FORWARDED)
        if forwarded and len(found) == 1:
            elements: list[_Element] = []
            for line in forwarded:
                elements.extend(parse_forwarded(line.decode("latin-1")))
            if elements:
                self._apply_forwarded(scope, elements)
                return
        self._apply_x_forwarded(scope, found)

    def _apply_x_forwarded(self, scope: Scope, found: dict[bytes, list[bytes]]) -> None:
        index: int | None = None
        hops: int | None = None
        xff = found.get(_X_FORWARDED_FOR)
        if xff:
            items = _split_list(xff)
            hops = len(items)
            chosen = self._walk_xff(items)
            if chosen is not None:
                index, host, port = chosen
                scope["client"] = (host, port)
        proto = found.get(_X_FORWARDED_PROTO)
        if proto:
            value = _pick(_split_list(proto), index, hops).lower()
            scheme = _SCHEMES[scope["type"]].get(value)
            if scheme is not None:
                scope["scheme"] = scheme
        port_values = found.get(_X_FORWARDED_PORT)
        server = scope.get("server")
        if port_values and server is not None:
            server_port = _parse_port(_pick(_split_list(port_values), index, hops))
            if server_port:
                scope["server"] = (server[0], server_port)

    def _walk_xff(self, items: list[str]) -> tuple[int, str, int] | None:
        chosen: tuple[int, str, int] | None = None
        for index in range(len(items) - 1, -1, -1):
            node = _parse_xff_node(items[index])
            if node is None:
                return None
            chosen = (index, node[0], node[1])
            if node[0] not in self.trusted_hosts:
                break
        return chosen

    def _parse_for(self, value: str) -> tuple[str | None, int, bool] | None:
        """Parse a ``for=`` node into ``(host, port, trusted)``; None if malformed.

        ``host`` is None for ``unknown``.  The address check goes through the
        trust cache, which also tells whether the text is an IP address.
        """
        host: str | None
        if value.startswith("["):
            end = value.find("]")
            if end < 0:
                return None
            host, rest = value[1:end], value[end + 1 :]
            is_ip, trusted = self.trusted_hosts.host_info(host)
            if not is_ip or ":" not in host:
                return None
        else:
            host, colon, port_text = value.partition(":")
            rest = colon + port_text
            if host.lower() == "unknown":
                host, trusted = None, self.trusted_hosts.always_trust
            else:
                is_ip, trusted = self.trusted_hosts.host_info(host)
                if not is_ip and _OBFUSCATED_RE.fullmatch(host) is None:
                    return None
        if not rest:
            return host, 0, trusted
        port_text = rest[1:]
        if rest[0] != ":":
            return None
        if _OBFUSCATED_RE.fullmatch(port_text) is not None:
            return host, 0, trusted
        port = _parse_port(port_text)
        return None if port is None else (host, port, trusted)

    def _apply_forwarded(self, scope: Scope, elements: list[_Element]) -> None:
        chosen: dict[str, str] = {}
        client: tuple[str | None, int, bool] | None = None
        for element in reversed(elements):
            if element is None:
                return
            chosen = element
            value = element.get("for")
            if value is None:
                client = None
                break
            client = self._parse_for(value)
            if client is None:
                return
            if not client[2]:
                break
        if client is not None:
            host, port, _ = client
            scope["client"] = None if host is None else (host, port)
        proto = chosen.get("proto")
        if proto is not None:
            scheme = _SCHEMES[scope["type"]].get(proto.lower())
            if scheme is not None:
                scope["scheme"] = scheme
        host_header = chosen.get("host")
        if host_header is not None and _HOST_RE.fullmatch(host_header) is not None:
            scope["headers"] = _replace_host(scope["headers"], host_header.encode("latin-1"))


def _replace_host(headers: Iterable[tuple[bytes, bytes]], host: bytes) -> list[tuple[bytes, bytes]]:
    """Return ``headers`` with every Host header replaced by one ``host``."""
    result: list[tuple[bytes, bytes]] = []
    replaced = False
    for name, value in headers:
        if name != b"host":
            result.append((name, value))
        elif not replaced:
            result.append((b"host", host))
            replaced = True
    if not replaced:
        result.append((b"host", host))
    return result
