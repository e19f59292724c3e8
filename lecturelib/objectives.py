"""The lecture's objectives, each written as its equation: reconstruction error, log-likelihoods, KL, ELBO, IWAE.

Convention everywhere: sum over the data (or latent) dimensions, one value per example; reduce at the call site.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lecturelib.checks import finite_number, positive_int

LOG_2PI = math.log(2 * math.pi)


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """||x - g(f(x))||², summed over the data dimensions.  x, x_hat: (N, ...) -> (N,)"""
    # ||x - x_hat||^2
    return (x - x_hat).pow(2).flatten(1).sum(1)


def ae_loss(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """An auto-encoder's training objective for `train.fit`: the reconstruction error, mean over the batch.

    model: an auto-encoder with encoder model.f and decoder model.g;  x: (N, 1, 28, 28) -> {"loss": scalar}
    """
    # (1/N) Σ_n ||x_n - g(f(x_n))||²
    return {"loss": reconstruction_error(x, model.g(model.f(x))).mean()}


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over the data dimensions.  (N, ...) -> (N,)"""
    # (N, 1, 28, 28) -> (N, 784): the same density as normal_log_density, over every data dimension
    return normal_log_density(x.flatten(1), mean.flatten(1), logvar.flatten(1))


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x; sigmoid(logits)) = x log p + (1 - x) log(1 - p), summed over dims.  (N, ...) -> (N,)

    x must lie in [0, 1]: binary pixels, or grey levels as in Kingma & Welling's MNIST code (then this is a loss,
    not the log-likelihood of a normalised density on [0, 1]; see notebook 06).
    """
    _check_unit_interval(x)
    # x log p + (1-x) log(1-p), computed stably from the logits
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def _check_unit_interval(x: torch.Tensor) -> None:
    """A Bernoulli likelihood is defined for x in [0, 1]: images scaled to 0..255, or standardised, are refused."""
    if x.numel() == 0:
        return
    low, high = torch.aminmax(x)  # one pass over x (comparing every value with 0 and with 1 took 17x longer)
    if x.device.type == "cuda":  # no host sync in the training step: the check fails the kernel stream instead
        torch._assert_async((low >= 0) & (high <= 1), "Bernoulli likelihood needs x in [0, 1]")
    elif low < 0 or high > 1:
        raise ValueError(
            f"a Bernoulli likelihood needs x in [0, 1], got values in [{low.item():.4g}, "
            f"{high.item():.4g}]: pass images scaled to [0, 1] (as data.load_mnist returns them)"
        )


def normal_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension.  (..., d) -> (...)"""
    # log N(z; mu, sigma^2) = -1/2 [log 2π + log sigma^2 + ((z - mu) / sigma)^2]
    # ((z - mu) / sigma)^2 rather than (z - mu)^2 / sigma^2: 1/sigma^2 overflows float32 below logvar ≈ -88
    return -0.5 * (LOG_2PI + logvar + ((z - mu) * torch.exp(-0.5 * logvar)).pow(2)).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension.  (..., d) -> (...)"""
    # log p(z) = -1/2 [d log 2π + ||z||^2]: normal_log_density with mu = 0, log sigma^2 = 0
    zero = torch.zeros((), dtype=z.dtype, device=z.device)
    return normal_log_density(z, zero, zero)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)), analytic.  mu, logvar: (N, d) -> (N,)"""
    # -KL = 1/2 Σ_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)   (Kingma & Welling 2014, appendix B)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma ⊙ eps with eps ~ N(0, I): a sample of q(z|x) that gradients flow through.  (N, d) -> (N, d)"""
    eps = torch.randn_like(mu)
    # z = mu + sigma * eps
    return mu + torch.exp(0.5 * logvar) * eps


def log_likelihood(model, x: torch.Tensor, z: torch.Tensor, *condition) -> torch.Tensor:
    """log p_theta(x|z) under the model's decoder (Bernoulli or Gaussian).  x: (N, 1, 28, 28), z: (N, d) -> (N,)

    condition: what a conditional model's decoder also takes (the labels y of a ConditionalVAE).
    """
    if model.likelihood == "bernoulli":
        return bernoulli_log_likelihood(x, model.decode(z, *condition))
    mean, logvar = model.decode(z, *condition)
    return gaussian_log_likelihood(x, mean, logvar)


def elbo_terms(model, x: torch.Tensor, *condition) -> dict[str, torch.Tensor]:
    """One-sample reparameterized ELBO of a VAE, per example, with its two terms.  x: (N, 1, 28, 28)

    Returns {"elbo", "log_px_z", "kl"}, each (N,), where
    ELBO(x) = E_q(z|x)[log p_theta(x|z)] - KL(q_phi(z|x) || p(z)), the expectation estimated with one z
    (log_px_z = log p_theta(x|z) at that z, the reconstruction term, in nats; higher is better).
    condition: what a conditional model's encoder and decoder also take: the labels y of a ConditionalVAE, for
    ELBO(x|y) = E_q(z|x,y)[log p_theta(x|z,y)] - KL(q_phi(z|x,y) || p(z)).
    """
    mu, logvar = model.encode(x, *condition)
    z = reparameterize(mu, logvar)
    log_px_z = log_likelihood(model, x, z, *condition)
    kl = kl_to_standard_normal(mu, logvar)
    # ELBO = E_q[log p(x|z)] - KL(q || p)
    return {"elbo": log_px_z - kl, "log_px_z": log_px_z, "kl": kl}


def elbo(model, x: torch.Tensor, *condition) -> torch.Tensor:
    """The one-sample ELBO per example, (N,), as iwae_bound returns L_k: elbo_terms(...)["elbo"]."""
    return elbo_terms(model, x, *condition)["elbo"]


def _batch_loss(terms: dict[str, torch.Tensor], beta: float = 1.0) -> dict[str, torch.Tensor]:
    """The loss dictionary of every VAE objective for `train.fit`, from per-example ELBO terms: mean over the batch
    of -(log p(x|z) - β KL), with its two terms (nats per image); β = 1 gives -ELBO."""
    return {
        "loss": -(terms["log_px_z"] - beta * terms["kl"]).mean(),
        "recon_nll": -terms["log_px_z"].mean(),
        "kl": terms["kl"].mean(),
    }


def average_elbo_terms(model, x: torch.Tensor, draws: int = 4) -> dict[str, torch.Tensor]:
    """The one-sample ELBO and its terms, each averaged over `draws` independent z ~ q(z|x), per example.

    Returns {"elbo", "log_px_z", "kl"}, each (N,): a steadier estimate of ELBO(x) than one draw (the KL is exact
    and the same in every draw). Call it under torch.inference_mode() to evaluate.
    """
    positive_int(draws, "draws")
    terms = [elbo_terms(model, x) for _ in range(draws)]
    # (1/draws) Σ_s ELBO_s(x), and the same for each term
    return {name: torch.stack([t[name] for t in terms]).mean(0) for name in terms[0]}


def vae_loss(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The training objective for `train.fit`: mean over the batch of -ELBO, with its terms (nats per image).

    Returns {"loss": -ELBO, "recon_nll": -E_q[log p(x|z)], "kl": KL(q || p)}, so that loss = recon_nll + kl.
    """
    return _batch_loss(elbo_terms(model, x))


def iwae_bound(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """Importance-weighted bound on log p(x) with k samples (Burda et al. 2016).  x: (N, ...) -> (N,)

    log p(x) ≥ E[log 1/k Σ_i p(x, z_i) / q(z_i|x)], z_i ~ q(z|x); k = 1 is the ELBO, k -> ∞ tends to log p(x).
    """
    positive_int(k, "k")
    mu, logvar = model.encode(x)
    n = x.shape[0]
    # (N, d) -> (k, N, d): k samples per example, decoded as one batch of k*N
    z = mu + torch.exp(0.5 * logvar) * torch.randn((k,) + mu.shape, device=mu.device, dtype=mu.dtype)
    x_rep = x.unsqueeze(0).expand((k,) + x.shape).reshape((k * n,) + x.shape[1:])
    log_px_z = log_likelihood(model, x_rep, z.reshape(k * n, -1)).view(k, n)
    # log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)
    log_w = log_px_z + standard_normal_log_density(z) - normal_log_density(z, mu, logvar)
    # log 1/k Σ_i w_i
    return torch.logsumexp(log_w, dim=0) - math.log(k)


def beta_vae_loss(beta: float):
    """The β-VAE objective (Higgins et al. 2017) for `train.fit`: minimise -(E_q[log p(x|z)] - β KL(q || p)).

    Returns a loss function (model, x) -> {"loss", "recon_nll", "kl"} (nats per image, mean over the batch); β = 1 is
    the ELBO. The function is named with its β, so that the checkpoint cache tells one β from another.
    """
    beta = finite_number(beta, "beta", minimum=0)

    def loss(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # -(E_q[log p(x|z)] - β KL(q(z|x) || p(z)))
        return _batch_loss(elbo_terms(model, x), beta)

    loss.__qualname__ = loss.__name__ = f"beta_vae_loss(beta={beta!r})"
    return loss


def conditional_vae_loss(model, batch) -> dict[str, torch.Tensor]:
    """Training objective of a conditional VAE for `train.fit` on (images, labels): mean -ELBO(x|y) and its terms."""
    x, y = batch
    return _batch_loss(elbo_terms(model, x, y))


def binarized_vae_loss(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """`vae_loss` on dynamically binarized digits: each pixel drawn from Bernoulli(grey level) at every call.

    x: (N, 1, 28, 28) grey levels in [0, 1]. Drawing a fresh x_b at every pass is the literature's "dynamically
    binarized MNIST" (Burda et al. 2016): on binary x the Bernoulli decoder is a normalised distribution, so the
    ELBO is a true lower bound on log p(x_b) and compares with published log-likelihoods.
    Returns {"loss": -ELBO, "recon_nll": -E_q[log p(x_b|z)], "kl": KL(q || p)}, mean over the batch.
    """
    # x_b ~ Bernoulli(x), pixel by pixel: x_b,i = 1 exactly when u_i < x_i, u_i ~ U[0, 1), so P(x_b,i = 1) = x_i
    # (on a CPU the very draws of torch.bernoulli(x) from the same seed, 3x quicker: it took 40 % of a training step)
    x_b = (torch.rand_like(x) < x).to(x.dtype)
    return vae_loss(model, x_b)


def iwae_bound_in_chunks(model, x: torch.Tensor, k: int, max_samples: int = 4000, bound=iwae_bound) -> torch.Tensor:
    """`bound` (L_k per example, nats) for many examples, a few at a time.  x: (N, ...) -> (N,)

    At most `max_samples` decoded samples (examples x k) are held at once, so that k = 1000 or more on the
    10,000 test digits fits in memory. The default keeps a chunk's logits (4,000 x 784 floats, 12.5 MB) in the
    processor's cache: on a 2-core CPU it ran 1.7x faster than chunks of 50,000 (docs/benchmarks.md).
    Runs without gradients. On binary x (a normalised Bernoulli decoder), -L_k estimates -log p(x) from above:
    the negative log-likelihood "by importance sampling" (Burda et al. 2016).
    bound: (model, x, k) -> (N,), `iwae_bound` or an implementation of your own (notebook 06's exercise 6.6).
    """
    positive_int(k, "k")
    positive_int(max_samples, "max_samples")
    chunk = max(1, max_samples // k)  # examples per pass
    with torch.inference_mode():
        return torch.cat([bound(model, x[i : i + chunk], k) for i in range(0, len(x), chunk)])
