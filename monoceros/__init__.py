"""monoceros: a fast, strict ASGI server with uvicorn's command line.

The public surface is what ``__all__`` lists; everything else may change.
"""

from monoceros._version import __version__
from monoceros.cli import main, run
from monoceros.config import Config
from monoceros.server import Server

__all__ = ["Config", "Server", "__version__", "main", "run"]
