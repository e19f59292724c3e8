"""The likelihood of notebook 06 against independent references: dynamic binarization (torch.distributions) and the
importance-sampled log p(x) in chunks (closed form for a linear-Gaussian model, quadrature for a 1-D latent)."""

import math

import pytest
import torch
from quadrature import log_px_1d
from torch import nn
from torch.distributions import Bernoulli, Independent, MultivariateNormal, Normal, kl_divergence

from lecturelib import models, objectives
from lecturelib.exercises.nb06 import _digits


class Recording(nn.Module):
    """A models.VAE that remembers the images it was asked to encode and the batch sizes it decoded."""

    def __init__(self, latent_dim=3, hidden_dim=16):
        super().__init__()
        torch.manual_seed(0)
        self.vae = models.VAE(latent_dim=latent_dim, hidden_dim=hidden_dim)
        self.likelihood = "bernoulli"
        self.seen = []

    def encode(self, x):
        self.seen.append(x.detach().clone())
        return self.vae.encode(x)

    def decode(self, z):
        return self.vae.decode(z)


def test_binarized_vae_loss_is_minus_the_elbo_of_a_bernoulli_draw_of_the_grey_levels():
    model = Recording()
    x = _digits(6, seed=1)
    torch.manual_seed(3)
    got = objectives.binarized_vae_loss(model, x)
    # the same random stream: first the binarization x_b ~ Bernoulli(x), then eps ~ N(0, I); on the CPU, u < x draws
    # the very x_b that torch.distributions' Bernoulli draws from the same seed (one uniform per pixel, in order)
    torch.manual_seed(3)
    x_b = Bernoulli(probs=x).sample()
    assert torch.equal(model.seen[0], x_b)
    mu, logvar = model.vae.encode(x_b)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    log_px_z = Independent(Bernoulli(logits=model.vae.decode(z)), 3).log_prob(x_b)
    kl = kl_divergence(Independent(Normal(mu, torch.exp(0.5 * logvar)), 1), Independent(Normal(0.0, torch.ones(3)), 1))
    torch.testing.assert_close(got["loss"], (kl - log_px_z).mean())
    torch.testing.assert_close(got["recon_nll"], -log_px_z.mean())
    torch.testing.assert_close(got["kl"], kl.mean())


def test_binarization_is_dynamic_binary_and_unbiased():
    model = Recording()
    x = torch.full((4, 1, 28, 28), 0.3)
    x[:, :, :14] = 0.0  # black pixels stay black, white stay white
    x[:, :, -2:] = 1.0
    torch.manual_seed(0)
    for _ in range(200):
        objectives.binarized_vae_loss(model, x)
    draws = torch.stack(model.seen)  # (200, 4, 1, 28, 28)
    assert set(draws.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(draws[0], draws[1])  # a fresh draw at every call
    assert (draws[:, :, :, :14] == 0).all() and (draws[:, :, :, -2:] == 1).all()
    grey = draws[:, :, :, 14:-2].mean()  # 200 x 4 x 12 x 28 draws of Bernoulli(0.3): sd of the mean ≈ 0.0008
    assert abs(float(grey) - 0.3) < 0.005


def test_each_pixel_is_one_with_its_own_grey_level_as_probability():
    """P(x_b,i = 1) = x_i for every grey level, not only on average (a threshold or a shifted draw fails this)."""
    model = Recording()
    x = torch.linspace(0, 1, 784).view(1, 1, 28, 28).expand(8, 1, 28, 28)
    torch.manual_seed(1)
    for _ in range(100):
        objectives.binarized_vae_loss(model, x)
    frequency = torch.stack(model.seen).mean(dim=(0, 1)).flatten()  # 800 draws per pixel
    p = x[0].flatten()
    sd = (p * (1 - p) / 800).sqrt()
    assert ((frequency - p).abs() <= 5 * sd + 1e-6).all()
    assert abs(float((frequency - p).mean())) < 0.002  # sd of this mean over 784 pixels ≈ 0.0005


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s² I): log p(x) = log N(x; b, WWᵀ + s² I) in closed form.

    W has orthogonal columns, so the exact posterior N(m, Σ), Σ = (I + WᵀW / s²)⁻¹, m = Σ Wᵀ(x - b) / s², is a
    diagonal Gaussian: the encoder returns it (shift = 0), or a q moved by `shift` posterior standard deviations
    and 1.5 times wider.
    """

    likelihood = "gaussian"

    def __init__(self, dim=5, s=0.5, shift=0.0, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        basis, _ = torch.linalg.qr(torch.randn(dim, 2, generator=g, dtype=torch.float64))
        self.W = basis * torch.tensor([2.0, 0.7], dtype=torch.float64)  # orthogonal columns
        self.b = torch.randn(dim, generator=g, dtype=torch.float64)
        self.s2, self.shift = s**2, shift
        self.post_var = 1 / (1 + (self.W**2).sum(0) / self.s2)  # diagonal of Σ, (2,)

    def log_px(self, x):
        cov = self.W @ self.W.T + self.s2 * torch.eye(len(self.b), dtype=torch.float64)
        return MultivariateNormal(self.b, cov).log_prob(x)

    def encode(self, x):
        mu = (x - self.b) @ self.W * self.post_var / self.s2 + self.shift * self.post_var.sqrt()
        logvar = torch.log(self.post_var * (1.5**2 if self.shift else 1.0)).expand_as(mu)
        return mu, logvar

    def decode(self, z):
        mean = z @ self.W.T + self.b
        return mean, torch.full_like(mean, math.log(self.s2))


def samples(model, n, seed):
    torch.manual_seed(seed)
    z = torch.randn(n, 2, dtype=torch.float64)
    return model.decode(z)[0] + math.sqrt(model.s2) * torch.randn(n, len(model.b), dtype=torch.float64)


def test_in_chunks_with_the_exact_posterior_gives_log_px_of_the_closed_form_for_every_example():
    model = LinearGaussian()
    x = samples(model, 23, seed=0)
    got = objectives.iwae_bound_in_chunks(model, x, k=10, max_samples=40)  # 4 examples per chunk: 6 chunks
    assert got.shape == (23,)
    torch.testing.assert_close(got, model.log_px(x), rtol=0, atol=1e-8)


def test_in_chunks_with_a_worse_q_rises_with_k_towards_log_px_and_stays_below():
    model = LinearGaussian(shift=1.0)
    x = samples(model, 50, seed=1)
    torch.manual_seed(2)
    log_px = model.log_px(x)
    bounds = {k: objectives.iwae_bound_in_chunks(model, x, k, max_samples=3000) for k in (1, 10, 1000)}
    gaps = {k: float((log_px - b).mean()) for k, b in bounds.items()}
    assert gaps[1] > gaps[10] > gaps[1000] > 0
    assert gaps[1] > 0.3 and gaps[1000] < 0.02 * gaps[1]


def test_in_chunks_matches_log_px_by_quadrature_for_a_bernoulli_decoder():
    torch.manual_seed(0)
    x = (_digits(4, seed=5) > 0.5).float()  # binary images: the Bernoulli decoder is a normalised density
    model = models.VAE(latent_dim=1, hidden_dim=16)
    with torch.no_grad():  # a q(z|x) narrower than the posterior: the ELBO falls well short of log p(x)
        model.to_logvar.bias.fill_(-2.0)
        elbo = objectives.average_elbo_terms(model, x, draws=200)["elbo"].double()
    got = objectives.iwae_bound_in_chunks(model, x, k=2000, max_samples=5000).double()
    log_px = log_px_1d(model, x)
    assert (got - log_px).abs().max() < 0.1
    assert (got > elbo + 0.1).all()  # the bound is tighter than the ELBO here


def test_in_chunks_holds_at_most_max_samples_decoded_codes_and_no_graph():
    sizes = []
    model = Recording()
    decode = model.decode
    model.decode = lambda z: (sizes.append(len(z)), decode(z))[1]
    x = (_digits(10, seed=2) > 0.5).float()
    got = objectives.iwae_bound_in_chunks(model, x, k=7, max_samples=30)  # 4 examples (28 codes) at a time
    assert got.shape == (10,) and not got.requires_grad
    assert max(sizes) <= 30 and sum(sizes) == 70


def test_in_chunks_applies_the_bound_it_is_given_chunk_by_chunk_in_order():
    calls = []

    def bound(model, x, k):  # each example's "bound" is its index, read back from its first pixel
        calls.append((len(x), k))
        return x.flatten(1)[:, 0]

    x = torch.arange(10.0).view(10, 1, 1, 1).expand(10, 1, 28, 28)
    got = objectives.iwae_bound_in_chunks(Recording(), x, k=7, max_samples=30, bound=bound)
    torch.testing.assert_close(got, torch.arange(10.0))
    assert calls == [(4, 7), (4, 7), (2, 7)]


@pytest.mark.parametrize("k, max_samples", [(0, 100), (2.0, 100), (10, 0), (10, True)])
def test_in_chunks_refuses_bad_arguments(k, max_samples):
    with pytest.raises(ValueError, match="k must be|max_samples must be"):
        objectives.iwae_bound_in_chunks(Recording(), torch.zeros(2, 1, 28, 28), k, max_samples=max_samples)
