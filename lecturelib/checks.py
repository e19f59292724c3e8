"""Argument checks shared by the library, each written once: a mistake at a public function gets a message that names
the argument and what it should be."""

from __future__ import annotations

import math


def positive_int(value, name: str) -> int:
    """`value` if it is an int >= 1 (not a bool); else ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def finite_number(value, name: str, *, minimum: float | None = None, strict: bool = False) -> float:
    """`value` as a float if it is a finite real number (not a bool), >= minimum (> minimum when strict)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)
