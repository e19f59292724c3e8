"""The headless course render on tiny notebooks, and the committed notebooks' shape: slides metadata, no outputs."""

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course import decks, render

slow = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
COURSE = sorted((REPO / "notebooks").glob("*.ipynb"))
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", None}  # None: continues the slide (convention C1)
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def write_notebook(path: Path, *sources: str, nbgrader: dict[int, dict] | None = None) -> Path:
    """A notebook: a title slide, then one code cell per source (continuing the slide); `nbgrader` gives the
    nbgrader metadata of some code cells, by index in `sources`."""
    cells = [new_markdown_cell(f"# {path.stem}", metadata={"slideshow": {"slide_type": "slide"}})]
    cells += [new_code_cell(s) for s in sources]
    for i, meta in (nbgrader or {}).items():
        cells[i + 1].metadata["nbgrader"] = {"schema_version": 3, "task": False, **meta}
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def tiny_course(tmp_path_factory):
    """Three notebooks: one that passes (it runs in fast mode, in its own folder), one that fails, one after."""
    folder = tmp_path_factory.mktemp("notebooks")
    (folder / "marker.txt").write_text("here")
    write_notebook(
        folder / "01_passes.ipynb",
        "import os\nfrom lecturelib import claims",
        "claims.claim('fast mode', int(os.environ['LECTURELIB_FAST']), '>=', 1)\n"
        "claims.claim('runs in its folder', os.path.exists('marker.txt'), '>=', 1)",
        "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]);",
    )
    write_notebook(
        folder / "02_fails.ipynb",
        "from lecturelib import claims\nclaims.claim('half < 0.1', 0.5, '<', 0.1)",
        "print('never reached')",
    )
    write_notebook(folder / "03_after.ipynb", "print('✓ still runs after a failure')")
    return folder


@pytest.fixture(scope="module")
def cli_run(tiny_course, tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "course",
            "render",
            "--fast",
            "--slides",
            "--notebooks",
            str(tiny_course),
            "--out",
            str(out),
            "--timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return proc, out


@slow
def test_a_failing_notebook_fails_the_render_but_not_the_others(cli_run):
    proc, out = cli_run
    assert proc.returncode == 1, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.endswith(("pass", "FAIL"))}
    assert rows["01_passes.ipynb"][-1] == "pass"
    assert rows["02_fails.ipynb"][-1] == "FAIL"
    assert rows["03_after.ipynb"][-1] == "pass"
    assert "2/3 passed" in proc.stdout


@slow
def test_summary_lists_each_notebooks_claims_and_error(cli_run):
    proc, out = cli_run
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["mode"] == "fast" and summary["passed"] is False
    by_name = {r["notebook"]: r for r in summary["notebooks"]}
    assert list(by_name) == ["01_passes.ipynb", "02_fails.ipynb", "03_after.ipynb"]
    assert by_name["01_passes.ipynb"]["claims"] == ["✓ fast mode = 1 ≥ 1", "✓ runs in its folder = 1 ≥ 1"]
    assert by_name["02_fails.ipynb"]["claims"] == ["✗ half < 0.1 = 0.5 < 0.1"]
    assert by_name["02_fails.ipynb"]["error"].startswith("ClaimFailed")
    assert "✗ half < 0.1 = 0.5 < 0.1" in proc.stdout and "error: ClaimFailed" in proc.stdout
    assert all(r["seconds"] > 0 for r in summary["notebooks"])


@slow
def test_render_writes_executed_notebooks_html_and_decks(cli_run):
    _, out = cli_run
    for name in ("01_passes", "02_fails", "03_after"):
        assert {f"{name}.ipynb", f"{name}.html", f"{name}.slides.html"} <= {p.name for p in out.iterdir()}
        assert (out / render.SOLUTIONS_DIR / f"{name}.slides.html").is_file()  # the solutions deck
    executed = nbformat.read(out / "01_passes.ipynb", as_version=4)
    assert any("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))
    failed = nbformat.read(out / "02_fails.ipynb", as_version=4)
    assert failed.cells[1].outputs[-1].output_type == "error" and failed.cells[2].outputs == []
    assert "<img" in (out / "01_passes.html").read_text(encoding="utf-8")
    assert "reveal" in (out / "01_passes.slides.html").read_text(encoding="utf-8").lower()


@slow
def test_only_selects_notebooks_by_prefix(tiny_course):
    assert [p.name for p in render.find_notebooks(tiny_course, ["03"])] == ["03_after.ipynb"]
    assert [p.name for p in render.find_notebooks(tiny_course)] == [
        "01_passes.ipynb",
        "02_fails.ipynb",
        "03_after.ipynb",
    ]
    with pytest.raises(ValueError, match="matches --only"):
        render.find_notebooks(tiny_course, ["99"])


def test_kernel_env_sets_the_mode_and_leaves_matplotlib_to_the_kernel(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert render.kernel_env(True, REPO)["LECTURELIB_FAST"] == "1"
    env = render.kernel_env(False, REPO)
    assert env["LECTURELIB_FAST"] == "0" and "MPLBACKEND" not in env
    assert str(REPO) in env["PYTHONPATH"].split(os.pathsep)


def test_static_copy_keeps_the_png_fallback_and_drops_widget_views():
    nb = new_notebook(metadata={"widgets": {"state": {}}})
    cell = new_code_cell("live")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                decks.WIDGET_VIEW: {"model_id": "x", "version_major": 2, "version_minor": 0},
                "image/png": "iVBORw0KGgo=",
                "text/plain": "VBox()",
            },
        )
    ]
    nb.cells.append(cell)
    static = decks.static_copy(nb)
    assert set(static.cells[0].outputs[0].data) == {"image/png", "text/plain"}
    assert "widgets" not in static.metadata and decks.WIDGET_VIEW in nb.cells[0].outputs[0].data


def test_unknown_command_prints_usage():
    proc = subprocess.run(
        [sys.executable, "-m", "course", "paint"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 2 and "render" in proc.stderr


# The committed course: every notebook presents as a deck and is committed clean.


@pytest.mark.parametrize("path", COURSE, ids=[p.name for p in COURSE])
def test_notebook_is_committed_clean_with_slideshow_metadata(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for i, cell in enumerate(nb.cells):
        slide_type = cell.metadata.get("slideshow", {}).get("slide_type")  # nbformat's values, or absent
        assert slide_type in SLIDE_TYPES, f"cell {i} has slideshow slide_type {slide_type!r}"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has outputs"
    assert nb.cells[0].metadata["slideshow"]["slide_type"] == "slide", "the title cell opens the deck"


@slow
@pytest.mark.parametrize("path", COURSE, ids=[p.name for p in COURSE])
def test_notebook_builds_a_slide_deck(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    deck = tmp_path / "deck.slides.html"
    decks.export_slides(nb, deck)
    html = deck.read_text(encoding="utf-8")
    slides = sum(c.metadata.get("slideshow", {}).get("slide_type") == "slide" for c in nb.cells)
    assert html.count("<section") >= slides >= 2, "a deck needs a title slide and at least one section"


@slow
def test_decks_can_load_reveal_from_a_local_copy(tmp_path):
    nb = nbformat.read(write_notebook(tmp_path / "01_deck.ipynb", "1 + 1"), as_version=4)
    decks.export_slides(nb, tmp_path / "default.html")
    decks.export_slides(nb, tmp_path / "local.html", reveal_url="reveal.js")
    default = (tmp_path / "default.html").read_text(encoding="utf-8")
    assert 'href="_static/reveal.js/dist/reveal.css"' in default and "unpkg.com" not in default
    local = (tmp_path / "local.html").read_text(encoding="utf-8")
    assert 'href="reveal.js/dist/reveal.css"' in local and "unpkg.com/reveal.js" not in local


# --- reliability: signals, timeouts, unreadable notebooks, the mode that actually ran -----------------------------
@pytest.fixture
def slow_course(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01_slow.ipynb", "import time\nprint('started', flush=True)\ntime.sleep(300)")
    write_notebook(folder / "02_next.ipynb", "print('next')")
    return folder


@slow
@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_one_signal_stops_the_whole_run_and_writes_the_summary(slow_course, tmp_path, signum, code):
    import signal
    import time

    out = tmp_path / "build"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "course", "render", "--fast", "--notebooks", str(slow_course), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not list(Path(tmp_path).glob("build")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(5)  # the kernel is up and inside time.sleep
    sent = time.monotonic()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert time.monotonic() - sent < 10
    assert "02_next" not in stdout and "interrupted by SIG" in stdout
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] == signal.Signals(signum).name and summary["passed"] is False


@slow
def test_a_cell_timeout_is_reported_as_a_timeout(slow_course, tmp_path):
    (result, after) = render.render(slow_course, tmp_path / "out", fast=True, timeout=3, echo=lambda text: None)
    assert not result.ok and result.error.startswith("timeout: a cell ran longer than 3 s")
    assert "KeyboardInterrupt" not in result.error and after.ok


@slow
def test_an_unreadable_notebook_fails_alone(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_broken.ipynb").write_text("{ not json")
    write_notebook(folder / "02_fine.ipynb", "print('fine')")
    broken, fine = render.render(folder, tmp_path / "out", fast=True, echo=lambda text: None)
    assert not broken.ok and "unreadable notebook" in broken.error and fine.ok
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["passed"] is False


@slow
def test_a_notebook_that_ran_another_mode_than_asked_fails(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(
        folder / "01_setup.ipynb",
        "import os\nos.environ['LECTURELIB_FAST'] = '1'\nfrom lecturelib import runtime\nruntime.setup(seed=0)",
    )
    (result,) = render.render(folder, tmp_path / "out", fast=False, echo=lambda text: None)
    assert result.mode == "fast" and not result.ok and "asked for full" in result.error


@slow
def test_out_pointing_at_a_file_is_a_clear_error(tiny_course, tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("x")
    assert render.main(["--fast", "--notebooks", str(tiny_course), "--out", str(target)]) == 2
    assert "render:" in capsys.readouterr().err


def test_summary_counts_claims_not_checked_at_ci_size_and_exercises():
    result = render.Result(
        notebook="x.ipynb",
        ok=True,
        seconds=1.0,
        claims=["✓ a = 1 < 2", "– b = 3  (not checked)"],
        exercises={"1.1": "correct", "1.2": "not done"},
    )
    text = render.format_summary([result], fast=True)
    assert "1 ✓ held, 0 ✗ failed, 1 – not checked at CI size" in text
    assert "exercises: 1 correct, 1 not done" in text and "fast mode (CI size" in text


EXERCISE = (
    "from lecturelib.exercises import Exercise, Hint\n"
    "def check(f):\n    if f(2) != 4:\n        raise Hint('not the square')\n"
    "square_ex = Exercise('1.1', 'the square', check, lambda x: x ** 2)",
    "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
    "square = square_ex.check(square)\nprint(square(3))\n"
    "### BEGIN HIDDEN TESTS\nassert square_ex.passed, 'exercise 1.1'\n### END HIDDEN TESTS",
    "print('the speaker note: most students write x ** 2')",
)
EXERCISE_GRADING = {
    1: {"solution": True, "grade": False, "locked": False, "grade_id": "01-ex1-square"},
    2: {"solution": False, "grade": True, "locked": True, "grade_id": "01-ex1-check", "points": 1},
}


def _text(page: Path) -> str:
    """A page's text as the browser shows it (tags dropped: highlighted code is split into spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


@slow
def test_student_render_reports_exercises_not_done(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    path = write_notebook(folder / "01_ex.ipynb", *EXERCISE, nbgrader=EXERCISE_GRADING)
    nb = nbformat.read(path, as_version=4)
    nb.cells[4].metadata.update(tags=["instructor"], slideshow={"slide_type": "notes"})
    nbformat.write(nb, path)
    (result,) = render.render(folder, tmp_path / "student", fast=True, student=True, echo=lambda text: None)
    assert result.ok and result.exercises == {"1.1": "not done"}
    handout = nbformat.read(tmp_path / "student" / "01_ex.ipynb", as_version=4)
    assert "raise NotImplementedError()" in handout.cells[2].source and "x * x" not in handout.cells[2].source
    assert "passed" not in handout.cells[3].source and "speaker note" not in json.dumps(handout)
    (instructor,) = render.render(folder, tmp_path / "build", fast=True, slides=True, echo=lambda text: None)
    assert instructor.exercises == {"1.1": "correct"}
    # the class's deck: no solution, no verdict, the speaker note kept for the speaker view; the solutions deck
    # shows the solution and its verdict
    deck = _text(tmp_path / "build" / "01_ex.slides.html")
    assert "x * x" not in deck and "✓ correct" not in deck and "passed" not in deck and "speaker note" in deck
    answers = _text(tmp_path / "build" / render.SOLUTIONS_DIR / "01_ex.slides.html")
    assert "x * x" in answers and "✓ correct" in answers and "Exercise 1.1" in answers and "speaker note" not in answers


def test_present_writes_the_presenter_edition_without_outputs(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    path = write_notebook(folder / "01_ex.ipynb", *EXERCISE, nbgrader=EXERCISE_GRADING)
    nb = nbformat.read(path, as_version=4)
    nb.cells[4].metadata.update(tags=["instructor"], slideshow={"slide_type": "notes"})
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="an old output\n")]
    nbformat.write(nb, path)
    proc = subprocess.run(
        [sys.executable, "-m", "course", "present", "--notebooks", str(folder), "--out", str(tmp_path / "present")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    copy = nbformat.read(tmp_path / "present" / "01_ex.ipynb", as_version=4)
    text = json.dumps(copy)
    assert "x * x" not in text and "HIDDEN" not in text and "an old output" not in text
    assert "speaker note" in text and copy.cells[3].metadata["editable"] is False  # the graded check is locked
