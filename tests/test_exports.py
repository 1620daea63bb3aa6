"""The public surface: what ``import monoceros`` promises."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata

import click

import monoceros


def test_all_is_pinned() -> None:
    assert sorted(monoceros.__all__) == ["Config", "Server", "__version__", "main", "run"]


def test_every_name_is_importable() -> None:
    for name in monoceros.__all__:
        assert getattr(importlib.import_module("monoceros"), name) is getattr(monoceros, name)
    from monoceros import Config, Server, __version__, main, run

    assert dataclasses.is_dataclass(Config)
    assert isinstance(Server, type)
    assert callable(run)
    assert isinstance(main, click.Command)
    assert isinstance(__version__, str) and __version__.count(".") >= 2


def test_version_matches_the_installed_distribution() -> None:
    assert importlib.metadata.version("monoceros") == monoceros.__version__


def test_entry_point_is_main() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (entry,) = [ep for ep in scripts if ep.name == "monoceros"]
    assert entry.value == "monoceros.cli:main"
    assert entry.load() is monoceros.main


def test_channels_broadcast_and_adapters_surface() -> None:
    """The legacy channels interface's public names (docs/channels.md)."""
    import monoceros.broadcast
    import monoceros.middleware
    import monoceros.utils
    from monoceros.errors import BroadcastError, BroadcastUnavailable, MonocerosError, PartialDelivery

    assert sorted(monoceros.broadcast.__all__) == [
        "BroadCastMiddleware",
        "BroadcastError",
        "BroadcastMiddleware",
        "BroadcastUnavailable",
        "ConnectionGroups",
        "GroupsMiddleware",
        "PartialDelivery",
    ]
    assert sorted(monoceros.utils.__all__) == ["ASGIAdapter", "WSGIAdapter"]
    assert "ChannelsMiddleware" in monoceros.middleware.__all__
    for module in (monoceros.broadcast, monoceros.utils, monoceros.middleware):
        for name in module.__all__:
            assert getattr(module, name) is not None
    # The README spells it both ways.
    assert monoceros.broadcast.BroadCastMiddleware is monoceros.broadcast.BroadcastMiddleware
    assert monoceros.broadcast.BroadcastError is BroadcastError
    assert issubclass(BroadcastUnavailable, BroadcastError)
    assert issubclass(BroadcastUnavailable, ConnectionError)
    assert issubclass(PartialDelivery, BroadcastError) and issubclass(BroadcastError, MonocerosError)
