"""``--pid-file``: the server's process id in a file, for init scripts and ``kill -HUP $(cat ...)``.

The file is written when the server starts and removed when it stops (if it
still names this process).  A file naming another live process means a
server is already running: that is an error.  A file left behind by a
process that no longer exists (a crash, a power cut) is replaced with a
warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from monoceros.errors import ConfigError

logger = logging.getLogger("monoceros.error")


def _live_pid(path: str) -> int | None:
    """The pid in an existing pid file if that process still runs."""
    try:
        with open(path) as existing:
            text = existing.read().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"--pid-file {path!r}: cannot read it ({exc.strerror})") from None
    if not text.isdigit():
        logger.warning("Replacing the pid file %s: %r is not a process id", path, text[:20])
        return None
    pid = int(text)
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        logger.warning("Replacing the stale pid file %s: process %d is not running", path, pid)
        return None
    except PermissionError:  # pragma: no cover - another user's process; the tests run as root
        return pid
    return pid


@contextlib.contextmanager
def pid_file(path: str | None) -> Iterator[None]:
    """Hold ``path`` (if given) with this process's id while the block runs.

    Raises:
        ConfigError: another running process holds the file, or it cannot be written.
    """
    if path is None:
        yield
        return
    live = _live_pid(path)
    if live is not None:
        raise ConfigError(f"--pid-file {path!r}: process {live} is running (another server?)")
    pid = os.getpid()
    try:
        with open(path, "w") as out:
            out.write(f"{pid}\n")
    except OSError as exc:
        raise ConfigError(f"--pid-file {path!r}: cannot write it ({exc.strerror})") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            with open(path) as current:
                mine = current.read().strip() == str(pid)
            if mine:
                os.unlink(path)


__all__ = ["pid_file"]
