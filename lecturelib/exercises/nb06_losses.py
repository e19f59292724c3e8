"""Checkers of notebook 06's exercises 6.2 (the reparameterization z = μ + σ ⊙ ε) and 6.3 (the ELBO loss),
against torch.distributions and the analytic KL; the exercise objects are in nb06."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from lecturelib import models

from . import Hint, as_tensor, call, compare, loss_terms
from .nb06_networks import P, _close, _digits


# ------------------------------------------------------------------------------------------------------------------
# 6.2 the reparameterization
# ------------------------------------------------------------------------------------------------------------------
def _check_noise(f, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z has mu's shape and dtype, noise was added, fresh per call and per example, of both signs, centred at mu.
    Returns z and z - mu (float64)."""
    z = as_tensor(f(mu, logvar), "reparameterize(mu, logvar)")
    if z.shape != mu.shape:
        raise Hint(
            f"reparameterize(mu, logvar) has shape {tuple(z.shape)} for mu of shape {tuple(mu.shape)}: "
            f"z has the shape of mu, one code per example"
        )
    if z.dtype != mu.dtype:
        raise Hint(
            f"z is {z.dtype} for mu of {mu.dtype} (ε drawn in another precision?): draw ε as "
            f"torch.randn_like(mu), the convention the docstring states, so that z goes into the float32 decoder"
        )
    if not torch.isfinite(z).all():
        raise Hint("z contains NaN or infinity")
    noise = (z - mu).detach().double()
    if noise.abs().max() < 1e-12:
        raise Hint("z = μ: no noise was added; z = μ + σ ⊙ ε with ε ~ N(0, I) (torch.randn_like(mu))")
    if torch.equal(as_tensor(f(mu, logvar), "reparameterize(mu, logvar)").detach(), z.detach()):
        raise Hint("z is the same on every call (torch.manual_seed inside?): draw a fresh ε each time")
    if (noise - noise[:1]).abs().max() < 1e-12:
        raise Hint("every example got the same ε: draw one per example and dimension, torch.randn_like(mu)")
    if (noise >= 0).all() or (noise <= 0).all():
        raise Hint(
            "z - μ never changes sign: ε ~ N(0, I) takes both signs (torch.rand_like draws uniform numbers in "
            "[0, 1)); draw it with torch.randn_like(mu)"
        )
    if z.detach().double().mean(0).abs().max() < 0.05:
        raise Hint("z has mean 0 where μ is not 0: did you forget + μ? z = μ + σ ⊙ ε")
    mean = noise.mean(0)
    if mean.abs().max() > 0.1:
        raise Hint(f"z - μ has mean {mean.max().item():+.2f} in some dimension: z = μ + σ ⊙ ε is centred at μ")
    return z, noise


def _check_spread(noise: torch.Tensor, logvar: torch.Tensor) -> None:
    """The standard deviation of z - mu is sigma = exp(logvar / 2) per dimension; names the usual substitutes; ε is
    Gaussian (excess kurtosis near 0)."""
    std = noise.std(0)
    lv = logvar[0].detach().double()
    sigma = torch.exp(0.5 * lv)
    candidates = [
        (sigma, None),
        (sigma**2, "σ² = exp(logvar) instead of σ: σ = exp(logvar / 2), the square root of the variance"),
        (lv.abs(), "logvar used as σ: σ = exp(logvar / 2), logvar is log σ²"),
        (1 / sigma, "1/σ: σ = exp(+logvar / 2)"),
        (0.5 * lv.abs(), "logvar / 2 = log σ used as σ: exponentiate it, σ = exp(logvar / 2)"),
        (torch.ones_like(lv), "ε alone: scale it by σ = exp(logvar / 2)"),
    ]
    for want, mistake in candidates:
        if torch.allclose(std, want, rtol=0.03, atol=0.0):
            if mistake is None:
                break
            raise Hint(f"the spread of z - μ is {mistake}")
    else:
        raise Hint(
            f"z - μ has standard deviations {[round(v, 3) for v in std.tolist()]} for σ = "
            f"{[round(v, 3) for v in sigma.tolist()]}: z = μ + σ ⊙ ε with σ = exp(logvar / 2)"
        )
    eps = noise / sigma
    excess_kurtosis = (eps**4).mean().item() / eps.var().item() ** 2 - 3
    if abs(excess_kurtosis) > 0.15:
        raise Hint(
            f"ε does not look Gaussian (excess kurtosis {excess_kurtosis:+.2f}; torch.rand_like draws uniform "
            f"numbers): ε ~ N(0, I), torch.randn_like(mu)"
        )


def _check_gradients(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> None:
    """∂z/∂μ = 1 and ∂z/∂logvar = σ ε / 2: the sample is a differentiable function of the encoder's outputs."""
    if z.grad_fn is None:
        raise Hint(
            "no gradient flows through z (.detach(), torch.no_grad, or .sample() instead of .rsample()?): "
            "the trick is that z is a differentiable function of μ and log σ²"
        )
    z.sum().backward()
    if mu.grad is None or logvar.grad is None:
        raise Hint("z does not depend differentiably on both mu and logvar: z = mu + exp(logvar / 2) * eps")
    if not torch.allclose(mu.grad, torch.ones_like(mu)):
        raise Hint("∂z/∂μ should be 1: z = μ + σ ⊙ ε")
    if not _close(logvar.grad, 0.5 * (z - mu).detach(), rtol=1e-4, atol=1e-5):
        raise Hint(
            "∂z/∂logvar should be σ ⊙ ε / 2 (z = μ + exp(logvar / 2) ⊙ ε): is σ computed from logvar "
            "inside the function, differentiably?"
        )


def _check_draw_convention(f) -> None:
    """The docstring's convention: ε = torch.randn_like(mu), one draw, nothing drawn before it, so that z matches
    the library's under the same seed (the notebook's check of the ELBO against objectives.elbo relies on it)."""
    small_mu, small_logvar = torch.randn(7, 3), torch.randn(7, 3)
    torch.manual_seed(123)
    got = f(small_mu, small_logvar)
    torch.manual_seed(123)
    want = small_mu + torch.exp(0.5 * small_logvar) * torch.randn_like(small_mu)
    if not _close(got, want, rtol=1e-5, atol=1e-6):
        raise Hint(
            "the right distribution, but ε is drawn differently from the docstring's convention, "
            "torch.randn_like(mu) (one draw of the shape and dtype of mu, nothing else drawn before it): "
            "draw it that way, so that your z matches the library's under the same seed"
        )


def check_reparameterize(f) -> None:
    """Moments of z - mu per latent dimension against sigma = exp(logvar / 2) (20,000 draws), a fresh eps per
    call and per example, Gaussian eps, gradients to mu and logvar, and the draw convention ε = randn_like(mu)."""
    torch.manual_seed(0)
    n = 20_000
    mu = torch.tensor([0.5, -1.0, 2.0, 0.0]).repeat(n, 1).requires_grad_()
    logvar = torch.tensor([-2.0, 0.5, 1.0, 2.0]).repeat(n, 1).requires_grad_()
    z, noise = _check_noise(f, mu, logvar)
    _check_spread(noise, logvar)
    _check_gradients(z, mu, logvar)
    _check_draw_convention(f)


# ------------------------------------------------------------------------------------------------------------------
# 6.3 the ELBO loss
# ------------------------------------------------------------------------------------------------------------------
def _loss_model(latent_dim: int = 3, hidden_dim: int = 16, logvar_bias: float | None = None) -> models.VAE:
    """A small Bernoulli models.VAE; with logvar_bias, q's log σ² is that constant (e.g. -30: z = μ to 1e-6)."""
    torch.manual_seed(2)
    vae = models.VAE(latent_dim=latent_dim, hidden_dim=hidden_dim)
    if logvar_bias is not None:
        with torch.no_grad():
            vae.to_logvar.weight.zero_()
            vae.to_logvar.bias.fill_(logvar_bias)
    return vae


def _reference_terms(model, x, seed: int) -> dict[str, torch.Tensor]:
    """Per-example log p(x|z), its z and logits, and KL, with torch.distributions, eps drawn as randn_like(mu)."""
    with torch.no_grad():
        mu, logvar = model.encode(x)
        torch.manual_seed(seed)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = model.decode(z)
        q = Normal(mu.double(), torch.exp(0.5 * logvar.double()))
        log_px_z = Bernoulli(logits=logits.double(), validate_args=False).log_prob(x.double()).flatten(1).sum(1)
        kl = kl_divergence(q, Normal(0.0, 1.0)).sum(1)
    return {"log_px_z": log_px_z, "kl": kl, "mu": mu, "logvar": logvar, "logits": logits}


def _run_loss(f, model, x, seed: int) -> dict:
    """The student's loss on copies of x (an in-place change is named), under `seed`; train.fit's contract checked:
    a dict of scalar tensors "loss", "recon_nll", "kl", the loss differentiable."""
    torch.manual_seed(seed)
    try:
        out = call(f, model, x, what="vae_loss(model, x)", may_change=("model",))
    except (RuntimeError, ValueError) as err:
        if "between 0 and 1" in str(err):
            raise Hint(
                "F.binary_cross_entropy takes probabilities, but the decoder returns logits: use "
                "F.binary_cross_entropy_with_logits(logits, x, reduction='none')"
            ) from None
        raise
    return loss_terms(out, ("loss", "recon_nll", "kl"), "vae_loss(model, x)")


def _check_kl_term(got: torch.Tensor, kl: torch.Tensor, d: int) -> None:
    """'kl' is the KL summed over the latent dimensions, mean over the batch; names its sign and a mean over dims."""
    if _close(got, -kl.mean()):
        raise Hint("'kl' is negative: KL(q‖p) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²) ≥ 0, the slide writes −KL")
    if _close(got, kl.mean() / d):
        raise Hint(f"'kl' is averaged over the {d} latent dimensions: sum over them, then average over the batch")
    compare(got, kl.mean(), "'kl'", batch=len(kl))


def _check_recon_term(got: torch.Tensor, model, x: torch.Tensor, ref: dict) -> None:
    """'recon_nll' is the binary cross-entropy of the logits of the sampled z, summed over the pixels, mean over the
    batch; names a second sigmoid, the squared error, a per-pixel mean, decoding μ instead of z."""
    nll = -ref["log_px_z"]
    probs = torch.sigmoid(ref["logits"].double())
    twice = F.binary_cross_entropy_with_logits(probs, x.double(), reduction="none").flatten(1).sum(1)
    if _close(got, twice.mean()):
        raise Hint(
            "the sigmoid is applied twice: F.binary_cross_entropy_with_logits takes the decoder's logits "
            "themselves, not sigmoid(logits)"
        )
    if _close(got, (x.double() - probs).pow(2).flatten(1).sum(1).mean()):
        raise Hint(
            "that is the squared error: the Bernoulli decoder's −log p(x|z) is the binary cross-entropy, "
            "F.binary_cross_entropy_with_logits(logits, x)"
        )
    if _close(got, nll.mean() / P):
        raise Hint(
            "'recon_nll' is per pixel (reduction='mean' averages over the 784 pixels too): sum over the pixels "
            "of each image (reduction='none', then .flatten(1).sum(1)), then average over the batch"
        )
    logits_at_mu = model.decode(ref["mu"]).detach().double()
    at_mu = -Bernoulli(logits=logits_at_mu, validate_args=False).log_prob(x.double()).flatten(1).sum(1)
    if not _close(at_mu.mean(), nll.mean(), rtol=1e-3, atol=1e-2) and _close(got, at_mu.mean()):
        raise Hint("'recon_nll' decodes z = μ: sample z = reparameterize(mu, logvar) and decode that")
    compare(got, nll.mean(), "'recon_nll'", per_image=P, batch=len(x))


def _check_total(got: torch.Tensor, nll: torch.Tensor, kl: torch.Tensor) -> None:
    """'loss' = recon_nll + kl; names the KL's sign and a per-pixel reconstruction term."""
    if _close(got, (nll - kl).mean()):
        raise Hint("the KL enters −ELBO with a + sign: −ELBO = −E_q[log p(x|z)] + KL(q‖p)")
    if _close(got, (nll / P + kl).mean()):
        raise Hint(
            "the reconstruction term of 'loss' is per pixel: sum it over the pixels, as the KL is summed over "
            "the latent dimensions, or the KL weighs 784 times too much"
        )
    compare(got, (nll + kl).mean(), "'loss' (−ELBO)", batch=len(nll))


def check_vae_loss(f) -> None:
    """Against E_q[log p(x|z)] with torch.distributions.Bernoulli and KL with torch.distributions.kl_divergence, on
    the same z under a fixed seed, after train.fit's contract (a dict of scalar tensors, the loss differentiable)
    and on copies of x (an in-place change is named); the usual slips named term by term."""
    x, model, seed = _digits(6), _loss_model(), 11
    out = _run_loss(f, model, x, seed)
    ref = _reference_terms(model, x, seed)
    got = {k: out[k].detach().double().reshape(()) for k in ("loss", "recon_nll", "kl")}
    _check_kl_term(got["kl"], ref["kl"], ref["mu"].shape[1])
    _check_recon_term(got["recon_nll"], model, x, ref)
    _check_total(got["loss"], -ref["log_px_z"], ref["kl"])
    # with a narrow q (σ ≈ 3e-7) the terms must hold too: catches an eps drawn outside reparameterize's convention
    narrow = _loss_model(logvar_bias=-30.0)
    out = _run_loss(f, narrow, x, seed)
    ref = _reference_terms(narrow, x, seed)
    want = (-ref["log_px_z"] + ref["kl"]).mean()
    compare(out["loss"].detach().double(), want, "'loss' (−ELBO) for a narrow q", rtol=1e-4, atol=1e-3)
