"""plots' image grid: torchvision.utils.make_grid's layout (padding 2, white), written out by hand here."""

import numpy as np
import torch

from lecturelib import plots


def test_grid_tiles_row_by_row_with_a_white_frame_and_white_empty_slots():
    images = torch.stack([torch.full((1, 28, 28), v) for v in (0.1, 0.2, 0.3)])  # three flat grey digits
    grid = plots._grid_array(images, nrow=2)
    assert grid.shape == (2 + 2 * 30, 2 + 2 * 30)  # 2 rows, 2 columns of 28 + 2 padding, and the outer padding
    assert np.allclose(grid[2:30, 2:30], 0.1) and np.allclose(grid[2:30, 32:60], 0.2)
    assert np.allclose(grid[32:60, 2:30], 0.3)
    assert np.allclose(grid[32:60, 32:60], 1.0), "the empty fourth slot is white"
    frame = np.ones_like(grid, dtype=bool)
    for top, left in ((2, 2), (2, 32), (32, 2), (32, 32)):
        frame[top : top + 28, left : left + 28] = False
    assert np.all(grid[frame] == 1.0), "the padding is white"


def test_one_image_is_shown_alone_and_values_are_clipped_to_the_unit_interval():
    image = torch.linspace(-1, 2, 784).view(1, 1, 28, 28)
    grid = plots._grid_array(image, nrow=10)
    assert grid.shape == (28, 28)
    assert grid.min() == 0.0 and grid.max() == 1.0
