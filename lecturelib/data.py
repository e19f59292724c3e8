"""MNIST for the course: all 70,000 digits ship in data/mnist.npz (about 11 MB), checked by SHA-256 on load.

Images come back as one float32 tensor (N, 1, 28, 28) in [0, 1]; `Batches` slices them on the training device.
Full mode uses all of MNIST; fast mode (CI) uses a fixed, class-balanced subset of the same file.
"""

from __future__ import annotations

import functools
import hashlib
import io
from pathlib import Path

import numpy as np
import torch

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DATA_FILE = DATA_DIR / "mnist.npz"
# SHA-256 of data/mnist.npz as written by `python -m course data build` (course/build_data.py).
DATA_SHA256 = "ac1e0a582d176194fa3e769a3ab457da4bd87c93eb4d845729d7432c67793bda"

SPLITS = ("train", "test")
SUBSETS = ("all", "ci")
# The official release's four files (LeCun, Cortes & Burges), uncompressed, with their MD5 sums: the arrays in
# data/mnist.npz are these files' contents, so write_idx reproduces them byte for byte.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_ITEM_SHAPE = {"images": (28, 28), "labels": ()}
IDX_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


class DatasetError(RuntimeError):
    """The data file is missing or corrupt, or an IDX file is malformed; the message says how to fix it."""


def read_idx(path: Path, image_size: tuple[int, ...] | None = None) -> np.ndarray:
    """Read one uncompressed IDX file (the MNIST format) into a uint8 array, checking its header.

    image_size: the shape each item must have (e.g. (28, 28) for MNIST's images, () for its labels); a file whose
    header declares other dimensions is refused, even when its byte count is the same.
    """
    raw = Path(path).read_bytes()
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an uint8 IDX file (bad magic number)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise DatasetError(f"{path} has {len(raw)} bytes, expected {expected} for shape {dims}: truncated or corrupt")
    if image_size is not None and tuple(dims[1:]) != tuple(image_size):
        raise DatasetError(
            f"{path} holds items of shape {tuple(dims[1:])}, expected {tuple(image_size)} "
            f"(MNIST's images are 28 x 28, its labels scalars): not an MNIST file"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic (0, 0, 8, ndim), big-endian dimensions, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@functools.lru_cache(maxsize=2)
def _arrays(path: Path, mtime_ns: int) -> dict[str, np.ndarray]:
    """The arrays of the data file, read once per process (and again if the file changes), after its checksum."""
    if not path.exists():
        raise DatasetError(f"the MNIST file {path} is missing: restore it with `git checkout -- data/mnist.npz`")
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != DATA_SHA256:
        raise DatasetError(
            f"{path} is corrupt or was changed (SHA-256 {digest[:12]}…, expected {DATA_SHA256[:12]}…): "
            f"restore it with `git checkout -- data/mnist.npz`"
        )
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def mnist_arrays() -> dict[str, np.ndarray]:
    """All arrays of data/mnist.npz (uint8 images and labels, CI subset indices), checksum verified."""
    path = DATA_FILE
    return _arrays(path, path.stat().st_mtime_ns if path.exists() else 0)


def default_subset() -> str:
    """ "ci" in fast mode (LECTURELIB_FAST=1), else "all"."""
    from lecturelib import runtime

    return "ci" if runtime.fast_mode() else "all"


def load_mnist(
    split: str = "train", subset: str | None = None, limit: int | None = None, quiet: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as tensors on the CPU, from data/mnist.npz (no network, ever).

    split:  "train" or "test".
    subset: "all" (60,000 train / 10,000 test digits, the official release in its order) or
            "ci" (the class-balanced 10,000 / 2,000 digits fast mode trains on). Default: "ci" in fast mode, else "all".
    limit:  keep only the first `limit` digits.
    Returns images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64; prints what it loaded unless quiet.
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
    if not quiet:
        what = "all of MNIST" if subset == "all" else "the CI subset of MNIST"
        print(f"MNIST {split}: {len(labels):,} digits ({what}{', first ' + format(limit, ',') if limit else ''})")
    # (N, 28, 28) uint8 -> (N, 1, 28, 28) float32 in [0, 1]
    x = torch.from_numpy(np.array(images)).unsqueeze(1).float().div_(255.0)
    y = torch.from_numpy(np.array(labels, dtype=np.int64))
    return x, y


def write_idx(folder: Path) -> Path:
    """Write the official four IDX files into folder/MNIST/raw (as torchvision.datasets.MNIST reads them)."""
    raw = Path(folder) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = mnist_arrays()
    for split, (images_file, labels_file) in IDX_FILES.items():
        (raw / images_file).write_bytes(idx_bytes(arrays[f"{split}_images"]))
        (raw / labels_file).write_bytes(idx_bytes(arrays[f"{split}_labels"]))
    return raw


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
