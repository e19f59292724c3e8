"""Bad input to public lecturelib functions gets a clear ValueError/TypeError naming the argument.

One row per case: (call, exception type, words the message must contain).
"""

import pytest
import torch

from lecturelib import claims, data, metrics, models, objectives, plots, runtime, train

IMAGES = torch.rand(2, 1, 28, 28)


def _fit(**kwargs):
    return lambda: train.fit(models.LinearAE(2), lambda m, x: {"loss": m(x).sum()}, IMAGES, progress=False, **kwargs)


CASES = [
    # models: latent size, likelihood, shapes and dtypes of inputs
    ("LinearAE d=0", lambda: models.LinearAE(0), ValueError, "latent_dim"),
    ("MLPAE d=-3", lambda: models.MLPAE(-3), ValueError, "latent_dim"),
    ("ConvAE d=2.5", lambda: models.ConvAE(2.5), ValueError, "latent_dim"),
    ("MLPAE hidden 0", lambda: models.MLPAE(2, (0,)), ValueError, "hidden_dims"),
    ("VAE hidden 0", lambda: models.VAE(2, 0), ValueError, "hidden_dim"),
    ("VAE with no likelihood argument", lambda: models.VAE(2, 8, likelihood="gaussian"), TypeError, "likelihood"),
    ("VAE infinite floor", lambda: models.GaussianVAE(2, 8, min_logvar=float("-inf")), ValueError, "min_logvar"),
    ("f on flat images", lambda: models.MLPAE(2).f(torch.rand(2, 784)), ValueError, "(N, 1, 28, 28)"),
    (
        "f on uint8 images",
        lambda: models.LinearAE(2).f(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)),
        TypeError,
        "floating-point",
    ),
    ("f on a list", lambda: models.ConvAE(2).f([[0.0]]), TypeError, "torch.Tensor"),
    ("g with wrong d", lambda: models.MLPAE(2).g(torch.rand(3, 5)), ValueError, "(N, 2)"),
    ("encode 3-channel", lambda: models.VAE(2, 8).encode(torch.rand(2, 3, 28, 28)), ValueError, "(N, 1, 28, 28)"),
    ("decode wrong d", lambda: models.VAE(2, 8).decode(torch.rand(2, 3)), ValueError, "(N, 2)"),
    # objectives
    ("IWAE k=0", lambda: objectives.iwae_bound(models.VAE(2, 8), IMAGES, 0), ValueError, "k must be"),
    (
        "Bernoulli on 0..255 pixels",
        lambda: objectives.bernoulli_log_likelihood(IMAGES * 255, torch.zeros_like(IMAGES)),
        ValueError,
        "x in [0, 1]",
    ),
    (
        "Bernoulli on standardised pixels",
        lambda: objectives.vae_loss(models.VAE(2, 8), IMAGES - 0.5),
        ValueError,
        "scaled to [0, 1]",
    ),
    # data
    ("unknown split", lambda: data.load_mnist("validation"), ValueError, "split"),
    ("unknown subset", lambda: data.load_mnist("train", subset="kaggle"), ValueError, "subset"),
    ("limit 0", lambda: data.load_mnist("train", subset="ci", limit=0), ValueError, "limit"),
    ("Batches size 0", lambda: data.Batches(IMAGES, batch_size=0), ValueError, "batch_size"),
    ("Batches ragged", lambda: data.Batches(IMAGES, torch.zeros(3), batch_size=1), ValueError, "first dimension"),
    # training
    ("fit epochs 0", _fit(epochs=0), ValueError, "epochs"),
    ("fit lr nan", _fit(epochs=1, lr=float("nan")), ValueError, "lr"),
    ("fit unknown schedule", _fit(epochs=1, schedule="cosine"), ValueError, "schedule"),
    (
        "fit data not tensor",
        lambda: train.fit(models.LinearAE(2), None, [[1.0]], epochs=1, progress=False),
        TypeError,
        "tensor",
    ),
    # metrics, plots, claims, runtime
    (
        "angles of mismatched matrices",
        lambda: metrics.principal_angles(torch.rand(4, 2), torch.rand(5, 2)),
        ValueError,
        "same number of rows",
    ),
    ("psnr shapes", lambda: metrics.psnr(IMAGES, IMAGES[:1]), ValueError, "same shape"),
    ("grid of flat images", lambda: plots.image_grid(torch.rand(4, 784)), ValueError, "(N, C, H, W)"),
    ("scatter of 3-D codes", lambda: plots.latent_scatter(torch.rand(4, 3), torch.zeros(4)), ValueError, "(N, 2)"),
    ("claim with ==", lambda: claims.claim("x", 1.0, "==", 1.0), ValueError, "op"),
    ("negative seed", lambda: runtime.seed_everything(-5), ValueError, "seed"),
]


@pytest.mark.parametrize("call, error, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


@pytest.mark.parametrize("name", ["tpu", "gpu", "CPU", "cuda:7", "cuda", "mps", "cpu:x"])
def test_unusable_device_variable_names_the_variable(monkeypatch, name):
    if name == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    if name == "mps" and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    monkeypatch.setenv("LECTURELIB_DEVICE", name)
    with pytest.raises(ValueError, match="LECTURELIB_DEVICE"):
        runtime.pick_device()


def test_device_variable_cpu_is_accepted(monkeypatch):
    monkeypatch.setenv("LECTURELIB_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")


@pytest.mark.parametrize("logvar", [-90.0, -120.0, -170.0])
def test_gaussian_densities_stay_finite_for_tiny_variances(logvar):
    """Below logvar ≈ -88, 1/σ² overflows float32; the densities must still be right (checked in float64)."""
    from torch.distributions import Normal

    z = torch.tensor([[0.0, 1e-20]])
    mu = torch.zeros(1, 2)
    lv = torch.full((1, 2), logvar)
    want = Normal(mu.double(), torch.exp(0.5 * lv.double())).log_prob(z.double()).sum(-1)
    got = objectives.normal_log_density(z, mu, lv)
    assert torch.isfinite(got).all() and torch.allclose(got.double(), want, rtol=1e-5)
    got_x = objectives.gaussian_log_likelihood(z.view(1, 1, 1, 2), mu.view(1, 1, 1, 2), lv.view(1, 1, 1, 2))
    assert torch.allclose(got_x.double(), want, rtol=1e-5)
