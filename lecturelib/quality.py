"""The course's sample-quality score: how digit-like generated images look to a small MNIST classifier.

`score(images)` returns the classifier's mean confidence and the Fréchet distance between its penultimate-layer
features of `images` and of the real MNIST test digits (an FID computed with an MNIST net instead of Inception).
The measurements of single images (ink, slant, thickness, compressed sizes) are in lecturelib.measures.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lecturelib import data, runtime, train
from lecturelib.checks import positive_int
from lecturelib.models import check_images, strided_conv_layers

CHECKPOINT = "quality-classifier"
# Training budget of the classifier: (digits, epochs); full mode reaches >= 98 % test accuracy on full MNIST.
BUDGET = {"full": (None, 3), "fast": (10_000, 2)}
_BATCH = 1000
_classifiers: dict[str, nn.Module] = {}  # per device: trained once per process, then read from checkpoints/
_reference_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # per device: (mean, cov) of real test digits


class DigitClassifier(nn.Module):
    """A small conv net for MNIST digits: two strided 5×5 convs, one hidden layer (the features), 10 logits.

    Strided convolutions instead of conv + max-pool: four times cheaper on a CPU, as accurate on MNIST.
    """

    def __init__(self, channels: int = 16, feature_dim: int = 128):
        super().__init__()
        c, h = positive_int(channels, "channels"), positive_int(feature_dim, "feature_dim")
        self.config = {"channels": c, "feature_dim": h}
        # (N, 1, 28, 28) -> (N, h), the penultimate layer
        self.features = nn.Sequential(*strided_conv_layers(c, h, kernel=5), nn.ReLU())
        self.head = nn.Linear(h, 10)
        self.test_accuracy: float | None = None  # set by `classifier` from the training history

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features.  (N, 1, 28, 28) -> (N, feature_dim)"""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.  (N, 1, 28, 28) -> (N, 10)"""
        return self.head(self.embed(x))

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable digit of each image.  (N, 1, 28, 28) -> (N,) int64"""
        return self.forward(x).argmax(1)


def classification_loss(model: nn.Module, batch) -> dict[str, torch.Tensor]:
    """Cross-entropy (mean over the batch) and the error rate of a (images, labels) batch, for train.fit."""
    x, y = batch
    logits = model(x)
    return {"loss": nn.functional.cross_entropy(logits, y), "error": (logits.argmax(1) != y).float().mean()}


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    device: torch.device | str = "cpu",
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    checkpoint: str | None = None,
    seed: int = 0,
    label: str | None = None,
    progress: bool = True,
) -> DigitClassifier:
    """Train a DigitClassifier on images x (N, 1, 28, 28) and labels y (N,) with train.fit, in eval mode after.

    The caller's random state is left untouched (the training draws from its own seeded stream), so scoring
    samples does not change what a notebook draws next. `test` gives `test_accuracy` on the model.
    """
    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        net = DigitClassifier().to(device)
        history = train.fit(
            net,
            classification_loss,
            (x, y),
            epochs=epochs,
            batch_size=128,
            lr=3e-3,
            test=test,
            checkpoint=checkpoint,
            label=label,
            progress=progress,
        )
    if history.test.get("error"):
        net.test_accuracy = 1.0 - history.test["error"][-1]
    return net.eval().requires_grad_(False)


def classifier(device: torch.device | str | None = None) -> DigitClassifier:
    """The course's MNIST classifier on `device` (default: runtime.pick_device()), trained once and cached.

    Trained with train.fit(..., checkpoint="quality-classifier") on the MNIST training split (fast mode: its
    first 10,000 digits, 2 epochs; full mode: all of it, 3 epochs), so later calls, in this process or another,
    only load it. Its `test_accuracy` is measured on the whole MNIST test split that `data.load_mnist` returns.
    """
    device = torch.device(device) if device is not None else runtime.pick_device()
    if str(device) not in _classifiers:
        limit, epochs = BUDGET["fast" if runtime.fast_mode() else "full"]
        x, y = data.load_mnist("train", limit=limit)
        test = data.load_mnist("test")
        # fit's line says whether it was trained now (the first time, about a minute on a CPU) or loaded
        label = "quality: the digit classifier that scores samples"
        net = train_classifier(x, y, epochs=epochs, device=device, test=test, checkpoint=CHECKPOINT, label=label)
        if net.test_accuracy is None:  # a cache without history: measure it
            net.test_accuracy = accuracy(net, *test)
        print(f"quality: the classifier's test accuracy is {net.test_accuracy:.2%} on {len(test[1]):,} MNIST digits")
        _classifiers[str(device)] = net
    return _classifiers[str(device)]


@torch.inference_mode()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of images x (N, 1, 28, 28) whose predicted class is the label y (N,)."""
    device = next(net.parameters()).device
    correct = sum(
        int((net(xb.to(device)).argmax(1) == yb.to(device)).sum()) for xb, yb in zip(x.split(_BATCH), y.split(_BATCH))
    )
    return correct / len(y)


@torch.inference_mode()
def _logits_and_features(net: DigitClassifier, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, 28, 28) -> logits (N, 10) and penultimate features (N, h), computed in chunks on the net's device."""
    device = next(net.parameters()).device
    logits, feats = [], []
    for chunk in images.split(_BATCH):
        h = net.embed(chunk.to(device))
        feats.append(h)
        logits.append(net.head(h))
    return torch.cat(logits), torch.cat(feats)


def gaussian_stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D), in float64, of features (N, D) with N >= 2."""
    _check_features(feats, "feats")
    f = feats.detach().double()
    return f.mean(0), torch.cov(f.T, correction=1).reshape(f.shape[1], f.shape[1])


def frechet_distance_gaussians(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """Fréchet (2-Wasserstein²) distance between N(mu1, cov1) and N(mu2, cov2); mu (D,), cov (D, D) PSD.

    d² = ||mu1 - mu2||² + Tr(cov1 + cov2 - 2 (cov1 cov2)^{1/2})   (Dowson & Landau 1982)
    Computed stably in float64 without scipy: cov1 cov2 is similar to the symmetric PSD matrix
    M = cov1^{1/2} cov2 cov1^{1/2}, so Tr (cov1 cov2)^{1/2} = Σ sqrt(eigenvalues of M), with both square roots
    taken by torch.linalg.eigh and round-off negative eigenvalues clipped to 0.
    """
    mu1, mu2, cov1, cov2 = (torch.as_tensor(t).detach().double().cpu() for t in (mu1, mu2, cov1, cov2))
    if mu1.dim() != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must be vectors of the same length, got {tuple(mu1.shape)}, {tuple(mu2.shape)}")
    dim = mu1.shape[0]
    for name, cov in (("cov1", cov1), ("cov2", cov2)):
        if cov.shape != (dim, dim):
            raise ValueError(f"{name} must have shape ({dim}, {dim}), got {tuple(cov.shape)}")
    cov1, cov2 = (cov1 + cov1.T) / 2, (cov2 + cov2.T) / 2
    evals, evecs = torch.linalg.eigh(cov1)
    sqrt_cov1 = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
    m = sqrt_cov1 @ cov2 @ sqrt_cov1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    d2 = (mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * tr_sqrt
    return max(float(d2), 0.0)  # round-off can leave -1e-12 for identical Gaussians


def frechet_distance(feats1: torch.Tensor, feats2: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted (mean, unbiased covariance) to features (N1, D) and (N2, D)."""
    _check_features(feats1, "feats1")
    _check_features(feats2, "feats2")
    if feats1.shape[1] != feats2.shape[1]:
        raise ValueError(
            f"feats1 and feats2 must have the same feature dimension, got {feats1.shape[1]} and {feats2.shape[1]}"
        )
    return frechet_distance_gaussians(*gaussian_stats(feats1), *gaussian_stats(feats2))


def score(
    images: torch.Tensor,
    device: torch.device | str | None = None,
    *,
    net: DigitClassifier | None = None,
    reference: torch.Tensor | None = None,
) -> dict[str, float]:
    """Sample quality of images (N, 1, 28, 28) in [0, 1], N >= 2: {"confidence": ..., "fd": ...}.

    confidence: mean over the images of the classifier's largest softmax probability (1 = sure it is some digit).
    fd: Fréchet distance between the classifier's penultimate features of `images` and of the real digits
        (lower is better; a finite sample of real digits sets the floor, which grows as N shrinks).
    device: where to run (default: the device `images` are on). net: the classifier (default: classifier(device)).
    reference: the real digits (M, 1, 28, 28) (default: the MNIST test split, whose statistics are cached per
        process for the default classifier).
    """
    check_quality_images(images, "images")
    device = torch.device(device) if device is not None else images.device
    default_net = net is None
    net = classifier(device) if default_net else net
    logits, feats = _logits_and_features(net, images)
    confidence = torch.softmax(logits.double(), dim=1).max(1).values.mean()
    if reference is not None:
        check_quality_images(reference, "reference")
        ref_stats = gaussian_stats(_logits_and_features(net, reference)[1])
    elif default_net:
        key = str(device)
        if key not in _reference_stats:
            _reference_stats[key] = gaussian_stats(_logits_and_features(net, data.load_mnist("test")[0])[1])
        ref_stats = _reference_stats[key]
    else:
        ref_stats = gaussian_stats(_logits_and_features(net, data.load_mnist("test")[0])[1])
    return {"confidence": float(confidence), "fd": frechet_distance_gaussians(*gaussian_stats(feats), *ref_stats)}


REFERENCE_SEED = 20_240_611  # the one fixed draw of "real digits" that every notebook scores against


def real_sample(images: torch.Tensor, n: int) -> torch.Tensor:
    """A fixed random subset of n of `images` (N, 1, 28, 28): the same digits in every notebook and every run.

    MNIST's test file is not shuffled (its first digits come from one group of writers), so `x_test[:n]` would set a
    different "real digits" floor in each notebook; a draw with its own seeded generator does not.
    """
    if not 2 <= n <= len(images):
        raise ValueError(f"n must be between 2 and len(images) = {len(images)}, got {n}")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(REFERENCE_SEED))
    return images[order[:n].to(images.device)]


def check_quality_images(x, name: str = "images") -> None:
    """Raise TypeError/ValueError unless x is a float tensor (N, 1, 28, 28), N >= 2, with finite values in [0, 1]."""
    check_images(x, name)
    if x.shape[0] < 2:
        raise ValueError(f"{name} must hold at least 2 images to fit a covariance, got {x.shape[0]}")
    lo, hi = float(x.min()), float(x.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must have finite values in [0, 1], got range [{lo:.3g}, {hi:.3g}]"
            f" (decode with a sigmoid, or clamp(0, 1))"
        )


def _check_features(feats, name: str) -> None:
    if not isinstance(feats, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(feats).__name__}")
    if feats.dim() != 2 or feats.shape[0] < 2:
        raise ValueError(f"{name} must have shape (N, D) with N >= 2, got {tuple(feats.shape)}")
    if not bool(torch.isfinite(feats).all()):
        raise ValueError(f"{name} must be finite")
