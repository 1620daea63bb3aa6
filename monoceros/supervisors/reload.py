"""``--reload``: restart the worker when a watched file changes.

The reloader is the :class:`~monoceros.supervisors.multiprocess.Multiprocess`
supervisor with one worker and two differences: a watcher thread wakes it
when files change (the worker is then stopped, and a new one started once
the old one is gone: never two versions of the app at once), and a worker
that fails to start (a syntax error being typed) is logged and waits for
the next change instead of stopping the server.  The listening sockets
belong to the parent, so the port stays bound across reloads and requests
made meanwhile wait in the accept queue.

What is watched follows uvicorn's documentation: ``--reload-dir`` (default:
the current directory), files matching ``--reload-include`` (default
``*.py``) and not ``--reload-exclude`` (default ``.*``, ``.py[cod]``,
``.sw.*``, ``~*``); an include pattern given as an exclude drops that
default, and the other way round; an exclude that names a directory stops
watching inside it.  watchfiles notices changes; without it the files are
polled every ``--reload-delay`` seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from monoceros.config import Config
from monoceros.errors import ConfigError
from monoceros.supervisors._process import Worker, WorkerState
from monoceros.supervisors.multiprocess import WAKE_CHANGES, Multiprocess

logger = logging.getLogger("monoceros.error")

_STOPPING = WorkerState.STOPPING
DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", ".py[cod]", ".sw.*", "~*")


class FileFilter:
    """Which changed paths trigger a reload."""

    def __init__(
        self, includes: Sequence[str], excludes: Sequence[str], exclude_dirs: Sequence[Path]
    ) -> None:
        self.includes = [p for p in DEFAULT_INCLUDES if p not in excludes] + list(includes)
        self.excludes = [p for p in DEFAULT_EXCLUDES if p not in includes] + [
            p for p in excludes if p not in self.includes
        ]
        self.exclude_dirs = list(exclude_dirs)

    def __call__(self, path: Path) -> bool:
        if any(d == path or d in path.parents for d in self.exclude_dirs):
            return False
        if not any(path.match(p) for p in self.includes):
            return False
        return not any(path.match(p) for p in self.excludes)


def watch_settings(config: Config) -> tuple[list[Path], FileFilter]:
    """The directories to watch and the filter, from the ``reload_*`` settings.

    Raises:
        ConfigError: a reload directory is missing, not a directory or unreadable.
    """
    dirs: list[Path] = []
    for given in config.reload_dirs or []:
        path = Path(given).resolve()
        if not path.is_dir():
            raise ConfigError(f"--reload-dir {given!r}: not a directory")
        if not os.access(path, os.R_OK | os.X_OK):
            raise ConfigError(f"--reload-dir {given!r}: cannot read it (permission denied)")
        dirs.append(path)
    includes = list(config.reload_includes or [])
    excludes = list(config.reload_excludes or [])
    exclude_dirs = [Path(p).resolve() for p in excludes if Path(p).is_dir()]
    excludes = [p for p in excludes if not Path(p).is_dir()]
    dirs = [d for d in dirs if not any(x == d or x in d.parents for x in exclude_dirs)] or [Path.cwd()]
    # A directory inside another one is watched through its parent.
    dirs = sorted({d for d in dirs if not any(o in d.parents for o in dirs)})
    return dirs, FileFilter(includes, excludes, exclude_dirs)


class StatWatcher:
    """Polls the modification times of the watched files (no watchfiles)."""

    name = "StatReload"

    def __init__(self, dirs: list[Path], accept: FileFilter, delay: float) -> None:
        self.dirs = dirs
        self.accept = accept
        self.delay = delay

    def _mtimes(self) -> dict[Path, float]:
        mtimes = {}
        for directory in self.dirs:
            for path in directory.rglob("*"):
                if self.accept(path):
                    try:
                        mtimes[path] = path.stat().st_mtime
                    except OSError:  # removed while we looked
                        continue
        return mtimes

    def changes(self, stop: threading.Event) -> Iterator[list[Path]]:
        before = self._mtimes()
        while not stop.wait(self.delay):
            now = self._mtimes()
            changed = [p for p, t in now.items() if before.get(p) != t]
            changed += [p for p in before if p not in now]
            before = now
            if changed:
                yield sorted(changed)


class WatchFilesWatcher:
    """watchfiles' notifications, filtered; ``--reload-delay`` between checks."""

    name = "WatchFiles"

    def __init__(self, dirs: list[Path], accept: FileFilter, delay: float) -> None:
        self.dirs = dirs
        self.accept = accept
        self.delay = delay

    def changes(self, stop: threading.Event) -> Iterator[list[Path]]:
        from watchfiles import watch

        for batch in watch(*self.dirs, stop_event=stop, yield_on_timeout=True, ignore_permission_denied=True):
            changed = sorted({Path(path) for _, path in batch if self.accept(Path(path))})
            if changed:
                yield changed
                if stop.wait(self.delay):
                    return


def choose_watcher() -> Callable[[list[Path], FileFilter, float], StatWatcher | WatchFilesWatcher]:
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return StatWatcher
    return WatchFilesWatcher


class ChangeReload(Multiprocess):
    """One worker, restarted when the watched files change."""

    name = "reloader"

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets, workers=1)
        dirs, accept = watch_settings(config)
        self.watcher = choose_watcher()(dirs, accept, config.reload_delay)
        self.changed: list[Path] = []
        self.broken = False  # the app failed to start: wait for a change
        self._stop_watching = threading.Event()
        logger.info("Will watch for changes in these directories: %s", [str(d) for d in dirs])

    def run(self) -> None:
        logger.info("Using %s to watch for changes", self.watcher.name)
        thread = threading.Thread(target=self._watch, name="monoceros-reload", daemon=True)
        thread.start()
        try:
            super().run()
        finally:
            self._stop_watching.set()
            thread.join(5)

    def _watch(self) -> None:
        for changed in self.watcher.changes(self._stop_watching):
            self.changed.extend(changed)
            self.wake(WAKE_CHANGES)

    def files_changed(self) -> None:
        changed, self.changed = self.changed, []
        if not changed or self.stopping:
            return
        shown = ", ".join(f"'{_display(p)}'" for p in sorted(set(changed)))
        logger.warning("%s detected changes in %s. Reloading...", self.watcher.name, shown)
        self.broken = False
        for worker in self.workers:
            if worker.state is not _STOPPING:
                worker.terminate()

    def startup_failed(self, worker: Worker) -> None:
        logger.error(
            "Application failed to start: %s. Waiting for a change to reload.",
            worker.failure or f"worker exited with code {worker.exitcode}",
        )
        self.broken = True

    def _reconcile(self) -> None:
        # The old version stops before the new one starts.
        if self.broken or any(w.state is _STOPPING for w in self.workers):
            return
        super()._reconcile()


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)

__all__ = ["ChangeReload", "FileFilter", "StatWatcher", "WatchFilesWatcher", "watch_settings"]
