"""Exercises of notebook 01 (linear auto-encoders and PCA): `from lecturelib.exercises import nb01 as ex`.

1.1 reconstruction_loss: the empirical loss (1/N) Σ_i ||x_i − g(f(x_i))||² that train.fit minimises.
1.2 principal_axes: PCA by the SVD of the centred data, V_d (p, d).
1.3 (question) is R = V_dᵀU, between PCA's axes and the trained decoder's columns, close to diagonal?
1.4 rotate_to_principal_axes: PCA of the codes z = Uᵀx rotates the AE's basis onto PCA's axes.

Each checker runs the student's function the way the notebook calls it, on small cases in more than one
configuration, against an independent reference (a closed form, torch.linalg.eigh of the covariance where the
student uses the SVD, principal angles between subspaces). Shared diagnoses (lecturelib.exercises): an input changed
in place (in the notebook it is the data set itself, a view of x_train), logged terms that train.fit cannot use,
and, in 1.2 and 1.4 alike, a full SVD that would need 60,000² floats in full mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lecturelib import models, objectives

from . import Exercise, Hint, Question, call, compare, loss_terms
from .nb01_axes import (  # noqa: F401 - N_FULL stays reachable as nb01.N_FULL
    N_FULL,
    check_principal_axes,
    check_rotate_to_principal_axes,
    reference_principal_axes,
    reference_rotate_to_principal_axes,
)

P = models.P  # 784 pixels


# ------------------------------------------------------------------------------------------------------------------
# 1.1 the reconstruction loss
# ------------------------------------------------------------------------------------------------------------------
def reference_reconstruction_loss(ae: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """(1/N) Σ_i ||x_i − g(f(x_i))||²: summed over the pixels, averaged over the batch.  x: (N, 1, 28, 28)"""
    return {"loss": objectives.reconstruction_error(x, ae.g(ae.f(x))).mean()}


class _TinyAE(nn.Module):
    """A small non-linear auto-encoder with the course's f / g interface, to check a loss on."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(P, 3), nn.Linear(3, P)

    def f(self, x):
        return torch.tanh(self.encoder(x.flatten(1)))

    def g(self, z):
        return torch.sigmoid(self.decoder(z)).view(-1, 1, 28, 28)

    def forward(self, x):
        return self.g(self.f(x))


def _loss_value(loss_fn, ae, x) -> torch.Tensor:
    """The "loss" term of `loss_fn(ae, x)`, called on copies (an in-place change of x is named), after the contract
    of train.fit: a dict of scalar tensors, every logged term a tensor, "loss" differentiable."""
    out = call(loss_fn, ae, x, what="reconstruction_loss(ae, x)")
    if isinstance(out, (torch.Tensor, int, float)):
        raise Hint('return a dict, {"loss": value}: train.fit minimises the term named "loss"')
    return loss_terms(out, ("loss",), "reconstruction_loss(ae, x)")["loss"]


def _check_loss_on(loss_fn, ae, x, want: torch.Tensor) -> None:
    got = _loss_value(loss_fn, ae, x)
    n = len(x)
    with torch.no_grad():
        diff = (x - ae.g(ae.f(x))).double().flatten(1)  # (N, p)
    if got.numel() == 1 and torch.isfinite(got).all():
        value = got.detach().double().reshape(())
        close = lambda a: torch.allclose(value, a, rtol=1e-4, atol=1e-5)  # noqa: E731
        slips = [
            (
                diff.norm(dim=1).mean(),
                "forgot the square: the loss is the squared norm ||x_i − x̂_i||², not the norm ||x_i − x̂_i||",
            ),
            (diff.abs().sum(1).mean(), "that is Σ |x − x̂| (an L1 loss): square each difference, (x − x̂)²"),
            (
                diff.norm(),
                "that is the norm of the whole batch, ||X − X̂||: square per image, sum over the pixels, "
                "then average over the N images",
            ),
            (
                diff.pow(2).mean(1).sum(),
                f"per pixel and summed over the batch: sum (x − x̂)² over the {P} pixels "
                f"of each image, then average over the {n} images",
            ),
        ]
        for slip, message in slips:
            if not close(want) and close(slip):
                raise Hint(message)
    compare(got, want, "the loss", per_image=P, batch=n)


def check_reconstruction_loss(loss_fn) -> None:
    """On a linear AE with orthonormal U, where ||x − UUᵀx||² = ||x||² − ||Uᵀx||² (Pythagoras), and on a small
    non-linear AE against F.mse_loss(reduction="sum") / N."""
    n = 5
    x = torch.rand(n, 1, 28, 28)
    ae = models.LinearAE(3)
    with torch.no_grad():
        ae.U.copy_(torch.linalg.qr(torch.randn(P, 3))[0])
    flat, U = x.flatten(1).double(), ae.U.detach().double()
    want = (flat.pow(2).sum(1) - (flat @ U).pow(2).sum(1)).mean()  # Pythagoras: x̂ ⟂ x − x̂
    _check_loss_on(loss_fn, ae, x, want)
    tiny = _TinyAE()
    with torch.no_grad():
        want = F.mse_loss(tiny(x), x, reduction="sum").double() / n
    _check_loss_on(loss_fn, tiny, x, want)


reconstruction_loss = Exercise(
    "1.1",
    "the reconstruction loss (1/N) Σ ||x − g(f(x))||²",
    check_reconstruction_loss,
    reference_reconstruction_loss,
)


# ------------------------------------------------------------------------------------------------------------------
# 1.2 PCA by SVD
# ------------------------------------------------------------------------------------------------------------------
principal_axes = Exercise("1.2", "PCA by the SVD of the centred data", check_principal_axes, reference_principal_axes)


# ------------------------------------------------------------------------------------------------------------------
# 1.3 question: does gradient descent find PCA's axes, or only its subspace?
# ------------------------------------------------------------------------------------------------------------------
axes_or_rotation = Question(
    "1.3",
    "PCA's axes, or a rotation of them?",
    choices={
        "a": "R ≈ diagonal (±1): the AE's columns u_j are PCA's axes v_j",
        "b": "R is a general rotation: the AE spans PCA's subspace in a basis of its own",
    },
)


# ------------------------------------------------------------------------------------------------------------------
# 1.4 PCA of the codes rotates U onto PCA's axes
# ------------------------------------------------------------------------------------------------------------------
rotate_to_principal_axes = Exercise(
    "1.4",
    "PCA of the codes finds the axes",
    check_rotate_to_principal_axes,
    reference_rotate_to_principal_axes,
)
