"""The ``monoceros`` command, generated from :class:`~monoceros.config.Config`.

Every option comes from a field of ``Config`` (its default, help and click
type are declared there, once).  Only options the user actually gave (on the
command line or through a ``MONOCEROS_*`` variable) are passed on, so the
defaults live in one place.  This is the only module that exits the process.

Exit codes: 0 after a normal stop, 1 for a bad setting or application path
(:class:`~monoceros.errors.ConfigError`), 2 for a command line click cannot
parse, 3 when the server could not start (lifespan startup failed, a port is
taken: :class:`~monoceros.errors.StartupError`).  Every failure is one line on
stderr, never a traceback.
"""

from __future__ import annotations

import dataclasses
import platform
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from monoceros._version import __version__
from monoceros.config import STARTUP_FAILURE, Config, settings
from monoceros.errors import ConfigError, StartupError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

CONFIG_ERROR = 1


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"Running monoceros {__version__} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )
    ctx.exit()


def _option(f: dataclasses.Field[Any]) -> click.Option:
    """The click option of one ``Config`` field."""
    meta = f.metadata
    flag = meta.get("flag") or "--" + f.name.replace("_", "-")
    secondary = meta.get("secondary")
    default = f.default if f.default is not dataclasses.MISSING else None
    if meta.get("cli_default") is not None:
        default = meta["cli_default"]
    kwargs: dict[str, Any] = {"help": meta.get("help", "")}
    if secondary:
        # --access-log/--no-access-log: click makes it a flag.
        kwargs["default"] = default
    elif meta.get("is_flag"):
        kwargs.update(is_flag=True, default=bool(default))
    elif meta.get("multiple"):
        kwargs["multiple"] = True
    else:
        kwargs["default"] = default
        kwargs["show_default"] = default is not None
    if meta.get("type") is not None and not secondary and not meta.get("is_flag"):
        kwargs["type"] = meta["type"]
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    return click.Option([f"{flag}/{secondary}" if secondary else flag, f.name], **kwargs)


def _options() -> list[click.Option]:
    return [_option(f) for f in settings() if f.metadata.get("cli", True)]


def _given(ctx: click.Context, values: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave (command line or environment), as ``Config`` keywords."""
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        source = ctx.get_parameter_source(name)
        if source is None or source is click.core.ParameterSource.DEFAULT:
            continue
        if isinstance(value, tuple):
            value = list(value)
        kwargs[name] = value
    # uvicorn's command line looks for APP in the current directory ("" on
    # sys.path) even when started through a console script.
    kwargs.setdefault("app_dir", "")
    return kwargs


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def _run(ctx: click.Context, app: str, **values: Any) -> None:
    try:
        run(app, **_given(ctx, values))
    except ConfigError as exc:
        _fail(str(exc), CONFIG_ERROR)
    except StartupError as exc:
        _fail(str(exc), STARTUP_FAILURE)


def run(app: Any, **kwargs: Any) -> None:
    """Run the server until it is stopped: ``monoceros.run("main:app", port=5000)``.

    Keyword arguments are :class:`~monoceros.config.Config` settings; an
    unknown one raises :class:`TypeError`.

    Raises:
        ConfigError: a setting or the application path is wrong.
        StartupError: the server could not start (bind failed, lifespan failed).
    """
    from monoceros.supervisors import serve

    serve(Config(app, **kwargs))


def worker_process(config: Config, sockets: list[socket.socket], conn: Connection) -> None:
    """Entry point of a worker process a supervisor spawns (``--workers``, ``--reload``).

    Exits with 3 when the worker could not start (the supervisor then stops,
    or with ``--reload`` waits for the next change).
    """
    from monoceros.supervisors._process import serve_worker

    try:
        code = serve_worker(config, sockets, conn)
    except KeyboardInterrupt:  # Ctrl+C reached the worker before its server took the signals
        code = 0
    sys.exit(code)


class _Command(click.Command):
    """A click command whose usage errors are one line, like every other error."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:  # Ctrl+C before the server took over the signals
            _fail("Aborted.", 130)
        sys.exit(code if isinstance(code, int) else 0)


def _build() -> click.Command:
    params: list[click.Parameter] = [click.Argument(["app"], envvar="MONOCEROS_APP")]
    params += _options()
    params.append(
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_version,
            help="Display the monoceros version and exit.",
        )
    )
    return _Command(
        "monoceros",
        params=params,
        callback=click.pass_context(_run),
        context_settings={"auto_envvar_prefix": "MONOCEROS", "max_content_width": 100},
        help="Serve APP (module:attribute) over HTTP.",
    )


main = _build()

__all__ = ["main", "run"]
