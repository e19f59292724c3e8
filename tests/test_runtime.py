"""Device choice, seeding and fast mode."""

import random

import numpy as np
import pytest
import torch

from lecturelib import runtime


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("LECTURELIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.pick_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.pick_device().type == "cpu"


def test_device_override_and_its_errors(monkeypatch):
    monkeypatch.setenv("LECTURELIB_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")
    monkeypatch.setenv("LECTURELIB_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        runtime.pick_device()


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    runtime.seed_everything(123)
    first = draw()
    runtime.seed_everything(123)
    assert draw() == first
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(-1)


@pytest.mark.parametrize("value, fast", [("1", True), ("true", True), ("0", False), ("", False)])
def test_fast_mode_switch(monkeypatch, value, fast):
    monkeypatch.setenv("LECTURELIB_FAST", value)
    assert runtime.fast_mode() is fast
    assert runtime.by_mode(full="full", fast="fast") == ("fast" if fast else "full")


def test_fast_mode_rejects_unclear_values(monkeypatch):
    monkeypatch.setenv("LECTURELIB_FAST", "maybe")
    with pytest.raises(ValueError, match="LECTURELIB_FAST"):
        runtime.fast_mode()


def test_setup_says_device_and_mode(capsys, monkeypatch):
    monkeypatch.setenv("LECTURELIB_FAST", "1")
    device = runtime.setup(seed=3)
    out = capsys.readouterr().out
    assert isinstance(device, torch.device) and "fast" in out and "seed 3" in out


def test_setup_names_the_data_of_each_mode(capsys, monkeypatch):
    """The setup line says which data the mode uses: all of MNIST in full mode, the CI subset in fast mode."""
    monkeypatch.setenv("LECTURELIB_FAST", "0")
    runtime.setup(seed=0)
    assert "mode full (all of MNIST" in capsys.readouterr().out
    monkeypatch.setenv("LECTURELIB_FAST", "1")
    runtime.setup(seed=0)
    assert "mode fast (CI-sized: the CI subset of MNIST" in capsys.readouterr().out


def test_checkpoints_go_where_the_variable_says_then_the_clone_then_a_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(tmp_path / "mine"))
    assert runtime.checkpoint_dir() == tmp_path / "mine"
    monkeypatch.delenv("LECTURELIB_CHECKPOINTS")
    assert runtime.checkpoint_dir() == runtime.CLONE_CHECKPOINTS  # this checkout, writable
    # an installed package: no clone around it, so a per-user folder, never site-packages
    site = tmp_path / "site-packages" / "checkpoints"
    monkeypatch.setattr(runtime, "CLONE_CHECKPOINTS", site)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    assert runtime.checkpoint_dir() == tmp_path / "cache" / "lecturelib" / "checkpoints"


def test_setup_says_where_models_are_cached(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("LECTURELIB_DEVICE", "cpu")
    runtime.setup(0)
    out = capsys.readouterr().out
    assert f"trained models are cached in {tmp_path}" in out and "LECTURELIB_RETRAIN=1 retrains" in out
