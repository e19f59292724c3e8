"""The student edition: every solution region replaced by nbgrader's stub, no outputs."""

from __future__ import annotations

import copy

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB, ANSWER_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()"), "YOUR ANSWER HERE"


def strip_solutions(source: str, cell_type: str) -> str:
    """nbgrader's ClearSolutions: each `### BEGIN SOLUTION` ... `### END SOLUTION` region of a code cell becomes
    `# YOUR CODE HERE` / `raise NotImplementedError()` at the marker's indentation; in a markdown cell the region
    (to `### END SOLUTION` or the end of the cell) becomes `YOUR ANSWER HERE`."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == SOLUTION_BEGIN:
            if inside:
                raise ValueError(f"nested {SOLUTION_BEGIN} in:\n{source}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + stub for stub in CODE_STUB) if cell_type == "code" else out.append(ANSWER_STUB)
        elif stripped == SOLUTION_END:
            if not inside:
                raise ValueError(f"{SOLUTION_END} without {SOLUTION_BEGIN} in:\n{source}")
            inside = False
        elif not inside:
            out.append(line)
    if inside and cell_type == "code":
        raise ValueError(f"{SOLUTION_BEGIN} without {SOLUTION_END} in a code cell:\n{source}")
    return "\n".join(out)


def student_edition(nb):
    """A copy of an instructor notebook with every solution region replaced by its stub and no outputs."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type in ("code", "markdown") and SOLUTION_BEGIN in cell.source:
            cell.source = strip_solutions(cell.source, cell.cell_type)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb
