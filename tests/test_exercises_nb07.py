"""Notebook 07's exercise checkers: each accepts the notebook's own solution, names the usual mistakes, and says
"not done" for the student edition's stub."""

import numpy as np
import pytest
import torch
from notebook_source import solution

from lecturelib import objectives
from lecturelib.exercises import nb07 as ex


def feedback(exercise, answer, capsys) -> str:
    """The one line the exercise prints for `answer`; also checks what the notebook goes on with."""
    used = exercise.check(answer)
    line = capsys.readouterr().out.strip()
    assert used is (answer if "✓ correct" in line else exercise.reference)
    return line


def stub(*args, **kwargs):
    raise NotImplementedError()


# ---------------------------------------------------------------- 7.1 beta_for_rate
def test_beta_for_rate_accepts_the_notebook_solution(capsys):
    assert "✓ correct" in feedback(ex.beta_for_rate, solution("07", "beta_for_rate"), capsys)


def test_beta_for_rate_reference_interpolates_log_beta():
    # halfway in rate between β = 2 (10 nats) and β = 4 (6 nats) is halfway in log β: 2·√2
    assert ex.reference_beta_for_rate([0.5, 1, 2, 4, 8], [24, 16, 10, 6, 2], 8.0) == pytest.approx(2 * 2**0.5)
    with pytest.raises(ValueError):
        ex.reference_beta_for_rate([0.5, 1, 2, 4, 8], [24, 16, 10, 6, 2], 30.0)


def _in_range(betas, rates, target):
    if not min(rates) <= target <= max(rates):
        raise ValueError("outside")


def test_beta_for_rate_names_an_unsorted_interpolation(capsys):
    def rate_grows_with_beta(betas, rates, target):
        _in_range(betas, rates, target)
        return float(np.exp(np.interp(target, rates, np.log(betas))))  # rates decrease: np.interp clamps

    line = feedback(ex.beta_for_rate, rate_grows_with_beta, capsys)
    assert "✗" in line and "as if the rate grew with β" in line


def test_beta_for_rate_names_linear_in_beta(capsys):
    def linear(betas, rates, target):
        _in_range(betas, rates, target)
        return float(np.interp(target, rates[::-1], betas[::-1]))

    line = feedback(ex.beta_for_rate, linear, capsys)
    assert "✗" in line and "linearly in the rate" in line and "log β" in line


def test_beta_for_rate_names_a_beta_that_grows_with_the_rate(capsys):
    def upside_down(betas, rates, target):
        _in_range(betas, rates, target)
        return float(np.exp(np.interp(target, rates[::-1], np.log(betas))))

    line = feedback(ex.beta_for_rate, upside_down, capsys)
    assert "✗" in line and "grows with the target rate" in line


def test_beta_for_rate_names_an_extrapolation(capsys):
    def clamps(betas, rates, target):
        return float(np.exp(np.interp(target, rates[::-1], np.log(betas)[::-1])))

    line = feedback(ex.beta_for_rate, clamps, capsys)
    assert "✗" in line and "outside the measured rates" in line and "ValueError" in line


def test_beta_for_rate_not_done(capsys):
    assert "○ not done yet" in feedback(ex.beta_for_rate, stub, capsys)


# ---------------------------------------------------------------- 7.2 transfer
def test_transfer_accepts_the_notebook_solution(capsys):
    assert "✓ correct" in feedback(ex.transfer, solution("07", "transfer"), capsys)


def test_transfer_names_the_source_label(capsys):
    def source_label(cvae, x, y_from, y_to):
        mu, _ = cvae.encode(x, y_from)
        return cvae.decode_mean(mu, y_from)

    line = feedback(ex.transfer, source_label, capsys)
    assert "✗" in line and "source label y_from" in line


def test_transfer_names_a_fresh_prior_sample(capsys):
    def prior(cvae, x, y_from, y_to):
        return cvae.decode_mean(torch.randn(len(x), cvae.latent_dim), y_to)

    line = feedback(ex.transfer, prior, capsys)
    assert "✗" in line and "from the prior instead of encoding x" in line


def test_transfer_names_a_posterior_sample(capsys):
    def sampled(cvae, x, y_from, y_to):
        mu, logvar = cvae.encode(x, y_from)
        return cvae.decode_mean(objectives.reparameterize(mu, logvar), y_to)

    line = feedback(ex.transfer, sampled, capsys)
    assert "✗" in line and "use its mean" in line


def test_transfer_names_encoding_with_the_new_label(capsys):
    def encoded_with_new_label(cvae, x, y_from, y_to):
        mu, _ = cvae.encode(x, y_to)
        return cvae.decode_mean(mu, y_to)

    line = feedback(ex.transfer, encoded_with_new_label, capsys)
    assert "✗" in line and "encoded x with the new label" in line


def test_transfer_names_logits(capsys):
    def logits(cvae, x, y_from, y_to):
        return cvae.decode(cvae.encode(x, y_from)[0], y_to)

    assert "logits" in feedback(ex.transfer, logits, capsys)


def test_transfer_not_done(capsys):
    assert "○ not done yet" in feedback(ex.transfer, stub, capsys)


def test_transfer_checker_leaves_the_notebooks_random_stream_alone(capsys):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.transfer.check(solution("07", "transfer"))
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- 7.4 anomaly_score
def notebook_anomaly_score():
    return solution("07", "anomaly_score", {"objectives": objectives})


def test_anomaly_score_accepts_the_notebook_solution(capsys):
    assert "✓ correct" in feedback(ex.anomaly_score, notebook_anomaly_score(), capsys)


def test_anomaly_score_names_the_sign(capsys):
    def elbo(model, x, draws=8):
        return torch.stack([objectives.elbo(model, x)["elbo"] for _ in range(draws)]).mean(0)

    line = feedback(ex.anomaly_score, elbo, capsys)
    assert "✗" in line and "the ELBO itself" in line


def test_anomaly_score_names_per_pixel(capsys):
    def per_pixel(model, x, draws=8):
        return -torch.stack([objectives.elbo(model, x)["elbo"] for _ in range(draws)]).mean(0) / 784

    line = feedback(ex.anomaly_score, per_pixel, capsys)
    assert "✗" in line and "per pixel" in line


def test_anomaly_score_names_a_missing_kl(capsys):
    def recon_only(model, x, draws=8):
        return -torch.stack([objectives.elbo(model, x)["log_px_z"] for _ in range(draws)]).mean(0)

    line = feedback(ex.anomaly_score, recon_only, capsys)
    assert "✗" in line and "left out the KL term" in line


def test_anomaly_score_names_a_batch_mean(capsys):
    def batch_mean(model, x, draws=8):
        return -torch.stack([objectives.elbo(model, x)["elbo"] for _ in range(draws)]).mean()

    line = feedback(ex.anomaly_score, batch_mean, capsys)
    assert "✗" in line and "one value per example" in line


def test_anomaly_score_names_ignored_draws(capsys):
    def one_draw(model, x, draws=8):
        return -objectives.elbo(model, x)["elbo"]

    line = feedback(ex.anomaly_score, one_draw, capsys)
    assert "✗" in line and "`draws`" in line


def test_anomaly_score_names_a_sum_over_draws(capsys):
    def summed(model, x, draws=8):
        return -torch.stack([objectives.elbo(model, x)["elbo"] for _ in range(draws)]).sum(0)

    line = feedback(ex.anomaly_score, summed, capsys)
    assert "✗" in line and "summed the ELBO over the draws" in line


def test_anomaly_score_not_done(capsys):
    assert "○ not done yet" in feedback(ex.anomaly_score, stub, capsys)


# ---------------------------------------------------------------- questions 7.3 and 7.5
@pytest.mark.parametrize(
    "question, name, truth, wrong",
    [
        (ex.question_transfer_d20, "predict_transfer_d20", "b", "a"),
        (ex.question_hardest_anomaly, "predict_hardest_anomaly", "d", "c"),
    ],
)
def test_questions_compare_the_prediction_with_the_measurement(question, name, truth, wrong, capsys):
    predict = solution("07", name)
    assert predict() == truth  # the notebook's answer, for the result its full run measures
    assert question.check(predict, truth) is True
    assert "✓ correct" in capsys.readouterr().out
    assert question.check(lambda: wrong, truth) is False
    out = capsys.readouterr().out
    assert "✗" in out and f"you predicted ({wrong})" in out
    assert question.check(stub, truth) is False
    assert "○ not done yet" in capsys.readouterr().out
