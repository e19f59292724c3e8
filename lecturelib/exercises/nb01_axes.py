"""Checkers of notebook 01's exercises 1.2 (PCA by the SVD of the centred data) and 1.4 (PCA of the codes rotates
U onto PCA's axes), against torch.linalg.eigh of a covariance and principal angles between subspaces."""

from __future__ import annotations

import torch

from lecturelib import metrics

from . import Hint, as_tensor, no_full_svd

N_FULL = 60_000  # training digits in full mode: the rows of x in 1.2, of the codes Z in 1.4


def _same_columns(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-3) -> bool:
    """True when a and b (p, d) have the same columns up to the sign of each column."""
    if a.shape != b.shape:
        return False
    a, b = a.double(), b.double()
    return bool(torch.minimum((a - b).norm(dim=0), (a + b).norm(dim=0)).max() < tol)


def _same_span(a: torch.Tensor, b: torch.Tensor, degrees: float = 0.5) -> bool:
    return a.shape == b.shape and bool(metrics.principal_angles(a.double(), b.double()).max() < degrees)


# ------------------------------------------------------------------------------------------------------------------
# 1.2 PCA by SVD
# ------------------------------------------------------------------------------------------------------------------
def reference_principal_axes(x: torch.Tensor, d: int) -> torch.Tensor:
    """The top-d principal axes of the data, one per column, by decreasing variance.  x: (N, p) -> V_d: (p, d)"""
    x_c = x - x.mean(0, keepdim=True)  # centre each pixel
    _, _, Vh = torch.linalg.svd(x_c, full_matrices=False)  # x_c = A S Vh, Vh's rows: the axes
    return Vh[:d].T


def _eigh_axes(x: torch.Tensor) -> torch.Tensor:
    """All principal axes (p, p), by decreasing variance, from the eigenvectors of the covariance (not an SVD)."""
    x = x.double()
    cov = torch.cov(x.T, correction=0)
    _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
    return vectors.flip(1)


def _data_with_offset(n: int, p: int) -> torch.Tensor:
    """Data (n, p) with distinct variances along random axes and a large mean, so that forgetting to centre (or
    centring the wrong way) changes the answer."""
    scales = torch.tensor([6.0, 4.0, 3.0, 2.2, 1.6, 1.2, 0.9, 0.7, 0.5, 0.4, 0.3, 0.2][:p])
    Q = torch.linalg.qr(torch.randn(p, p))[0]
    mean = 5.0 + 3.0 * torch.rand(p)
    return mean + (torch.randn(n, p) * scales) @ Q.T


def _axes_shape(got: torch.Tensor, n: int, p: int, d: int) -> None:
    """Name the shape of a wrong answer: one axis per row, the left factor A, too many axes, the singular values."""
    if got.shape == (d, p) and d != p:
        raise Hint(
            f"shape {tuple(got.shape)}: one axis per row; return V_d with one axis per column, (p, d) = "
            f"({p}, {d}): the rows of Vh are the axes, so take Vh[:d].T"
        )
    if got.shape == (n, d):
        raise Hint(
            f"shape {tuple(got.shape)} is the left factor A of x_c = A S Vh (one row per example); "
            f"the axes are the rows of Vh: Vh[:d].T, shape (p, d)"
        )
    if got.dim() == 2 and got.shape[0] == p and got.shape[1] != d:
        raise Hint(f"{got.shape[1]} axes for d = {d}: keep only the first d, Vh[:d].T")
    if got.dim() == 1:
        raise Hint(f"a vector of shape {tuple(got.shape)} (the singular values S?): return the axes V_d, (p, d)")
    if got.shape != (p, d):
        raise Hint(f"principal_axes(x, {d}) has shape {tuple(got.shape)}, expected (p, d) = ({p}, {d})")
    if not torch.isfinite(got).all():
        raise Hint("V_d contains NaN or infinity")


def _axes_slips(G: torch.Tensor, x: torch.Tensor, d: int) -> None:
    """Name a wrong subspace: not centred, centred per example, rows vs columns, the last d axes."""
    x64 = x.double()
    _, _, vh_raw = torch.linalg.svd(x64, full_matrices=False)
    _, _, vh_rows = torch.linalg.svd(x64 - x64.mean(1, keepdim=True), full_matrices=False)
    _, _, vh = torch.linalg.svd(x64 - x64.mean(0, keepdim=True), full_matrices=False)
    slips = [
        (
            vh_raw[:d].T,
            "not centred: subtract the mean image first, x − x.mean(0); otherwise the first axis "
            "points at the mean, not along the largest variance",
        ),
        (
            vh_rows[:d].T,
            "centred each example (x.mean(1), a mean over the pixels of one image); PCA centres "
            "each pixel over the examples: x − x.mean(0, keepdim=True)",
        ),
        (
            vh[:, :d],
            "rows vs columns: Vh[:, :d] takes the first d entries of every axis; the axes are the rows "
            "of Vh, so take Vh[:d].T",
        ),
        (
            vh[-d:].T,
            "these are the last d axes, of the smallest variance: torch.linalg.svd sorts the singular "
            "values in decreasing order, so keep the first d rows, Vh[:d]",
        ),
    ]
    for slip, message in slips:
        if _same_span(G, slip):
            raise Hint(message)


def _axes_basis(G: torch.Tensor, want: torch.Tensor, d: int) -> None:
    """Orthonormal columns, the principal subspace, and the axes in decreasing order of variance."""
    gram = G.T @ G
    if not torch.allclose(gram, torch.eye(d, dtype=gram.dtype), atol=1e-3):
        if torch.allclose(gram, torch.diag(gram.diagonal()), atol=1e-3 * gram.abs().max()):
            raise Hint(
                "the axes are orthogonal but not unit vectors (scaled by the singular values?): "
                "take them from Vh as they are"
            )
        raise Hint("the columns of V_d are not orthonormal: they should be the rows of Vh from torch.linalg.svd")
    if not _same_span(G, want):
        angle = metrics.principal_angles(G, want).max().item()
        raise Hint(f"span(V_d) is not the top-{d} principal subspace (largest principal angle {angle:.3g}°)")
    if not _same_columns(G, want, tol=1e-2):
        raise Hint(
            "the right subspace, but the axes are not in decreasing order of variance: V_d's first column "
            "must be the first principal axis (the first row of Vh), and so on"
        )


def _check_axes_case(fn, x: torch.Tensor, d: int) -> None:
    what = f"principal_axes(x, {d})"
    got = as_tensor(no_full_svd(fn, x, d, what=what, rows=N_FULL), what)
    _axes_shape(got, *x.shape, d)
    G, want = got.detach().double(), _eigh_axes(x)[:, :d]
    if not _same_span(G, want):
        _axes_slips(G, x, d)
    _axes_basis(G, want, d)


def check_principal_axes(fn) -> None:
    """Against the eigenvectors of the covariance (torch.linalg.eigh, not an SVD), on data with a large mean: first
    the subspace (principal angles), then each axis up to its sign; d = 3 and d = 1."""
    x = _data_with_offset(400, 12)
    _check_axes_case(fn, x, 3)
    _check_axes_case(fn, x, 1)


# ------------------------------------------------------------------------------------------------------------------
# 1.4 PCA of the codes rotates U onto PCA's axes
# ------------------------------------------------------------------------------------------------------------------
def reference_rotate_to_principal_axes(U: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """U W, where Z = X U = A S Wᵀ is the SVD of the codes.  U: (p, d) orthonormal columns, X: (N, p) centred."""
    Z = X @ U  # (N, d): the codes z_i = Uᵀ x_i
    _, _, Wh = torch.linalg.svd(Z, full_matrices=False)  # Wh = Wᵀ, (d, d)
    return U @ Wh.T


def _rotation_case(p: int = 10, d: int = 3, n: int = 300) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centred data X (n, p), an orthonormal basis U (p, d) of a random subspace (not PCA's), and the reference:
    U times the eigenvectors of the codes' covariance UᵀΣU (torch.linalg.eigh), by decreasing variance."""
    X = _data_with_offset(n, p)
    X = X - X.mean(0, keepdim=True)
    U = torch.linalg.qr(torch.randn(p, d))[0]
    U64 = U.double()
    cov = U64.T @ (X.double().T @ X.double()) @ U64 / n
    _, vectors = torch.linalg.eigh(cov)
    return X, U, U64 @ vectors.flip(1)


def _rotation_shape(got: torch.Tensor, n: int, p: int, d: int) -> None:
    """Name the shape of a wrong answer: the rotation W itself, the normalised codes A, one axis per row."""
    if got.shape == (d, d):
        raise Hint(f"shape ({d}, {d}) is the rotation itself; return the rotated basis U W, shape (p, d)")
    if got.shape == (n, d):
        raise Hint(
            f"shape ({n}, {d}) is A of Z = A S Wᵀ (the normalised codes); the rotation is W = Vh.T: return U @ Vh.T"
        )
    if got.shape == (d, p):
        raise Hint(f"shape ({d}, {p}): one axis per row; return one per column, U W of shape (p, d)")
    if got.shape != (p, d):
        raise Hint(f"rotate_to_principal_axes(U, X) has shape {tuple(got.shape)}, expected (p, d) = ({p}, {d})")
    if not torch.isfinite(got).all():
        raise Hint("the result contains NaN or infinity")


def _rotation_slips(G: torch.Tensor, U: torch.Tensor, X: torch.Tensor, want: torch.Tensor) -> None:
    """Name a wrong basis: Vh for W, U unchanged, PCA's axes of X, the reverse order, outside span(U)."""
    d = U.shape[1]
    U64, X64 = U.double(), X.double()
    _, _, Wh = torch.linalg.svd(X64 @ U64, full_matrices=False)
    slips = [
        (
            U64 @ Wh,
            "rows vs columns: torch.linalg.svd returns Vh = Wᵀ, whose rows are W's columns; rotate with U @ Vh.T",
        ),
        (U64, "that is U unchanged: rotate it by W from the SVD of the codes Z = X U"),
        (
            _eigh_axes(X64)[:, :d],
            "these are PCA's axes of X itself, outside span(U): the exercise rotates U within its own span, "
            "U W, using only the codes Z = X U",
        ),
        (
            want.flip(1),
            "the axes are in increasing order of variance: the first column should go with the largest "
            "singular value of Z (torch.linalg.svd sorts them in decreasing order)",
        ),
    ]
    for slip, message in slips:
        if _same_columns(G, slip):
            raise Hint(message)
    if not _same_span(G, U64):
        raise Hint("the columns leave span(U): the result must be U times a d × d rotation, U W")
    if not torch.allclose(G.T @ G, torch.eye(d, dtype=G.dtype), atol=1e-3):
        raise Hint("the columns of U W are not orthonormal: W must be a rotation, the right singular vectors of Z")


def _check_rotation_case(fn, p: int, d: int, n: int) -> None:
    X, U, want = _rotation_case(p, d, n)
    what = "rotate_to_principal_axes(U, X)"
    got = as_tensor(no_full_svd(fn, U, X, what=what, rows=N_FULL), what)
    _rotation_shape(got, n, p, d)
    G = got.detach().double()
    if _same_columns(G, want):
        return
    _rotation_slips(G, U, X, want)
    raise Hint(
        "a rotation of U, but not onto the principal axes of the codes: take W from the SVD of the codes "
        "Z = X U (the SVD of U alone knows nothing of the data: its singular values are all 1)"
    )


def check_rotate_to_principal_axes(fn) -> None:
    """Against U E, E the eigenvectors of the codes' covariance (torch.linalg.eigh), column by column up to sign,
    for a U that spans a random subspace (so that returning PCA's axes of X instead is told apart); d = 3 of
    p = 10 and d = 4 of p = 8. U and X are passed as the notebook passes them: changing either in place is named."""
    _check_rotation_case(fn, p=10, d=3, n=300)
    _check_rotation_case(fn, p=8, d=4, n=200)
