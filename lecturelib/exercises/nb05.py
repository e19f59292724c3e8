"""Exercises of notebook 05 (variational inference): `from lecturelib.exercises import nb05 as ex`.

5.1 naive_log_marginal: the naive Monte Carlo estimate log 1/n Σ_i p_theta(x|z_i), z_i ~ p(z).
5.2 kl_to_prior: the KL(N(mu, diag σ²) || N(0, I)), derived on paper, then coded (logvar = log σ²).
5.3 elbo: the closed-form ELBO of the linear-Gaussian model and its two terms, as a dict.
5.4 score_function_gradient: the score-function (REINFORCE) estimate of ∇_phi E_q[f(z)], with a baseline.
5.5 (question) does a baseline make the score function as precise as the reparameterization gradient?
5.6 (question) how the variance ratio score function (with a baseline) / reparameterization grows with d.

Each checker runs the student's function, as the notebook calls it, on several small float64 cases against an
independent reference (the exact log p(x) of the model, torch.distributions' KL and log-densities, the identity
log p(x) = ELBO + KL(q || p(z|x)), autograd of torch.distributions' log q), with fixed generators.
"""

from __future__ import annotations

from . import Exercise, Question
from .nb05_densities import (  # noqa: F401 - F64, _identity_elbo, _naive_case stay reachable as nb05.<name>
    F64,
    _identity_elbo,
    _naive_case,
    check_elbo,
    check_kl_to_prior,
    check_naive_log_marginal,
    reference_elbo,
    reference_kl_to_prior,
    reference_naive_log_marginal,
)
from .nb05_score import check_score_function_gradient, reference_score_function_gradient

# ------------------------------------------------------------------------------------------------------------------
# 5.1 the naive Monte Carlo estimate of log p(x)
# ------------------------------------------------------------------------------------------------------------------
naive_log_marginal = Exercise(
    "5.1", "the naive Monte Carlo estimate of log p(x)", check_naive_log_marginal, reference_naive_log_marginal
)


# ------------------------------------------------------------------------------------------------------------------
# 5.2 the KL term KL(q_phi(z) || p(z)), derived on paper
# ------------------------------------------------------------------------------------------------------------------
kl_to_prior = Exercise("5.2", "the KL to the prior, derived and coded", check_kl_to_prior, reference_kl_to_prior)


# ------------------------------------------------------------------------------------------------------------------
# 5.3 the ELBO of the linear-Gaussian model
# ------------------------------------------------------------------------------------------------------------------
elbo = Exercise("5.3", "the ELBO of the linear-Gaussian model", check_elbo, reference_elbo)


# ------------------------------------------------------------------------------------------------------------------
# 5.4 the score-function (REINFORCE) gradient with a baseline
# ------------------------------------------------------------------------------------------------------------------
score_function_gradient = Exercise(
    "5.4",
    "the score-function gradient with a baseline",
    check_score_function_gradient,
    reference_score_function_gradient,
)


# ------------------------------------------------------------------------------------------------------------------
# 5.5 and 5.6: predict, then run
# ------------------------------------------------------------------------------------------------------------------
baseline_question = Question(
    "5.5",
    "does a baseline make the score function as precise as reparameterization?",
    choices={
        "a": "yes: within a factor 2 of the reparameterization gradient's variance",
        "b": "no: still more than twice the reparameterization gradient's variance",
    },
)

growth_question = Question(
    "5.6",
    "how does the variance ratio score function (with a baseline) / reparameterization grow from d = 2 to 32?",
    choices={
        "a": "less than 2-fold: about the same",
        "b": "2- to 30-fold: roughly in proportion to d, or slower",
        "c": "more than 30-fold: faster than d (like d² it would be 256-fold)",
    },
)


def growth_answer(factor: float) -> str:
    """The choice of question 5.6 that a measured growth factor of the variance ratio, d = 2 to d = 32, supports."""
    return "a" if factor < 2 else "b" if factor <= 30 else "c"
