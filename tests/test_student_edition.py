"""The two editions: nbgrader's solution markers in the instructor notebooks, and the student edition made from them."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from course import render, student

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9]*.ipynb"))


def test_strip_solutions_stubs_code_at_the_marker_indentation():
    source = 'def f(x):\n    """doc"""\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n'
    assert student.strip_solutions(source, "code") == (
        'def f(x):\n    """doc"""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    )


def test_strip_solutions_in_markdown_leaves_an_answer_stub():
    assert student.strip_solutions("Why?\n\n### BEGIN SOLUTION\nBecause.", "markdown") == "Why?\n\nYOUR ANSWER HERE"


@pytest.mark.parametrize(
    "source",
    [
        "### BEGIN SOLUTION\nx = 1\n",
        "x = 1\n### END SOLUTION\n",
        "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
    ],
)
def test_unbalanced_markers_are_refused(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        student.strip_solutions(source, "code")


def _solution_lines(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == student.SOLUTION_BEGIN:
            inside = True
        elif line.strip() == student.SOLUTION_END:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name[:2] for p in NOTEBOOKS])
def test_no_solution_line_leaks_into_the_student_edition(path):
    nb = nbformat.read(path, as_version=4)
    solutions = [line for cell in nb.cells for line in _solution_lines(cell.source)]
    assert solutions, f"{path.name} has no exercise"
    outside = {line.strip() for cell in student.student_edition(nb).cells for line in cell.source.splitlines()}
    # a line that also stands outside every solution in the instructor edition (say `return z`) is not a leak
    instructor_outside = {
        line.strip() for cell in nb.cells for line in student.strip_solutions(cell.source, cell.cell_type).splitlines()
    }
    leaked = [line for line in solutions if line in outside and line not in instructor_outside]
    assert not leaked
    assert all(student.SOLUTION_BEGIN not in cell.source for cell in student.student_edition(nb).cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name[:2] for p in NOTEBOOKS])
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


def test_course_has_at_least_two_exercises_per_notebook_and_sixteen_in_all():
    counts = {p.name[:2]: p.read_text().count(student.SOLUTION_BEGIN) for p in NOTEBOOKS}
    assert min(counts.values()) >= 2 and sum(counts.values()) >= 16, counts


@pytest.mark.slow
def test_student_edition_runs_end_to_end_with_every_exercise_not_done(tmp_path):
    """What students get: every notebook still runs to the end (it goes on with the reference solutions), its
    claims hold, and each exercise is reported as not done."""
    results = render.render(NOTEBOOKS[0].parent, tmp_path, fast=True, student=True, echo=lambda text: None)
    assert [r.notebook for r in results] == [p.name for p in NOTEBOOKS]
    for r in results:
        assert r.ok, f"{r.notebook}: {r.error}"
        assert r.exercises and set(r.exercises.values()) == {"not done"}, (r.notebook, r.exercises)
    handouts = sorted(tmp_path.glob("*.ipynb"))
    assert [p.name for p in handouts] == [p.name for p in NOTEBOOKS]
    assert all(student.SOLUTION_BEGIN not in p.read_text() for p in handouts)
