"""Notebook 03's exercises: the checker accepts the notebook's own solution, names typical mistakes, and reports an
unfinished exercise as not done; the questions compare a prediction with what the notebook measured."""

import pytest
import torch
import torch.nn.functional as F
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
        (
            lambda x, s: x + per_digit(s, x) * torch.randn(x.shape, generator=torch.Generator().manual_seed(0)),
            "reseeds",
        ),
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
# 3.2 denoising_loss
# ------------------------------------------------------------------------------------------------------------------
def _step(corrupt_target=False, feed_clean=False, reduce="image", to_float=False, seed=None, value=lambda d: d**2):
    """A denoising step with one slip switched on: the loss against x̃, h fed the clean x, another reduction, ..."""

    def denoising_loss(h, x, corrupt):
        if seed is not None:
            torch.manual_seed(seed)
        x_tilde = corrupt(x)
        x_hat = h(x if feed_clean else x_tilde)
        err = value((x_tilde if corrupt_target else x) - x_hat)
        loss = {"image": err.flatten(1).sum(1).mean(), "pixel": err.mean(), "batch": err.sum()}[reduce]
        return {"loss": loss.item() if to_float else loss}

    return denoising_loss


def _noise(x):
    return x + 0.5 * torch.randn_like(x)


def test_denoising_loss_accepts_the_notebook_solution_and_other_right_forms(capsys):
    mine = solution("03", "denoising_loss")
    returned, line = feedback(ex.denoising_loss, mine, capsys)
    assert returned is mine and line.startswith("Exercise 3.2") and STATUS["correct"] in line
    for right in [
        lambda h, x, corrupt: {"loss": F.mse_loss(h(corrupt(x)), x, reduction="sum") / len(x)},
        lambda h, x, corrupt: {"loss": ((h(xt := corrupt(x)) - x) ** 2).sum((1, 2, 3)).mean(), "x̃ mean": xt.mean()},
    ]:
        assert ex.denoising_loss.check(right) is right, capsys.readouterr().out


def test_denoising_loss_reference_trains_with_train_fit():
    """The fallback is what train.fit is then given, through functools.partial as in the notebook."""
    import functools

    from lecturelib import train

    h = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 784), torch.nn.Unflatten(1, (1, 28, 28)))
    history = train.fit(
        h,
        functools.partial(ex.reference_denoising_loss, corrupt=_noise),
        torch.rand(64, 1, 28, 28),
        epochs=1,
        batch_size=32,
        progress=False,
    )
    assert len(history.train["loss"]) == 1


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_step(corrupt_target=True), "compares h(x̃) with the corrupted x̃"),
        (_step(feed_clean=True), "h was given the clean x"),
        (_step(reduce="pixel"), "per pixel"),
        (_step(reduce="batch"), "summed over the batch"),
        (_step(to_float=True), "Python number"),
        (_step(seed=0), "reseeds"),
        (_step(value=torch.abs), "absolute error"),
        (lambda h, x, corrupt: {"loss": (x - h(_noise(x))).pow(2).flatten(1).sum(1).mean()}, "never called corrupt"),
        (lambda h, x, corrupt: (x - h(corrupt(x))).pow(2).flatten(1).sum(1).mean(), "dict of named terms"),
        (lambda h, x, corrupt: {"loss": (corrupt(x) - h(corrupt(x))).pow(2).sum((1, 2, 3)).mean()}, "2 times"),
        (lambda h, x, corrupt: {"loss": (x.sub_(h(corrupt(x)))).pow(2).sum((1, 2, 3)).mean()}, "in place"),
        (lambda h, x, corrupt: {"loss": (x - h(corrupt(x)).detach()).pow(2).sum((1, 2, 3)).mean()}, "no gradient"),
        (lambda h, x, corrupt: {"loss": 0.5 * (x - h(corrupt(x))).pow(2).sum((1, 2, 3)).mean()}, "half"),
        (lambda h, x, corrupt: {"loss": b}, "NameError"),  # noqa: F821 - a forgotten name must not stop the notebook
    ],
)
def test_denoising_loss_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.denoising_loss, wrong, capsys)
    assert returned is ex.reference_denoising_loss and not ex.denoising_loss.passed
    assert STATUS["wrong"] in line and hint in line, line


def test_denoising_loss_not_done(capsys):
    returned, line = feedback(ex.denoising_loss, not_implemented, capsys)
    assert returned is ex.reference_denoising_loss and STATUS["not done"] in line


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
    ex.least_restored.check(predict, ex.least_restored_choice(ROWS))
    assert ex.least_restored.passed and STATUS["correct"] in capsys.readouterr().out
    ex.least_restored.check(lambda: "a", ex.least_restored_choice(ROWS))
    assert not ex.least_restored.passed
    assert "you predicted (a) gaussian noise, the measurement says (c) occlusion" in capsys.readouterr().out
    ex.least_restored.check(not_implemented, "c")
    assert not ex.least_restored.passed and STATUS["not done"] in capsys.readouterr().out
    ex.least_restored.check(lambda: c, "c")  # noqa: F821 - a forgotten quote: said, not raised
    assert not ex.least_restored.passed and "NameError" in capsys.readouterr().out


def test_between_question(capsys):
    predict = solution("03", "predict_between")
    truth = ex.between_choice(0.18, 0.02)
    assert truth == "a" and ex.between_choice(0.2, 0.2) == "c" and ex.between_choice(0.0, 0.01) == "d"
    ex.between_modes.check(predict, truth)
    assert ex.between_modes.passed and STATUS["correct"] in capsys.readouterr().out
    ex.between_modes.check(lambda: "c", truth)
    assert not ex.between_modes.passed and STATUS["wrong"] in capsys.readouterr().out


def test_denoising_loss_reference_agrees_with_the_notebook_draw_for_draw():
    mine = solution("03", "denoising_loss")
    h = torch.nn.Conv2d(1, 1, 3, padding=1)
    x = torch.rand(6, 1, 28, 28)
    torch.manual_seed(5)
    a = mine(h, x, _noise)["loss"]
    torch.manual_seed(5)
    assert torch.equal(a, ex.reference_denoising_loss(h, x, _noise)["loss"])


def test_check_records_the_verdict_for_the_hidden_test(capsys):
    ex.gaussian_noise.check(solution("03", "gaussian_noise"))
    assert ex.gaussian_noise.passed
    ex.gaussian_noise.check(not_implemented)
    assert not ex.gaussian_noise.passed
    ex.denoising_loss.check(solution("03", "denoising_loss"))
    assert ex.denoising_loss.passed
