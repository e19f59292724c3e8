"""`python -m course data build|check|export`: the copy of MNIST that ships with the course, data/mnist.npz.

    python -m course data build /path/to/MNIST/raw     # build it from the four official IDX files
    python -m course data check                        # SHA-256, and byte-identity with the official files (MD5)
    python -m course data export DIR                   # write the four IDX files into DIR/MNIST/raw

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

from lecturelib.data import CLONE_FILE, DatasetError, mnist_arrays

DATA_FILE = CLONE_FILE  # the repository's data/mnist.npz: what `build` writes and `check` verifies

# --- the IDX codec: MNIST's official file format (course tooling; the notebooks read mnist.npz) -------------
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


def write_idx(folder: Path) -> Path:
    """Write the official four IDX files into folder/MNIST/raw (as torchvision.datasets.MNIST reads them)."""
    raw = Path(folder) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = mnist_arrays()
    for split, (images_file, labels_file) in IDX_FILES.items():
        (raw / images_file).write_bytes(idx_bytes(arrays[f"{split}_images"]))
        (raw / labels_file).write_bytes(idx_bytes(arrays[f"{split}_labels"]))
    return raw


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


def build(raw: Path, out: Path) -> None:
    rng = np.random.default_rng(2013)  # fixed: the CI subset must be the same every time the file is rebuilt
    arrays = {}
    for split, (images_file, labels_file) in IDX_FILES.items():
        arrays[f"{split}_images"] = read_idx(raw / images_file, IDX_ITEM_SHAPE["images"])
        arrays[f"{split}_labels"] = read_idx(raw / labels_file, IDX_ITEM_SHAPE["labels"])
    for split in IDX_FILES:
        # int32 indices into the official order; drawn train first, then test, from one generator
        index = balanced_subset(arrays[f"{split}_labels"], CI_PER_CLASS[split], rng)
        arrays[f"ci_{split}_index"] = index.astype(np.int32)
    write_npz(out, arrays)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    sizes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {sizes}\nsha256 {digest}")


def check() -> None:
    """The shipped file's SHA-256 (checked by mnist_arrays) and the MD5 of each IDX file it reproduces."""
    arrays = mnist_arrays()
    for split, names in IDX_FILES.items():
        for name, kind in zip(names, ("images", "labels")):
            md5 = hashlib.md5(idx_bytes(arrays[f"{split}_{kind}"])).hexdigest()
            if md5 != IDX_MD5[name]:
                raise DatasetError(f"{name} from {DATA_FILE} has MD5 {md5}, the official file {IDX_MD5[name]}")
    print(f"{DATA_FILE}: SHA-256 ok, identical to the official MNIST release (MD5 of all four files match)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build data/mnist.npz from the four official IDX files")
    b.add_argument("raw", type=Path, help="folder holding the four uncompressed MNIST IDX files")
    b.add_argument("--out", type=Path, default=DATA_FILE)
    sub.add_parser("check", help="verify data/mnist.npz against the official files' MD5 sums")
    e = sub.add_parser("export", help="write the four IDX files into DIR/MNIST/raw (as torchvision reads them)")
    e.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.raw, args.out)
        elif args.command == "check":
            check()
        else:
            print(f"wrote the four MNIST IDX files into {write_idx(args.dir)}")
    except (DatasetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
