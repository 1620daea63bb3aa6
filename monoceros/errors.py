"""Errors that carry their reply.

Every error raised by monoceros derives from :class:`MonocerosError`.  Errors that
happen while speaking a protocol carry the reply the peer should get
(``status_hint`` for HTTP, ``close_code`` for WebSocket); exactly one place per
protocol (``protocols.http1.HTTP11Protocol.fail``) turns them into bytes on the
wire.  Library code raises; only :mod:`monoceros.cli` exits.
"""

from __future__ import annotations


class MonocerosError(Exception):
    """Base class of every error monoceros raises."""


class ConfigError(MonocerosError):
    """A setting is invalid; the message is one line meant for the user."""


class StartupError(MonocerosError):
    """The server could not start (bind failed, lifespan startup failed...)."""


class ProtocolError(MonocerosError):
    """The peer or the application broke the protocol.

    Args:
        msg: one line describing what went wrong (logged at debug level).
        status_hint: the HTTP status the peer should get when the error
            happens before a response started (400 unless said otherwise).
        headers: headers that reply needs (e.g. ``Sec-WebSocket-Version``
            with a 426), as lower-case ``(name, value)`` byte pairs.
    """

    def __init__(
        self, msg: str, status_hint: int = 400, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(msg)
        self.status_hint = status_hint
        self.headers = headers or []


class RemoteProtocolError(ProtocolError):
    """The client sent something that breaks HTTP; it gets ``status_hint``."""


class LocalProtocolError(ProtocolError):
    """The application asked for something that breaks HTTP (bad header, body
    longer than its Content-Length...); the client gets a 500 or a close."""

    def __init__(self, msg: str, status_hint: int = 500) -> None:
        super().__init__(msg, status_hint)


class ASGIMessageError(LocalProtocolError, RuntimeError):
    """The application sent an ASGI message that is invalid at this point.

    It is raised from the application's own ``send()`` call, so the
    application (and its middleware) sees it as an exception.
    """


class BroadcastError(MonocerosError):
    """A group operation of :mod:`monoceros.broadcast` failed."""


class BroadcastUnavailable(BroadcastError, ConnectionError):
    """The broadcast backend (Redis) cannot be reached: the group message
    was delivered to no one.  The server reconnects by itself; sending again
    later may succeed."""


class PartialDelivery(BroadcastError):
    """A group message reached fewer server instances than hold members of
    the group (one of them lost its Redis connection and has not yet come
    back): some members did not get it.

    Attributes:
        delivered: the instances that received it.
        expected: the instances known to hold members of the group.
    """

    def __init__(self, msg: str, delivered: int, expected: int) -> None:
        super().__init__(msg)
        self.delivered = delivered
        self.expected = expected


class ClientDisconnected(OSError):
    """``send()`` was called after the client went away (ASGI spec 2.4).

    It is an :class:`OSError` so that applications written for the spec's
    "raise an IOError" rule catch it.
    """
