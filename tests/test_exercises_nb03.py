"""Notebook 03's exercises: the checker accepts the notebook's own solution, names typical mistakes, and reports an
unfinished exercise as not done; the questions compare a prediction with what the notebook measured."""

import pytest
import torch
from notebook_source import not_implemented, solution

from lecturelib.exercises import STATUS
from lecturelib.exercises import nb03 as ex


def feedback(exercise, answer, capsys):
    """(what check() returned, the feedback line it printed)."""
    returned = exercise.check(answer)
    return returned, capsys.readouterr().out.strip()


def per_digit(level, x):
    return torch.as_tensor(level, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)


# ------------------------------------------------------------------------------------------------------------------
# 3.1 gaussian_noise
# ------------------------------------------------------------------------------------------------------------------
def test_gaussian_noise_accepts_the_notebook_solution(capsys):
    mine = solution("03", "gaussian_noise")
    returned, line = feedback(ex.gaussian_noise, mine, capsys)
    assert returned is mine and line.startswith("Exercise 3.1") and STATUS["correct"] in line


def test_gaussian_noise_reference_agrees_with_the_notebook_draw_for_draw():
    mine = solution("03", "gaussian_noise")
    x = torch.rand(5, 1, 28, 28)
    levels = torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8])
    torch.manual_seed(3)
    a = mine(x, levels)
    torch.manual_seed(3)
    assert torch.equal(a, ex.reference_gaussian_noise(x, levels))


def test_gaussian_noise_checker_does_not_move_the_notebooks_random_stream(capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.gaussian_noise.check(solution("03", "gaussian_noise"))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, s: x + per_digit(s, x) ** 2 * torch.randn_like(x), "σ² (the variance)"),
        (lambda x, s: x + torch.randn_like(x), "forget the factor σ"),
        (lambda x, s: x + per_digit(s, x) * torch.rand_like(x), "standard normal, torch.randn_like"),
        (lambda x, s: per_digit(s, x) * torch.randn_like(x), "only the noise"),
        (lambda x, s: x * (1 + per_digit(s, x) * torch.randn_like(x)), "not multiplied"),
        (lambda x, s: (x + per_digit(s, x) * torch.randn_like(x)).clamp(0, 1), "do not clip"),
        (lambda x, s: x + s * torch.randn_like(x), "per_digit(sigma, x)"),
        (lambda x, s: x + per_digit(s, x) * torch.randn(len(x), 1, 1, 1), "one ε per pixel"),
        (lambda x, s: x.add_(per_digit(s, x) * torch.randn_like(x)), "in place"),
    ],
)
def test_gaussian_noise_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.gaussian_noise, wrong, capsys)
    assert returned is ex.reference_gaussian_noise
    assert STATUS["wrong"] in line and hint in line, line


def test_gaussian_noise_not_done(capsys):
    returned, line = feedback(ex.gaussian_noise, not_implemented, capsys)
    assert returned is ex.reference_gaussian_noise and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# 3.2 psnr
# ------------------------------------------------------------------------------------------------------------------
def test_psnr_accepts_the_notebook_solution(capsys):
    mine = solution("03", "psnr")
    returned, line = feedback(ex.psnr, mine, capsys)
    assert returned is mine and line.startswith("Exercise 3.2") and STATUS["correct"] in line


def test_psnr_reference_matches_lecturelib_metrics():
    from lecturelib import metrics

    x, x_hat = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    assert torch.allclose(ex.reference_psnr(x, x_hat), metrics.psnr(x, x_hat))


def _mse(x, x_hat):
    return (x - x_hat).pow(2).flatten(1).mean(1)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, xh: 10 * torch.log10(1 / (x - xh).pow(2).flatten(1).sum(1)), "summed over the 784 pixels"),
        (lambda x, xh: 10 * torch.log(1 / _mse(x, xh)), "natural log"),
        (lambda x, xh: 20 * torch.log10(1 / _mse(x, xh)), "20 log10 goes with the root"),
        (lambda x, xh: 10 * torch.log10(1 / _mse(x, xh).sqrt()), "10 log10(1 / RMSE)"),
        (lambda x, xh: 10 * torch.log10(1 / (x - xh).pow(2).mean()), "one value per example"),
        (lambda x, xh: 10 * torch.log10(_mse(x, xh)), "sign is flipped"),
        (lambda x, xh: 10 * torch.log10(1 / (x - xh).abs().flatten(1).mean(1)), "mean absolute error"),
        (lambda x, xh: 10 * torch.log10(1 / (x - xh).pow(2).mean((1, 2, 3))), "flat (N, 784) images"),
    ],
)
def test_psnr_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.psnr, wrong, capsys)
    assert returned is ex.reference_psnr
    assert STATUS["wrong"] in line and hint in line, line


def test_psnr_not_done(capsys):
    returned, line = feedback(ex.psnr, not_implemented, capsys)
    assert returned is ex.reference_psnr and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# 3.4 posterior_median
# ------------------------------------------------------------------------------------------------------------------
def test_posterior_median_accepts_the_notebook_solution_and_sign(capsys):
    mine = solution("03", "posterior_median")
    returned, line = feedback(ex.posterior_median, mine, capsys)
    assert returned is mine and line.startswith("Exercise 3.4") and STATUS["correct"] in line
    assert ex.posterior_median.check(lambda x_tilde, sigma: torch.sign(x_tilde)) is not ex.reference_posterior_median


def test_posterior_median_minimises_the_expected_absolute_error():
    """The reference is the minimiser of E[|x - m| | x̃] over a fine grid of m, at every x̃ ≠ 0."""
    x_tilde = torch.tensor([-2.0, -0.3, -0.01, 0.02, 0.7, 1.9])
    m_grid = torch.linspace(-1.5, 1.5, 301)
    losses = torch.stack([ex.expected_l1(m.expand_as(x_tilde), x_tilde, 0.8) for m in m_grid])  # (301, 6)
    best = m_grid[losses.argmin(0)]
    assert torch.allclose(best.double(), ex.reference_posterior_median(x_tilde, 0.8).double())


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x_tilde, sigma: torch.tanh(x_tilde / sigma**2), "posterior mean"),
        (lambda x_tilde, sigma: torch.sigmoid(2 * x_tilde / sigma**2), "p(x = +1 | x̃), a probability"),
        (lambda x_tilde, sigma: x_tilde.clamp(-1, 1), "clipped"),
        (lambda x_tilde, sigma: -torch.sign(x_tilde), "sign is flipped"),
        (lambda x_tilde, sigma: torch.round(torch.tanh(x_tilde / sigma**2)), "neither -1 nor +1"),
    ],
)
def test_posterior_median_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.posterior_median, wrong, capsys)
    assert returned is ex.reference_posterior_median
    assert STATUS["wrong"] in line and hint in line, line


def test_posterior_median_not_done(capsys):
    returned, line = feedback(ex.posterior_median, not_implemented, capsys)
    assert returned is ex.reference_posterior_median and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# questions 3.3 and 3.5
# ------------------------------------------------------------------------------------------------------------------
ROWS = [("gaussian noise", 0.25, 12.0, 17.5), ("pixel masking", 0.25, 15.8, 17.4), ("occlusion", 12, 15.6, 16.2)]


def test_least_restored_choice_reads_the_table():
    assert ex.least_restored_choice(ROWS) == "c"
    assert ex.least_restored_choice([ROWS[0], ("pixel masking", 0.5, 15.0, 15.1), ROWS[2]]) == "b"


def test_least_restored_question(capsys):
    predict = solution("03", "predict_least_restored")
    assert ex.least_restored.check(predict, ex.least_restored_choice(ROWS)) is True
    assert STATUS["correct"] in capsys.readouterr().out
    assert ex.least_restored.check(lambda: "a", ex.least_restored_choice(ROWS)) is False
    assert "you predicted (a) gaussian noise, the measurement says (c) occlusion" in capsys.readouterr().out
    assert ex.least_restored.check(not_implemented, "c") is False
    assert STATUS["not done"] in capsys.readouterr().out


def test_between_question(capsys):
    predict = solution("03", "predict_between")
    truth = ex.between_choice(0.18, 0.02)
    assert truth == "a" and ex.between_choice(0.2, 0.2) == "c" and ex.between_choice(0.0, 0.01) == "d"
    assert ex.between_modes.check(predict, truth) is True
    assert STATUS["correct"] in capsys.readouterr().out
    assert ex.between_modes.check(lambda: "c", truth) is False
    assert STATUS["wrong"] in capsys.readouterr().out
