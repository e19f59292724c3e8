"""Real nbgrader on the course, as an instructor runs it (README, "For instructors"): a course directory with
course/nbgrader_config.py, `nbgrader generate_assignment`, a solved and an unsolved submission, `nbgrader autograde`,
the scores from nbgrader's gradebook, and `nbgrader generate_feedback`. In fast mode, on two of the quickest
notebooks."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import course_build
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin: nbgrader, and alembic, which nbgrader starts by name
GRADED = ("01", "03")  # two of the quickest notebooks in fast mode (tests/test_student_edition.py skips them)
ASSIGNMENT = "autoencoders"
SOLVED, UNSOLVED = "solved", "unsolved"  # the two students
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")

pytestmark = [pytest.mark.slow, pytest.mark.course_build]


def source_notebooks(keys=GRADED, folder: Path = REPO / "notebooks") -> list[Path]:
    return [next(folder.glob(f"{key}_*.ipynb")) for key in keys]


def nbgrader(course: Path, *args: str) -> str:
    """Run `nbgrader <args>` in the course directory, as an instructor would; its output, or a failure with it."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
        "LECTURELIB_FAST": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    env.pop("MPLBACKEND", None)
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True, timeout=3600
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{output[-4000:]}"
    return output


def solve(release, source):
    """The released notebook with the instructor's solutions put back into its solution cells (the marker lines
    dropped), as a student who found them would hand it in."""
    solutions = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in source.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    for cell in release.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            lines = solutions[grade_id].splitlines()
            cell.source = "\n".join(line for line in lines if line.strip() not in MARKERS)
    return release


def grade_course(course: Path, notebooks: list[Path]) -> dict:
    """The whole workflow in `course`: the release, two submissions, autograde, feedback. Returns the scores from
    nbgrader's gradebook: {student: (score, max_score, {notebook: (score, max_score)})}."""
    from nbgrader.api import Gradebook

    shutil.copy(REPO / "course" / "nbgrader_config.py", course / "nbgrader_config.py")
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for path in notebooks:
        shutil.copy(path, source / path.name)
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    for student in (SOLVED, UNSOLVED):
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        for path in notebooks:
            release = nbformat.read(course / "release" / ASSIGNMENT / path.name, as_version=4)
            if student == SOLVED:
                release = solve(release, nbformat.read(path, as_version=4))
            nbformat.write(release, folder / path.name)
    nbgrader(course, "autograde", ASSIGNMENT)
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in (SOLVED, UNSOLVED):
            submission = gradebook.find_submission(ASSIGNMENT, student)
            per_notebook = {nb.name: (nb.score, nb.max_score) for nb in submission.notebooks}
            scores[student] = (submission.score, submission.max_score, per_notebook)
    return scores


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("nbgrader-course")
    notebooks = source_notebooks()
    for path in notebooks:  # after the session's shared render of them: their models are in the checkpoint cache
        course_build.result(path)
    return course, notebooks, grade_course(course, notebooks)


def test_release_has_no_solution_no_hidden_test_no_speaker_note(graded):
    course, notebooks, _ = graded
    for path in notebooks:
        text = (course / "release" / ASSIGNMENT / path.name).read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and ".passed" not in text
        released = nbformat.read(course / "release" / ASSIGNMENT / path.name, as_version=4)
        assert not [c for c in released.cells if "instructor" in c.metadata.get("tags", [])]


def test_solved_submission_scores_full_points(graded):
    _, notebooks, scores = graded
    score, max_score, per_notebook = scores[SOLVED]
    assert set(per_notebook) == {path.stem for path in notebooks}
    for name, (got, most) in per_notebook.items():
        assert most > 0, f"{name} has no graded check cell (convention C5)"
        assert got == most, f"{name}: the instructor's solutions score {got} of {most}"
    assert score == max_score > 0


def test_unsolved_submission_scores_zero_and_runs_to_the_end(graded):
    course, notebooks, scores = graded
    score, max_score, _ = scores[UNSOLVED]
    assert score == 0 and max_score > 0
    for path in notebooks:
        nb = nbformat.read(course / "autograded" / UNSOLVED / ASSIGNMENT / path.name, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert all(cell.execution_count is not None for cell in code), f"{path.name} stopped early"
        for cell in code:  # only the graded checks fail (their hidden `assert ex.<name>.passed`)
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors or cell.metadata["nbgrader"].get("grade"), (path.name, cell.source[:80], errors)


def test_solved_submission_runs_without_an_error(graded):
    course, notebooks, _ = graded
    for path in notebooks:
        nb = nbformat.read(course / "autograded" / SOLVED / ASSIGNMENT / path.name, as_version=4)
        errors = [o.ename for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{path.name}: {errors}"


def test_feedback_reports_are_written(graded):
    course, notebooks, scores = graded
    for student in (SOLVED, UNSOLVED):
        for path in notebooks:
            report = course / "feedback" / student / ASSIGNMENT / f"{path.stem}.html"
            assert report.is_file(), report
            assert "Score" in report.read_text(encoding="utf-8")
