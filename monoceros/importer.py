"""Import an object named by a ``"module:attribute"`` string."""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Final

from monoceros.errors import ConfigError

__all__ = ["ImportFromStringError", "import_from_string"]

# How many attribute names a "not found" message suggests at most.
_MAX_SUGGESTIONS: Final = 20


class ImportFromStringError(ConfigError):
    """The import string is malformed, or names a module or attribute that
    does not exist; the message is one line meant for the user."""


def _public_names(obj: object) -> list[str]:
    try:
        names = dir(obj)
    except Exception:  # a broken __dir__ must not hide the real error
        return []
    public = []
    for name in names:
        if name.startswith("_"):
            continue
        # getattr_static runs no property or module __getattr__: listing
        # names must not import or execute anything.
        value = inspect.getattr_static(obj, name, None)
        # Submodules are rarely what the user meant to serve.
        if not isinstance(value, types.ModuleType):
            public.append(name)
    return public


def _suggestion(owner: str, obj: object) -> str:
    names = _public_names(obj)
    if not names:
        return f" {owner} has no public attributes."
    shown = ", ".join(names[:_MAX_SUGGESTIONS])
    more = ", ..." if len(names) > _MAX_SUGGESTIONS else ""
    return f" {owner} has: {shown}{more}."


def import_from_string(import_str: str | object) -> object:
    """Return the object an import string names; anything else is returned as is.

    ``"package.module:attr"`` imports ``package.module`` and returns its
    ``attr``; the attribute may be dotted (``"module:obj.app"``).

    Raises:
        ImportFromStringError: the string is not ``<module>:<attribute>``, the
            module (or a package containing it) does not exist, or the
            attribute does not; the message lists the names that do exist.
        ImportError: raised while the module itself was being imported (a
            missing dependency of the user's code) -- it is the user's error,
            with its own traceback, so it is not replaced.
    """
    if not isinstance(import_str, str):
        return import_str

    module_str, _, attrs_str = import_str.partition(":")
    if not module_str or not attrs_str:
        raise ImportFromStringError(f'Import string "{import_str}" must be in format "<module>:<attribute>".')
    if module_str.startswith("."):
        raise ImportFromStringError(
            f'Could not import module "{module_str}": relative module names are not supported.'
        )

    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        # Only a missing module that *is* the requested one (or a package on
        # its way) is a bad import string; anything else went missing inside
        # the user's code and must surface as is.
        missing = exc.name
        if missing is None or (missing != module_str and not module_str.startswith(f"{missing}.")):
            raise
        raise ImportFromStringError(f'Could not import module "{module_str}".') from None

    instance: object = module
    parts = attrs_str.split(".")
    for index, attr_str in enumerate(parts):
        try:
            instance = getattr(instance, attr_str)
        except AttributeError:
            # List what exists where the lookup failed: the module, or the
            # object reached so far on a dotted path.
            owner = f'Module "{module_str}"' if index == 0 else f'"{module_str}:{".".join(parts[:index])}"'
            message = f'Attribute "{attrs_str}" not found in module "{module_str}".'
            raise ImportFromStringError(message + _suggestion(owner, instance)) from None
    return instance
