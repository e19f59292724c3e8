"""lvm: the linear-Gaussian model and the variational quantities, checked against independent references
(torch.distributions, Gaussian conditioning, numerical integration, autograd of the closed-form ELBO)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from lecturelib import lvm
from lecturelib.exercises import nb05

F64 = torch.float64
seeds = st.integers(min_value=0, max_value=2**31 - 1)
fast = settings(max_examples=15, deadline=None)


def random_problem(seed: int, d: int = 3, p: int = 5, diagonal_posterior: bool = False):
    """A random model, one observation x from it, and a random diagonal q (mu, logvar), logvar = log σ²."""
    g = torch.Generator().manual_seed(seed)
    sigma = 0.3 + torch.rand(1, generator=g).item()
    model = lvm.LinearGaussian.random(d, p, sigma, diagonal_posterior=diagonal_posterior, generator=g)
    x = model.sample(1, generator=g)[0][0]
    mu = torch.randn(d, generator=g, dtype=F64)
    logvar = 2 * torch.randn(d, generator=g, dtype=F64) - 1
    return model, x, mu, logvar, g


def test_log_marginal_matches_torch_multivariate_normal():
    model, _, _, _, g = random_problem(0, d=3, p=6)
    x = torch.randn(7, 6, generator=g, dtype=F64) * 2
    reference = MultivariateNormal(model.b, model.W @ model.W.T + model.sigma**2 * torch.eye(6, dtype=F64))
    torch.testing.assert_close(model.log_marginal(x), reference.log_prob(x))


def test_log_likelihood_and_prior_match_torch_normal():
    model, x, _, _, g = random_problem(1)
    z = torch.randn(4, 3, generator=g, dtype=F64)
    expected = Normal(z @ model.W.T + model.b, model.sigma).log_prob(x).sum(-1)
    torch.testing.assert_close(model.log_likelihood(x, z), expected)
    torch.testing.assert_close(model.log_prior(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_posterior_matches_gaussian_conditioning_of_the_joint():
    # [z; x] is jointly Gaussian with Cov = [[I, Wᵀ], [W, W Wᵀ + σ² I]]; condition on x (Bishop 2006, eq. 2.81-2.82)
    model, x, _, _, _ = random_problem(2, d=3, p=5)
    W, C = model.W, model.W @ model.W.T + model.sigma**2 * torch.eye(5, dtype=F64)
    gain = W.T @ torch.linalg.inv(C)  # (d, p)
    mean, cov = model.posterior(x)
    torch.testing.assert_close(mean, gain @ (x - model.b))
    torch.testing.assert_close(cov, torch.eye(3, dtype=F64) - gain @ W)


def test_posterior_and_marginal_match_numerical_integration_in_1d():
    model, x, _, _, _ = random_problem(3, d=1, p=4)
    z = torch.linspace(-12, 12, 200001, dtype=F64).unsqueeze(-1)  # (G, 1)
    joint = model.log_joint(x, z).exp()  # p(x, z) on the grid
    px = torch.trapezoid(joint, z[:, 0])
    post = joint / px  # Bayes' rule
    mean = torch.trapezoid(post * z[:, 0], z[:, 0])
    var = torch.trapezoid(post * (z[:, 0] - mean) ** 2, z[:, 0])
    exact_mean, exact_cov = model.posterior(x)
    assert math.isclose(model.log_marginal(x).item(), px.log().item(), abs_tol=1e-8)
    assert math.isclose(exact_mean.item(), mean.item(), abs_tol=1e-8)
    assert math.isclose(exact_cov.item(), var.item(), rel_tol=1e-7)


def test_samples_have_the_marginal_moments():
    model, _, _, _, g = random_problem(4, d=2, p=3)
    x, z = model.sample(200_000, generator=g)
    assert z.shape == (200_000, 2)
    torch.testing.assert_close(x.mean(0), model.b, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), model.marginal_covariance(), atol=0.06, rtol=0.02)


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(5)
    A, B = torch.randn(2, 4, 4, generator=g, dtype=F64)
    cov0, cov1 = A @ A.T + 0.1 * torch.eye(4, dtype=F64), B @ B.T + 0.1 * torch.eye(4, dtype=F64)
    mean0, mean1 = torch.randn(2, 4, generator=g, dtype=F64)
    expected = kl_divergence(MultivariateNormal(mean0, cov0), MultivariateNormal(mean1, cov1))
    torch.testing.assert_close(lvm.gaussian_kl(mean0, cov0, mean1, cov1), expected)


def test_elbo_terms_match_torch_distributions_and_monte_carlo():
    """The KL term against torch.distributions (σ = exp(logvar / 2): fails if logvar is read as log σ), the
    expected log-likelihood against a Monte Carlo average of torch.distributions' log-density."""
    model, x, mu, logvar, g = random_problem(6)
    terms = lvm.elbo(model, x, mu, logvar)
    assert set(terms) == {"elbo", "log_px_z", "kl"}
    expected_kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum()
    torch.testing.assert_close(terms["kl"], expected_kl)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3, generator=g, dtype=F64)
    log_px_z = Normal(z @ model.W.T + model.b, model.sigma).log_prob(x).sum(-1)
    assert abs(log_px_z.mean() - terms["log_px_z"]) < 4 * log_px_z.std() / math.sqrt(len(z))
    torch.testing.assert_close(terms["elbo"], terms["log_px_z"] - terms["kl"])


@fast
@given(seeds)
def test_log_marginal_is_elbo_plus_kl_to_posterior(seed):
    model, x, mu, logvar, _ = random_problem(seed)
    total = lvm.elbo(model, x, mu, logvar)["elbo"] + lvm.kl_to_posterior(model, x, mu, logvar)
    torch.testing.assert_close(total, model.log_marginal(x))


@fast
@given(seeds)
def test_elbo_never_exceeds_log_marginal(seed):
    model, x, mu, logvar, _ = random_problem(seed)
    assert lvm.elbo(model, x, mu, logvar)["elbo"] <= model.log_marginal(x) + 1e-9


@fast
@given(seeds)
def test_kl_to_posterior_is_nonnegative_and_zero_only_at_the_posterior(seed):
    model, x, mu, logvar, g = random_problem(seed, diagonal_posterior=True)
    assert lvm.kl_to_posterior(model, x, mu, logvar) >= 0
    post_mean, post_cov = model.posterior(x)
    exact_logvar = torch.log(torch.diagonal(post_cov))
    assert abs(lvm.kl_to_posterior(model, x, post_mean, exact_logvar).item()) < 1e-10
    nudge = 1e-2 * torch.randn(3, generator=g, dtype=F64)
    assert lvm.kl_to_posterior(model, x, post_mean + nudge, exact_logvar) > 1e-7
    assert lvm.kl_to_posterior(model, x, post_mean, exact_logvar + nudge) > 1e-7


def test_closed_form_elbo_matches_monte_carlo():
    model, x, mu, logvar, g = random_problem(7)
    sigma = torch.exp(0.5 * logvar)
    z = mu + sigma * torch.randn(200_000, 3, generator=g, dtype=F64)  # z_i ~ q
    samples = model.log_joint(x, z) - Normal(mu, sigma).log_prob(z).sum(-1)
    standard_error = samples.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - lvm.elbo(model, x, mu, logvar)["elbo"]) < 4 * standard_error


def test_iwae_is_exact_with_the_posterior_as_proposal():
    # with q = p(z|x) every weight p(x, z)/q(z) equals p(x), so the bound is log p(x) for every k
    model, x, _, _, g = random_problem(8, diagonal_posterior=True)
    mean, cov = model.posterior(x)
    bound = lvm.iwae_bound(model, x, mean, torch.log(torch.diagonal(cov)), k=3, repeats=5, generator=g)
    torch.testing.assert_close(bound, model.log_marginal(x).expand(5))


@settings(max_examples=10, deadline=None)
@given(seeds)
def test_iwae_bound_rises_towards_log_marginal_with_k(seed):
    model, x, mu, logvar, g = random_problem(seed, d=2, p=3)
    log_px = model.log_marginal(x).item()
    means, errors = [], []
    for k in (1, 4, 16, 64):
        draws = lvm.iwae_bound(model, x, mu, logvar, k, repeats=400, generator=g)
        means.append(draws.mean().item())
        errors.append(draws.std().item() / 20)
    # a bound, and non-decreasing in k on average (within Monte Carlo error)
    assert all(mean <= log_px + 4 * err for mean, err in zip(means, errors))
    assert all(b >= a - 4 * (ea + eb) for a, b, ea, eb in zip(means, means[1:], errors, errors[1:]))
    # k = 1 is the ELBO
    assert abs(means[0] - lvm.elbo(model, x, mu, logvar)["elbo"].item()) < 4 * errors[0]


def test_iwae_bound_tends_to_log_marginal_for_large_k():
    # an over-dispersed, off-centre proposal: a loose ELBO, but importance weights with light tails
    model, x, _, _, g = random_problem(9, d=2, p=3)
    mu, logvar = lvm.mean_field_optimum(model, x)
    mu, logvar = mu + 0.5, logvar + 1.4
    log_px = model.log_marginal(x)
    gap_1 = log_px - lvm.elbo(model, x, mu, logvar)["elbo"]
    gap_k = log_px - lvm.iwae_bound(model, x, mu, logvar, 20_000, repeats=20, generator=g).mean()
    assert gap_1 > 0.5
    assert abs(gap_k) < 0.01 * gap_1


def analytic_elbo_gradient(model, x, mu, logvar):
    mu, logvar = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    return torch.autograd.grad(lvm.elbo(model, x, mu, logvar)["elbo"], (mu, logvar))


def test_reparameterized_gradient_is_unbiased():
    model, x, mu, logvar, g = random_problem(10)
    grad_mu, grad_log_s = lvm.reparameterized_gradient(model, x, mu, logvar, n=8, repeats=20_000, generator=g)
    for draws, exact in zip((grad_mu, grad_log_s), analytic_elbo_gradient(model, x, mu, logvar)):
        standard_error = draws.std(0) / math.sqrt(draws.shape[0])
        assert torch.all((draws.mean(0) - exact).abs() < 4.5 * standard_error), (draws.mean(0), exact)


def test_reparameterized_gradient_has_much_lower_variance_than_the_score_function():
    """Against exercise 5.3's reference score-function estimate, on the same problem and sample size."""
    model, x, mu, logvar, g = random_problem(11)
    repeats, n = 2000, 4
    reparam = torch.cat(lvm.reparameterized_gradient(model, x, mu, logvar, n=n, repeats=repeats, generator=g), -1)

    def f(z):  # f = log p(x, z) - log q(z), phi held fixed
        return model.log_joint(x, z) - Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)

    eps = torch.randn(repeats, n, mu.shape[-1], generator=g, dtype=F64)
    score = torch.vmap(lambda e: torch.cat(nb05.reference_score_function_gradient(f, mu, logvar, e)))(eps)
    assert score.mean(0).sub(reparam.mean(0)).abs().max() < 0.5 * score.std(0).max()  # both estimate one gradient
    assert score.var(0).sum() > 10 * reparam.var(0).sum()


@fast
@given(seeds)
def test_mean_field_optimum_maximises_elbo_over_diagonal_q(seed):
    model, x, _, _, g = random_problem(seed)
    mu, logvar = mean_field_optimum = lvm.mean_field_optimum(model, x)
    grad_mu, grad_log_s = analytic_elbo_gradient(model, x, mu, logvar)
    assert grad_mu.abs().max() < 1e-8 and grad_log_s.abs().max() < 1e-8
    best = lvm.elbo(model, x, *mean_field_optimum)["elbo"]
    for _ in range(5):
        other = lvm.elbo(
            model,
            x,
            mu + 0.1 * torch.randn(3, generator=g, dtype=F64),
            logvar + 0.1 * torch.randn(3, generator=g, dtype=F64),
        )["elbo"]
        assert other < best


def test_naive_monte_carlo_converges_in_one_dimension():
    model, x, _, _, g = random_problem(12, d=1, p=2)
    estimate = model.naive_log_marginal(x, 200_000, repeats=4, generator=g)
    assert estimate.shape == (4,)
    torch.testing.assert_close(estimate, model.log_marginal(x).expand(4), atol=0.02, rtol=0)


def test_a_tensor_sigma_gives_the_same_model_and_its_gradient():
    model, x, mu, logvar, g = random_problem(14)
    sigma = torch.tensor(model.sigma, dtype=F64, requires_grad=True)
    fitted = lvm.LinearGaussian(model.W, model.b, sigma)
    torch.testing.assert_close(fitted.log_marginal(x), model.log_marginal(x))
    torch.testing.assert_close(lvm.elbo(fitted, x, mu, logvar), lvm.elbo(model, x, mu, logvar))
    z = torch.randn(4, 3, generator=g, dtype=F64)
    torch.testing.assert_close(fitted.log_likelihood(x, z), model.log_likelihood(x, z))
    # d log p(x) / d sigma against torch.distributions' density of the marginal
    (ours,) = torch.autograd.grad(fitted.log_marginal(x), sigma)
    reference_sigma = torch.tensor(model.sigma, dtype=F64, requires_grad=True)
    covariance = model.W @ model.W.T + reference_sigma**2 * torch.eye(5, dtype=F64)
    (reference,) = torch.autograd.grad(MultivariateNormal(model.b, covariance).log_prob(x), reference_sigma)
    torch.testing.assert_close(ours, reference)


def test_maximum_likelihood_is_a_maximum_of_the_likelihood():
    # Tipping & Bishop 1999: the closed form is a stationary point of the mean log-likelihood, computed here
    # with torch.distributions, and beats the true parameters and nearby ones
    g = torch.Generator().manual_seed(15)
    true = lvm.LinearGaussian.random(2, 6, sigma=0.5, generator=g)
    x, _ = true.sample(400, generator=g)
    ml = lvm.maximum_likelihood(x, 2)
    W, b = ml.W.clone().requires_grad_(True), ml.b.clone().requires_grad_(True)
    log_sigma = torch.tensor(math.log(ml.sigma), dtype=F64, requires_grad=True)

    def mean_log_likelihood(W, b, log_sigma):
        covariance = W @ W.T + torch.exp(2 * log_sigma) * torch.eye(6, dtype=F64)
        return MultivariateNormal(b, covariance).log_prob(x).mean()

    best = mean_log_likelihood(W, b, log_sigma)
    for grad in torch.autograd.grad(best, (W, b, log_sigma)):
        assert grad.abs().max() < 1e-8, grad
    assert best > mean_log_likelihood(true.W, true.b, torch.tensor(math.log(true.sigma), dtype=F64))
    with torch.no_grad():
        for _ in range(5):
            nearby = [t + 0.02 * torch.randn(t.shape, generator=g, dtype=F64) for t in (W, b, log_sigma)]
            assert mean_log_likelihood(*nearby) < best
    # the columns of W_ML are orthogonal (R = I), so its posterior is diagonal
    gram = ml.W.T @ ml.W
    assert (gram - torch.diag(gram.diagonal())).abs().max() < 1e-10


def test_arguments_are_validated():
    model, x, mu, logvar, _ = random_problem(13)
    with pytest.raises(ValueError, match="sigma"):
        lvm.LinearGaussian(model.W, model.b, 0.0)
    with pytest.raises(ValueError, match="b must"):
        lvm.LinearGaussian(model.W, model.b[:2], 1.0)
    with pytest.raises(ValueError, match="x must"):
        model.log_marginal(x[:2])
    with pytest.raises(ValueError, match="mu must"):
        lvm.elbo(model, x, mu[:2], logvar)
    with pytest.raises(ValueError, match="k must"):
        lvm.iwae_bound(model, x, mu, logvar, k=0)
    with pytest.raises(ValueError, match="diagonal_posterior"):
        lvm.LinearGaussian.random(4, 2, diagonal_posterior=True)
    with pytest.raises(TypeError, match="model"):
        lvm.elbo("model", x, mu, logvar)
    with pytest.raises(ValueError, match="sigma"):
        lvm.LinearGaussian(model.W, model.b, torch.tensor(-1.0))
    with pytest.raises(ValueError, match="latent_dim"):
        lvm.maximum_likelihood(torch.randn(10, 3, dtype=F64), 3)
    with pytest.raises(TypeError, match="x must"):
        lvm.maximum_likelihood(torch.randn(10), 1)
