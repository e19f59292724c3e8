"""Render the whole course headless: execute every notebook in order into build/ as notebooks, HTML and slide decks.

`python -m course render [--fast] [--slides] [--only 03] [--out build]` prints one row per notebook (seconds,
pass/fail, the claims it checked) and writes build/summary.json; it exits non-zero when any notebook failed.
The pages and decks load reveal.js and MathJax from build/_static (copied there from course/static), so the build
folder works with no network: opened from disk, zipped, or served by `python -m http.server`.
The decks (`--slides`) are made from the presenter edition of each executed notebook (course/student.py: no
solutions, no verdicts, speaker notes kept), and build/solutions/<name>.slides.html holds each notebook's solutions
deck (one slide per exercise, from the instructor edition) to show a solution on demand; nothing runs twice.
`--student` writes the student edition instead (nbgrader's ClearSolutions and friends, speaker notes removed),
executes it end to end and reports each exercise as not done.
`python -m course present [--out build/present]` writes the presenter edition, without outputs, for `make present`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from course.decks import export_html, export_slides
from course.student import presenter_edition, solutions_edition, student_edition

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
CLAIM_MARKS = ("✓", "✗", "–")  # holds, fails, not checked at CI size (claims.MARKS)
DEVICE_PREFIX = "lecturelib: device"
EXERCISE_LINE = re.compile(r"^Exercise (\d+\.\d+) \((.*?)\): ([✓○✗])")
SOLUTIONS_DIR = "solutions"  # <out>/solutions/<name>.slides.html: the solutions decks
MODE_WORDS = {True: "fast mode (CI size: the CI subset of MNIST)", False: "full mode (all of MNIST)"}


@dataclass
class Result:
    """How one notebook's run went: `claims` are the ✓/✗ lines printed by claims.claim, in order."""

    notebook: str
    ok: bool
    seconds: float
    claims: list[str] = field(default_factory=list)
    device: str = ""
    mode: str = ""
    error: str = ""
    exercises: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def find_notebooks(notebooks_dir: Path, only: list[str] | None = None) -> list[Path]:
    """The notebooks in `notebooks_dir`, in name order; `only` keeps those whose name starts with (or equals) a key."""
    notebooks_dir = Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(f"notebooks_dir {notebooks_dir} is not a directory")
    paths = sorted(p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        paths = [p for p in paths if any(p.name.startswith(key) or p.stem == key for key in only)]
        if not paths:
            raise ValueError(f"no notebook in {notebooks_dir} matches --only {only}")
    if not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {notebooks_dir}")
    return paths


def kernel_env(fast: bool, notebooks_dir: Path) -> dict[str, str]:
    """The kernels' environment: ours, plus the mode, lecturelib importable, and matplotlib left to the kernel."""
    env = dict(os.environ)
    env["LECTURELIB_FAST"] = "1" if fast else "0"
    env.pop("MPLBACKEND", None)  # the kernel must use its inline backend, or figures never reach the notebook
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _printed_lines(nb) -> list[str]:
    lines = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                lines.extend(output.get("text", "").splitlines())
    return lines


def judge(notebook: str, lines: list[str], *, fast: bool, error: str = "") -> Result:
    """What a run of `notebook` printed (`lines`, its cells' stdout in order), read as a Result: the device line and
    the mode it names, the claims, the exercises' verdicts. Not ok if `error`, a claim failed (✗) or the kernel ran
    another mode than `fast` asks. Also reads a run in JupyterLab (tests/test_browser.py, its outputs' text)."""
    device = next((line.strip() for line in lines if line.startswith(DEVICE_PREFIX)), "")
    result = Result(
        notebook=notebook,
        ok=not error,
        seconds=0.0,
        error=error,
        device=device,
        claims=[line.strip() for line in lines if line.strip().startswith(CLAIM_MARKS)],
        mode=("fast" if " mode fast" in device else "full" if " mode full" in device else ""),
        exercises={
            m[1]: {"✓": "correct", "○": "not done", "✗": "wrong"}[m[3]] for m in map(EXERCISE_LINE.match, lines) if m
        },
    )
    if any(line.startswith("✗") for line in result.claims):
        result.ok = False
    if result.mode and result.mode != ("fast" if fast else "full"):  # the kernel ran another mode than asked for
        result.ok = False
        result.error = result.error or f"ran in {result.mode} mode, asked for {'fast' if fast else 'full'}"
    return result


def _error_line(nb, exc: BaseException) -> str:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename')}: {output.get('evalue')}".strip()[:300]
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]


class Interrupted(Exception):
    """The run was stopped by SIGINT (Ctrl-C) or SIGTERM (a `timeout`, a CI cancel); `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Stop:
    """Turns the first SIGINT or SIGTERM into a stop of the whole run: it kills the running kernel at once.

    nbclient installs handlers of its own that only shut the kernel down and let the caller carry on with the next
    notebook; running the notebook in a worker thread keeps them out (asyncio signal handlers need the main thread),
    so the main thread's handler below is the one that acts.
    """

    def __init__(self):
        self.signum: int | None = None
        self.kernel_pid: int | None = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        self.kill_kernel()

    def kill_kernel(self) -> None:
        pid = self.kernel_pid
        if pid:
            for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    kill()
                    break
                except (ProcessLookupError, PermissionError, OSError):
                    continue


_stop: _Stop | None = None  # set while render() runs in the main thread


def _kernel_pid(client) -> int | None:
    km = getattr(client, "km", None)
    provisioner = getattr(km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    return getattr(process, "pid", None)


def execute(path: Path, *, fast: bool, timeout: int, env: dict[str, str] | None = None, student: bool = False):
    """Execute one notebook in a fresh python3 kernel (cwd = its folder), with kernel_env plus `env`.

    `student`: execute the student edition of the notebook instead.
    Returns the executed notebook, its error line ("" when it ran cleanly) and its wall time in seconds.
    A cell running longer than `timeout` seconds is reported as a timeout. Under render(), SIGINT/SIGTERM kill the
    kernel and raise Interrupted.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    if student:
        nb = student_edition(nb)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    outcome: dict[str, BaseException] = {}

    def work():
        try:
            client.execute(env={**kernel_env(fast, path.parent), **(env or {})})
        except BaseException as exc:  # a failing notebook (or kernel) must not stop the others
            outcome["error"] = exc

    start = time.perf_counter()
    worker = threading.Thread(target=work, name=f"execute {path.name}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if _stop is not None:
            _stop.kernel_pid = _stop.kernel_pid or _kernel_pid(client)
            if _stop.signum is not None:
                _stop.kill_kernel()
                worker.join(10)
                raise Interrupted(_stop.signum)
    if _stop is not None:
        _stop.kernel_pid = None
    seconds = time.perf_counter() - start
    exc = outcome.get("error")
    if exc is None:
        return nb, "", seconds
    if isinstance(exc, CellTimeoutError):
        return nb, f"timeout: a cell ran longer than {timeout} s (--timeout)", seconds
    if isinstance(exc, DeadKernelError):
        return nb, f"the kernel died: {str(exc).strip()[:200]}", seconds
    return nb, _error_line(nb, exc), seconds


def run_notebook(
    path: Path,
    out: Path,
    *,
    fast: bool,
    slides: bool,
    timeout: int,
    reveal_url: str | None = None,
    student: bool = False,
) -> Result:
    """Execute one notebook (cwd = its folder) and write <out>/<name>.ipynb, .html (and .slides.html)."""
    try:
        nb, error, seconds = execute(path, fast=fast, timeout=timeout, student=student)
    except (OSError, ValueError, nbformat.reader.NotJSONError, nbformat.ValidationError) as err:
        return Result(
            notebook=path.name,
            ok=False,
            seconds=0.0,
            error=f"unreadable notebook: {type(err).__name__}: {str(err).strip().splitlines()[0][:200]}",
        )
    result = judge(path.name, _printed_lines(nb), fast=fast, error=error)
    result.seconds = round(seconds, 1)
    out.mkdir(parents=True, exist_ok=True)
    targets = {"ipynb": out / f"{path.stem}.ipynb", "html": out / f"{path.stem}.html"}
    nbformat.write(nb, targets["ipynb"])
    export_html(nb, targets["html"])
    if slides:  # what the class sees: the presenter edition of this very run (no second execution)
        targets["slides"] = out / f"{path.stem}.slides.html"
        export_slides(presenter_edition(nb), targets["slides"], reveal_url)
        if not student:  # the instructor's answers, to show on demand
            targets["solutions"] = out / SOLUTIONS_DIR / f"{path.stem}.slides.html"
            targets["solutions"].parent.mkdir(parents=True, exist_ok=True)
            export_slides(solutions_edition(nb), targets["solutions"], reveal_url)
    result.files = {kind: str(p) for kind, p in targets.items()}
    return result


def format_summary(results: list[Result], fast: bool) -> str:
    """The summary table: one row per notebook, its key figures (claim lines) indented below it."""
    width = max([len(r.notebook) for r in results] + [len("notebook")])
    rows = [f"{'notebook':<{width}}  {'seconds':>7}  result", f"{'-' * width}  {'-' * 7}  ------"]
    for r in results:
        rows.append(f"{r.notebook:<{width}}  {r.seconds:>7.1f}  {'pass' if r.ok else 'FAIL'}")
        rows.extend(f"{'':<{width}}    {line}" for line in r.claims)
        if r.exercises:
            counts = {s: sum(v == s for v in r.exercises.values()) for s in ("correct", "not done", "wrong")}
            rows.append(f"{'':<{width}}    exercises: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        if r.error:
            rows.append(f"{'':<{width}}    error: {r.error}")
    failed = sum(not r.ok for r in results)
    total = sum(r.seconds for r in results)
    marks = [line[0] for r in results for line in r.claims]
    devices = sorted({r.device.split(",")[0] for r in results if r.device})
    rows.append(
        f"{len(results) - failed}/{len(results)} passed in {total:.0f} s, {MODE_WORDS[fast]}; "
        f"claims: {marks.count('✓')} ✓ held, {marks.count('✗')} ✗ failed, "
        f"{marks.count('–')} – not checked at CI size" + (f"; {devices[0]}" if len(devices) == 1 else "")
    )
    return "\n".join(rows)


def _write_summary(
    executed: Path, fast: bool, student: bool, results: list[Result], *, finished: bool, interrupted=None
) -> None:
    """<executed>/summary.json, rewritten (atomically) after every notebook: `finished` is false while the run goes on,
    so that a reader (the test suite's shared build, tests/course_build.py) can use each notebook as soon as it is done.
    """
    summary = {
        "mode": "fast" if fast else "full",
        "data": "CI subset of MNIST" if fast else "all of MNIST",
        "edition": "student" if student else "instructor",
        "finished": finished,
        "passed": finished and all(r.ok for r in results),
        "interrupted": str(interrupted) if interrupted else None,
        "notebooks": [asdict(r) for r in results],
    }
    partial = executed / "summary.json.partial"
    partial.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(executed / "summary.json")


def render(
    notebooks_dir: Path = NOTEBOOKS,
    out: Path = REPO / "build",
    *,
    fast: bool | None = None,
    slides: bool = False,
    only: list[str] | None = None,
    timeout: int = 900,
    reveal_url: str | None = None,
    echo=None,
    student: bool = False,
) -> list[Result]:
    """Execute the course's notebooks in order into `out`; write out/summary.json and echo the summary table.

    `fast=None` follows $LECTURELIB_FAST; `echo` (default: print, flushed) receives progress and the summary.
    `student`: write the student edition (no outputs) into `out` and its executed copies into out/executed.
    """
    echo = echo or (lambda text: print(text, flush=True))
    if fast is None:
        from lecturelib import runtime

        fast = runtime.fast_mode()
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise ValueError(f"timeout must be a positive int (seconds per cell), got {timeout!r}")
    paths = find_notebooks(Path(notebooks_dir), only)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    executed = out
    if student:
        for path in paths:  # the hand-out: what students get, without outputs
            nbformat.write(student_edition(nbformat.read(path, as_version=4)), out / path.name)
        executed = out / "executed"
        echo(f"student edition of {len(paths)} notebooks written to {out}")
    echo(
        f"rendering {len(paths)} notebooks{' (student edition)' if student else ''} in {MODE_WORDS[fast]} "
        f"into {executed}"
    )
    global _stop
    results, interrupted = [], None
    with _Stop() as _stop:
        try:
            for path in paths:
                echo(f"running {path.name} ...")
                result = run_notebook(
                    path, executed, fast=fast, slides=slides, timeout=timeout, reveal_url=reveal_url, student=student
                )
                echo(
                    f"  {'pass' if result.ok else 'FAIL'} in {result.seconds:.1f} s"
                    + (f": {result.error}" if result.error else "")
                )
                results.append(result)
                _write_summary(executed, fast, student, results, finished=False)
        except Interrupted as stop:
            interrupted = stop
            results.append(Result(notebook=path.name, ok=False, seconds=0.0, error=f"interrupted ({stop})"))
        finally:
            _stop = None
    _write_summary(executed, fast, student, results, finished=True, interrupted=interrupted)
    echo(format_summary(results, fast))
    if interrupted:
        echo(f"interrupted by {interrupted}: stopped after {len(results)} of {len(paths)} notebooks")
        raise interrupted
    return results


def present(notebooks_dir: Path = NOTEBOOKS, out: Path = REPO / "build" / "present", echo=print) -> list[Path]:
    """Write the presenter edition of each notebook, without outputs, into `out` (what `make present` opens in
    JupyterLab's deck mode): no solutions, no hidden tests, speaker notes kept. Returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in find_notebooks(Path(notebooks_dir)):
        nbformat.write(presenter_edition(nbformat.read(path, as_version=4), outputs=False), out / path.name)
        written.append(out / path.name)
    echo(f"presenter edition of {len(written)} notebooks written to {out}")
    return written


def present_main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course present", description=present.__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "present", help="default: build/present")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="notebooks folder (default: notebooks/)")
    args = parser.parse_args(argv)
    try:
        present(args.notebooks, args.out)
    except (FileNotFoundError, NotADirectoryError, FileExistsError, ValueError) as error:
        print(f"present: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course render", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--fast",
        dest="fast",
        action="store_const",
        const=True,
        help="CI-sized run (LECTURELIB_FAST=1 in the kernels); default: $LECTURELIB_FAST, else full",
    )
    mode.add_argument("--full", dest="fast", action="store_const", const=False, help="lecture-quality run")
    parser.add_argument("--slides", action="store_true", help="also write <name>.slides.html reveal.js decks")
    parser.add_argument(
        "--only",
        action="append",
        metavar="PREFIX",
        help="render only notebooks whose name starts with PREFIX (repeatable), e.g. --only 03",
    )
    parser.add_argument(
        "--student",
        action="store_true",
        help="write the student edition (solutions stubbed out) and execute it (default out: build/student)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: build/, or build/student with --student)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="notebooks folder (default: notebooks/)")
    parser.add_argument(
        "--reveal-url",
        metavar="PREFIX",
        help="where the decks load reveal.js from (default: the copy in <out>/_static, which works "
        "offline), e.g. https://unpkg.com/reveal.js@4.0.2",
    )
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (default: 900)")
    args = parser.parse_args(argv)
    try:
        out = args.out or (REPO / "build" / ("student" if args.student else ""))
        results = render(
            args.notebooks,
            out,
            fast=args.fast,
            slides=args.slides,
            only=args.only,
            timeout=args.timeout,
            reveal_url=args.reveal_url,
            student=args.student,
        )
    except (FileNotFoundError, NotADirectoryError, FileExistsError, ValueError) as error:
        print(f"render: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        return 128 + stop.signum  # 130 for SIGINT, 143 for SIGTERM, as a shell reports them
    return 0 if all(r.ok for r in results) else 1
