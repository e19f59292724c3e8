"""Notebook 05's exercises: each checker accepts the notebook's own solution, names typical mistakes, and reports a
missing answer as not done; the questions compare a prediction with the measured answer."""

import math

import pytest
import torch
from notebook_source import not_implemented, solution

from lecturelib import lvm
from lecturelib.exercises import nb05 as ex


def feedback(exercise, answer, capsys) -> str:
    exercise.check(answer)
    return capsys.readouterr().out


# ---- 5.1 the KL term ----------------------------------------------------------------------------------------------
def test_kl_accepts_the_notebook_solution(capsys):
    kl_to_prior = solution("05", "kl_to_prior")
    assert ex.kl_to_prior.check(kl_to_prior) is kl_to_prior
    assert "✓ correct" in capsys.readouterr().out


def test_kl_reference_matches_torch_distributions():
    m, log_s = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    q = torch.distributions.Independent(torch.distributions.Normal(m, log_s.exp()), 1)
    p = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(3, dtype=torch.float64), 1.0), 1)
    assert torch.allclose(ex.reference_kl_to_prior(m, log_s), torch.distributions.kl_divergence(q, p))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda m, log_s: 0.5 * (m**2 + log_s.exp() - 1 - log_s).sum(-1), "log_s is log s"),
        (lambda m, log_s: (m**2 + torch.exp(2 * log_s) - 1 - 2 * log_s).sum(-1), "factor ½"),
        (lambda m, log_s: -0.5 * (m**2 + torch.exp(2 * log_s) - 1 - 2 * log_s).sum(-1), "wrong sign"),
        (lambda m, log_s: 0.5 * (m**2 + torch.exp(2 * log_s) - 1 - 2 * log_s).sum(), "summed over the batch"),
        (lambda m, log_s: 0.5 * (m**2 + torch.exp(2 * log_s) - 1 - 2 * log_s), "sum the d terms"),
        (lambda m, log_s: 0.5 * (m**2 + torch.exp(2 * log_s) - 2 * log_s).sum(-1), "−1 in each term"),
        (lambda m, log_s: 0.5 * (m**2 + torch.exp(2 * log_s) - 1 - 2 * log_s).sum(-1).detach(), "not differentiable"),
    ],
    ids=["log-s-as-logvar", "no-half", "sign", "batch-sum", "per-dimension", "no-minus-one", "detached"],
)
def test_kl_names_the_mistake(wrong, hint, capsys):
    assert ex.kl_to_prior.check(wrong) is ex.kl_to_prior.reference
    out = capsys.readouterr().out
    assert "✗ not yet right" in out and hint in out, out


def test_kl_not_done(capsys):
    assert ex.kl_to_prior.check(not_implemented) is ex.kl_to_prior.reference
    assert "○ not done yet" in capsys.readouterr().out


# ---- 5.2 the ELBO -------------------------------------------------------------------------------------------------
def notebook_elbo():
    return solution("05", "elbo", {"lvm": lvm, "kl_to_prior": lvm.kl_to_prior})


def test_elbo_accepts_the_notebook_solution(capsys):
    elbo = notebook_elbo()
    assert ex.elbo.check(elbo) is elbo
    assert "✓ correct" in capsys.readouterr().out


def test_elbo_reference_satisfies_the_identity():
    model = lvm.LinearGaussian.random(2, 5, sigma=0.6, generator=torch.Generator().manual_seed(0))
    x = model.sample(1)[0][0]
    m, log_s = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([-0.5, 0.2], dtype=torch.float64)
    identity = ex._identity_elbo(model.W, model.b, model.sigma, x, m, log_s)
    assert torch.allclose(ex.reference_elbo(model, x, m, log_s), identity)


def elbo_with(*, two_pi=True, spread="s2", kl_sign=-1.0):
    """The notebook's closed form with one slip."""

    def elbo(model, x, m, log_s):
        p = model.W.shape[0]
        residual = x - (m @ model.W.T + model.b)
        scale = {"s2": torch.exp(2 * log_s), "s": torch.exp(log_s), "none": torch.zeros_like(log_s)}[spread]
        square = residual.pow(2).sum(-1) + (scale * model.W.pow(2).sum(0)).sum(-1)
        normaliser = p * ((math.log(2 * math.pi) if two_pi else 0.0) + math.log(model.sigma**2))
        return -0.5 * (normaliser + square / model.sigma**2) + kl_sign * lvm.kl_to_prior(m, log_s)

    return elbo


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (elbo_with(kl_sign=+1.0), "minus sign"),
        (elbo_with(two_pi=False), "log 2π"),
        (elbo_with(spread="s"), "variance s_j² = exp(2 log_s)"),
        (elbo_with(spread="none"), "spread term"),
        (lambda *args: elbo_with()(*args).sum(), "one value per example"),
    ],
    ids=["kl-sign", "no-2pi", "s-as-variance", "no-spread", "batch-sum"],
)
def test_elbo_names_the_mistake(wrong, hint, capsys):
    assert ex.elbo.check(wrong) is ex.elbo.reference
    out = capsys.readouterr().out
    assert "✗ not yet right" in out and hint in out, out


def test_elbo_not_done(capsys):
    assert ex.elbo.check(not_implemented) is ex.elbo.reference
    assert "○ not done yet" in capsys.readouterr().out


# ---- 5.3 the score-function gradient --------------------------------------------------------------------------------
def test_score_function_accepts_the_notebook_solution(capsys):
    estimator = solution("05", "score_function_gradient")
    assert ex.score_function_gradient.check(estimator) is estimator
    assert "✓ correct" in capsys.readouterr().out


def test_score_function_reference_is_unbiased_for_the_elbo():
    """The reference, with f = log p(x, z) - log q(z) and φ held fixed in f, averages to autograd's ∇_φ ELBO."""
    g = torch.Generator().manual_seed(1)
    model = lvm.LinearGaussian.random(2, 4, sigma=0.7, generator=g)
    x = model.sample(1, generator=g)[0][0]
    m, log_s = torch.tensor([0.2, -0.4], dtype=torch.float64), torch.tensor([-0.3, 0.1], dtype=torch.float64)
    phi = [m.clone().requires_grad_(True), log_s.clone().requires_grad_(True)]
    exact = torch.cat(torch.autograd.grad(lvm.elbo(model, x, *phi), phi))
    f = lambda z: model.log_joint(x, z) - lvm.log_q(z, m, log_s)  # noqa: E731
    eps = torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    estimate = torch.cat(ex.reference_score_function_gradient(f, m, log_s, eps, baseline=-5.0))
    assert torch.allclose(estimate, exact, atol=0.05), (estimate, exact)


def score_with(slip):
    def estimator(f, m, log_s, eps, baseline=0.0):
        s = torch.exp(log_s)
        weight = (f(m + s * eps) - (0.0 if slip == "no-baseline" else baseline)).unsqueeze(-1)
        grad_m, grad_log_s = weight * eps / s, weight * (eps**2 - 1)
        if slip == "sign":
            grad_m, grad_log_s = -grad_m, -grad_log_s
        if slip == "no-minus-one":
            grad_log_s = weight * eps**2
        if slip == "sum":
            return grad_m.sum(0), grad_log_s.sum(0)
        return grad_m.mean(0), grad_log_s.mean(0)

    return estimator


@pytest.mark.parametrize(
    "slip, hint",
    [
        ("no-baseline", "the baseline is ignored"),
        ("sign", "sign of the score"),
        ("no-minus-one", "the −1"),
        ("sum", "summed over the n samples"),
    ],
)
def test_score_function_names_the_mistake(slip, hint, capsys):
    assert ex.score_function_gradient.check(score_with(slip)) is ex.score_function_gradient.reference
    out = capsys.readouterr().out
    assert "✗ not yet right" in out and hint in out, out


def test_score_function_not_done(capsys):
    assert ex.score_function_gradient.check(not_implemented) is ex.score_function_gradient.reference
    assert "○ not done yet" in capsys.readouterr().out


def test_checkers_leave_the_notebooks_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.score_function_gradient.checker(ex.reference_score_function_gradient)
    ex.elbo.checker(ex.reference_elbo)
    assert torch.equal(torch.rand(3), expected)


# ---- 5.4 and 5.5: predict, then run -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question, name, truth, wrong",
    [
        (ex.baseline_question, "predict_baseline", "b", "a"),
        (ex.growth_question, "predict_growth", "b", "c"),
    ],
)
def test_questions_compare_the_prediction_with_the_measurement(question, name, truth, wrong, capsys):
    predict = solution("05", name)
    assert question.check(predict, truth) is True
    assert "✓ correct" in capsys.readouterr().out
    assert question.check(lambda: wrong, truth) is False
    assert "✗ not yet right" in capsys.readouterr().out
    assert question.check(not_implemented, truth) is False
    assert "○ not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("factor, answer", [(1.3, "a"), (2.5, "b"), (16.0, "b"), (30.0, "b"), (256.0, "c")])
def test_growth_answer_reads_the_growth_factor(factor, answer):
    assert ex.growth_answer(factor) == answer
