"""Build hook: the HTTP/1.1 request path compiled with mypyc, where it can be
(see monoceros/compiled.py).  ``MONOCEROS_COMPILE=0`` installs pure Python,
and so does a machine without a C compiler and Python headers: the
extensions are optional, a failed build leaves the pure modules in use.
"""

from __future__ import annotations

import os
import runpy

from setuptools import Extension, setup

# monoceros.compiled declares the list; it imports nothing but the standard library.
MODULES = runpy.run_path(os.path.join("monoceros", "compiled.py"))["MODULES"]
COMPILED = [name.replace(".", "/") + ".py" for name in MODULES]


def ext_modules() -> list[Extension]:
    if os.environ.get("MONOCEROS_COMPILE", "1") == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # built without the build requirements (no isolation)
        return []
    # The build runs without the optional dependencies (websockets, h2,
    # PyYAML...) that `mypy monoceros` checks against: their types are Any
    # here, which changes nothing in the compiled modules.
    options = ["--config-file", os.devnull, "--ignore-missing-imports"]
    extensions: list[Extension] = mypycify(options + COMPILED, opt_level="3", group_name="monoceros")
    for extension in extensions:
        extension.optional = True  # no compiler: the pure modules stay in use
    return extensions


setup(ext_modules=ext_modules())
