"""Exercises of notebook 06 (variational auto-encoders): `from lecturelib.exercises import nb06 as ex`.

6.1 networks: the encoder q_phi(z|x) (heads to_mu, to_logvar) and the Bernoulli decoder p_theta(x|z), 784-h-d and back.
6.2 reparameterize: z = mu + sigma ⊙ eps, eps ~ N(0, I), sigma = exp(logvar / 2).
6.3 vae_loss: -ELBO = -E_q[log p(x|z)] + KL(q || p), summed over pixels and latent dims, mean over the batch.
6.4 train_vae: a plain training loop (Adam, shuffled mini-batches, zero_grad / backward / step).
6.5 (question) how many nats the KL term costs the trained VAE.
6.6 iwae_bound: L_k = E[log 1/k Σ_i p(x, z_i) / q(z_i|x)], computed with logsumexp.
6.7 (question) whether L_k rises or falls with k.

Each checker runs the student's code on small cases against an independent reference (torch.distributions, the
analytic KL, log p(x) by quadrature for a one-dimensional latent, models.VAE for the architecture), on forked random
generators so that the notebook's own random draws do not depend on the student's code.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from lecturelib import models, objectives

from . import Exercise, Hint, Question, as_tensor, compare

P = models.P  # 784 pixels


def _digits(n: int, seed: int = 0) -> torch.Tensor:
    """Digit-like grey images in [0, 1]: a few smooth blobs of ink on a black background.  -> (n, 1, 28, 28)"""
    g = torch.Generator().manual_seed(seed)
    grid = torch.linspace(-1, 1, 28)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    centres = 0.6 * (2 * torch.rand(n, 3, 2, generator=g) - 1)  # three strokes per image
    d2 = (yy - centres[..., 0, None, None]) ** 2 + (xx - centres[..., 1, None, None]) ** 2  # (n, 3, 28, 28)
    ink = torch.exp(-d2 / 0.03).amax(1, keepdim=True)  # (n, 1, 28, 28)
    return (ink * (0.6 + 0.4 * torch.rand(n, 1, 1, 1, generator=g))).clamp(0, 1)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
    a, b = torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double()
    return a.shape == b.shape and bool(torch.isfinite(a).all()) and torch.allclose(a, b, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------------------------------------------
# 6.1 the encoder and the decoder
# ------------------------------------------------------------------------------------------------------------------
class ReferenceEncoder(nn.Module):
    """q_phi(z|x) = N(z; mu(x), diag σ²(x)): h = ReLU(W4ᵀx + b4), mu = W5ᵀh + b5, log σ² = W6ᵀh + b6.

    forward: x (N, 1, 28, 28) -> (mu, logvar), each (N, d). The same layers as models.VAE's encoder.
    """

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400):
        super().__init__()
        self.hidden = nn.Linear(P, hidden_dim)
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.hidden(x.flatten(1)))  # (N, 1, 28, 28) -> (N, 784) -> (N, h)
        return self.to_mu(h), self.to_logvar(h)


class ReferenceDecoder(nn.Module):
    """p_theta(x|z) = Π_i Bernoulli(x_i; sigmoid(logits_i)): h = ReLU(W1ᵀz + b1), logits = W2ᵀh + b2.

    forward: z (N, d) -> logits (N, 1, 28, 28). The same layers as models.VAE's Bernoulli decoder.
    """

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400):
        super().__init__()
        self.hidden = nn.Linear(latent_dim, hidden_dim)
        self.to_logits = nn.Linear(hidden_dim, P)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_logits(torch.relu(self.hidden(z))).view(-1, *models.IMAGE_SHAPE)  # (N, 784) -> (N, 1, 28, 28)


class Pair(nn.Module):
    """An encoder and a decoder put together with models.VAE's interface (encode, decode, decode_mean), so that
    objectives.elbo and the notebook's code run on it."""

    likelihood = "bernoulli"

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int):
        super().__init__()
        self.q_phi, self.p_theta, self.latent_dim = encoder, decoder, latent_dim

    def encode(self, x):
        return self.q_phi(x)

    def decode(self, z):
        return self.p_theta(z)

    def decode_mean(self, z):
        return torch.sigmoid(self.decode(z))

    def forward(self, x):
        return self.decode_mean(self.encode(x)[0])


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _call(fn, arg, what: str):
    try:
        return fn(arg)
    except RuntimeError as err:
        if "mat1 and mat2" in str(err) and arg.dim() == 4:
            raise Hint(
                f"{what}: nn.Linear needs rows of 784 numbers: flatten the images first, x.flatten(1) turns "
                f"(N, 1, 28, 28) into (N, 784)"
            ) from None
        if "mat1 and mat2" in str(err):
            raise Hint(
                f"{what}: a layer's input size does not fit ({str(err).strip()}); the decoder goes "
                f"latent_dim -> hidden_dim -> 784"
            ) from None
        raise


def check_networks(answer) -> None:
    """(Encoder, Decoder) classes: heads named to_mu / to_logvar, the shapes, the parameter count of models.VAE, the
    same function as models.VAE given its weights, and a few Adam steps that lower -ELBO on a small batch."""
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        raise Hint("pass the two classes: ex.networks.check((Encoder, Decoder))")
    Encoder, Decoder = answer
    for cls, name in ((Encoder, "Encoder"), (Decoder, "Decoder")):
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise Hint(f"{name} should be a class deriving from nn.Module")
    d, h = 3, 16  # small and unusual sizes, so that a hard-coded 20 or 400 shows
    torch.manual_seed(0)
    enc, dec = Encoder(latent_dim=d, hidden_dim=h), Decoder(latent_dim=d, hidden_dim=h)
    for head in ("to_mu", "to_logvar"):
        layer = getattr(enc, head, None)
        if not isinstance(layer, nn.Linear):
            raise Hint(
                f"the encoder needs two output heads named to_mu and to_logvar, each "
                f"nn.Linear(hidden_dim, latent_dim); {head} is missing"
            )
        if layer.out_features != d:
            raise Hint(
                f"Encoder(latent_dim={d}).{head} has {layer.out_features} outputs, expected latent_dim = {d}: "
                f"use the constructor's arguments, not fixed sizes"
            )
    if enc.to_mu is enc.to_logvar:
        raise Hint("to_mu and to_logvar are the same layer: mu and log σ² need a head each")
    x = _digits(5)
    out = _call(enc, x, "Encoder")
    if isinstance(out, torch.Tensor):
        raise Hint(
            f"the encoder returned one tensor of shape {tuple(out.shape)}: return the pair (mu, logvar), "
            f"each (N, latent_dim)"
        )
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise Hint("the encoder should return the pair (mu, logvar)")
    for t, name in zip(out, ("mu", "logvar")):
        t = as_tensor(t, f"the encoder's {name}")
        if tuple(t.shape) != (5, d):
            raise Hint(f"the encoder's {name} has shape {tuple(t.shape)} for 5 images, expected (5, {d})")
    z = torch.randn(5, d)
    logits = as_tensor(_call(dec, z, "Decoder"), "the decoder")
    if logits.numel() == 5 * P and tuple(logits.shape) != (5, *models.IMAGE_SHAPE):
        raise Hint(
            f"the decoder's output has shape {tuple(logits.shape)}: reshape it to images, "
            f".view(-1, 1, 28, 28) gives (N, 1, 28, 28)"
        )
    if tuple(logits.shape) != (5, *models.IMAGE_SHAPE):
        raise Hint(f"the decoder's output has shape {tuple(logits.shape)} for 5 codes, expected (5, 1, 28, 28)")

    # the parameter count of the tested library model
    vae = models.VAE(latent_dim=d, hidden_dim=h)
    n_enc, n_dec = _count(enc), _count(dec)
    want_enc = _count(vae.enc_hidden) + _count(vae.to_mu) + _count(vae.to_logvar)
    want_dec = _count(vae.dec_hidden) + _count(vae.to_logits)
    if n_dec == want_dec + h * P + P:
        raise Hint(
            "the decoder has two output heads (μ and log σ² of a Gaussian, as on the slide): the Bernoulli "
            "decoder has one, to_logits = nn.Linear(hidden_dim, 784)"
        )
    if (n_enc, n_dec) != (want_enc, want_dec):
        biases = (h + 2 * d, h + P)
        detail = (
            " (bias=False somewhere? every layer has a bias b)"
            if (want_enc - n_enc, want_dec - n_dec) in ((biases[0], 0), (0, biases[1]), biases)
            else ""
        )
        raise Hint(
            f"Encoder({d}, {h}) has {n_enc:,} parameters and Decoder({d}, {h}) {n_dec:,}; models.VAE({d}, {h}) "
            f"has {want_enc:,} and {want_dec:,}: one hidden layer of hidden_dim units each way{detail}"
        )

    # with models.VAE's weights, the same function as models.VAE
    enc_layers, dec_layers = _linears(enc), _linears(dec)
    hidden_in = [m for m in enc_layers if m.in_features == P]
    dec_in = [m for m in dec_layers if m.in_features == d]
    dec_out = [m for m in dec_layers if m.out_features == P]
    if len(enc_layers) == 3 and len(dec_layers) == 2 and len(hidden_in) == 1 and len(dec_in) == 1 and len(dec_out) == 1:
        with torch.no_grad():
            for mine, theirs in [
                (hidden_in[0], vae.enc_hidden),
                (enc.to_mu, vae.to_mu),
                (enc.to_logvar, vae.to_logvar),
                (dec_in[0], vae.dec_hidden),
                (dec_out[0], vae.to_logits),
            ]:
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
            mu, logvar = enc(x)
            want_mu, want_logvar = vae.encode(x)
            pre = vae.enc_hidden(x.flatten(1))
            if not _close(mu, want_mu):
                if _close(mu, want_logvar) and _close(logvar, want_mu):
                    raise Hint("mu and logvar come back swapped: return (mu, logvar)")
                if _close(mu, vae.to_mu(pre)):
                    raise Hint("no ReLU after the encoder's hidden layer: h = ReLU(W4ᵀx + b4)")
                if _close(mu, vae.to_mu(torch.sigmoid(pre))) or _close(mu, vae.to_mu(torch.tanh(pre))):
                    raise Hint("the hidden layer uses sigmoid or tanh; the slide's network uses ReLU")
                raise Hint(
                    "with models.VAE's weights your encoder's mu differs from models.VAE's: "
                    "mu = to_mu(ReLU(hidden(x.flatten(1))))"
                )
            if not _close(logvar, want_logvar):
                if _close(logvar, want_logvar.exp()) or _close(logvar, F.softplus(want_logvar)):
                    raise Hint(
                        "logvar is made positive (exp, softplus): log σ² is the head's raw output, any real "
                        "number; σ² = exp(logvar) is positive by construction"
                    )
                raise Hint(
                    "with models.VAE's weights your encoder's logvar differs from models.VAE's: "
                    "logvar = to_logvar(h), from the same h as mu"
                )
            out = dec(z)
            want = vae.decode(z)
            if not _close(out, want):
                if _close(out, torch.sigmoid(want)):
                    raise Hint(
                        "the decoder returns sigmoid means (probabilities): return the logits W2ᵀh + b2, as "
                        "models.VAE.decode does; the loss applies the sigmoid stably, and "
                        "torch.sigmoid(logits) gives the mean image for pictures"
                    )
                if _close(out, vae.to_logits(vae.dec_hidden(z)).view_as(want)):
                    raise Hint("no ReLU after the decoder's hidden layer: h = ReLU(W1ᵀz + b1)")
                raise Hint("with models.VAE's weights your decoder's logits differ from models.VAE.decode's")
    elif bool(((logits >= 0) & (logits <= 1)).all()):
        raise Hint("the decoder's outputs all lie in [0, 1]: return the logits W2ᵀh + b2, not sigmoid probabilities")

    # it trains: a few Adam steps lower -ELBO on a small batch, and every parameter gets a gradient
    torch.manual_seed(0)
    pair = Pair(Encoder(latent_dim=d, hidden_dim=h), Decoder(latent_dim=d, hidden_dim=h), d)
    batch = _digits(32, seed=1)
    optimizer = torch.optim.Adam(pair.parameters(), lr=1e-2)
    losses = []
    for step in range(15):
        loss = objectives.vae_loss(pair, batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            for name, p in pair.named_parameters():
                if p.grad is None:
                    raise Hint(
                        f"parameter {name.split('.', 1)[1]} of the "
                        f"{'encoder' if name.startswith('q_phi') else 'decoder'} gets no gradient: "
                        f"is every layer used in forward?"
                    )
        optimizer.step()
        losses.append(loss.item())
    if not losses[-1] < losses[0] - 20:
        raise Hint(f"-ELBO did not fall in 15 Adam steps on a small batch ({losses[0]:.1f} -> {losses[-1]:.1f} nats)")


networks = Exercise(
    "6.1",
    "the encoder q_phi(z|x) and the decoder p_theta(x|z)",
    check_networks,
    (ReferenceEncoder, ReferenceDecoder),
)


# ------------------------------------------------------------------------------------------------------------------
# 6.2 the reparameterization
# ------------------------------------------------------------------------------------------------------------------
def check_reparameterize(f) -> None:
    """Moments of z - mu per latent dimension against sigma = exp(logvar / 2) (20,000 draws), a fresh eps per
    call and per example, Gaussian eps, gradients to mu and logvar, and the same eps as torch.randn_like under a
    seed."""
    torch.manual_seed(0)
    n = 20_000
    mu = torch.tensor([0.5, -1.0, 2.0, 0.0]).repeat(n, 1).requires_grad_()
    logvar = torch.tensor([-2.0, 0.5, 1.0, 2.0]).repeat(n, 1).requires_grad_()
    z = as_tensor(f(mu, logvar), "reparameterize(mu, logvar)")
    if z.shape != mu.shape:
        raise Hint(
            f"reparameterize(mu, logvar) has shape {tuple(z.shape)} for mu of shape {tuple(mu.shape)}: "
            f"z has the shape of mu, one code per example"
        )
    if not torch.isfinite(z).all():
        raise Hint("z contains NaN or infinity")
    noise = (z - mu).detach().double()
    if noise.abs().max() < 1e-12:
        raise Hint("z = μ: no noise was added; z = μ + σ ⊙ ε with ε ~ N(0, I) (torch.randn_like(mu))")
    z2 = as_tensor(f(mu, logvar), "reparameterize(mu, logvar)").detach()
    if torch.equal(z2, z.detach()):
        raise Hint("z is the same on every call: draw a fresh ε each time, torch.randn_like(mu)")
    if (noise - noise[:1]).abs().max() < 1e-12:
        raise Hint("every example got the same ε: draw one per example and dimension, torch.randn_like(mu)")
    zd = z.detach().double()
    if (noise >= 0).all() or (noise <= 0).all():
        raise Hint(
            "z - μ never changes sign: ε ~ N(0, I) takes both signs (torch.rand_like draws uniform numbers in "
            "[0, 1)); draw it with torch.randn_like(mu)"
        )
    if zd.mean(0).abs().max() < 0.05:
        raise Hint("z has mean 0 where μ is not 0: did you forget + μ? z = μ + σ ⊙ ε")
    mean = noise.mean(0)
    if mean.abs().max() > 0.1:
        raise Hint(f"z - μ has mean {mean.max().item():+.2f} in some dimension: z = μ + σ ⊙ ε is centred at μ")
    std = noise.std(0)
    sigma = torch.exp(0.5 * logvar[0].detach().double())
    candidates = [
        (sigma, None),
        (sigma**2, "σ² = exp(logvar) instead of σ: σ = exp(logvar / 2), the square root of the variance"),
        (logvar[0].detach().double().abs(), "logvar used as σ: σ = exp(logvar / 2), logvar is log σ²"),
        (1 / sigma, "1/σ: σ = exp(+logvar / 2)"),
        (0.5 * logvar[0].detach().double().abs(), "logvar / 2 = log σ used as σ: exponentiate it, σ = exp(logvar / 2)"),
        (torch.ones(4, dtype=torch.float64), "ε alone: scale it by σ = exp(logvar / 2)"),
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
    # the same ε as the library under a fixed seed, so that the notebook's check against objectives.elbo holds
    small_mu, small_logvar = torch.randn(7, 3), torch.randn(7, 3)
    torch.manual_seed(123)
    got = f(small_mu, small_logvar)
    torch.manual_seed(123)
    want = small_mu + torch.exp(0.5 * small_logvar) * torch.randn_like(small_mu)
    if not _close(got, want, rtol=1e-5, atol=1e-6):
        raise Hint(
            "the right distribution, but ε is drawn differently from torch.randn_like(mu) (one draw of the "
            "shape of mu, nothing else drawn before it): draw it that way, so that your z matches the "
            "library's under the same seed"
        )


reparameterize = Exercise(
    "6.2", "the reparameterization z = μ + σ ⊙ ε", check_reparameterize, objectives.reparameterize
)


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
    torch.manual_seed(seed)
    try:
        out = f(model, x)
    except (RuntimeError, ValueError) as err:
        if "between 0 and 1" in str(err):
            raise Hint(
                "F.binary_cross_entropy takes probabilities, but the decoder returns logits: use "
                "F.binary_cross_entropy_with_logits(logits, x, reduction='none')"
            ) from None
        raise
    if not isinstance(out, dict):
        raise Hint(f"vae_loss should return a dict of named terms, got {type(out).__name__}")
    missing = [k for k in ("loss", "recon_nll", "kl") if k not in out]
    if missing:
        raise Hint(
            f"the dict has no {missing}: return {{'loss': -ELBO, 'recon_nll': -E_q[log p(x|z)], 'kl': KL}}, "
            f"each a mean over the batch"
        )
    for key in ("loss", "recon_nll", "kl"):
        value = as_tensor(out[key], f"vae_loss(...)['{key}']")
        if value.numel() > 1:
            raise Hint(f"'{key}' has shape {tuple(value.shape)}: one number for the batch, the mean over its examples")
    return out


def check_vae_loss(f) -> None:
    """Against E_q[log p(x|z)] with torch.distributions.Bernoulli and KL with torch.distributions.kl_divergence, on
    the same z under a fixed seed; the usual slips (KL sign, per pixel, summed over the batch, a sigmoid too many)
    named."""
    n = 6
    x = _digits(n)
    model = _loss_model()
    seed = 11
    out = _run_loss(f, model, x, seed)
    ref = _reference_terms(model, x, seed)
    nll, kl = -ref["log_px_z"], ref["kl"]
    if not (isinstance(out["loss"], torch.Tensor) and out["loss"].requires_grad):
        raise Hint(
            "'loss' carries no gradient (.item(), .detach() or torch.no_grad?): train.fit calls loss.backward() on it"
        )
    got = {k: torch.as_tensor(out[k]).detach().double().reshape(()) for k in ("loss", "recon_nll", "kl")}
    d = ref["mu"].shape[1]
    # the KL term
    if _close(got["kl"], -kl.mean()):
        raise Hint("'kl' is negative: KL(q‖p) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²) ≥ 0, the slide writes −KL")
    if _close(got["kl"], kl.mean() / d):
        raise Hint(f"'kl' is averaged over the {d} latent dimensions: sum over them, then average over the batch")
    compare(got["kl"], kl.mean(), "'kl'", batch=n)
    # the reconstruction term
    probs = torch.sigmoid(ref["logits"].double())
    twice = F.binary_cross_entropy_with_logits(probs, x.double(), reduction="none").flatten(1).sum(1)
    if _close(got["recon_nll"], twice.mean()):
        raise Hint(
            "the sigmoid is applied twice: F.binary_cross_entropy_with_logits takes the decoder's logits "
            "themselves, not sigmoid(logits)"
        )
    squared = (x.double() - probs).pow(2).flatten(1).sum(1)
    if _close(got["recon_nll"], squared.mean()):
        raise Hint(
            "that is the squared error: the Bernoulli decoder's −log p(x|z) is the binary cross-entropy, "
            "F.binary_cross_entropy_with_logits(logits, x)"
        )
    if _close(got["recon_nll"], -ref["log_px_z"].mean() / (P * 1.0)):
        raise Hint(
            "'recon_nll' is per pixel (reduction='mean' averages over the 784 pixels too): sum over the pixels "
            "of each image (reduction='none', then .flatten(1).sum(1)), then average over the batch"
        )
    logits_at_mu = model.decode(ref["mu"]).detach().double()
    at_mu = -Bernoulli(logits=logits_at_mu, validate_args=False).log_prob(x.double()).flatten(1).sum(1)
    if not _close(at_mu.mean(), nll.mean(), rtol=1e-3, atol=1e-2) and _close(got["recon_nll"], at_mu.mean()):
        raise Hint("'recon_nll' decodes z = μ: sample z = reparameterize(mu, logvar) and decode that")
    compare(got["recon_nll"], nll.mean(), "'recon_nll'", per_image=P, batch=n)
    # the total
    if _close(got["loss"], (nll - kl).mean()):
        raise Hint("the KL enters −ELBO with a + sign: −ELBO = −E_q[log p(x|z)] + KL(q‖p)")
    if _close(got["loss"], (nll / P + kl).mean()):
        raise Hint(
            "the reconstruction term of 'loss' is per pixel: sum it over the pixels, as the KL is summed over "
            "the latent dimensions, or the KL weighs 784 times too much"
        )
    compare(got["loss"], (nll + kl).mean(), "'loss' (−ELBO)", batch=n)
    # with a wide q, the z fed to the decoder must be the reparameterized sample (checked above on the same seed);
    # with a narrow q (σ ≈ 3e-7) the terms must hold too: catches an eps drawn outside reparameterize's convention
    narrow = _loss_model(logvar_bias=-30.0)
    out = _run_loss(f, narrow, x, seed)
    ref = _reference_terms(narrow, x, seed)
    compare(
        torch.as_tensor(out["loss"]).detach().double(),
        (-ref["log_px_z"] + ref["kl"]).mean(),
        "'loss' (−ELBO) for a narrow q",
        rtol=1e-4,
        atol=1e-3,
    )


vae_loss = Exercise("6.3", "the ELBO loss −E_q[log p(x|z)] + KL(q‖p)", check_vae_loss, objectives.vae_loss)


# ------------------------------------------------------------------------------------------------------------------
# 6.4 the training loop
# ------------------------------------------------------------------------------------------------------------------
def reference_train_vae(
    model: nn.Module, loss_fn, x: torch.Tensor, epochs: int, batch_size: int = 128, lr: float = 1e-3
) -> list[float]:
    """Adam on shuffled mini-batches for `epochs` passes over x (N, 1, 28, 28); the loss of every step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), device=x.device)  # a new order every epoch
        for start in range(0, len(x), batch_size):
            loss = loss_fn(model, x[order[start : start + batch_size]])["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


@contextlib.contextmanager
def _counting_adam(record: dict):
    """Replace torch.optim.Adam for the duration by a subclass that counts constructions, steps and zero_grads."""
    original = torch.optim.Adam

    class CountingAdam(original):
        def __init__(self, params, *args, **kwargs):
            super().__init__(params, *args, **kwargs)
            record["made"] += 1
            record["lr"] = self.defaults["lr"]

        def step(self, *args, **kwargs):
            record["steps"] += 1
            record["grads"].append(any(p.grad is not None for g in self.param_groups for p in g["params"]))
            return super().step(*args, **kwargs)

        def zero_grad(self, *args, **kwargs):
            record["zero_grads"] += 1
            return super().zero_grad(*args, **kwargs)

    torch.optim.Adam = CountingAdam
    try:
        yield
    finally:
        torch.optim.Adam = original


def check_train_vae(f) -> None:
    """Runs the loop on a small VAE and 200 small images (3 epochs of batch 64): one Adam, one step and one zero_grad
    per mini-batch, every digit once per epoch in a new order, the parameters move and the loss falls."""
    torch.manual_seed(0)
    n, epochs, batch_size, lr = 200, 3, 64, 3e-3
    x = _digits(n, seed=3)
    batches_per_epoch = math.ceil(n / batch_size)
    model = models.VAE(latent_dim=4, hidden_dim=32)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    keys = x.flatten(1).sum(1).tolist()  # tells the images apart
    seen: list[list[float]] = []

    def loss_fn(m, batch):
        seen.append(batch.detach().flatten(1).sum(1).tolist())
        return objectives.vae_loss(m, batch)

    record = {"made": 0, "steps": 0, "zero_grads": 0, "lr": None, "grads": []}
    with _counting_adam(record):
        losses = f(model, loss_fn, x, epochs, batch_size=batch_size, lr=lr)
    if losses is None:
        raise Hint("train_vae returned None: return the list of the losses of every step")
    if record["made"] == 0:
        raise Hint("no Adam optimizer was made: optimizer = torch.optim.Adam(model.parameters(), lr=lr)")
    if record["made"] > 1:
        raise Hint(
            f"Adam was made {record['made']} times: make the optimizer once, before the loop (a new Adam "
            f"forgets its running averages of the gradients)"
        )
    if record["lr"] != lr:
        raise Hint(f"Adam got lr={record['lr']}: pass the function's lr argument")
    calls = len(seen)
    sizes = [len(b) for b in seen]
    if calls == epochs and max(sizes) == n:
        raise Hint("each step uses the whole training set: loop over mini-batches of batch_size digits")
    if max(sizes) > batch_size:
        raise Hint(f"a batch of {max(sizes)} digits for batch_size={batch_size}: slice x[order[i:i + batch_size]]")
    if calls < epochs * (n // batch_size):
        raise Hint(
            f"loss_fn was called {calls} times for {epochs} epochs of {batches_per_epoch} mini-batches: loop over "
            f"all the mini-batches of every epoch, range(0, len(x), batch_size)"
        )
    if calls > epochs * batches_per_epoch:
        raise Hint(
            f"loss_fn was called {calls} times for {epochs} epochs of {batches_per_epoch} mini-batches: once per "
            f"mini-batch is enough"
        )
    per_epoch = calls // epochs
    epochs_seen = [sum(seen[e * per_epoch : (e + 1) * per_epoch], []) for e in range(epochs)]
    for batch_keys in epochs_seen:
        if len(set(batch_keys)) < len(batch_keys):
            raise Hint(
                "some digits come twice in one epoch (torch.randint?): draw a permutation, "
                "torch.randperm(len(x)), so that every digit is used once per epoch"
            )
        if len(batch_keys) < n - batch_size + 1:
            raise Hint(f"an epoch used {len(batch_keys)} of the {n} digits: every digit once per epoch")
    if epochs_seen[0] == keys[: len(epochs_seen[0])] or all(e == epochs_seen[0] for e in epochs_seen[1:]):
        raise Hint(
            "the digits come in the same order every epoch: shuffle them anew each epoch, "
            "order = torch.randperm(len(x))"
        )
    if record["steps"] != calls:
        raise Hint(
            f"optimizer.step() ran {record['steps']} times for {calls} mini-batches: once per mini-batch, "
            f"after loss.backward()"
        )
    if record["zero_grads"] < calls:
        raise Hint(
            "optimizer.zero_grad() is not called every step: without it the gradients of all earlier steps add up"
        )
    changed = any(not torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    if not changed or not any(record["grads"]):
        raise Hint("the parameters did not change: call loss.backward() before optimizer.step()")
    try:
        losses = list(losses)
    except TypeError:
        raise Hint(f"train_vae should return a list of the losses of every step, got {type(losses).__name__}") from None
    if len(losses) == epochs:
        raise Hint("return the loss of every step (a list of floats), not one per epoch")
    if len(losses) != calls:
        raise Hint(f"train_vae returned {len(losses)} losses for {calls} steps: append loss.item() once per step")
    if any(isinstance(v, torch.Tensor) and v.requires_grad for v in losses):
        raise Hint(
            "append loss.item() (a float), not the loss tensor: each tensor keeps its step's whole graph in memory"
        )
    losses = [float(v) for v in losses]
    head, tail = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    if not tail < head - 10:
        raise Hint(f"the loss did not fall ({head:.1f} -> {tail:.1f} nats over {calls} steps)")


train_vae = Exercise("6.4", "a plain training loop", check_train_vae, reference_train_vae)


# ------------------------------------------------------------------------------------------------------------------
# 6.5 (question) the KL term's cost
# ------------------------------------------------------------------------------------------------------------------
KL_CHOICES = {"a": "under 5 nats", "b": "5 to 15 nats", "c": "15 to 40 nats", "d": "over 40 nats"}


def kl_choice(kl_nats: float) -> str:
    """The letter of KL_CHOICES that holds `kl_nats`."""
    return "a" if kl_nats < 5 else "b" if kl_nats < 15 else "c" if kl_nats < 40 else "d"


kl_cost = Question("6.5", "how many nats the KL term costs", choices=KL_CHOICES)


# ------------------------------------------------------------------------------------------------------------------
# 6.6 the importance-weighted bound
# ------------------------------------------------------------------------------------------------------------------
class OneDimensionalVAE(nn.Module):
    """A VAE with a one-dimensional z whose log p(x) is computable by quadrature: logits = a + b z (784 pixels each),
    and an encoder fitted to give, for each of a few fixed images, a chosen q(z|x). Counts the codes it decodes."""

    likelihood = "bernoulli"
    latent_dim = 1

    def __init__(self, x: torch.Tensor, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = -1.0 + 0.5 * torch.randn(P, generator=g, dtype=torch.float64)
        self.b = 0.15 * torch.randn(P, generator=g, dtype=torch.float64)
        self.decoded = 0
        grid = torch.linspace(-8, 8, 4001, dtype=torch.float64)
        log_joint = self.log_px_z(x.double(), grid) + Normal(0.0, 1.0).log_prob(grid)  # (N, G)
        self.log_px = torch.logsumexp(log_joint, 1) + math.log(float(grid[1] - grid[0]))  # log p(x) = log ∫ p(x,z)dz
        post = torch.softmax(log_joint, 1)
        m = (post * grid).sum(1)
        s = ((post * (grid - m[:, None]) ** 2).sum(1)).sqrt()
        # q(z|x): wider than the posterior and off-centre, so that the ELBO is a few nats below log p(x) and the
        # importance weights stay bounded (L_k converges fast)
        q_mu, q_logvar = m + 0.5 * s, torch.log((2.5 * s) ** 2)
        features = x.double().flatten(1)  # (N, 784)
        pinv = torch.linalg.pinv(features)
        self.w_mu, self.w_logvar = pinv @ q_mu, pinv @ q_logvar  # encode(x) = x W reproduces q on these x
        q = Normal(q_mu, q_logvar.mul(0.5).exp())
        weights_q = q.log_prob(grid[:, None]).T.exp() * float(grid[1] - grid[0])  # (N, G)
        self.elbo = (weights_q * self.log_px_z(x.double(), grid)).sum(1) - kl_divergence(q, Normal(0.0, 1.0))

    def log_px_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) for images x (N, 1, 28, 28) and a grid of z values (G,) -> (N, G), in float64."""
        logits = self.a + self.b * z[:, None]  # (G, 784)
        xf = x.flatten(1)  # (N, 784)
        return xf @ logits.T - F.softplus(logits).sum(1)  # Σ_i x_i l_i - log(1 + e^{l_i})

    def encode(self, x):
        models.check_images(x)
        features = x.double().flatten(1)
        return (features @ self.w_mu).float()[:, None], (features @ self.w_logvar).float()[:, None]

    def decode(self, z):
        models.check_codes(z, 1)
        self.decoded += z.shape[0]
        return (self.a + self.b * z.double()).float().view(-1, *models.IMAGE_SHAPE)

    def decode_mean(self, z):
        return torch.sigmoid(self.decode(z))


def check_iwae_bound(f) -> None:
    """On a VAE with a one-dimensional z, against log p(x) computed by quadrature: L_k for k = 2000 within 0.1 nats
    of log p(x), one value per digit, k codes decoded per digit; names a missing − log k, averaged log-weights (the
    ELBO again), exp underflow, a single sample."""
    torch.manual_seed(0)
    x = _digits(4, seed=5)
    model = OneDimensionalVAE(x)
    k = 2000
    got = as_tensor(f(model, x, k), "iwae_bound(model, x, k)")
    n = len(x)
    if got.numel() == 1:
        raise Hint(f"iwae_bound returned one number for {n} digits: return L_k per digit, shape ({n},)")
    if got.shape == (k,):
        raise Hint("you reduced over the digits: logsumexp over the k samples (dim 0 of log_w, shape (k, N))")
    if got.shape == (k, n) or got.shape == (n, k):
        raise Hint(f"iwae_bound returned shape {tuple(got.shape)}: reduce over the k samples with logsumexp")
    if got.shape != (n,):
        raise Hint(f"iwae_bound has shape {tuple(got.shape)}, expected ({n},): one L_k per digit")
    if model.decoded < k * n:
        raise Hint(
            f"{model.decoded} codes were decoded for {n} digits and k = {k}: draw k samples z_i ~ q(z|x) per "
            f"digit (shape (k, N, d)) and decode all k·N of them"
            + ("; with one sample this is just the ELBO" if model.decoded <= n else "")
        )
    got = got.detach().double()
    if not torch.isfinite(got).all():
        raise Hint(
            "L_k is −inf or NaN: the weights p(x,z)/q(z|x) ≈ e^(−500) underflow to 0 in float32; stay in "
            "log space, torch.logsumexp(log_w, dim=0) − math.log(k)"
        )
    log_px, elbo = model.log_px, model.elbo
    if torch.allclose(got, log_px, atol=0.1, rtol=0):
        return
    if torch.allclose(got - math.log(k), log_px, atol=0.1, rtol=0):
        raise Hint(
            f"L_k is log(k) = {math.log(k):.2f} nats too high: the mean of the weights is logsumexp(log_w, 0) − log k"
        )
    if torch.allclose(got, elbo, atol=0.3, rtol=0):
        raise Hint(
            "that is the ELBO (about a few nats below log p(x) here), whatever k: you averaged the "
            "log-weights; L_k takes the log of the average of the weights, logsumexp(log_w, 0) − log k"
        )
    if torch.allclose(got + math.log(k), log_px, atol=0.1, rtol=0):
        raise Hint("log k was subtracted twice")
    gap = (got - log_px).mean().item()
    raise Hint(
        f"L_{k} differs from log p(x) (quadrature) by {gap:+.2f} nats on average: log w_i = log p(x|z_i) + "
        f"log p(z_i) − log q(z_i|x), each summed over its dimensions, z_i ~ q(z|x)"
    )


iwae_bound = Exercise("6.6", "the importance-weighted bound L_k", check_iwae_bound, objectives.iwae_bound)


# ------------------------------------------------------------------------------------------------------------------
# 6.7 (question) L_k against k
# ------------------------------------------------------------------------------------------------------------------
IWAE_CHOICES = {"a": "L_k rises with k", "b": "L_k falls with k", "c": "L_k stays the same, up to noise"}


def iwae_choice(bounds: dict[int, float], noise: float = 0.05) -> str:
    """The letter of IWAE_CHOICES that the measured {k: L_k} support: every step up, every step down, or neither."""
    ks = sorted(bounds)
    steps = [bounds[b] - bounds[a] for a, b in zip(ks, ks[1:])]
    if all(s > noise for s in steps):
        return "a"
    if all(s < -noise for s in steps):
        return "b"
    return "c"


iwae_trend = Question("6.7", "L_k against k", choices=IWAE_CHOICES)
