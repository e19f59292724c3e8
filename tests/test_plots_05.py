"""Notebook 05's plot helpers: contours at a Gaussian's 1, 2, 3 standard deviations and the ELBO + KL bars."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lecturelib import plots  # noqa: E402


def test_density_contours_sit_at_one_two_three_standard_deviations():
    axis = torch.linspace(-4, 4, 161, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1)
    log_density = torch.distributions.Normal(0.0, 1.0).log_prob(grid).sum(-1)  # N(0, I): radius r at r sd
    fig, ax = plt.subplots()
    plots.density_contours(ax, axis, log_density, "C0", "p(z)")
    (contour,) = ax.collections
    radii = [float(np.median(np.hypot(*p.vertices.T))) for p in contour.get_paths() if len(p.vertices)]
    assert sorted(round(r, 1) for r in radii) == [1.0, 2.0, 3.0], radii
    assert ax.get_legend_handles_labels()[1] == ["p(z)"]
    plt.close(fig)


def test_elbo_bars_stack_the_kl_on_the_elbo_up_to_log_px():
    fig, ax = plt.subplots()
    plots.elbo_bars(ax, elbo=-7.0, kl=4.5, log_px=-2.5)
    elbo_bar, kl_bar, log_px_bar = ax.patches
    assert elbo_bar.get_height() == -7.0
    assert kl_bar.get_y() == -7.0 and kl_bar.get_y() + kl_bar.get_height() == -2.5
    assert log_px_bar.get_height() == -2.5
    assert "= 4.50" in ax.get_xticklabels()[1].get_text()
    plt.close(fig)
