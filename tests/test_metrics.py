"""metrics.mse_per_pixel and models.pca_reconstruct against independent references (numpy, PCA via SVD)."""

import numpy as np
import pytest
import torch

from lecturelib import metrics, models


def test_mse_per_pixel_is_the_mean_over_images_and_pixels():
    rng = np.random.default_rng(0)
    x, x_hat = rng.random((4, 1, 28, 28)), rng.random((4, 1, 28, 28))
    want = np.mean([np.mean((x[n] - x_hat[n]) ** 2) for n in range(4)])
    assert metrics.mse_per_pixel(torch.tensor(x), torch.tensor(x_hat)) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        metrics.mse_per_pixel(torch.zeros(2, 1, 28, 28), torch.zeros(3, 1, 28, 28))


def test_pca_reconstruct_matches_the_svd_projection_and_is_exact_at_full_rank():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 1, 28, 28, generator=g, dtype=torch.float64)
    flat = x.flatten(1).numpy()
    x_bar = flat.mean(0)
    _, _, vt = np.linalg.svd(flat - x_bar, full_matrices=False)  # rows of vt: the principal axes
    U = torch.tensor(vt.T)  # (784, 50)
    for d in (1, 5, 20):
        want = x_bar + (flat - x_bar) @ vt[:d].T @ vt[:d]
        got = models.pca_reconstruct(x, torch.tensor(x_bar), U, d)
        np.testing.assert_allclose(got.flatten(1).numpy(), want, atol=1e-10)
    # 49 components span the centred data of 50 points: the reconstruction is exact
    torch.testing.assert_close(models.pca_reconstruct(x, torch.tensor(x_bar), U, 49), x)
    # more components never reconstruct worse
    errors = [metrics.mse_per_pixel(x, models.pca_reconstruct(x, torch.tensor(x_bar), U, d)) for d in (1, 2, 4, 8)]
    assert errors == sorted(errors, reverse=True)
    with pytest.raises(ValueError, match="1 <= d <= k"):
        models.pca_reconstruct(x, torch.tensor(x_bar), U, 51)
