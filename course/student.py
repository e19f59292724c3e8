"""The editions made from the instructor notebooks, with nbgrader's and nbconvert's own preprocessors.

- `student_edition(nb)`: what students get. nbgrader's ClearSolutions (each `### BEGIN SOLUTION` region becomes
  `# YOUR CODE HERE` / `raise NotImplementedError()`), ClearHiddenTests (the graded checks' `assert ex.<name>.passed`),
  ClearMarkScheme and LockCells (graded check cells read-only), nbconvert's TagRemovePreprocessor (cells tagged
  `instructor`: the speaker notes) and ClearOutputPreprocessor. This is what `nbgrader generate_assignment` releases,
  less the speaker notes.
- `presenter_edition(nb)`: what the class sees. The same, but the `instructor` notes stay (reveal.js's and
  JupyterLab's speaker view show them) and, for an executed notebook, the outputs stay, except those of the solution
  and check cells (a solution's output, a verdict, "the measurement says (b)"). The static decks are built from it,
  and `make present` opens its copies in build/present.
- `solutions_edition(nb)`: the instructor's deck of answers, to show a solution on demand: one slide per exercise
  or question (its solution, then the check's verdict as a fragment), from the executed instructor notebook.
"""

from __future__ import annotations

import copy
import re

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"  # nbgrader's markers (convention C5)
INSTRUCTOR_TAG = "instructor"  # speaker notes and other instructor-only cells (convention C4)
HIDE_INPUT_TAG = "hide-input"  # a cell whose output is shown on slides without its code (convention C3)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _preprocess(nb, *, notes: bool, outputs: bool):
    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearSolutions, LockCells

    nb = copy.deepcopy(nb)
    steps = [ClearSolutions(), ClearHiddenTests(), ClearMarkScheme(), LockCells()]
    if not notes:
        steps.append(TagRemovePreprocessor(remove_cell_tags={INSTRUCTOR_TAG}))
    if not outputs:
        steps.append(ClearOutputPreprocessor())
    resources: dict = {}
    for step in steps:
        nb, resources = step.preprocess(nb, resources)
    return nb


def student_edition(nb):
    """The student's copy of an instructor notebook: no solutions, no hidden tests, no `instructor` cells, no
    outputs; graded check cells locked."""
    return _preprocess(nb, notes=False, outputs=False)


def presenter_edition(nb, *, outputs: bool = True):
    """The copy the class sees: the student edition's cells plus the `instructor` speaker notes; an executed
    notebook keeps its outputs (`outputs=False` clears them all), except those of nbgrader's solution and check
    cells, which would show an answer."""
    nb = _preprocess(nb, notes=True, outputs=outputs)
    for cell in nb.cells:
        if cell.cell_type == "code" and _nbgrader(cell):
            cell.outputs, cell.execution_count = [], None
    return nb


def _key(grade_id: str) -> str:
    """The exercise a cell belongs to: "06-ex3" for "06-ex3-vae-loss" and "06-ex3-check"."""
    return "-".join(grade_id.split("-")[:2])


def _title(key: str) -> str:
    """ "Exercise 6.3" for "06-ex3", "Question 6.5" for "06-q5"."""
    match = re.fullmatch(r"(\d+)-(ex|q)(\d+)", key)
    if not match:
        return key
    return f"{'Exercise' if match[2] == 'ex' else 'Question'} {int(match[1])}.{match[3]}"


def solutions_edition(nb):
    """A deck of the instructor's answers from an (executed) instructor notebook: a title slide, then per exercise
    and question a slide with its solution cell(s) and, as a fragment, the output of its check cell (code hidden,
    hidden tests removed). Speaker notes and everything else are left out."""
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbformat.v4 import new_markdown_cell
    from nbgrader.preprocessors import ClearHiddenTests

    nb = copy.deepcopy(nb)
    title = next((c.source.splitlines()[0].lstrip("# ") for c in nb.cells if c.cell_type == "markdown"), "")
    cells = [new_markdown_cell(f"# Solutions\n\n{title}", metadata={"slideshow": {"slide_type": "slide"}})]
    order, solutions, checks = [], {}, {}
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if not meta.get("grade_id"):
            continue
        key = _key(meta["grade_id"])
        if key not in order:
            order.append(key)
        if meta.get("solution"):
            solutions.setdefault(key, []).append(cell)
        elif cell.cell_type == "code":
            checks.setdefault(key, []).append(cell)
    for key in order:
        if key not in solutions:
            continue
        cells.append(new_markdown_cell(f"## {_title(key)}", metadata={"slideshow": {"slide_type": "slide"}}))
        for cell in solutions[key]:
            cell.metadata["slideshow"] = {}
            cells.append(cell)
        for i, cell in enumerate(checks.get(key, [])):
            cell.metadata["slideshow"] = {"slide_type": "fragment"} if i == 0 else {}
            cell.metadata["tags"] = sorted(set(cell.metadata.get("tags", [])) | {HIDE_INPUT_TAG})
            cells.append(cell)
    nb.cells = cells
    nb, resources = ClearHiddenTests().preprocess(nb, {})
    nb, _ = TagRemovePreprocessor(remove_cell_tags={INSTRUCTOR_TAG}).preprocess(nb, resources)
    return nb
