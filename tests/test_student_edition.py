"""The editions (course/student.py, nbgrader's own preprocessors): the student edition has no solution, no hidden
test, no instructor-only cell, and runs to the end; the presenter edition keeps the speaker notes and shows no
answer; the solutions deck has one slide per exercise."""

import ast
import importlib.util
import json
import re
from pathlib import Path

import course_build
import deck_measure
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course import render, student

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9]*.ipynb"))
IDS = [p.name[:2] for p in NOTEBOOKS]
MARKERS = (student.SOLUTION_BEGIN, student.SOLUTION_END)
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
# tests/test_nbgrader.py runs these notebooks' released edition to the end under `nbgrader autograde`
RUN_BY_NBGRADER_TEST = ("01", "03")


def _regions(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """The stripped non-empty lines of `source` inside and outside begin/end regions."""
    inside, outside, region = [], [], False
    for line in source.splitlines():
        if line.strip() in (begin, end):
            region = line.strip() == begin
        elif line.strip():
            (inside if region else outside).append(line.strip())
    return inside, outside


def _instructor(cell) -> bool:
    return student.INSTRUCTOR_TAG in cell.metadata.get("tags", [])


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=IDS)
def editions(request):
    nb = nbformat.read(request.param, as_version=4)
    return nb, student.student_edition(nb)


def test_no_solution_line_leaks_into_the_student_edition(editions):
    nb, edition = editions
    solutions = [line for cell in nb.cells for line in _regions(cell.source, *MARKERS)[0]]
    assert solutions, "the notebook has no exercise"
    shown = {line.strip() for cell in edition.cells for line in cell.source.splitlines()}
    # a line that also stands outside every solution in the instructor edition (say `return z`) is not a leak
    elsewhere = {line for cell in nb.cells for line in _regions(cell.source, *MARKERS)[1]}
    assert not [line for line in solutions if line in shown and line not in elsewhere]
    assert all(student.SOLUTION_BEGIN not in cell.source for cell in edition.cells)


def test_no_hidden_test_and_graded_checks_are_locked(editions):
    nb, edition = editions
    hidden = {line for cell in nb.cells for line in _regions(cell.source, HIDDEN_BEGIN, "### END HIDDEN TESTS")[0]}
    text = "\n".join(cell.source for cell in edition.cells)
    assert HIDDEN_BEGIN not in text and not [line for line in hidden if line in text]
    for cell in edition.cells:
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            assert cell.metadata["editable"] is False and cell.metadata["deletable"] is False


def test_no_instructor_cell_in_the_student_edition(editions):
    nb, edition = editions
    notes = [cell.source for cell in nb.cells if _instructor(cell)]
    assert not [cell for cell in edition.cells if _instructor(cell)]
    assert not [note for note in notes if note.strip() and any(note in cell.source for cell in edition.cells)]
    # removing them cannot break a later cell: they are text (speaker notes), never code
    assert not [cell.source[:60] for cell in nb.cells if _instructor(cell) and cell.cell_type == "code"]
    assert len(edition.cells) == len(nb.cells) - len(notes)


def test_every_stub_sits_inside_a_function_so_the_cell_still_runs(editions):
    """`raise NotImplementedError()` at the top level of a cell would stop Run All; inside a function, the check
    cell reports "not done" and the notebook goes on with the reference."""
    _, edition = editions
    for cell in edition.cells:
        if cell.cell_type == "code" and "raise NotImplementedError()" in cell.source:
            tree = ast.parse(cell.source)
            top = [node for node in tree.body if isinstance(node, ast.Raise)]
            assert not top, f"a solution stub at the top level of:\n{cell.source}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_solution_cells_carry_nbgrader_metadata(path):
    """Teachers who use nbgrader can take the notebooks as they are: solution cells are marked, ids are unique."""
    cells = json.loads(path.read_text())["cells"]
    ids = []
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if student.SOLUTION_BEGIN in "".join(cell["source"]):
            assert meta and meta.get("solution") is True and meta.get("grade_id"), cell["source"][:3]
        if meta:
            assert re.fullmatch(r"[a-z0-9_-]+", meta["grade_id"]) and meta.get("schema_version") == 3
            ids.append(meta["grade_id"])
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_nbgrader_accepts_the_cell_metadata(path):
    """nbgrader's own validator, which `nbgrader generate_assignment` runs first: e.g. a markdown solution cell must
    also be a (manually) graded cell with points, or nbgrader refuses the whole assignment."""
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(nbformat.read(path, as_version=4))


def test_course_has_at_least_two_exercises_per_notebook_and_sixteen_in_all():
    counts = {p.name[:2]: p.read_text().count(student.SOLUTION_BEGIN) for p in NOTEBOOKS}
    assert min(counts.values()) >= 2 and sum(counts.values()) >= 16, counts


def _executed_exercise_notebook():
    """A small instructor notebook as render leaves it: a solution, its graded check with a verdict, a speaker note,
    a figure-like output."""
    nbgrader = {"schema_version": 3, "task": False, "locked": False}
    solution = new_code_cell(
        "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
        metadata={"nbgrader": {**nbgrader, "solution": True, "grade": False, "grade_id": "01-ex1-square"}},
    )
    check = new_code_cell(
        "square = ex.square.check(square)\n### BEGIN HIDDEN TESTS\nassert ex.square.passed\n### END HIDDEN TESTS",
        metadata={
            "nbgrader": {**nbgrader, "solution": False, "grade": True, "locked": True, "grade_id": "01-ex1-check"},
            "slideshow": {"slide_type": "skip"},
        },
    )
    check.outputs = [new_output("stream", text="Exercise 1.1 (the square): ✓ correct\n")]
    figure = new_code_cell("print(square(3))", outputs=[new_output("stream", text="nine\n")])
    note = new_markdown_cell(
        "Most students write x ** 2.",
        metadata={"tags": ["instructor"], "slideshow": {"slide_type": "notes"}},
    )
    title = new_markdown_cell("# 01 squares", metadata={"slideshow": {"slide_type": "slide"}})
    return new_notebook(
        cells=[title, solution, check, figure, note],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


def test_presenter_edition_keeps_notes_and_outputs_but_no_answer():
    nb = _executed_exercise_notebook()
    shown = student.presenter_edition(nb)
    text = json.dumps(shown, ensure_ascii=False)
    assert "x * x" not in text and "passed" not in text and "✓ correct" not in text  # solution, hidden test, verdict
    assert "Most students write" in text and "nine" in text  # the speaker note and the measured output stay
    assert "nine" not in json.dumps(student.presenter_edition(nb, outputs=False), ensure_ascii=False)
    assert "x * x" in nb.cells[1].source  # the instructor notebook itself is untouched


def test_solutions_edition_has_one_slide_per_exercise_with_its_verdict():
    deck = student.solutions_edition(_executed_exercise_notebook())
    slides = [c.source for c in deck.cells if c.metadata.get("slideshow", {}).get("slide_type") == "slide"]
    assert slides == ["# Solutions\n\n01 squares", "## Exercise 1.1"]
    text = json.dumps(deck, ensure_ascii=False)
    assert "x * x" in text and "✓ correct" in text and "passed" not in text and "Most students" not in text
    verdict = deck.cells[-1]
    assert "hide-input" in verdict.metadata["tags"] and verdict.metadata["slideshow"]["slide_type"] == "fragment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_the_presenter_edition_runs_the_student_editions_code(path):
    """The presenter edition has the student edition's code cells, in order (it adds speaker notes, all markdown):
    so tests/test_browser.py's Run All of the presenter copy in JupyterLab is the student's run too."""
    nb = nbformat.read(path, as_version=4)
    code = [
        [cell.source for cell in edition.cells if cell.cell_type == "code"]
        for edition in (student.student_edition(nb), student.presenter_edition(nb, outputs=False))
    ]
    assert code[0] == code[1], f"{path.name}: an instructor-only code cell would run in the lab but not for students"


STUDENT_RUN = [p for p in NOTEBOOKS if p.name[:2] not in RUN_BY_NBGRADER_TEST]
# Where tests/test_browser.py can run (Chromium and playwright), it runs every notebook's student code in JupyterLab
# (test_student_code_runs_to_the_end_in_jupyterlab_with_every_exercise_not_done); elsewhere nbclient runs it here.
IN_JUPYTERLAB = Path(deck_measure.CHROMIUM).exists() and importlib.util.find_spec("playwright") is not None


@pytest.mark.slow
@pytest.mark.course_build
@pytest.mark.skipif(IN_JUPYTERLAB, reason="run in JupyterLab by tests/test_browser.py, Chromium being here")
@pytest.mark.parametrize("path", STUDENT_RUN, ids=[p.name[:2] for p in STUDENT_RUN])
def test_student_edition_runs_end_to_end_with_every_exercise_not_done(tmp_path, path):
    """What students get runs to the end (it goes on with the reference solutions), its claims hold, and each
    exercise is reported as not done; under nbclient, where no browser can run it in JupyterLab. 01 and 03 are left
    to tests/test_nbgrader.py, which runs their release. It runs after the session's shared render of the course
    (tests/course_build.py), not beside it: like a student after the instructor, it finds in the checkpoint cache
    the models whose code, data and seeds are the same (those trained with the reference solutions are the
    student's own)."""
    for notebook in NOTEBOOKS:
        course_build.result(notebook)
    (result,) = render.render(
        path.parent, tmp_path, fast=True, student=True, only=[path.stem], echo=lambda text: None, timeout=600
    )
    assert result.notebook == path.name
    assert result.ok, f"{result.notebook}: {result.error}"
    assert result.exercises and set(result.exercises.values()) == {"not done"}, result.exercises
    (handout,) = sorted(tmp_path.glob("*.ipynb"))
    assert handout.name == path.name and student.SOLUTION_BEGIN not in handout.read_text()
