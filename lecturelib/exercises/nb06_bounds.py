"""Checkers of notebook 06's exercises 6.6 (the importance-weighted bound L_k) and 6.8 (ancestral sampling),
on GridVAE, a VAE with a 1- or 2-dimensional z whose log p(x) and ELBO are computed by quadrature."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from lecturelib import models

from . import Hint, as_tensor
from .nb06_networks import P, _digits


# ------------------------------------------------------------------------------------------------------------------
# 6.6 the importance-weighted bound
# ------------------------------------------------------------------------------------------------------------------
class GridVAE(nn.Module):
    """A VAE with a 1- or 2-dimensional z whose log p(x) is computable by quadrature on a grid: logits = a + B z
    (784 pixels), and a linear encoder fitted to give, for each of a few fixed images, a chosen q(z|x) (diagonal,
    wider than the posterior and off-centre, so that the ELBO is a few nats below log p(x) and the importance
    weights stay bounded). Holds log_px and the quadrature ELBO per image; counts the codes it decodes."""

    likelihood = "bernoulli"

    def __init__(self, x: torch.Tensor, latent_dim: int = 2, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.latent_dim, self.decoded = latent_dim, 0
        self.a = nn.Parameter(-1.0 + 0.5 * torch.randn(P, generator=g, dtype=torch.float64), requires_grad=False)
        self.b = nn.Parameter(0.3 * torch.randn(latent_dim, P, generator=g, dtype=torch.float64), requires_grad=False)
        axis = torch.linspace(-5, 5, 4001 if latent_dim == 1 else 161, dtype=torch.float64)
        grid = torch.cartesian_prod(*[axis] * latent_dim).view(-1, latent_dim)  # (G, d)
        cell = float(axis[1] - axis[0]) ** latent_dim
        log_px_z = self.log_px_z(x.double(), grid)  # (N, G)
        log_joint = log_px_z + Normal(0.0, 1.0).log_prob(grid).sum(1)
        self.log_px = torch.logsumexp(log_joint, 1) + math.log(cell)  # log p(x) = log ∫ p(x, z) dz
        post = torch.softmax(log_joint, 1)  # (N, G)
        m = post @ grid  # (N, d) posterior means
        s = (post @ grid**2 - m**2).sqrt()  # (N, d) posterior standard deviations
        q_mu, q_logvar = m + 0.5 * s, torch.log((2.5 * s) ** 2)
        pinv = torch.linalg.pinv(x.double().flatten(1))  # encode(x) = x W reproduces q on these x
        self.w_mu, self.w_logvar = pinv @ q_mu, pinv @ q_logvar  # (784, d)
        q = Normal(q_mu, q_logvar.mul(0.5).exp())
        weights_q = q.log_prob(grid[:, None, :]).sum(-1).T.exp() * cell  # (N, G)
        self.kl = kl_divergence(q, Normal(0.0, 1.0)).sum(1)
        self.elbo = (weights_q * log_px_z).sum(1) - self.kl

    def log_px_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) for images x (N, 1, 28, 28) and a grid of codes z (G, d) -> (N, G), in float64."""
        logits = self.a + z @ self.b  # (G, 784)
        return x.flatten(1) @ logits.T - F.softplus(logits).sum(1)  # Σ_i x_i l_i - log(1 + e^{l_i})

    def encode(self, x):
        models.check_images(x)
        features = x.double().flatten(1)
        return (features @ self.w_mu).float(), (features @ self.w_logvar).float()

    def decode(self, z):
        models.check_codes(z, self.latent_dim)
        self.decoded += z.shape[0]
        return (self.a + z.double() @ self.b).float().view(-1, *models.IMAGE_SHAPE)

    def decode_mean(self, z):
        return torch.sigmoid(self.decode(z))


def _iwae_values(f, model: GridVAE, x: torch.Tensor, k: int) -> torch.Tensor:
    """The student's L_k per digit, with the shape checked; names log(k − 1) at k = 1."""
    n = len(x)
    try:
        got = as_tensor(f(model, x, k), "iwae_bound(model, x, k)")
    except ValueError as err:
        if k == 1 and "math domain" in str(err):
            raise Hint("at k = 1 your code takes the log of 0: the mean of k weights is logsumexp − log k") from None
        raise
    if got.numel() == 1 and n > 1:
        raise Hint(f"iwae_bound returned one number for {n} digits: return L_k per digit, shape ({n},)")
    if got.shape == (k,) and k != n:
        raise Hint("you reduced over the digits: logsumexp over the k samples (dim 0 of log_w, shape (k, N))")
    if got.shape in ((k, n), (n, k)) and k > 1:
        raise Hint(f"iwae_bound returned shape {tuple(got.shape)}: reduce over the k samples with logsumexp")
    if got.shape != (n,):
        raise Hint(f"iwae_bound has shape {tuple(got.shape)}, expected ({n},): one L_k per digit")
    if not torch.isfinite(got).all():
        raise Hint(
            "L_k is −inf or NaN: the weights p(x,z)/q(z|x) ≈ e^(−500) underflow to 0 in float32; stay in "
            "log space, torch.logsumexp(log_w, dim=0) − math.log(k)"
        )
    return got.detach().double()


def _check_large_k(f, model: GridVAE, x: torch.Tensor, k: int = 2000) -> None:
    """L_k for a large k meets log p(x) (quadrature) within 0.15 nats, from k codes decoded per digit."""
    got = _iwae_values(f, model, x, k)
    n = len(x)
    if model.decoded < k * n:
        raise Hint(
            f"{model.decoded} codes were decoded for {n} digits and k = {k}: draw k samples z_i ~ q(z|x) per "
            f"digit (shape (k, N, d)) and decode all k·N of them"
            + ("; with one sample this is just the ELBO" if model.decoded <= n else "")
        )
    log_px, elbo = model.log_px, model.elbo
    if torch.allclose(got, log_px, atol=0.15, rtol=0):
        return
    if torch.allclose(got - math.log(k), log_px, atol=0.15, rtol=0):
        raise Hint(
            f"L_k is log(k) = {math.log(k):.2f} nats too high: the mean of the weights is logsumexp(log_w, 0) − log k"
        )
    if torch.allclose(got, elbo, atol=0.3, rtol=0):
        raise Hint(
            "that is the ELBO (about a few nats below log p(x) here), whatever k: you averaged the "
            "log-weights; L_k takes the log of the average of the weights, logsumexp(log_w, 0) − log k"
        )
    if torch.allclose(got + math.log(k), log_px, atol=0.15, rtol=0):
        raise Hint("log k was subtracted twice")
    gap = (got - log_px).mean().item()
    raise Hint(
        f"with a {model.latent_dim}-dimensional z, L_{k} differs from log p(x) (quadrature) by {gap:+.2f} nats on "
        f"average: log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), each summed (not averaged) over its "
        f"dimensions, z_i = μ + σ ⊙ ε with σ = exp(logvar / 2)"
    )


def _check_k_is_one(f, model: GridVAE, x: torch.Tensor, repeats: int = 1600) -> None:
    """L_1 is the ELBO: its mean over many draws and the digits meets the quadrature ELBO (within 3.5 standard
    errors); two calls draw different samples (no reseeding inside)."""
    n = len(x)
    x_rep = x.repeat(repeats, 1, 1, 1)
    first = _iwae_values(f, model, x_rep, 1).view(repeats, n)
    if torch.equal(first, _iwae_values(f, model, x_rep, 1).view(repeats, n)):
        raise Hint("two calls gave identical values (torch.manual_seed inside?): draw fresh z_i on every call")
    errors = first - model.elbo  # (repeats, n)
    offset, se = errors.mean().item(), errors.std().item() / math.sqrt(errors.numel())
    if abs(offset) <= 3.5 * se + 0.05:
        return
    d, kl = model.latent_dim, model.kl.mean().item()
    if abs(offset - kl * (1 - 1 / d)) <= 3.5 * se + 0.05:
        raise Hint(
            f"log p(z) and log q(z|x) are averaged over the {d} latent dimensions: sum them over the dimensions, "
            f"as log p(x|z) is summed over the pixels"
        )
    if abs(offset + math.log(2)) < 0.25:
        raise Hint("L_1 is log 2 below the ELBO: the mean of k weights is logsumexp(log_w, 0) − log k, not log(k + 1)")
    raise Hint(
        f"with k = 1, L_1 must be the ELBO (one sample), but yours is {offset:+.2f} nats off it on average: "
        f"log w = log p(x|z) + log p(z) − log q(z|x), z ~ q(z|x) with σ = exp(logvar / 2), each term summed over "
        f"its dimensions"
    )


def check_iwae_bound(f) -> None:
    """On a VAE with a 2-dimensional z, against log p(x) and the ELBO computed by quadrature:
    k = 1 gives the ELBO (mean of many draws), k = 2000 meets log p(x); names a missing or wrong − log k, averaged
    log-weights, exp underflow, a single sample, terms averaged over the latent dimensions, reseeding."""
    torch.manual_seed(0)
    x = _digits(4, seed=5)
    model = GridVAE(x, latent_dim=2)
    _iwae_values(f, model, x, 3)  # the shapes first, where k and N differ
    _check_k_is_one(f, model, x)
    model.decoded = 0
    _check_large_k(f, model, x)


# ------------------------------------------------------------------------------------------------------------------
# 6.8 ancestral sampling
# ------------------------------------------------------------------------------------------------------------------
def reference_ancestral_sample(model: nn.Module, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """z ~ p(z) = N(0, I), then x ~ p_theta(x|z) = Π_i Bernoulli(sigmoid(logits_i)).  -> z (n, d), x (n, 1, 28, 28)"""
    device = next(model.parameters()).device
    z = torch.randn(n, model.latent_dim, device=device)
    return z, torch.bernoulli(torch.sigmoid(model.decode(z)))


def _sample_pair(f, model: nn.Module, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's (z, x), shapes checked; names Bernoulli of the logits themselves."""
    try:
        out = f(model, n)
    except RuntimeError as err:
        if "bernoulli" in str(err).lower() or "p_in" in str(err):
            raise Hint("torch.bernoulli takes probabilities: sigmoid(logits), not the logits") from None
        raise
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise Hint("return the pair (z, x): the codes drawn from p(z) and the images drawn given them")
    z, x = as_tensor(out[0], "z"), as_tensor(out[1], "x")
    if tuple(z.shape) != (n, model.latent_dim):
        raise Hint(f"z has shape {tuple(z.shape)} for n = {n}, expected ({n}, {model.latent_dim})")
    if tuple(x.shape) != (n, *models.IMAGE_SHAPE):
        raise Hint(f"x has shape {tuple(x.shape)} for n = {n}, expected ({n}, 1, 28, 28)")
    return z.detach().double(), x.detach().double()


def check_ancestral_sample(f) -> None:
    """On a decoder with a 2-dimensional z (logits = a + B z): z ~ N(0, I) (moments), binary x, x drawn given the
    returned z (the mean of x - sigmoid(logits(z)) over 4,000 draws within 4 standard errors, per pixel region), not
    thresholded, fresh draws on every call (no reseeding)."""
    model = GridVAE(_digits(2, seed=7), latent_dim=2)
    n = 4000
    z, x = _sample_pair(f, model, n)
    if z.mean(0).abs().max() > 0.1 or (z.std(0) - 1).abs().max() > 0.1:
        raise Hint(
            f"z has mean {[round(v, 2) for v in z.mean(0).tolist()]} and standard deviation "
            f"{[round(v, 2) for v in z.std(0).tolist()]}: draw it from the "
            f"prior, z = torch.randn(n, model.latent_dim)"
        )
    p = torch.sigmoid(model.decode(z.float()).double())
    if not ((x == 0) | (x == 1)).all():
        if torch.allclose(x, p, atol=1e-4):
            raise Hint("x is the decoded mean sigmoid(logits): draw binary pixels from it, torch.bernoulli(mean)")
        raise Hint("x should be binary (every pixel 0 or 1): x ~ Bernoulli(sigmoid(logits))")
    if torch.equal(x, (p > 0.5).double()):
        raise Hint(
            "x is the mean rounded at 1/2: draw each pixel, torch.bernoulli(sigmoid(logits)), so that a pixel "
            "of probability 0.3 is 1 in 30 % of the samples"
        )
    # x_i ~ Bernoulli(p_i): E[x_i - p_i] = 0 and E|x_i - p_i| = 2 p_i (1 - p_i), for the p of the returned z
    se = (p * (1 - p)).sum().sqrt() / p.numel()
    spread = (x - p).abs().mean() / (2 * p * (1 - p)).mean()
    if abs((x - p).mean()) > 4 * se or not 0.97 < spread < 1.03:
        raise Hint("the pixels do not follow sigmoid(decode(z)) of the z you return: decode the same z you drew")
    z2, x2 = _sample_pair(f, model, n)
    if torch.equal(z2, z) or torch.equal(x2, x):
        raise Hint("two calls drew the same samples (torch.manual_seed inside?): draw fresh ones on every call")
