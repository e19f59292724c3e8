"""MNIST loading: shapes and ranges, the embedded subset's checksum, full MNIST on disk, offline fallback."""
import hashlib
import time

import numpy as np
import pytest
import torch

from lecturelib import data


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_full_mnist(tmp_path, monkeypatch):
    """A root holding official-format IDX files; the expected sizes are patched to these small files'."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sizes = {}
    for split, n in (("train", 30), ("test", 12)):
        (images_file, _), (labels_file, _) = data.FULL_FILES[split]
        _write_idx(raw / images_file, rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / labels_file, rng.integers(0, 10, n))
        sizes[split] = ((images_file, (raw / images_file).stat().st_size),
                        (labels_file, (raw / labels_file).stat().st_size))
    monkeypatch.setattr(data, "FULL_FILES", sizes)
    return tmp_path


def test_embedded_subset_shapes_ranges_and_balance():
    x, y = data.load_mnist("train", source="embedded")
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10_000,) and y.dtype == torch.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.equal(y.bincount(), torch.full((10,), 1000))
    x_test, y_test = data.load_mnist("test", source="embedded", limit=500)
    assert x_test.shape == (500, 1, 28, 28) and y_test.shape == (500,)


def test_embedded_subset_is_real_mnist():
    """The mean intensity of real MNIST digits is about 0.13 (0.1307 on the full training set)."""
    x, _ = data.load_mnist("train", source="embedded")
    assert 0.12 < x.mean().item() < 0.14


def test_embedded_checksum_failure_is_a_clear_error(tmp_path, monkeypatch):
    corrupt = tmp_path / "mnist_embedded.npz"
    blob = bytearray(data.EMBEDDED_FILE.read_bytes())
    blob[1000] ^= 0xFF
    corrupt.write_bytes(bytes(blob))
    monkeypatch.setattr(data, "EMBEDDED_FILE", corrupt)
    with pytest.raises(data.DatasetError, match="corrupt.*git checkout"):
        data.load_mnist("train", source="embedded")


def test_missing_embedded_file_says_how_to_restore_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "EMBEDDED_FILE", tmp_path / "absent.npz")
    with pytest.raises(data.DatasetError, match="missing.*git checkout"):
        data.load_mnist("test", source="embedded")


def test_embedded_sha256_constant_matches_the_committed_file():
    assert hashlib.sha256(data.EMBEDDED_FILE.read_bytes()).hexdigest() == data.EMBEDDED_SHA256


def test_full_mnist_is_read_from_root(fake_full_mnist):
    x, y = data.load_mnist("train", source="full", root=fake_full_mnist)
    assert x.shape == (30, 1, 28, 28) and y.shape == (30,)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_auto_prefers_full_mnist_when_present(fake_full_mnist, capsys):
    x, _ = data.load_mnist("test", source="auto", root=fake_full_mnist)
    assert len(x) == 12
    assert "full release" in capsys.readouterr().out


def test_offline_auto_falls_back_to_embedded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LECTURELIB_OFFLINE", "1")
    x, _ = data.load_mnist("test", source="auto", root=tmp_path)
    assert len(x) == 2000
    assert "embedded subset" in capsys.readouterr().out


def test_auto_falls_back_fast_when_the_network_is_unreachable(tmp_path, monkeypatch, capsys):
    """No LECTURELIB_OFFLINE: the download is tried, fails (here: connection refused at once), and auto falls back."""
    monkeypatch.delenv("LECTURELIB_OFFLINE", raising=False)
    monkeypatch.setattr(data, "_download_failed", None)

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no network in this test")

    monkeypatch.setattr(data.socket, "create_connection", refuse)
    start = time.perf_counter()
    x, _ = data.load_mnist("test", source="auto", root=tmp_path)
    assert time.perf_counter() - start < 10 and len(x) == 2000
    assert "could not be downloaded" in capsys.readouterr().out


def test_download_honours_its_timeout_on_a_silent_network(tmp_path, monkeypatch):
    """A connection that never answers must not hang: the bounded socket timeout turns it into a DatasetError."""
    import socket

    def silent(address, timeout=None):
        assert timeout is not None and timeout <= data.DOWNLOAD_TIMEOUT_S
        raise socket.timeout("timed out")

    monkeypatch.setattr(data.socket, "create_connection", silent)
    with pytest.raises(data.DatasetError, match="could not download"):
        data.download_full_mnist(tmp_path)


def test_full_without_files_offline_raises_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURELIB_OFFLINE", "1")
    with pytest.raises(data.DatasetError, match="not under"):
        data.load_mnist("train", source="full", root=tmp_path)


def test_partial_download_is_detected_not_half_loaded(fake_full_mnist, capsys, monkeypatch):
    monkeypatch.setenv("LECTURELIB_OFFLINE", "1")
    images_file = fake_full_mnist / "MNIST" / "raw" / data.FULL_FILES["train"][0][0]
    images_file.write_bytes(images_file.read_bytes()[:500])  # truncated
    assert data.full_mnist_status(fake_full_mnist) == "partial"
    with pytest.raises(data.DatasetError, match="incomplete"):
        data.load_mnist("train", source="full", root=fake_full_mnist)
    x, _ = data.load_mnist("train", source="auto", root=fake_full_mnist)
    assert len(x) == 10_000 and "incomplete" in capsys.readouterr().out


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(data.DatasetError, match="magic"):
        data.read_idx(bad)
    _write_idx(bad, np.zeros((2, 3), dtype=np.uint8))
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(data.DatasetError, match="truncated"):
        data.read_idx(bad)


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
