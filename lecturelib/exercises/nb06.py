"""Exercises of notebook 06 (variational auto-encoders): `from lecturelib.exercises import nb06 as ex`.

6.1 networks: the encoder q_phi(z|x) (heads to_mu, to_logvar) and the Bernoulli decoder p_theta(x|z), 784-h-d and back.
6.2 reparameterize: z = mu + sigma ⊙ eps, eps ~ N(0, I), sigma = exp(logvar / 2).
6.3 vae_loss: -ELBO = -E_q[log p(x|z)] + KL(q || p), summed over pixels and latent dims, mean over the batch.
6.4 train_vae: a plain training loop (Adam, shuffled mini-batches, zero_grad / backward / step).
6.5 (question) how many nats the KL term costs the trained VAE.
6.6 iwae_bound: L_k = E[log 1/k Σ_i p(x, z_i) / q(z_i|x)], computed with logsumexp.
6.7 (question) whether L_k rises or falls with k.

Each checker runs the student's code on small cases against an independent reference (torch.distributions, the
analytic KL, log p(x) by quadrature for a 1- or 2-dimensional latent, models.VAE for the architecture), on forked random
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

from . import Exercise, Hint, Question, as_tensor, call, compare, loss_terms

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


def _check_classes(answer) -> tuple[type, type]:
    """The answer is the pair of classes (Encoder, Decoder), both nn.Modules."""
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        raise Hint("pass the two classes: ex.networks.check((Encoder, Decoder))")
    for cls, name in zip(answer, ("Encoder", "Decoder")):
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise Hint(f"{name} should be a class deriving from nn.Module")
    return answer[0], answer[1]


def _check_heads(enc: nn.Module, d: int) -> None:
    """Two distinct nn.Linear heads to_mu and to_logvar with latent_dim outputs each."""
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


def _check_shapes(enc: nn.Module, dec: nn.Module, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """encode: (N, 1, 28, 28) -> a pair (N, d), (N, d); decode: (N, d) -> (N, 1, 28, 28). Returns the logits."""
    n, d = z.shape
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
        if tuple(t.shape) != (n, d):
            raise Hint(f"the encoder's {name} has shape {tuple(t.shape)} for {n} images, expected ({n}, {d})")
    logits = as_tensor(_call(dec, z, "Decoder"), "the decoder")
    if logits.numel() == n * P and tuple(logits.shape) != (n, *models.IMAGE_SHAPE):
        raise Hint(
            f"the decoder's output has shape {tuple(logits.shape)}: reshape it to images, "
            f".view(-1, 1, 28, 28) gives (N, 1, 28, 28)"
        )
    if tuple(logits.shape) != (n, *models.IMAGE_SHAPE):
        raise Hint(f"the decoder's output has shape {tuple(logits.shape)} for {n} codes, expected ({n}, 1, 28, 28)")
    return logits


def _check_parameter_count(enc: nn.Module, dec: nn.Module, vae: models.VAE, d: int, h: int) -> None:
    """As many parameters as models.VAE's encoder and decoder; names a second (Gaussian) head and missing biases."""
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
        missing = (want_enc - n_enc, want_dec - n_dec) in ((biases[0], 0), (0, biases[1]), biases)
        detail = " (bias=False somewhere? every layer has a bias b)" if missing else ""
        raise Hint(
            f"Encoder({d}, {h}) has {n_enc:,} parameters and Decoder({d}, {h}) {n_dec:,}; models.VAE({d}, {h}) "
            f"has {want_enc:,} and {want_dec:,}: one hidden layer of hidden_dim units each way{detail}"
        )


def _copy_library_weights(enc: nn.Module, dec: nn.Module, vae: models.VAE, d: int) -> bool:
    """Give the student's layers models.VAE's weights; False when the layers cannot be matched one to one."""
    enc_layers, dec_layers = _linears(enc), _linears(dec)
    hidden_in = [m for m in enc_layers if m.in_features == P]
    dec_in = [m for m in dec_layers if m.in_features == d]
    dec_out = [m for m in dec_layers if m.out_features == P]
    if not (len(enc_layers) == 3 and len(dec_layers) == 2 and [len(hidden_in), len(dec_in), len(dec_out)] == [1] * 3):
        return False
    pairs = [(hidden_in[0], vae.enc_hidden), (enc.to_mu, vae.to_mu), (enc.to_logvar, vae.to_logvar)]
    pairs += [(dec_in[0], vae.dec_hidden), (dec_out[0], vae.to_logits)]
    with torch.no_grad():
        for mine, theirs in pairs:
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
    return True


def _check_encoder_function(enc: nn.Module, vae: models.VAE, x: torch.Tensor) -> None:
    """With models.VAE's weights, the same mu and logvar; names swapped heads, a missing ReLU, a positive logvar."""
    with torch.no_grad():
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


def _check_decoder_function(dec: nn.Module, vae: models.VAE, z: torch.Tensor) -> None:
    """With models.VAE's weights, the same logits; names sigmoid outputs and a missing ReLU."""
    with torch.no_grad():
        out, want = dec(z), vae.decode(z)
        if _close(out, want):
            return
        if _close(out, torch.sigmoid(want)):
            raise Hint(
                "the decoder returns sigmoid means (probabilities): return the logits W2ᵀh + b2, as "
                "models.VAE.decode does; the loss applies the sigmoid stably, and "
                "torch.sigmoid(logits) gives the mean image for pictures"
            )
        if _close(out, vae.to_logits(vae.dec_hidden(z)).view_as(want)):
            raise Hint("no ReLU after the decoder's hidden layer: h = ReLU(W1ᵀz + b1)")
        raise Hint("with models.VAE's weights your decoder's logits differ from models.VAE.decode's")


def _check_it_trains(Encoder: type, Decoder: type, d: int, h: int) -> None:
    """Every parameter gets a gradient, and 15 Adam steps lower -ELBO on a small batch."""
    torch.manual_seed(0)
    pair = Pair(Encoder(latent_dim=d, hidden_dim=h), Decoder(latent_dim=d, hidden_dim=h), d)
    batch = _digits(32, seed=1)
    optimizer = torch.optim.Adam(pair.parameters(), lr=1e-2)
    losses = []
    for step in range(15):
        loss = objectives.vae_loss(pair, batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        for name, p in pair.named_parameters() if step == 0 else ():
            if p.grad is None:
                part = "encoder" if name.startswith("q_phi") else "decoder"
                raise Hint(f"parameter {name.split('.', 1)[1]} of the {part} gets no gradient: is every layer used?")
        optimizer.step()
        losses.append(loss.item())
    if not losses[-1] < losses[0] - 20:
        raise Hint(f"-ELBO did not fall in 15 Adam steps on a small batch ({losses[0]:.1f} -> {losses[-1]:.1f} nats)")


def check_networks(answer) -> None:
    """(Encoder, Decoder) classes, in named steps: the heads, the shapes, the parameter count of models.VAE, the same
    function as models.VAE given its weights, and a few Adam steps that lower -ELBO on a small batch."""
    Encoder, Decoder = _check_classes(answer)
    d, h = 3, 16  # small and unusual sizes, so that a hard-coded 20 or 400 shows
    torch.manual_seed(0)
    enc, dec = Encoder(latent_dim=d, hidden_dim=h), Decoder(latent_dim=d, hidden_dim=h)
    _check_heads(enc, d)
    x, z = _digits(5), torch.randn(5, d)
    logits = _check_shapes(enc, dec, x, z)
    vae = models.VAE(latent_dim=d, hidden_dim=h)
    _check_parameter_count(enc, dec, vae, d, h)
    if _copy_library_weights(enc, dec, vae, d):
        _check_encoder_function(enc, vae, x)
        _check_decoder_function(dec, vae, z)
    elif bool(((logits >= 0) & (logits <= 1)).all()):
        raise Hint("the decoder's outputs all lie in [0, 1]: return the logits W2ᵀh + b2, not sigmoid probabilities")
    _check_it_trains(Encoder, Decoder, d, h)


networks = Exercise(
    "6.1",
    "the encoder q_phi(z|x) and the decoder p_theta(x|z)",
    check_networks,
    (ReferenceEncoder, ReferenceDecoder),
)


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


def _run_loop(f, model: nn.Module, x: torch.Tensor, epochs: int, batch_size: int, lr: float):
    """Run the student's loop with a counting Adam and a counting model.zero_grad (either way of clearing the
    gradients is right). Returns the losses it returned, the images of each batch it asked the loss for, the record."""
    seen: list[list[float]] = []

    def loss_fn(m, batch):
        seen.append(batch.detach().flatten(1).sum(1).tolist())  # the sums tell the images apart
        return objectives.vae_loss(m, batch)

    record = {"made": 0, "steps": 0, "zero_grads": 0, "lr": None, "grads": []}
    module_zero_grad = model.zero_grad

    def counting_zero_grad(*args, **kwargs):
        record["zero_grads"] += 1
        return module_zero_grad(*args, **kwargs)

    model.zero_grad = counting_zero_grad
    with _counting_adam(record):
        losses = f(model, loss_fn, x, epochs, batch_size=batch_size, lr=lr)
    return losses, seen, record


def _check_optimizer(record: dict, lr: float) -> None:
    """One Adam, made once, with the function's lr."""
    if record["made"] == 0:
        raise Hint("no Adam optimizer was made: optimizer = torch.optim.Adam(model.parameters(), lr=lr)")
    if record["made"] > 1:
        raise Hint(
            f"Adam was made {record['made']} times: make the optimizer once, before the loop (a new Adam "
            f"forgets its running averages of the gradients)"
        )
    if record["lr"] != lr:
        raise Hint(f"Adam got lr={record['lr']}: pass the function's lr argument")


def _check_batches(seen: list[list[float]], keys: list[float], epochs: int, batch_size: int) -> None:
    """Mini-batches of at most batch_size, every digit once per epoch, a new order every epoch."""
    n, calls, sizes = len(keys), len(seen), [len(b) for b in seen]
    per_epoch_batches = math.ceil(n / batch_size)
    if calls == epochs and max(sizes) == n:
        raise Hint("each step uses the whole training set: loop over mini-batches of batch_size digits")
    if max(sizes) > batch_size:
        raise Hint(f"a batch of {max(sizes)} digits for batch_size={batch_size}: slice x[order[i:i + batch_size]]")
    if not epochs * (n // batch_size) <= calls <= epochs * per_epoch_batches:
        raise Hint(
            f"loss_fn was called {calls} times for {epochs} epochs of {per_epoch_batches} mini-batches: once per "
            f"mini-batch of every epoch, range(0, len(x), batch_size)"
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


def _check_steps(record: dict, calls: int, changed: bool) -> None:
    """One step and one zero_grad (the optimizer's or the model's) per mini-batch, after a backward pass."""
    if record["steps"] != calls:
        raise Hint(
            f"optimizer.step() ran {record['steps']} times for {calls} mini-batches: once per mini-batch, "
            f"after loss.backward()"
        )
    if record["zero_grads"] < calls:
        raise Hint(
            "optimizer.zero_grad() is not called every step: without it the gradients of all earlier steps add up"
        )
    if not changed or not any(record["grads"]):
        raise Hint("the parameters did not change: call loss.backward() before optimizer.step()")


def _check_losses(losses, epochs: int, calls: int) -> None:
    """A list of one float per step (not the tensors: they keep their graphs), falling over the run."""
    if losses is None:
        raise Hint("train_vae returned None: return the list of the losses of every step")
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


def check_train_vae(f) -> None:
    """Runs the loop on a small VAE and 200 small images (3 epochs of batch 64): one Adam, one step and one zero_grad
    per mini-batch, every digit once per epoch in a new order, the parameters move and the loss falls."""
    torch.manual_seed(0)
    epochs, batch_size, lr = 3, 64, 3e-3
    x = _digits(200, seed=3)
    model = models.VAE(latent_dim=4, hidden_dim=32)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    losses, seen, record = _run_loop(f, model, x, epochs, batch_size, lr)
    if losses is None:
        raise Hint("train_vae returned None: return the list of the losses of every step")
    _check_optimizer(record, lr)
    _check_batches(seen, x.flatten(1).sum(1).tolist(), epochs, batch_size)
    changed = any(not torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    _check_steps(record, len(seen), changed)
    _check_losses(losses, epochs, len(seen))


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


ancestral_sample = Exercise(
    "6.8", "ancestral sampling x ~ p_theta(x|z), z ~ p(z)", check_ancestral_sample, reference_ancestral_sample
)
