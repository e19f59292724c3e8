"""recipes.mnist_vae, the model of notebooks 06 and 07: a smoke test of its recipe, schedule, cache and seeding."""

import pytest
import torch

from lecturelib import models, objectives, recipes, train


@pytest.fixture(autouse=True)
def checkpoints_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.delenv("LECTURELIB_RETRAIN", raising=False)
    return tmp_path / "ckpt"


@pytest.mark.parametrize("fast, epochs", [("0", 60), ("1", 40)])
def test_the_budget_follows_the_mode(monkeypatch, fast, epochs):
    monkeypatch.setenv("LECTURELIB_FAST", fast)
    assert recipes.mnist_vae_epochs() == epochs


def test_mnist_vae_trains_the_course_recipe_once_then_loads_it(checkpoints_in_tmp, monkeypatch, capsys):
    calls, lrs = [], []
    real_fit, real_step = train.fit, torch.optim.lr_scheduler.OneCycleLR.step

    def recording_fit(*args, **kwargs):
        calls.append((args, kwargs))
        return real_fit(*args, **kwargs)

    def recording_step(scheduler, *args, **kwargs):
        real_step(scheduler, *args, **kwargs)
        lrs.append(scheduler.get_last_lr()[0])

    monkeypatch.setattr(recipes.train, "fit", recording_fit)
    monkeypatch.setattr(torch.optim.lr_scheduler.OneCycleLR, "step", recording_step)
    x = torch.rand(2 * recipes.FAST_BATCH_SIZE, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    model, history = recipes.mnist_vae(2, x, epochs=3, test=x[:64], progress=False)
    after_training = torch.rand(3)

    assert isinstance(model, models.VAE) and model.config == {"latent_dim": 2, "hidden_dim": 400}
    assert not model.training and history.epochs == 3 and len(history.test["loss"]) == 3
    ((args, kwargs),) = calls
    assert args[1] is objectives.binarized_vae_loss
    assert (kwargs["batch_size"], kwargs["lr"], kwargs["schedule"]) == (
        recipes.FAST_BATCH_SIZE,
        recipes.VAE_LR,
        "onecycle",
    )
    # one-cycle over 6 steps (2 batches x 3 epochs): up towards the peak VAE_LR, never above, then far below it
    assert recipes.VAE_LR / 2 < max(lrs) <= recipes.VAE_LR and min(lrs[lrs.index(max(lrs)) :]) < recipes.VAE_LR / 100
    assert len(list(checkpoints_in_tmp.glob("mnist-vae-d2-*.pt"))) == 1
    assert "VAE d=2: 3 epochs in" in capsys.readouterr().out

    torch.manual_seed(123)
    again, _ = recipes.mnist_vae(2, x, epochs=3, test=x[:64], progress=False)
    assert torch.equal(torch.rand(3), after_training)  # the caller's random draws are untouched, trained or loaded
    assert "(from the cache" in capsys.readouterr().out
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
