"""Model shapes, the VAE contract, and the linear AE's optimum against PCA by SVD."""

import math

import pytest
import torch

from lecturelib import models, objectives, train


@pytest.mark.parametrize(
    "make",
    [
        lambda: models.LinearAE(4),
        lambda: models.AffineAE(4),
        lambda: models.MLPAE(4, (32,)),
        lambda: models.ConvAE(4, 8),
    ],
)
def test_autoencoders_map_images_to_codes_and_back(make):
    ae = make()
    x = torch.rand(3, 1, 28, 28)
    z = ae.f(x)
    assert z.shape == (3, 4)
    assert ae.g(z).shape == x.shape and ae(x).shape == x.shape


@pytest.mark.parametrize("cls", [models.VAE, models.GaussianVAE])
def test_vae_contract(cls):
    vae = cls(latent_dim=5, hidden_dim=32)
    x = torch.rand(4, 1, 28, 28)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (4, 5)
    out = vae.decode(mu)
    if cls is models.VAE:  # one return type per class: the Bernoulli logits ...
        assert isinstance(out, torch.Tensor) and out.shape == x.shape
    else:  # ... or the Gaussian's mean and log σ²
        mean, x_logvar = out
        assert mean.shape == x_logvar.shape == x.shape
    terms = objectives.elbo_terms(vae, x)
    assert set(terms) == {"elbo", "log_px_z", "kl"} and all(t.shape == (4,) for t in terms.values())
    assert ((vae(x) >= 0) & (vae(x) <= 1)).all()


def test_gaussian_decoder_logvar_is_floored():
    vae = models.GaussianVAE(latent_dim=2, hidden_dim=8, min_logvar=math.log(1e-3))
    with torch.no_grad():
        vae.to_x_logvar.bias.fill_(-1e4)  # a decoder that wants σ² -> 0
        _, logvar = vae.decode(torch.zeros(1, 2))
    assert (logvar >= math.log(1e-3) - 1e-6).all() and torch.isfinite(logvar).all()
    free = models.GaussianVAE(latent_dim=2, hidden_dim=8, min_logvar=None)
    with torch.no_grad():
        free.to_x_logvar.bias.fill_(-50.0)
        assert (free.decode(torch.zeros(1, 2))[1] < -40).all()


def test_build_rebuilds_the_same_architecture_from_config():
    """The rebuilt model takes the original's weights and computes the same function (not just the same config)."""
    torch.manual_seed(0)
    vae = models.GaussianVAE(latent_dim=3, hidden_dim=16)
    again = models.build("GaussianVAE", vae.config)
    again.load_state_dict(vae.state_dict())  # fails on any other layer shape
    x = torch.rand(2, 1, 28, 28)
    for a, b in zip(vae.encode(x), again.encode(x)):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="unknown model"):
        models.build("Transformer", {})


@pytest.mark.slow
def test_linear_autoencoder_converges_to_pca_subspace():
    """Gradient descent on ||x - UUᵀx||² reaches the error of the top-d SVD subspace (PCA), computed independently."""
    torch.manual_seed(0)
    # centred data with a clear spectrum: 6 strong directions in 784 dimensions, plus noise
    basis = torch.linalg.qr(torch.randn(784, 6))[0]
    x = (torch.randn(2000, 6) * torch.tensor([5.0, 4.0, 3.0, 2.5, 2.0, 1.5])) @ basis.T + 0.05 * torch.randn(2000, 784)
    x = (x - x.mean(0)).view(-1, 1, 28, 28)
    d = 3
    _, s, vh = torch.linalg.svd(x.flatten(1), full_matrices=False)
    pca_error = s[d:].pow(2).sum() / len(x)  # optimal mean ||x - V_d V_dᵀ x||² (Eckart–Young)

    ae = models.LinearAE(d)
    loss = lambda m, b: {"loss": (b - m(b)).pow(2).flatten(1).sum(1).mean()}
    train.fit(ae, loss, x, epochs=30, batch_size=100, lr=1e-2, progress=False)
    ae_error = train.evaluate(ae, loss, x)["loss"]
    assert ae_error / pca_error.item() < 1.01
    # same subspace: the projection of U onto the top-d right singular vectors keeps all of U
    V = vh[:d].T
    U = ae.U.detach()
    assert ((U - V @ (V.T @ U)).norm() / U.norm()) < 0.05
