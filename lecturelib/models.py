"""The course's models for 28×28 MNIST images: linear, MLP and convolutional auto-encoders (f, g), and the VAE.

Every auto-encoder exposes the lecture's encoder f: 𝒳 → 𝒵 and decoder g: 𝒵 → 𝒳, with forward(x) = g(f(x)).
The VAEs expose encode(x) -> (mu, logvar) and decode(z): Bernoulli logits for `VAE`, (mean, log σ²) for
`GaussianVAE`. Each model keeps its constructor settings in `config`, which the checkpoint cache stores beside the
weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lecturelib.checks import finite_number, positive_int

IMAGE_SHAPE = (1, 28, 28)
P = 784  # p = 1 * 28 * 28, the data dimension


def check_images(x: torch.Tensor, name: str = "x") -> None:
    """Raise a clear error unless x is a float tensor of MNIST images (N, 1, 28, 28)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")
    if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{name} must have shape (N, 1, 28, 28), got {tuple(x.shape)}")


def check_codes(z: torch.Tensor, latent_dim: int, name: str = "z") -> None:
    """Raise a clear error unless z is a float tensor of codes (N, latent_dim)."""
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(z).__name__}")
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"{name} must have shape (N, {latent_dim}), got {tuple(z.shape)}")


def pca_reconstruct(x: torch.Tensor, x_bar: torch.Tensor, U: torch.Tensor, d: int) -> torch.Tensor:
    """PCA's reconstruction from d components: x̂ = x̄ + U_d U_dᵀ (x − x̄), U_d the first d columns of U.

    x: (N, 1, 28, 28); x_bar: (p,) the mean image (zeros for centred data); U: (p, k), k ≥ d, orthonormal columns
    (the principal axes in order) -> x̂: (N, 1, 28, 28)
    """
    check_images(x)
    if U.dim() != 2 or U.shape[0] != P or not 1 <= d <= U.shape[1]:
        raise ValueError(f"need U of shape ({P}, k) and 1 <= d <= k, got U {tuple(U.shape)} and d = {d!r}")
    U_d = U[:, :d]  # (p, d)
    # x̄ + U_d U_dᵀ (x − x̄)
    return (x_bar + (x.flatten(1) - x_bar) @ U_d @ U_d.T).view_as(x)


class LinearAE(nn.Module):
    """The slide's linear auto-encoder with one matrix U ∈ ℝ^{p×d}: f(x) = Uᵀx, g(z) = Uz.

    Its optimum is the span of the top-d principal axes (of the uncentred second moment: centre x first for PCA).
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        d = positive_int(latent_dim, "latent_dim")
        self.config = {"latent_dim": d}
        self.U = nn.Parameter(torch.randn(P, d) / math.sqrt(P))

    def f(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) -> (N, d)"""
        check_images(x)
        return x.flatten(1) @ self.U  # z = Uᵀx, one row per example

    def g(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, 1, 28, 28)"""
        check_codes(z, self.U.shape[1])
        return (z @ self.U.T).view(-1, *IMAGE_SHAPE)  # x̂ = Uz

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(self.f(x))


class AffineAE(nn.Module):
    """Untied affine auto-encoder: f(x) = W_f x + b_f, g(z) = W_g z + b_g; b_g learns the data mean."""

    def __init__(self, latent_dim: int):
        super().__init__()
        d = positive_int(latent_dim, "latent_dim")
        self.config = {"latent_dim": d}
        self.encoder, self.decoder = nn.Linear(P, d), nn.Linear(d, P)

    def f(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
        return self.encoder(x.flatten(1))

    def g(self, z: torch.Tensor) -> torch.Tensor:
        check_codes(z, self.encoder.out_features)
        return self.decoder(z).view(-1, *IMAGE_SHAPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(self.f(x))


def strided_conv_layers(channels: int, out_dim: int, kernel: int) -> list[nn.Module]:
    """Two strided convolutions and a linear layer, (N, 1, 28, 28) -> (N, out_dim): ConvAE's encoder, and the
    features of quality's classifier (which adds a ReLU)."""
    c, pad = channels, kernel // 2
    return [
        nn.Conv2d(1, c, kernel, stride=2, padding=pad),
        nn.ReLU(),  # (N, 1, 28, 28) -> (N, c, 14, 14)
        nn.Conv2d(c, 2 * c, kernel, stride=2, padding=pad),
        nn.ReLU(),  # -> (N, 2c, 7, 7)
        nn.Flatten(),
        nn.Linear(2 * c * 7 * 7, out_dim),  # -> (N, out_dim)
    ]


class _DeepAE(nn.Module):
    """An encoder network f and a decoder network g, set by the subclass as `encoder`, `decoder`, `latent_dim`."""

    def f(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x)
        return self.encoder(x)

    def g(self, z: torch.Tensor) -> torch.Tensor:
        check_codes(z, self.latent_dim)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(self.f(x))


class MLPAE(_DeepAE):
    """MLP encoder f: ℝᵖ → ℝᵈ and MLP decoder g: ℝᵈ → ℝᵖ; g ends in a sigmoid so x̂ is in [0, 1]."""

    def __init__(self, latent_dim: int, hidden_dims: tuple[int, ...] = (512, 256)):
        super().__init__()
        d = positive_int(latent_dim, "latent_dim")
        hidden_dims = tuple(positive_int(h, "hidden_dims[i]") for h in hidden_dims)
        self.config = {"latent_dim": d, "hidden_dims": list(hidden_dims)}
        sizes = (P,) + hidden_dims
        enc = [layer for a, b in zip(sizes, sizes[1:]) for layer in (nn.Linear(a, b), nn.ReLU())]
        self.encoder = nn.Sequential(nn.Flatten(), *enc, nn.Linear(sizes[-1], d))
        rev = (d,) + hidden_dims[::-1]
        dec = [layer for a, b in zip(rev, rev[1:]) for layer in (nn.Linear(a, b), nn.ReLU())]
        self.decoder = nn.Sequential(*dec, nn.Linear(rev[-1], P), nn.Sigmoid(), nn.Unflatten(1, IMAGE_SHAPE))
        self.latent_dim = d


class ConvAE(_DeepAE):
    """Convolutional encoder f: ℝ^{28×28×1} → ℝᵈ and a decoder g of the reciprocal transposed convolutions."""

    def __init__(self, latent_dim: int, channels: int = 32):
        super().__init__()
        d = positive_int(latent_dim, "latent_dim")
        c = positive_int(channels, "channels")
        self.config = {"latent_dim": d, "channels": c}
        self.latent_dim = d
        self.encoder = nn.Sequential(*strided_conv_layers(c, d, kernel=3))
        self.decoder = nn.Sequential(
            nn.Linear(d, 2 * c * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),  # -> (N, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),  # -> (N, 1, 28, 28)
        )


class _VAEBase(nn.Module):
    """The slides' encoder q_phi(z|x) = N(z; mu(x), diag σ²(x)), shared by both VAEs below:
    h = ReLU(W4ᵀx + b4), mu = W5ᵀh + b5, log σ² = W6ᵀh + b6. Subclasses add a decoder p_theta(x|z)."""

    def _encoder(self, latent_dim: int, hidden_dim: int) -> None:
        self.enc_hidden = nn.Linear(P, hidden_dim)
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 1, 28, 28) -> mu, logvar of q_phi(z|x), each (N, d)."""
        check_images(x)
        h = torch.relu(self.enc_hidden(x.flatten(1)))
        return self.to_mu(h), self.to_logvar(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the posterior mean: decode_mean(mu(x))."""
        return self.decode_mean(self.encode(x)[0])


class VAE(_VAEBase):
    """The slides' step-by-step VAE with a Bernoulli decoder (Kingma & Welling's MNIST setting).

    q_phi(z|x) = N(z; mu(x), diag σ²(x)),  h = ReLU(W4ᵀx + b4), mu = W5ᵀh + b5, log σ² = W6ᵀh + b6
    p_theta(x|z) = Π_i Bernoulli(x_i; sigmoid(W2ᵀh + b2)_i),  h = ReLU(W1ᵀz + b1)
    """

    likelihood = "bernoulli"

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400):
        super().__init__()
        d = positive_int(latent_dim, "latent_dim")
        h = positive_int(hidden_dim, "hidden_dim")
        self.config = {"latent_dim": d, "hidden_dim": h}
        self.latent_dim = d
        self._encoder(d, h)
        # decoder p_theta(x|z)
        self.dec_hidden = nn.Linear(d, h)
        self.to_logits = nn.Linear(h, P)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, d) -> the Bernoulli logits of p_theta(x|z), (N, 1, 28, 28)."""
        check_codes(z, self.latent_dim)
        h = torch.relu(self.dec_hidden(z))
        return self.to_logits(h).view(-1, *IMAGE_SHAPE)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] = sigmoid(logits), an image in [0, 1], for pictures.  (N, d) -> (N, 1, 28, 28)"""
        return torch.sigmoid(self.decode(z))


class GaussianVAE(_VAEBase):
    """The same VAE with a Gaussian decoder: p_theta(x|z) = N(x; W2ᵀh + b2, diag exp(W3ᵀh + b3)), h = ReLU(W1ᵀz + b1).

    The decoder's log σ² is floored softly at `min_logvar` (None: no floor), because a learned variance on an
    always-black pixel otherwise shrinks towards 0 and sends log p(x|z) to +∞ (notebook 06's pitfall).
    """

    likelihood = "gaussian"

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400, min_logvar: float | None = math.log(1e-3)):
        super().__init__()
        d = positive_int(latent_dim, "latent_dim")
        h = positive_int(hidden_dim, "hidden_dim")
        if min_logvar is not None:
            finite_number(min_logvar, "min_logvar")
        self.config = {"latent_dim": d, "hidden_dim": h, "min_logvar": min_logvar}
        self.latent_dim, self.min_logvar = d, min_logvar
        self._encoder(d, h)
        # decoder p_theta(x|z)
        self.dec_hidden = nn.Linear(d, h)
        self.to_mean = nn.Linear(h, P)
        self.to_x_logvar = nn.Linear(h, P)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (N, d) -> mean and log σ² of p_theta(x|z), each (N, 1, 28, 28)."""
        check_codes(z, self.latent_dim)
        h = torch.relu(self.dec_hidden(z))
        mean = self.to_mean(h).view(-1, *IMAGE_SHAPE)
        logvar = self.to_x_logvar(h).view(-1, *IMAGE_SHAPE)
        if self.min_logvar is not None:
            # smooth floor: log σ² = m + softplus(raw - m) > m
            logvar = self.min_logvar + nn.functional.softplus(logvar - self.min_logvar)
        return mean, logvar

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] = the decoder's mean, clamped to [0, 1] for pictures.  (N, d) -> (N, 1, 28, 28)"""
        return self.decode(z)[0].clamp(0, 1)


def build(name: str, config: dict) -> nn.Module:
    """Rebuild a model from its class name and `config` (as stored in a checkpoint)."""
    classes = {cls.__name__: cls for cls in (LinearAE, AffineAE, MLPAE, ConvAE, VAE, GaussianVAE, ConditionalVAE)}
    if name not in classes:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(classes)}")
    return classes[name](**config)


class ConditionalVAE(nn.Module):
    """Conditional VAE (Sohn et al. 2015): q_phi(z|x, y) and p_theta(x|z, y), the digit y fed in as a one-hot vector.

    Same shape as the slides' VAE with a Bernoulli decoder:
    q_phi(z|x,y) = N(z; mu, diag σ²), h = ReLU(W4ᵀ[x; onehot(y)] + b4), mu = W5ᵀh + b5, log σ² = W6ᵀh + b6
    p_theta(x|z,y) = Bernoulli(sigmoid(W2ᵀh + b2)), h = ReLU(W1ᵀ[z; onehot(y)] + b1)
    With the label given to the decoder, z only needs to carry the style (slant, thickness), not the class.
    """

    likelihood = "bernoulli"

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400, num_classes: int = 10):
        super().__init__()
        d = positive_int(latent_dim, "latent_dim")
        h = positive_int(hidden_dim, "hidden_dim")
        k = positive_int(num_classes, "num_classes")
        self.config = {"latent_dim": d, "hidden_dim": h, "num_classes": k}
        self.latent_dim, self.num_classes = d, k
        # encoder q_phi(z|x, y)
        self.enc_hidden = nn.Linear(P + k, h)
        self.to_mu = nn.Linear(h, d)
        self.to_logvar = nn.Linear(h, d)
        # decoder p_theta(x|z, y)
        self.dec_hidden = nn.Linear(d + k, h)
        self.to_logits = nn.Linear(h, P)

    def one_hot(self, y: torch.Tensor, n: int) -> torch.Tensor:
        """Labels (n,) int in [0, num_classes) -> one-hot rows (n, num_classes) as floats."""
        if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"y must be an integer tensor of labels, got {getattr(y, 'dtype', type(y).__name__)}")
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},), one label per example, got {tuple(y.shape)}")
        if n and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"labels y must be in [0, {self.num_classes}), got range [{int(y.min())}, {int(y.max())}]")
        return nn.functional.one_hot(y.long(), self.num_classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 1, 28, 28), y (N,) -> mu, logvar of q_phi(z|x, y), each (N, d)."""
        check_images(x)
        # (N, 784) ++ (N, K) -> (N, 784 + K)
        h = torch.relu(self.enc_hidden(torch.cat([x.flatten(1), self.one_hot(y, len(x))], dim=1)))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z (N, d), y (N,) -> Bernoulli logits of p_theta(x|z, y), (N, 1, 28, 28)."""
        check_codes(z, self.latent_dim)
        # (N, d) ++ (N, K) -> (N, d + K)
        h = torch.relu(self.dec_hidden(torch.cat([z, self.one_hot(y, len(z))], dim=1)))
        return self.to_logits(h).view(-1, *IMAGE_SHAPE)

    def decode_mean(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """E[x|z, y] in [0, 1], for pictures.  (N, d), (N,) -> (N, 1, 28, 28)"""
        return torch.sigmoid(self.decode(z, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the posterior mean: decode_mean(mu(x, y), y)."""
        return self.decode_mean(self.encode(x, y)[0], y)
