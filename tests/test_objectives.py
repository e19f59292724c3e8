"""The objectives against independent references: torch.distributions and closed forms."""

import math

import pytest
import torch
from quadrature import log_px_1d
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from lecturelib import models, objectives


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(16, 5), torch.randn(16, 5)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros(5), torch.ones(5)), 1)
    torch.testing.assert_close(objectives.kl_to_standard_normal(mu, logvar), kl_divergence(q, p))


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(3, 4)
    assert torch.allclose(objectives.kl_to_standard_normal(zeros, zeros), torch.zeros(3))
    assert (objectives.kl_to_standard_normal(zeros + 0.1, zeros) > 0).all()


def test_gaussian_log_likelihood_matches_torch_distributions():
    torch.manual_seed(1)
    x, mean, logvar = torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    ref = Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(objectives.gaussian_log_likelihood(x, mean, logvar), ref)


def test_bernoulli_log_likelihood_matches_torch_distributions_on_binary_data():
    torch.manual_seed(2)
    x, logits = (torch.rand(8, 1, 28, 28) > 0.5).float(), 3 * torch.randn(8, 1, 28, 28)
    ref = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(objectives.bernoulli_log_likelihood(x, logits), ref)


def test_normal_log_densities_match_torch_distributions():
    torch.manual_seed(3)
    z, mu, logvar = torch.randn(7, 3), torch.randn(7, 3), torch.randn(7, 3)
    torch.testing.assert_close(
        objectives.normal_log_density(z, mu, logvar), Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    )
    torch.testing.assert_close(objectives.standard_normal_log_density(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_reconstruction_error_is_the_squared_norm():
    x, x_hat = torch.zeros(2, 1, 28, 28), torch.zeros(2, 1, 28, 28)
    x_hat[0, 0, 0, :3] = torch.tensor([1.0, 2.0, 2.0])
    torch.testing.assert_close(objectives.reconstruction_error(x, x_hat), torch.tensor([9.0, 0.0]))


def test_reparameterize_has_the_right_moments_and_gradients():
    torch.manual_seed(4)
    mu = torch.full((200_000, 1), 1.5, requires_grad=True)
    logvar = torch.full((200_000, 1), math.log(4.0), requires_grad=True)
    z = objectives.reparameterize(mu, logvar)
    assert abs(z.mean().item() - 1.5) < 0.02 and abs(z.std().item() - 2.0) < 0.02
    z.mean().backward()  # d E[z] / d mu = 1 per element on average
    assert torch.allclose(mu.grad.sum(), torch.tensor(1.0))


def _elbo_by_monte_carlo(model, x, samples):
    """An independent ELBO: E_q[log p(x|z) + log p(z) - log q(z|x)] with torch.distributions, averaged."""
    mu, logvar = model.encode(x)
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((samples,))  # (S, N, d)
    logits = model.decode(z.reshape(-1, z.shape[-1])).view(samples, *x.shape)
    log_px_z = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).flatten(2).sum(-1)
    log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
    return (log_px_z + log_pz - q.log_prob(z).sum(-1)).mean(0)


def test_elbo_matches_an_independent_monte_carlo_estimate():
    torch.manual_seed(5)
    model = models.VAE(latent_dim=3, hidden_dim=32)
    with torch.no_grad():  # q(z|x) away from the prior, so that a dropped or halved KL shows beyond the tolerance
        model.to_mu.bias.fill_(2.0)
        model.to_logvar.bias.fill_(-1.0)
    x = (torch.rand(4, 1, 28, 28) > 0.7).float()
    with torch.no_grad():
        # 4,000 one-sample ELBOs per digit in one batched call: x repeated (4000 * 4, 1, 28, 28)
        terms = objectives.elbo_terms(model, x.repeat(4000, 1, 1, 1))
        ours = terms["elbo"].view(4000, 4).mean(0)
        ref = _elbo_by_monte_carlo(model, x, 4000)
    assert (terms["kl"] > 4 * 0.5).all()  # the KL is several times the tolerance below
    torch.testing.assert_close(ours, ref, rtol=0, atol=0.5)


def test_elbo_terms_match_torch_distributions_for_the_same_z():
    """Each term against an independent reference, on the z the ELBO drew (same seed): log p(x|z) with
    torch.distributions.Normal on the decoder's output, KL with kl_divergence; vae_loss is the batch mean of -ELBO."""
    torch.manual_seed(6)
    model = models.GaussianVAE(latent_dim=2, hidden_dim=16)
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        torch.manual_seed(7)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        mean, dec_logvar = model.decode(z)
        log_px_z = Normal(mean, torch.exp(0.5 * dec_logvar)).log_prob(x).flatten(1).sum(1)
        kl = kl_divergence(
            Independent(Normal(mu, torch.exp(0.5 * logvar)), 1), Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
        )
        torch.manual_seed(7)
        terms = objectives.elbo_terms(model, x)
        torch.manual_seed(7)
        loss = objectives.vae_loss(model, x)
    torch.testing.assert_close(terms["log_px_z"], log_px_z)
    torch.testing.assert_close(terms["kl"], kl)
    torch.testing.assert_close(terms["elbo"], log_px_z - kl)
    torch.testing.assert_close(loss["loss"], -(log_px_z - kl).mean())


def test_iwae_bound_rises_from_the_elbo_towards_log_px_and_stays_below():
    """L_1 = ELBO <= L_50 <= log p(x), with log p(x) by quadrature: a bound without its - log k overshoots by log 50."""
    torch.manual_seed(8)
    model = models.VAE(latent_dim=1, hidden_dim=16)
    x = (torch.rand(6, 1, 28, 28) > 0.8).float()
    with torch.no_grad():  # repeated digits in one batched call each: (repeats * 6, 1, 28, 28)
        log_px = log_px_1d(model, x)
        elbo = objectives.elbo(model, x.repeat(300, 1, 1, 1)).view(300, 6).mean(0)
        iwae_1 = objectives.iwae_bound(model, x.repeat(300, 1, 1, 1), 1).view(300, 6).mean(0)
        iwae_50 = objectives.iwae_bound(model, x.repeat(30, 1, 1, 1), 50).view(30, 6).mean(0)
    torch.testing.assert_close(iwae_1, elbo, rtol=0, atol=2.0)  # k = 1 is the ELBO
    assert (iwae_50 > elbo).all()
    assert (iwae_50 <= log_px + 0.3).all() and (iwae_50 > log_px - 1.0).all()


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_iwae_bound_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be"):
        objectives.iwae_bound(models.VAE(2, 8), torch.rand(2, 1, 28, 28), k)


def test_ae_loss_is_the_batch_mean_of_the_summed_squared_error():
    torch.manual_seed(0)
    model = models.MLPAE(latent_dim=3, hidden_dims=(16,))
    x = torch.rand(5, 1, 28, 28)
    x_hat = model.g(model.f(x)).detach()
    by_hand = sum(float(((x[n] - x_hat[n]) ** 2).sum()) for n in range(5)) / 5
    assert objectives.ae_loss(model, x)["loss"].item() == pytest.approx(by_hand, rel=1e-5)


def test_average_elbo_averages_independent_draws_and_keeps_the_exact_kl():
    torch.manual_seed(0)
    model = models.VAE(latent_dim=2, hidden_dim=16)
    x = torch.rand(3, 1, 28, 28)
    torch.manual_seed(1)
    draws = [objectives.elbo_terms(model, x) for _ in range(5)]
    torch.manual_seed(1)
    mean = objectives.average_elbo_terms(model, x, draws=5)
    torch.testing.assert_close(mean["elbo"], sum(d["elbo"] for d in draws) / 5)
    torch.testing.assert_close(mean["kl"], draws[0]["kl"])  # analytic: no sampling noise
    with torch.no_grad():  # many draws: the average tends to E_q[log p(x|z)] - KL, its spread shrinks like 1/√draws
        spread = [
            torch.stack([objectives.average_elbo_terms(model, x, k)["elbo"] for _ in range(40)]).std(0) for k in (1, 16)
        ]
    assert (spread[1] < spread[0] / 2).all()
    with pytest.raises(ValueError, match="draws"):
        objectives.average_elbo_terms(model, x, draws=0)


def test_elbo_and_iwae_bound_both_return_the_bound_per_example_and_elbo_terms_its_terms():
    torch.manual_seed(0)
    model, x = models.VAE(latent_dim=2, hidden_dim=8), torch.rand(4, 1, 28, 28)
    torch.manual_seed(1)
    bound = objectives.elbo(model, x)
    torch.manual_seed(1)
    terms = objectives.elbo_terms(model, x)
    iwae = objectives.iwae_bound(model, x, 3)
    assert isinstance(bound, torch.Tensor) and bound.shape == iwae.shape == (4,)
    torch.testing.assert_close(bound, terms["elbo"])
    torch.testing.assert_close(terms["elbo"], terms["log_px_z"] - terms["kl"])
