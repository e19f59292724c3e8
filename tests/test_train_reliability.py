"""fit never keeps non-finite weights, never hands back a stale cached model, and survives cache faults."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lecturelib import cachekey, checkpoints, models, objectives, train


@pytest.fixture(autouse=True)
def checkpoints_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.delenv("LECTURELIB_RETRAIN", raising=False)
    return tmp_path / "ckpt"


def data(n=64, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def mse(ae, x):
    return {"loss": objectives.reconstruction_error(x, ae(x)).mean()}


def cached(folder, name="run"):
    return sorted(folder.glob(f"{name}-*.pt"))


# --- the NaN guard ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [1, 2])
def test_a_huge_step_with_a_finite_loss_keeps_no_infinite_weight(checkpoints_in_tmp, epochs):
    """Full batch, lr = 1e40: the first loss is finite but the step sends the weights to inf."""
    torch.manual_seed(0)
    ae = models.LinearAE(3)
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    with pytest.raises(train.TrainingDiverged, match="weights became NaN or infinite in epoch 1"):
        train.fit(
            ae,
            mse,
            data(),
            epochs=epochs,
            batch_size=64,
            lr=1e40,
            schedule="constant",
            checkpoint="run",
            progress=False,
        )
    assert all(torch.isfinite(v).all() for v in ae.state_dict().values())
    assert all(torch.equal(v, before[k]) for k, v in ae.state_dict().items())  # restored to before training
    assert not cached(checkpoints_in_tmp)


def test_non_finite_weights_are_never_saved_or_loaded(checkpoints_in_tmp):
    ae = models.LinearAE(2)
    with torch.no_grad():
        ae.U[0, 0] = float("nan")
    with pytest.raises(checkpoints.CheckpointError, match="non-finite"):
        checkpoints.save_checkpoint(checkpoints_in_tmp / "bad.pt", ae)
    good = models.LinearAE(2)
    path = checkpoints.save_checkpoint(checkpoints_in_tmp / "x.pt", good)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["U"][0, 0] = float("inf")
    torch.save(payload, path)
    with pytest.raises(checkpoints.CheckpointError, match="non-finite"):
        checkpoints.load_checkpoint(path, models.LinearAE(2))


# --- stale models: the key covers what shapes training ----------------------------------------------------------
def _fit(loss, x=None, name="run", model=None):
    torch.manual_seed(0)
    train.fit(
        model or models.LinearAE(2),
        loss,
        data() if x is None else x,
        epochs=1,
        batch_size=32,
        checkpoint=name,
        progress=False,
    )


def test_a_global_value_the_loss_reads_is_part_of_the_key(checkpoints_in_tmp):
    namespace = {"objectives": objectives, "max_level": 0.5}
    exec(
        "def loss(m, x):\n    return {'loss': objectives.reconstruction_error(x.clamp(0, max_level), m(x)).mean()}",
        namespace,
    )
    _fit(namespace["loss"])
    namespace["max_level"] = 0.8  # the notebook edits a global and re-runs the cell
    _fit(namespace["loss"])
    assert len(cached(checkpoints_in_tmp)) == 2


def test_a_helper_two_calls_deep_is_part_of_the_key(checkpoints_in_tmp):
    namespace = {"objectives": objectives}
    for inner in ("return x", "return x * 0.5"):
        exec(
            f"def inner(x):\n    {inner}\n"
            "def outer(x):\n    return inner(x)\n"
            "def loss(m, x):\n    return {'loss': objectives.reconstruction_error(outer(x), m(x)).mean()}",
            namespace,
        )
        _fit(namespace["loss"])
    assert len(cached(checkpoints_in_tmp)) == 2


def test_a_closure_value_is_part_of_the_key(checkpoints_in_tmp):
    def make_loss(scale):
        def loss(m, x):
            return {"loss": objectives.reconstruction_error(x * scale, m(x)).mean()}

        return loss

    _fit(make_loss(1.0))
    _fit(make_loss(0.5))
    assert len(cached(checkpoints_in_tmp)) == 2


def test_the_order_of_the_labels_is_part_of_the_key(checkpoints_in_tmp):
    def loss(m, batch):
        x, y = batch
        return {"loss": objectives.reconstruction_error(x, m(x)).mean() + 0 * y.float().mean()}

    x = data()
    y = torch.arange(64) % 10
    _fit(loss, (x, y))
    _fit(loss, (x, y.flip(0)))  # same label counts and sums, other order
    assert len(cached(checkpoints_in_tmp)) == 2


def test_a_model_class_edited_in_the_notebook_is_part_of_the_key(checkpoints_in_tmp):
    namespace = {"models": models, "torch": torch}
    for body in ("return self.g(self.f(x))", "return self.g(self.f(x)).clamp(0, 1)"):
        exec(f"class Mine(models.LinearAE):\n    def forward(self, x):\n        {body}\n", namespace)
        _fit(mse, model=namespace["Mine"](2))
    assert len(cached(checkpoints_in_tmp)) == 2


def test_the_same_run_reloads_and_retrains_when_asked(checkpoints_in_tmp, capsys, monkeypatch):
    _fit(mse)
    _fit(mse)
    out = capsys.readouterr().out
    assert "(from the cache)" in out
    monkeypatch.setenv("LECTURELIB_RETRAIN", "1")
    _fit(mse)
    assert "LECTURELIB_RETRAIN is set" in capsys.readouterr().out


# --- cache faults --------------------------------------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_read_only_cache_folder_keeps_the_trained_model(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(folder))
    with pytest.warns(UserWarning, match="could not cache"):
        history = train.fit(models.LinearAE(2), mse, data(), epochs=2, batch_size=32, checkpoint="run", progress=False)
    assert history.epochs == 2


def test_an_unwritable_cache_keeps_the_trained_model(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # mkdir under a file fails for root too
    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(blocker / "ckpt"))
    with pytest.warns(UserWarning, match="could not cache the trained model"):
        history = train.fit(models.LinearAE(2), mse, data(), epochs=2, batch_size=32, checkpoint="run", progress=False)
    assert history.epochs == 2 and len(history.train["loss"]) == 2


def test_cached_files_are_readable_as_the_umask_allows(checkpoints_in_tmp):
    old = os.umask(0o022)
    try:
        _fit(mse)
    finally:
        os.umask(old)
    (path,) = cached(checkpoints_in_tmp)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_refused_checkpoint_leaves_the_model_as_it_was(checkpoints_in_tmp):
    path = checkpoints.save_checkpoint(checkpoints_in_tmp / "x.pt", models.LinearAE(2))
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["extra"] = torch.zeros(1)  # one more tensor than the model has
    torch.save(payload, path)
    model = models.LinearAE(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(checkpoints.CheckpointError, match="does not fit"):
        checkpoints.load_checkpoint(path, model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_abandoned_temp_files_are_cleaned_up(checkpoints_in_tmp):
    checkpoints_in_tmp.mkdir(parents=True)
    stale = checkpoints_in_tmp / ".run-abc.pt.xyz.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))  # written long ago by a killed save
    _fit(mse)
    assert not stale.exists()


# --- clear errors ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, error, words",
    [
        (
            lambda: train.fit(models.LinearAE(2), mse, torch.zeros(0, 1, 28, 28), epochs=1, progress=False),
            ValueError,
            "0 examples",
        ),
        (
            lambda: train.fit(models.LinearAE(2), mse, data().double(), epochs=1, progress=False),
            TypeError,
            "float64 but the model's weights are torch.float32",
        ),
        (
            lambda: train.fit(
                models.LinearAE(2), lambda m, x: {"total": mse(m, x)["loss"]}, data(), epochs=1, progress=False
            ),
            ValueError,
            "'loss' entry",
        ),
        (
            lambda: train.fit(
                models.LinearAE(2),
                lambda m, x: objectives.reconstruction_error(x, m(x)).mean(),
                data(),
                epochs=1,
                progress=False,
            ),
            ValueError,
            "must return a dict",
        ),
        (
            lambda: train.fit(
                models.LinearAE(2),
                lambda m, x: {"loss": objectives.reconstruction_error(x, m(x))},
                data(),
                epochs=1,
                progress=False,
            ),
            ValueError,
            "must be a scalar",
        ),
        (
            lambda: train.fit(models.LinearAE(2), mse, data(), epochs=1, batch_size=0, progress=False),
            ValueError,
            "batch_size",
        ),
    ],
)
def test_mistakes_get_errors_that_name_the_fix(call, error, words):
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value)


# --- two processes after the same model ---------------------------------------------------------------------------
_FIT_IN_ANOTHER_PROCESS = """
import torch
from lecturelib import models, objectives, train
x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
torch.manual_seed(0)
train.fit(models.LinearAE(2), lambda ae, b: {"loss": objectives.reconstruction_error(b, ae(b)).mean()}, x,
          epochs=2, batch_size=32, checkpoint="run", key="shared", progress=False)
"""


def test_a_second_process_waits_for_the_model_being_trained_and_loads_it(checkpoints_in_tmp):
    """Two kernels after the same model (06 and 07 open side by side): the one that finds the model being trained
    waits for it (checkpoints.training_lock) and loads it, instead of training it a second time."""
    path = checkpoints.cached_path("run", cachekey.given_key("shared"))
    with checkpoints.training_lock(path, "this test"):  # this process "trains" the model
        other = subprocess.Popen(
            [sys.executable, "-c", _FIT_IN_ANOTHER_PROCESS],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        first = other.stdout.readline()  # blocks until the other process says something
        assert "waiting to load it from the cache" in first, first
        torch.manual_seed(0)
        model = models.LinearAE(2)
        history = train.History(train={"loss": [1.0, 0.5]}, test={}, seconds=[0.1, 0.1])
        checkpoints.save_checkpoint(path, model, history)
    rest = other.communicate(timeout=60)[0]
    assert other.returncode == 0, rest
    assert "2 epochs in 0.2 s, loss 0.5 (from the cache, key 'shared')" in rest, rest


def test_a_lock_file_that_cannot_be_made_does_not_stop_training(checkpoints_in_tmp, monkeypatch, capsys):
    """A cache folder where no lock file can be made (read-only for the lock, as on some shared drives) trains and
    caches as before, without waiting."""

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self.lock_file))

    monkeypatch.setattr(checkpoints.FileLock, "acquire", refuse)
    _fit(mse)
    assert "(trained)" in capsys.readouterr().out and len(cached(checkpoints_in_tmp)) == 1
