"""Where and how a notebook runs: the device (CUDA, then Apple MPS, then CPU), seeding, fast mode, and the folder
where trained models are cached.

Fast mode (LECTURELIB_FAST=1) shrinks every notebook to CI size (the CI subset of MNIST, a few epochs); the default
is the full, lecture-quality run on all of MNIST, which ships with the course.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

FAST_ENV = "LECTURELIB_FAST"
DEVICE_ENV = "LECTURELIB_DEVICE"
CHECKPOINTS_ENV = "LECTURELIB_CHECKPOINTS"
CLONE_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"  # git-ignored, in a clone
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def pick_device() -> torch.device:
    """CUDA if available, then Apple MPS, then CPU; $LECTURELIB_DEVICE (e.g. "cpu") overrides the choice."""
    forced = os.environ.get(DEVICE_ENV, "").strip()
    if forced:
        return _forced_device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _forced_device(name: str) -> torch.device:
    """The device named by $LECTURELIB_DEVICE, checked: cpu, mps, cuda or cuda:N for a GPU that exists."""
    usage = f"{DEVICE_ENV} must be cpu, cuda, cuda:N or mps (or unset to choose automatically), got {name!r}"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(usage) from None
    if device.type not in ("cpu", "cuda", "mps") or name != name.lower():
        raise ValueError(usage)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={name!r} but CUDA is not available here: unset it or use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{DEVICE_ENV}={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{DEVICE_ENV}={name!r} but Apple MPS is not available here: unset it or use cpu")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (all devices') random generators."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS


def fast_requested() -> bool:
    """True when $LECTURELIB_FAST asks for CI-sized runs (1/true/yes/on)."""
    value = os.environ.get(FAST_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{FAST_ENV} must be one of {_TRUE + _FALSE[1:]}, got {value!r}")


def fast_mode() -> bool:
    """True for the CI-sized run ($LECTURELIB_FAST=1): the CI subset of MNIST, fewer epochs, CI-sized bounds."""
    return fast_requested()


def by_mode(*, full, fast):
    """`fast` in fast mode, `full` otherwise: the one place a notebook's sizes depend on the mode."""
    return fast if fast_mode() else full


def _in_a_clone() -> bool:
    """True when this package is imported from a checkout of the course (not from an installed wheel)."""
    root = CLONE_CHECKPOINTS.parent
    return (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir()


def _user_cache() -> Path:
    """The per-user cache folder of this operating system (XDG on Linux, ~/Library/Caches, %LOCALAPPDATA%)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lecturelib" / "checkpoints"


def checkpoint_dir() -> Path:
    """Where trained models are cached: $LECTURELIB_CHECKPOINTS if set; else the clone's checkpoints/ folder when
    running from a writable clone; else a per-user cache folder (an installed package never writes into
    site-packages, which a shared hub mounts read-only)."""
    forced = os.environ.get(CHECKPOINTS_ENV, "").strip()
    if forced:
        return Path(forced).expanduser()
    if _in_a_clone() and os.access(CLONE_CHECKPOINTS.parent, os.W_OK):
        return CLONE_CHECKPOINTS
    return _user_cache()


def setup(seed: int = 0) -> torch.device:
    """A notebook's first line: seed everything, pick the device, and say both (and the mode) in one line."""
    seed_everything(seed)
    device = pick_device()
    if fast_mode():
        mode = f"fast (CI-sized: the CI subset of MNIST, fewer epochs; unset {FAST_ENV} for the full run)"
    else:
        mode = f"full (all of MNIST; set {FAST_ENV}=1 for a CI-sized run)"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"lecturelib: device {name}, mode {mode}, seed {seed}, torch {torch.__version__}")
    print(
        f"lecturelib: trained models are cached in {checkpoint_dir()}; a model is reused only when its code, data,\n"
        f"  settings and initial weights are the same (LECTURELIB_RETRAIN=1 retrains; {CHECKPOINTS_ENV} moves them)"
    )
    return device
