"""Exercises of notebook 05 (variational inference): `from lecturelib.exercises import nb05 as ex`.

5.1 kl_to_prior: the analytic KL(N(m, diag s²) || N(0, I)), one value per example.
5.2 elbo: the closed-form ELBO of the linear-Gaussian model, E_q[log p(x|z)] - KL(q || p(z)).
5.3 score_function_gradient: the score-function (REINFORCE) estimate of ∇_phi E_q[f(z)], with a baseline.
5.4 (question) does a baseline make the score function as precise as the reparameterization gradient?
5.5 (question) how the variance ratio score function (with a baseline) / reparameterization grows with d.

Each checker runs the student's function on small float64 cases against an independent reference (torch.distributions'
KL and log-densities, the identity log p(x) = ELBO + KL(q || p(z|x)), autograd of torch.distributions' log q), with a
fixed torch.Generator, on a fork of the random generator so that the notebook's own draws do not depend on the
student's code.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from .. import lvm
from . import Exercise, Hint, Question, as_tensor, compare

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
            f"{what} is not differentiable in m and log_s (a .item(), .detach(), NumPy or torch.no_grad() "
            f"inside?): the notebook ascends the ELBO by autograd through it"
        )


# ------------------------------------------------------------------------------------------------------------------
# 5.1 the KL term KL(q_phi(z) || p(z))
# ------------------------------------------------------------------------------------------------------------------
def reference_kl_to_prior(m: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """KL(N(m, diag s²) || N(0, I)) = 1/2 Σ_j (m_j² + s_j² - 1 - log s_j²).  m, log_s: (..., d) -> (...)"""
    return lvm.kl_to_prior(m, log_s)


def _kl_torch(m: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    q = Independent(Normal(m, log_s.exp()), 1)
    p = Independent(Normal(torch.zeros_like(m), torch.ones_like(m)), 1)
    return kl_divergence(q, p)


def check_kl_to_prior(f) -> None:
    """Against torch.distributions.kl_divergence on a batch of 5 diagonal Gaussians in d = 3, then one (d,) pair."""
    g = torch.Generator().manual_seed(51)
    m = torch.randn(5, 3, generator=g, dtype=F64)
    log_s = 0.6 * torch.randn(5, 3, generator=g, dtype=F64)
    want = _kl_torch(m, log_s)  # (5,)
    what = "kl_to_prior(m, log_s)"
    got = as_tensor(f(m.clone(), log_s.clone()), what)
    if got.shape == m.shape:
        raise Hint(
            f"{what} has shape {tuple(got.shape)}, one value per latent dimension: sum the d terms of each "
            f"example, .sum(-1), to get one KL per example, shape (5,)"
        )
    if got.numel() == 1:
        if _close(got.reshape(()), want.sum()):
            raise Hint(
                f"{what} is summed over the batch: return one KL per example, shape (5,), summing over the "
                f"latent dimension only (.sum(-1))"
            )
        if _close(got.reshape(()), want.mean()):
            raise Hint(f"{what} is averaged over the batch: return one KL per example, shape (5,) (.sum(-1))")
    s2, log_s2 = torch.exp(2 * log_s), 2 * log_s
    _first_slip(
        got,
        want,
        [
            (
                0.5 * (m**2 + log_s.exp() - 1 - log_s).sum(-1),
                "log_s is log s, the log standard deviation, not log s²: use s² = exp(2 log_s) and log s² = 2 log_s",
            ),
            (0.5 * (m**2 + s2 - 1 - log_s).sum(-1), "the last term is log s² = 2 log_s, not log_s"),
            (0.5 * (m**2 + log_s.exp() - 1 - log_s2).sum(-1), "s² = exp(2 log_s), not exp(log_s) (that is s)"),
            (0.5 * (m**2 + s2 - log_s2).sum(-1), "the −1 in each term is missing: the KL of q = p(z) must be 0"),
            (
                0.5 * (m**2 + s2 - 1 + log_s2).sum(-1),
                "sign of the log-variance term: ½ Σ_j (m_j² + s_j² − 1 − log s_j²)",
            ),
            (
                (m**2 + s2 - 1 - log_s2).sum(-1),
                "the factor ½ in front is missing: KL = ½ Σ_j (m_j² + s_j² − 1 − log s_j²)",
            ),
            (-want, "the KL has the wrong sign: a KL divergence is never negative"),
        ],
    )
    compare(got, want, what, atol=1e-6, rtol=1e-6)
    # one q of shape (d,) gives a scalar; q = p(z) gives 0; autograd flows (the ELBO ascent differentiates it)
    one = as_tensor(
        f(m[0].clone().requires_grad_(True), log_s[0].clone().requires_grad_(True)), "kl_to_prior on one (d,) pair"
    )
    compare(one, want[0], "kl_to_prior on one (d,) pair", atol=1e-6, rtol=1e-6)
    _must_be_differentiable(one, "kl_to_prior(m, log_s)")
    zero = as_tensor(f(torch.zeros(2, 4, dtype=F64), torch.zeros(2, 4, dtype=F64)), "kl_to_prior at q = p(z)")
    compare(zero, torch.zeros(2, dtype=F64), "kl_to_prior at q = p(z) (must be 0)", atol=1e-9)


kl_to_prior = Exercise("5.1", "the KL term KL(q || p(z)) in closed form", check_kl_to_prior, reference_kl_to_prior)


# ------------------------------------------------------------------------------------------------------------------
# 5.2 the ELBO of the linear-Gaussian model
# ------------------------------------------------------------------------------------------------------------------
def reference_elbo(model: lvm.LinearGaussian, x: torch.Tensor, m: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """ELBO = E_q[log p_theta(x|z)] - KL(q_phi(z) || p(z)) in closed form.  x (..., p), m, log_s (..., d) -> (...)"""
    return lvm.elbo(model, x, m, log_s)


def _identity_elbo(W, b, sigma, x, m, log_s) -> torch.Tensor:
    """log p(x) - KL(q || p(z|x)) with torch.distributions: the slide's identity, independent of the ELBO's formula."""
    p, d = W.shape
    marginal = MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(p, dtype=F64))
    cov = torch.linalg.inv(torch.eye(d, dtype=F64) + W.T @ W / sigma**2)  # Σ = (I + WᵀW/σ²)⁻¹
    mean = (x - b) @ W @ cov / sigma**2  # Σ Wᵀ (x - b) / σ²
    batch = torch.broadcast_shapes(mean.shape, m.shape)
    posterior = MultivariateNormal(mean.expand(batch), cov.expand(*batch[:-1], d, d))
    q = MultivariateNormal(m.expand(batch), torch.diag_embed(torch.exp(2 * log_s).expand(batch)))
    return marginal.log_prob(x) - kl_divergence(q, posterior)


def _elbo_variant(
    W, b, sigma, x, m, log_s, *, two_pi=True, log_var=True, spread="s2", quad=1.0, kl_sign=-1.0, var_power=2
) -> torch.Tensor:
    """The closed form with one usual slip switched on, to name it."""
    p = W.shape[0]
    residual = x - (m @ W.T + b)
    scale = {"s2": torch.exp(2 * log_s), "s": torch.exp(log_s), "none": torch.zeros_like(log_s)}[spread]
    square = residual.pow(2).sum(-1) + (scale * W.pow(2).sum(0)).sum(-1)
    normaliser = p * ((math.log(2 * math.pi) if two_pi else 0.0) + (2 * math.log(sigma) if log_var else 0.0))
    expected = -0.5 * (normaliser + quad * square / sigma**var_power)
    return expected + kl_sign * lvm.kl_to_prior(m, log_s)


def _elbo_cases():
    g = torch.Generator().manual_seed(52)
    p, d, sigma = 4, 3, 0.7  # σ ≠ 1 and p ≠ d, so that slips do not cancel
    W = torch.randn(p, d, generator=g, dtype=F64)
    b = torch.randn(p, generator=g, dtype=F64)
    x = torch.randn(5, p, generator=g, dtype=F64)
    m = torch.randn(5, d, generator=g, dtype=F64)
    log_s = 0.5 * torch.randn(5, d, generator=g, dtype=F64)
    return W, b, sigma, x, m, log_s


def check_elbo(f) -> None:
    """Against log p(x) - KL(q || p(z|x)) computed with torch.distributions: five (x, q) pairs, then five q for one
    x, then one (x, q) pair, with autograd."""
    W, b, sigma, x, m, log_s = _elbo_cases()
    model = lvm.LinearGaussian(W, b, sigma)
    p = W.shape[0]
    what = "elbo(model, x, m, log_s)"
    want = _identity_elbo(W, b, sigma, x, m, log_s)  # (5,)
    got = as_tensor(f(model, x.clone(), m.clone(), log_s.clone()), what)
    variant = lambda **slip: _elbo_variant(W, b, sigma, x, m, log_s, **slip)  # noqa: E731
    _first_slip(
        got,
        want,
        [
            (variant(kl_sign=+1.0), "the KL term enters with a minus sign: ELBO = E_q[log p(x|z)] − KL(q || p(z))"),
            (
                variant(two_pi=False),
                f"off by p/2 · log 2π = {p / 2 * math.log(2 * math.pi):.4g}: the normaliser −½ log 2π "
                f"of each of the p dimensions of x is missing",
            ),
            (
                variant(log_var=False),
                f"off by p log σ = {p * math.log(sigma):.4g}: the normaliser −½ log σ² of each of "
                f"the p dimensions of x is missing",
            ),
            (variant(two_pi=False, log_var=False), "the Gaussian's normaliser −(p/2) log(2π σ²) is missing"),
            (variant(spread="s"), "the spread term uses s_j = exp(log_s); it needs the variance s_j² = exp(2 log_s)"),
            (
                variant(spread="none"),
                "the spread term Σ_j s_j² ‖w_j‖² is missing: E_q‖x − Wz − b‖² = ‖x − Wm − b‖² + "
                "Σ_j s_j² ‖w_j‖², not the error at z = m alone",
            ),
            (variant(var_power=1), "the squared error is divided by σ; it is divided by the variance σ²"),
            (variant(quad=2.0), "the ½ in front of the squared error is missing: −½ (‖x − Wz − b‖² / σ²)"),
            (-want, "the ELBO has the wrong sign (it is a lower bound on log p(x), here a negative number)"),
        ],
    )
    compare(got, want, what, atol=1e-6, rtol=1e-6)
    # several q for one x (the notebook's case), then one (x, q) pair, with autograd
    many = _identity_elbo(W, b, sigma, x[0], m, log_s)
    compare(
        as_tensor(f(model, x[0].clone(), m.clone(), log_s.clone()), "elbo for one x (p,) and five q (5, d)"),
        many,
        "elbo for one x (p,) and five q (5, d)",
        atol=1e-6,
        rtol=1e-6,
    )
    m1, log_s1 = m[0].clone().requires_grad_(True), log_s[0].clone().requires_grad_(True)
    one = as_tensor(f(model, x[0].clone(), m1, log_s1), "elbo for one (x, q) pair")
    compare(one, want[0], "elbo for one (x, q) pair", atol=1e-6, rtol=1e-6)
    _must_be_differentiable(one, what)
    # the identity once more where the ELBO is tight: q = the posterior of a model whose posterior is diagonal
    W_orth = torch.linalg.qr(W)[0] * torch.tensor([1.5, 0.8, 0.3], dtype=F64)  # orthogonal columns
    tight = lvm.LinearGaussian(W_orth, b, sigma)
    mean, cov = tight.posterior(x[1])
    got = as_tensor(f(tight, x[1].clone(), mean, 0.5 * torch.log(cov.diagonal())), "elbo at q = p(z|x)")
    compare(got, tight.log_marginal(x[1]), "elbo at q = p(z|x) (must equal log p(x))", atol=1e-6, rtol=1e-6)


elbo = Exercise("5.2", "the ELBO of the linear-Gaussian model", check_elbo, reference_elbo)


# ------------------------------------------------------------------------------------------------------------------
# 5.3 the score-function (REINFORCE) gradient with a baseline
# ------------------------------------------------------------------------------------------------------------------
def reference_score_function_gradient(
    f, m: torch.Tensor, log_s: torch.Tensor, eps: torch.Tensor, baseline: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """1/n Σ_i (f(z_i) - b) ∇_phi log q_phi(z_i), z_i = m + s ⊙ ε_i, phi = (m, log s).

    f: (n, d) -> (n,); m, log_s: (d,); eps: (n, d) -> (gradient wrt m, gradient wrt log s), (d,) each.
    """
    s = torch.exp(log_s)
    z = m + s * eps
    weight = (f(z) - baseline).unsqueeze(-1)  # (n, 1)
    # ∇_m log q = (z - m) / s² = ε / s,   ∇_{log s} log q = (z - m)² / s² - 1 = ε² - 1
    return (weight * eps / s).mean(0), (weight * (eps**2 - 1)).mean(0)


def _score_autograd(f, m, log_s, eps, baseline, *, at=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The same estimate with the score by autograd of torch.distributions' log-density (`at`: where f is evaluated)."""
    phi = [m.detach().clone().requires_grad_(True), log_s.detach().clone().requires_grad_(True)]
    z = (m + torch.exp(log_s) * eps).detach()
    log_q = Normal(phi[0], torch.exp(phi[1])).log_prob(z).sum(-1)  # (n,)
    with torch.no_grad():
        weight = f(z if at is None else at) - baseline
    return tuple(torch.autograd.grad((weight * log_q).mean(), phi))


def _quadratic(g: torch.Generator, d: int):
    """f(z) = c0 - 1/2 Σ_j a_j (z_j - c_j)², and its exact E_q[f] for q = N(m, diag s²)."""
    a = 0.5 + torch.rand(d, generator=g, dtype=F64)
    c = torch.randn(d, generator=g, dtype=F64)
    c0 = 3.0  # a large mean: the baseline matters

    def f(z):
        return c0 - 0.5 * (a * (z - c).pow(2)).sum(-1)

    def expectation(m, log_s):
        # E_q (z_j - c_j)² = (m_j - c_j)² + s_j²
        return c0 - 0.5 * (a * ((m - c).pow(2) + torch.exp(2 * log_s))).sum(-1)

    return f, expectation


def _call_score(fn, f, m, log_s, eps, baseline, what):
    out = fn(f, m.clone(), log_s.clone(), eps.clone(), baseline)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Hint(f"{what} should return a pair (gradient wrt m, gradient wrt log s), got {type(out).__name__}")
    grads = [as_tensor(g, what).detach().to(F64) for g in out]
    d, n = m.shape[-1], eps.shape[0]
    for grad, name in zip(grads, ("m", "log s")):
        if grad.shape == (n, d):
            raise Hint(
                f"the gradient wrt {name} has shape {tuple(grad.shape)}, one per sample: average the n "
                f"per-sample terms, .mean(0)"
            )
        if grad.shape != (d,):
            raise Hint(f"the gradient wrt {name} has shape {tuple(grad.shape)}, expected ({d},)")
        if not torch.isfinite(grad).all():
            raise Hint(f"the gradient wrt {name} contains NaN or infinity")
    return grads


def check_score_function_gradient(fn) -> None:
    """Exact against the same estimate with autograd's score of torch.distributions (n = 40, d = 3, a baseline b ≠ 0);
    then, on 50,000 samples, its mean against the exact gradient of E_q[f] for a quadratic f, and on 300 estimates
    of n = 8 samples, a smaller variance with the baseline b = E_q[f] than without."""
    g = torch.Generator().manual_seed(53)
    d, n, baseline = 3, 40, 1.5
    f, expectation = _quadratic(g, d)
    m = torch.randn(d, generator=g, dtype=F64)
    log_s = 0.4 * torch.randn(d, generator=g, dtype=F64)
    eps = torch.randn(n, d, generator=g, dtype=F64)
    what = "score_function_gradient(f, m, log_s, eps, baseline)"
    got_m, got_s = _call_score(fn, f, m, log_s, eps, baseline, what)
    again = _call_score(fn, f, m, log_s, eps, baseline, what)
    if not (_close(again[0], got_m) and _close(again[1], got_s)):
        raise Hint(
            "two calls with the same eps gave different answers: use the eps you are given, z = m + s ⊙ ε, "
            "rather than drawing new noise"
        )
    want_m, want_s = _score_autograd(f, m, log_s, eps, baseline)
    if not (_close(got_m, want_m) and _close(got_s, want_s)):
        s = torch.exp(log_s)
        both = [
            (_score_autograd(f, m, log_s, eps, 0.0), "the baseline is ignored: weight each score by f(z_i) − b"),
            (_score_autograd(f, m, log_s, eps, -baseline), "the baseline is added: weight each score by f(z_i) − b"),
            ((-want_m, -want_s), "sign of the score: the estimate is the mean of (f(z) − b) · (+∇_phi log q_phi(z))"),
            ((n * want_m, n * want_s), "summed over the n samples: average them, .mean(0)"),
            (
                _score_autograd(f, m, log_s, eps, baseline, at=eps),
                "f is evaluated at ε; evaluate it at the sample z = m + s ⊙ ε",
            ),
        ]
        for (slip_m, slip_s), message in both:
            if _close(got_m, slip_m) and _close(got_s, slip_s):
                raise Hint(message)
        weight = (f(m + s * eps) - baseline).unsqueeze(-1)
        if not _close(got_m, want_m):
            for slip, message in [
                ((weight * eps).mean(0), "∇_m log q = (z − m) / s² = ε / s: divide ε by s"),
                ((weight * eps * s).mean(0), "∇_m log q = (z − m) / s², not z − m: divide by s²"),
            ]:
                if _close(got_m, slip):
                    raise Hint(message)
            compare(got_m, want_m, "the gradient wrt m", atol=1e-6, rtol=1e-6)
        for slip, message in [
            ((weight * eps**2).mean(0), "∇_{log s} log q = ε² − 1: the −1 (from the −log s_j of log q) is missing"),
            (
                (weight * (eps**2 - 1) / s).mean(0),
                "that is the gradient wrt s; the parameter is log s: ∇_{log s} = s ∇_s",
            ),
            (
                (weight * (eps**2 - 1) / s**2).mean(0),
                "that is divided by s² once too often; the parameter is log s: ∇_{log s} log q = ε² − 1",
            ),
        ]:
            if _close(got_s, slip):
                raise Hint(message)
        compare(got_s, want_s, "the gradient wrt log s", atol=1e-6, rtol=1e-6)
    # unbiased: the mean over many samples is the exact gradient of E_q[f], with or without a baseline
    phi = [m.clone().requires_grad_(True), log_s.clone().requires_grad_(True)]
    exact = torch.cat(torch.autograd.grad(expectation(*phi), phi))
    big = torch.randn(50_000, d, generator=g, dtype=F64)
    mean_f = expectation(m, log_s).item()
    for b in (0.0, mean_f):
        estimate = torch.cat(_call_score(fn, f, m, log_s, big, b, what))
        z = m + torch.exp(log_s) * big
        terms = (f(z) - b).unsqueeze(-1) * torch.cat([big / torch.exp(log_s), big**2 - 1], -1)  # per-sample
        standard_error = terms.std(0) / math.sqrt(len(big))
        worst = ((estimate - exact).abs() / standard_error).max().item()
        if worst > 5:
            raise Hint(
                f"with baseline b = {b:.3g}, the mean over 50,000 samples is {worst:.1f} standard errors away "
                f"from the exact gradient: the estimator is biased"
            )
    # the baseline b = E_q[f] lowers the variance: 300 estimates of n = 8 samples each
    variance = {}
    for b in (0.0, mean_f):
        draws = torch.stack(
            [
                torch.cat(_call_score(fn, f, m, log_s, torch.randn(8, d, generator=g, dtype=F64), b, what))
                for _ in range(300)
            ]
        )
        variance[b] = draws.var(0).sum().item()
    if variance[mean_f] >= variance[0.0]:
        raise Hint(
            f"the baseline b = E_q[f] did not lower the variance ({variance[mean_f]:.3g} with, "
            f"{variance[0.0]:.3g} without)"
        )


score_function_gradient = Exercise(
    "5.3",
    "the score-function gradient with a baseline",
    check_score_function_gradient,
    reference_score_function_gradient,
)


# ------------------------------------------------------------------------------------------------------------------
# 5.4 and 5.5: predict, then run
# ------------------------------------------------------------------------------------------------------------------
baseline_question = Question(
    "5.4",
    "does a baseline make the score function as precise as reparameterization?",
    choices={
        "a": "yes: within a factor 2 of the reparameterization gradient's variance",
        "b": "no: still more than twice the reparameterization gradient's variance",
    },
)

growth_question = Question(
    "5.5",
    "how does the variance ratio score function (with a baseline) / reparameterization grow from d = 2 to 32?",
    choices={
        "a": "less than 2-fold: about the same",
        "b": "2- to 30-fold: roughly in proportion to d, or slower",
        "c": "more than 30-fold: faster than d (like d² it would be 256-fold)",
    },
)


def growth_answer(factor: float) -> str:
    """The choice of question 5.5 that a measured growth factor of the variance ratio, d = 2 to d = 32, supports."""
    return "a" if factor < 2 else "b" if factor <= 30 else "c"
