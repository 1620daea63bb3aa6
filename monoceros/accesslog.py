"""The default access log's fast path: uvicorn's line, written a loop turn's
lines at a time.

Through :mod:`logging`, each request costs a ``LogRecord``, a formatter pass
and a ``write`` + ``flush`` (a system call): about as much as the request
itself.  When the access logger is configured as
:data:`monoceros.logging.LOGGING_CONFIG` configures it (one plain
``StreamHandler`` with :class:`~monoceros.logging.AccessFormatter` and the
default format, no filters), :class:`BatchedAccessLog` produces the same bytes
directly, keeps them in a list and writes them in one call on the next turn of
the event loop.  Any other configuration (a user's ``--log-config``, a
filter, another handler) keeps going through :mod:`logging` unchanged:
:meth:`BatchedAccessLog.for_logger` returns None for it.

Nothing is lost at shutdown: the server calls :meth:`BatchedAccessLog.flush`
after the last connection closed, and a line is never held longer than one
loop turn.  This module is compiled with the request path
(:mod:`monoceros.compiled`): a line costs a few string joins, not an
interpreted call.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from monoceros.logging import _BOLD, _DEFAULT_ACCESS_FMT, _RESET, AccessFormatter

__all__ = ["BatchedAccessLog"]

_INFO: Final = logging.INFO


class BatchedAccessLog:
    """uvicorn's default access line for each request, a loop turn's lines
    written at once (see the module docstring)."""

    def __init__(self, handler: logging.StreamHandler[Any], formatter: AccessFormatter, loop: Any) -> None:
        self._handler = handler
        self._formatter = formatter
        self._loop = loop
        self._prefix = formatter.level_prefix(_INFO, "INFO") + " "
        self._bold = formatter.use_colors
        # The formatter's text for each status seen: it caches them too, but
        # its get_status_code() is interpreted, a call dearer than the lookup.
        self._status: dict[int, str] = {}
        self._lines: list[str] = []

    @classmethod
    def for_logger(cls, logger: logging.Logger, loop: Any) -> BatchedAccessLog | None:
        """A batched writer for ``logger``, or None if it is not configured
        exactly as the default (then :mod:`logging` must do the work)."""
        # Any: compiled code would check the attributes' types as typeshed
        # declares them, and fileConfig() sets propagate to an int.
        log: Any = logger
        if log.filters or log.propagate or len(log.handlers) != 1 or logging.root.manager.disable:
            return None
        handler: Any = log.handlers[0]
        formatter = handler.formatter
        if (
            type(handler) is not logging.StreamHandler
            or handler.filters
            or handler.level > _INFO
            or type(formatter) is not AccessFormatter
            or formatter._fmt != _DEFAULT_ACCESS_FMT
        ):
            return None
        return cls(handler, formatter, loop)

    def add(self, client: str, method: str, path: str, http_version: str, status: int) -> None:
        """Queue one request's line."""
        text = self._status.get(status)
        if text is None:
            text = self._status[status] = self._formatter.get_status_code(status)
        lines = self._lines
        if not lines:
            self._loop.call_soon(self.flush)
        if self._bold:
            line = f'{self._prefix}{client} - "{_BOLD}{method} {path} HTTP/{http_version}{_RESET}" {text}\n'
        else:
            line = f'{self._prefix}{client} - "{method} {path} HTTP/{http_version}" {text}\n'
        lines.append(line)

    def flush(self) -> None:
        """Write the queued lines (as ``StreamHandler.emit`` would, errors included)."""
        lines = self._lines
        if not lines:
            return
        self._lines = []
        handler = self._handler
        handler.acquire()
        try:
            handler.stream.write("".join(lines))
            handler.flush()
        except Exception:  # what logging does with a broken stream: report, go on
            handler.handleError(logging.makeLogRecord({"msg": "access log", "levelno": _INFO}))
        finally:
            handler.release()
