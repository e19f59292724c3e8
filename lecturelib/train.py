"""One training loop for every model in the course: `fit`, with progress bar, history, evaluation, cache, NaN guard.

`fit(model, loss_fn, train, epochs=...)` takes a loss function returning a dict of named scalar terms (the key
"loss" is minimised, every term is logged), keeps the data on the model's device and slices mini-batches there,
evaluates on a held-out split each epoch, and can cache the trained weights in an atomically written checkpoint.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import marshal
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from lecturelib.data import Batches
from lecturelib.models import build

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
CHECKPOINT_FORMAT = 1
SCHEDULES = ("constant", "onecycle")
LossFn = Callable[[nn.Module, object], dict]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the model was put back to its last good weights."""


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt, or was written for another model or run."""


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
    def from_dict(cls, d: dict) -> "History":
        return cls(train=dict(d["train"]), test=dict(d["test"]), seconds=list(d["seconds"]))


def checkpoint_dir() -> Path:
    """Where cached models live: $LECTURELIB_CHECKPOINTS, else the course's checkpoints/ folder (git-ignored)."""
    return Path(os.environ.get("LECTURELIB_CHECKPOINTS", CHECKPOINT_DIR))


def save_checkpoint(path: str | Path, model: nn.Module, history: History | None = None,
                    key: dict | None = None) -> Path:
    """Write the model's settings, weights and history to `path` atomically (temp file, fsync, rename).

    An interrupted save leaves the previous file (if any) in place, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": type(model).__name__,
        "config": getattr(model, "config", {}),
        "key": json.dumps(key or {}, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history.to_dict() if history is not None else None,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, model: nn.Module | None = None, key: dict | None = None):
    """Load a checkpoint safely (weights_only=True: no pickled code runs) and return (model, history).

    With `model`, its class and config must match the file's, and the weights are loaded into it; without, the
    model is rebuilt from the stored config. With `key`, the stored training settings must match too.
    Raises CheckpointError with the reason on any mismatch or damage.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt?): {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a lecturelib checkpoint of format {CHECKPOINT_FORMAT}")
    if model is None:
        model = build(payload["model"], payload["config"])
    elif payload["model"] != type(model).__name__ or payload["config"] != getattr(model, "config", {}):
        raise CheckpointError(f"{path} holds a {payload['model']}{payload['config']}, "
                              f"not a {type(model).__name__}{getattr(model, 'config', {})}")
    if key is not None and payload["key"] != json.dumps(key, sort_keys=True):
        raise CheckpointError(f"{path} was trained with other settings or data")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not fit the model: {err}") from err
    history = History.from_dict(payload["history"]) if payload["history"] else None
    return model, history


def _as_tuple(data) -> tuple[torch.Tensor, ...]:
    data = data if isinstance(data, (tuple, list)) else (data,)
    if not data or not all(isinstance(t, torch.Tensor) for t in data):
        raise TypeError("data must be a tensor or a tuple of tensors with the same first dimension")
    return tuple(data)


def _fingerprint(tensors: tuple[torch.Tensor, ...]) -> list:
    """Shapes and sums of the training tensors: enough to tell one data set (or subset) from another."""
    return [[list(t.shape), str(t.dtype), round(float(t.double().sum()), 3)] for t in tensors]


def _source(fn: Callable) -> str:
    """The function's source, or its compiled bytecode where the source is not available (e.g. exec)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        return marshal.dumps(code).hex() if code is not None else ""


def _loss_id(loss_fn: Callable) -> str:
    """The loss's name and a hash of its source and of the module-level functions it calls (e.g. a corruption),
    so that editing either in a notebook retrains instead of reloading a stale cached model."""
    sources = [_source(loss_fn)]
    names = getattr(getattr(loss_fn, "__code__", None), "co_names", ())
    for name in sorted(set(names)):
        helper = getattr(loss_fn, "__globals__", {}).get(name)
        if inspect.isfunction(helper):
            sources.append(_source(helper))
    digest = hashlib.sha256("\n".join(sources).encode()).hexdigest()[:12]
    return f"{getattr(loss_fn, '__qualname__', repr(loss_fn))}:{digest}"


@torch.inference_mode()
def evaluate(model: nn.Module, loss_fn: LossFn, data, batch_size: int = 1000) -> dict[str, float]:
    """Mean of each term of loss_fn over `data` (tensor or tuple), in eval mode, without gradients."""
    tensors = _as_tuple(data)
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


def fit(model: nn.Module, loss_fn: LossFn, train, *, epochs: int, batch_size: int = 128, lr: float = 1e-3,
        test=None, schedule: str = "onecycle", weight_decay: float = 0.0, checkpoint: str | None = None,
        progress: bool = True, check_every: int = 50) -> History:
    """Train `model` in place with Adam and return its History.

    loss_fn(model, batch) -> {"loss": scalar to minimise, other named scalar terms to log}; batch is a tensor
        (or a tuple when `train` is a tuple such as (images, labels)), already on the model's device.
    train, test: tensor (N, ...) or tuple of tensors; moved to the model's device once.
    schedule: "onecycle" (warm-up to lr, then anneal: best for short budgets) or "constant".
    checkpoint: a name; the trained weights are cached under checkpoints/ and reused when the model, data and
        settings are the same, instead of retraining.
    Raises TrainingDiverged (weights restored to the last good epoch) if the loss becomes NaN or infinite.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    train_t = _as_tuple(train)
    device = next(model.parameters()).device
    key = None
    if checkpoint is not None:
        key = {"model": type(model).__name__, "config": getattr(model, "config", {}), "layers": repr(model),
               "loss": _loss_id(loss_fn),
               "epochs": epochs, "batch_size": batch_size, "lr": lr, "schedule": schedule,
               "weight_decay": weight_decay, "data": _fingerprint(train_t)}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
        path = checkpoint_dir() / f"{checkpoint}-{digest}.pt"
        if path.exists():
            try:
                _, history = load_checkpoint(path, model, key)
                print(f"{checkpoint}: loaded the cached model ({path.name}, {epochs} epochs); "
                      f"delete it to retrain")
                return history or History()
            except CheckpointError as err:
                print(f"{checkpoint}: cached model unusable ({err}); retraining")

    # Train on a fork of the random generators, so that what the notebook draws next is the same whether the model
    # was trained now or loaded from the cache.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        history = _train(model, loss_fn, train_t, test, epochs, batch_size, lr, schedule, weight_decay,
                         checkpoint or type(model).__name__, progress, check_every, device)
    if key is not None:
        save_checkpoint(path, model, history, key)
    return history


def _train(model, loss_fn, train_t, test, epochs, batch_size, lr, schedule, weight_decay, label, progress,
           check_every, device) -> History:
    train_t = tuple(t.to(device) for t in train_t)
    batches = Batches(*train_t, batch_size=batch_size, shuffle=True)
    steps = len(batches)
    optimizer = _adam(model, lr, weight_decay)
    scheduler = (torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps)
                 if schedule == "onecycle" else None)
    history = History()
    bar = _progress(epochs, label, progress)
    model.train()
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
            sums: dict[str, torch.Tensor] = {}
            finite = torch.ones(steps, dtype=torch.bool, device=device)
            for step, batch in enumerate(batches):
                terms = loss_fn(model, batch)
                loss = terms["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                finite[step] = torch.isfinite(loss)
                for name, value in terms.items():
                    sums[name] = sums[name] + value.detach() if name in sums else value.detach().clone()
                if (step + 1) % check_every == 0 or step + 1 == steps:
                    _guard(finite[: step + 1], model, last_good, epoch)
            history.log("train", {name: float(total) / steps for name, total in sums.items()})
            if test is not None:
                history.log("test", evaluate(model, loss_fn, test))
            history.seconds.append(time.perf_counter() - start)
            bar.set_postfix(_postfix(history))
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted during epoch {history.epochs + 1}: the model keeps its current weights, "
              f"nothing was cached")
        raise
    bar.close()
    summary = ", ".join(f"{k} {v[-1]:.4g}" for k, v in history.train.items())
    test_summary = ", ".join(f"{k} {v[-1]:.4g}" for k, v in history.test.items())
    print(f"{label}: {epochs} epochs in {sum(history.seconds):.1f} s; "
          f"train {summary}" + (f"; test {test_summary}" if test_summary else ""))
    return history


def _adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per step where this torch and device allow it, else the multi-tensor version.

    Same update rule either way; the fused step makes one pass over the weights instead of several (measured on
    the course's VAE: about 15 % off a CPU epoch at batch 128, docs/benchmarks.md).
    """
    params = list(model.parameters())
    with contextlib.suppress(RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _guard(finite: torch.Tensor, model: nn.Module, last_good: dict, epoch: int) -> None:
    """Stop with the epoch and step if any loss so far this epoch was NaN/inf, restoring the last good weights."""
    if bool(finite.all()):
        return
    step = int((~finite).nonzero()[0]) + 1
    model.load_state_dict(last_good)
    raise TrainingDiverged(
        f"the loss became NaN or infinite at epoch {epoch}, step {step}; "
        f"the model was restored to its weights at the end of epoch {epoch - 1}. "
        f"Try a smaller learning rate, or check the inputs and the loss for log(0) or division by zero.")


def _postfix(history: History) -> dict[str, str]:
    post = {k: f"{v[-1]:.4g}" for k, v in history.train.items()}
    post.update({f"test_{k}": f"{v[-1]:.4g}" for k, v in history.test.items() if k == "loss"})
    return post


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="epoch", disable=not enabled, leave=True)
