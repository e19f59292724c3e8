"""Latent-variable models with exact answers: a linear-Gaussian p_theta(x, z) whose marginal p_theta(x) and
posterior p_theta(z|x) are closed-form, so the ELBO, its KL gap, the IWAE bound and gradient estimators can be
checked against truth.

The variational family is q_phi(z) = N(z; mu, diag exp(logvar)) with phi = (mu, logvar), logvar = log σ² as in
`objectives` and the VAE; the ELBO returns its terms by name as `objectives.elbo` does.
Exact answers need float64; the model keeps W's dtype and device and casts its inputs to them.
"""

from __future__ import annotations

import math

import torch

from .checks import positive_int
from .objectives import LOG_2PI, kl_to_standard_normal, normal_log_density, standard_normal_log_density


def _last_dim(t: torch.Tensor, size: int, name: str) -> None:
    if t.dim() == 0 or t.shape[-1] != size:
        raise ValueError(f"{name} must have shape (..., {size}), got {tuple(t.shape)}")


class LinearGaussian:
    """The linear-Gaussian latent-variable model (probabilistic PCA, Tipping & Bishop 1999):

        p(z) = N(z; 0, I_d),   p_theta(x|z) = N(x; W z + b, sigma² I_p),
    so  p_theta(x) = N(x; b, W Wᵀ + sigma² I_p)  and  p_theta(z|x) = N(z; Σ Wᵀ (x - b) / sigma², Σ),
    with Σ = (I_d + Wᵀ W / sigma²)⁻¹.

    W: (p, d), b: (p,), sigma > 0: a float, or a one-element tensor when theta = (W, b, sigma) is fitted by
    autograd (every method is differentiable in W, b and a tensor sigma). Methods broadcast over leading
    dimensions: x (..., p), z (..., d).
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, sigma: float | torch.Tensor):
        if not isinstance(W, torch.Tensor) or W.dim() != 2 or not W.is_floating_point():
            raise TypeError(f"W must be a floating-point tensor of shape (p, d), got {W!r:.80}")
        if not isinstance(b, torch.Tensor) or tuple(b.shape) != (W.shape[0],):
            raise ValueError(f"b must be a tensor of shape ({W.shape[0]},), got {getattr(b, 'shape', type(b))}")
        if isinstance(sigma, torch.Tensor):
            if sigma.numel() != 1 or not sigma.is_floating_point() or not sigma.item() > 0:
                raise ValueError(f"sigma must be a positive number or one-element tensor, got {sigma!r:.80}")
            sigma = sigma.reshape(()).to(W)
        elif isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
            raise ValueError(f"sigma must be a positive number, got {sigma!r}")
        else:
            sigma = float(sigma)
        self.W, self.b, self.sigma = W, b.to(W), sigma

    @property
    def log_sigma(self) -> torch.Tensor:
        """log sigma, as a tensor (differentiable when sigma is a tensor)."""
        return torch.log(torch.as_tensor(self.sigma, dtype=self.W.dtype, device=self.W.device))

    @classmethod
    def random(
        cls,
        latent_dim: int,
        data_dim: int,
        sigma: float = 1.0,
        *,
        scale: float = 1.0,
        diagonal_posterior: bool = False,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> LinearGaussian:
        """A random model: W with N(0, scale²) entries, b ~ N(0, I).

        diagonal_posterior=True makes W's columns orthogonal (W = Q diag(norms)), so Wᵀ W and hence the posterior
        covariance Σ are diagonal: the case where a mean-field q_phi can match p_theta(z|x) exactly (needs p ≥ d).
        """
        d, p = positive_int(latent_dim, "latent_dim"), positive_int(data_dim, "data_dim")
        W = scale * torch.randn(p, d, generator=generator, dtype=dtype)
        if diagonal_posterior:
            if p < d:
                raise ValueError(f"diagonal_posterior needs data_dim >= latent_dim, got {p} < {d}")
            Q, _ = torch.linalg.qr(W)  # (p, d) orthonormal columns
            W = Q * W.norm(dim=0)  # orthogonal columns with the random matrix's column norms
        b = torch.randn(p, generator=generator, dtype=dtype)
        return cls(W, b, sigma)

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    @property
    def data_dim(self) -> int:
        return self.W.shape[0]

    def _as(self, t, size: int, name: str) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=self.W.dtype, device=self.W.device)
        _last_dim(t, size, name)
        return t

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling z ~ p(z), x ~ p_theta(x|z).  -> x (n, p), z (n, d)"""
        n = positive_int(n, "n")
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=self.W.dtype, device=self.W.device)
        noise = torch.randn(n, self.data_dim, generator=generator, dtype=self.W.dtype, device=self.W.device)
        # x = W z + b + sigma ε
        return z @ self.W.T + self.b + self.sigma * noise, z

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = log N(z; 0, I).  (..., d) -> (...)"""
        return standard_normal_log_density(self._as(z, self.latent_dim, "z"))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p_theta(x|z) = log N(x; W z + b, sigma² I).  x (..., p), z (..., d) -> (...), broadcast"""
        x, z = self._as(x, self.data_dim, "x"), self._as(z, self.latent_dim, "z")
        mean = z @ self.W.T + self.b  # (..., d) -> (..., p)
        # log N(x; W z + b, sigma² I): the Gaussian log-density with log-variance 2 log sigma in every dimension
        return normal_log_density(x, mean, 2 * self.log_sigma)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p_theta(x, z) = log p_theta(x|z) + log p(z).  x (..., p), z (..., d) -> (...)"""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def marginal_covariance(self) -> torch.Tensor:
        """Cov[x] = W Wᵀ + sigma² I.  -> (p, p)"""
        return self.W @ self.W.T + self.sigma**2 * torch.eye(self.data_dim, dtype=self.W.dtype, device=self.W.device)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p_theta(x) = log N(x; b, W Wᵀ + sigma² I).  (..., p) -> (...)"""
        x = self._as(x, self.data_dim, "x")
        L = torch.linalg.cholesky(self.marginal_covariance())
        # Mahalanobis term ||L⁻¹(x - b)||², with C = L Lᵀ
        white = torch.linalg.solve_triangular(L, (x - self.b).unsqueeze(-1), upper=False).squeeze(-1)
        log_det = 2 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * (self.data_dim * LOG_2PI + log_det + white.pow(2).sum(-1))

    def posterior_precision(self) -> torch.Tensor:
        """Λ = Σ⁻¹ = I + Wᵀ W / sigma², the same for every x.  -> (d, d)"""
        eye = torch.eye(self.latent_dim, dtype=self.W.dtype, device=self.W.device)
        return eye + self.W.T @ self.W / self.sigma**2

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact p_theta(z|x) = N(mean, cov) by Bayes' rule.  x (..., p) -> mean (..., d), cov (d, d)"""
        x = self._as(x, self.data_dim, "x")
        cov = torch.cholesky_inverse(torch.linalg.cholesky(self.posterior_precision()))
        # mean = Σ Wᵀ (x - b) / sigma²   (Σ symmetric, so rows: (x - b) W Σ / sigma²)
        mean = (x - self.b) @ self.W @ cov / self.sigma**2
        return mean, cov

    def naive_log_marginal(
        self, x: torch.Tensor, n: int, repeats: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The naive Monte Carlo estimate log 1/n Σ_i p_theta(x|z_i), z_i ~ p(z), `repeats` independent times.

        x: (p,) -> (repeats,). Computed in log space and in chunks, so n can be large.
        """
        x = self._as(x, self.data_dim, "x")
        n, repeats = positive_int(n, "n"), positive_int(repeats, "repeats")
        if x.dim() != 1:
            raise ValueError(f"x must be one observation of shape ({self.data_dim},), got {tuple(x.shape)}")
        chunk = max(1, 2**22 // (repeats * (self.data_dim + self.latent_dim)))
        total = torch.full((repeats,), -math.inf, dtype=self.W.dtype, device=self.W.device)
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            z = torch.randn(
                repeats, size, self.latent_dim, generator=generator, dtype=self.W.dtype, device=self.W.device
            )
            total = torch.logaddexp(total, torch.logsumexp(self.log_likelihood(x, z), dim=1))
        # log 1/n Σ_i p(x|z_i)
        return total - math.log(n)


# ---- the variational family q_phi(z) = N(z; mu, diag exp(logvar)), phi = (mu, logvar), logvar = log σ² ----


def _check_q(model: LinearGaussian, x, mu, logvar) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(model, LinearGaussian):
        raise TypeError(f"model must be a LinearGaussian, got {type(model).__name__}")
    return (
        model._as(x, model.data_dim, "x"),
        model._as(mu, model.latent_dim, "mu"),
        model._as(logvar, model.latent_dim, "logvar"),
    )


def gaussian_kl(mean0: torch.Tensor, cov0: torch.Tensor, mean1: torch.Tensor, cov1: torch.Tensor) -> torch.Tensor:
    """KL(N(mean0, cov0) || N(mean1, cov1)) between full-covariance Gaussians.

    mean: (..., d), cov: (..., d, d), broadcast -> (...).
    """
    if cov0.shape[-2:] != cov1.shape[-2:] or cov0.shape[-1] != mean0.shape[-1] or mean0.shape[-1] != mean1.shape[-1]:
        raise ValueError(
            f"shapes do not match: mean0 {tuple(mean0.shape)}, cov0 {tuple(cov0.shape)}, "
            f"mean1 {tuple(mean1.shape)}, cov1 {tuple(cov1.shape)}"
        )
    d = mean0.shape[-1]
    L1 = torch.linalg.cholesky(cov1)
    # KL = 1/2 [tr(Σ1⁻¹ Σ0) + (μ1 - μ0)ᵀ Σ1⁻¹ (μ1 - μ0) - d + log det Σ1 - log det Σ0]
    trace = torch.cholesky_solve(cov0, L1).diagonal(dim1=-2, dim2=-1).sum(-1)
    white = torch.linalg.solve_triangular(L1, (mean1 - mean0).unsqueeze(-1), upper=False).squeeze(-1)
    log_det1 = 2 * torch.log(torch.diagonal(L1, dim1=-2, dim2=-1)).sum(-1)
    log_det0 = torch.linalg.slogdet(cov0)[1]
    return 0.5 * (trace + white.pow(2).sum(-1) - d + log_det1 - log_det0)


def expected_log_likelihood(
    model: LinearGaussian, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """E_q[log p_theta(x|z)] in closed form.  x (..., p), mu, logvar (..., d) -> (...)"""
    x, mu, logvar = _check_q(model, x, mu, logvar)
    residual = x - (mu @ model.W.T + model.b)  # (..., p)
    # E_q ||x - Wz - b||² = ||x - W mu - b||² + Σ_j σ_j² ||W_:j||²
    spread = (logvar.exp() * model.W.pow(2).sum(0)).sum(-1)
    return -0.5 * (
        model.data_dim * (LOG_2PI + 2 * model.log_sigma) + (residual.pow(2).sum(-1) + spread) / model.sigma**2
    )


def elbo(model: LinearGaussian, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, torch.Tensor]:
    """ELBO(x; theta, phi) = E_q[log p_theta(x|z)] - KL(q_phi(z) || p(z)), in closed form, with its two terms.

    Returns {"elbo", "log_px_z", "kl"}, each (...), as `objectives.elbo` does, except that log_px_z here is the
    exact expectation E_q[log p_theta(x|z)] rather than its value at one sampled z.
    """
    x, mu, logvar = _check_q(model, x, mu, logvar)
    log_px_z = expected_log_likelihood(model, x, mu, logvar)
    kl = kl_to_standard_normal(mu, logvar)
    return {"elbo": log_px_z - kl, "log_px_z": log_px_z, "kl": kl}


def kl_to_posterior(model: LinearGaussian, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q_phi(z) || p_theta(z|x)), the gap log p_theta(x) - ELBO, in closed form.  -> (...)"""
    x, mu, logvar = _check_q(model, x, mu, logvar)
    post_mean, post_cov = model.posterior(x)
    return gaussian_kl(mu, torch.diag_embed(logvar.exp()), post_mean, post_cov)


def iwae_bound(
    model: LinearGaussian,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    k: int,
    repeats: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Importance-weighted bound log 1/k Σ_i p_theta(x, z_i) / q_phi(z_i), z_i ~ q_phi (Burda et al. 2016).

    x (p,), mu, logvar (d,) -> (repeats,) independent draws of the bound (a tensor, as `objectives.iwae_bound`).
    Its mean is ≤ log p_theta(x), equals the ELBO at k = 1, is non-decreasing in k and tends to log p_theta(x).
    """
    x, mu, logvar = _check_q(model, x, mu, logvar)
    k, repeats = positive_int(k, "k"), positive_int(repeats, "repeats")
    eps = torch.randn(repeats, k, model.latent_dim, generator=generator, dtype=mu.dtype, device=mu.device)
    z = mu + torch.exp(0.5 * logvar) * eps  # (repeats, k, d)
    # log w_i = log p(x, z_i) - log q(z_i)
    log_w = model.log_joint(x, z) - normal_log_density(z, mu, logvar)
    # log 1/k Σ_i w_i
    return torch.logsumexp(log_w, dim=1) - math.log(k)


def mean_field_optimum(model: LinearGaussian, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The best diagonal q_phi for a Gaussian posterior N(μ, Λ⁻¹): mu = μ, σ_j² = 1 / Λ_jj (Bishop 2006, §10.1.2).

    It minimises KL(q || p_theta(z|x)) over diagonal Gaussians; the minimal KL is 1/2 log(Π_j Λ_jj / det Λ), zero
    exactly when the posterior is diagonal.  x (..., p) -> mu (..., d), logvar (d,)
    """
    mean, _ = model.posterior(x)
    # log σ_j² = -log Λ_jj
    return mean, -torch.log(torch.diagonal(model.posterior_precision()))


def reparameterized_gradient(
    model: LinearGaussian,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    n: int,
    repeats: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reparameterized estimate of ∇_phi ELBO with n samples, `repeats` independent times.

    z = mu + σ ⊙ ε, ε ~ N(0, I), so ∇_phi E_q[f(z)] = E_ε[∇_phi f(mu + σ ⊙ ε)], f = log p_theta(x, z) - log q_phi(z).
    (The score-function estimate it is compared with in notebook 05 is the student's own exercise.)
    x (p,), mu, logvar (d,) -> grads wrt mu and logvar, (repeats, d) each.
    """
    x, mu, logvar = _check_q(model, x, mu, logvar)
    n, repeats = positive_int(n, "n"), positive_int(repeats, "repeats")
    # one copy of (mu, logvar) per sample, (repeats, n, d) each, so that one backward gives every per-sample gradient
    shape = (repeats, n, mu.shape[-1])
    mu_i = mu.detach().expand(shape).clone().requires_grad_(True)
    logvar_i = logvar.detach().expand(shape).clone().requires_grad_(True)
    eps = torch.randn(shape, generator=generator, dtype=mu.dtype, device=mu.device)
    with torch.enable_grad():
        # z = g(phi, ε) = mu + σ ⊙ ε
        z = mu_i + torch.exp(0.5 * logvar_i) * eps
        (model.log_joint(x, z) - normal_log_density(z, mu_i, logvar_i)).sum().backward()
    return mu_i.grad.mean(1), logvar_i.grad.mean(1)


def maximum_likelihood(x: torch.Tensor, latent_dim: int) -> LinearGaussian:
    """The closed-form maximum-likelihood linear-Gaussian model of data x (Tipping & Bishop 1999, eq. 7-8).

    With S the sample covariance of x and λ_1 ≥ ... ≥ λ_p its eigenvalues (eigenvectors U):
        b_ML = mean of x,   sigma²_ML = mean of the p - d discarded eigenvalues,
        W_ML = U_d (Λ_d - sigma²_ML I)^½ R,   here with the rotation R = I (W_ML's columns are orthogonal).
    x: (N, p) with p > latent_dim -> the model with those parameters, in x's dtype.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor of shape (N, p), got {x!r:.80}")
    d = positive_int(latent_dim, "latent_dim")
    if not d < x.shape[1]:
        raise ValueError(f"latent_dim must be smaller than the data dimension {x.shape[1]}, got {d}")
    b = x.mean(0)
    centred = x - b
    S = centred.T @ centred / len(x)  # (p, p), the maximum-likelihood covariance
    eigenvalues, U = torch.linalg.eigh(S)  # ascending
    eigenvalues, U = eigenvalues.flip(0), U.flip(1)  # descending
    sigma2 = eigenvalues[d:].mean()
    # W_ML = U_d (Λ_d - sigma² I)^½
    W = U[:, :d] * (eigenvalues[:d] - sigma2).clamp_min(0).sqrt()
    return LinearGaussian(W, b, sigma2.sqrt().item())
