"""Build the embedded MNIST subset shipped with the course (data/mnist_embedded.npz).

Reads the four official MNIST IDX files (LeCun, Cortes & Burges) and keeps a class-balanced, shuffled subset:
1,000 training and 200 test digits per class. The pixels are the original uint8 values, unchanged.

    python data/build_embedded.py /path/to/MNIST/raw

prints the SHA-256 of the file it wrote; `lecturelib/data.py` checks that value on every load.
"""
import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from lecturelib.data import read_idx  # noqa: E402  (one IDX reader for the course)

PER_CLASS = {"train": 1000, "test": 200}
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `per_class` random examples of each digit, shuffled together."""
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])
    return rng.permutation(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", type=Path, help="folder holding the four uncompressed MNIST IDX files")
    parser.add_argument("--out", type=Path, default=HERE / "mnist_embedded.npz")
    args = parser.parse_args()
    rng = np.random.default_rng(2013)  # fixed: the subset must be the same every time it is rebuilt
    arrays = {}
    for split, (images_file, labels_file) in FILES.items():
        images = read_idx(args.raw / images_file)
        labels = read_idx(args.raw / labels_file)
        keep = balanced_subset(labels, PER_CLASS[split], rng)
        arrays[f"{split}_images"] = images[keep]
        arrays[f"{split}_labels"] = labels[keep]
    np.savez_compressed(args.out, **arrays)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    sizes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {sizes}\nsha256 {digest}")


if __name__ == "__main__":
    main()
