"""The training loop: history, evaluation, checkpoint cache (atomic, safe, validated), NaN guard, interrupts."""

import os

import pytest
import torch

from lecturelib import checkpoints, models, objectives, runtime, train


@pytest.fixture(autouse=True)
def checkpoints_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(tmp_path / "ckpt"))
    return tmp_path / "ckpt"


def mse_loss(ae, x):
    err = objectives.reconstruction_error(x, ae(x))
    return {"loss": err.mean(), "max": err.max()}


def small_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g)


def test_fit_logs_every_term_per_epoch_and_evaluates():
    torch.manual_seed(0)
    ae = models.LinearAE(3)
    x = small_data()
    history = train.fit(ae, mse_loss, x, epochs=3, batch_size=16, test=x[:20], progress=False)
    assert history.epochs == 3 and set(history.train) == {"loss", "max"} and set(history.test) == {"loss", "max"}
    assert all(len(v) == 3 for v in history.train.values())
    assert history.train["loss"][-1] < history.train["loss"][0]
    with torch.no_grad():
        expected = objectives.reconstruction_error(x[:20], ae(x[:20])).mean().item()
    assert history.test["loss"][-1] == pytest.approx(expected, rel=1e-5)


def test_fit_passes_tuples_as_batches():
    seen = []

    def loss(model, batch):
        x, y = batch
        seen.append(len(x) == len(y))
        return {"loss": model(x).pow(2).mean()}

    train.fit(models.LinearAE(2), loss, (small_data(10), torch.arange(10)), epochs=1, batch_size=4, progress=False)
    assert seen and all(seen)


def test_same_seed_gives_the_same_training_run():
    def run():
        runtime.seed_everything(7)
        ae = models.MLPAE(2, (16,))
        return train.fit(ae, mse_loss, small_data(), epochs=2, batch_size=16, progress=False).train["loss"]

    assert run() == run()


def test_checkpoint_round_trip_restores_weights_and_history(checkpoints_in_tmp):
    torch.manual_seed(0)
    vae = models.GaussianVAE(latent_dim=2, hidden_dim=8)
    history = train.History(train={"loss": [3.0, 2.0]}, test={"loss": [3.5, 2.5]}, seconds=[0.1, 0.1])
    path = checkpoints.save_checkpoint(checkpoints_in_tmp / "vae.pt", vae, history)
    rebuilt, loaded = checkpoints.load_checkpoint(path)
    assert rebuilt.config == vae.config
    for a, b in zip(vae.state_dict().values(), rebuilt.state_dict().values()):
        assert torch.equal(a, b)
    assert loaded == history.to_dict()


def test_fit_reuses_a_cached_model_instead_of_retraining(checkpoints_in_tmp, capsys):
    x = small_data()
    torch.manual_seed(0)
    first = models.LinearAE(3)
    h1 = train.fit(first, mse_loss, x, epochs=2, batch_size=16, checkpoint="lin", progress=False)
    assert len(list(checkpoints_in_tmp.glob("lin-*.pt"))) == 1
    torch.manual_seed(0)
    second = models.LinearAE(3)  # the same initial weights, in another object: a hit
    h2 = train.fit(second, mse_loss, x, epochs=2, batch_size=16, checkpoint="lin", progress=False)
    assert "(from the cache)" in capsys.readouterr().out
    assert torch.equal(first.U, second.U) and h1.to_dict() == h2.to_dict()


def test_other_data_or_settings_do_not_hit_the_cache(checkpoints_in_tmp):
    x = small_data()
    train.fit(models.LinearAE(3), mse_loss, x, epochs=1, batch_size=16, checkpoint="lin", progress=False)
    train.fit(
        models.LinearAE(3), mse_loss, small_data(seed=1), epochs=1, batch_size=16, checkpoint="lin", progress=False
    )
    train.fit(models.LinearAE(3), mse_loss, x, epochs=1, batch_size=32, checkpoint="lin", progress=False)
    assert len(list(checkpoints_in_tmp.glob("lin-*.pt"))) == 3


def test_corrupt_checkpoint_is_reported_and_retrained(checkpoints_in_tmp, capsys):
    x = small_data()
    torch.manual_seed(0)
    train.fit(models.LinearAE(3), mse_loss, x, epochs=1, batch_size=16, checkpoint="lin", progress=False)
    (path,) = checkpoints_in_tmp.glob("lin-*.pt")
    path.write_bytes(path.read_bytes()[:100])  # truncated, e.g. a killed kernel before atomic saves
    with pytest.raises(checkpoints.CheckpointError, match="not a readable checkpoint"):
        checkpoints.load_checkpoint(path)
    torch.manual_seed(0)
    history = train.fit(models.LinearAE(3), mse_loss, x, epochs=1, batch_size=16, checkpoint="lin", progress=False)
    assert "(trained; the cached model was unusable" in capsys.readouterr().out and history.epochs == 1
    checkpoints.load_checkpoint(path)  # rewritten whole


def test_checkpoint_of_another_architecture_is_refused(checkpoints_in_tmp):
    path = checkpoints.save_checkpoint(checkpoints_in_tmp / "ae.pt", models.LinearAE(3))
    with pytest.raises(checkpoints.CheckpointError, match="holds a LinearAE"):
        checkpoints.load_checkpoint(path, models.LinearAE(4))
    with pytest.raises(checkpoints.CheckpointError, match="holds a LinearAE"):
        checkpoints.load_checkpoint(path, models.AffineAE(3))


def test_loading_never_runs_pickled_code(checkpoints_in_tmp):
    marker = checkpoints_in_tmp.parent / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = checkpoints_in_tmp / "evil.pt"
    evil.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "payload": Exploit()}, evil)
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.load_checkpoint(evil)
    assert not marker.exists()


def test_an_interrupted_save_leaves_the_previous_checkpoint_intact(checkpoints_in_tmp, monkeypatch):
    path = checkpoints_in_tmp / "ae.pt"
    good = models.LinearAE(3)
    checkpoints.save_checkpoint(path, good)
    before = path.read_bytes()

    def killed_mid_write(obj, fh, *args, **kwargs):
        fh.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(path, models.LinearAE(3))
    assert path.read_bytes() == before
    assert [p.name for p in checkpoints_in_tmp.iterdir()] == ["ae.pt"]  # no temp file left behind


def test_interrupted_training_caches_nothing(checkpoints_in_tmp):
    calls = {"n": 0}

    def loss(model, x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return mse_loss(model, x)

    with pytest.raises(KeyboardInterrupt):
        train.fit(models.LinearAE(3), loss, small_data(), epochs=2, batch_size=16, checkpoint="lin", progress=False)
    left = [p.name for p in checkpoints_in_tmp.glob("*")]
    assert len(left) == 1 and left[0].startswith(".lin-") and left[0].endswith(".pt.lock"), left  # the lock only


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_good_weights():
    torch.manual_seed(0)
    ae = models.LinearAE(3)
    calls = {"n": 0}
    snapshot = {}

    def loss(model, x):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2, step 1 (4 steps per epoch)
            snapshot.update({k: v.clone() for k, v in model.state_dict().items()})
            return {"loss": model(x).sum() * float("nan")}
        return mse_loss(model, x)

    with pytest.raises(train.TrainingDiverged, match="epoch 2, step 1"):
        train.fit(ae, loss, small_data(), epochs=3, batch_size=16, progress=False)
    assert torch.isfinite(ae.U).all()
    assert torch.equal(ae.U, snapshot["U"])  # the weights at the end of epoch 1


def test_infinite_loss_is_caught_at_the_end_of_the_epoch_too():
    def loss(model, x):
        return {"loss": model(x).sum() + float("inf")}

    with pytest.raises(train.TrainingDiverged, match="epoch 1, step 1"):
        train.fit(models.LinearAE(2), loss, small_data(), epochs=1, batch_size=16, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"epochs": 0}, "epochs"), ({"epochs": 1, "lr": -1.0}, "lr"), ({"epochs": 1, "schedule": "cosine"}, "schedule")],
)
def test_fit_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.fit(models.LinearAE(2), mse_loss, small_data(), progress=False, **kwargs)


def test_what_follows_training_is_the_same_whether_trained_or_loaded(checkpoints_in_tmp):
    x = small_data()
    draws = []
    for _ in range(2):  # first: trains and caches; second: loads from the cache
        runtime.seed_everything(0)
        ae = models.LinearAE(3)
        train.fit(ae, mse_loss, x, epochs=1, batch_size=16, checkpoint="lin", progress=False)
        draws.append(torch.rand(3))
    assert torch.equal(draws[0], draws[1])


def test_editing_a_helper_the_loss_calls_retrains(checkpoints_in_tmp):
    namespace = {"objectives": objectives}
    for body in ("return x", "return x.clamp(0, 0.5)"):
        exec(
            f"def corrupt(x):\n    {body}\n"
            "def loss(m, x):\n    return {'loss': objectives.reconstruction_error(x, m(corrupt(x))).mean()}\n",
            namespace,
        )
        train.fit(
            models.LinearAE(2),
            namespace["loss"],
            small_data(),
            epochs=1,
            batch_size=16,
            checkpoint="dae",
            progress=False,
        )
    assert len(list(checkpoints_in_tmp.glob("dae-*.pt"))) == 2


def test_fit_reports_under_the_checkpoint_name(capsys):
    train.fit(
        models.LinearAE(2), mse_loss, small_data(), epochs=1, batch_size=16, checkpoint="named-run", progress=False
    )
    assert capsys.readouterr().out.startswith("named-run: 1 epoch in")
