"""Every course notebook end to end in fast mode, as nbval's lax mode checked it (every cell runs without an error), on
the test session's one shared render of the course (tests/course_build.py): and beyond nbval, every claim holds (or
is left to the full run), every exercise is correct with the instructor's solutions, and the run was in fast mode.

`make nbval` still runs the notebooks under nbval itself (a second runner, not part of `make test`).
"""

from pathlib import Path

import course_build
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
COURSE = sorted((REPO / "notebooks").glob("*.ipynb"))

pytestmark = [pytest.mark.slow, pytest.mark.course_build]


def _errors(nb) -> list[str]:
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue', '')[:300]}")
    return found


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_every_cell_runs_without_an_error(path):
    nb, row = course_build.executed(path)
    assert not _errors(nb), f"{path.name}: {_errors(nb)}"
    assert not row["error"], f"{path.name}: {row['error']}"
    source = nbformat.read(path, as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in source.cells], "the executed copy is another notebook"
    unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip() and not c.execution_count]
    assert not unrun, f"{path.name}: cells {unrun} never ran"


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_every_claim_holds_or_is_left_to_the_full_run(path):
    _, row = course_build.executed(path)
    assert row["mode"] == "fast", f"{path.name} ran in {row['mode']!r} mode"
    assert row["claims"], f"{path.name} checked no claim"
    failed = [line for line in row["claims"] if line.startswith("✗")]
    assert not failed, f"{path.name}: claims that failed:\n" + "\n".join(failed)
    assert row["ok"], f"{path.name}: {row['error']}"


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_every_exercise_is_correct_with_the_instructors_solutions(path):
    _, row = course_build.executed(path)
    assert row["exercises"], f"{path.name} reported no exercise"
    wrong = {name: verdict for name, verdict in row["exercises"].items() if verdict != "correct"}
    assert not wrong, f"{path.name}: {wrong}"
