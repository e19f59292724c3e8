"""Checkers of notebook 05's exercises 5.1 (the naive estimate of log p(x)), 5.2 (the KL to the prior) and 5.3
(the ELBO of the linear-Gaussian model), with the float64 comparison helpers that nb05_score shares."""

from __future__ import annotations

import math

import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from .. import lvm
from ..objectives import kl_to_standard_normal
from . import Hint, as_tensor, call, compare, reseeds

F64 = torch.float64


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6, rtol: float = 1e-6) -> bool:
    a, b = a.detach().to(F64), b.detach().to(F64)
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=rtol))


def _first_slip(got: torch.Tensor, want: torch.Tensor, slips) -> None:
    """Raise the Hint of the first (value, message) in `slips` that `got` matches, unless `got` is right."""
    if got.shape != want.shape or not torch.isfinite(got).all() or _close(got, want):
        return
    for value, message in slips:
        if _close(got, value):
            raise Hint(message)


def _must_be_differentiable(out: torch.Tensor, what: str) -> None:
    if not out.requires_grad:
        raise Hint(
            f"{what} is not differentiable in mu and logvar (a .item(), .detach(), NumPy or torch.no_grad() "
            f"inside?): the notebook ascends the ELBO by autograd through it"
        )


# ------------------------------------------------------------------------------------------------------------------
# 5.1 the naive Monte Carlo estimate of log p(x)
# ------------------------------------------------------------------------------------------------------------------
def reference_naive_log_marginal(model: lvm.LinearGaussian, x: torch.Tensor, n: int) -> torch.Tensor:
    """log 1/n Σ_i p_theta(x|z_i), z_i ~ p(z) = N(0, I), in log space.  x: (p,) -> a scalar tensor"""
    return model.naive_log_marginal(x, n)[0]


def _naive(fn, model, x, n, what) -> torch.Tensor:
    got = as_tensor(call(fn, model, x, n, what=what), what).detach().to(F64)
    if got.numel() == n and n > 1:
        raise Hint(
            f"{what} returned {n} values, one per sample: return one number, the log of the mean of "
            f"p(x|z_i) over the samples"
        )
    if got.numel() != 1:
        raise Hint(f"{what} has shape {tuple(got.shape)}: return one number (a scalar tensor)")
    return got.reshape(())


def _naive_case(seed: int, d: int, p: int, sigma: float, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    model = lvm.LinearGaussian.random(d, p, sigma, scale=scale, generator=g)
    return model, model.sample(1, generator=g)[0][0], g


def _naive_accuracy(fn, seed: int, d: int, p: int, n: int, what: str) -> None:
    """Close to the exact log p(x) at large n, in standard errors; else name the slip."""
    model, x, g = _naive_case(seed, d, p, 0.7)
    exact = model.log_marginal(x)
    log_lik = model.log_likelihood(x, torch.randn(n, d, generator=g, dtype=F64))  # a reference draw, for the s.e.
    w = torch.exp(log_lik - log_lik.max())
    se = (w.std() / w.mean() / math.sqrt(n)).item()  # delta method: sd(w) / (√n mean(w))
    got = _naive(fn, model, x, n, what)
    if not torch.isfinite(got):
        raise Hint(f"{what} is {got.item()} for a model where log p(x|z) is moderate: log of a negative number?")
    tol = 6 * se + 1e-3
    if abs(got - exact) < tol:
        return
    if abs(got - exact - math.log(n)) < tol:
        raise Hint(
            f"{what} is log p(x) + log n ({math.log(n):.3g} too high): the log of the SUM of p(x|z_i); "
            f"the mean needs − log n"
        )
    mean_log = lvm.expected_log_likelihood(model, x, torch.zeros(d, dtype=F64), torch.zeros(d, dtype=F64))
    if abs(got - mean_log) < 6 * (log_lik.std().item() / math.sqrt(n)) + 1e-3:
        raise Hint(
            f"{what} is the mean of log p(x|z_i) ({got.item():.4g}), below log p(x) = {exact.item():.4g} "
            f"(Jensen): the estimate is the log of the mean, log 1/n Σ_i p(x|z_i)"
        )
    raise Hint(
        f"{what} = {got.item():.4g} is {abs(got - exact).item() / se:.0f} standard errors from the exact log p(x) "
        f"= {exact.item():.4g} (n = {n:,}, d = {d}): draw z_i from the prior N(0, I), shape (n, latent_dim), and "
        f"average p(x|z_i) = exp(model.log_likelihood(x, z))"
    )


def check_naive_log_marginal(fn) -> None:
    """Against the exact log p(x) at n = 100,000 (d = 1 and d = 2) within 6 standard errors; a fresh draw at every
    call; finite where exp(log p(x|z)) underflows (p = 400, σ = 0.05) or overflows (σ = 0.01) in float64."""
    what = "naive_log_marginal(model, x, n)"
    _naive_accuracy(fn, 510, 1, 3, 100_000, what)
    _naive_accuracy(fn, 511, 2, 4, 100_000, what)
    model, x, _ = _naive_case(512, 2, 4, 0.7)
    reseeds(lambda: _naive(fn, model, x, 100, what), what=what)
    for seed, p, sigma, scale, shift, way in [
        (513, 400, 0.05, 1.0, 3.0, "underflows to 0"),
        (514, 300, 0.01, 1e-3, 0.0, "overflows"),
    ]:
        model, x, _ = _naive_case(seed, 1, p, sigma, scale)
        x = x + shift  # shift 3: far from every Wz + b, log p(x|z) < -745 for every z and exp() is 0
        got = _naive(fn, model, x, 1000, what)
        top = model.log_likelihood(x, torch.zeros(1, dtype=F64)).item()
        if not torch.isfinite(got):
            raise Hint(
                f"{what} is {got.item()} on a model with log p(x|z) near {top:.3g}: exp(log p(x|z)) {way} in "
                f"float64; compute the log of the mean in log space, torch.logsumexp(log_lik, 0) − log n"
            )


# ------------------------------------------------------------------------------------------------------------------
# 5.2 the KL term KL(q_phi(z) || p(z)), derived on paper
# ------------------------------------------------------------------------------------------------------------------
def reference_kl_to_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag σ²) || N(0, I)) = 1/2 Σ_j (mu_j² + σ_j² - 1 - log σ_j²), logvar = log σ².  (..., d) -> (...)"""
    return kl_to_standard_normal(mu, logvar)


def _kl_torch(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    return kl_divergence(q, p)


def _kl_slips(mu, logvar):
    var = logvar.exp()
    half = lambda t: 0.5 * t.sum(-1)  # noqa: E731
    return [
        (half(mu**2 + torch.exp(2 * logvar) - 1 - 2 * logvar), "logvar is log σ², not log σ: σ² = exp(logvar)"),
        (half(mu**2 + torch.exp(0.5 * logvar) - 1 - logvar), "the second term is the variance σ² = exp(logvar)"),
        (half(mu**2 + var - logvar), "the −1 in each term is missing: the KL of q = p(z) must be 0"),
        (half(mu**2 + var - 1 + logvar), "sign of the log-variance term: ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)"),
        (half(var - 1 - logvar), "the μ_j² term is missing: moving q's mean away from 0 costs ½ μ_j²"),
        ((mu**2 + var - 1 - logvar).sum(-1), "the factor ½ in front is missing"),
        (-_kl_torch(mu, logvar), "the KL has the wrong sign: a KL divergence is never negative"),
    ]


def _kl_case(fn, mu, logvar, what):
    want = _kl_torch(mu, logvar)
    got = as_tensor(call(fn, mu, logvar, what=what), what)
    batch = mu.shape[:-1]
    if mu.dim() > 1 and got.shape == mu.shape:
        raise Hint(f"{what} has one value per latent dimension: sum the d terms of each example, .sum(-1)")
    if mu.dim() > 1 and got.numel() == 1:
        for total, how in [(want.sum(), "summed"), (want.mean(), "averaged")]:
            if _close(got.reshape(()), total):
                raise Hint(f"{what} is {how} over the batch: one KL per example, shape {tuple(batch)} (.sum(-1))")
    _first_slip(got, want, _kl_slips(mu, logvar))
    compare(got, want, what, atol=1e-6, rtol=1e-6)
    return got


def check_kl_to_prior(fn) -> None:
    """Against torch.distributions.kl_divergence for batches with d = 3, 1 and 8 (μ and σ from small to large),
    one (d,) pair with autograd, and q = p(z) (KL 0)."""
    g = torch.Generator().manual_seed(52)
    what = "kl_to_prior(mu, logvar)"
    for (n, d), spread in [((5, 3), 0.6), ((4, 1), 1.0), ((3, 8), 2.0)]:
        mu = spread * torch.randn(n, d, generator=g, dtype=F64)
        logvar = spread * torch.randn(n, d, generator=g, dtype=F64)
        _kl_case(fn, mu, logvar, f"{what} with d = {d}")
    mu1 = torch.randn(4, generator=g, dtype=F64).requires_grad_(True)
    logvar1 = torch.randn(4, generator=g, dtype=F64).requires_grad_(True)
    _must_be_differentiable(_kl_case(fn, mu1, logvar1, f"{what} on one (d,) pair"), what)
    zero = as_tensor(call(fn, torch.zeros(2, 4, dtype=F64), torch.zeros(2, 4, dtype=F64), what=what), what)
    compare(zero, torch.zeros(2, dtype=F64), f"{what} at q = p(z) (must be 0)", atol=1e-9)


# ------------------------------------------------------------------------------------------------------------------
# 5.3 the ELBO of the linear-Gaussian model
# ------------------------------------------------------------------------------------------------------------------
def reference_elbo(model: lvm.LinearGaussian, x, mu, logvar) -> dict[str, torch.Tensor]:
    """{"elbo", "log_px_z", "kl"}: E_q[log p_theta(x|z)] - KL(q_phi(z) || p(z)) and its terms, closed form."""
    return lvm.elbo(model, x, mu, logvar)


def _identity_elbo(W, b, sigma, x, mu, logvar) -> tuple[torch.Tensor, torch.Tensor]:
    """(ELBO, KL(q || p(z))) by torch.distributions: ELBO = log p(x) - KL(q || p(z|x)), the slide's identity."""
    p, d = W.shape
    marginal = MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(p, dtype=F64))
    cov = torch.linalg.inv(torch.eye(d, dtype=F64) + W.T @ W / sigma**2)  # Σ = (I + WᵀW/σ²)⁻¹
    mean = (x - b) @ W @ cov / sigma**2  # Σ Wᵀ (x - b) / σ²
    batch = torch.broadcast_shapes(mean.shape, mu.shape)
    posterior = MultivariateNormal(mean.expand(batch), cov.expand(*batch[:-1], d, d))
    q = MultivariateNormal(mu.expand(batch), torch.diag_embed(logvar.exp().expand(batch)))
    return marginal.log_prob(x) - kl_divergence(q, posterior), _kl_torch(mu, logvar).expand(batch[:-1])


def _log_px_z_variant(W, sigma, residual, logvar, *, two_pi=True, log_var=True, spread="var", quad=1.0, power=2):
    """E_q[log p(x|z)] with one usual slip switched on, to name it."""
    p = W.shape[0]
    scale = {"var": logvar.exp(), "std": torch.exp(0.5 * logvar), "none": torch.zeros_like(logvar)}[spread]
    square = residual.pow(2).sum(-1) + (scale * W.pow(2).sum(0)).sum(-1)
    normaliser = p * ((math.log(2 * math.pi) if two_pi else 0.0) + (2 * math.log(sigma) if log_var else 0.0))
    return -0.5 * (normaliser + quad * square / sigma**power)


def _elbo_terms(fn, model, x, mu, logvar, what) -> dict[str, torch.Tensor]:
    got = call(fn, model, x, mu, logvar, what=what)
    if isinstance(got, torch.Tensor):
        raise Hint(f'{what} should return the dict {{"elbo": ..., "log_px_z": ..., "kl": ...}}, as lvm.elbo does')
    if not isinstance(got, dict) or not {"elbo", "log_px_z", "kl"} <= set(got):
        raise Hint(f'{what} should return a dict with the keys "elbo", "log_px_z" and "kl"')
    return {k: as_tensor(got[k], f"{what}[{k!r}]") for k in ("elbo", "log_px_z", "kl")}


def _elbo_case(fn, W, b, sigma, x, mu, logvar, what) -> dict[str, torch.Tensor]:
    model = lvm.LinearGaussian(W, b, sigma)
    want, want_kl = _identity_elbo(W, b, sigma, x, mu, logvar)
    got = _elbo_terms(fn, model, x, mu, logvar, what)
    residual = x - (mu @ W.T + b)
    variant = lambda **slip: _log_px_z_variant(W, sigma, residual, logvar, **slip)  # noqa: E731
    p = W.shape[0]
    _first_slip(
        got["log_px_z"].detach(),
        want + want_kl,
        [
            (variant(two_pi=False), f"log_px_z is off by p/2 · log 2π = {p / 2 * math.log(2 * math.pi):.4g}"),
            (variant(log_var=False), f"log_px_z is off by p log σ = {p * math.log(sigma):.4g}: −½ log σ² per dim"),
            (variant(two_pi=False, log_var=False), "log_px_z lacks the normaliser −(p/2) log(2π σ²)"),
            (variant(spread="std"), "the spread term uses σ_j = exp(logvar / 2); it needs σ_j² = exp(logvar)"),
            (variant(spread="none"), "the spread Σ_j σ_j² ‖w_j‖² is missing: E_q‖x − Wz − b‖² is not the error at μ"),
            (variant(power=1), "the squared error is divided by σ; it is divided by the variance σ²"),
            (variant(quad=2.0), "the ½ in front of the squared error is missing"),
        ],
    )
    compare(got["log_px_z"], want + want_kl, f"{what}['log_px_z']", atol=1e-6, rtol=1e-6)
    compare(got["kl"], want_kl, f"{what}['kl']", atol=1e-6, rtol=1e-6)
    if _close(got["elbo"], want + 2 * want_kl):
        raise Hint("the KL term enters with a minus sign: ELBO = E_q[log p(x|z)] − KL(q || p(z))")
    compare(got["elbo"], want, f"{what}['elbo']", atol=1e-6, rtol=1e-6)
    return got


def check_elbo(fn) -> None:
    """Against log p(x) - KL(q || p(z|x)) by torch.distributions, for five (x, q) pairs, five q for one x, one pair
    with autograd (two models: σ ≠ 1, p ≠ d), and at q = p(z|x) of a diagonal-posterior model (ELBO = log p(x))."""
    g = torch.Generator().manual_seed(53)
    what = "elbo(model, x, mu, logvar)"
    for p, d, sigma in [(4, 3, 0.7), (6, 2, 1.6)]:
        W = torch.randn(p, d, generator=g, dtype=F64)
        b = torch.randn(p, generator=g, dtype=F64)
        x = torch.randn(5, p, generator=g, dtype=F64)
        mu = torch.randn(5, d, generator=g, dtype=F64)
        logvar = torch.randn(5, d, generator=g, dtype=F64)
        _elbo_case(fn, W, b, sigma, x, mu, logvar, what)
        _elbo_case(fn, W, b, sigma, x[0], mu, logvar, f"{what} for one x (p,) and five q (5, d)")
        mu1, logvar1 = mu[0].clone().requires_grad_(True), logvar[0].clone().requires_grad_(True)
        _must_be_differentiable(_elbo_case(fn, W, b, sigma, x[1], mu1, logvar1, what)["elbo"], what)
    W_orth = torch.linalg.qr(W)[0] * torch.tensor([1.5, 0.3], dtype=F64)  # orthogonal columns: diagonal posterior
    tight = lvm.LinearGaussian(W_orth, b, sigma)
    mean, cov = tight.posterior(x[2])
    got = _elbo_terms(fn, tight, x[2], mean, torch.log(cov.diagonal()), what)["elbo"]
    compare(got, tight.log_marginal(x[2]), f"{what} at q = p(z|x) (must equal log p(x))", atol=1e-6, rtol=1e-6)
