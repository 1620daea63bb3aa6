"""Small helpers shared by the protocols."""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from monoceros._types import Headers

if TYPE_CHECKING:
    from monoceros.context import ServerContext
    from monoceros.protocols.cycle import RequestCycle

# create_task(context=...) exists from Python 3.11 on.
_TASK_CONTEXT = sys.version_info >= (3, 11)


def _address(info: Any) -> Address | None:
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


Address = tuple[str, int | None]


def get_addresses(transport: asyncio.BaseTransport) -> tuple[Address | None, Address | None]:
    """ASGI ``server`` and ``client`` of a connection.

    For a unix socket the ASGI spec says ``server`` is ``(path, None)``; the
    client of a unix socket has no address (``None``).
    """
    # A TCP socket's name is a (host, port[, flow, scope]) tuple; a unix
    # socket's is its path (str, or bytes for an abstract one).  Asking for
    # the names is cheaper than for the socket object (one per connection).
    sockname = transport.get_extra_info("sockname")
    if isinstance(sockname, tuple):
        return (sockname[0], sockname[1]), _address(transport.get_extra_info("peername"))
    if isinstance(sockname, (str, bytes)):
        path = sockname.decode("latin-1") if isinstance(sockname, bytes) else sockname
        return ((path, None) if path else None), None
    return None, _address(transport.get_extra_info("peername"))


class Carrier(Protocol):
    """What a connection (HTTP/1.1 or HTTP/2) knows that every scope needs."""

    ctx: ServerContext
    server: Address | None
    client: Address | None
    scheme: str
    context: contextvars.Context
    extensions: dict[str, Any]


def http_scope(
    conn: Carrier, method: str, target: bytes, http_version: str, headers: Headers
) -> dict[str, Any]:
    """The ASGI ``http`` scope of a request whose target is origin-form (or ``*``)."""
    raw_path, _, query = target.partition(b"?")
    path = raw_path.decode("ascii")
    if "%" in path:
        path = unquote(path)
    ctx = conn.ctx
    root_path = ctx.root_path
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "server": conn.server,
        "client": conn.client,
        "scheme": conn.scheme,
        "method": method,
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
        "state": ctx.state.copy(),
        "extensions": conn.extensions,
    }


def start_app(conn: Carrier, cycle: RequestCycle) -> asyncio.Task[None]:
    """Run the app for an HTTP request (see :func:`start_task`)."""
    ctx = conn.ctx
    if ctx.access_log_needs_time:
        cycle.start_time = ctx.loop.time()
    return start_task(conn, cycle.run_asgi())


def start_task(conn: Carrier, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Count an app call and run it (``coro``: a cycle's ``run_asgi()``) in a
    copy of the connection's context, never the context of whichever task
    parsed the request.  (HTTP/1.1's request path has this inline.)"""
    ctx = conn.ctx
    ctx.active += 1
    ctx.requests += 1
    context = contextvars.Context() if ctx.reset_contextvars else conn.context.copy()
    if _TASK_CONTEXT:
        return ctx.loop.create_task(coro, context=context)
    return context.run(ctx.loop.create_task, coro)  # pragma: no cover - Python 3.10


# The ASGI extensions an http scope advertises (each connection gets its own
# copy, plus "tls" under TLS).
HTTP_EXTENSIONS: dict[str, dict[str, Any]] = {
    "http.response.trailers": {},
    "http.response.early_hint": {},
    "http.response.pathsend": {},
    "http.response.zerocopysend": {},
}

_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_CIPHER_IDS: dict[str, int] = {}
# RFC 4514 short names of the attributes Python's ssl module spells out.
_RDN_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def http_extensions(ssl_object: ssl.SSLObject | None, server_cert: str | None) -> dict[str, Any]:
    """``scope["extensions"]`` for a connection (ASGI TLS extension under TLS)."""
    extensions = HTTP_EXTENSIONS.copy()  # one per connection (a copy is cheapest)
    if ssl_object is not None:
        extensions["tls"] = tls_extension(ssl_object, server_cert)
    return extensions


def tls_extension(ssl_object: ssl.SSLObject, server_cert: str | None) -> dict[str, Any]:
    """The ASGI ``tls`` extension: version, cipher, client certificate, server certificate."""
    cipher = ssl_object.cipher()
    if not _CIPHER_IDS:
        # OpenSSL's id carries the IANA cipher suite number in its low 16 bits.
        _CIPHER_IDS.update({c["name"]: c["id"] & 0xFFFF for c in ssl_object.context.get_ciphers()})
    peer = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(peer)] if peer else []
    name = None
    if peer:
        subject = ssl_object.getpeercert().get("subject", ())  # type: ignore[union-attr]
        name = rfc4514(subject)
    return {
        "server_cert": server_cert,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,  # an unverifiable certificate fails the handshake
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": _CIPHER_IDS.get(cipher[0]) if cipher else None,
    }


def rfc4514(subject: Any) -> str:
    """A distinguished name from ``getpeercert()["subject"]``, as RFC 4514 writes it
    (most specific first)."""
    parts = []
    for rdn in reversed(subject):
        parts.append(
            "+".join(f"{_RDN_NAMES.get(key, key)}={_escape_dn(str(value))}" for key, value in rdn)
        )
    return ",".join(parts)


def _escape_dn(value: str) -> str:
    escaped = "".join("\\" + c if c in ',+"\\<>;' else c for c in value)
    if escaped[:1] in ("#", " "):
        escaped = "\\" + escaped
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def read_server_cert(path: str | None) -> str | None:
    """The first certificate (PEM) of the server's certificate file."""
    if not path:
        return None
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    start = text.find("-----BEGIN CERTIFICATE-----")
    end_marker = "-----END CERTIFICATE-----"
    end = text.find(end_marker, start)
    if start < 0 or end < 0:
        return None
    return text[start : end + len(end_marker)] + "\n"


__all__ = [
    "HTTP_EXTENSIONS",
    "Address",
    "Carrier",
    "get_addresses",
    "http_extensions",
    "http_scope",
    "read_server_cert",
    "rfc4514",
    "start_app",
    "start_task",
    "tls_extension",
]
