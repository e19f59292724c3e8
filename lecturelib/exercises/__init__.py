"""Exercises with instant feedback: run the student's code on small cases against an independent reference.

Each notebook has a module here (`from lecturelib.exercises import nb06 as ex`) whose exercises check a function the
student writes: `vae_loss = ex.elbo_loss.check(vae_loss)` prints one line and returns the function the notebook
goes on with: the student's when it is right, else the tested reference (so an unfinished exercise never breaks
the rest of the notebook). A "predict, then run" question compares a prediction with what the notebook measured.

Feedback lines start with "Exercise <n>" and end in one of STATUS's words; `render --student` counts them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

STATUS = {"correct": "✓ correct", "not done": "○ not done yet", "wrong": "✗ not yet right"}


class Hint(AssertionError):
    """A mistake the checker recognised; the message says what it is and how to fix it."""


def _say(number: str, title: str, status: str, detail: str = "") -> None:
    print(f"Exercise {number} ({title}): {STATUS[status]}" + (f" — {detail}" if detail else ""))


@dataclass
class Exercise:
    """One exercise: `checker(answer)` raises Hint on a recognised mistake; `reference` is what the notebook
    falls back to (the tested library version) when the answer is missing or wrong."""

    number: str
    title: str
    checker: Callable[[Any], None]
    reference: Any

    def check(self, answer: Any) -> Any:
        """Run the checker on `answer`; print ✓, the hint, or "not done yet"; return what the notebook should use."""
        fallback = "the notebook goes on with the reference solution"
        try:
            # on a fork of the CPU random generator, seeded: the checker's draws are the same on every run, and
            # the notebook draws the same numbers afterwards whatever the student's code did
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self.checker(answer)
        except NotImplementedError:
            _say(self.number, self.title, "not done", f"write it in the cell above; {fallback}")
            return self.reference
        except Hint as hint:
            _say(self.number, self.title, "wrong", f"{hint} ({fallback})")
            return self.reference
        except Exception as err:  # the student's code crashed: say where, keep the notebook going
            _say(
                self.number,
                self.title,
                "wrong",
                f"your code raised {type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                f" ({fallback})",
            )
            return self.reference
        _say(self.number, self.title, "correct")
        return answer


@dataclass
class Question:
    """A "predict, then run" question. `check(predict, truth)` calls the student's predict() (a choice such as "b",
    or a number) and compares it with `truth`, the value the notebook just measured (never a stored answer)."""

    number: str
    title: str
    choices: dict[str, str] | None = None  # letter -> text, for multiple choice
    rel_tol: float | None = None  # for a numeric prediction: accepted relative error

    def check(self, predict: Callable[[], Any], truth: Any, why: str = "") -> bool:
        try:
            guess = predict()
        except NotImplementedError:
            _say(
                self.number,
                self.title,
                "not done",
                f"write your prediction first; the measurement says {self._show(truth)}",
            )
            return False
        if self.choices is not None:
            guess = str(guess).strip().lower()
            if guess not in self.choices:
                _say(self.number, self.title, "wrong", f"answer one of {sorted(self.choices)}, got {guess!r}")
                return False
            right = guess == truth
        else:
            try:
                guess = float(guess)
            except (TypeError, ValueError):
                _say(self.number, self.title, "wrong", f"predict a number, got {guess!r}")
                return False
            right = math.isclose(guess, float(truth), rel_tol=self.rel_tol or 0.0)
        if right:
            _say(
                self.number,
                self.title,
                "correct",
                f"the measurement says {self._show(truth)}" + (f"; {why}" if why else ""),
            )
        else:
            _say(
                self.number,
                self.title,
                "wrong",
                f"you predicted {self._show(guess)}, the measurement says {self._show(truth)}"
                + (f"; {why}" if why else ""),
            )
        return right

    def _show(self, value: Any) -> str:
        if self.choices is not None and value in self.choices:
            return f"({value}) {self.choices[value]}"
        return f"{value:.4g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------------------------------
# Diagnosis helpers for checkers: compare a student's tensor with the reference and name the usual mistakes.
# ------------------------------------------------------------------------------------------------------------------
def as_tensor(got: Any, what: str) -> torch.Tensor:
    """The student's result as a tensor, or a Hint saying what came back instead."""
    if got is None:
        raise Hint(f"{what} returned None: did you forget `return`?")
    if isinstance(got, (int, float)):
        return torch.tensor(float(got))
    if not isinstance(got, torch.Tensor):
        raise Hint(f"{what} should return a tensor, got {type(got).__name__}")
    return got


def compare(
    got: Any,
    want: torch.Tensor,
    what: str,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    per_image: int | None = None,
    batch: int | None = None,
) -> None:
    """Raise a Hint naming the mistake when `got` differs from `want`: shape, sign, a constant offset, a factor
    (per-pixel instead of per-image when `per_image` is the pixel count; summed instead of averaged over a batch of
    `batch`), or NaN. Returns quietly when they agree."""
    got = as_tensor(got, what).detach().to(want.device, torch.float64)
    want = want.detach().to(torch.float64)
    if got.shape != want.shape:
        if got.numel() == 1 and want.numel() > 1:
            raise Hint(
                f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}: one value per example, "
                f"not reduced over the batch"
            )
        if want.numel() == 1 and got.numel() > 1:
            raise Hint(f"{what} has shape {tuple(got.shape)}, expected a scalar: reduce over the batch")
        raise Hint(f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    if not torch.isfinite(got).all():
        raise Hint(f"{what} contains NaN or infinity (log of 0? exp of a large number?)")
    close = lambda a, b: torch.allclose(a, b, atol=atol, rtol=rtol)  # noqa: E731
    if close(got, want):
        return
    if close(-got, want):
        raise Hint(f"{what} has the wrong sign")
    if per_image and close(got * per_image, want):
        raise Hint(f"{what} is per pixel (a mean over the {per_image} pixels); expected per image (a sum)")
    if batch and close(got / batch, want):
        raise Hint(f"{what} is summed over the batch of {batch}; expected the mean over the batch")
    if batch and close(got * batch, want):
        raise Hint(f"{what} is averaged over the batch; expected the sum")
    offset = (got - want).flatten()
    if offset.numel() > 1 and offset.std() < atol + rtol * want.abs().max() and offset.abs().mean() > atol:
        raise Hint(f"{what} is off by a constant ({offset.mean().item():+.4g}): a missing term or normaliser?")
    if want.abs().max() > 0:
        ratio = got.flatten() / want.flatten()
        if ratio.numel() > 1 and torch.isfinite(ratio).all() and ratio.std() < 1e-4 * ratio.abs().mean():
            raise Hint(f"{what} is off by a factor {ratio.mean().item():.4g}: a missing 1/2, or a wrong normaliser?")
    worst = (got - want).abs().max().item()
    raise Hint(f"{what} differs from the reference (largest difference {worst:.3g})")
