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

from lecturelib import objectives

from . import Exercise, Question
from .nb06_bounds import GridVAE, check_ancestral_sample, check_iwae_bound, reference_ancestral_sample  # noqa: F401
from .nb06_loop import check_train_vae, reference_train_vae
from .nb06_losses import check_reparameterize, check_vae_loss
from .nb06_networks import P, Pair, ReferenceDecoder, ReferenceEncoder, _digits, check_networks  # noqa: F401

# GridVAE, P, Pair and _digits are imported to stay reachable as nb06.<name>, as before the split into nb06_* modules


# ------------------------------------------------------------------------------------------------------------------
# 6.1 the encoder and the decoder
# ------------------------------------------------------------------------------------------------------------------
networks = Exercise(
    "6.1",
    "the encoder q_phi(z|x) and the decoder p_theta(x|z)",
    check_networks,
    (ReferenceEncoder, ReferenceDecoder),
)


# ------------------------------------------------------------------------------------------------------------------
# 6.2 the reparameterization
# ------------------------------------------------------------------------------------------------------------------
reparameterize = Exercise(
    "6.2", "the reparameterization z = μ + σ ⊙ ε", check_reparameterize, objectives.reparameterize
)


# ------------------------------------------------------------------------------------------------------------------
# 6.3 the ELBO loss
# ------------------------------------------------------------------------------------------------------------------
vae_loss = Exercise("6.3", "the ELBO loss −E_q[log p(x|z)] + KL(q‖p)", check_vae_loss, objectives.vae_loss)


# ------------------------------------------------------------------------------------------------------------------
# 6.4 the training loop
# ------------------------------------------------------------------------------------------------------------------
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
ancestral_sample = Exercise(
    "6.8", "ancestral sampling x ~ p_theta(x|z), z ~ p(z)", check_ancestral_sample, reference_ancestral_sample
)
