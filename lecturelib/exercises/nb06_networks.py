"""Checker of notebook 06's exercise 6.1 (the encoder and the Bernoulli decoder), its reference networks,
and the small digit-like images and the closeness test that all of nb06's checkers share."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lecturelib import models, objectives

from . import Hint, as_tensor

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
