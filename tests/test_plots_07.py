"""Notebook 07's plot helpers: the labelled image grid and the small multiples of scores fit a slide."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lecturelib import plots  # noqa: E402


@pytest.mark.parametrize(("rows", "nrow"), [(4, 7), (4, 11)])
def test_labelled_grid_labels_every_row_and_column_within_a_slide(rows, nrow):
    images = torch.rand(rows * nrow, 1, 28, 28)
    fig = plots.labelled_grid(images, nrow, [f"r{i}" for i in range(rows)], [f"c{j}" for j in range(nrow)], "t")
    width, height = fig.get_size_inches()
    assert width <= 8 and height <= 3.6
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"r{i}" for i in range(rows)]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"c{j}" for j in range(nrow)]
    assert width / nrow >= 0.6  # thumbnails large enough to read at 1280 px
    plt.close(fig)


def test_labelled_grid_refuses_a_count_that_does_not_fill_the_grid():
    with pytest.raises(ValueError, match="images for 2 rows"):
        plots.labelled_grid(torch.rand(5, 1, 28, 28), 3, ["a", "b"], ["x", "y", "z"])


def test_score_panels_draws_one_panel_per_kind_over_the_reference():
    rng = np.random.default_rng(0)
    scores = {f"kind {i}": rng.lognormal(5 + i, 0.3, 50) for i in range(5)}
    fig = plots.score_panels(rng.lognormal(4.5, 0.3, 80), scores, {"kind 0": "first"}, xlabel="score")
    width, height = fig.get_size_inches()
    assert width <= 8 and height <= 3.6
    drawn = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert [ax.get_title() for ax in drawn] == ["first", "kind 1", "kind 2", "kind 3", "kind 4"]
    assert all(ax.get_xscale() == "log" and len(ax.patches) > 0 for ax in drawn)
    plt.close(fig)
