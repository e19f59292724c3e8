"""lecturelib.measures (notebook 07's measurements): image properties (ink, slant, stroke width) against shapes whose
value is known in closed form, and the compressors' bit counts against losslessness and Shannon's bound."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lecturelib import measures


def _blank(n: int = 1) -> torch.Tensor:
    return torch.zeros(n, 1, 28, 28)


def _bar(width: int, length: int, top: int = 4, left: int = 12) -> torch.Tensor:
    x = _blank()
    x[0, 0, top : top + length, left : left + width] = 1.0
    return x


def _sheared_line(shear: float) -> torch.Tensor:
    """One pixel per row, at column 14 + shear * (13.5 - row): leaning right for shear > 0 (rows count down)."""
    x = _blank()
    for row in range(2, 26):
        col = 14 + shear * (13.5 - row)
        left = math.floor(col)
        frac = col - left  # split the pixel between two columns: the row's centre of mass stays exactly at col
        x[0, 0, row, left] = 1 - frac
        x[0, 0, row, left + 1] = frac
    return x


def test_ink_is_the_mean_grey_level():
    x = _blank(2)
    x[0, 0, :14] = 1.0  # half the image black
    x[1] = 0.25
    assert torch.allclose(measures.ink(x), torch.tensor([0.5, 0.25]))


@pytest.mark.parametrize("shear", [-0.5, 0.0, 0.3, 0.75])
def test_slant_of_a_sheared_line_is_its_shear(shear):
    # for points col = c0 + s (r0 - row): Cov(row, col) = -s Var(row), so -Cov / Var = s exactly
    assert measures.slant(_sheared_line(shear)).item() == pytest.approx(shear, abs=1e-5)


def test_slant_does_not_depend_on_where_the_digit_sits_or_how_dark_it_is():
    x = _sheared_line(0.4)
    moved = torch.roll(x, shifts=(1, -3), dims=(2, 3)) * 0.5
    assert measures.slant(moved).item() == pytest.approx(0.4, abs=1e-5)


@pytest.mark.parametrize("width, length", [(1, 20), (2, 20), (3, 20), (4, 16)])
def test_thickness_of_a_bar_is_area_over_half_perimeter(width, length):
    # a w × L rectangle: area wL, perimeter 2(w + L)
    assert measures.thickness(_bar(width, length)).item() == pytest.approx(width * length / (width + length))


def test_thickness_grows_with_the_stroke_and_is_zero_without_one():
    widths = measures.thickness(torch.cat([_bar(w, 20) for w in (1, 2, 3, 4)]))
    assert (widths.diff() > 0).all()
    assert measures.thickness(_blank()).item() == 0.0


def _decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("1")).astype(bool)


def test_compressed_bits_are_sizes_of_lossless_encodings():
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((50, 1, 28, 28), 0.2), generator=g)
    bits = measures.compressed_bits(x)
    assert bits["raw"] == 784
    # the same encodings, decoded: PNG of the stacked digits gives back every pixel
    pixels = x.numpy().astype(bool).reshape(-1, 28)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    assert np.array_equal(_decode_png(buffer.getvalue()), pixels)
    assert 8 * len(buffer.getvalue()) / 50 == pytest.approx(bits["PNG, all digits in one image"])
    # one file per digit pays a PNG's fixed overhead (signature, IHDR, IEND: 57 bytes) on every digit
    assert bits["PNG, one file per digit"] > bits["PNG, all digits in one image"] + 8 * 57 * 0.9


def test_no_compressor_beats_shannons_bound_on_random_bits():
    # i.i.d. Bernoulli(p) pixels carry 784 H(p) bits per digit: no lossless code can average fewer
    p, n = 0.2, 400
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((n, 1, 28, 28), p), generator=g)
    entropy_bits = 784 * -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    bits = measures.compressed_bits(x)
    for name in ("PNG, all digits in one image", "gzip", "bz2"):
        assert bits[name] > 0.98 * entropy_bits, name
    # ... while a compressor does find the structure of an image that is all background
    assert measures.compressed_bits(_blank(n))["gzip"] < 8


def test_compressed_bits_refuses_grey_levels():
    with pytest.raises(ValueError, match="0s and 1s"):
        measures.compressed_bits(torch.full((2, 1, 28, 28), 0.5))
