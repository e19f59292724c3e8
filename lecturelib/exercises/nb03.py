"""Exercises of notebook 03 (denoising auto-encoders): `from lecturelib.exercises import nb03 as ex`.

3.1 gaussian_noise: the corruption x̃ = x + σ ε, one level per digit.
3.2 psnr: the peak signal-to-noise ratio 10 log10(1 / MSE), one value per image.
3.3 (question) which corruption the denoiser restores least.
3.4 posterior_median: the L1-optimal denoiser of the ±1 toy model, which picks a mode where the MSE one averages.
3.5 (question) which trained toy denoiser (quadratic or absolute loss) answers values that x never takes.

Each checker runs the student's function on small cases against an independent reference (closed forms computed
here in float64, sample moments with a fixed seed, torch.distributions), on forked random generators so that the
notebook's own random draws do not depend on the student's code.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import Exercise, Hint, Question, as_tensor, compare


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
    x_before = x.clone()
    try:
        out = f(x, sigma)
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
    if not torch.equal(x, x_before):
        raise Hint("your function changed x in place (x += ..., x.add_): return a new tensor x + σ ε")
    out = as_tensor(out, "gaussian_noise(x, sigma)")
    if out.shape != x.shape:
        raise Hint(f"gaussian_noise(x, sigma) has shape {tuple(out.shape)}, expected {tuple(x.shape)} (the shape of x)")
    if not torch.isfinite(out).all():
        raise Hint("gaussian_noise(x, sigma) contains NaN or infinity")
    return out.detach()


def check_gaussian_noise(f) -> None:
    """The noise x̃ - x: mean 0, standard deviation σ per digit, a fresh ε for every pixel and digit, added to the
    background too, not clipped."""
    torch.manual_seed(0)
    x = _digits(64)
    sigma = 0.5
    noise = (_call_noise(f, x, sigma) - x).double()  # (64, 1, 28, 28), 50,176 values
    if noise.abs().max() < 1e-6:
        raise Hint("x̃ = x: no noise was added (did you return x?)")
    background = x == 0
    if noise[background].abs().max() < 1e-6:
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
    # one level per digit: a (N,) tensor of σs, N = 40 digits (not 28, so that a missing reshape cannot broadcast)
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


gaussian_noise = Exercise("3.1", "the Gaussian corruption x̃ = x + σε", check_gaussian_noise, reference_gaussian_noise)


# ------------------------------------------------------------------------------------------------------------------
# 3.2 PSNR
# ------------------------------------------------------------------------------------------------------------------
def reference_psnr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """PSNR = 10 log10(1 / MSE) in dB, MSE the mean over the pixels of one image, peak value 1.  (N, ...) -> (N,)"""
    mse = (x - x_hat).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def check_psnr(f) -> None:
    """Against 10 log10(1 / MSE) computed in float64 with NumPy, one value per image; names the usual slips."""
    torch.manual_seed(0)
    x = _digits(6)
    x_hat = (x + 0.05 * torch.arange(1, 7).reshape(6, 1, 1, 1) * torch.randn_like(x)).clamp(0, 1)
    a, b = x.double().numpy().reshape(6, -1), x_hat.double().numpy().reshape(6, -1)
    mse = ((a - b) ** 2).mean(1)
    want = torch.from_numpy(10 * np.log10(1.0 / mse))
    got = as_tensor(f(x.clone(), x_hat.clone()), "psnr(x, x_hat)")
    if got.shape == want.shape and torch.isfinite(got).all():
        got64 = got.detach().double()
        close = lambda u, v: torch.allclose(u, v, rtol=1e-4, atol=1e-3)  # noqa: E731
        slips = [
            (
                torch.from_numpy(10 * np.log10(1.0 / ((a - b) ** 2).sum(1))),
                "the MSE is summed over the 784 pixels: PSNR uses the mean squared error per pixel, (x - x̂)².mean()",
            ),
            (torch.from_numpy(10 * np.log(1.0 / mse)), "that is the natural log: PSNR uses log10 (torch.log10)"),
            (
                torch.from_numpy(20 * np.log10(1.0 / mse)),
                "20 log10 goes with the root of the MSE: PSNR = 10 log10(1 / MSE) = 20 log10(1 / RMSE)",
            ),
            (
                torch.from_numpy(10 * np.log10(1.0 / np.sqrt(mse))),
                "that is 10 log10(1 / RMSE): with the root of the MSE the factor is 20; use 10 log10(1 / MSE)",
            ),
            (
                torch.from_numpy(10 * np.log10(1.0 / np.abs(a - b).mean(1))),
                "that uses the mean absolute error; PSNR uses the mean squared error",
            ),
            (-want, "the sign is flipped: 10 log10(1 / MSE) = -10 log10(MSE) (higher PSNR = closer to x)"),
            (
                torch.from_numpy(10 * np.log10(1.0 / (((a - b) ** 2).mean(1) / 784))),
                "the MSE is divided by the pixel count twice",
            ),
        ]
        for slip, message in slips:
            if not close(got64, want) and close(got64, slip):
                raise Hint(message)
    compare(got, want, "psnr(x, x_hat)", atol=1e-3)
    # images of another shape: (N, D) flat vectors
    try:
        got = as_tensor(f(x.flatten(1), x_hat.flatten(1)), "psnr on flat (N, 784) images")
    except (IndexError, RuntimeError) as err:
        raise Hint(
            f"psnr fails on flat (N, 784) images ({type(err).__name__}): average over every axis but the "
            f"first, whatever the image shape, e.g. (x - x_hat).pow(2).flatten(1).mean(1)"
        ) from None
    if got.shape != want.shape:
        raise Hint(
            f"for flat images (N, 784) psnr returned shape {tuple(got.shape)}: average over every axis but the "
            f"first, e.g. (x - x_hat).pow(2).flatten(1).mean(1)"
        )
    compare(got, want, "psnr on flat (N, 784) images", atol=1e-3)


psnr = Exercise("3.2", "PSNR, one value per image", check_psnr, reference_psnr)


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
    """E[|x - m| | x̃] = p |1 - m| + (1 - p) |-1 - m| with p = p(x = +1 | x̃).

    The L1 loss a denoiser's answer m expects."""
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
