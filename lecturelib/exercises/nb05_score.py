"""Checker of notebook 05's exercise 5.4 (the score-function gradient with a baseline), against autograd of
torch.distributions' log q on quadratic test functions; the reference is reference_score_function_gradient."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from . import Hint, as_tensor, call, compare
from .nb05_densities import F64, _close


# ------------------------------------------------------------------------------------------------------------------
# 5.4 the score-function (REINFORCE) gradient with a baseline
# ------------------------------------------------------------------------------------------------------------------
def reference_score_function_gradient(
    f, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor, baseline: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """1/n Σ_i (f(z_i) - b) ∇_phi log q_phi(z_i), z_i = mu + σ ⊙ ε_i, phi = (mu, logvar), σ = exp(logvar / 2).

    f: (n, d) -> (n,); mu, logvar: (d,); eps: (n, d) -> (gradient wrt mu, gradient wrt logvar), (d,) each.
    """
    sigma = torch.exp(0.5 * logvar)
    z = mu + sigma * eps
    weight = (f(z) - baseline).unsqueeze(-1)  # (n, 1)
    # ∇_mu log q = (z - mu) / σ² = ε / σ,   ∇_logvar log q = ½ ((z - mu)² / σ² - 1) = ½ (ε² - 1)
    return (weight * eps / sigma).mean(0), (weight * 0.5 * (eps**2 - 1)).mean(0)


def _score_autograd(f, mu, logvar, eps, baseline, *, at=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The same estimate with the score by autograd of torch.distributions' log-density (`at`: where f is evaluated)."""
    phi = [mu.detach().clone().requires_grad_(True), logvar.detach().clone().requires_grad_(True)]
    z = (mu + torch.exp(0.5 * logvar) * eps).detach()
    log_q = Normal(phi[0], torch.exp(0.5 * phi[1])).log_prob(z).sum(-1)  # (n,)
    with torch.no_grad():
        weight = f(z if at is None else at) - baseline
    return tuple(torch.autograd.grad((weight * log_q).mean(), phi))


def _quadratic(g: torch.Generator, d: int):
    """f(z) = c0 - 1/2 Σ_j a_j (z_j - c_j)², and its exact E_q[f] for q = N(mu, diag exp(logvar))."""
    a = 0.5 + torch.rand(d, generator=g, dtype=F64)
    c = torch.randn(d, generator=g, dtype=F64)
    c0 = 3.0  # a large mean: the baseline matters

    def f(z):
        return c0 - 0.5 * (a * (z - c).pow(2)).sum(-1)

    def expectation(mu, logvar):
        # E_q (z_j - c_j)² = (mu_j - c_j)² + σ_j²
        return c0 - 0.5 * (a * ((mu - c).pow(2) + logvar.exp())).sum(-1)

    return f, expectation


def _call_score(fn, f, mu, logvar, eps, baseline, what):
    out = call(fn, f, mu, logvar, eps, baseline, what=what)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Hint(f"{what} should return a pair (gradient wrt mu, gradient wrt logvar), got {type(out).__name__}")
    grads = [as_tensor(g, what).detach().to(F64) for g in out]
    d, n = mu.shape[-1], eps.shape[0]
    for grad, name in zip(grads, ("mu", "logvar")):
        if grad.shape == (n, d) and n != d:
            raise Hint(f"the gradient wrt {name} has one row per sample: average the n per-sample terms, .mean(0)")
        if grad.shape != (d,):
            raise Hint(f"the gradient wrt {name} has shape {tuple(grad.shape)}, expected ({d},)")
        if not torch.isfinite(grad).all():
            raise Hint(f"the gradient wrt {name} contains NaN or infinity")
    return grads


def _score_slips(f, mu, logvar, eps, baseline, n):
    """(gradient wrt mu, gradient wrt logvar, message) of the usual mistakes; None leaves that gradient unchecked."""
    want_mu, want_lv = _score_autograd(f, mu, logvar, eps, baseline)
    sigma = torch.exp(0.5 * logvar)
    weight = (f(mu + sigma * eps) - baseline).unsqueeze(-1)
    return [
        (*_score_autograd(f, mu, logvar, eps, 0.0), "the baseline is ignored: weight each score by f(z_i) − b"),
        (*_score_autograd(f, mu, logvar, eps, -baseline), "the baseline is added: weight each score by f(z_i) − b"),
        (-want_mu, -want_lv, "sign of the score: the estimate averages (f(z) − b) · (+∇_phi log q_phi(z))"),
        (n * want_mu, n * want_lv, "summed over the n samples: average them, .mean(0)"),
        (*_score_autograd(f, mu, logvar, eps, baseline, at=eps), "f is evaluated at ε; evaluate it at z = mu + σ ⊙ ε"),
        ((weight * eps).mean(0), None, "∇_mu log q = (z − mu) / σ² = ε / σ: divide ε by σ"),
        ((weight * eps * sigma).mean(0), None, "∇_mu log q = (z − mu) / σ², not z − mu: divide by σ²"),
        (None, (weight * (eps**2 - 1)).mean(0), "that is the gradient wrt log σ; logvar = 2 log σ, so halve it"),
        (None, (weight * 0.5 * eps**2).mean(0), "∇_logvar log q = ½ (ε² − 1): the −1 (from −½ logvar) is missing"),
        (
            None,
            (weight * 0.5 * (eps**2 - 1) / sigma**2).mean(0),
            "that is the gradient wrt σ²; the parameter is logvar",
        ),
    ]


def _score_exact(fn, f, mu, logvar, eps, baseline, what) -> None:
    """The estimate for given ε equals autograd's (to 1e-6), the same for two calls; else name the slip."""
    got_mu, got_lv = _call_score(fn, f, mu, logvar, eps, baseline, what)
    again = _call_score(fn, f, mu, logvar, eps, baseline, what)
    if not (_close(again[0], got_mu) and _close(again[1], got_lv)):
        raise Hint("two calls with the same eps gave different answers: use the eps you are given, z = mu + σ ⊙ ε")
    want_mu, want_lv = _score_autograd(f, mu, logvar, eps, baseline)
    if _close(got_mu, want_mu) and _close(got_lv, want_lv):
        return
    for slip_mu, slip_lv, message in _score_slips(f, mu, logvar, eps, baseline, eps.shape[0]):
        if (slip_mu is None and not _close(got_mu, want_mu)) or (slip_lv is None and not _close(got_lv, want_lv)):
            continue
        if (slip_mu is None or _close(got_mu, slip_mu)) and (slip_lv is None or _close(got_lv, slip_lv)):
            raise Hint(message)
    compare(got_mu, want_mu, "the gradient wrt mu", atol=1e-6, rtol=1e-6)
    compare(got_lv, want_lv, "the gradient wrt logvar", atol=1e-6, rtol=1e-6)


def _score_unbiased(fn, f, expectation, mu, logvar, g, what) -> float:
    """The mean over 50,000 samples is the exact gradient of E_q[f], with b = 0 and with b = E_q[f]."""
    phi = [mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)]
    exact = torch.cat(torch.autograd.grad(expectation(*phi), phi))
    big = torch.randn(50_000, mu.shape[-1], generator=g, dtype=F64)
    mean_f = expectation(mu, logvar).item()
    sigma = torch.exp(0.5 * logvar)
    for b in (0.0, mean_f):
        estimate = torch.cat(_call_score(fn, f, mu, logvar, big, b, what))
        terms = (f(mu + sigma * big) - b).unsqueeze(-1) * torch.cat([big / sigma, 0.5 * (big**2 - 1)], -1)
        worst = ((estimate - exact).abs() / (terms.std(0) / math.sqrt(len(big)))).max().item()
        if worst > 5:
            raise Hint(f"with b = {b:.3g} the mean of 50,000 samples is {worst:.1f} s.e. from the exact gradient")
    return mean_f


def check_score_function_gradient(fn) -> None:
    """Exact against the estimate with autograd's score of torch.distributions for (d, n) = (3, 40) and (1, 7), with
    a baseline b ≠ 0; unbiased over 50,000 samples for a quadratic f; b = E_q[f] lowers the variance."""
    g = torch.Generator().manual_seed(54)
    what = "score_function_gradient(f, mu, logvar, eps, baseline)"
    for d, n, baseline in [(3, 40, 1.5), (1, 7, -0.8)]:
        f, expectation = _quadratic(g, d)
        mu = torch.randn(d, generator=g, dtype=F64)
        logvar = 0.8 * torch.randn(d, generator=g, dtype=F64)
        _score_exact(fn, f, mu, logvar, torch.randn(n, d, generator=g, dtype=F64), baseline, what)
    f, expectation = _quadratic(g, 3)
    mu, logvar = torch.randn(3, generator=g, dtype=F64), 0.8 * torch.randn(3, generator=g, dtype=F64)
    mean_f = _score_unbiased(fn, f, expectation, mu, logvar, g, what)
    variance = {}
    for b in (0.0, mean_f):  # 300 estimates of n = 8 samples each
        draws = [_call_score(fn, f, mu, logvar, torch.randn(8, 3, generator=g, dtype=F64), b, what) for _ in range(300)]
        variance[b] = torch.stack([torch.cat(d) for d in draws]).var(0).sum().item()
    if variance[mean_f] >= variance[0.0]:
        raise Hint(
            f"the baseline b = E_q[f] did not lower the variance ({variance[mean_f]:.3g} vs {variance[0.0]:.3g})"
        )
