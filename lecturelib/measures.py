"""What notebook 07 measures on digits: ink, slant and stroke thickness (style kept in a transfer, a property raised
by design in latent space), and the bits that generic lossless compressors need for binary digits.
"""

from __future__ import annotations

import bz2
import gzip
import io

import numpy as np
import torch
from PIL import Image
from torch import nn

from lecturelib.models import check_images


def ink(images: torch.Tensor) -> torch.Tensor:
    """Amount of ink: the mean grey level of each image, (1/784) Σ_i x_i.  (N, 1, 28, 28) in [0, 1] -> (N,)"""
    check_images(images, "images")
    return images.flatten(1).mean(1)


def slant(images: torch.Tensor) -> torch.Tensor:
    """Slant of each digit from its second moments, in columns to the right per row upwards.  (N, 1, 28, 28) -> (N,)

    With the grey levels as weights, slant = -Cov(row, col) / Var(row) (rows counted downwards): the shear that
    MNIST's deskewing removes; 0 for an upright stroke, +1 for a stroke leaning 45° to the right.
    """
    check_images(images, "images")
    w = images[:, 0].double()  # (N, 28, 28)
    rows = torch.arange(28, dtype=w.dtype, device=w.device).view(1, 28, 1)
    cols = torch.arange(28, dtype=w.dtype, device=w.device).view(1, 1, 28)
    mass = w.sum((1, 2)).clamp_min(1e-12)
    r_bar = (w * rows).sum((1, 2)) / mass
    c_bar = (w * cols).sum((1, 2)) / mass
    dr, dc = rows - r_bar.view(-1, 1, 1), cols - c_bar.view(-1, 1, 1)
    cov_rc = (w * dr * dc).sum((1, 2)) / mass
    var_r = (w * dr * dr).sum((1, 2)) / mass
    return (-cov_rc / var_r.clamp_min(1e-12)).float()


def thickness(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Mean stroke width in pixels: 2 × area / perimeter of the strokes (pixels above `threshold`).  -> (N,)

    The perimeter counts the edges between a stroke pixel and a background pixel (4-neighbours, the border of the
    image as background). A bar w pixels wide and L long has area wL and perimeter 2(w + L): the estimate is
    wL / (w + L), which tends to w for long strokes. An image without stroke pixels gives 0.
    """
    check_images(images, "images")
    on = (images[:, 0] > threshold).float()  # (N, 28, 28)
    padded = nn.functional.pad(on, (1, 1, 1, 1))  # (N, 30, 30), background around the image
    vertical = (padded[:, 1:, :] != padded[:, :-1, :]).flatten(1).sum(1)  # stroke/background edges between rows
    horizontal = (padded[:, :, 1:] != padded[:, :, :-1]).flatten(1).sum(1)  # ... and between columns
    edges = vertical + horizontal
    area = on.flatten(1).sum(1)
    return torch.where(edges > 0, 2 * area / edges.clamp_min(1), torch.zeros_like(area))


# ------------------------------------------------------------------------------------------------------------------
# What generic lossless compressors make of binary digits (notebook 07: the VAE as a compressor)
# ------------------------------------------------------------------------------------------------------------------
def compressed_bits(binary_images: torch.Tensor) -> dict[str, float]:
    """Bits per digit that lossless compressors need for binary images (N, 1, 28, 28) with values in {0, 1}.

    "raw": 784 bits, one per pixel. "PNG, one file per digit": each digit as its own 1-bit PNG file (headers
    included). "PNG, all digits in one image": the N digits stacked into one 1-bit PNG, divided by N (headers
    shared). "gzip", "bz2": the bit-packed pixels of all N digits as one stream (level 9), divided by N.
    Every encoding is lossless: decoding gives back the same pixels (tests/test_measures.py checks it).
    """
    check_images(binary_images, "binary_images")
    pixels = binary_images.detach().cpu().numpy()
    if not np.isin(pixels, (0.0, 1.0)).all():
        raise ValueError("binary_images must hold only 0s and 1s: binarize the digits first")
    bits = pixels.astype(bool).reshape(len(pixels), 28, 28)
    n = len(bits)

    def png_bytes(array: np.ndarray) -> int:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG", optimize=True)  # a bool array saves as a 1-bit PNG
        return len(buffer.getvalue())

    packed = np.packbits(bits.reshape(n, -1), axis=1).tobytes()  # (N, 98) bytes, 8 pixels a byte
    return {
        "raw": float(bits[0].size),
        "PNG, one file per digit": 8 * sum(png_bytes(b) for b in bits) / n,
        "PNG, all digits in one image": 8 * png_bytes(bits.reshape(-1, 28)) / n,
        "gzip": 8 * len(gzip.compress(packed, compresslevel=9)) / n,
        "bz2": 8 * len(bz2.compress(packed, compresslevel=9)) / n,
    }
