"""Listening sockets bound ahead of the server: by a supervisor, or by systemd.

With ``--workers`` or ``--reload`` the parent process binds every listener
once (:func:`bind_all`) and hands the sockets to each worker it spawns, so a
worker that dies, restarts or reloads never closes a port: connections that
arrive meanwhile wait in the kernel's accept queue instead of being refused.

systemd socket activation (``sd_listen_fds(3)``): the service manager binds
the sockets, passes them as file descriptors 3, 4, ... and says so in
``LISTEN_FDS`` (how many) and ``LISTEN_PID`` (for which process: variables
inherited by a child are not meant for it).  :func:`activation_binds` turns
them into ``fd://`` binds, which then replace the configured addresses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket

from monoceros.config import BindSpec
from monoceros.errors import ConfigError, StartupError

logger = logging.getLogger("monoceros.error")

# sd_listen_fds(3): the first passed descriptor.
SD_LISTEN_FDS_START = 3


def activation_binds() -> list[BindSpec]:
    """The sockets systemd passed to this process, as ``fd://`` binds ([] if none).

    The variables are removed once read, as ``sd_listen_fds(1)`` does, so
    that worker processes do not read them again.

    Raises:
        ConfigError: ``LISTEN_FDS`` is set for this process but is not a count.
    """
    pid_text = os.environ.get("LISTEN_PID", "")
    count_text = os.environ.get("LISTEN_FDS", "")
    if not count_text or not pid_text.strip().isdigit() or int(pid_text) != os.getpid():
        return []
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    try:
        count = int(count_text)
    except ValueError:
        raise ConfigError(f"LISTEN_FDS={count_text!r}: systemd passes a number of sockets") from None
    if count < 1:
        return []
    logger.info("Using %d socket(s) passed by systemd socket activation", count)
    return [BindSpec("fd", fd=fd) for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)]


class BoundSockets:
    """The sockets :func:`bind_all` bound; :meth:`close` also removes unix socket files."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.unix_paths: list[str] = []

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        for path in self.unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.sockets = []
        self.unix_paths = []


def bind_all(binds: list[BindSpec], backlog: int) -> BoundSockets:
    """Bind and listen on every address, for workers to inherit.

    Raises:
        StartupError: an address cannot be bound (in use, no permission, not
            a socket); what was bound already is closed again.
    """
    bound = BoundSockets()
    try:
        for bind in binds:
            try:
                bound.sockets.extend(_bind(bind, backlog, bound))
            except (OSError, StartupError) as exc:
                reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
                raise StartupError(f"cannot listen on {bind}: {reason}") from None
    except BaseException:
        bound.close()
        raise
    return bound


def _bind(bind: BindSpec, backlog: int, bound: BoundSockets) -> list[socket.socket]:
    from monoceros.server import _bind_unix

    if bind.kind == "unix":
        sock = _bind_unix(bind.path)
        bound.unix_paths.append(bind.path)
        sock.listen(backlog)
        return [sock]
    if bind.kind == "fd":
        try:
            sock = socket.socket(fileno=bind.fd)
        except OSError as exc:
            raise StartupError(f"file descriptor {bind.fd} is not a socket ({exc.strerror})") from None
        sock.listen(backlog)
        return [sock]
    # One socket per address the name resolves to, as asyncio's create_server does.
    infos = socket.getaddrinfo(
        bind.host or None, bind.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


__all__ = ["BoundSockets", "activation_binds", "bind_all"]
