"""Property-based checks of the objectives (hypothesis): KL ≥ 0 with equality only at the prior, the IWAE bound."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lecturelib import objectives

finite = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False)
vectors = st.lists(st.tuples(finite, finite), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_kl_is_non_negative_and_zero_only_at_the_prior(pairs):
    mu = torch.tensor([[m for m, _ in pairs]], dtype=torch.float64)
    logvar = torch.tensor([[v for _, v in pairs]], dtype=torch.float64)
    kl = objectives.kl_to_standard_normal(mu, logvar).item()
    assert kl >= -1e-12
    at_prior = bool((mu.abs() < 1e-6).all() and (logvar.abs() < 1e-6).all())
    if not at_prior:
        assert kl > 0
    else:
        assert kl < 1e-9


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=6), st.floats(min_value=-3, max_value=3))
def test_kl_grows_as_the_mean_moves_away(d, shift):
    zeros = torch.zeros(1, d, dtype=torch.float64)
    near = objectives.kl_to_standard_normal(zeros + shift / 2, zeros)
    far = objectives.kl_to_standard_normal(zeros + shift, zeros)
    assert far >= near
    torch.testing.assert_close(far, torch.tensor([0.5 * d * shift**2], dtype=torch.float64))
