"""Notebook 04's exercises: the checker accepts the notebook's own solution, names typical mistakes, and reports an
unfinished exercise as not done; the questions compare a prediction with what the notebook measured."""

import pytest
import torch
from notebook_source import not_implemented, solution

from lecturelib.exercises import STATUS
from lecturelib.exercises import nb04 as ex

D = torch.distributions


def feedback(exercise, answer, capsys):
    """(what check() returned, the feedback line it printed)."""
    returned = exercise.check(answer)
    return returned, capsys.readouterr().out.strip()


def cholesky(S):
    return torch.linalg.cholesky(S)


# ------------------------------------------------------------------------------------------------------------------
# 4.2 fit_gaussian
# ------------------------------------------------------------------------------------------------------------------
def test_fit_gaussian_accepts_the_notebook_solution_and_torch_cov(capsys):
    mine = solution("04", "fit_gaussian")
    returned, line = feedback(ex.fit_gaussian, mine, capsys)
    assert returned is mine and line.startswith("Exercise 4.2") and STATUS["correct"] in line
    unbiased = lambda z: (z.mean(0), torch.cov(z.T))  # noqa: E731
    assert ex.fit_gaussian.check(unbiased) is unbiased


def test_fit_gaussian_is_the_maximum_likelihood_fit():
    """No other Gaussian gives the data a higher mean log-likelihood than the reference's (μ̂, Σ̂)."""
    torch.manual_seed(1)
    z = D.MultivariateNormal(ex.MU, ex.SIGMA).sample((300,))
    mu, Sigma = ex.reference_fit_gaussian(z)
    best = D.MultivariateNormal(mu, Sigma).log_prob(z).mean()
    for scale in (0.9, 1.1):
        assert D.MultivariateNormal(mu, Sigma * scale).log_prob(z).mean() < best
    assert D.MultivariateNormal(mu + 0.05, Sigma).log_prob(z).mean() < best


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda z: (z.mean(0), torch.cov(z)), "torch.cov(z.T)"),
        (lambda z: (z.mean(0), z.T @ z / len(z)), "forgot to centre"),
        (lambda z: (z.mean(0), torch.diag(z.var(0))), "only the variances"),
        (lambda z: (z.mean(1), torch.cov(z.T)), "z.mean(0)"),
        (lambda z: (z.mean(0), (z - z.mean(0)).T @ (z - z.mean(0))), "divide the sum of outer products by N"),
        (lambda z: torch.cov(z.T), "return a pair (mu, Sigma)"),
    ],
)
def test_fit_gaussian_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.fit_gaussian, wrong, capsys)
    assert returned is ex.reference_fit_gaussian
    assert STATUS["wrong"] in line and hint in line, line


def test_fit_gaussian_not_done(capsys):
    returned, line = feedback(ex.fit_gaussian, not_implemented, capsys)
    assert returned is ex.reference_fit_gaussian and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# 4.3 sample_gaussian
# ------------------------------------------------------------------------------------------------------------------
def test_sample_gaussian_accepts_the_notebook_solution_and_torch_distributions(capsys):
    mine = solution("04", "sample_gaussian")
    returned, line = feedback(ex.sample_gaussian, mine, capsys)
    assert returned is mine and line.startswith("Exercise 4.3") and STATUS["correct"] in line
    library = lambda mu, S, n: D.MultivariateNormal(mu, S).sample((n,))  # noqa: E731
    assert ex.sample_gaussian.check(library) is library


def test_sample_gaussian_reference_agrees_with_the_notebook_draw_for_draw():
    mine = solution("04", "sample_gaussian")
    mu, S = ex.MU.float(), ex.SIGMA.float()
    torch.manual_seed(5)
    a = mine(mu, S, 7)
    torch.manual_seed(5)
    assert torch.equal(a, ex.reference_sample_gaussian(mu, S, 7))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda mu, S, n: mu + torch.randn(n, len(mu)) @ S.T, "multiplied ε by Σ itself"),
        (lambda mu, S, n: mu + torch.randn(n, len(mu)) @ cholesky(S), "used Lᵀ in place of L"),
        (lambda mu, S, n: torch.randn(n, len(mu)) @ cholesky(S).T, "forgot to add μ"),
        (lambda mu, S, n: mu + torch.randn(n, len(mu)) * S.diagonal().sqrt(), "only the variances"),
        (lambda mu, S, n: (mu + torch.randn(n, len(mu)) @ cholesky(S).T).T, "(d, n)"),
        (lambda mu, S, n: (mu + torch.randn(1, len(mu)) @ cholesky(S).T).expand(n, -1), "fresh ε for each sample"),
        (
            lambda mu, S, n: mu + ((torch.rand(n, len(mu)) - 0.5) * 12**0.5) @ cholesky(S).T,
            "torch.randn, not torch.rand",
        ),
    ],
)
def test_sample_gaussian_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.sample_gaussian, wrong, capsys)
    assert returned is ex.reference_sample_gaussian
    assert STATUS["wrong"] in line and hint in line, line


def test_sample_gaussian_not_done(capsys):
    returned, line = feedback(ex.sample_gaussian, not_implemented, capsys)
    assert returned is ex.reference_sample_gaussian and STATUS["not done"] in line


def test_checkers_do_not_move_the_notebooks_random_stream():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.sample_gaussian.check(solution("04", "sample_gaussian"))
    ex.sample_mixture.check(solution("04", "sample_mixture"))
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------------------------------------------------------
# 4.4 sample_mixture
# ------------------------------------------------------------------------------------------------------------------
def _mixture(weights, means, covs, n, scale=lambda L: L):
    k = torch.multinomial(weights, n, replacement=True)
    L = scale(torch.linalg.cholesky(covs))
    return means[k] + (L[k] @ torch.randn(n, means.shape[1], 1))[:, :, 0]


def test_sample_mixture_accepts_the_notebook_solution_and_torch_distributions(capsys):
    mine = solution("04", "sample_mixture")
    returned, line = feedback(ex.sample_mixture, mine, capsys)
    assert returned is mine and line.startswith("Exercise 4.4") and STATUS["correct"] in line
    library = lambda w, m, c, n: D.MixtureSameFamily(D.Categorical(w), D.MultivariateNormal(m, c)).sample((n,))  # noqa: E731
    assert ex.sample_mixture.check(library) is library


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda w, m, c, n: _mixture(torch.ones_like(w), m, c, n), "equal shares"),
        (lambda w, m, c, n: _mixture(torch.tensor([1.0, 0.0, 0.0]), m, c, n), "all samples come from one component"),
        (lambda w, m, c, n: w @ m + torch.randn(n, m.shape[1]), "not from a blend of the means"),
        (lambda w, m, c, n: m[torch.multinomial(w, n)], "replacement=True"),
        (lambda w, m, c, n: _mixture(w, m, c, n, scale=lambda L: L.transpose(1, 2)), "used Lᵀ in place of L"),
        (lambda w, m, c, n: _mixture(w, m, c, n, scale=lambda L: L @ L.transpose(1, 2)), "multiplied ε by Σ itself"),
    ],
)
def test_sample_mixture_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.sample_mixture, wrong, capsys)
    assert returned is ex.reference_sample_mixture
    assert STATUS["wrong"] in line and hint in line, line


def test_sample_mixture_not_done(capsys):
    returned, line = feedback(ex.sample_mixture, not_implemented, capsys)
    assert returned is ex.reference_sample_mixture and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# questions 4.1 and 4.5
# ------------------------------------------------------------------------------------------------------------------
def test_fd_question(capsys):
    assert [ex.fd_choice(r) for r in (0.8, 1.3, 2.5)] == ["a", "b", "c"]
    predict = solution("04", "predict_fd")
    q = ex.question_diag_vs_recon
    q.check(predict, ex.fd_choice(3.1))
    assert q.passed and STATUS["correct"] in capsys.readouterr().out
    q.check(lambda: "a", ex.fd_choice(3.1))
    assert not q.passed and STATUS["wrong"] in capsys.readouterr().out
    q.check(not_implemented, "c")
    assert not q.passed and STATUS["not done"] in capsys.readouterr().out
    q.check(lambda: c, "c")  # noqa: F821 - a forgotten quote is said, not raised
    assert not q.passed and "NameError" in capsys.readouterr().out


def test_best_loglik_question(capsys):
    loglik = {"diagonal Gaussian": -30.0, "full-covariance Gaussian": -20.0, "Gaussian mixture, k=10": -15.0}
    assert ex.best_loglik_choice(loglik) == "c"
    assert ex.best_loglik_choice({**loglik, "full-covariance Gaussian": -10.0}) == "b"
    predict = solution("04", "predict_best_density")
    ex.best_loglik.check(predict, ex.best_loglik_choice(loglik))
    assert ex.best_loglik.passed and STATUS["correct"] in capsys.readouterr().out
    ex.best_loglik.check(lambda: "b", ex.best_loglik_choice(loglik))
    assert not ex.best_loglik.passed
    assert "you predicted (b) the full-covariance Gaussian" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# blind spots by kind: inputs changed in place, seeds set inside a sampler, a second configuration
# ------------------------------------------------------------------------------------------------------------------
def _reseeded(sampler):
    def wrapped(*args):
        torch.manual_seed(0)
        return sampler(*args)

    return wrapped


@pytest.mark.parametrize(
    "exercise, wrong, hint",
    [
        (ex.fit_gaussian, lambda z: (z.mean(0), (z.sub_(z.mean(0))).T @ z / len(z)), "in place"),
        (ex.sample_gaussian, _reseeded(ex.reference_sample_gaussian), "reseeds"),
        (ex.sample_mixture, _reseeded(ex.reference_sample_mixture), "reseeds"),
        (ex.sample_mixture, lambda w, m, c, n: ex.reference_sample_mixture(w.mul_(2), m, c, n), "in place"),
        (ex.fit_gaussian, lambda z: (z.mean(0), (z - z.mean(0)).T @ (z - z.mean(0)) / 400), "covariance times"),
    ],
)
def test_checkers_name_side_effects_and_reseeding(exercise, wrong, hint, capsys):
    returned, line = feedback(exercise, wrong, capsys)
    assert returned is exercise.reference and not exercise.passed
    assert STATUS["wrong"] in line and hint in line, line


def test_scaffolded_sample_mixture_keeps_its_structure_outside_the_solution():
    """Exercise 4.4 gives the Cholesky factors, ε and the return; the student writes the draw of k and of z."""
    import json

    from notebook_source import notebook_path

    (cell,) = [
        "".join(c["source"])
        for c in json.loads(notebook_path("04").read_text())["cells"]
        if "def sample_mixture(" in "".join(c["source"])
    ]
    outside = cell.split("### BEGIN SOLUTION")[0] + cell.split("### END SOLUTION")[-1]
    assert "torch.linalg.cholesky(covs)" in outside and "return z" in outside
    assert cell.count("### BEGIN SOLUTION") == 2
