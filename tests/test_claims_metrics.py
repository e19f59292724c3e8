"""The live claim checker, and the notebooks' metrics against closed forms."""

import math

import pytest
import torch

from lecturelib import claims, metrics


def test_claim_prints_when_it_holds(capsys):
    assert claims.claim("ratio", 1.004, "<=", 1.01) is None
    assert capsys.readouterr().out.strip() == "✓ ratio = 1.004 ≤ 1.01"


@pytest.mark.parametrize("value, op, bound", [(1.2, "<=", 1.01), (0.1, ">", 0.5), (float("nan"), "<", 1.0)])
def test_claim_fails_the_cell_when_false(value, op, bound):
    with pytest.raises(claims.ClaimFailed, match="✗"):
        claims.claim("x", value, op, bound)


def test_claim_rejects_unknown_operators():
    with pytest.raises(ValueError, match="op"):
        claims.claim("x", 1.0, "==", 1.0)


def test_principal_angles_against_a_known_rotation():
    e = torch.eye(4)
    theta = math.radians(30)
    a = e[:, :2]
    b = torch.stack([e[:, 0], math.cos(theta) * e[:, 1] + math.sin(theta) * e[:, 2]], 1)
    torch.testing.assert_close(metrics.principal_angles(a, b), torch.tensor([0.0, 30.0]), atol=1e-3, rtol=0)
    # a change of basis inside the same span gives zero angles
    torch.testing.assert_close(
        metrics.principal_angles(a, a @ torch.tensor([[2.0, 1.0], [1.0, 3.0]])), torch.zeros(2), atol=1e-3, rtol=0
    )


def test_psnr_closed_form():
    x = torch.zeros(1, 1, 28, 28)
    torch.testing.assert_close(metrics.psnr(x, x + 0.1), torch.tensor([20.0]))
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(x, x[:, :, :10])


def test_claim_not_checked_at_ci_size_is_marked_in_fast_mode_and_checked_in_full(capsys, monkeypatch):
    monkeypatch.setenv("LECTURELIB_FAST", "1")
    assert claims.claim("worst AE / PCA", 1.7, "<", 1.0, check_at_ci_size=False) is None
    line = capsys.readouterr().out.strip()
    assert line.startswith("–") and "not checked at CI size" in line and "< 1" in line and "✓" not in line
    monkeypatch.setenv("LECTURELIB_FAST", "0")
    with pytest.raises(claims.ClaimFailed, match="✗ worst AE / PCA = 1.7 < 1"):
        claims.claim("worst AE / PCA", 1.7, "<", 1.0, check_at_ci_size=False)
