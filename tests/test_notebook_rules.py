"""The course's rules for notebook sources, read from the committed notebooks (no kernel needed).

- Slide metadata that every tool reads the same way: nbformat's slide types only, never "-" (which
  jupyterlab-slideshow hides); a cell that continues a slide has no slide type.
- Plumbing hidden the same way in both decks: tag `hide-input` (nbconvert's TagRemovePreprocessor) if and only if
  `metadata.jupyter.source_hidden` (JupyterLab, so deck mode too). Speaker notes carry the tag `instructor`, which
  the student edition removes.
- A student's attention: no code cell over 30 lines, no markdown cell over 150 words outside the introduction.
- Graded exercises: each solution cell is followed by a locked, autograded check cell with points whose hidden test
  asserts the checker's verdict.
- Words follow measurements: a number in markdown is a setting that the notebook's own code holds, or a value from
  the literature, the lecture or the course's design listed in the notebook's metadata (`course.prose_numbers`)
  with its source.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes"}
MAX_CODE_LINES = 30
MAX_WORDS = 150


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _ids(paths):
    return [p.name[:2] for p in paths]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_slide_types_are_nbformats_own(path):
    bad = [
        (i, cell["metadata"]["slideshow"].get("slide_type"))
        for i, cell in enumerate(_cells(path))
        if "slideshow" in cell["metadata"] and cell["metadata"]["slideshow"].get("slide_type") not in SLIDE_TYPES
    ]
    assert not bad, f"cells with a slide type outside {sorted(SLIDE_TYPES)} (leave it out to continue a slide): {bad}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_hidden_input_is_marked_for_both_decks(path):
    bad = []
    for i, cell in enumerate(_cells(path)):
        tagged = "hide-input" in cell["metadata"].get("tags", [])
        hidden = bool(cell["metadata"].get("jupyter", {}).get("source_hidden"))
        if tagged != hidden:
            bad.append(i)
    assert not bad, f"cells where tag hide-input and jupyter.source_hidden disagree: {bad}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_speaker_notes_are_instructor_only(path):
    cells = _cells(path)
    notes = [i for i, c in enumerate(cells) if c["metadata"].get("slideshow", {}).get("slide_type") == "notes"]
    untagged = [i for i in notes if "instructor" not in cells[i]["metadata"].get("tags", [])]
    assert not untagged, (
        f"speaker-notes cells without the tag 'instructor' (the student edition keeps them): {untagged}"
    )


def _words(markdown: str) -> int:
    text = re.sub(r"\$\$.*?\$\$", " MATH ", markdown, flags=re.S)
    text = re.sub(r"\$[^$]+\$", " MATH ", text)
    return len(text.split())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_cells_are_short(path):
    long_code, long_text = [], []
    for i, cell in enumerate(_cells(path)):
        source = _source(cell)
        if cell["cell_type"] == "code" and len(source.splitlines()) > MAX_CODE_LINES:
            long_code.append((i, len(source.splitlines())))
        if cell["cell_type"] == "markdown" and i > 0 and _words(source) > MAX_WORDS:
            long_text.append((i, _words(source)))
    assert not long_code, f"code cells over {MAX_CODE_LINES} lines (cell, lines): {long_code}"
    assert not long_text, f"markdown cells over {MAX_WORDS} words (cell, words): {long_text}"


HIDDEN_ASSERT = re.compile(r"### BEGIN HIDDEN TESTS\n\s*assert ex\.\w+\.passed\b.*\n\s*### END HIDDEN TESTS", re.S)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_exercise_has_a_graded_check_cell(path):
    cells = _cells(path)
    exercises = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code"
        and c["metadata"].get("nbgrader", {}).get("solution")
        and not re.search(r"^def predict_\w*\(", _source(c), re.M)
    ]
    assert exercises, f"{path.name} has no exercise"
    problems = []
    graded_ids = set()
    for i in exercises:
        check = cells[i + 1] if i + 1 < len(cells) else None
        meta = (check or {}).get("metadata", {}).get("nbgrader", {})
        ok = (
            check is not None
            and check["cell_type"] == "code"
            and meta.get("grade") is True
            and meta.get("locked") is True
            and meta.get("solution") is False
            and (meta.get("points") or 0) > 0
            and HIDDEN_ASSERT.search(_source(check))
        )
        if not ok:
            problems.append(i)
        else:
            graded_ids.add(meta["grade_id"])
    assert not problems, (
        f"solution cells {problems} are not followed by a locked, graded check cell (grade: true, points > 0) "
        f"whose hidden test asserts `ex.<exercise>.passed`"
    )
    all_ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c["metadata"]]
    assert len(all_ids) == len(set(all_ids)), "grade_ids must be unique"


# --- numbers in prose ------------------------------------------------------------------------------------------
SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"
SUPERSCRIPT_RUN = re.compile(f"[{SUPERSCRIPTS}]+")
POWER = re.compile(r"(?<![\w.])(?:(\d+(?:\.\d+)?)\s*(?:\\cdot|·|×|\\times)\s*)?10\s*\^\s*\{?\s*(-?\d+)\s*\}?")
IDENTIFIER = re.compile(
    r"\b(?:[Ee]xercises?|[Qq]uestions?|[Nn]otebooks?|[Ss]ections?|[Ss]lides?|[Cc]ells?|[Ff]igures?|[Tt]ables?"
    r"|[Ee]q\.|[Ee]quations?|[Aa]ppendix|[Cc]hapter|§)\s*"
    r"\d+(?:\.\d+)*(?:\s*(?:[–—-]|,|and|to)\s*\d+(?:\.\d+)*)*"
)
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:[eE]([-+]?\d+))?(?![\w])")


def _code_values(cells: list[dict]) -> set[float]:
    values: set[float] = set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(_source(cell) + "\n").readline))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            tokens = []
        for tok in tokens:
            if tok.type == tokenize.NUMBER:
                try:
                    values.add(float(eval(tok.string.replace("_", ""))))  # noqa: S307 (a numeric literal)
                except (SyntaxError, ValueError, TypeError):
                    pass
    return values


def prose_numbers(markdown: str) -> list[tuple[str, float]]:
    """The numbers a reader sees in a markdown cell, as (text, value): powers of ten written as 10^{-3} or 10⁻³
    are one number; identifiers (exercise 6.2, notebook 05), years, sub- and superscripts and integers up to 10
    are not numbers for this rule."""
    text = SUPERSCRIPT_RUN.sub(
        lambda m: "^{" + m.group(0).translate(str.maketrans(SUPERSCRIPTS, "0123456789-")) + "}", markdown
    ).replace("−", "-")
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    found: list[tuple[str, float]] = []

    def power(m: re.Match) -> str:
        found.append((m.group(0), float(m.group(1) or 1) * 10.0 ** int(m.group(2))))
        return " "

    text = POWER.sub(power, text)
    text = IDENTIFIER.sub(" ", text)
    text = re.sub(r"[_^]\s*\{[^}]*\}|[_^]\s*\d+", " ", text)  # x_1, σ^2, z_{ij}
    text = re.sub(r"\\[a-zA-Z]+\{\d+\}", " ", text)  # \mathbb{1}
    for m in NUMBER.finditer(text):
        whole = m.group(1).replace(",", "")
        value = float(whole + (m.group(2) or "") + (f"e{m.group(3)}" if m.group(3) else ""))
        if m.group(2) is None and m.group(3) is None and value <= 10:
            continue
        if m.group(2) is None and 1950 <= value <= 2030:
            continue
        found.append((m.group(0), value))
    return found


def _matches(value: float, allowed: set[float]) -> bool:
    return any(abs(value - a) <= 1e-9 * max(1.0, abs(a)) for a in allowed) or any(
        abs(value / 100 - a) <= 1e-9 for a in allowed
    )


def unsourced_numbers(path: Path) -> list[tuple[int, str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    listed = nb["metadata"].get("course", {}).get("prose_numbers", {})
    allowed = _code_values(cells) | {float(k.replace(",", "")) for k in listed}
    return [
        (i, text)
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "markdown"
        for text, value in prose_numbers(_source(cell))
        if not _matches(value, allowed)
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_prose_numbers_are_settings_or_sourced(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    listed = nb["metadata"].get("course", {}).get("prose_numbers", {})
    assert all(isinstance(v, str) and len(v) > 5 for v in listed.values()), "each listed number names its source"
    bad = unsourced_numbers(path)
    assert not bad, (
        "numbers in markdown that are neither a setting in the notebook's code nor listed with a source in "
        f"metadata.course.prose_numbers (print measured numbers instead of typing them): {bad}"
    )


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("about 0.65 M parameters", [0.65]),
        ("at d = 16 the KL is near 18 nats: some 10⁸ samples", [16.0, 18.0, 1e8]),
        ("Exercise 6.2 and questions 6.5–6.7 in notebook 05 (Kingma & Welling, 2013)", []),
        ("$\\sigma^2$ and $x_{12}$ and 3 digits", []),
        ("60,000 digits, a floor of $10^{-3}$", [60000.0, 1e-3]),
    ],
)
def test_prose_numbers_reads_what_a_reader_reads(text, values):
    assert sorted(v for _, v in prose_numbers(text)) == sorted(values)
