"""Figures the notebooks measure: mean squared error per pixel, subspace angles and PSNR."""

from __future__ import annotations

import torch


def mse_per_pixel(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean over images and pixels of (x - x_hat)²: the reconstruction error per pixel, as a number."""
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    # (1 / (N p)) Σ_n ||x_n - x̂_n||²
    return float((x - x_hat).pow(2).mean())


def principal_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Principal angles, in degrees and ascending, between the column spans of A (p, d) and B (p, d').

    cos θ_i are the singular values of Q_Aᵀ Q_B, with Q_A, Q_B orthonormal bases of the two spans
    (Björck & Golub 1973). 0° everywhere means the two spans coincide.
    """
    if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[0]:
        raise ValueError(
            f"A and B must be matrices with the same number of rows, got {tuple(A.shape)} and {tuple(B.shape)}"
        )
    qa, _ = torch.linalg.qr(A.double())
    qb, _ = torch.linalg.qr(B.double())
    cos = torch.linalg.svdvals(qa.T @ qb).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.arccos(cos)).float().sort().values


def psnr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of x_hat against x, images in [0, 1], per example.  (N, ...) -> (N,)"""
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    # PSNR = 10 log10(1 / MSE) for a peak value of 1
    mse = (x - x_hat).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
