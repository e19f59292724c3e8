"""Where and how a notebook runs: the device (CUDA, then Apple MPS, then CPU), seeding, and fast mode.

Fast mode (LECTURELIB_FAST=1) shrinks every notebook to CI size; the default is the full, lecture-quality run,
which needs full MNIST on disk (without it, the notebooks run the CI size on the embedded subset and say so).
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

FAST_ENV = "LECTURELIB_FAST"
DEVICE_ENV = "LECTURELIB_DEVICE"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def pick_device() -> torch.device:
    """CUDA if available, then Apple MPS, then CPU; $LECTURELIB_DEVICE (e.g. "cpu") overrides the choice."""
    forced = os.environ.get(DEVICE_ENV, "").strip()
    if forced:
        device = torch.device(forced)  # raises on a malformed name
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={forced!r} but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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


def full_mnist_on_disk() -> bool:
    """True when full MNIST is on disk under data.default_root() and not overridden by LECTURELIB_MNIST=embedded."""
    from lecturelib import data

    if os.environ.get("LECTURELIB_MNIST", "").strip() == "embedded":
        return False
    return data.full_mnist_status(data.default_root()) == "present"


def fast_mode() -> bool:
    """True for the CI-sized run: asked for by $LECTURELIB_FAST, or forced because full MNIST is not on disk.

    The full run's sizes and the bounds of its claims are set for the 60,000 digits of full MNIST; on the embedded
    10,000-digit subset the notebooks run the size that is validated on it (the one CI runs) instead.
    """
    return fast_requested() or not full_mnist_on_disk()


def by_mode(*, full, fast):
    """`fast` in fast mode, `full` otherwise: the one place a notebook's sizes depend on the mode."""
    return fast if fast_mode() else full


def setup(seed: int = 0) -> torch.device:
    """A notebook's first line: seed everything, pick the device, and say both (and the mode) in one line."""
    seed_everything(seed)
    device = pick_device()
    if fast_requested():
        mode = "fast (CI-sized)"
    elif fast_mode():
        mode = "fast (CI-sized): full MNIST is not on disk, run `make data` for the full, lecture-quality run"
    else:
        mode = f"full (set {FAST_ENV}=1 for a CI-sized run)"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"lecturelib: device {name}, mode {mode}, seed {seed}, torch {torch.__version__}")
    return device
