"""The ``monoceros`` command, generated from :class:`~monoceros.config.Config`.

Every option comes from a field of ``Config`` (its default, help and click
type are declared there, once).  Only options the user actually gave (on the
command line or through a ``MONOCEROS_*`` variable) are passed on, so the
defaults live in one place.  This is the only module that exits the process.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

import click

from monoceros._version import __version__
from monoceros.config import STARTUP_FAILURE, Config, settings
from monoceros.errors import ConfigError, StartupError


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"Running monoceros {__version__} with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )
    ctx.exit()


def _options() -> list[click.Option]:
    options = []
    for f in settings():
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        secondary = meta.get("secondary")
        decls = [f"{flag}/{secondary}" if secondary else flag, f.name]
        kwargs: dict[str, Any] = {"help": meta.get("help", ""), "show_default": False}
        if f.default is not None and not isinstance(f.default, (tuple, list)) and not secondary:
            if f.default is not dataclass_missing():
                kwargs["default"] = f.default
                kwargs["show_default"] = f.default not in ("", False)
        if meta.get("is_flag"):
            kwargs["is_flag"] = True
        elif secondary:
            kwargs["default"] = None
        else:
            if meta.get("type") is not None:
                kwargs["type"] = meta["type"]
            if meta.get("multiple"):
                kwargs["multiple"] = True
        if meta.get("envvar"):
            kwargs["envvar"] = meta["envvar"]
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        options.append(click.Option(decls, **kwargs))
    return options


def dataclass_missing() -> Any:
    import dataclasses

    return dataclasses.MISSING


def _run(ctx: click.Context, app: str, **values: Any) -> None:
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        source = ctx.get_parameter_source(name)
        if source is None or source is click.core.ParameterSource.DEFAULT:
            continue
        if isinstance(value, tuple) and name not in ("bind", "headers"):
            value = list(value)
        kwargs[name] = value
    kwargs.setdefault("app_dir", "")
    if kwargs.get("workers") is None:
        kwargs.pop("workers", None)
    try:
        run(app, **kwargs)
    except (ConfigError, StartupError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(STARTUP_FAILURE)
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl+C during startup
        sys.exit(130)


def run(app: Any, **kwargs: Any) -> None:
    """Run the server until it is stopped: ``monoceros.run("main:app", port=5000)``.

    Keyword arguments are :class:`~monoceros.config.Config` settings; an
    unknown one raises :class:`TypeError`.

    Raises:
        ConfigError: a setting or the application path is wrong.
        StartupError: the server could not start (bind failed, lifespan failed).
    """
    from monoceros.server import Server

    config = Config(app, **kwargs)
    server = Server(config)
    server.run()


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
    return click.Command(
        "monoceros",
        params=params,
        callback=click.pass_context(_run),
        context_settings={"auto_envvar_prefix": "MONOCEROS", "max_content_width": 100},
        help="Serve APP (module:attribute) over HTTP.",
    )


main = _build()

__all__ = ["main", "run"]
