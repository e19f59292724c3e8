"""Tests for lecturelib.quality: the Fréchet distance against closed forms, score() plumbing and validation."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from lecturelib import quality


def _random_spd(dim: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(dim, dtype=torch.float64)


def _small_net(seed: int = 0) -> quality.DigitClassifier:
    torch.manual_seed(seed)
    return quality.DigitClassifier(channels=2, feature_dim=6).eval()


def test_frechet_1d_gaussians_match_closed_form():
    # 1-D: d² = (m1 - m2)² + (s1 - s2)²
    d2 = quality.frechet_distance_gaussians(
        torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-2.0]), torch.tensor([[0.25]])
    )
    assert d2 == pytest.approx(3.0**2 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_frechet_diagonal_gaussians_sum_over_dimensions():
    m1, m2 = torch.tensor([0.0, 1.0, -3.0]), torch.tensor([2.0, 1.0, 0.5])
    s1, s2 = torch.tensor([1.0, 2.0, 0.1]), torch.tensor([3.0, 0.5, 0.1])
    expected = float(((m1 - m2) ** 2).sum() + ((s1 - s2) ** 2).sum())
    d2 = quality.frechet_distance_gaussians(m1, torch.diag(s1**2), m2, torch.diag(s2**2))
    assert d2 == pytest.approx(expected, rel=1e-10)


def test_frechet_full_covariances_match_scipy_sqrtm():
    c1, c2 = _random_spd(5, 1), _random_spd(5, 2)
    m1, m2 = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    # the textbook formula with scipy's (non-symmetric) matrix square root as the independent reference
    cross = scipy.linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    expected = float(((m1 - m2) ** 2).sum()) + np.trace(c1.numpy() + c2.numpy() - 2 * cross)
    assert quality.frechet_distance_gaussians(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-8)


def test_frechet_of_a_gaussian_with_itself_is_zero_even_when_singular():
    a = torch.randn(6, 3, dtype=torch.float64)
    singular = a @ a.T  # rank 3 in 6-D: eigenvalues near 0 must not produce NaN
    mu = torch.randn(6, dtype=torch.float64)
    assert quality.frechet_distance_gaussians(mu, singular, mu, singular) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_identical_feature_sets_is_zero():
    feats = torch.randn(200, 8)
    assert quality.frechet_distance(feats, feats.clone()) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_on_samples_approaches_the_gaussian_closed_form():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    a = 1.0 + 2.0 * torch.randn(n, 1, generator=g)  # N(1, 2²)
    b = -1.0 + 0.5 * torch.randn(n, 1, generator=g)  # N(-1, 0.5²)
    assert quality.frechet_distance(a, b) == pytest.approx((1 - (-1)) ** 2 + (2.0 - 0.5) ** 2, rel=0.01)


def test_frechet_distance_is_symmetric_and_invariant_to_shared_rotations_and_shifts():
    g = torch.Generator().manual_seed(3)
    f1 = torch.randn(300, 4, generator=g, dtype=torch.float64) @ torch.randn(4, 4, generator=g, dtype=torch.float64)
    f2 = torch.randn(250, 4, generator=g, dtype=torch.float64) * 2 + 1
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    shift = torch.randn(4, generator=g, dtype=torch.float64)
    d = quality.frechet_distance(f1, f2)
    assert quality.frechet_distance(f2, f1) == pytest.approx(d, rel=1e-9)
    assert quality.frechet_distance(f1 @ q + shift, f2 @ q + shift) == pytest.approx(d, rel=1e-8)
    # scaling both sets by s scales the squared distance by s²
    assert quality.frechet_distance(3 * f1, 3 * f2) == pytest.approx(9 * d, rel=1e-8)


def test_frechet_distance_validates_its_features():
    with pytest.raises(ValueError, match="feature dimension"):
        quality.frechet_distance(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ValueError, match="N >= 2"):
        quality.frechet_distance(torch.randn(1, 3), torch.randn(10, 3))
    with pytest.raises(TypeError, match="feats1"):
        quality.frechet_distance(np.zeros((10, 3)), torch.randn(10, 3))
    with pytest.raises(ValueError, match="cov2"):
        quality.frechet_distance_gaussians(torch.zeros(2), torch.eye(2), torch.zeros(2), torch.eye(3))


def test_score_confidence_is_the_mean_max_softmax_probability():
    net = _small_net()
    images = torch.rand(50, 1, 28, 28)
    reference = torch.rand(40, 1, 28, 28)
    result = quality.score(images, "cpu", net=net, reference=reference)
    with torch.no_grad():
        probs = torch.distributions.Categorical(logits=net(images)).probs
    assert set(result) == {"confidence", "fd"}
    assert result["confidence"] == pytest.approx(float(probs.max(1).values.mean()), rel=1e-5)
    assert 0.1 <= result["confidence"] <= 1.0


def test_score_fd_is_zero_against_itself_and_grows_with_a_shift():
    net = _small_net()
    reference = torch.rand(60, 1, 28, 28) * 0.5
    same = quality.score(reference, net=net, reference=reference)["fd"]
    other = quality.score((reference + 0.5).clamp(0, 1), net=net, reference=reference)["fd"]
    assert same == pytest.approx(0.0, abs=1e-6)
    assert other > 1e-9 and other > 1e3 * same
    # fd is the Fréchet distance of the net's penultimate features
    with torch.no_grad():
        expected = quality.frechet_distance(net.embed((reference + 0.5).clamp(0, 1)), net.embed(reference))
    assert other == pytest.approx(expected, rel=1e-6)


def test_score_leaves_the_images_device_and_values_alone():
    net = _small_net()
    images = torch.rand(5, 1, 28, 28)
    before = images.clone()
    quality.score(images, net=net, reference=torch.rand(5, 1, 28, 28))
    assert torch.equal(images, before)


@pytest.mark.parametrize(
    "images, error, match",
    [
        (np.zeros((4, 1, 28, 28), dtype=np.float32), TypeError, "torch.Tensor"),
        (torch.zeros(4, 1, 28, 28, dtype=torch.uint8), TypeError, "floating-point"),
        (torch.zeros(4, 28, 28), ValueError, r"\(N, 1, 28, 28\)"),
        (torch.zeros(4, 3, 28, 28), ValueError, r"\(N, 1, 28, 28\)"),
        (torch.zeros(1, 1, 28, 28), ValueError, "at least 2"),
        (torch.full((4, 1, 28, 28), 1.5), ValueError, r"\[0, 1\]"),
        (torch.full((4, 1, 28, 28), -0.1), ValueError, r"\[0, 1\]"),
        (torch.full((4, 1, 28, 28), math.nan), ValueError, "finite"),
    ],
)
def test_score_rejects_bad_images_with_a_clear_message(images, error, match):
    with pytest.raises(error, match=match):
        quality.score(images, net=_small_net(), reference=torch.rand(4, 1, 28, 28))


def test_score_checks_the_reference_too():
    with pytest.raises(ValueError, match="reference"):
        quality.score(torch.rand(4, 1, 28, 28), net=_small_net(), reference=torch.rand(4, 1, 27, 27))


def test_classifier_learns_digits_from_a_tiny_budget_without_touching_the_callers_rng(tmp_path, monkeypatch):
    from lecturelib import data

    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(tmp_path))
    x, y = data.load_mnist("train", subset="ci", limit=1000)
    xt, yt = data.load_mnist("test", subset="ci", limit=300)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    net = quality.train_classifier(x, y, epochs=2, test=(xt, yt), checkpoint="test-classifier", progress=False)
    assert torch.equal(torch.rand(3), expected_next)
    assert not net.training
    assert net.test_accuracy == pytest.approx(quality.accuracy(net, xt, yt), abs=1e-6)
    assert net.test_accuracy > 0.4  # chance is 0.1
    assert list(tmp_path.glob("test-classifier-*.pt"))


def test_real_sample_is_one_fixed_random_subset_whatever_the_global_seed():
    images = torch.arange(50.0).view(50, 1, 1, 1).expand(50, 1, 28, 28) / 50
    torch.manual_seed(1)
    first = quality.real_sample(images, 10)
    torch.manual_seed(2)
    again = quality.real_sample(images, 10)
    assert torch.equal(first, again)
    assert not torch.equal(first, images[:10]), "a subset of the file's order, not a random one"
    assert len({float(v) for v in first[:, 0, 0, 0]}) == 10


def test_the_course_classifier_says_when_it_is_trained_and_when_it_is_loaded(tmp_path, monkeypatch, capsys):
    from lecturelib import data

    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(tmp_path))
    x, y = data.load_mnist("train", subset="ci", limit=500)
    xt, yt = data.load_mnist("test", subset="ci", limit=100)
    monkeypatch.setattr(quality.data, "load_mnist", lambda split, limit=None: (x, y) if split == "train" else (xt, yt))
    monkeypatch.setattr(quality, "BUDGET", {"full": (None, 1), "fast": (None, 1)})
    capsys.readouterr()  # the data's own message
    lines = []
    for _ in range(2):  # a new process: the in-memory copy is gone, the cached file is not
        monkeypatch.setattr(quality, "_classifiers", {})
        quality.classifier("cpu")
        lines.append(capsys.readouterr().out.strip().splitlines())
    (trained, accuracy), (loaded, _) = lines
    assert (
        trained.startswith("quality: the digit classifier that scores samples: 1 epoch in") and "(trained)" in trained
    )
    assert "(from the cache" in loaded and accuracy.startswith("quality: the classifier's test accuracy is")
