"""Notebook 03's plot helper: the toy denoisers' figure fits a slide and draws every curve it is given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from lecturelib import plots  # noqa: E402


def test_toy_denoisers_draws_each_curve_within_a_slide():
    x = torch.tensor([[-1.0], [1.0], [1.0], [-1.0]])
    x_tilde = x + 0.5 * torch.randn_like(x)
    grid = torch.linspace(-2, 2, 11)[:, None]
    curves = {"trained": grid.tanh(), "posterior mean": grid.tanh(), "posterior median": grid.sign()}
    fig = plots.toy_denoisers(x, x_tilde, 0.8, grid, curves)
    width, height = fig.get_size_inches()
    assert width <= 8 and height <= 3.6
    ax_h = fig.axes[1]
    labels = [line.get_label() for line in ax_h.get_lines()]
    assert labels[:3] == list(curves) and "the only values x takes" in labels
    assert [line.get_linestyle() for line in ax_h.get_lines()[1:3]] == ["--", "-."]
    plt.close(fig)
