"""The course's tuned training recipes: the fast path's batch size and learning rates, and `mnist_vae`, notebook 06's
VAE trained once and shared with 07 through the checkpoint cache.
"""

from __future__ import annotations

import torch
from torch import nn

from lecturelib import models, objectives, runtime, train

# The course's fast path for the VAE on a CPU: larger batches keep the two cores busy, and a one-cycle schedule
# peaking above Adam's 1e-3 makes up for the fewer steps (tuned on full MNIST by `python -m course bench`,
# docs/benchmarks.md).
FAST_BATCH_SIZE = 512
FAST_LR = 6e-3
# mnist_vae's longer budget (60 epochs) takes a higher peak: NLL 91.5 nats instead of 92.0 at 6e-3 in the same
# time (swept on one H200, full MNIST; 91.65 on the 2-core CPU; docs/benchmarks.md)
VAE_LR = 1e-2


def mnist_vae_epochs() -> int:
    """mnist_vae's budget: 60 epochs on full MNIST, 40 in fast mode (the 10,000-digit CI subset)."""
    return runtime.by_mode(full=60, fast=40)


def mnist_vae(
    latent_dim: int,
    x_train: torch.Tensor,
    *,
    epochs: int | None = None,
    test: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[nn.Module, train.History]:
    """Notebook 06's VAE, models.VAE(latent_dim, 400) (Bernoulli decoder), trained on `x_train` (N, 1, 28, 28) with the
    course's fast path (batch FAST_BATCH_SIZE, Adam with a one-cycle schedule peaking at VAE_LR) and cached as
    mnist-vae-d<latent_dim>-<key>.pt, so that every notebook calling it with the same data, test data and epochs
    shares one trained model (06 trains it, 07 loads it).

    The loss is objectives.binarized_vae_loss: -ELBO on dynamically binarized digits (each pixel drawn from
    Bernoulli(grey level) at every pass), the literature's setting, in which the ELBO bounds a true log-likelihood
    (notebook 07 reports the model's importance-sampled NLL on the binarized test digits).

    epochs: None for the course's budget (mnist_vae_epochs()). test: a held-out split evaluated after every epoch.
    device: where the model is built and trained; None: the device of x_train.
    Initial weights and mini-batch order come from seed 0 on a fork of the random generators: the same model
    whoever trains it first, and the caller's random draws are left untouched.
    Returns the trained model (in eval mode) and its History.
    """
    epochs = mnist_vae_epochs() if epochs is None else epochs
    device = torch.device(device) if device is not None else x_train.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        model = models.VAE(latent_dim=latent_dim, hidden_dim=400).to(device)
        history = train.fit(
            model,
            objectives.binarized_vae_loss,
            x_train,
            epochs=epochs,
            batch_size=FAST_BATCH_SIZE,
            lr=VAE_LR,
            schedule="onecycle",
            test=test,
            checkpoint=f"mnist-vae-d{latent_dim}",
            label=f"VAE d={latent_dim}",
            progress=progress,
        )
    return model.eval(), history
