"""One training loop for every model in the course: `fit`, with progress bar, history, evaluation, NaN guard.

`fit(model, loss_fn, train, epochs=...)` takes a loss function returning a dict of named scalar terms (the key
"loss" is minimised, every term is logged), keeps the data on the model's device and slices mini-batches there,
evaluates on a held-out split each epoch, and prints one line when it is done. With `checkpoint="name"` the trained
model is cached and loaded next time instead of retrained, when nothing that shaped the training changed
(lecturelib.cachekey says exactly what that covers).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from lecturelib import cachekey, checkpoints
from lecturelib.checks import finite_number, positive_int
from lecturelib.data import Batches

SCHEDULES = ("constant", "onecycle")
CHECK_EVERY = 50  # steps between NaN checks: one host sync per check, not per step
LossFn = Callable[[nn.Module, object], dict]


class TrainingDiverged(FloatingPointError):
    """The loss or the weights became NaN or infinite; the model was put back to its last finite weights."""


@dataclass
class History:
    """Per-epoch means of every logged term, on the training data and on the held-out split."""

    train: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.seconds)

    def log(self, split: str, terms: dict[str, float]) -> None:
        for name, value in terms.items():
            getattr(self, split).setdefault(name, []).append(float(value))

    def to_dict(self) -> dict:
        return {"train": self.train, "test": self.test, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(train=dict(d["train"]), test=dict(d["test"]), seconds=list(d["seconds"]))


# ---------------------------------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    test=None,
    schedule: str = "onecycle",
    weight_decay: float = 0.0,
    checkpoint: str | None = None,
    key: str | None = None,
    label: str | None = None,
    progress: bool = True,
) -> History:
    """Train `model` in place with Adam and return its History; print one line when done (trained or loaded).

    loss_fn(model, batch) -> {"loss": scalar to minimise, other named scalar terms to log}; batch is a tensor
        (or a tuple when `train` is a tuple such as (images, labels)), already on the model's device.
    train, test: tensor (N, ...) or tuple of tensors; moved to the model's device once.
    schedule: "onecycle" (warm-up to lr, then anneal: best for short budgets) or "constant".
    checkpoint: a name; the trained model is cached under runtime.checkpoint_dir() and loaded instead of retrained
        when nothing that shaped the training changed (lecturelib.cachekey lists what the key covers).
    key: with `checkpoint`, a name of your own for the run instead of the inferred key (you answer for its staying
        true: change it when the run changes).
    label: what the progress bar and the final line call the run (default: `checkpoint`, else the model's class).
    Raises TrainingDiverged (weights restored to the last finite ones) if the loss or weights become NaN or inf.
    """
    _check_settings(epochs, batch_size, lr, schedule, weight_decay)
    train_t = _as_tuple(train, "train")
    device, dtype = _device_and_dtype(model)
    _check_data(train_t, "train", dtype)
    test_t = None if test is None else _as_tuple(test, "test")
    if test_t is not None:
        _check_data(test_t, "test", dtype)
    if key is not None and checkpoint is None:
        raise ValueError("key names a cached run: pass checkpoint='<name>' with it")
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "schedule": schedule,
        "weight_decay": weight_decay,
    }
    label = label or checkpoint or type(model).__name__
    path, why = None, ""
    if checkpoint is not None:
        try:
            digest = cachekey.given_key(key) if key is not None else None
            digest = digest or cachekey.cache_key(model, loss_fn, train_t, test_t, settings)
            path = checkpoints.cached_path(checkpoint, digest)
        except cachekey.NotDescribable as err:
            why = f"not cached: {err}; pass key='...' to name the run yourself"
    # while this process looks the model up and trains it, another one after the very same model waits, then loads it
    with checkpoints.training_lock(path, label):
        if path is not None:
            stored, why = checkpoints.lookup(path, model)
            if stored is not None:
                history = History.from_dict(stored)
                # why it is the same model is said once, in the setup line (runtime.setup)
                how = f"from the cache, key {key!r}" if key is not None else "from the cache"
                print(_finished(label, history, how))
                return history
        history = _train(model, loss_fn, train_t, test_t, device, settings, label, progress)
        if path is not None:
            why = _save(path, model, history, label) or why
    print(_finished(label, history, "trained" + (f"; {why}" if why else "")))
    return history


def _train(model, loss_fn, train_t, test_t, device, settings, label, progress) -> History:
    """Train on a fork of the random generators, so that what the notebook draws next is the same whether the model
    was trained now or loaded from the cache."""
    epochs, lr = settings["epochs"], settings["lr"]
    train_t = tuple(t.to(device) for t in train_t)
    batches = Batches(*train_t, batch_size=settings["batch_size"], shuffle=True)
    optimizer = _adam(model, lr, settings["weight_decay"])
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(batches))
        if settings["schedule"] == "onecycle"
        else None
    )
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        return _loop(model, loss_fn, batches, test_t, optimizer, scheduler, epochs, label, progress)


def _finished(label: str, history: History, how: str) -> str:
    """The one line a training prints: "VAE d=20: 60 epochs in 121.3 s, loss 98.12, test loss 99.01 (trained)"."""
    n = history.epochs
    line = f"{label}: {n} epoch{'' if n == 1 else 's'} in {sum(history.seconds):.1f} s"
    for split, prefix in ((history.train, ""), (history.test, "test ")):
        if "loss" in split:
            line += f", {prefix}loss {split['loss'][-1]:.4g}"
    return f"{line} ({how})"


def _save(path, model: nn.Module, history: History, label: str) -> str:
    """Cache the trained model; "" when saved, else why not (the model and its history stay in memory)."""
    try:
        checkpoints.save_checkpoint(path, model, history)
    except OSError as err:
        warnings.warn(
            f"{label}: could not cache the trained model in {path.parent} ({err.strerror or err}); the model and its "
            f"history are kept in memory. Set LECTURELIB_CHECKPOINTS to a writable folder to cache it.",
            stacklevel=3,
        )
        return "not cached: the cache folder is not writable"
    return ""


def _loop(model, loss_fn, batches, test, optimizer, scheduler, epochs, label, progress) -> History:
    """The loop itself: per step forward, backward, Adam step; per epoch the means, the test terms, the NaN guard."""
    history, steps = History(), len(batches)
    device = next(model.parameters()).device
    bar = _progress(epochs, label, progress)
    last_good = _snapshot(model)
    model.train()
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            sums: dict[str, torch.Tensor] = {}
            finite = torch.ones(steps, dtype=torch.bool, device=device)
            for step, batch in enumerate(batches, start=1):
                terms = loss_fn(model, batch)
                _check_terms(terms)
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                finite[step - 1] = torch.isfinite(terms["loss"].detach())
                for name, value in terms.items():
                    sums[name] = sums[name] + value.detach() if name in sums else value.detach().clone()
                if step % CHECK_EVERY == 0 or step == steps:
                    _guard(model, finite[:step], last_good, epoch)
            last_good = _snapshot(model)  # finite: the guard just checked the weights
            history.log("train", {name: float(total) / steps for name, total in sums.items()})
            if test is not None:
                history.log("test", evaluate(model, loss_fn, test))
            history.seconds.append(time.perf_counter() - start)
            bar.set_postfix(_postfix(history))
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted during epoch {history.epochs + 1}: the model keeps its current weights, nothing was cached")
        raise
    bar.close()
    return history


def _adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per step on CPU and CUDA (the same update rule; one pass over the weights instead
    of several: about 15 % off a CPU epoch of the course's VAE at batch 128, docs/benchmarks.md)."""
    device = next(model.parameters()).device
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=device.type in ("cpu", "cuda"))


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _guard(model: nn.Module, finite: torch.Tensor, last_good: dict, epoch: int) -> None:
    """Stop if a loss so far this epoch, or any weight, is NaN/inf, restoring the last finite weights.

    The weights are checked too: one step with a huge learning rate can leave a finite loss and infinite weights.
    """
    losses_ok = bool(finite.all())
    if losses_ok and checkpoints.all_finite(model.parameters()):
        return
    where = (
        f"the loss became NaN or infinite at epoch {epoch}, step {int((~finite).nonzero()[0]) + 1}"
        if not losses_ok
        else f"the weights became NaN or infinite in epoch {epoch} (by step {len(finite)})"
    )
    model.load_state_dict(last_good)
    raise TrainingDiverged(
        f"{where}; the model was restored "
        f"to its weights {'before training' if epoch == 1 else f'at the end of epoch {epoch - 1}'}, and nothing "
        f"was cached. Try a smaller learning rate, or check the inputs and the loss for log(0) or division by zero."
    )


@torch.inference_mode()
def evaluate(model: nn.Module, loss_fn: LossFn, data, batch_size: int = 1000) -> dict[str, float]:
    """Mean of each term of loss_fn over `data` (tensor or tuple), in eval mode, without gradients."""
    tensors = _as_tuple(data, "data")
    device = next(model.parameters()).device
    tensors = tuple(t.to(device) for t in tensors)
    was_training = model.training
    model.eval()
    sums, n = {}, 0
    for batch in Batches(*tensors, batch_size=batch_size, shuffle=False):
        size = len(batch[0] if isinstance(batch, tuple) else batch)
        for name, value in loss_fn(model, batch).items():
            sums[name] = sums.get(name, 0.0) + value.detach() * size
        n += size
    model.train(was_training)
    return {name: float(total) / n for name, total in sums.items()}


# ---------------------------------------------------------------------------------------------------------------
# Argument checks: every mistake gets a message that names the argument and the fix
# ---------------------------------------------------------------------------------------------------------------
def _check_settings(epochs, batch_size, lr, schedule, weight_decay) -> None:
    positive_int(epochs, "epochs")
    positive_int(batch_size, "batch_size")
    finite_number(lr, "lr", minimum=0, strict=True)
    finite_number(weight_decay, "weight_decay", minimum=0)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def _as_tuple(data, name: str) -> tuple[torch.Tensor, ...]:
    data = data if isinstance(data, (tuple, list)) else (data,)
    if not data or not all(isinstance(t, torch.Tensor) for t in data):
        raise TypeError(
            f"{name} must be a tensor or a tuple of tensors with the same first dimension, "
            f"got {type(data[0]).__name__ if data else 'an empty tuple'}"
        )
    return tuple(data)


def _device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    first = next(iter(model.parameters()), None)
    if first is None:
        raise ValueError(f"the model {type(model).__name__} has no parameters to train")
    return first.device, first.dtype


def _check_data(tensors: tuple[torch.Tensor, ...], name: str, dtype: torch.dtype) -> None:
    if len(tensors[0]) == 0:
        raise ValueError(f"{name} has 0 examples: nothing to train on (check the data loading or `limit`)")
    if len({len(t) for t in tensors}) > 1:
        raise ValueError(f"the tensors of {name} must have the same first dimension, got {[len(t) for t in tensors]}")
    x = tensors[0]
    if x.is_floating_point() and x.dtype != dtype:
        raise TypeError(
            f"{name} is {x.dtype} but the model's weights are {dtype}: convert the data with "
            f"`.to({dtype})` (data.load_mnist returns {torch.float32})"
        )


def _check_terms(terms) -> None:
    if not isinstance(terms, dict) or "loss" not in terms:
        got = sorted(terms) if isinstance(terms, dict) else type(terms).__name__
        raise ValueError(
            f"loss_fn must return a dict with a 'loss' entry (the scalar to minimise) and any other "
            f"named terms to log, got {got}"
        )
    if terms["loss"].dim() != 0:
        raise ValueError(
            f"loss_fn's 'loss' must be a scalar (reduce over the batch), got shape {tuple(terms['loss'].shape)}"
        )


def _postfix(history: History) -> dict[str, str]:
    """The bar's postfix: the training and test loss only (every term is in the summary line at the end), so
    that the bar fits one line beside a notebook's file browser."""
    post = {"loss": f"{history.train['loss'][-1]:.4g}"}
    if "loss" in history.test:
        post["test"] = f"{history.test['loss'][-1]:.4g}"
    return post


def _progress(total: int, desc: str, enabled: bool):
    """A live tqdm bar (a widget in Jupyter). TQDM_DISABLE=1 in the environment turns it off (as for a static
    export, where a bar would stay frozen at its first state); fit's final line is printed either way."""
    from tqdm.auto import tqdm

    off = {} if enabled else {"disable": True}  # not passing disable lets tqdm read TQDM_DISABLE
    return tqdm(total=total, desc=desc, unit="epoch", leave=True, dynamic_ncols=True, **off)
