"""gunicorn worker classes: ``gunicorn main:app -k monoceros.workers.MonocerosWorker``.

gunicorn's arbiter binds the sockets, forks the workers and supervises them;
each worker runs a monoceros :class:`~monoceros.server.Server` on the
sockets it inherited.  gunicorn's settings map to monoceros's: ``bind``
(the sockets), ``timeout`` (the worker tells the arbiter it is alive from
its event loop, so a blocked loop gets it restarted), ``graceful_timeout``
(``timeout_graceful_shutdown``), ``keepalive``, ``max_requests`` with its
jitter (``limit_max_requests``), ``backlog``, ``forwarded_allow_ips`` and
the TLS options.  Log lines go to gunicorn's error and access logs.

:class:`MonocerosH11Worker` uses the pure-Python h11 parser and asyncio's
loop (for PyPy and platforms without httptools/uvloop).
"""

from __future__ import annotations

import logging
import signal
from typing import Any, ClassVar

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from monoceros.config import Config
from monoceros.errors import ConfigError, StartupError
from monoceros.server import Server


class MonocerosWorker(Worker):  # type: ignore[misc]  # gunicorn is untyped
    """A gunicorn worker that serves an ASGI application with monoceros."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": "auto"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logs = (("monoceros.error", self.log.error_log), ("monoceros.access", self.log.access_log))
        for name, source in logs:
            target = logging.getLogger(name)
            target.handlers = source.handlers
            target.setLevel(source.level)
            target.propagate = False
        cfg = self.cfg
        settings: dict[str, Any] = {
            "log_config": None,
            "timeout_keep_alive": cfg.keepalive,
            "timeout_notify": self.timeout,
            "callback_notify": self.callback_notify,
            "timeout_graceful_shutdown": cfg.graceful_timeout,
            "forwarded_allow_ips": cfg.forwarded_allow_ips,
            "limit_max_requests": self.max_requests if cfg.max_requests > 0 else None,
            "backlog": cfg.backlog,
        }
        if cfg.is_ssl:
            ssl = cfg.ssl_options
            settings.update(
                ssl_keyfile=ssl.get("keyfile"),
                ssl_certfile=ssl.get("certfile"),
                ssl_keyfile_password=ssl.get("password"),
                ssl_version=ssl.get("ssl_version"),
                ssl_cert_reqs=ssl.get("cert_reqs"),
                ssl_ca_certs=ssl.get("ca_certs"),
                ssl_ciphers=ssl.get("ciphers"),
            )
        settings.update(self.CONFIG_KWARGS)
        self.settings = {k: v for k, v in settings.items() if v is not None or k == "log_config"}

    def init_signals(self) -> None:
        # The server takes SIGINT/SIGTERM itself (graceful, a second SIGINT
        # forces); gunicorn's own handlers would exit at once.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.siginterrupt(signal.SIGUSR1, False)

    def run(self) -> None:
        server = Server(Config(self.wsgi, **self.settings))

        def quit_now(sig: int, frame: Any) -> None:  # the arbiter's fast shutdown
            server.force_exit = True

        signal.signal(signal.SIGQUIT, quit_now)
        try:
            server.run(sockets=[getattr(s, "sock", s) for s in self.sockets])
        except (ConfigError, StartupError) as exc:
            self.log.error("%s", exc)
            # gunicorn stops the whole arbiter on this code instead of
            # respawning a worker that cannot start.
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR) from None

    async def callback_notify(self) -> None:
        self.notify()


class MonocerosH11Worker(MonocerosWorker):
    """:class:`MonocerosWorker` on h11 and asyncio's loop (no C extensions)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "asyncio", "http": "h11"}


__all__ = ["MonocerosH11Worker", "MonocerosWorker"]
