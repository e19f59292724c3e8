"""Exercises of notebook 07 (β-VAE, conditional VAE, anomaly detection): `from lecturelib.exercises import nb07 as ex`.

7.1 beta_vae_loss: -E_q[log p(x|z)] + β KL(q(z|x) || p(z)) as the loss dict train.fit takes (the β sweep trains on it).
7.2 transfer: conditional-VAE style transfer: encode x with its own label, decode the same z with another.
7.3 (question) with room to spare in z (d = 20), does the classifier still read the new label in the transfers?
7.4 anomaly_score: s(x) = -ELBO(x), one value per image, averaged over a few ε.
7.5 (question) which kind of anomaly is hardest to tell from real digits?

Each checker runs the student's function on small cases against an independent reference (a small random stand-in
model, the Bernoulli log-likelihood written out, torch.distributions' KL), calls it as the notebook does, and names
the usual mistakes; Exercise.check runs it on a forked random generator, so that the notebook's own random draws do
not depend on the student's code.
"""

from __future__ import annotations

import math

import torch

from lecturelib import models, objectives

from . import Exercise, Hint, Question, as_tensor, call, compare, loss_terms, reseeds

D = torch.distributions


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), atol=tol, rtol=tol))


# ------------------------------------------------------------------------------------------------------------------
# 7.1 the β-VAE loss
# ------------------------------------------------------------------------------------------------------------------
def reference_beta_vae_loss(model, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """The β-VAE loss for `train.fit` (Higgins et al. 2017): -E_q[log p(x|z)] + β KL(q(z|x) || p(z)), per image, mean
    over the batch; the tested library version, `objectives.beta_vae_loss(beta)`, called with the notebook's
    signature. Returns {"loss", "recon_nll", "kl"}, tensors of shape ()."""
    return objectives.beta_vae_loss(float(beta))(model, x)


BETAS_CHECKED = (0.5, 1.0, 4.0)  # β = 1 is the negative ELBO
LOSS_TERMS = ("loss", "recon_nll", "kl")


def _loss_terms(f, model, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """Call the student's loss as train.fit does (x checked for in-place changes) and check fit's contract: a dict
    of 0-dim tensors, the loss with a gradient. Returns the terms, detached, in float64."""
    what = f"beta_vae_loss(model, x, beta={beta:g})"
    terms = loss_terms(call(f, model, x, beta, what=what, may_change=("model",)), LOSS_TERMS, what)
    return {name: terms[name].detach().double() for name in LOSS_TERMS}


def _loss_mistake(got: dict[float, float], recon: float, kl: float, n: int) -> str | None:
    """Name the usual slip when the losses `got` at the β's checked match one of them (recon, kl: batch means)."""
    slips = {
        "the KL term has the wrong sign: loss = -E_q[log p(x|z)] + β KL": lambda b: recon - b * kl,
        "the reconstruction term has the wrong sign: -E_q[log p(x|z)] is a positive number of nats": lambda b: (
            -recon + b * kl
        ),
        "that is the β-weighted ELBO itself, to be maximised: train.fit minimises, so negate it": lambda b: (
            -recon - b * kl
        ),
        "β multiplies the reconstruction term; it weights the KL term (the rate)": lambda b: b * recon + kl,
        "β multiplies both terms; it weights only the KL term (the rate)": lambda b: b * (recon + kl),
        "β divides the KL term; it multiplies it": lambda b: recon + kl / b,
        "your loss does not depend on β: weight the KL term by β": lambda b: recon + kl,
        "per pixel (a mean over the 784 pixels), expected per image (a sum over pixels)": lambda b: (
            recon / 784 + b * kl
        ),
        "per pixel (the whole loss divided by 784), expected per image (a sum over pixels)": lambda b: (
            (recon + b * kl) / 784
        ),
        f"summed over the batch of {n}, expected the mean over the batch": lambda b: n * (recon + b * kl),
    }
    for message, slip in slips.items():
        if all(math.isclose(value, slip(b), rel_tol=1e-4, abs_tol=1e-4) for b, value in got.items()):
            return message
    return None


def _check_loss_values(f, model, x: torch.Tensor) -> None:
    """On the deterministic stand-in (z = μ): the loss at every β checked, then the logged terms."""
    log_px_z, kl = _elbo_terms(model, x)
    recon, rate = float(-log_px_z.mean()), float(kl.mean())
    terms = {b: _loss_terms(f, model, x, b) for b in BETAS_CHECKED}
    got = {b: float(t["loss"]) for b, t in terms.items()}
    want = {b: recon + b * rate for b in BETAS_CHECKED}
    if not all(math.isclose(got[b], want[b], rel_tol=1e-4, abs_tol=1e-4) for b in BETAS_CHECKED):
        slip = _loss_mistake(got, recon, rate, len(x))
        if slip:
            raise Hint(slip)
        b = next(b for b in BETAS_CHECKED if not math.isclose(got[b], want[b], rel_tol=1e-4, abs_tol=1e-4))
        elbo_note = " (at β = 1 that is -ELBO)" if b == 1 else ""
        raise Hint(
            f"at β = {b:g} your loss is {got[b]:.4g}, expected -E_q[log p(x|z)] + β KL = {recon:.4g} + {b:g} × "
            f"{rate:.4g} = {want[b]:.4g}{elbo_note}"
        )
    compare(terms[1.0]["recon_nll"], torch.tensor(recon), "terms['recon_nll'] (-E_q[log p(x|z)])", per_image=784)
    compare(terms[1.0]["kl"], torch.tensor(rate), "terms['kl'] (KL(q(z|x) || p(z)))", per_image=784)


def _check_sampling_and_gradients(f, x: torch.Tensor) -> None:
    """On a stand-in with a real posterior spread: z is sampled (not z = μ, no reseeding inside) and the gradient
    reaches the encoder's variance head and the decoder."""
    model = _stand_in_vae(deterministic=False).train()
    what = "beta_vae_loss(model, x, beta=1)"
    loss = f(model, x, 1.0)["loss"]
    log_px_z_mu, kl = _elbo_terms(model, x)
    if math.isclose(float(loss.detach()), float(-log_px_z_mu.mean() + kl.mean()), rel_tol=1e-6):
        raise Hint("you decode z = μ: sample z = μ + σ ε (the reparameterization; objectives.elbo_terms does it)")
    reseeds(f, model, x, 1.0, what=what)
    model.zero_grad()
    loss.backward()
    for name, layer in (("the encoder's log σ² head", model.to_logvar), ("the decoder", model.to_logits)):
        if layer.weight.grad is None or not layer.weight.grad.abs().sum() > 0:
            raise Hint(f"no gradient reaches {name}: is a term detached or computed without gradients?")


def check_beta_vae_loss(f) -> None:
    """The loss at β = 0.5, 1 (against an independent -ELBO) and 4 on a deterministic stand-in VAE, the contract
    train.fit relies on, then sampling and gradients on a noisy one."""
    x = torch.rand(6, 1, 28, 28)
    _check_loss_values(f, _stand_in_vae(deterministic=True), x)
    _check_sampling_and_gradients(f, x)


beta_vae_loss = Exercise("7.1", "the β-VAE loss", check_beta_vae_loss, reference_beta_vae_loss)


# ------------------------------------------------------------------------------------------------------------------
# 7.2 style transfer with a conditional VAE
# ------------------------------------------------------------------------------------------------------------------
def reference_transfer(cvae, x: torch.Tensor, y_from: torch.Tensor, y_to: torch.Tensor) -> torch.Tensor:
    """Re-draw the digits x (labelled y_from) as y_to in the same style: z = μ_φ(x, y_from), then E[x | z, y_to].
    x: (N, 1, 28, 28), y_from, y_to: (N,) labels -> (N, 1, 28, 28) in [0, 1]."""
    mu, _ = cvae.encode(x, y_from)
    return cvae.decode_mean(mu, y_to)


def _stand_in_cvae() -> models.ConditionalVAE:
    torch.manual_seed(0)
    return models.ConditionalVAE(latent_dim=3, hidden_dim=32).eval()


def check_transfer(f) -> None:
    """On a small random conditional VAE and six random images: the deterministic transfer through the posterior
    mean."""
    cvae = _stand_in_cvae()
    x, x_other = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)
    y_from = torch.tensor([0, 1, 2, 3, 4, 5])
    y_to = torch.tensor([3, 7, 9, 0, 8, 2])
    what = "transfer(cvae, x, y_from, y_to)"

    def run(images, seed):  # as the notebook calls it, then: were the inputs left alone?
        torch.manual_seed(seed)
        return as_tensor(call(f, cvae, images, y_from, y_to, what=what), what).detach()

    got = run(x, 1)
    mu_from, _ = cvae.encode(x, y_from)
    mu_to, _ = cvae.encode(x, y_to)
    want = cvae.decode_mean(mu_from, y_to)
    if _close(got, want):
        return
    if got.shape == want.shape:
        if _close(got, cvae.decode(mu_from, y_to)):
            raise Hint(
                "those are the decoder's logits, not images: decode_mean gives E[x | z, y] = sigmoid(logits), in [0, 1]"
            )
        if _close(got, cvae.decode_mean(mu_from, y_from)):
            raise Hint(
                "you decoded with the source label y_from: that only reconstructs x. Decode the same z with "
                "the new label y_to"
            )
        if _close(got, cvae.decode_mean(mu_to, y_to)):
            raise Hint(
                "you encoded x with the new label y_to: the encoder must be told what x really is (y_from), "
                "so that z keeps only the style; y_to goes to the decoder"
            )
        if not _close(got, run(x, 2)):
            if _close(got, run(x_other, 1)):
                raise Hint(
                    "your output does not depend on x: you drew a fresh z ~ p(z) from the prior instead of "
                    "encoding x, so the style of x is lost. Use z = μ_φ(x, y_from)"
                )
            raise Hint(
                "your transfer is random: you used a sample z ~ q(z | x, y_from); use its mean μ_φ(x, y_from), "
                "so that the same digit always transfers to the same image"
            )
    compare(got, want, what)


transfer = Exercise("7.2", "style transfer with the conditional VAE", check_transfer, reference_transfer)

question_transfer_d20 = Question(
    "7.3",
    "transfer with a roomy code (d = 20)",
    choices={
        "a": "about as often as with d = 2 (within 10 percentage points): the label y decides the class",
        "b": "clearly less often: with room in z, the source digit's class travels in z and overrides y",
    },
)


# ------------------------------------------------------------------------------------------------------------------
# 7.4 the anomaly score -ELBO(x)
# ------------------------------------------------------------------------------------------------------------------
def reference_anomaly_score(model, x: torch.Tensor, draws: int = 8) -> torch.Tensor:
    """s(x) = -ELBO(x), the one-sample estimate averaged over `draws` samples of ε: high for inputs the model finds
    unlikely. x: (N, 1, 28, 28) -> (N,), nats per image."""
    with torch.inference_mode():
        return -torch.stack([objectives.elbo_terms(model, x)["elbo"] for _ in range(draws)]).mean(0)


def _stand_in_vae(deterministic: bool) -> models.VAE:
    """A small random Bernoulli VAE; `deterministic`: σ(x) ≈ 2e-9, so z = μ(x) and the ELBO has no noise."""
    torch.manual_seed(0)
    model = models.VAE(latent_dim=3, hidden_dim=16).eval()
    if deterministic:
        with torch.no_grad():
            model.to_logvar.weight.zero_()
            model.to_logvar.bias.fill_(-40.0)
    return model


def _elbo_terms(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E_q log p(x|z) and KL(q || p) of the deterministic stand-in, computed independently of lecturelib.objectives:
    x log p + (1 - x) log(1 - p) by hand, the KL by torch.distributions."""
    with torch.no_grad():
        mu, logvar = model.encode(x)
        p = torch.sigmoid(model.decode(mu).double())  # z = μ: σ is 2e-9
    xd = x.double()
    log_px_z = (xd * torch.log(p) + (1 - xd) * torch.log1p(-p)).flatten(1).sum(1)
    q = D.Normal(mu.double(), torch.exp(0.5 * logvar.double()))
    kl = D.kl_divergence(q, D.Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))).sum(-1)
    return log_px_z, kl


def _check_score_values(f, x: torch.Tensor) -> None:
    """On the deterministic stand-in (no sampling noise): -ELBO per image, and the usual slips named."""
    model = _stand_in_vae(deterministic=True)
    what = "anomaly_score(model, x)"
    got = as_tensor(call(f, model, x, draws=4, what=what), what).detach().double()
    log_px_z, kl = _elbo_terms(model, x)
    want = -(log_px_z - kl)
    if got.shape == want.shape and torch.isfinite(got).all():
        tol = 1e-3
        if _close(got, log_px_z - kl, tol):
            raise Hint("that is the ELBO itself: the score is -ELBO(x), high for inputs the model finds unlikely")
        if _close(got, -log_px_z, tol):
            raise Hint("you left out the KL term: -ELBO(x) = -E_q[log p(x|z)] + KL(q(z|x) || p(z))")
        if _close(got, -log_px_z - kl, tol):
            raise Hint("the KL term has the wrong sign: -ELBO(x) = -E_q[log p(x|z)] + KL(q(z|x) || p(z))")
        if _close(got, 4 * want, tol):
            raise Hint("you summed the ELBO over the draws: average them, so that the score does not grow with `draws`")
    compare(got, want, what, atol=1e-3, per_image=784, batch=len(x))


def _check_average_over_draws(f, x: torch.Tensor) -> None:
    """On a stand-in with a real posterior spread: the score varies from call to call, gets steadier with more
    draws (variance ~ 1/draws), and its mean is the mean of -ELBO: an arithmetic mean over the draws, which
    log-mean-exp (the importance-weighted bound L_k, lower by its gap of several nats here) or a minimum is not."""
    noisy = _stand_in_vae(deterministic=False)
    what = "anomaly_score(model, x)"

    def scores(draws: int, calls: int) -> torch.Tensor:  # (calls, N)
        return torch.stack([as_tensor(f(noisy, x, draws=draws), what).detach().double() for _ in range(calls)])

    many = scores(32, 16)  # 16 calls with 32 draws each
    spread = {1: scores(1, 24)[:, 0].var().item(), 32: many[:, 0].var().item()}
    if spread[1] < 1e-12:
        raise Hint(
            "your score does not vary from call to call on a model with a random z: estimate the ELBO with "
            "samples z = μ + σ ε (objectives.elbo_terms draws one), not with z = μ, and do not reseed inside "
            "the function"
        )
    if spread[32] > 0.3 * spread[1]:
        raise Hint(
            f"with draws=32 your score is as noisy as with draws=1 (variance {spread[32]:.3g} vs "
            f"{spread[1]:.3g}): average the one-sample ELBO over `draws` samples of ε"
        )
    with torch.inference_mode():  # the mean of -ELBO(x), from 2,000 one-sample estimates in one batch
        elbo = objectives.elbo_terms(noisy, x.repeat(2000, 1, 1, 1))["elbo"].double()
        want = -elbo.view(2000, len(x)).mean(0)
    bias = float((many.mean(0) - want).mean())  # standard error about 0.12 nats on this stand-in
    if bias < -1.0:
        raise Hint(
            f"with draws=32 your score is {-bias:.2g} nats below -ELBO on average, and the gap grows with "
            f"`draws`: log-mean-exp (or a minimum) over the draws is the importance-weighted bound of notebook 06, "
            f"not the ELBO. Average the draws with a plain mean"
        )
    if bias > 1.0:
        raise Hint(
            f"with draws=32 your score is {bias:.2g} nats above -ELBO on average: take the plain mean of the draws"
        )


def check_anomaly_score(f) -> None:
    """-ELBO per image on a deterministic stand-in VAE (no sampling noise), then the averaging over draws on a
    noisy one."""
    x = torch.rand(5, 1, 28, 28)
    _check_score_values(f, x)
    _check_average_over_draws(f, x)


anomaly_score = Exercise("7.4", "the anomaly score -ELBO(x)", check_anomaly_score, reference_anomaly_score)

question_hardest_anomaly = Question(
    "7.5",
    "which anomaly is hardest to detect",
    choices={
        "a": "uniform noise",
        "b": "digits + noise σ=0.3",
        "c": "inverted digits",
        "d": "rotated digits (90°)",
        "e": "synthetic patterns",
    },
)
