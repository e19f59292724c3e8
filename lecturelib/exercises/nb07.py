"""Exercises of notebook 07 (β-VAE, conditional VAE, anomaly detection): `from lecturelib.exercises import nb07 as ex`.

7.1 beta_for_rate: the β whose rate is a target, interpolated in log β from the measured β-VAE sweep.
7.2 transfer: conditional-VAE style transfer: encode x with its own label, decode the same z with another.
7.3 (question) with room to spare in z (d = 20), does the classifier still read the new label in the transfers?
7.4 anomaly_score: s(x) = -ELBO(x), one value per image, averaged over a few ε.
7.5 (question) which kind of anomaly is hardest to tell from real digits?

Each checker runs the student's function on small cases against an independent reference (NumPy's interpolation,
a small random stand-in model, torch.distributions), on forked random generators so that the notebook's own random
draws do not depend on the student's code.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lecturelib import models, objectives

from . import Exercise, Hint, Question, as_tensor, compare

D = torch.distributions


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), atol=tol, rtol=tol))


# ------------------------------------------------------------------------------------------------------------------
# 7.1 the β for a target rate
# ------------------------------------------------------------------------------------------------------------------
def reference_beta_for_rate(betas, rates, target: float) -> float:
    """The β whose rate KL(q(z|x) || p(z)) is `target`, read off a sweep: log β interpolated linearly in the rate
    between the two measured neighbours. betas: increasing β's; rates: the rate measured at each (it falls as β
    grows). Raises ValueError when `target` lies outside the measured rates (the sweep says nothing there)."""
    betas, rates = np.asarray(betas, dtype=float), np.asarray(rates, dtype=float)
    if not rates.min() <= target <= rates.max():
        raise ValueError(f"target rate {target:g} lies outside the measured rates [{rates.min():g}, {rates.max():g}]")
    order = np.argsort(rates)  # np.interp wants increasing x: the rates, smallest (largest β) first
    return float(np.exp(np.interp(target, rates[order], np.log(betas[order]))))


# a sweep like the notebook's: β evenly spaced in log β, the rate falling as β grows, neither linear in β nor in log β
SWEEP_BETAS = (0.5, 1.0, 2.0, 4.0, 8.0)
SWEEP_RATES = (24.0, 16.0, 10.0, 6.0, 2.0)
TARGETS = (20.0, 13.0, 8.0, 3.0)  # one between each pair of neighbours


def _as_number(value, what: str) -> float:
    if value is None:
        raise Hint(f"{what} returned None: did you forget `return`?")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Hint(f"{what} should return one number, got {type(value).__name__}") from None
    if not math.isfinite(number):
        raise Hint(f"{what} returned {number}: log of 0 or of a negative β?")
    return number


def check_beta_for_rate(f) -> None:
    """Against the log-β interpolation of a five-point sweep, between every pair of neighbours, and out of range."""
    betas, rates = list(SWEEP_BETAS), list(SWEEP_RATES)
    log_b, r = np.log(betas), np.asarray(rates)
    got = {t: _as_number(f(list(betas), list(rates), t), f"beta_for_rate(betas, rates, {t:g})") for t in TARGETS}
    want = {t: reference_beta_for_rate(betas, rates, t) for t in TARGETS}
    close = lambda a, b: math.isclose(a, b, rel_tol=1e-3)  # noqa: E731
    if not all(close(got[t], want[t]) for t in TARGETS):
        # the usual slips, each as NumPy would compute it
        linear = {t: float(np.interp(t, r[::-1], np.asarray(betas)[::-1])) for t in TARGETS}
        swapped = {t: float(np.interp(t, log_b, r)) for t in TARGETS}
        if all(close(got[t], got[TARGETS[0]]) for t in TARGETS):
            # np.interp with decreasing x values clamps: the same β (here the largest) for every target
            raise Hint(
                f"you return β = {got[TARGETS[0]]:.4g} for every target: did you interpolate as if the rate "
                f"grew with β? np.interp needs increasing x values (given decreasing ones it clamps), but the "
                f"rate falls as β grows, so the rates come in decreasing order. Sort them, and the log β's "
                f"with them (e.g. rates[::-1])"
            )
        if all(close(got[t], linear[t]) for t in TARGETS):
            raise Hint(
                "you interpolated β linearly in the rate; the sweep is spaced evenly in log β (0.5, 1, 2, 4, 8) "
                "and the rate is closer to linear in log β: interpolate log β, then take exp"
            )
        if all(close(got[t], s) for t, s in swapped.items()):
            raise Hint(
                "that is a rate, not a β: interpolate log β as a function of the rate (x: the rates, "
                "y: the log β's), not the other way round"
            )
        if got[TARGETS[0]] > got[TARGETS[-1]]:  # TARGETS fall, so β should rise
            raise Hint(
                f"your β grows with the target rate (β = {got[TARGETS[0]]:.3g} for {TARGETS[0]:g} nats, "
                f"{got[TARGETS[-1]]:.3g} for {TARGETS[-1]:g} nats), but the rate falls as β grows: "
                f"a smaller rate needs a larger β"
            )
        t = next(t for t in TARGETS if not close(got[t], want[t]))
        raise Hint(
            f"for a target rate of {t:g} nats between the measured {rates} at β = {betas}, you return "
            f"β = {got[t]:.4g}; interpolating log β between the two neighbours gives {want[t]:.4g}"
        )
    for t in (r.max() + 5.0, r.min() - 1.0):
        try:
            value = f(list(betas), list(rates), t)
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as err:
            raise Hint(
                f"for a target of {t:g} nats, outside the measured rates [{r.min():g}, {r.max():g}], raise "
                f"ValueError (yours raised {type(err).__name__})"
            ) from None
        raise Hint(
            f"for a target of {t:g} nats, outside the measured rates [{r.min():g}, {r.max():g}], you return "
            f"β = {value:.4g}: that is an extrapolation (np.interp silently clamps) the sweep cannot back; "
            f"raise ValueError instead"
        )


beta_for_rate = Exercise("7.1", "choose β for a target rate", check_beta_for_rate, reference_beta_for_rate)


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

    def run(images, seed):
        torch.manual_seed(seed)
        return as_tensor(f(cvae, images.clone(), y_from.clone(), y_to.clone()), what).detach()

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
        return -torch.stack([objectives.elbo(model, x)["elbo"] for _ in range(draws)]).mean(0)


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
    mu, logvar = model.encode(x)
    p = torch.sigmoid(model.decode(mu).double())  # z = μ: σ is 2e-9
    xd = x.double()
    log_px_z = (xd * torch.log(p) + (1 - xd) * torch.log1p(-p)).flatten(1).sum(1)
    q = D.Normal(mu.double(), torch.exp(0.5 * logvar.double()))
    kl = D.kl_divergence(q, D.Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))).sum(-1)
    return log_px_z, kl


def check_anomaly_score(f) -> None:
    """-ELBO per image on a deterministic stand-in VAE (no sampling noise), then the averaging over draws on a
    noisy one."""
    model = _stand_in_vae(deterministic=True)
    x = torch.rand(5, 1, 28, 28)
    what = "anomaly_score(model, x)"
    got = as_tensor(f(model, x.clone(), draws=4), what).detach().double()
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
    # the average over draws: on a noisy model, more draws make the score steadier (variance ~ 1/draws)
    noisy = _stand_in_vae(deterministic=False)
    x1 = x[:1]
    spread = {
        k: torch.stack(
            [as_tensor(f(noisy, x1.clone(), draws=k), what).detach().double().reshape(-1)[0] for _ in range(24)]
        )
        .var()
        .item()
        for k in (1, 32)
    }
    if spread[1] < 1e-12:
        raise Hint(
            "your score does not vary from call to call on a model with a random z: estimate the ELBO with "
            "samples z = μ + σ ε (objectives.elbo draws one), not with z = μ"
        )
    if spread[32] > 0.3 * spread[1]:
        raise Hint(
            f"with draws=32 your score is as noisy as with draws=1 (variance {spread[32]:.3g} vs "
            f"{spread[1]:.3g}): average the one-sample ELBO over `draws` samples of ε"
        )


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
