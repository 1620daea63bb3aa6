"""Running a configuration: one process, or a supervisor and its worker processes.

:func:`serve` is what :func:`monoceros.run` and the command line call.  With
one worker and no ``--reload`` the server runs in this process; otherwise
this process binds the listeners, becomes the supervisor
(:class:`~monoceros.supervisors.multiprocess.Multiprocess` or, with
``--reload``, :class:`~monoceros.supervisors.reload.ChangeReload`) and
spawns the workers that serve.
"""

from __future__ import annotations

import logging

from monoceros.config import Config, validate, worker_count
from monoceros.errors import ConfigError

logger = logging.getLogger("monoceros.error")


def serve(config: Config) -> None:
    """Serve ``config`` until stopped (a signal, ``--limit-max-requests``).

    Raises:
        ConfigError: a setting or the application is wrong.
        StartupError: a listener could not be bound, or the application (or
            a worker of it) could not start.
    """
    from monoceros.pidfile import pid_file

    validate(config)
    workers = worker_count(config)
    if not config.reload and workers == 1:
        from monoceros.server import Server

        if config.limit_max_rss:
            logger.warning("--limit-max-rss has no effect without --workers or --reload")
        with pid_file(config.pid_file):
            Server(config).run()
        return
    if not isinstance(config.app, str):
        flag = "--reload" if config.reload else f"--workers {workers}"
        raise ConfigError(f"{flag} needs the application as an import string, like 'main:app'")
    _supervise(config, workers)


def _supervise(config: Config, workers: int) -> None:
    from monoceros.listeners import bind_all
    from monoceros.loader import create_ssl_context, load_environment, resolve_binds
    from monoceros.pidfile import pid_file
    from monoceros.supervisors.multiprocess import Multiprocess
    from monoceros.supervisors.reload import ChangeReload

    load_environment(config)
    if config.is_ssl:
        create_ssl_context(config)  # a bad certificate: one line now, not from every worker
    supervisor: Multiprocess
    if config.reload:
        if workers > 1:
            logger.warning("--workers %d is ignored with --reload: one worker is reloaded", workers)
        supervisor = ChangeReload(config, [])
    else:
        supervisor = Multiprocess(config, [], workers)
    with pid_file(config.pid_file):
        bound = bind_all(resolve_binds(config), config.backlog)
        try:
            supervisor.sockets = bound.sockets
            supervisor.run()
        finally:
            bound.close()


__all__ = ["serve"]
