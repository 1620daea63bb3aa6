"""The HTTP/1.1 request path, compiled with mypyc where the build could.

Theory of operation
-------------------
The modules in :data:`MODULES` are ordinary, fully typed Python and stay the
source and the tested truth.  When monoceros is installed from source on a
machine with a C compiler, ``setup.py`` also compiles them with mypyc (the
same files, no annotations added) into extension modules that sit next to the
``.py`` files; Python's import system prefers an extension module, so the
server runs compiled code without a switch.  Compiled, a keep-alive request
runs less than half the CPU instructions (about 39k against 87k, valgrind over the
protocol driven in memory).  A machine
without a compiler, or ``MONOCEROS_COMPILE=0`` at install time, gets the
pure modules.

``MONOCEROS_PURE=1`` in the environment imports the pure modules even where
compiled ones exist (a debugger or a profiler sees Python frames; the test
suite's coverage pass runs this way).  It is read once, when the package is
first imported, and holds for the whole process and the worker processes
it starts, which inherit the environment.

This module has no imports beyond the standard library: ``setup.py`` reads
:data:`MODULES` from it before anything is installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

#: The compiled modules: the ones every HTTP/1.1 request runs through, and
#: none that imports app code or is patched by tests at run time.
MODULES: tuple[str, ...] = (
    "monoceros.accesslog",
    "monoceros.context",
    "monoceros.protocols.codecs",
    "monoceros.protocols.cycle",
    "monoceros.protocols.eager",
    "monoceros.protocols.headers",
    "monoceros.protocols.http1",
)


class _PreferSource(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` file of a module in :data:`MODULES`, so that it is
    imported rather than the extension module beside it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES or not path:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path:
            source = os.path.join(entry, leaf)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def prefer_source() -> None:
    """Import the pure modules from now on (what ``MONOCEROS_PURE=1`` does)."""
    if not any(isinstance(finder, _PreferSource) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PreferSource())


def is_compiled() -> bool:
    """Whether this process runs the compiled modules (all of them)."""
    return all(_compiled(importlib.import_module(name)) for name in MODULES)


def _compiled(module: ModuleType) -> bool:
    return not (module.__file__ or "").endswith(".py")


if os.environ.get("MONOCEROS_PURE", "") not in ("", "0"):
    prefer_source()

__all__ = ["MODULES", "is_compiled", "prefer_source"]
