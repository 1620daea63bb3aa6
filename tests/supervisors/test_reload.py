"""``--reload``: edit a file of a running app, with watchfiles and with the polling fallback."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from procs import Monoceros, clean_env

from monoceros.config import Config
from monoceros.supervisors.reload import FileFilter, watch_settings

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"{version}"}})
"""


def write_app(folder: Path, version: str) -> None:
    (folder / "editable.py").write_text(APP.format(version=version))


@pytest.mark.parametrize("watcher", ["WatchFiles", "StatReload"])
def test_reload_picks_up_an_edited_file_and_survives_a_syntax_error(tmp_path: Path, watcher: str) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    write_app(app_dir, "one")
    env = clean_env()
    if watcher == "StatReload":
        # watchfiles made unimportable: the reloader falls back to polling.
        blocker = tmp_path / "blocker" / "watchfiles"
        blocker.mkdir(parents=True)
        (blocker / "__init__.py").write_text("raise ImportError('watchfiles hidden by the test')\n")
        env["PYTHONPATH"] = str(blocker.parent)
    args = ["--reload", "--reload-dir", str(app_dir), "--reload-delay", "0.1", "--app-dir", str(app_dir)]
    with Monoceros([*args, "--port", "0", "editable:app"], env=env, app_dir=False) as proc:
        proc.wait_for(f"Using {watcher} to watch for changes")
        proc.wait_for(r"Worker \[\d+\] ready")
        url = proc.url()
        assert httpx.get(url).text == "one"

        write_app(app_dir, "two")
        proc.wait_for(f"{watcher} detected changes in .*editable.py.*Reloading")
        proc.wait_for(r"Worker \[\d+\] ready", 2)
        assert httpx.get(url).text == "two"

        (app_dir / "editable.py").write_text("def broken(:\n")
        proc.wait_for(r"Application failed to start: cannot load the application: SyntaxError")
        proc.wait_for("Waiting for a change to reload")
        write_app(app_dir, "three")
        proc.wait_for(r"Worker \[\d+\] ready", 3)
        assert httpx.get(url).text == "three"  # same address: the socket stayed bound
        (app_dir / "notes.txt").write_text("not a watched file")
        proc.signal(signal.SIGINT)
        assert proc.wait() == 0
    assert proc.index("detected changes") > 0
    assert "notes.txt" not in "\n".join(proc.stderr)


def test_file_filter_follows_uvicorns_defaults(tmp_path: Path) -> None:
    accept = FileFilter([], [], [])
    assert accept(Path("/src/app.py"))
    assert not accept(Path("/src/.app.py.swp"))
    assert not accept(Path("/src/app.pyc"))
    assert not accept(Path("/src/page.html"))
    accept = FileFilter(["*.html"], ["*.py"], [tmp_path])
    assert accept(Path("/src/page.html"))
    assert not accept(Path("/src/app.py"))
    assert not accept(tmp_path / "page.html")

    excluded = tmp_path / "build"
    excluded.mkdir()
    dirs, accept = watch_settings(
        Config("m:a", reload_dirs=[str(tmp_path), str(excluded)], reload_excludes=[str(excluded)])
    )
    assert dirs == [tmp_path.resolve()]
    assert not accept(excluded.resolve() / "gen.py")
