"""MNIST loading: the shipped file's checksum, bit-identity with the official release, the CI subset, batching."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from course import build_data
from lecturelib import data

SHARED_RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "MNIST" / "raw"


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_all_of_mnist_ships_with_shapes_ranges_and_class_counts(capsys):
    x, y = data.load_mnist("train", subset="all")
    assert x.shape == (60_000, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    # the official release's class counts and mean pixel (0.1307)
    assert torch.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(x.mean().item() - 0.1307) < 5e-4
    x_test, y_test = data.load_mnist("test", subset="all")
    assert x_test.shape == (10_000, 1, 28, 28)
    assert torch.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert "60,000 digits (all of MNIST)" in capsys.readouterr().out


def test_shipped_arrays_reproduce_the_official_files_md5():
    """The IDX encoding of each shipped array has the MD5 of the official release's file (bit-identical data)."""
    arrays = data.mnist_arrays()
    for split, names in build_data.IDX_FILES.items():
        for name, kind in zip(names, ("images", "labels")):
            assert hashlib.md5(build_data.idx_bytes(arrays[f"{split}_{kind}"])).hexdigest() == build_data.IDX_MD5[name]


@pytest.mark.skipif(not SHARED_RAW.exists(), reason="the official IDX files are not beside this checkout")
def test_shipped_arrays_equal_the_official_idx_files():
    arrays = data.mnist_arrays()
    for split, (images_file, labels_file) in build_data.IDX_FILES.items():
        assert np.array_equal(arrays[f"{split}_images"], build_data.read_idx(SHARED_RAW / images_file))
        assert np.array_equal(arrays[f"{split}_labels"], build_data.read_idx(SHARED_RAW / labels_file))


def test_ci_subset_is_class_balanced_and_drawn_from_the_same_file():
    x, y = data.load_mnist("train", subset="ci")
    assert x.shape == (10_000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [1000] * 10
    x_all, y_all = data.load_mnist("train", subset="all")
    index = torch.as_tensor(data.mnist_arrays()["ci_train_index"].astype(np.int64))
    assert torch.equal(x, x_all[index]) and torch.equal(y, y_all[index])
    x_test, y_test = data.load_mnist("test", subset="ci", limit=500)
    assert x_test.shape == (500, 1, 28, 28)
    assert torch.bincount(data.load_mnist("test", subset="ci")[1]).tolist() == [200] * 10


def test_default_subset_follows_the_mode(monkeypatch):
    monkeypatch.setenv("LECTURELIB_FAST", "1")
    assert len(data.load_mnist("test", quiet=True)[1]) == 2_000
    monkeypatch.setenv("LECTURELIB_FAST", "0")
    assert len(data.load_mnist("test", quiet=True)[1]) == 10_000


def test_checksum_failure_is_a_clear_error(tmp_path, monkeypatch):
    corrupt = tmp_path / "mnist.npz"
    blob = bytearray(data.data_file().read_bytes())
    blob[1000] ^= 0xFF
    corrupt.write_bytes(bytes(blob))
    monkeypatch.setattr(data, "CLONE_FILE", corrupt)
    monkeypatch.setattr(data, "PACKAGED_FILE", tmp_path / "not-installed" / "mnist.npz")
    with pytest.raises(data.DatasetError, match="corrupt.*git checkout -- data/mnist.npz"):
        data.load_mnist("train", subset="all")


def test_missing_data_file_says_how_to_restore_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CLONE_FILE", tmp_path / "nothing.npz")
    monkeypatch.setattr(data, "PACKAGED_FILE", tmp_path / "not-installed" / "mnist.npz")
    with pytest.raises(data.DatasetError, match="missing.*git checkout"):
        data.load_mnist("test")


def test_the_data_file_is_found_in_a_clone_in_a_package_or_where_the_variable_says(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert data.data_file() == data.CLONE_FILE  # this checkout: no copy inside the package folder
    packaged = tmp_path / "site" / "lecturelib" / "mnist" / "mnist.npz"
    packaged.parent.mkdir(parents=True)
    packaged.write_bytes(b"")
    monkeypatch.setattr(data, "PACKAGED_FILE", packaged)
    assert data.data_file() == packaged  # an installed wheel's own copy wins over any folder around it
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.data_file() == tmp_path / "mnist.npz"
    monkeypatch.setenv(data.DATA_ENV, str(packaged))
    assert data.data_file() == packaged


def test_a_missing_packaged_file_says_to_reinstall(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "CLONE_FILE", tmp_path / "no-clone" / "mnist.npz")
    monkeypatch.setattr(data, "PACKAGED_FILE", tmp_path / "gone.npz")
    with pytest.raises(data.DatasetError, match="missing.*reinstall"):
        data.load_mnist("test", quiet=True)


def test_load_mnist_says_what_it_loaded_once_per_process(capsys):
    data._announced.clear()
    data.load_mnist("test", subset="ci")
    data.load_mnist("test", subset="ci")
    data.load_mnist("test", subset="ci", limit=5)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "MNIST test: 2,000 digits (the CI subset of MNIST)",
        "MNIST test: 5 digits (the CI subset of MNIST, first 5)",
    ]


def test_export_writes_idx_files_that_read_back(tmp_path):
    raw = build_data.write_idx(tmp_path)
    images = build_data.read_idx(raw / "t10k-images-idx3-ubyte")
    assert images.shape == (10_000, 28, 28)
    assert (
        hashlib.md5((raw / "t10k-labels-idx1-ubyte").read_bytes()).hexdigest()
        == build_data.IDX_MD5["t10k-labels-idx1-ubyte"]
    )


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(data.DatasetError, match="magic"):
        build_data.read_idx(bad)
    _write_idx(bad, np.zeros((2, 3), dtype=np.uint8))
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(data.DatasetError, match="truncated"):
        build_data.read_idx(bad)


def test_batches_cover_every_example_once_per_epoch():
    x = torch.arange(10).float()
    y = torch.arange(10) * 10
    batches = data.Batches(x, y, batch_size=4)
    assert len(batches) == 3
    seen_x, seen_y = zip(*batches)
    xs, ys = torch.cat(seen_x), torch.cat(seen_y)
    assert sorted(xs.tolist()) == list(range(10))
    assert torch.equal(ys, (xs * 10).long())  # pairs stay together
    assert len(data.Batches(x, batch_size=4, drop_last=True)) == 2
    assert torch.equal(torch.cat(list(data.Batches(x, batch_size=3, shuffle=False))), x)


def test_an_idx_file_with_other_dimensions_but_the_same_byte_count_is_refused(tmp_path):
    """(60000, 28, 28) rewritten as (30000, 56, 28): same bytes, other images; it must not load as MNIST."""
    path = tmp_path / "train-images-idx3-ubyte"
    _write_idx(path, np.zeros((30, 56, 28), dtype=np.uint8))
    assert build_data.read_idx(path).shape == (30, 56, 28)  # a valid IDX file in itself
    with pytest.raises(data.DatasetError, match="expected \\(28, 28\\)"):
        build_data.read_idx(path, build_data.IDX_ITEM_SHAPE["images"])
