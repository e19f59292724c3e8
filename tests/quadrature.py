"""log p(x) of a VAE with a 1-D latent and a Bernoulli decoder by quadrature: an independent reference for bounds."""

import math

import torch
from torch.distributions import Bernoulli, Normal


@torch.no_grad()
def log_px_1d(model, x: torch.Tensor, points: int = 2001, width: float = 8.0) -> torch.Tensor:
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by the midpoint rule on [-width, width].  x: (N, 1, 28, 28) -> (N,)"""
    dz = 2 * width / points
    z = torch.linspace(-width + dz / 2, width - dz / 2, points, dtype=torch.float64).unsqueeze(1)  # (G, 1)
    logits = model.decode(z.float()).double().unsqueeze(1)  # (G, 1, 1, 28, 28), against x (N, 1, 28, 28)
    log_px_z = Bernoulli(logits=logits).log_prob(x.double().unsqueeze(0)).flatten(2).sum(-1)  # (G, N)
    return torch.logsumexp(log_px_z + Normal(0.0, 1.0).log_prob(z), dim=0) + math.log(dz)
