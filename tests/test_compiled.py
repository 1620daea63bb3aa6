"""The compiled HTTP/1.1 path (monoceros.compiled): which build a process runs.

scripts/test runs the suite twice, once on the pure modules
(``MONOCEROS_PURE=1``, with coverage) and once on the compiled ones, and says
which in ``MONOCEROS_TEST_BUILD``; these tests fail if the process does not
run that build, so a silent fall-back to pure Python cannot pass as a
compiled run.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import monoceros.compiled
from monoceros.compiled import MODULES, is_compiled

ROOT = Path(__file__).resolve().parent.parent


def _built() -> bool:
    """Extension modules of every compiled module sit beside the sources."""
    return all(any(ROOT.glob(name.replace(".", "/") + ".*.so")) for name in MODULES)


def test_all_is_pinned() -> None:
    assert sorted(monoceros.compiled.__all__) == ["MODULES", "is_compiled", "prefer_source"]


def test_the_process_runs_the_build_it_was_told() -> None:
    expected = os.environ.get("MONOCEROS_TEST_BUILD")
    files = [importlib.import_module(name).__file__ or "" for name in MODULES]
    if expected == "compiled":
        assert is_compiled(), files
        assert not any(f.endswith(".py") for f in files)
    elif expected == "pure":
        assert all(f.endswith(".py") for f in files), files
        assert not is_compiled()
    else:  # run by hand: whatever is built is what runs, all or nothing
        pure = os.environ.get("MONOCEROS_PURE", "") not in ("", "0")
        assert is_compiled() == (_built() and not pure), files


def _files_in_child(env: dict[str, str]) -> list[str]:
    code = (
        "import importlib, monoceros.compiled as c;"
        "print('\\n'.join(importlib.import_module(m).__file__ for m in c.MODULES))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout
    return out.split()


def test_monoceros_pure_imports_the_sources() -> None:
    files = _files_in_child({"MONOCEROS_PURE": "1"})
    assert len(files) == len(MODULES)
    assert all(f.endswith(".py") and Path(f).is_file() for f in files)


def test_without_monoceros_pure_the_build_is_used() -> None:
    files = _files_in_child({"MONOCEROS_PURE": "0"})
    assert len(files) == len(MODULES)
    assert all(f.endswith(".so") for f in files) == _built()
