"""Exercises of notebook 02 (deep auto-encoders): `from lecturelib.exercises import nb02 as ex`.

2.1 pca_reconstruct: the PCA baseline x̂ = x̄ + U_d U_dᵀ (x − x̄).
2.2 (question) can a non-linear auto-encoder beat PCA, the optimal linear one, at the same code size?
2.3 pixel_path: the pixel-space blend (1 − t) x + t x'.
2.4 latent_path: the latent-space interpolation g((1 − t) f(x) + t f(x')).

Each checker runs the student's function on small cases against an independent reference (least squares instead of
the projection formula, one t at a time instead of broadcasting), on a fork of the random generator so that the
notebook's own random draws do not depend on the student's code.
"""

from __future__ import annotations

import torch
from torch import nn

from lecturelib import models

from . import Exercise, Hint, Question, as_tensor, compare

P = models.P  # 784 pixels


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5)


def _broadcast_hint(err: RuntimeError, what: str) -> None:
    """Turn a broadcasting error into a Hint about the shape of ts; re-raise anything else."""
    if "size" in str(err) or "shape" in str(err) or "broadcast" in str(err):
        raise Hint(
            f"{what} fails to broadcast ({str(err).strip().splitlines()[0]}): ts has shape (T,); give it "
            f"trailing axes so that each t weighs a whole code or image, e.g. ts[:, None] for codes (1, d), "
            f"ts.view(-1, 1, 1, 1) for images (1, 1, 28, 28)"
        ) from None
    raise err


# ------------------------------------------------------------------------------------------------------------------
# 2.1 the PCA baseline
# ------------------------------------------------------------------------------------------------------------------
def reference_pca_reconstruct(x: torch.Tensor, x_bar: torch.Tensor, U: torch.Tensor, d: int) -> torch.Tensor:
    """x̂ = x̄ + U_d U_dᵀ (x − x̄), U_d the first d columns of U.  x: (N, 1, 28, 28), x_bar: (p,), U: (p, k) -> like x"""
    U_d = U[:, :d]  # (p, d)
    return (x_bar + (x.flatten(1) - x_bar) @ U_d @ U_d.T).view_as(x)


def _check_pca_case(fn, x, x_bar, U, d) -> None:
    n = len(x)
    got = as_tensor(fn(x.clone(), x_bar.clone(), U.clone(), d), f"pca_reconstruct(x, x_bar, U, {d})")
    flat, mean, U_d = x.flatten(1).double(), x_bar.double(), U[:, :d].double()
    # independent of the projection formula: the least-squares coefficients of x − x̄ on U_d's columns
    coef = torch.linalg.lstsq(U_d, (flat - mean).T).solution  # (d, N)
    want = (mean + (U_d @ coef).T).view_as(x)
    if got.shape == (n, d):
        raise Hint(
            f"shape {tuple(got.shape)}: these are the codes z = U_dᵀ(x − x̄); decode them too, x̄ + U_d z, "
            f"and reshape to x's shape"
        )
    if got.shape == (n, P):
        raise Hint(f"shape {tuple(got.shape)}: reshape x̂ back to the images' shape {tuple(x.shape)}, e.g. .view_as(x)")
    if got.shape == x.shape and torch.isfinite(got).all():
        G = got.detach().double().flatten(1)
        project = lambda v, basis: v @ basis @ basis.T  # noqa: E731
        U_all = U.double()
        slips = [
            (mean + project(flat, U_d), "project x − x̄, not x: x̂ = x̄ + U_d U_dᵀ (x − x̄)"),
            (project(flat - mean, U_d), "add the mean back after projecting: x̂ = x̄ + U_d U_dᵀ (x − x̄)"),
            (project(flat, U_d), "centre first and add the mean back: x̂ = x̄ + U_d U_dᵀ (x − x̄)"),
            (mean + project(flat - mean, U_all), f"that uses all {U.shape[1]} axes of U: keep the first d, U[:, :d]"),
            (
                mean + project(flat - mean, U_all[:, -d:]),
                "that uses the last d columns of U: the top axes come first, U[:, :d]",
            ),
        ]
        for slip, message in slips:
            if not _close(G, want.flatten(1)) and _close(G, slip):
                raise Hint(message)
    compare(got, want, f"pca_reconstruct(x, x_bar, U, {d})", atol=1e-4)


def check_pca_reconstruct(fn) -> None:
    """Against x̄ plus the least-squares fit of x − x̄ by U_d's columns, for d = 3 and d = 1 of k = 5 axes."""
    x = torch.rand(6, 1, 28, 28)
    x_bar = 0.3 * torch.rand(P)
    U = torch.linalg.qr(torch.randn(P, 5))[0]  # (p, 5), orthonormal columns
    _check_pca_case(fn, x, x_bar, U, 3)
    _check_pca_case(fn, x, x_bar, U, 1)


pca_reconstruct = Exercise(
    "2.1", "the PCA baseline x̂ = x̄ + U_d U_dᵀ(x − x̄)", check_pca_reconstruct, reference_pca_reconstruct
)


# ------------------------------------------------------------------------------------------------------------------
# 2.2 question: can a deep auto-encoder beat PCA at the same code size?
# ------------------------------------------------------------------------------------------------------------------
beats_pca = Question(
    "2.2",
    "can a deep AE beat PCA at the same code size?",
    choices={
        "a": "yes: at d = 2 the better deep AE has a lower test error than PCA",
        "b": "no: PCA is optimal, so a deep AE can at best match its error",
    },
)


# ------------------------------------------------------------------------------------------------------------------
# 2.3 the pixel-space blend
# ------------------------------------------------------------------------------------------------------------------
def reference_pixel_path(x_a: torch.Tensor, x_b: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """(1 − t) x_a + t x_b for each t.  x_a, x_b: (1, 1, 28, 28), ts: (T,) -> (T, 1, 28, 28)"""
    t = ts.view(-1, 1, 1, 1)  # (T, 1, 1, 1): one weight per image
    return (1 - t) * x_a + t * x_b


def _two_digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x_a, x_b = torch.rand(1, 1, 28, 28), torch.rand(1, 1, 28, 28)
    ts = torch.tensor([0.0, 0.2, 0.5, 0.7, 1.0])  # T = 5: neither 1, 28 nor the code size
    return x_a, x_b, ts


def check_pixel_path(fn) -> None:
    """Against the blend computed one t at a time (no broadcasting), for T = 5 values of t."""
    x_a, x_b, ts = _two_digits()
    try:
        got = fn(x_a.clone(), x_b.clone(), ts.clone())
    except RuntimeError as err:
        _broadcast_hint(err, "pixel_path")
    got = as_tensor(got, "pixel_path(x, x', ts)")
    want = torch.cat([(1 - float(t)) * x_a.double() + float(t) * x_b.double() for t in ts])  # (T, 1, 28, 28)
    if got.shape != want.shape and got.numel() == want.numel():
        raise Hint(
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)}: ts broadcast along the wrong axis; "
            f"reshape it to (T, 1, 1, 1), ts.view(-1, 1, 1, 1), so that each t weighs a whole image"
        )
    if got.shape == want.shape and not _close(got, want):
        if _close(got, torch.cat([(1 - float(t)) * x_b.double() + float(t) * x_a.double() for t in ts])):
            raise Hint("t runs backwards: at t = 0 the path is at x, at t = 1 at x'; (1 − t) x + t x'")
        if _close(got, torch.cat([x_a.double() + float(t) * x_b.double() for t in ts])):
            raise Hint("the weights must add up to 1: (1 − t) x + t x', not x + t x'")
    compare(got, want, "pixel_path(x, x', ts)")


pixel_path = Exercise("2.3", "the pixel-space blend (1 − t) x + t x'", check_pixel_path, reference_pixel_path)


# ------------------------------------------------------------------------------------------------------------------
# 2.4 the latent-space interpolation
# ------------------------------------------------------------------------------------------------------------------
def reference_latent_path(model: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """g((1 − t) f(x_a) + t f(x_b)) for each t.  x_a, x_b: (1, 1, 28, 28), ts: (T,) -> (T, 1, 28, 28)"""
    with torch.inference_mode():
        z_a, z_b = model.f(x_a), model.f(x_b)  # (1, d) each
        z_t = (1 - ts[:, None]) * z_a + ts[:, None] * z_b  # (T, d): points on the segment in Z
        return model.g(z_t)


class _CurvedAE(nn.Module):
    """A small auto-encoder (d = 3) whose encoder and decoder are far from linear, so that blending images, blending
    codes and blending decoded images give visibly different answers."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(P, 3), nn.Linear(3, P)
        with torch.no_grad():
            self.encoder.weight.normal_(0.0, 0.2)
            self.decoder.weight.normal_(0.0, 3.0)

    def f(self, x):
        return 2 * torch.tanh(self.encoder(x.flatten(1)) / 2)  # (N, 1, 28, 28) -> (N, 3)

    def g(self, z):
        return torch.sigmoid(self.decoder(torch.sin(z))).view(-1, 1, 28, 28)

    def forward(self, x):
        return self.g(self.f(x))


def check_latent_path(fn) -> None:
    """On a small auto-encoder (d = 3) with a curved decoder, against decoding each point (1 − t) f(x) + t f(x')
    one t at a time."""
    model = _CurvedAE().eval()
    x_a, x_b, ts = _two_digits()
    try:
        got = fn(model, x_a.clone(), x_b.clone(), ts.clone())
    except RuntimeError as err:
        _broadcast_hint(err, "latent_path")
    got = as_tensor(got, "latent_path(model, x, x', ts)")
    with torch.no_grad():
        z_a, z_b = model.f(x_a), model.f(x_b)
        want = torch.cat([model.g((1 - float(t)) * z_a + float(t) * z_b) for t in ts])  # (T, 1, 28, 28)
        pixels = reference_pixel_path(x_a, x_b, ts)
        slips = [
            (
                torch.cat([model.g((1 - float(t)) * z_b + float(t) * z_a) for t in ts]),
                "t runs backwards: at t = 0 the path decodes f(x), at t = 1 f(x'); (1 − t) f(x) + t f(x')",
            ),
            (
                pixels,
                "that is the pixel blend (1 − t) x + t x': encode both digits with f, blend the codes, decode with g",
            ),
            (
                model(pixels),
                "that decodes the pixel blend, g(f((1 − t) x + t x')): blend the codes f(x) and f(x'), not the images",
            ),
            (
                reference_pixel_path(model(x_a), model(x_b), ts),
                "that blends the reconstructions g(f(x)) and g(f(x')) pixel by pixel: blend the codes, then decode",
            ),
        ]
    if got.dim() == 2 and got.shape == (len(ts), 3):
        raise Hint(f"shape {tuple(got.shape)}: these are the codes z_t; decode them with model.g")
    if got.shape != want.shape and got.numel() == want.numel():
        raise Hint(
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)}: ts broadcast along the wrong axis; use "
            f"ts[:, None] against codes of shape (1, d)"
        )
    if got.shape == want.shape and not _close(got, want):
        for slip, message in slips:
            if _close(got, slip):
                raise Hint(message)
    compare(got, want, "latent_path(model, x, x', ts)")


latent_path = Exercise(
    "2.4", "the latent-space interpolation g((1 − t) f(x) + t f(x'))", check_latent_path, reference_latent_path
)
