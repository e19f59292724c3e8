"""Check a lecture claim in the open: print it beside its measured figure, and fail the cell when it does not hold."""

from __future__ import annotations

import math
import operator

_OPS = {"<=": (operator.le, "≤"), "<": (operator.lt, "<"), ">=": (operator.ge, "≥"), ">": (operator.gt, ">")}
MARKS = {"holds": "✓", "fails": "✗", "not checked": "–"}


class ClaimFailed(AssertionError):
    """A claim the notebook makes no longer holds for the measured figure."""


def claim(what: str, value: float, op: str, bound: float, note: str = "", *, check_at_ci_size: bool = True) -> None:
    """Print "✓ what = value op bound"; raise ClaimFailed when it is false (or value is NaN).

    Returns None, so a claim ending a cell leaves no stray Out[n] in the notebook.

    The bound states the lecture's claim in the lecture's direction. A claim that the CI-sized run (fast mode)
    cannot support is passed check_at_ci_size=False: in fast mode it is printed with "–" and the full run's bound,
    visibly not checked, instead of being ticked against a bound that would admit the opposite.

    >>> claim("linear AE error / PCA error", 1.004, "<=", 1.01)   # prints: ✓ linear AE error / PCA error = 1.004 ≤ 1.01
    """
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    compare, symbol = _OPS[op]
    value = float(value)
    if not check_at_ci_size:
        from lecturelib import runtime

        if runtime.fast_mode():
            line = (
                f"{MARKS['not checked']} {what} = {value:.4g}  (not checked at CI size; "
                f"the full run checks {symbol} {bound:.4g}{': ' + note if note else ''})"
            )
            print(line)
            return
    holds = not math.isnan(value) and compare(value, bound)
    line = f"{MARKS['holds' if holds else 'fails']} {what} = {value:.4g} {symbol} {bound:.4g}" + (
        f"  ({note})" if note else ""
    )
    print(line)
    if not holds:
        raise ClaimFailed(line)
