"""Notebook 07's exercise checkers: each accepts the notebook's own solution, names the usual mistakes, and says
"not done" for the student edition's stub."""

import math

import pytest
import torch
import torch.nn.functional as F
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


# ---------------------------------------------------------------- 7.1 beta_vae_loss
def notebook_beta_vae_loss():
    return solution("07", "beta_vae_loss", {"objectives": objectives})


def loss_from(combine, reduce=torch.mean):
    """A β-VAE loss built on objectives.elbo_terms, with the terms combined by `combine(recon, kl, beta)`."""

    def beta_vae_loss(model, x, beta):
        terms = objectives.elbo_terms(model, x)
        recon, kl = reduce(-terms["log_px_z"]), reduce(terms["kl"])
        return {"loss": combine(recon, kl, beta), "recon_nll": recon, "kl": kl}

    return beta_vae_loss


def test_beta_vae_loss_accepts_the_notebook_solution(capsys):
    assert "✓ correct" in feedback(ex.beta_vae_loss, notebook_beta_vae_loss(), capsys)
    assert ex.beta_vae_loss.passed


def test_beta_vae_loss_accepts_the_terms_written_out(capsys):
    """An alternative: the reparameterization, the Bernoulli log-likelihood and the closed-form KL by hand."""

    def by_hand(model, x, beta):
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, dtype=torch.float64).float()
        recon = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="none").sum((1, 2, 3))
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        return {"loss": (recon + beta * kl).mean(), "recon_nll": recon.mean(), "kl": kl.mean()}

    assert "✓ correct" in feedback(ex.beta_vae_loss, by_hand, capsys)


def test_beta_vae_loss_reference_is_the_elbo_at_beta_one():
    model, x = ex._stand_in_vae(deterministic=True), torch.rand(4, 1, 28, 28)
    terms = ex.reference_beta_vae_loss(model, x, 1.0)
    torch.testing.assert_close(terms["loss"], -objectives.elbo_terms(model, x)["elbo"].mean(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "combine, named",
    [
        (lambda r, k, b: b * r + k, "β multiplies the reconstruction term"),
        (lambda r, k, b: b * (r + k), "β multiplies both terms"),
        (lambda r, k, b: r - b * k, "KL term has the wrong sign"),
        (lambda r, k, b: -r - b * k, "negate it"),
        (lambda r, k, b: r + k, "does not depend on β"),
        (lambda r, k, b: r / 784 + b * k, "per pixel"),
    ],
)
def test_beta_vae_loss_names_the_mistake(combine, named, capsys):
    line = feedback(ex.beta_vae_loss, loss_from(combine), capsys)
    assert "✗" in line and named in line
    assert not ex.beta_vae_loss.passed


def test_beta_vae_loss_names_a_sum_over_the_batch(capsys):
    line = feedback(ex.beta_vae_loss, loss_from(lambda r, k, b: r + b * k, reduce=torch.sum), capsys)
    assert "✗" in line and "summed over the batch" in line


def test_beta_vae_loss_names_terms_as_floats(capsys):
    def floats(model, x, beta):
        terms = objectives.beta_vae_loss(beta)(model, x)
        return {"loss": terms["loss"], "recon_nll": terms["recon_nll"].item(), "kl": float(terms["kl"].detach())}

    line = feedback(ex.beta_vae_loss, floats, capsys)
    assert "✗" in line and "not a tensor" in line and "item()" in line


def test_beta_vae_loss_names_a_loss_without_gradient(capsys):
    def no_grad(model, x, beta):
        with torch.no_grad():
            return objectives.beta_vae_loss(beta)(model, x)

    line = feedback(ex.beta_vae_loss, no_grad, capsys)
    assert "✗" in line and "no gradient" in line


def test_beta_vae_loss_names_reseeding_and_z_at_the_mean(capsys):
    def reseeds(model, x, beta):
        torch.manual_seed(0)
        return objectives.beta_vae_loss(beta)(model, x)

    def at_the_mean(model, x, beta):
        mu, logvar = model.encode(x)
        recon = F.binary_cross_entropy_with_logits(model.decode(mu), x, reduction="none").sum((1, 2, 3)).mean()
        kl = objectives.kl_to_standard_normal(mu, logvar).mean()
        return {"loss": recon + beta * kl, "recon_nll": recon, "kl": kl}

    line = feedback(ex.beta_vae_loss, reseeds, capsys)
    assert "✗" in line and "reseeds" in line
    line = feedback(ex.beta_vae_loss, at_the_mean, capsys)
    assert "✗" in line and "z = μ" in line


def test_beta_vae_loss_names_an_in_place_change_of_x(capsys):
    def binarizes_in_place(model, x, beta):
        x.round_()
        return objectives.beta_vae_loss(beta)(model, x)

    line = feedback(ex.beta_vae_loss, binarizes_in_place, capsys)
    assert "✗" in line and "in place" in line


def test_beta_vae_loss_not_done_and_never_raises(capsys):
    assert "○ not done yet" in feedback(ex.beta_vae_loss, stub, capsys)
    line = feedback(ex.beta_vae_loss, lambda model, x, beta: [1.0], capsys)
    assert "✗" in line and "dict" in line


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


def test_transfer_names_an_in_place_change(capsys):
    def normalises_in_place(cvae, x, y_from, y_to):
        x.div_(x.amax())
        return cvae.decode_mean(cvae.encode(x, y_from)[0], y_to)

    line = feedback(ex.transfer, normalises_in_place, capsys)
    assert "✗" in line and "in place" in line


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
        return torch.stack([objectives.elbo_terms(model, x)["elbo"] for _ in range(draws)]).mean(0)

    line = feedback(ex.anomaly_score, elbo, capsys)
    assert "✗" in line and "the ELBO itself" in line


def test_anomaly_score_names_per_pixel(capsys):
    def per_pixel(model, x, draws=8):
        return -torch.stack([objectives.elbo_terms(model, x)["elbo"] for _ in range(draws)]).mean(0) / 784

    line = feedback(ex.anomaly_score, per_pixel, capsys)
    assert "✗" in line and "per pixel" in line


def test_anomaly_score_names_a_missing_kl(capsys):
    def recon_only(model, x, draws=8):
        return -torch.stack([objectives.elbo_terms(model, x)["log_px_z"] for _ in range(draws)]).mean(0)

    line = feedback(ex.anomaly_score, recon_only, capsys)
    assert "✗" in line and "left out the KL term" in line


def test_anomaly_score_names_a_batch_mean(capsys):
    def batch_mean(model, x, draws=8):
        return -torch.stack([objectives.elbo_terms(model, x)["elbo"] for _ in range(draws)]).mean()

    line = feedback(ex.anomaly_score, batch_mean, capsys)
    assert "✗" in line and "one value per example" in line


def test_anomaly_score_names_ignored_draws(capsys):
    def one_draw(model, x, draws=8):
        return -objectives.elbo_terms(model, x)["elbo"]

    line = feedback(ex.anomaly_score, one_draw, capsys)
    assert "✗" in line and "`draws`" in line


def test_anomaly_score_names_a_sum_over_draws(capsys):
    def summed(model, x, draws=8):
        return -torch.stack([objectives.elbo_terms(model, x)["elbo"] for _ in range(draws)]).sum(0)

    line = feedback(ex.anomaly_score, summed, capsys)
    assert "✗" in line and "summed the ELBO over the draws" in line


def test_anomaly_score_names_log_mean_exp(capsys):
    """log-mean-exp has the right variance (it averages too) but the importance-weighted bound's mean."""

    def log_mean_exp(model, x, draws=8):
        elbos = torch.stack([objectives.elbo_terms(model, x)["elbo"] for _ in range(draws)])
        return -(torch.logsumexp(elbos, 0) - math.log(draws))

    line = feedback(ex.anomaly_score, log_mean_exp, capsys)
    assert "✗" in line and "log-mean-exp" in line and "plain mean" in line


def test_anomaly_score_accepts_the_draws_in_one_batch(capsys):
    def one_batch(model, x, draws=8):
        with torch.inference_mode():
            elbo = objectives.elbo_terms(model, x.repeat(draws, 1, 1, 1))["elbo"]  # (draws N,)
        return -elbo.view(draws, len(x)).mean(0)

    assert "✓ correct" in feedback(ex.anomaly_score, one_batch, capsys)


def test_anomaly_score_names_an_in_place_change(capsys):
    def clamps_in_place(model, x, draws=8):
        x.mul_(0.5)
        return -torch.stack([objectives.elbo_terms(model, x)["elbo"] for _ in range(draws)]).mean(0)

    line = feedback(ex.anomaly_score, clamps_in_place, capsys)
    assert "✗" in line and "in place" in line


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
    question.check(predict, truth)
    assert "✓ correct" in capsys.readouterr().out and question.passed
    question.check(lambda: wrong, truth)
    out = capsys.readouterr().out
    assert "✗" in out and f"you predicted ({wrong})" in out and not question.passed
    question.check(stub, truth)
    assert "○ not done yet" in capsys.readouterr().out and not question.passed


def test_question_survives_a_forgotten_quote(capsys):
    """`return b` without quotes raises NameError in predict(): the check cell prints and goes on (no training
    shares that cell)."""

    def forgot_quotes():
        return b  # noqa: F821

    ex.question_transfer_d20.check(forgot_quotes, "b")
    out = capsys.readouterr().out
    assert "NameError" in out and not ex.question_transfer_d20.passed
