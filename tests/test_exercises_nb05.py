"""Notebook 05's exercises: each checker accepts the notebook's own solution and other correct variants, names
typical mistakes (run as the check cells run them: `ex.<name>.check(fn)`, then the printed line and `.passed`),
and reports a missing answer as not done; the questions compare a prediction with the measured answer."""

import math

import pytest
import torch
from notebook_source import not_implemented, solution

from lecturelib import lvm
from lecturelib.exercises import nb05 as ex
from lecturelib.objectives import kl_to_standard_normal

F64 = torch.float64


def verdict(exercise, answer, capsys) -> tuple[bool, str]:
    used = exercise.check(answer)
    out = capsys.readouterr().out
    assert (used is answer) == exercise.passed, "check returns the answer exactly when it passed"
    return exercise.passed, out


def assert_names(exercise, wrong, hint, capsys):
    passed, out = verdict(exercise, wrong, capsys)
    assert not passed and "✗ not yet right" in out and hint in out, out


# ---- 5.1 the naive Monte Carlo estimate -----------------------------------------------------------------------------
def naive_with(slip: str):
    def naive_log_marginal(model, x, n):
        if slip == "reseed":
            torch.manual_seed(0)
        z = torch.randn(n, model.latent_dim, dtype=F64)
        if slip == "uniform":
            z = torch.rand(n, model.latent_dim, dtype=F64) * 2 - 1
        log_lik = model.log_likelihood(x, z)  # (n,)
        if slip == "mean-of-log":
            return log_lik.mean()
        if slip == "no-log-n":
            return torch.logsumexp(log_lik, 0)
        if slip == "exp-then-log":
            return log_lik.exp().mean().log()
        if slip == "per-sample":
            return log_lik
        if slip == "in-place":
            x.add_(0.1)
        return torch.logsumexp(log_lik, 0) - math.log(n)

    return naive_log_marginal


def test_naive_accepts_the_notebook_solution_and_variants(capsys):
    for answer in [
        solution("05", "naive_log_marginal", {"lvm": lvm}),
        naive_with("right"),
        lambda model, x, n: model.log_likelihood(x, torch.randn(n, model.latent_dim)).logsumexp(0) - math.log(n),
        lambda model, x, n: (
            float(torch.logsumexp(model.log_likelihood(x, torch.randn(n, 1, model.latent_dim)), 0)[0]) - math.log(n)
        ),
    ]:
        passed, out = verdict(ex.naive_log_marginal, answer, capsys)
        assert passed, out


@pytest.mark.parametrize(
    "slip, hint",
    [
        ("mean-of-log", "mean of log p(x|z_i)"),
        ("no-log-n", "log p(x) + log n"),
        ("exp-then-log", "underflows to 0"),
        ("per-sample", "one per sample"),
        ("reseed", "reseeds"),
        ("uniform", "draw z_i from the prior"),
        ("in-place", "in place"),
    ],
)
def test_naive_names_the_mistake(slip, hint, capsys):
    assert_names(ex.naive_log_marginal, naive_with(slip), hint, capsys)


def test_naive_overflow_case_overflows_without_logsumexp():
    """The checker's second extreme case: exp(log p(x|z)) is inf in float64, yet log p(x) is finite."""
    model, x, _ = ex._naive_case(514, 1, 300, 0.01, 1e-3)
    log_lik = model.log_likelihood(x, torch.randn(1000, 1, dtype=F64))
    assert torch.isinf(log_lik.exp().mean()) and torch.isfinite(model.log_marginal(x))


def test_naive_reference_matches_the_exact_marginal():
    model, x, _ = ex._naive_case(3, 1, 2, 0.7)
    estimates = torch.stack([ex.reference_naive_log_marginal(model, x, 200_000) for _ in range(3)])
    torch.testing.assert_close(estimates, model.log_marginal(x).expand(3), atol=0.02, rtol=0)


def test_naive_not_done(capsys):
    passed, out = verdict(ex.naive_log_marginal, not_implemented, capsys)
    assert not passed and "○ not done yet" in out


# ---- 5.2 the KL to the prior ----------------------------------------------------------------------------------------
def kl_with(expression):
    return lambda mu, logvar: expression(mu, logvar, logvar.exp())


def test_kl_accepts_the_notebook_solution_and_variants(capsys):
    for answer in [
        solution("05", "kl_to_prior"),
        kl_to_standard_normal,
        kl_with(lambda mu, lv, var: -0.5 * (1 + lv - mu**2 - var).sum(-1)),  # Kingma & Welling's form
        lambda mu, logvar: torch.distributions.kl_divergence(
            torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), torch.distributions.Normal(0.0, 1.0)
        ).sum(-1),
    ]:
        passed, out = verdict(ex.kl_to_prior, answer, capsys)
        assert passed, out


def test_kl_reference_matches_torch_distributions():
    mu, logvar = torch.randn(4, 3, dtype=F64), torch.randn(4, 3, dtype=F64)
    q = torch.distributions.Independent(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(3, dtype=F64), 1.0), 1)
    torch.testing.assert_close(ex.reference_kl_to_prior(mu, logvar), torch.distributions.kl_divergence(q, p))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda mu, lv: 0.5 * (mu**2 + torch.exp(2 * lv) - 1 - 2 * lv).sum(-1), "logvar is log σ², not log σ"),
        (lambda mu, lv: 0.5 * (mu**2 + torch.exp(0.5 * lv) - 1 - lv).sum(-1), "variance σ² = exp(logvar)"),
        (lambda mu, lv: (mu**2 + lv.exp() - 1 - lv).sum(-1), "factor ½"),
        (lambda mu, lv: -0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1), "wrong sign"),
        (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 + lv).sum(-1), "sign of the log-variance term"),
        (lambda mu, lv: 0.5 * (lv.exp() - 1 - lv).sum(-1), "μ_j² term is missing"),
        (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(), "summed over the batch"),
        (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv), "sum the d terms"),
        (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - lv).sum(-1), "−1 in each term"),
        (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(-1).detach(), "not differentiable"),
        (lambda mu, lv: 0.5 * (mu**2 + lv.exp_() - 1 - lv).sum(-1), "in place"),
    ],
    ids=[
        "logvar-as-log-sigma", "sigma-for-variance", "no-half", "sign", "log-term-sign", "no-mu", "batch-sum",
        "per-dimension", "no-minus-one", "detached", "in-place",
    ],
)  # fmt: skip
def test_kl_names_the_mistake(wrong, hint, capsys):
    assert_names(ex.kl_to_prior, wrong, hint, capsys)


def test_kl_checks_more_than_one_dimension(capsys):
    """A KL right only for d = 3 (summing exactly three terms) is caught at d = 1 and d = 8."""
    wrong = lambda mu, lv: 0.5 * sum((mu**2 + lv.exp() - 1 - lv)[..., j] for j in range(min(3, mu.shape[-1])))  # noqa: E731
    passed, out = verdict(ex.kl_to_prior, wrong, capsys)
    assert not passed and "d = 8" in out, out


def test_kl_not_done(capsys):
    passed, out = verdict(ex.kl_to_prior, not_implemented, capsys)
    assert not passed and "○ not done yet" in out


# ---- 5.3 the ELBO -------------------------------------------------------------------------------------------------
def notebook_elbo():
    return solution("05", "elbo", {"lvm": lvm, "kl_to_prior": kl_to_standard_normal})


def test_elbo_accepts_the_notebook_solution(capsys):
    passed, out = verdict(ex.elbo, notebook_elbo(), capsys)
    assert passed, out


def test_elbo_reference_satisfies_the_identity():
    model = lvm.LinearGaussian.random(2, 5, sigma=0.6, generator=torch.Generator().manual_seed(0))
    x = model.sample(1)[0][0]
    mu, logvar = torch.tensor([0.3, -1.0], dtype=F64), torch.tensor([-0.5, 0.2], dtype=F64)
    identity, kl = ex._identity_elbo(model.W, model.b, model.sigma, x, mu, logvar)
    terms = ex.reference_elbo(model, x, mu, logvar)
    torch.testing.assert_close(terms["elbo"], identity)
    torch.testing.assert_close(terms["kl"], kl)


def elbo_with(*, two_pi=True, spread="var", kl_sign=-1.0, as_tensor=False):
    """The notebook's closed form with one slip."""

    def elbo(model, x, mu, logvar):
        p = model.W.shape[0]
        residual = x - (mu @ model.W.T + model.b)
        scale = {"var": logvar.exp(), "std": torch.exp(0.5 * logvar), "none": torch.zeros_like(logvar)}[spread]
        square = residual.pow(2).sum(-1) + (scale * model.W.pow(2).sum(0)).sum(-1)
        normaliser = p * ((math.log(2 * math.pi) if two_pi else 0.0) + math.log(model.sigma**2))
        log_px_z = -0.5 * (normaliser + square / model.sigma**2)
        kl = kl_to_standard_normal(mu, logvar)
        value = log_px_z + kl_sign * kl
        return value if as_tensor else {"elbo": value, "log_px_z": log_px_z, "kl": kl}

    return elbo


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (elbo_with(kl_sign=+1.0), "minus sign"),
        (elbo_with(two_pi=False), "log 2π"),
        (elbo_with(spread="std"), "σ_j² = exp(logvar)"),
        (elbo_with(spread="none"), "spread"),
        (elbo_with(as_tensor=True), "should return the dict"),
        (lambda *a: {k: v.sum() for k, v in elbo_with()(*a).items()}, "one value per example"),
    ],
    ids=["kl-sign", "no-2pi", "std-as-variance", "no-spread", "tensor", "batch-sum"],
)
def test_elbo_names_the_mistake(wrong, hint, capsys):
    assert_names(ex.elbo, wrong, hint, capsys)


def test_elbo_not_done(capsys):
    passed, out = verdict(ex.elbo, not_implemented, capsys)
    assert not passed and "○ not done yet" in out


# ---- 5.4 the score-function gradient --------------------------------------------------------------------------------
def test_score_function_accepts_the_notebook_solution_and_autograd(capsys):
    def by_autograd(f, mu, logvar, eps, baseline=0.0):
        phi = [mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)]
        z = (mu + torch.exp(0.5 * logvar) * eps).detach()
        log_q = torch.distributions.Normal(phi[0], torch.exp(0.5 * phi[1])).log_prob(z).sum(-1)
        return torch.autograd.grad(((f(z) - baseline).detach() * log_q).mean(), phi)

    for answer in [solution("05", "score_function_gradient"), by_autograd]:
        passed, out = verdict(ex.score_function_gradient, answer, capsys)
        assert passed, out


def test_score_function_reference_is_unbiased_for_the_elbo():
    """The reference, with f = log p(x, z) - log q(z) and φ held fixed in f, averages to autograd's ∇_φ ELBO."""
    g = torch.Generator().manual_seed(1)
    model = lvm.LinearGaussian.random(2, 4, sigma=0.7, generator=g)
    x = model.sample(1, generator=g)[0][0]
    mu, logvar = torch.tensor([0.2, -0.4], dtype=F64), torch.tensor([-0.6, 0.2], dtype=F64)
    phi = [mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)]
    exact = torch.cat(torch.autograd.grad(lvm.elbo(model, x, *phi)["elbo"], phi))
    f = lambda z: model.log_joint(x, z) - torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)  # noqa: E731
    eps = torch.randn(400_000, 2, generator=g, dtype=F64)
    estimate = torch.cat(ex.reference_score_function_gradient(f, mu, logvar, eps, baseline=-5.0))
    assert torch.allclose(estimate, exact, atol=0.05), (estimate, exact)


def score_with(slip):
    def estimator(f, mu, logvar, eps, baseline=0.0):
        sigma = torch.exp(0.5 * logvar)
        weight = (f(mu + sigma * eps) - (0.0 if slip == "no-baseline" else baseline)).unsqueeze(-1)
        grad_mu, grad_logvar = weight * eps / sigma, weight * 0.5 * (eps**2 - 1)
        if slip == "sign":
            grad_mu, grad_logvar = -grad_mu, -grad_logvar
        if slip == "log-sigma":
            grad_logvar = weight * (eps**2 - 1)
        if slip == "no-minus-one":
            grad_logvar = weight * 0.5 * eps**2
        if slip == "no-divide":
            grad_mu = weight * eps
        if slip == "fresh-noise":
            grad_mu = weight * torch.randn_like(eps) / sigma
        if slip == "sum":
            return grad_mu.sum(0), grad_logvar.sum(0)
        return grad_mu.mean(0), grad_logvar.mean(0)

    return estimator


@pytest.mark.parametrize(
    "slip, hint",
    [
        ("no-baseline", "the baseline is ignored"),
        ("sign", "sign of the score"),
        ("log-sigma", "gradient wrt log σ"),
        ("no-minus-one", "the −1"),
        ("no-divide", "divide ε by σ"),
        ("fresh-noise", "use the eps you are given"),
        ("sum", "summed over the n samples"),
    ],
)
def test_score_function_names_the_mistake(slip, hint, capsys):
    assert_names(ex.score_function_gradient, score_with(slip), hint, capsys)


def test_score_function_not_done(capsys):
    passed, out = verdict(ex.score_function_gradient, not_implemented, capsys)
    assert not passed and "○ not done yet" in out


def test_checkers_leave_the_notebooks_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for exercise in (ex.naive_log_marginal, ex.score_function_gradient, ex.elbo):
        exercise.check(exercise.reference)
    assert torch.equal(torch.rand(3), expected)


def test_a_crashing_answer_never_raises(capsys):
    for exercise in (ex.naive_log_marginal, ex.kl_to_prior, ex.elbo, ex.score_function_gradient):
        passed, out = verdict(exercise, lambda *args: undefined_name, capsys)  # noqa: F821
        assert not passed and "NameError" in out


# ---- 5.5 and 5.6: predict, then run -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question, name, truth, wrong",
    [
        (ex.baseline_question, "predict_baseline", "b", "a"),
        (ex.growth_question, "predict_growth", "b", "c"),
    ],
)
def test_questions_compare_the_prediction_with_the_measurement(question, name, truth, wrong, capsys):
    question.check(solution("05", name), truth)
    assert question.passed and "✓ correct" in capsys.readouterr().out
    question.check(lambda: wrong, truth)
    assert not question.passed and "✗ not yet right" in capsys.readouterr().out
    question.check(not_implemented, truth)
    assert not question.passed and "○ not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("factor, answer", [(1.3, "a"), (2.5, "b"), (16.0, "b"), (30.0, "b"), (256.0, "c")])
def test_growth_answer_reads_the_growth_factor(factor, answer):
    assert ex.growth_answer(factor) == answer
