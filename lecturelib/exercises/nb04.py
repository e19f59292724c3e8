"""Exercises of notebook 04 (sampling from an auto-encoder's latent space).

Use: `from lecturelib.exercises import nb04 as ex`.

4.1 (question) will samples of the diagonal Gaussian score better or worse than reconstructions?
4.2 fit_gaussian: the mean and full covariance of the codes.
4.3 sample_gaussian: z = μ + L ε with L the Cholesky factor of Σ.
4.4 sample_mixture: ancestral sampling from a Gaussian mixture (a component per sample, then its Gaussian).
4.5 (question) which latent density gives the test codes the highest likelihood?

Each checker runs the student's function on small cases against an independent reference (NumPy's covariance,
torch.distributions.MultivariateNormal, sample moments with a fixed seed), on forked random generators so that the
notebook's own random draws do not depend on the student's code; it names an input changed in place (the notebook
passes its training codes) and a sampler that sets a seed of its own.
"""

from __future__ import annotations

import numpy as np
import torch

from . import Exercise, Hint, Question, as_tensor, call, reseeds

D = torch.distributions


def _close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    """a ≈ b relative to b's scale (max-abs error at most tol · max |b|)."""
    return a.shape == b.shape and bool((a - b).abs().max() <= tol * b.abs().max())


# a correlated 3-D test Gaussian whose Σ, Σ², L Lᵀ and Lᵀ L all differ clearly
MU = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
SIGMA = torch.tensor([[2.0, 1.2, -0.6], [1.2, 1.5, 0.3], [-0.6, 0.3, 0.8]], dtype=torch.float64)


question_diag_vs_recon = Question(
    "4.1",
    "diagonal-Gaussian samples vs reconstructions",
    choices={
        "a": "the samples score better (lower fd) than the reconstructions",
        "b": "worse, but less than twice the reconstructions' fd",
        "c": "worse: more than twice the reconstructions' fd",
    },
)


# ------------------------------------------------------------------------------------------------------------------
# 4.2 fit a Gaussian to the codes
# ------------------------------------------------------------------------------------------------------------------
def reference_fit_gaussian(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The maximum-likelihood Gaussian of the rows of z: μ̂ = (1/N) Σ z_i, Σ̂ = (1/N) Σ (z_i - μ̂)(z_i - μ̂)ᵀ.
    z: (N, d) -> μ̂ (d,), Σ̂ (d, d)."""
    mu = z.mean(0)
    centred = z - mu
    return mu, centred.T @ centred / len(z)


def check_fit_gaussian(f) -> None:
    """Against NumPy's mean and covariance (1/N or 1/(N-1): both are accepted) of 400 correlated 3-D codes, then of
    50 codes in 2-D; the codes must not be changed in place (the notebook passes z_train itself)."""
    torch.manual_seed(0)
    _fit_gaussian_on(f, D.MultivariateNormal(MU, SIGMA).sample((400,)).float())
    _fit_gaussian_on(f, D.MultivariateNormal(MU[:2] * 3, SIGMA[:2, :2] / 4).sample((50,)).float())


def _fit_gaussian_on(f, z: torch.Tensor) -> None:
    """One configuration: z (n, d) float32 codes."""
    n = len(z)
    out = call(f, z, what="fit_gaussian(z)")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Hint(f"return a pair (mu, Sigma), got {type(out).__name__}")
    mu, cov = (as_tensor(t, name).detach().double() for t, name in zip(out, ("mu", "Sigma")))
    z64 = z.double().numpy()
    want_mu = torch.from_numpy(z64.mean(0))
    biased, unbiased = (torch.from_numpy(np.cov(z64, rowvar=False, bias=b)) for b in (True, False))
    if mu.shape != want_mu.shape:
        raise Hint(
            f"mu has shape {tuple(mu.shape)}, expected (d,) = {tuple(want_mu.shape)}: average over the codes, "
            f"z.mean(0), one value per latent dimension"
        )
    if not _close(mu, want_mu, 1e-4):
        raise Hint("mu is not the mean of the codes: μ̂ = (1/N) Σ_i z_i = z.mean(0)")
    if cov.shape == (n, n):
        raise Hint(
            f"Sigma has shape {tuple(cov.shape)} (N × N): a covariance over codes instead of over dimensions. "
            f"torch.cov wants the variables in rows, torch.cov(z.T); by hand (z - μ)ᵀ (z - μ) / N"
        )
    if cov.shape != biased.shape:
        raise Hint(f"Sigma has shape {tuple(cov.shape)}, expected (d, d) = {tuple(biased.shape)}")
    if not torch.isfinite(cov).all():
        raise Hint("Sigma contains NaN or infinity")
    if _close(cov, biased, 1e-4) or _close(cov, unbiased, 1e-4):
        return
    _covariance_slips(cov, z64, biased, unbiased, mu, want_mu)


def _covariance_slips(cov, z64, biased, unbiased, mu, want_mu) -> None:
    """Name what is wrong with a (d, d) Sigma that is not the covariance of the codes z64 (n, d)."""
    n = len(z64)
    raw = torch.from_numpy(z64.T @ z64 / n)
    if _close(cov, raw, 1e-3) or _close(cov, raw * n / (n - 1), 1e-3):
        raise Hint("Sigma is (1/N) Σ z_i z_iᵀ: you forgot to centre the codes, Σ̂ = (1/N) Σ (z_i - μ̂)(z_i - μ̂)ᵀ")
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    if off_diagonal.abs().max() < 1e-8:
        diag = torch.diagonal(cov)
        if _close(diag, torch.diagonal(biased), 1e-3) or _close(diag, torch.diagonal(unbiased), 1e-3):
            raise Hint(
                "Sigma is diagonal: those are only the variances. The full covariance keeps the correlations "
                "between latent dimensions off the diagonal, Σ̂ = (1/N) Σ (z_i - μ̂)(z_i - μ̂)ᵀ"
            )
        raise Hint(
            "Sigma is diagonal and its diagonal is not the variances: the full covariance is "
            "Σ̂ = (1/N) Σ (z_i - μ̂)(z_i - μ̂)ᵀ"
        )
    if not torch.allclose(cov, cov.T, atol=1e-6):
        raise Hint("Sigma is not symmetric: Σ̂ = (1/N) Σ (z_i - μ̂)(z_i - μ̂)ᵀ is")
    ratio = (cov / biased).flatten()
    if ratio.std() < 1e-3 * ratio.abs().mean():
        raise Hint(
            f"Sigma is the covariance times {ratio.mean().item():.4g}: divide the sum of outer products by N "
            f"(or N - 1), the number of codes"
        )
    # the likelihood: the maximum-likelihood fit scores highest (up to the N/(N-1) factor)
    ll = lambda m, s: D.MultivariateNormal(m, s).log_prob(torch.as_tensor(z64)).mean().item()  # noqa: E731
    try:
        got_ll = f"{ll(mu, cov):.3f}"
    except (ValueError, RuntimeError):
        got_ll = "undefined (Sigma is not positive definite)"
    raise Hint(
        f"Sigma is not the covariance of the codes (largest difference {(cov - biased).abs().max().item():.3g}); "
        f"mean log-likelihood of the codes under your fit {got_ll}, under the maximum-likelihood fit "
        f"{ll(want_mu, biased):.3f}"
    )


fit_gaussian = Exercise(
    "4.2", "fit a full-covariance Gaussian to the codes", check_fit_gaussian, reference_fit_gaussian
)


# ------------------------------------------------------------------------------------------------------------------
# 4.3 sample from it: z = μ + L ε
# ------------------------------------------------------------------------------------------------------------------
def reference_sample_gaussian(mu: torch.Tensor, Sigma: torch.Tensor, n: int) -> torch.Tensor:
    """n samples of N(μ, Σ): z = μ + L ε, ε ~ N(0, I), L the lower Cholesky factor (L Lᵀ = Σ).
    mu: (d,), Sigma: (d, d) -> z: (n, d)."""
    L = torch.linalg.cholesky(Sigma)
    eps = torch.randn(n, len(mu), dtype=mu.dtype, device=mu.device)
    return mu + eps @ L.T  # row i: μ + L ε_i


def _sample_moments(z: torch.Tensor):
    z = z.double()
    return z.mean(0), torch.cov(z.T)


def _gaussian_slips(mean, cov, mu, Sigma, what: str) -> None:
    """Hints for the usual mistakes in z = μ + L ε, read off the samples' mean and covariance."""
    L = torch.linalg.cholesky(Sigma)
    if cov.abs().max() < 1e-6:
        raise Hint(f"{what} are all the same: draw a fresh ε for each sample, torch.randn(n, d)")
    tol_mean = 0.04 * Sigma.diagonal().sqrt().max().item()
    if (mean - mu).abs().max() > tol_mean:
        if mean.abs().max() < tol_mean:
            raise Hint(f"{what} have mean ≈ 0: you forgot to add μ")
        raise Hint(
            f"{what} have mean {np.round(mean.numpy(), 2).tolist()}, expected μ = {np.round(mu.numpy(), 2).tolist()}"
        )
    if _close(cov, Sigma, 0.05):
        return
    for wrong, message in [
        (
            Sigma @ Sigma,
            "multiplied ε by Σ itself: then Cov(z) = Σ Σᵀ = Σ². Multiply by L = torch.linalg.cholesky(Σ), "
            "whose L Lᵀ = Σ",
        ),
        (
            L.T @ L,
            "used Lᵀ in place of L: Cov(z) is then Lᵀ L ≠ Σ. Each z_i = μ + L ε_i; for ε stacked in rows "
            "(n, d) that is ε @ L.T",
        ),
        (
            torch.diag(Sigma.diagonal()),
            "only the variances went in: z = μ + σ ⊙ ε ignores the correlations; use the "
            "Cholesky factor L of the full Σ",
        ),
        (
            torch.diag(Sigma.diagonal().sqrt()),
            "multiplied ε by the diagonal of Σ only, as a vector: use the Cholesky factor L of the full Σ",
        ),
        (torch.eye(len(mu), dtype=mu.dtype), "Cov(z) = I: ε was not multiplied by L"),
    ]:
        if _close(cov, wrong, 0.05):
            raise Hint(message)
    raise Hint(
        f"the covariance of {what} is {np.round(cov.numpy(), 2).tolist()}, expected "
        f"Σ = {np.round(Sigma.numpy(), 2).tolist()}"
    )


def check_sample_gaussian(f) -> None:
    """100,000 samples of a correlated 3-D Gaussian: shape, mean, covariance (sample moments, fixed seed), and the
    spread of their log-density under torch.distributions.MultivariateNormal: for Gaussian samples -2 log q is
    χ²_d plus a constant, so Var[log q(z)] = d / 2."""
    torch.manual_seed(0)
    n = 100_000
    mu, Sigma = MU.float(), SIGMA.float()
    z = as_tensor(call(f, mu, Sigma, n, what="sample_gaussian"), "sample_gaussian(mu, Sigma, n)").detach()
    if z.shape == (3, n):
        raise Hint(f"the samples have shape {tuple(z.shape)} = (d, n): return one sample per row, (n, d)")
    if z.shape != (n, 3):
        raise Hint(f"the samples have shape {tuple(z.shape)}, expected (n, d) = ({n}, 3)")
    if not torch.isfinite(z).all():
        raise Hint("the samples contain NaN or infinity")
    mean, cov = _sample_moments(z)
    _gaussian_slips(mean, cov, MU, SIGMA, "your samples")
    log_q = D.MultivariateNormal(MU, SIGMA).log_prob(z.double())
    if abs(log_q.var().item() - 1.5) > 0.1:
        raise Hint(
            f"mean and covariance are right, but log N(z; μ, Σ) varies over your samples with variance "
            f"{log_q.var().item():.2f}, where Gaussian samples give d/2 = 1.5: is ε standard normal "
            f"(torch.randn, not torch.rand)?"
        )
    small = as_tensor(call(f, mu, Sigma, 5, what="sample_gaussian"), "sample_gaussian(mu, Sigma, 5)")
    if small.shape != (5, 3):
        raise Hint(f"sample_gaussian(mu, Sigma, 5) has shape {tuple(small.shape)}: n must set the number of samples")
    # the notebook draws again and again (the live figure): the same draws under two seeds mean a seed set inside
    reseeds(f, mu, Sigma, 5, what="sample_gaussian(mu, Sigma, n)")


sample_gaussian = Exercise("4.3", "sample z = μ + Lε", check_sample_gaussian, reference_sample_gaussian)


# ------------------------------------------------------------------------------------------------------------------
# 4.4 sample a Gaussian mixture
# ------------------------------------------------------------------------------------------------------------------
def reference_sample_mixture(weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor, n: int) -> torch.Tensor:
    """n samples of Σ_k π_k N(μ_k, Σ_k): for each sample a component k ~ Categorical(π), then z = μ_k + L_k ε.
    weights: (K,), means: (K, d), covs: (K, d, d) -> z: (n, d)."""
    k = torch.multinomial(weights, n, replacement=True)  # (n,) one component per sample
    L = torch.linalg.cholesky(covs)  # (K, d, d)
    eps = torch.randn(n, means.shape[1], dtype=means.dtype, device=means.device)
    return means[k] + (L[k] @ eps[:, :, None])[:, :, 0]  # (n, d)


MIX_WEIGHTS = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
MIX_MEANS = torch.tensor([[-12.0, 0.0], [0.0, 12.0], [12.0, 0.0]], dtype=torch.float64)
MIX_COVS = torch.tensor(
    [[[2.0, 1.2], [1.2, 1.5]], [[1.0, -0.5], [-0.5, 2.0]], [[0.5, 0.0], [0.0, 3.0]]], dtype=torch.float64
)


def check_sample_mixture(f) -> None:
    """60,000 samples of three well-separated 2-D Gaussians with weights 0.6, 0.3, 0.1: each sample is assigned to its
    nearest component; the shares must match the weights and each component's samples its mean and covariance; no
    seed set inside; the inputs unchanged. (Exercise 4.4 is scaffolded: the student writes the draw of k and z.)"""
    torch.manual_seed(0)
    n = 60_000
    w, m, c = MIX_WEIGHTS.float(), MIX_MEANS.float(), MIX_COVS.float()
    try:
        z = call(f, w, m, c, n, what="sample_mixture")
    except RuntimeError as err:
        if "replacement" in str(err):
            raise Hint(
                "torch.multinomial draws at most K components without replacement: pass replacement=True "
                "(one component per sample, repeats allowed)"
            ) from None
        raise
    z = as_tensor(z, "sample_mixture(weights, means, covs, n)").detach()
    if z.shape != (n, 2):
        raise Hint(f"the samples have shape {tuple(z.shape)}, expected (n, d) = ({n}, 2)")
    if not torch.isfinite(z).all():
        raise Hint("the samples contain NaN or infinity")
    z = z.double()
    nearest = torch.cdist(z, MIX_MEANS).argmin(1)  # (n,) component of each sample
    distance = torch.cdist(z, MIX_MEANS).min(1).values
    if distance.median() > 6:
        raise Hint(
            "most samples lie far from every component's mean (between the components?): a mixture sample "
            "comes from one component, z = μ_k + L_k ε with k drawn first, not from a blend of the means"
        )
    share = torch.bincount(nearest, minlength=3).double() / n
    if share.max() > 0.99:
        raise Hint(
            "all samples come from one component: draw a component k for each sample, "
            "torch.multinomial(weights, n, replacement=True)"
        )
    if (share - 1 / 3).abs().max() < 0.02:
        raise Hint(
            f"the components get equal shares {np.round(share.numpy(), 3).tolist()}: draw k with the "
            f"weights π = {MIX_WEIGHTS.tolist()}, torch.multinomial(weights, n, replacement=True)"
        )
    if (share - MIX_WEIGHTS).abs().max() > 0.015:
        raise Hint(
            f"the components' shares are {np.round(share.numpy(), 3).tolist()}, expected the weights "
            f"π = {MIX_WEIGHTS.tolist()}"
        )
    for k in range(3):
        mean, cov = _sample_moments(z[nearest == k])
        _gaussian_slips(mean, cov, MIX_MEANS[k], MIX_COVS[k], f"the samples of component {k}")
    reseeds(f, w, m, c, 7, what="sample_mixture(weights, means, covs, n)")
    q = D.MixtureSameFamily(D.Categorical(probs=MIX_WEIGHTS), D.MultivariateNormal(MIX_MEANS, MIX_COVS))
    z_ref = q.sample((n,))
    gap = q.log_prob(z).mean().item() - q.log_prob(z_ref).mean().item()
    if abs(gap) > 0.05:
        raise Hint(
            f"the samples' mean log-density under the mixture differs by {gap:+.3f} from that of "
            f"torch.distributions' own samples"
        )


sample_mixture = Exercise("4.4", "sample a Gaussian mixture", check_sample_mixture, reference_sample_mixture)


best_loglik = Question(
    "4.5",
    "which q gives the test codes the highest likelihood?",
    choices={"a": "the diagonal Gaussian", "b": "the full-covariance Gaussian", "c": "the Gaussian mixture"},
)


def fd_choice(fd_ratio: float) -> str:
    """The letter of question 4.1 for a measured fd(diagonal Gaussian samples) / fd(reconstructions)."""
    return "a" if fd_ratio < 1 else "b" if fd_ratio < 2 else "c"


def best_loglik_choice(loglik: dict[str, float]) -> str:
    """The letter of question 4.5 for the held-out log-likelihoods measured by the notebook, keyed by density name
    ("diagonal Gaussian", "full-covariance Gaussian", "Gaussian mixture, k=...")."""
    best = max(loglik, key=loglik.get)
    for prefix, letter in (("diagonal", "a"), ("full", "b"), ("Gaussian mixture", "c")):
        if best.startswith(prefix):
            return letter
    raise ValueError(f"unknown density {best!r}")
