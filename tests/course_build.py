"""The course executed once per test session, in fast mode, and shared by every test that needs executed notebooks.

One `python -m course render --fast --slides --out build/ci` runs in the background, the notebooks in order (so that
each finds the models of the notebooks before it in the checkpoint cache, as in a course run). It is started by the
first test that asks for a notebook (`executed(path)`), and render rewrites build/ci/summary.json after every notebook,
so that a test waits only for its own notebook. What it writes is what a course build writes: the executed notebook,
its HTML page, its deck (the presenter edition of this very run) and its solutions deck.

Tests that read it: tests/test_notebooks.py (every cell ran without an error, every claim held or was left to the full
run, every exercise correct: the checks nbval made, on this run) and the static-deck tests of tests/test_browser.py.

Under pytest-xdist (`make test` runs two workers) the workers share it: build/ci/session names the pytest session that
started it (the controller's COURSE_BUILD_SESSION, which the workers inherit), and a lock file makes sure only one
process starts it. The controller stops a render still running when the session ends (stop()).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
BUILD = REPO / "build" / "ci"
SESSION_ENV = "COURSE_BUILD_SESSION"
CELL_TIMEOUT_S = 600  # per cell; the whole fast course takes a few minutes
WAIT_S = float(os.environ.get("COURSE_BUILD_WAIT_S", 3600))  # how long a test waits for its notebook


class BuildFailed(AssertionError):
    """The shared render died or did not produce the notebook asked for."""


def _session() -> str:
    return os.environ.get(SESSION_ENV) or f"pid-{os.getpid()}"


def _lock() -> FileLock:
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(BUILD.parent / "ci.lock"))


def start() -> None:
    """Start the shared render unless this session has started it already (any process of the session may call it)."""
    with _lock():
        marker = BUILD / "session"
        if marker.exists() and marker.read_text() == _session():
            return
        shutil.rmtree(BUILD, ignore_errors=True)  # an earlier session's build: never reused
        BUILD.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "LECTURELIB_FAST": "1"}
        with open(BUILD / "render.log", "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "course", "render", "--fast", "--slides"]
                + ["--out", str(BUILD), "--timeout", str(CELL_TIMEOUT_S)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (BUILD / "pid").write_text(str(process.pid))
        marker.write_text(_session())


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it once it has ended
        return finished == 0
    except ChildProcessError:  # another process's child: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not Path(f"/proc/{pid}/stat").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _summary() -> dict:
    try:
        return json.loads((BUILD / "summary.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {"finished": False, "notebooks": []}


def result(path: Path) -> dict:
    """The render's row for notebook `path` (render.Result as a dict), waiting for it if the run has not got there."""
    start()
    pid = int((BUILD / "pid").read_text())
    deadline = time.monotonic() + WAIT_S
    while True:
        summary = _summary()
        rows = {row["notebook"]: row for row in summary["notebooks"]}
        if path.name in rows:
            return rows[path.name]
        if summary["finished"] or not _alive(pid):
            summary = _summary()  # it may have written its last row as it ended
            if path.name in {row["notebook"] for row in summary["notebooks"]}:
                continue
            log = (BUILD / "render.log").read_text(errors="replace")[-3000:]
            raise BuildFailed(f"the shared fast render ended without {path.name}:\n{log}")
        if time.monotonic() > deadline:
            raise BuildFailed(f"{path.name} was not rendered within {WAIT_S:.0f} s (COURSE_BUILD_WAIT_S)")
        time.sleep(1)


def executed(path: Path):
    """The executed notebook (nbformat) of `path` from the shared render, and the render's row for it."""
    row = result(path)
    return nbformat.read(BUILD / path.name, as_version=4), row


def stop() -> None:
    """Stop a shared render of this session that is still running (called by the pytest controller at its end)."""
    marker = BUILD / "session"
    if not marker.exists() or marker.read_text() != _session() or not (BUILD / "pid").exists():
        return
    pid = int((BUILD / "pid").read_text())
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
