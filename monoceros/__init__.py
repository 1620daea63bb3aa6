"""monoceros: a fast, strict ASGI server with uvicorn's command line.

The public surface is what ``__all__`` lists; everything else may change.
"""

# First: under MONOCEROS_PURE=1 this must act before any protocol module is imported.
import monoceros.compiled  # noqa: F401  # isort: split
from monoceros._version import __version__
from monoceros.cli import main, run
from monoceros.config import Config
from monoceros.server import Server

__all__ = ["Config", "Server", "__version__", "main", "run"]
