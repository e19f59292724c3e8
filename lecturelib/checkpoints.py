"""The checkpoint store behind `train.fit(..., checkpoint="name")`: files written atomically and read safely
(torch.load(weights_only=True): no pickled code runs), and one process at a time training a given model.

A model is stored as <name>-<key>.pt in runtime.checkpoint_dir(), the key being lecturelib.cachekey's digest of
everything that shaped its training; a file is loaded only into a model of the same class, settings and parameter
shapes, with finite weights. Set LECTURELIB_RETRAIN=1 (or delete the file) to retrain anyway.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from torch import nn

from lecturelib import runtime
from lecturelib.models import build

CHECKPOINT_FORMAT = 2
RETRAIN_ENV = "LECTURELIB_RETRAIN"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt, or was written for another model or run."""


def cached_path(name: str, key: str) -> Path:
    """Where the model named `name` with this key is cached: runtime.checkpoint_dir()/<name>-<key>.pt."""
    return runtime.checkpoint_dir() / f"{name}-{key}.pt"


@contextlib.contextmanager
def training_lock(path: Path | None, label: str):
    """Held while train.fit looks up, trains and caches the model at `path`: another process after the same model
    (notebooks 06 and 07 open side by side; a test run beside a course run) waits, then loads it. No lock without a
    path (nothing is cached) or where the lock file cannot be made (a read-only folder)."""
    if path is None:
        yield
        return
    lock = FileLock(str(path.with_name(f".{path.name}.lock")))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"{label}: another process is training this very model; waiting to load it from the cache")
            lock.acquire()
    except OSError:
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def lookup(path: Path, model: nn.Module) -> tuple[dict | None, str]:
    """(the stored history, "") after loading a usable cached model into `model`; (None, why it trains) otherwise."""
    if not path.exists():
        return None, ""
    if os.environ.get(RETRAIN_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return None, f"{RETRAIN_ENV} is set: not loading {path.name}"
    try:
        _, history = load_checkpoint(path, model)
    except CheckpointError as err:
        return None, f"the cached model was unusable ({err})"
    return history or {"train": {}, "test": {}, "seconds": []}, ""


def save_checkpoint(path: str | Path, model: nn.Module, history=None) -> Path:
    """Write the model's settings, weights and history (a train.History or None) to `path` atomically (temp file,
    fsync, rename): an interrupted save leaves the previous file, never a half-written one. The file gets the
    permissions the umask allows. Non-finite weights are never written."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if not all_finite(state.values()):
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
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _remove_stale_temp_files(folder: Path, older_than_s: float = 600.0) -> None:
    """Temp files of saves killed half-way (SIGKILL, power loss) are removed once they are clearly abandoned."""
    now = time.time()
    for tmp in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> tuple[nn.Module, dict | None]:
    """Load a checkpoint safely (weights_only=True: no pickled code runs): (model, history as a dict or None).

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
    if {k: tuple(v.shape) for k, v in state.items()} != {k: tuple(v.shape) for k, v in own.items()}:
        raise CheckpointError(f"{path} does not fit the model: other parameter names or shapes")
    if not all_finite(state.values()):
        raise CheckpointError(f"{path} holds non-finite weights")
    model.load_state_dict(state)
    return model, payload["history"]


def all_finite(tensors) -> bool:
    """True when every floating-point tensor holds only finite values."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())
