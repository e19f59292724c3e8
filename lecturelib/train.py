"""One training loop for every model in the course: `fit`, with progress bar, history, evaluation, cache, NaN guard.

`fit(model, loss_fn, train, epochs=...)` takes a loss function returning a dict of named scalar terms (the key
"loss" is minimised, every term is logged), keeps the data on the model's device and slices mini-batches there,
evaluates on a held-out split each epoch, and can cache the trained weights in an atomically written checkpoint.

The cache, in one paragraph. With `checkpoint="name"`, fit stores the trained weights in
checkpoints/name-<key>.pt and, next time, loads them instead of training, but only when everything that shaped the
training is the same. The key covers: the model's class, settings and layers; the exact bytes of the training
data (images and labels, in their order); every fit setting; the source of the loss function, of every function
it calls (at any depth, in the notebook or in lecturelib), and the values of the notebook variables and closure
variables those functions read; and the source of lecturelib's training modules. Change any of these and the
model is retrained. fit says when it loads a cached model; set LECTURELIB_RETRAIN=1 (or delete the file, or
`make clean`) to retrain anyway. Cached weights are never non-finite, and a file that cannot be read or written
only costs a warning.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from lecturelib.data import Batches
from lecturelib.models import build

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
CHECKPOINT_FORMAT = 2
SCHEDULES = ("constant", "onecycle")
CHECK_EVERY = 50  # steps between NaN checks: one host sync per check, not per step
RETRAIN_ENV = "LECTURELIB_RETRAIN"
# The course's fast path for the VAE on a CPU: larger batches keep the two cores busy, and a one-cycle schedule
# peaking above Adam's 1e-3 makes up for the fewer steps (tuned on full MNIST by `python -m course bench`,
# docs/benchmarks.md).
FAST_BATCH_SIZE = 512
FAST_LR = 6e-3
# mnist_vae's longer budget (60 epochs) takes a higher peak: NLL 91.5 nats instead of 92.0 at 6e-3 in the same
# time (swept on one H200, full MNIST; 91.65 on the 2-core CPU; docs/benchmarks.md)
VAE_LR = 1e-2
LossFn = Callable[[nn.Module, object], dict]


class TrainingDiverged(FloatingPointError):
    """The loss or the weights became NaN or infinite; the model was put back to its last finite weights."""


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
    progress: bool = True,
) -> History:
    """Train `model` in place with Adam and return its History.

    loss_fn(model, batch) -> {"loss": scalar to minimise, other named scalar terms to log}; batch is a tensor
        (or a tuple when `train` is a tuple such as (images, labels)), already on the model's device.
    train, test: tensor (N, ...) or tuple of tensors; moved to the model's device once.
    schedule: "onecycle" (warm-up to lr, then anneal: best for short budgets) or "constant".
    checkpoint: a name; the trained weights are cached under checkpoints/ and reused when nothing that shaped the
        training changed (see the module docstring for exactly what the key covers).
    Raises TrainingDiverged (weights restored to the last finite ones) if the loss or weights become NaN or inf.
    """
    _check_settings(epochs, batch_size, lr, schedule, weight_decay)
    train_t = _as_tuple(train, "train")
    device, dtype = _device_and_dtype(model)
    _check_data(train_t, "train", dtype)
    if test is not None:
        _check_data(_as_tuple(test, "test"), "test", dtype)
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "schedule": schedule,
        "weight_decay": weight_decay,
    }
    path = None
    if checkpoint is not None:
        path = checkpoint_dir() / f"{checkpoint}-{cache_key(model, loss_fn, train_t, settings)}.pt"
        history = _load_cached(path, model, checkpoint)
        if history is not None:
            return history

    train_t = tuple(t.to(device) for t in train_t)
    batches = Batches(*train_t, batch_size=batch_size, shuffle=True)
    optimizer = _adam(model, lr, weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(batches))
        if schedule == "onecycle"
        else None
    )
    label = checkpoint or type(model).__name__
    # Train on a fork of the random generators, so that what the notebook draws next is the same whether the model
    # was trained now or loaded from the cache.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        history = _loop(model, loss_fn, batches, test, optimizer, scheduler, epochs, label, progress)
    if path is not None:
        _save_cached(path, model, history, checkpoint)
    return history


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
    summary = ", ".join(f"{k} {v[-1]:.4g}" for k, v in history.train.items())
    test_summary = ", ".join(f"{k} {v[-1]:.4g}" for k, v in history.test.items())
    print(
        f"{label}: {epochs} epochs in {sum(history.seconds):.1f} s; "
        f"train {summary}" + (f"; test {test_summary}" if test_summary else "")
    )
    return history


def _adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per step on CPU and CUDA (the same update rule; one pass over the weights instead
    of several: about 15 % off a CPU epoch of the course's VAE at batch 128, docs/benchmarks.md)."""
    device = next(model.parameters()).device
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=device.type in ("cpu", "cuda"))


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _all_finite(tensors) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def _guard(model: nn.Module, finite: torch.Tensor, last_good: dict, epoch: int) -> None:
    """Stop if a loss so far this epoch, or any weight, is NaN/inf, restoring the last finite weights.

    The weights are checked too: one step with a huge learning rate can leave a finite loss and infinite weights.
    """
    losses_ok = bool(finite.all())
    if losses_ok and _all_finite(model.parameters()):
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
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if isinstance(weight_decay, bool) or not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")


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


# ---------------------------------------------------------------------------------------------------------------
# The cache: the key, and checkpoints written atomically and read safely
# ---------------------------------------------------------------------------------------------------------------
def checkpoint_dir() -> Path:
    """Where cached models live: $LECTURELIB_CHECKPOINTS, else the course's checkpoints/ folder (git-ignored)."""
    return Path(os.environ.get("LECTURELIB_CHECKPOINTS", CHECKPOINT_DIR))


_TRAINING_MODULES = ("data.py", "models.py", "objectives.py", "train.py")


def cache_key(model: nn.Module, loss_fn: Callable, train_t: tuple[torch.Tensor, ...], settings: dict) -> str:
    """A digest of everything that shapes a training run (the module docstring lists it)."""
    here = Path(__file__).resolve().parent
    parts = {
        "model": [type(model).__name__, getattr(model, "config", {}), repr(model), code_digest(type(model))],
        "data": [_tensor_digest(t) for t in train_t],
        "settings": settings,
        "loss": code_digest(loss_fn),
        "lecturelib": [hashlib.sha256((here / name).read_bytes()).hexdigest() for name in _TRAINING_MODULES],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _tensor_digest(t: torch.Tensor) -> str:
    """Shape, dtype and the exact bytes (so another subset, order or label permutation gives another digest)."""
    data = t.detach().cpu().contiguous()
    return f"{tuple(data.shape)}:{data.dtype}:{hashlib.blake2b(data.numpy().tobytes(), digest_size=16).hexdigest()}"


def code_digest(fn: Callable) -> str:
    """A digest of `fn`'s code and of what it reads: the functions it calls (at any depth), the values of the
    globals and closure variables it uses, and the methods of objects (such as modules) those name."""
    out: list[str] = []
    _describe(fn, out, set(), depth=0)
    return hashlib.sha256("\n".join(out).encode()).hexdigest()[:16]


# Code of these packages is not followed (it does not change between runs of a notebook): only its name is noted.
_EXTERNAL = {"torch", "numpy", "scipy", "sklearn", "matplotlib", "tqdm", "ipywidgets", "IPython"}


def _external(obj) -> bool:
    """True for code of torch & co. and of the standard library; "builtins" is where exec'd classes land, so no."""
    top = (getattr(obj, "__module__", None) or "").split(".")[0]
    return top in _EXTERNAL or (top in sys.stdlib_module_names and top != "builtins")


def _describe(obj, out: list[str], seen: set[int], depth: int) -> None:
    if id(obj) in seen or depth > 12:
        return
    seen.add(id(obj))
    if isinstance(obj, (types.FunctionType, types.MethodType, type)) and _external(obj):
        out.append(f"{obj.__module__}.{getattr(obj, '__qualname__', obj)}")
    elif isinstance(obj, functools.partial):
        out.append("partial")
        for part in (obj.func, obj.args, obj.keywords):
            _describe(part, out, seen, depth + 1)
    elif isinstance(obj, (types.FunctionType, types.MethodType)):
        fn = obj.__func__ if isinstance(obj, types.MethodType) else obj
        if isinstance(obj, types.MethodType):
            _describe(obj.__self__, out, seen, depth + 1)
        _describe_code(fn, fn.__code__, out, seen, depth)
        for cell in fn.__closure__ or ():
            try:
                _describe(cell.cell_contents, out, seen, depth + 1)
            except ValueError:  # an empty cell
                out.append("<empty cell>")
        for value in fn.__defaults__ or ():
            _describe(value, out, seen, depth + 1)
    elif isinstance(obj, types.ModuleType):
        out.append(f"module {obj.__name__}")  # library code: covered by the file hashes and by what is called
    elif isinstance(obj, torch.Tensor):
        out.append(_tensor_digest(obj))
    elif isinstance(obj, nn.Module):  # e.g. a frozen classifier the loss uses: its layers, code and weights
        out.append(repr(obj))
        _describe(type(obj), out, seen, depth + 1)
        out.extend(_tensor_digest(t) for t in obj.state_dict().values())
    elif isinstance(obj, (int, float, str, bool, bytes, type(None), complex)):
        out.append(repr(obj))
    elif isinstance(obj, (tuple, list, set, frozenset)):
        out.append(type(obj).__name__)
        for item in sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj:
            _describe(item, out, seen, depth + 1)
    elif isinstance(obj, dict):
        for k in sorted(obj, key=repr):
            out.append(repr(k))
            _describe(obj[k], out, seen, depth + 1)
    elif isinstance(obj, type):
        out.append(f"class {obj.__module__}.{obj.__qualname__}")
        for klass in obj.__mro__:
            if klass is object or _external(klass):
                continue
            for _, member in sorted(vars(klass).items()):
                if isinstance(member, (types.FunctionType, staticmethod, classmethod, property)):
                    _describe(getattr(member, "__func__", getattr(member, "fget", member)), out, seen, depth + 1)
    elif callable(obj) and hasattr(vars(type(obj)).get("__call__"), "__code__"):  # an instance of a callable class
        out.append(f"callable {type(obj).__qualname__}")
        _describe(type(obj), out, seen, depth + 1)
        _describe(vars(obj) if hasattr(obj, "__dict__") else repr(obj), out, seen, depth + 1)
    else:
        out.append(f"{type(obj).__qualname__}:{obj!r}"[:2000])


def _describe_code(fn, code: types.CodeType, out: list[str], seen: set[int], depth: int) -> None:
    try:
        out.append(inspect.getsource(code))
    except (OSError, TypeError):
        out.append(code.co_code.hex() + repr([c for c in code.co_consts if not isinstance(c, types.CodeType)]))
    names = set(code.co_names)
    for const in code.co_consts:  # nested functions and comprehensions
        if isinstance(const, types.CodeType):
            _describe_code(fn, const, out, seen, depth + 1)
            names |= set(const.co_names)
    scope = fn.__globals__
    for name in sorted(names):
        if name in scope:
            value = scope[name]
            out.append(f"global {name}")
            if isinstance(value, types.ModuleType):
                # a module read as `module.attr`: describe the attributes of it this code names
                for attr in sorted(names & set(dir(value))):
                    member = getattr(value, attr)
                    if isinstance(member, (types.FunctionType, type)):
                        _describe(member, out, seen, depth + 1)
            else:
                _describe(value, out, seen, depth + 1)


def _load_cached(path: Path, model: nn.Module, name: str) -> History | None:
    """The cached history if `path` holds a usable model (loaded into `model`); None to train."""
    if not path.exists():
        return None
    if os.environ.get(RETRAIN_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        print(f"{name}: {RETRAIN_ENV} is set: retraining instead of loading {path.name}")
        return None
    try:
        _, history = load_checkpoint(path, model)
    except CheckpointError as err:
        print(f"{name}: cached model unusable ({err}); retraining")
        return None
    print(
        f"{name}: loaded the cached model {path.name} (same model, data, settings and code); "
        f"set {RETRAIN_ENV}=1 or delete the file to retrain"
    )
    return history or History()


def _save_cached(path: Path, model: nn.Module, history: History, name: str) -> None:
    try:
        save_checkpoint(path, model, history)
    except OSError as err:
        warnings.warn(
            f"{name}: could not cache the trained model in {path.parent} ({err.strerror or err}); the "
            f"model and its history are kept in memory. Set LECTURELIB_CHECKPOINTS to a writable folder "
            f"to cache it.",
            stacklevel=3,
        )


def save_checkpoint(path: str | Path, model: nn.Module, history: History | None = None) -> Path:
    """Write the model's settings, weights and history to `path` atomically (temp file, fsync, rename).

    An interrupted save leaves the previous file (if any) in place, never a half-written one; the file gets the
    permissions the umask allows (as any other file the user writes). Non-finite weights are never written.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if not _all_finite(state.values()):
        raise CheckpointError(f"refusing to save non-finite weights to {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_files(path.parent)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": type(model).__name__,
        "config": getattr(model, "config", {}),
        "state_dict": state,
        "history": history.to_dict() if history is not None else None,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temp_files(folder: Path, older_than_s: float = 600.0) -> None:
    """Temp files of saves killed half-way (SIGKILL, power loss) are removed once they are clearly abandoned."""
    now = time.time()
    for tmp in folder.glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
        except OSError:
            pass


def load_checkpoint(path: str | Path, model: nn.Module | None = None):
    """Load a checkpoint safely (weights_only=True: no pickled code runs) and return (model, history).

    With `model`, its class, config, parameter names and shapes must match the file's; the weights are loaded into
    it only when all of that holds (a refused file leaves the model as it was). Without, the model is rebuilt from
    the stored config. Raises CheckpointError with the reason on any mismatch, damage or non-finite weight.
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
        raise CheckpointError(
            f"{path} holds a {payload['model']}{payload['config']}, "
            f"not a {type(model).__name__}{getattr(model, 'config', {})}"
        )
    state, own = payload["state_dict"], model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    if shapes != {k: tuple(v.shape) for k, v in own.items()}:
        raise CheckpointError(f"{path} does not fit the model: other parameter names or shapes")
    if not _all_finite(state.values()):
        raise CheckpointError(f"{path} holds non-finite weights")
    model.load_state_dict(state)
    history = History.from_dict(payload["history"]) if payload["history"] else None
    return model, history


def _postfix(history: History) -> dict[str, str]:
    """The bar's postfix: the training and test loss only (every term is in the summary line at the end), so
    that the bar fits one line beside a notebook's file browser."""
    post = {"loss": f"{history.train['loss'][-1]:.4g}"}
    if "loss" in history.test:
        post["test"] = f"{history.test['loss'][-1]:.4g}"
    return post


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="epoch", disable=not enabled, leave=True, dynamic_ncols=True)


def mnist_vae(
    latent_dim: int,
    x_train: torch.Tensor,
    *,
    epochs: int | None = None,
    test: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[nn.Module, History]:
    """Notebook 06's VAE, models.VAE(latent_dim, 400) (Bernoulli decoder), trained on `x_train` (N, 1, 28, 28) with the
    course's fast path (batch FAST_BATCH_SIZE, Adam with a one-cycle schedule peaking at VAE_LR) and cached as
    checkpoints/mnist-vae-d<latent_dim>-<key>.pt, so that every notebook calling it with the same data and epochs
    shares one trained model (06 trains it, 07 loads it).

    The loss is objectives.binarized_vae_loss: -ELBO on dynamically binarized digits (each pixel drawn from
    Bernoulli(grey level) at every pass), the literature's setting, in which the ELBO bounds a true log-likelihood
    (notebook 07 reports the model's importance-sampled NLL on the binarized test digits).

    epochs: None for the course's budget: 60 on full MNIST, 40 in fast mode (the 10,000-digit CI subset).
    test: a held-out split evaluated after every epoch (None: no evaluation during training).
    device: where the model is built and trained; None: the device of x_train.
    Initial weights and mini-batch order come from seed 0 on a fork of the random generators: the same model
    whoever trains it first, and the caller's random draws are left untouched.
    Returns the trained model (in eval mode) and its History.
    """
    from lecturelib import models, objectives, runtime

    if epochs is None:
        epochs = runtime.by_mode(full=60, fast=40)
    device = torch.device(device) if device is not None else x_train.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        model = models.VAE(latent_dim=latent_dim, hidden_dim=400).to(device)
        history = fit(
            model,
            objectives.binarized_vae_loss,
            x_train,
            epochs=epochs,
            batch_size=FAST_BATCH_SIZE,
            lr=VAE_LR,
            schedule="onecycle",
            test=test,
            checkpoint=f"mnist-vae-d{latent_dim}",
            progress=progress,
        )
    return model.eval(), history
