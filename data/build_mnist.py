"""Build data/mnist.npz, the copy of MNIST that ships with the course, from the four official IDX files.

    python data/build_mnist.py /path/to/MNIST/raw

Arrays (uint8 pixels and labels exactly as in the official release, in the official order):
    train_images (60000, 28, 28), train_labels (60000,), test_images (10000, 28, 28), test_labels (10000,)
and the digits that fast mode (CI) uses, a class-balanced subset drawn once with a fixed seed:
    ci_train_index (10000,): 1,000 training digits per class;  ci_test_index (2000,): 200 test digits per class.
The file is deterministic (same input, same bytes); the script prints the SHA-256 that lecturelib/data.py checks.
"""
import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from lecturelib.data import IDX_FILES, read_idx  # noqa: E402  (one IDX reader for the course)

CI_PER_CLASS = {"train": 1000, "test": 200}


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `per_class` random examples of each digit, shuffled together."""
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])
    return rng.permutation(keep)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed's layout (one .npy per array, deflated), with fixed timestamps so the bytes never vary."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", type=Path, help="folder holding the four uncompressed MNIST IDX files")
    parser.add_argument("--out", type=Path, default=HERE / "mnist.npz")
    args = parser.parse_args()
    rng = np.random.default_rng(2013)  # fixed: the CI subset must be the same every time the file is rebuilt
    arrays = {}
    for split, (images_file, labels_file) in IDX_FILES.items():
        arrays[f"{split}_images"] = read_idx(args.raw / images_file)
        arrays[f"{split}_labels"] = read_idx(args.raw / labels_file)
    for split in IDX_FILES:
        # int32 indices into the official order; drawn train first, then test, from one generator
        arrays[f"ci_{split}_index"] = balanced_subset(arrays[f"{split}_labels"], CI_PER_CLASS[split], rng).astype(np.int32)
    write_npz(args.out, arrays)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    sizes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {sizes}\nsha256 {digest}")


if __name__ == "__main__":
    main()
