"""MNIST for the course: full MNIST when it is on disk (or downloadable), else the real-MNIST subset shipped in data/.

Images come back as one float32 tensor (N, 1, 28, 28) in [0, 1]; `Batches` slices them on the training device.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
EMBEDDED_FILE = DATA_DIR / "mnist_embedded.npz"
# SHA-256 of data/mnist_embedded.npz as written by data/build_embedded.py.
EMBEDDED_SHA256 = "71f184837220e53c859b6fda11224c2a53805354bbedfa18f424723b1bdcba9a"

SPLITS = ("train", "test")
SOURCES = ("auto", "full", "embedded")
# The official files, uncompressed, as torchvision lays them out under <root>/MNIST/raw, with their exact sizes.
FULL_FILES = {
    "train": (("train-images-idx3-ubyte", 47040016), ("train-labels-idx1-ubyte", 60008)),
    "test": (("t10k-images-idx3-ubyte", 7840016), ("t10k-labels-idx1-ubyte", 10008)),
}
DOWNLOAD_TIMEOUT_S = 3.0
_download_failed: str | None = None  # remembered for the session, so `auto` asks the network at most once


class DatasetError(RuntimeError):
    """The data asked for is missing, incomplete or corrupt; the message says how to fix it."""


def default_root() -> Path:
    """The folder that holds (or will hold) full MNIST: $LECTURELIB_DATA_ROOT, else the course's data/."""
    return Path(os.environ.get("LECTURELIB_DATA_ROOT", DATA_DIR))


def read_idx(path: Path) -> np.ndarray:
    """Read one uncompressed IDX file (the MNIST format) into a uint8 array, checking its header."""
    raw = Path(path).read_bytes()
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an uint8 IDX file (bad magic number)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise DatasetError(f"{path} has {len(raw)} bytes, expected {expected} for shape {dims}: truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def full_mnist_status(root: Path) -> str:
    """'present', 'absent' or 'partial' for the official files under root/MNIST/raw."""
    raw = Path(root) / "MNIST" / "raw"
    sizes = [(raw / name).stat().st_size if (raw / name).exists() else None
             for files in FULL_FILES.values() for name, _ in files]
    expected = [size for files in FULL_FILES.values() for _, size in files]
    if sizes == expected:
        return "present"
    return "absent" if all(s is None for s in sizes) else "partial"


def download_full_mnist(root: Path | None = None, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download full MNIST into root/MNIST/raw through torchvision; raise DatasetError fast when offline.

    This is the only function in the course that uses the network.
    """
    global _download_failed
    from torchvision.datasets import MNIST

    root = Path(root) if root is not None else default_root()
    host = urlparse(MNIST.mirrors[0]).hostname
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # torchvision's urlopen has no timeout of its own
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        with contextlib.redirect_stdout(io.StringIO()):
            for train in (True, False):
                MNIST(root, train=train, download=True)
    except Exception as err:  # no network, DNS failure, refused, timeout, bad archive
        _download_failed = f"{type(err).__name__}: {err}"
        raise DatasetError(f"could not download MNIST ({_download_failed}); copy the four IDX files into "
                           f"{root / 'MNIST' / 'raw'} or use source='embedded'") from err
    finally:
        socket.setdefaulttimeout(old_timeout)
    if full_mnist_status(root) != "present":
        raise DatasetError(f"the download into {root / 'MNIST' / 'raw'} is incomplete; delete that folder and retry")
    return root


def _load_full(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = Path(root) / "MNIST" / "raw"
    (images_file, _), (labels_file, _) = FULL_FILES[split]
    return read_idx(raw / images_file), read_idx(raw / labels_file)


def _load_embedded(split: str) -> tuple[np.ndarray, np.ndarray]:
    if not EMBEDDED_FILE.exists():
        raise DatasetError(f"the embedded MNIST subset {EMBEDDED_FILE} is missing: restore it with "
                           f"`git checkout -- data/mnist_embedded.npz`")
    blob = EMBEDDED_FILE.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != EMBEDDED_SHA256:
        raise DatasetError(f"{EMBEDDED_FILE} is corrupt (SHA-256 {digest[:12]}…, expected {EMBEDDED_SHA256[:12]}…): "
                           f"restore it with `git checkout -- data/mnist_embedded.npz`")
    with np.load(io.BytesIO(blob)) as arrays:
        return arrays[f"{split}_images"], arrays[f"{split}_labels"]


def _offline() -> bool:
    return os.environ.get("LECTURELIB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def load_mnist(split: str = "train", source: str | None = None, root: str | Path | None = None,
               limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as tensors on the CPU.

    split:  "train" or "test".
    source: "full" (the 60k/10k release under root, downloaded when missing and online),
            "embedded" (the 10k/2k real-MNIST subset shipped in data/), or
            "auto" (full if present or downloadable, else embedded; prints which). Default: $LECTURELIB_MNIST or auto.
    limit:  keep only the first `limit` digits (fast mode).
    Returns images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source = source if source is not None else os.environ.get("LECTURELIB_MNIST", "auto")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    root = Path(root) if root is not None else default_root()

    status = full_mnist_status(root)
    if source == "full":
        if status == "partial":
            raise DatasetError(f"MNIST under {root / 'MNIST' / 'raw'} is incomplete (a partial download?): "
                               f"delete that folder and run `python -m lecturelib.data download`")
        if status == "absent":
            if _offline():
                raise DatasetError(f"full MNIST is not under {root / 'MNIST' / 'raw'} and LECTURELIB_OFFLINE is set")
            download_full_mnist(root)
        images, labels = _load_full(split, root)
    elif source == "embedded":
        images, labels = _load_embedded(split)
    else:
        reason = None
        if status == "partial":
            reason = f"the files under {root / 'MNIST' / 'raw'} are incomplete"
        elif status == "absent":
            if _offline():
                reason = "it is not on disk and LECTURELIB_OFFLINE is set"
            elif _download_failed is not None:
                reason = f"it is not on disk and could not be downloaded ({_download_failed})"
            else:
                try:
                    download_full_mnist(root)
                except DatasetError:
                    reason = f"it is not on disk and could not be downloaded ({_download_failed})"
        if reason is None:
            images, labels = _load_full(split, root)
            print(f"MNIST {split}: full release, {len(labels):,} digits from {root / 'MNIST' / 'raw'}")
        else:
            images, labels = _load_embedded(split)
            print(f"MNIST {split}: embedded subset, {len(labels):,} real digits (full MNIST not used: {reason})")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
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

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 generator: torch.Generator | None = None):
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
        perm = (torch.randperm(n, generator=self.generator, device="cpu").to(tensors[0].device)
                if self.shuffle else None)
        for i in range(len(self)):
            if perm is None:
                batch = tuple(t[i * size:(i + 1) * size] for t in tensors)
            else:
                rows = perm[i * size:(i + 1) * size]
                batch = tuple(t.index_select(0, rows) for t in tensors)
            yield batch if len(batch) > 1 else batch[0]


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lecturelib.data",
                                     description="Get full MNIST for the course (optional: the embedded subset "
                                                 "is used when it is absent).")
    parser.add_argument("command", choices=["download", "status"])
    parser.add_argument("--root", type=Path, default=default_root())
    args = parser.parse_args(argv)
    if args.command == "download":
        if full_mnist_status(args.root) == "present":
            print(f"full MNIST already in {args.root / 'MNIST' / 'raw'}")
            return 0
        try:
            download_full_mnist(args.root, timeout=30.0)
        except DatasetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"full MNIST downloaded into {args.root / 'MNIST' / 'raw'}")
    else:
        print(f"full MNIST under {args.root}: {full_mnist_status(args.root)}; embedded subset: {EMBEDDED_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
