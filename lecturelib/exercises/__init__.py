"""Exercises with instant feedback: run the student's code on small cases against an independent reference.

Each notebook has a module here (`from lecturelib.exercises import nb06 as ex`) whose exercises check a function the
student writes: `vae_loss = ex.elbo_loss.check(vae_loss)` prints one line and returns the function the notebook
goes on with: the student's when it is right, else the tested reference (so an unfinished exercise never breaks
the rest of the notebook). `ex.vae_loss.passed` is the verdict of the latest check: the hidden test of nbgrader's
graded check cell asserts it. A "predict, then run" question compares a prediction with what the notebook measured.
Neither `check` ever raises, whatever the student's code does: it says what happened and the notebook carries on.

The second half is the feedback core that every checker shares: `call` (the student's function on copies of its
inputs; changing one in place is named), `reseeds` (a random function that ignores the global seed), `no_full_svd`
(memory), `loss_terms` (the contract of `train.fit`) and `compare` (shape, NaN, sign, factor, offset, known mistakes).

Feedback lines start with "Exercise <n>" and end in one of STATUS's words; `render --student` counts them.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

STATUS = {"correct": "✓ correct", "not done": "○ not done yet", "wrong": "✗ not yet right"}
FALLBACK = "the notebook goes on with the reference solution"


class Hint(AssertionError):
    """A mistake the checker recognised; the message says what it is and how to fix it."""


def _say(number: str, title: str, status: str, detail: str = "") -> None:
    print(f"Exercise {number} ({title}): {STATUS[status]}" + (f" — {detail}" if detail else ""))


def _crash(err: BaseException) -> str:
    """`your code raised NameError: name 'b' is not defined`, robust to an exception whose str() fails."""
    try:
        text = next(iter(str(err).strip().splitlines()), "")
    except Exception:  # noqa: BLE001 - a student's exception class may break str()
        text = ""
    return f"your code raised {type(err).__name__}" + (f": {text}" if text else "")


@dataclass
class Exercise:
    """One exercise: `checker(answer)` raises Hint on a recognised mistake; `reference` is what the notebook
    falls back to (the tested library version) when the answer is missing or wrong. `passed` is the verdict of
    the latest `check` (False before any check)."""

    number: str
    title: str
    checker: Callable[[Any], None]
    reference: Any
    passed: bool = field(default=False, init=False)

    def check(self, answer: Any) -> Any:
        """Run the checker on `answer`; print ✓, the hint, or "not done yet"; return what the notebook should use."""
        self.passed, status, detail = False, "wrong", ""
        try:
            # on a fork of the CPU random generator, seeded: the checker's draws are the same on every run, and
            # the notebook draws the same numbers afterwards whatever the student's code did
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self.checker(answer)
            self.passed, status = True, "correct"
        except NotImplementedError:
            status, detail = "not done", f"write it in the cell above; {FALLBACK}"
        except Hint as hint:
            detail = f"{hint} ({FALLBACK})"
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 - the student's code crashed (even sys.exit): say so, go on
            detail = f"{_crash(err)} ({FALLBACK})"
        _say(self.number, self.title, status, detail)
        return answer if self.passed else self.reference


@dataclass
class Question:
    """A "predict, then run" question. `check(predict, truth)` calls the student's predict() (a choice such as "b",
    or a number) and compares it with `truth`, the value the notebook just measured (never a stored answer).
    It prints the verdict and returns None (no stray True/False under the cell); `passed` holds the verdict."""

    number: str
    title: str
    choices: dict[str, str] | None = None  # letter -> text, for multiple choice
    rel_tol: float | None = None  # for a numeric prediction: accepted relative error
    passed: bool = field(default=False, init=False)

    def check(self, predict: Callable[[], Any], truth: Any, why: str = "") -> None:
        self.passed, status = False, "wrong"
        said = f"the measurement says {self._show(truth)}" + (f"; {why}" if why else "")
        try:
            verdict = self._judge(predict(), truth)
        except NotImplementedError:
            status, verdict = "not done", "write your prediction first;"
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 - e.g. `return b` without quotes: NameError
            verdict = f"{_crash(err)} (predict() should return your answer),"
        if verdict is True:
            self.passed, status, verdict = True, "correct", ""
        _say(self.number, self.title, status, f"{verdict} {said}".strip())

    def _judge(self, guess: Any, truth: Any) -> bool | str:
        """True, or what is wrong with the guess."""
        if self.choices is not None:
            letter = str(guess).strip().lower().strip("()")
            if letter not in self.choices:
                return f'answer one of {sorted(self.choices)} (a string such as "a"), got {guess!r};'
            return True if letter == truth else f"you predicted {self._show(letter)},"
        if isinstance(guess, bool) or not isinstance(guess, (int, float, np.number, torch.Tensor, str)):
            return f"predict a number, got {guess!r};"
        try:
            value = float(guess)
        except (TypeError, ValueError, RuntimeError):
            return f"predict a number, got {guess!r};"
        if not math.isfinite(value):
            return f"predict a finite number, got {value};"
        return True if math.isclose(value, float(truth), rel_tol=self.rel_tol or 0.0) else f"you predicted {value:.4g},"

    def _show(self, value: Any) -> str:
        if self.choices is not None and value in self.choices:
            return f"({value}) {self.choices[value]}"
        return f"{value:.4g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------------------------------
# The feedback core: diagnoses every checker shares.
# ------------------------------------------------------------------------------------------------------------------
def _copy(value: Any) -> Any:
    """A copy the student's code may change without touching `value` (tensors keep their autograd link)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (np.ndarray, torch.nn.Module, list, dict, set)):
        return copy.deepcopy(value)
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal values (NaN equals NaN); for modules, equal parameters and buffers."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        a, b = a.detach(), b.detach()
        return a.shape == b.shape and a.dtype == b.dtype and bool(((a == b) | (a.isnan() & b.isnan())).all())
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, torch.nn.Module) and isinstance(b, torch.nn.Module):
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(_same(sa[k], sb[k]) for k in sa)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - values that do not compare: no verdict, assume unchanged
        return True


def _names(fn: Callable, args: tuple, kwargs: dict) -> list[str]:
    """The parameter name of each positional argument (`x` rather than "argument 1") where the signature says."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
        names = list(bound)[: len(args)]
    except (TypeError, ValueError):
        names = []
    return names + [f"argument {i + 1}" for i in range(len(names), len(args))]


def call(fn: Callable, *args: Any, what: str = "your function", may_change: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` on copies of its tensor, array, module and container inputs; a Hint names an input the
    call changed in place (in the notebook that input would be the data set itself, `x_train`). Inputs named in
    `may_change` (a model that training updates) are passed as they are. Exceptions of `fn` propagate."""
    names = _names(fn, args, kwargs)
    pos = [a if n in may_change else _copy(a) for n, a in zip(names, args)]
    kw = {k: v if k in may_change else _copy(v) for k, v in kwargs.items()}
    got = fn(*pos, **kw)
    for name, before, after in [*zip(names, args, pos), *((k, kwargs[k], kw[k]) for k in kwargs)]:
        if name not in may_change and not _same(before, after):
            raise Hint(
                f"{what} changes its input `{name}` in place (an in-place operation such as `-=`, `.sub_()`, or "
                f"writing into it): in the notebook that input is the data itself (x_train), so every later "
                f"result would be wrong; compute on a new tensor instead (`x - mean`, `x.clone()`)"
            )
    return got


def reseeds(fn: Callable, *args: Any, what: str = "your function", **kwargs: Any) -> Any:
    """Run a random `fn` under two different global seeds; the same result both times means it sets a seed itself:
    Hint. Returns the first result. The global random state is left as it was."""
    results = []
    for seed in (1, 2):
        with torch.random.fork_rng(devices=[] if not torch.cuda.is_available() else None):
            state = np.random.get_state()
            torch.manual_seed(seed)
            np.random.seed(seed)
            try:
                results.append(call(fn, *args, what=what, **kwargs))
            finally:
                np.random.set_state(state)
    if _same(results[0], results[1]):
        raise Hint(
            f"{what} gives the same draws under two different seeds: it reseeds inside the function "
            f"(torch.manual_seed or a fixed Generator); remove that line and let the notebook's seed decide"
        )
    return results[0]


def no_full_svd(fn: Callable, *args: Any, what: str = "your function", rows: int = 60_000, **kwargs: Any) -> Any:
    """`call(fn, ...)`, with a Hint when it asks for a full SVD of a tall matrix (memory: the data's `rows`²)."""
    calls, real = [], torch.linalg.svd

    def spy(A, *a, **kw):
        calls.append(tuple(A.shape[-2:]) if kw.get("full_matrices", a[0] if a else True) else None)
        return real(A, *a, **kw)

    torch.linalg.svd = spy
    try:
        got = call(fn, *args, what=what, **kwargs)
    finally:
        torch.linalg.svd = real
    if any(shape and shape[0] != shape[1] for shape in calls):
        raise Hint(
            f"{what}: call torch.linalg.svd(..., full_matrices=False): with the default full_matrices=True the "
            f"notebook's {rows:,} rows would give a {rows:,} × {rows:,} factor ({rows * rows * 4 / 1e9:.0f} GB)"
        )
    return got


def loss_terms(got: Any, keys: tuple[str, ...] | list[str], what: str) -> dict[str, torch.Tensor]:
    """The contract of `train.fit` for a loss function: a dict of named scalar tensors, "loss" among them and
    differentiable. Returns the dict; a Hint names what breaks it (Python floats, .item(), detach, a missing key)."""
    if got is None:
        raise Hint(f"{what} returned None: did you forget `return`?")
    if not isinstance(got, Mapping):
        raise Hint(
            f"{what} should return a dict of named terms ({', '.join(map(repr, keys))}), got {type(got).__name__}"
        )
    missing = [k for k in keys if k not in got]
    if missing:
        raise Hint(f"{what} has no {', '.join(map(repr, missing))} entry: train.fit logs {', '.join(map(repr, keys))}")
    for name, value in got.items():
        if isinstance(value, (int, float, np.number)):
            raise Hint(
                f"{what}'s {name!r} is a Python number ({type(value).__name__}), not a tensor: .item() or float() "
                f"cuts it off the graph; keep tensors (train.fit detaches what it logs)"
            )
        if not isinstance(value, torch.Tensor):
            raise Hint(f"{what}'s {name!r} should be a tensor, got {type(value).__name__}")
        if value.dim() != 0:
            raise Hint(f"{what}'s {name!r} has shape {tuple(value.shape)}: reduce it to a scalar (the batch mean)")
    if not got["loss"].requires_grad:
        raise Hint(
            f"{what}'s 'loss' carries no gradient: it was detached (.detach(), .item(), .data, torch.no_grad()), "
            f"so training could not learn from it"
        )
    return dict(got)


def as_tensor(got: Any, what: str) -> torch.Tensor:
    """The student's result as a tensor, or a Hint saying what came back instead."""
    if got is None:
        raise Hint(f"{what} returned None: did you forget `return`?")
    if isinstance(got, (int, float, np.number)) and not isinstance(got, bool):
        return torch.tensor(float(got))
    if not isinstance(got, torch.Tensor):
        raise Hint(f"{what} should return a tensor, got {type(got).__name__}")
    return got


def _factor_name(ratio: float, per_image: int | None, batch: int | None) -> str | None:
    """Say which usual slip a ratio got/want is, or None."""
    named = {2.0: "twice the reference: a 1/2 missing?", 0.5: "half the reference: a 1/2 too many, or σ² for σ?"}
    if per_image:
        named[1 / per_image] = f"per pixel (a mean over the {per_image} pixels); expected per image (a sum)"
        named[float(per_image)] = f"summed over the {per_image} pixels; expected the mean per pixel"
    if batch:
        named[float(batch)] = f"summed over the batch of {batch}; expected the mean over the batch"
        named[1 / batch] = "averaged over the batch; expected the sum"
    for value, text in named.items():
        if math.isclose(ratio, value, rel_tol=1e-4):
            return text
    return None


def compare(
    got: Any,
    want: torch.Tensor,
    what: str,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    per_image: int | None = None,
    batch: int | None = None,
    known: Mapping[str, Any] | None = None,
) -> None:
    """Raise a Hint naming the mistake when `got` differs from `want`: shape, NaN, sign, a factor (2, 1/2, per
    pixel instead of per image when `per_image` is the pixel count, summed instead of averaged over a `batch`; for
    scalars too), a constant offset, or one of the `known` mistakes ({"what the slip is": the value it gives}).
    Returns quietly when they agree."""
    got = as_tensor(got, what).detach().to(want.device, torch.float64)
    want = torch.as_tensor(want).detach().to(torch.float64)
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
    for slip, value in (known or {}).items():
        if close(got, torch.as_tensor(value).detach().to(want.device, torch.float64).expand_as(want)):
            raise Hint(f"{what}: {slip}")
    if close(-got, want):
        raise Hint(f"{what} has the wrong sign")
    nonzero = want.abs() > atol
    if nonzero.any() and close(got, want * (got[nonzero] / want[nonzero]).mean()):  # a constant ratio
        factor = (got[nonzero] / want[nonzero]).mean().item()
        named = _factor_name(factor, per_image, batch)
        if named or nonzero.sum() > 1:  # one number always has some ratio: only a usual one says something
            raise Hint(
                f"{what} is {named}" if named else f"{what} is off by a factor {factor:.4g}: a wrong normaliser?"
            )
    offset = (got - want).flatten()
    if offset.numel() > 1 and offset.std() < atol + rtol * want.abs().max() and offset.abs().mean() > atol:
        raise Hint(f"{what} is off by a constant ({offset.mean().item():+.4g}): a missing term or normaliser?")
    worst = (got - want).abs().max().item()
    if got.numel() == 1:
        raise Hint(f"{what} is {got.item():.5g}, expected {want.item():.5g}")
    raise Hint(f"{what} differs from the reference (largest difference {worst:.3g})")
