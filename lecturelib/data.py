"""MNIST for the course: all 70,000 digits ship with the course in mnist.npz (about 11 MB), checked by SHA-256 on load.

`data_file()` finds it the same way in a clone (data/mnist.npz) and in an installed wheel (inside the package).

Images come back as one float32 tensor (N, 1, 28, 28) in [0, 1]; `Batches` slices them on the training device.
Full mode uses all of MNIST; fast mode (CI) uses a fixed, class-balanced subset of the same file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "LECTURELIB_DATA"
DATA_NAME = "mnist.npz"
# where the file is: inside the installed package (the wheel maps the repository's data/ to lecturelib/mnist/), or in
# the clone that this package is imported from
PACKAGED_FILE = Path(__file__).resolve().parent / "mnist" / DATA_NAME
CLONE_FILE = Path(__file__).resolve().parent.parent / "data" / DATA_NAME
# SHA-256 of data/mnist.npz as written by `python -m course data build` (course/build_data.py).
DATA_SHA256 = "ac1e0a582d176194fa3e769a3ab457da4bd87c93eb4d845729d7432c67793bda"

SPLITS = ("train", "test")
SUBSETS = ("all", "ci")


class DatasetError(RuntimeError):
    """The data file is missing or corrupt, or an IDX file is malformed; the message says how to fix it."""


def data_file() -> Path:
    """The MNIST file: $LECTURELIB_DATA (a file, or a folder holding mnist.npz) if set, else the copy inside the
    installed package, else the clone's data/mnist.npz."""
    forced = os.environ.get(DATA_ENV, "").strip()
    if forced:
        path = Path(forced).expanduser()
        return path / DATA_NAME if path.is_dir() else path
    if PACKAGED_FILE.exists() or not CLONE_FILE.parent.is_dir():  # installed, or no clone around this package
        return PACKAGED_FILE
    return CLONE_FILE


def _restore_hint(path: Path) -> str:
    if path == CLONE_FILE:
        return "restore it with `git checkout -- data/mnist.npz`"
    if path == PACKAGED_FILE:
        return "reinstall the course package (pip install --force-reinstall lecturelib)"
    return f"point ${DATA_ENV} at the course's mnist.npz, or unset it"


@functools.lru_cache(maxsize=2)
def _arrays(path: Path, mtime_ns: int) -> dict[str, np.ndarray]:
    """The arrays of the data file, read once per process (and again if the file changes), after its checksum."""
    if not path.exists():
        raise DatasetError(f"the MNIST file {path} is missing: {_restore_hint(path)}")
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != DATA_SHA256:
        raise DatasetError(
            f"{path} is corrupt or was changed (SHA-256 {digest[:12]}…, expected {DATA_SHA256[:12]}…): "
            f"{_restore_hint(path)}"
        )
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def mnist_arrays() -> dict[str, np.ndarray]:
    """All arrays of the MNIST file (uint8 images and labels, CI subset indices), checksum verified."""
    path = data_file()
    return _arrays(path, path.stat().st_mtime_ns if path.exists() else 0)


def default_subset() -> str:
    """ "ci" in fast mode (LECTURELIB_FAST=1), else "all"."""
    from lecturelib import runtime

    return "ci" if runtime.fast_mode() else "all"


_announced: set[tuple] = set()  # what load_mnist has said in this process


def load_mnist(
    split: str = "train", subset: str | None = None, limit: int | None = None, quiet: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as tensors on the CPU, from the course's mnist.npz (no network, ever).

    split:  "train" or "test".
    subset: "all" (60,000 train / 10,000 test digits, the official release in its order) or
            "ci" (the class-balanced 10,000 / 2,000 digits fast mode trains on). Default: "ci" in fast mode, else "all".
    limit:  keep only the first `limit` digits.
    Returns images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64. Says what it loaded the first time
    (per split, subset and limit) in a process, unless quiet: a notebook says it once, in its setup cell.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    subset = default_subset() if subset is None else subset
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS} (or None for the mode's default), got {subset!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    arrays = mnist_arrays()
    images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    if subset == "ci":
        index = arrays[f"ci_{split}_index"]
        images, labels = images[index], labels[index]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if not quiet and (split, subset, limit) not in _announced:
        _announced.add((split, subset, limit))
        what = "all of MNIST" if subset == "all" else "the CI subset of MNIST"
        print(f"MNIST {split}: {len(labels):,} digits ({what}{', first ' + format(limit, ',') if limit else ''})")
    # (N, 28, 28) uint8 -> (N, 1, 28, 28) float32 in [0, 1]
    x = torch.from_numpy(np.array(images)).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(np.array(labels, dtype=np.int64))
    return x, y


class Batches:
    """Shuffled mini-batches sliced from tensors already on the training device.

    No DataLoader, no per-sample Python: each epoch draws one permutation and gathers each batch's rows with
    index_select (a batch is gathered while it is used, so it is still in cache for the forward pass, and the
    whole data set is never copied); without shuffling the batches are views.
    tensors: same first dimension N; batch_size: int >= 1.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
    ):
        if not tensors:
            raise ValueError("Batches needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"all tensors must have the same first dimension, got {[len(t) for t in tensors]}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.tensors, self.batch_size, self.shuffle, self.drop_last = tensors, batch_size, shuffle, drop_last
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        tensors, size = self.tensors, self.batch_size
        n = len(tensors[0])
        perm = torch.randperm(n, generator=self.generator, device="cpu").to(tensors[0].device) if self.shuffle else None
        for i in range(len(self)):
            if perm is None:
                batch = tuple(t[i * size : (i + 1) * size] for t in tensors)
            else:
                rows = perm[i * size : (i + 1) * size]
                batch = tuple(t.index_select(0, rows) for t in tensors)
            yield batch if len(batch) > 1 else batch[0]
