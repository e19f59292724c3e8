"""Exercises of notebook 03 (denoising auto-encoders): `from lecturelib.exercises import nb03 as ex`.

3.1 gaussian_noise: the corruption x̃ = x + σ ε, one level per digit.
3.2 denoising_loss: the loss of one denoising step, ||x - h(x̃)||² with x̃ drawn afresh and compared with the clean x.
3.3 (question) which corruption the denoiser restores least.
3.4 posterior_median: the L1-optimal denoiser of the ±1 toy model, which picks a mode where the MSE one averages.
3.5 (question) which trained toy denoiser (quadratic or absolute loss) answers values that x never takes.

Each checker runs the student's function on small cases against an independent reference (closed forms computed
here in float64, sample moments with a fixed seed, torch.distributions, a probe network that records what it is
given), on forked random generators so that the notebook's own random draws do not depend on the student's code.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import Exercise, Hint, Question, as_tensor, call, compare, loss_terms, reseeds


# ------------------------------------------------------------------------------------------------------------------
# 3.1 the Gaussian corruption
# ------------------------------------------------------------------------------------------------------------------
def reference_gaussian_noise(x: torch.Tensor, sigma) -> torch.Tensor:
    """x̃ = x + σ ε, ε ~ N(0, I); sigma a number or one level per digit (N,).  x: (N, 1, 28, 28) -> same."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    sigma = sigma.reshape(-1, *([1] * (x.dim() - 1)))  # (N or 1, 1, 1, 1): broadcasts over the pixels
    return x + sigma * torch.randn_like(x)


def _digits(n: int) -> torch.Tensor:
    """Digit-like test images: mostly 0 (background), some ink in (0, 1]."""
    ink = torch.rand(n, 1, 28, 28) < 0.2
    return (ink * (0.3 + 0.7 * torch.rand(n, 1, 28, 28))).float()


def _call_noise(f, x, sigma):
    """f(x, sigma) as the notebook calls it (on a copy of x: an in-place change is named), shape and finiteness."""
    try:
        out = call(f, x, sigma, what="gaussian_noise(x, sigma)")
    except RuntimeError as err:
        if torch.is_tensor(sigma) and sigma.numel() > 1 and ("size" in str(err) or "shape" in str(err)):
            raise Hint(
                f"sigma can be a tensor of N levels, one per digit (shape {tuple(sigma.shape)}); reshape it "
                f"with per_digit(sigma, x) so that it broadcasts over the pixels"
            ) from None
        raise
    if torch.is_tensor(out) and torch.is_tensor(sigma) and sigma.numel() > 1 and out.shape != x.shape:
        raise Hint(
            f"with one level per digit (sigma of shape {tuple(sigma.shape)}) x̃ has shape {tuple(out.shape)}, "
            f"expected {tuple(x.shape)}: reshape sigma with per_digit(sigma, x), shape (N, 1, 1, 1)"
        )
    out = as_tensor(out, "gaussian_noise(x, sigma)")
    if out.shape != x.shape:
        raise Hint(f"gaussian_noise(x, sigma) has shape {tuple(out.shape)}, expected {tuple(x.shape)} (the shape of x)")
    if not torch.isfinite(out).all():
        raise Hint("gaussian_noise(x, sigma) contains NaN or infinity")
    return out.detach()


def _noise_is_added_per_pixel(x: torch.Tensor, noise: torch.Tensor) -> None:
    """Step 1: some noise, added (not multiplied, not returned alone, not clipped), one ε per pixel and digit."""
    if noise.abs().max() < 1e-6:
        raise Hint("x̃ = x: no noise was added (did you return x?)")
    if noise[x == 0].abs().max() < 1e-6:
        raise Hint("the background pixels (x = 0) got no noise: the noise is added, x + σ ε, not multiplied, x ⊙ σ ε")
    slope = ((noise - noise.mean()) * (x - x.mean())).mean().item() / x.double().var().item()
    if slope < -0.5:
        raise Hint("x̃ - x goes down as x goes up: did you return only the noise σ ε? x̃ = x + σ ε")
    out = noise + x.double()
    if out.min() >= -1e-6 and out.max() <= 1 + 1e-6:
        raise Hint("x̃ stays within [0, 1]: do not clip; the corruption is exactly x̃ = x + σ ε")
    if noise.flatten(1).std(1).max() < 1e-5:
        raise Hint("each digit got one ε for all its pixels: draw one ε per pixel, torch.randn_like(x)")
    if (noise - noise[:1]).abs().max() < 1e-5:
        raise Hint(
            "every digit got the same noise image: draw an independent ε per digit and pixel, torch.randn_like(x)"
        )


def _noise_is_gaussian_with_std(noise: torch.Tensor, sigma: float) -> None:
    """Step 2: mean 0, Gaussian (excess kurtosis), standard deviation σ; names σ², 1 and √σ."""
    mean, std = noise.mean().item(), noise.std().item()
    excess_kurtosis = ((noise - mean) ** 4).mean().item() / std**4 - 3
    if abs(excess_kurtosis) > 0.15:
        raise Hint(
            f"the noise does not look Gaussian (excess kurtosis {excess_kurtosis:+.2f}, a Gaussian's is 0; "
            f"torch.rand_like draws uniform numbers): ε must be standard normal, torch.randn_like(x)"
        )
    if abs(mean) > 0.02:
        raise Hint(f"the noise has mean {mean:+.3f}: ε ~ N(0, I) has mean 0")
    for value, mistake in [
        (sigma**2, "σ² (the variance) instead of σ: x̃ = x + σ ε with σ the standard deviation"),
        (1.0, "1: did you forget the factor σ?"),
        (math.sqrt(sigma), "√σ: multiply ε by σ itself"),
    ]:
        if abs(std - value) < 0.03 * value:
            raise Hint(f"the noise has standard deviation {std:.3f} for σ = {sigma}, that is {mistake}")
    if abs(std - sigma) > 0.03 * sigma:
        raise Hint(f"the noise has standard deviation {std:.3f}, expected σ = {sigma}")


def _one_level_per_digit(f) -> None:
    """Step 3: a (N,) tensor of σs, N = 40 digits (not 28, so that a missing reshape cannot broadcast)."""
    levels = torch.linspace(0.0, 1.0, 40)
    x = _digits(40)
    noise = (_call_noise(f, x, levels) - x).double()
    per_digit_std = noise.flatten(1).std(1).float()
    if noise[0].abs().max() > 1e-6:
        raise Hint(
            "with σ = 0 for the first digit, x̃ should equal x there: use the digit's own level, "
            "per_digit(sigma, x) * torch.randn_like(x)"
        )
    if not torch.allclose(per_digit_std[1:], levels[1:], rtol=0.12, atol=0.0):
        raise Hint(
            "with one level per digit, digit i's noise should have standard deviation sigma[i]: "
            "multiply by per_digit(sigma, x), an (N, 1, 1, 1) tensor, not by a per-pixel or per-row level"
        )


def check_gaussian_noise(f) -> None:
    """The noise x̃ - x: mean 0, standard deviation σ per digit, a fresh ε for every pixel and digit and on every
    call (no seed set inside the function), added to the background too, not clipped; x itself unchanged."""
    torch.manual_seed(0)
    x = _digits(64)
    sigma = 0.5
    noise = (_call_noise(f, x, sigma) - x).double()  # (64, 1, 28, 28), 50,176 values
    _noise_is_added_per_pixel(x, noise)
    _noise_is_gaussian_with_std(noise, sigma)
    _one_level_per_digit(f)
    # the notebook corrupts a fresh batch at every training step: the same ε under two seeds means a reseed
    reseeds(f, x[:4], sigma, what="gaussian_noise(x, sigma)")


gaussian_noise = Exercise("3.1", "the Gaussian corruption x̃ = x + σε", check_gaussian_noise, reference_gaussian_noise)


# ------------------------------------------------------------------------------------------------------------------
# 3.2 the denoising training step
# ------------------------------------------------------------------------------------------------------------------
def reference_denoising_loss(h: nn.Module, x: torch.Tensor, corrupt) -> dict[str, torch.Tensor]:
    """The loss of one denoising step (Vincent et al. 2008): a fresh x̃ = corrupt(x), then (1/N) Σ_i ||x_i - h(x̃_i)||²,
    summed over the pixels, averaged over the batch.  x: (N, 1, 28, 28) clean digits -> {"loss": scalar tensor}."""
    x_tilde = corrupt(x)
    return {"loss": (x - h(x_tilde)).pow(2).flatten(1).sum(1).mean()}


class _Log(list):
    """What the probe saw; shared, not copied, when `call` copies the probe network."""

    def __deepcopy__(self, memo):
        return self


class _Probe(nn.Module):
    """A stand-in for h: a fixed, differentiable map that records every input it is given."""

    def __init__(self, scale: float, log: _Log):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))
        self.shift = nn.Parameter(torch.tensor(0.1))
        self.log = log

    def forward(self, x_tilde: torch.Tensor) -> torch.Tensor:
        self.log.append(x_tilde.detach().clone())
        return torch.sigmoid(self.scale * x_tilde + self.shift)


def _probe_corruption(log: _Log):
    """A corruption that records each x̃ it draws: Gaussian noise, σ = 0.3."""

    def corrupt(x: torch.Tensor) -> torch.Tensor:
        x_tilde = x + 0.3 * torch.randn_like(x)
        log.append(x_tilde.detach().clone())
        return x_tilde

    return corrupt


def _what_h_was_given(x: torch.Tensor, drawn: _Log, seen: _Log) -> torch.Tensor:
    """Step 1: corrupt(x) called once, h called on that x̃ (not on x); returns x̃."""
    if not drawn:
        raise Hint(
            "denoising_loss never called corrupt: draw x̃ with the corruption it is given, x_tilde = corrupt(x) "
            "(in the notebook, random_corruption, which uses your gaussian_noise)"
        )
    if len(drawn) > 1:
        raise Hint(
            f"corrupt was called {len(drawn)} times in one step: draw x̃ once, x_tilde = corrupt(x), and use that "
            f"same x̃ everywhere in the step"
        )
    if not seen:
        raise Hint("h was never called: the loss compares the reconstruction h(x̃) with x")
    if any(torch.equal(s, x) for s in seen):
        raise Hint(
            "h was given the clean x: a denoising auto-encoder reconstructs from the corrupted x̃, h(x_tilde), "
            "otherwise it is a plain auto-encoder and learns nothing about the damage"
        )
    if not any(s.shape == drawn[0].shape and torch.equal(s, drawn[0]) for s in seen):
        raise Hint("h was not given the x̃ that corrupt(x) returned: reconstruct from x_tilde = corrupt(x)")
    return drawn[0]


def _loss_of_one_step(f, n: int, scale: float) -> None:
    """Steps 2-3 on a batch of n: train.fit's contract, then the value against the reference and the usual slips."""
    x = _digits(n)
    drawn, seen = _Log(), _Log()
    h = _Probe(scale, seen)
    got = call(f, h, x, corrupt=_probe_corruption(drawn), what="denoising_loss(h, x, corrupt)")
    x_tilde = _what_h_was_given(x, drawn, seen)
    terms = loss_terms(got, ("loss",), "denoising_loss(h, x, corrupt)")
    with torch.no_grad():
        x_hat = h(x_tilde).double()
        x64, xt64 = x.double(), x_tilde.double()
        per_image = lambda t: t.flatten(1).sum(1).mean()  # noqa: E731
        want = per_image((x64 - x_hat) ** 2)
        known = {
            "it compares h(x̃) with the corrupted x̃; a denoising auto-encoder compares it with the clean x, "
            "||x - h(x̃)||², so that h learns to undo the damage": per_image((xt64 - x_hat) ** 2),
            "it compares x̃ with x, which does not involve h: compare the reconstruction h(x̃) with x": per_image(
                (x64 - xt64) ** 2
            ),
            "that is the absolute error; the lecture's loss is the quadratic one, ||x - h(x̃)||²": per_image(
                (x64 - x_hat).abs()
            ),
            "that is the norm ||x - h(x̃)||, not its square": (x64 - x_hat).flatten(1).norm(dim=1).mean(),
        }
    compare(terms["loss"], want, "the 'loss'", per_image=784, batch=n, known=known)


def check_denoising_loss(f) -> None:
    """Called as train.fit calls it, f(h, x, corrupt=...), with a recording probe network h and a recording
    corruption: x̃ = corrupt(x) drawn once per step and fed to h; the loss ||x - h(x̃)||² against the clean x, summed
    over pixels, averaged over the batch, a differentiable scalar in a dict; x unchanged; a fresh x̃ on every call
    (no seed set inside). Two batch sizes and two probes."""
    torch.manual_seed(0)
    _loss_of_one_step(f, 8, 1.5)
    _loss_of_one_step(f, 5, -0.7)
    reseeds(f, _Probe(1.0, _Log()), _digits(4), corrupt=_probe_corruption(_Log()), what="denoising_loss")


denoising_loss = Exercise("3.2", "the loss of one denoising step", check_denoising_loss, reference_denoising_loss)


# ------------------------------------------------------------------------------------------------------------------
# 3.3 question: which corruption is restored least
# ------------------------------------------------------------------------------------------------------------------
least_restored = Question(
    "3.3",
    "which corruption does h restore least?",
    choices={"a": "gaussian noise", "b": "pixel masking", "c": "occlusion"},
)


# ------------------------------------------------------------------------------------------------------------------
# 3.4 the L1-optimal denoiser of the toy model: the posterior median
# ------------------------------------------------------------------------------------------------------------------
def _posterior_plus(x_tilde: torch.Tensor, sigma: float) -> torch.Tensor:
    """p(x = +1 | x̃) for x = ±1 with probability 1/2 each and x̃ = x + σ ε, by Bayes with torch.distributions."""
    x_tilde = torch.as_tensor(x_tilde, dtype=torch.float64)
    log_plus = torch.distributions.Normal(1.0, float(sigma)).log_prob(x_tilde)
    log_minus = torch.distributions.Normal(-1.0, float(sigma)).log_prob(x_tilde)
    return torch.sigmoid(log_plus - log_minus)


def reference_posterior_median(x_tilde: torch.Tensor, sigma: float) -> torch.Tensor:
    """The median of p(x | x̃) for x = ±1 (probability 1/2 each), x̃ = x + σ ε: +1 where p(x = +1 | x̃) > 1/2, else -1
    (at x̃ = 0 every value in [-1, 1] is a median; this returns -1).  x_tilde: any shape -> same shape."""
    p_plus = _posterior_plus(x_tilde, sigma).to(torch.as_tensor(x_tilde).dtype)
    return torch.where(p_plus > 0.5, 1.0, -1.0).to(p_plus)


def expected_l1(m: torch.Tensor, x_tilde: torch.Tensor, sigma: float) -> torch.Tensor:
    """The L1 loss a denoiser's answer m expects: E[|x - m| | x̃] = p |1 - m| + (1 - p) |-1 - m|, p = p(x = +1 | x̃)."""
    p = _posterior_plus(x_tilde, sigma)
    m = m.double()
    return p * (1 - m).abs() + (1 - p) * (-1 - m).abs()


def check_posterior_median(f) -> None:
    """On x̃ ≠ 0 in [-3, 3] for σ = 0.5, 0.8, 1.5: the answer must be the median ±1 of p(x | x̃), which minimises the
    expected L1 loss; recognises the posterior mean, p(x = +1 | x̃), a clipped x̃ and a flipped sign."""
    grid = torch.linspace(-3, 3, 60).reshape(-1, 1)  # (60, 1), no exact 0
    for sigma in (0.8, 0.5, 1.5):
        got = as_tensor(f(grid.clone(), sigma), f"posterior_median(x_tilde, {sigma})")
        want = reference_posterior_median(grid, sigma)
        if got.shape == want.shape and torch.isfinite(got).all():
            g = got.detach().double()
            close = lambda u, g=g: torch.allclose(g, u.double(), atol=1e-3)  # noqa: E731
            p_plus = _posterior_plus(grid, sigma)
            if not close(want) and close(torch.tanh(grid / sigma**2)):
                raise Hint(
                    "that is tanh(x̃/σ²), the posterior mean E[x|x̃]: the denoiser of the quadratic loss. "
                    "The L1 loss |x - h(x̃)| is minimised by the posterior median, a value x actually takes"
                )
            if not close(want) and close(p_plus):
                raise Hint(
                    "that is p(x = +1 | x̃), a probability; the median is the value of x on the side where "
                    "this probability passes 1/2"
                )
            if not close(want) and close(grid.clamp(-1, 1)):
                raise Hint("that is x̃ clipped to [-1, 1]: the median depends on x̃ only through p(x = +1 | x̃)")
            if not close(want) and close(-want):
                raise Hint("the sign is flipped: +1 where p(x = +1 | x̃) > 1/2, i.e. where x̃ > 0")
            off_modes = ((g - 1).abs() > 1e-3) & ((g + 1).abs() > 1e-3)
            if not close(want) and off_modes.any():
                loss_got, loss_want = expected_l1(g, grid, sigma).mean(), expected_l1(want, grid, sigma).mean()
                raise Hint(
                    f"some answers are neither -1 nor +1 (e.g. {g[off_modes][0].item() + 0.0:+.3g}): the posterior "
                    f"puts all its mass on ±1, so its median is one of them. Expected L1 loss of your answers "
                    f"{loss_got:.3f}, of the median {loss_want:.3f}"
                )
        compare(got, want, f"posterior_median(x_tilde, {sigma})", atol=1e-3)


posterior_median = Exercise(
    "3.4", "the L1-optimal denoiser: the posterior median", check_posterior_median, reference_posterior_median
)


# ------------------------------------------------------------------------------------------------------------------
# 3.5 question: which toy denoiser answers values that x never takes
# ------------------------------------------------------------------------------------------------------------------
between_modes = Question(
    "3.5",
    "which trained toy denoiser answers between the modes?",
    choices={
        "a": "the network trained with the quadratic loss (x - h(x̃))²",
        "b": "the network trained with the absolute loss |x - h(x̃)|",
        "c": "both",
        "d": "neither",
    },
)


def least_restored_choice(rows) -> str:
    """The letter of the corruption with the smallest PSNR gain in the table's rows (name, level, before, after)."""
    name = min(rows, key=lambda row: row[3] - row[2])[0]
    return {text: letter for letter, text in least_restored.choices.items()}[name]


def between_choice(share_mse: float, share_l1: float, threshold: float = 0.05) -> str:
    """The letter for which trained denoiser answers, for more than `threshold` of the noisy values, at least 0.5 away
    from both -1 and +1 (shares measured by the notebook)."""
    return {(True, False): "a", (False, True): "b", (True, True): "c", (False, False): "d"}[
        (share_mse > threshold, share_l1 > threshold)
    ]
