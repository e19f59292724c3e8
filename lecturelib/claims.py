"""Check a lecture claim in the open: print it beside its measured figure, and fail the cell when it does not hold."""
from __future__ import annotations

import math
import operator

_OPS = {"<=": (operator.le, "≤"), "<": (operator.lt, "<"), ">=": (operator.ge, "≥"), ">": (operator.gt, ">")}


class ClaimFailed(AssertionError):
    """A claim the notebook makes no longer holds for the measured figure."""


def claim(what: str, value: float, op: str, bound: float, note: str = "") -> float:
    """Print "what = value op bound ✓" and return value; raise ClaimFailed when it is false (or value is NaN).

    >>> claim("linear AE error / PCA error", 1.004, "<=", 1.01)   # prints: ✓ linear AE error / PCA error = 1.004 ≤ 1.01
    """
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    compare, symbol = _OPS[op]
    value = float(value)
    holds = not math.isnan(value) and compare(value, bound)
    line = f"{'✓' if holds else '✗'} {what} = {value:.4g} {symbol} {bound:.4g}" + (f"  ({note})" if note else "")
    print(line)
    if not holds:
        raise ClaimFailed(line)
    return value
