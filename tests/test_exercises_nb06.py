"""The exercise checkers of notebook 06: each accepts the notebook's own solution, names typical mistakes, and says
"not done" for an unfinished exercise. Wrong answers are mostly the notebook's solution with one slip edited in."""

import json

import pytest
import torch
from notebook_source import PRELUDE, notebook_path, solution
from torch import nn

from lecturelib import objectives
from lecturelib.exercises import nb06 as ex

NAMESPACE = {"reparameterize": objectives.reparameterize}


def _cell(name: str) -> str:
    for cell in json.loads(notebook_path("06").read_text())["cells"]:
        source = "".join(cell["source"])
        if (
            cell["cell_type"] == "code"
            and "### BEGIN SOLUTION" in source
            and (f"def {name}(" in source or f"class {name}(" in source)
        ):
            return source
    raise LookupError(name)


def mutant(name: str, *edits: tuple[str, str], get: str | None = None):
    """The notebook's solution of `name` with each (old, new) edit applied; fails if `old` is no longer there."""
    source = _cell(name)
    for old, new in edits:
        assert old in source, f"the notebook's solution of {name} no longer contains {old!r}"
        source = source.replace(old, new)
    scope = dict(NAMESPACE)
    exec(PRELUDE, scope)
    exec(source, scope)
    return scope[get or name]


def feedback(exercise, answer, capsys) -> str:
    exercise.check(answer)
    return capsys.readouterr().out


def not_done(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------------------------------------------------------
# 6.1 the networks
# ------------------------------------------------------------------------------------------------------------------
def test_networks_accept_the_notebook_solution(capsys):
    answer = (solution("06", "Encoder"), solution("06", "Decoder"))
    assert ex.networks.check(answer) is answer
    assert "✓ correct" in capsys.readouterr().out


def test_reference_networks_match_models_vae_and_pass():
    assert ex.networks.check((ex.ReferenceEncoder, ex.ReferenceDecoder))


@pytest.mark.parametrize(
    "edits, get, hint",
    [
        (
            [
                (
                    "return self.to_logits(h).view(-1, 1, 28, 28)",
                    "return torch.sigmoid(self.to_logits(h)).view(-1, 1, 28, 28)",
                )
            ],
            "Decoder",
            "sigmoid means",
        ),
        ([("h = torch.relu(self.hidden(x.flatten(1)))", "h = self.hidden(x.flatten(1))")], "Encoder", "no ReLU"),
        (
            [("return self.to_logits(h).view(-1, 1, 28, 28)", "return self.to_logits(h)")],
            "Decoder",
            "reshape it to images",
        ),
        (
            [
                (
                    "self.hidden = nn.Linear(latent_dim, hidden_dim)",
                    "self.hidden = nn.Linear(latent_dim, hidden_dim)\n"
                    "        self.to_x_logvar = nn.Linear(hidden_dim, 784)",
                )
            ],
            "Decoder",
            "two output heads",
        ),
        (
            [("self.to_mu = nn.Linear(hidden_dim, latent_dim)", "self.to_mu = nn.Linear(hidden_dim, 20)")],
            "Encoder",
            "not fixed sizes",
        ),
    ],
)
def test_networks_name_the_mistake(edits, get, hint, capsys):
    broken = mutant("Encoder", *edits, get=get)
    answer = (broken, solution("06", "Decoder")) if get == "Encoder" else (solution("06", "Encoder"), broken)
    out = feedback(ex.networks, answer, capsys)
    assert "✗ not yet right" in out and hint in out, out


def test_networks_not_done(capsys):
    class Stub(nn.Module):
        def __init__(self, latent_dim=20, hidden_dim=400):
            super().__init__()
            raise NotImplementedError()

    assert ex.networks.check((Stub, Stub)) == (ex.ReferenceEncoder, ex.ReferenceDecoder)
    assert "○ not done yet" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# 6.2 the reparameterization
# ------------------------------------------------------------------------------------------------------------------
def test_reparameterize_accepts_the_notebook_solution(capsys):
    f = solution("06", "reparameterize")
    assert ex.reparameterize.check(f) is f
    assert "✓ correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "edits, hint",
    [
        ([("sigma = torch.exp(0.5 * logvar)", "sigma = logvar")], "logvar used as σ"),
        ([("sigma = torch.exp(0.5 * logvar)", "sigma = torch.exp(logvar)")], "σ² = exp(logvar) instead of σ"),
        ([("return mu + sigma * torch.randn_like(sigma)", "return mu + 0 * sigma")], "no noise"),
        ([("return mu + sigma * torch.randn_like(sigma)", "return mu + sigma * torch.rand_like(sigma)")], "uniform"),
        (
            [("return mu + sigma * torch.randn_like(sigma)", "return (mu + sigma * torch.randn_like(sigma)).detach()")],
            "no gradient",
        ),
    ],
)
def test_reparameterize_names_the_mistake(edits, hint, capsys):
    out = feedback(ex.reparameterize, mutant("reparameterize", *edits), capsys)
    assert "✗ not yet right" in out and hint in out, out


def test_reparameterize_not_done(capsys):
    assert ex.reparameterize.check(not_done) is objectives.reparameterize
    assert "○ not done yet" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# 6.3 the loss
# ------------------------------------------------------------------------------------------------------------------
def test_vae_loss_accepts_the_notebook_solution_and_the_library(capsys):
    f = solution("06", "vae_loss", NAMESPACE)
    assert ex.vae_loss.check(f) is f
    assert ex.vae_loss.check(objectives.vae_loss) is objectives.vae_loss
    assert capsys.readouterr().out.count("✓ correct") == 2


RETURN = 'return {"loss": (recon_nll + kl).mean(), "recon_nll": recon_nll.mean(),\n            "kl": kl.mean()}'


@pytest.mark.parametrize(
    "edits, hint",
    [
        (
            [('(recon_nll + kl).mean(), "recon_nll"', '(recon_nll - kl).mean(), "recon_nll"')],
            "the KL enters −ELBO with a + sign",
        ),
        ([("kl = 0.5 * (", "kl = -0.5 * (")], "'kl' is negative"),
        ([("recon_nll = bce.flatten(1).sum(1)", "recon_nll = bce.flatten(1).mean(1)")], "per pixel"),
        (
            [(RETURN, 'return {"loss": (recon_nll + kl).sum(), "recon_nll": recon_nll.sum(), "kl": kl.sum()}')],
            "summed over the batch",
        ),
        (
            [("F.binary_cross_entropy_with_logits(model.decode(z), x,", "F.binary_cross_entropy(model.decode(z), x,")],
            "F.binary_cross_entropy takes probabilities",
        ),
        (
            [
                (
                    "F.binary_cross_entropy_with_logits(model.decode(z), x,",
                    "F.binary_cross_entropy_with_logits(torch.sigmoid(model.decode(z)), x,",
                )
            ],
            "the sigmoid is applied twice",
        ),
        ([("- logvar).sum(1)", "- logvar).mean(1)")], "averaged over the 3 latent dimensions"),
        ([("model.decode(z), x,", "model.decode(mu), x,")], "decodes z = μ"),
    ],
)
def test_vae_loss_names_the_mistake(edits, hint, capsys):
    out = feedback(ex.vae_loss, mutant("vae_loss", *edits), capsys)
    assert "✗ not yet right" in out and hint in out, out


def test_vae_loss_not_done(capsys):
    assert ex.vae_loss.check(not_done) is objectives.vae_loss
    assert "○ not done yet" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# 6.4 the training loop
# ------------------------------------------------------------------------------------------------------------------
def test_train_vae_accepts_the_notebook_solution_and_the_reference(capsys):
    f = solution("06", "train_vae")
    assert ex.train_vae.check(f) is f
    assert ex.train_vae.check(ex.reference_train_vae) is ex.reference_train_vae
    assert capsys.readouterr().out.count("✓ correct") == 2


@pytest.mark.parametrize(
    "edits, hint",
    [
        ([("            optimizer.zero_grad()\n", "")], "zero_grad() is not called every step"),
        (
            [("order = torch.randperm(len(x), device=x.device)", "order = torch.arange(len(x), device=x.device)")],
            "same order every epoch",
        ),
        (
            [
                ("    optimizer = torch.optim.Adam(model.parameters(), lr=lr)\n", ""),
                (
                    "            optimizer.zero_grad()",
                    "            optimizer = torch.optim.Adam(model.parameters(), lr=lr)\n"
                    "            optimizer.zero_grad()",
                ),
            ],
            "Adam was made",
        ),
        ([("losses.append(loss.item())", "losses.append(loss)")], "not the loss tensor"),
        ([("            loss.backward()\n", "")], "call loss.backward() before optimizer.step()"),
    ],
)
def test_train_vae_names_the_mistake(edits, hint, capsys):
    out = feedback(ex.train_vae, mutant("train_vae", *edits), capsys)
    assert "✗ not yet right" in out and hint in out, out


def test_train_vae_not_done_and_adam_restored(capsys):
    adam = torch.optim.Adam
    assert ex.train_vae.check(not_done) is ex.reference_train_vae
    assert "○ not done yet" in capsys.readouterr().out
    assert torch.optim.Adam is adam


# ------------------------------------------------------------------------------------------------------------------
# 6.6 the importance-weighted bound
# ------------------------------------------------------------------------------------------------------------------
def test_grid_vae_has_a_gap_that_importance_weights_close():
    """The checker's reference, a 2-dimensional z: log p(x) by quadrature sits above the quadrature ELBO, and the
    library's L_k meets both (k = 2000 and k = 1)."""
    x = ex._digits(4, seed=5)
    model = ex.GridVAE(x, latent_dim=2)
    assert (model.log_px - model.elbo).min() > 1.0
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.allclose(objectives.iwae_bound(model, x, 2000).double(), model.log_px, atol=0.15)
        assert torch.allclose(
            objectives.iwae_bound(model, x.repeat(1000, 1, 1, 1), 1).double().view(1000, 4).mean(0),
            model.elbo,
            atol=0.4,
        )


def test_iwae_bound_accepts_the_notebook_solution_and_the_library(capsys):
    f = solution("06", "iwae_bound")
    assert ex.iwae_bound.check(f) is f
    assert ex.iwae_bound.check(objectives.iwae_bound) is objectives.iwae_bound
    assert capsys.readouterr().out.count("✓ correct") == 2


@pytest.mark.parametrize(
    "edits, hint",
    [
        ([("return torch.logsumexp(log_w, dim=0) - math.log(k)", "return torch.logsumexp(log_w, dim=0)")], "too high"),
        ([("return torch.logsumexp(log_w, dim=0) - math.log(k)", "return log_w.mean(0)")], "averaged the log-weights"),
        ([("return torch.logsumexp(log_w, dim=0) - math.log(k)", "return log_w.exp().mean(0).log()")], "underflow"),
        (
            [("z = q.rsample((k,))", "z = q.rsample((1,))"), (".view(k, *x.shape)", ".view(1, *x.shape)")],
            "draw k samples",
        ),
        ([("torch.logsumexp(log_w, dim=0)", "torch.logsumexp(log_w, dim=1)")], "reduced over the digits"),
        ([("- math.log(k)", "- math.log(k + 1)")], "not log(k + 1)"),
        ([("- math.log(k)", "- math.log(k - 1)")], "log of 0"),
        ([("torch.exp(0.5 * logvar))", "torch.exp(logvar))")], "σ = exp(logvar / 2)"),
        (
            [("p_z.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)", "p_z.log_prob(z).mean(-1) - q.log_prob(z).mean(-1)")],
            "summed",
        ),
        ([("mu, logvar = model.encode(x)", "torch.manual_seed(0)\n    mu, logvar = model.encode(x)")], "two calls"),
    ],
)
def test_iwae_bound_names_the_mistake(edits, hint, capsys):
    out = feedback(ex.iwae_bound, mutant("iwae_bound", *edits), capsys)
    assert "✗ not yet right" in out and hint in out, out


def test_iwae_bound_not_done(capsys):
    assert ex.iwae_bound.check(not_done) is objectives.iwae_bound
    assert "○ not done yet" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# the questions
# ------------------------------------------------------------------------------------------------------------------
def test_questions_compare_the_prediction_with_the_measurement(capsys):
    predict_kl, predict_iwae = solution("06", "predict_kl"), solution("06", "predict_iwae")
    assert predict_kl() in ex.KL_CHOICES and predict_iwae() in ex.IWAE_CHOICES
    assert [ex.kl_choice(v) for v in (2.0, 9.0, 25.0, 60.0)] == ["a", "b", "c", "d"]
    assert ex.iwae_choice({1: -100.0, 10: -98.0, 100: -97.5}) == "a"
    assert ex.iwae_choice({1: -100.0, 10: -101.0, 100: -102.0}) == "b"
    assert ex.iwae_choice({1: -100.0, 10: -100.01, 100: -99.99}) == "c"
    ex.kl_cost.check(lambda: "c", "c")
    assert ex.kl_cost.passed
    ex.kl_cost.check(lambda: "a", "c")
    assert not ex.kl_cost.passed
    ex.iwae_trend.check(not_done, "a")
    assert not ex.iwae_trend.passed
    out = capsys.readouterr().out
    assert "✓ correct" in out and "✗ not yet right" in out and "○ not done yet" in out


# ------------------------------------------------------------------------------------------------------------------
# issue 23: right answers accepted, contracts and side effects checked
# ------------------------------------------------------------------------------------------------------------------
def test_train_vae_accepts_model_zero_grad(capsys):
    f = mutant("train_vae", ("optimizer.zero_grad()", "model.zero_grad()"))
    assert ex.train_vae.check(f) is f
    assert "✓ correct" in capsys.readouterr().out and ex.train_vae.passed


def test_reparameterize_names_eps_drawn_in_float64(capsys):
    f = mutant(
        "reparameterize",
        ("torch.randn_like(sigma)", "torch.randn(sigma.shape, dtype=torch.float64)"),
    )
    out = feedback(ex.reparameterize, f, capsys)
    assert "✗ not yet right" in out and "randn_like(mu)" in out and "float64" in out, out
    assert not ex.reparameterize.passed


@pytest.mark.parametrize("term", ["loss", "recon_nll", "kl"])
def test_vae_loss_rejects_python_numbers_that_train_fit_cannot_log(term, capsys):
    edit = {
        "loss": ('"loss": (recon_nll + kl).mean()', '"loss": float((recon_nll + kl).mean())'),
        "recon_nll": ('"recon_nll": recon_nll.mean()', '"recon_nll": recon_nll.mean().item()'),
        "kl": ('"kl": kl.mean()', '"kl": kl.mean().item()'),
    }[term]
    out = feedback(ex.vae_loss, mutant("vae_loss", edit), capsys)
    assert "✗ not yet right" in out and ("Python number" in out or "no gradient" in out), out


def test_iwae_bound_accepts_the_reparameterized_variant(capsys):
    f = mutant(
        "iwae_bound",
        ("z = q.rsample((k,))", "z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape)"),
    )
    assert ex.iwae_bound.check(f) is f
    assert "✓ correct" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# 6.8 ancestral sampling
# ------------------------------------------------------------------------------------------------------------------
def test_ancestral_sample_accepts_the_notebook_solution_and_the_reference(capsys):
    f = solution("06", "ancestral_sample")
    assert ex.ancestral_sample.check(f) is f
    assert ex.ancestral_sample.check(ex.reference_ancestral_sample) is ex.reference_ancestral_sample
    assert capsys.readouterr().out.count("✓ correct") == 2


def test_ancestral_sample_accepts_torch_distributions(capsys):
    f = mutant(
        "ancestral_sample",
        (
            "x = torch.bernoulli(torch.sigmoid(model.decode(z)))",
            "x = torch.distributions.Bernoulli(logits=model.decode(z)).sample()",
        ),
    )
    assert ex.ancestral_sample.check(f) is f
    assert "✓ correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "edit, hint",
    [
        (("torch.bernoulli(torch.sigmoid(model.decode(z)))", "torch.sigmoid(model.decode(z))"), "decoded mean"),
        (("torch.bernoulli(torch.sigmoid(model.decode(z)))", "(model.decode(z) > 0).float()"), "rounded at 1/2"),
        (("torch.bernoulli(torch.sigmoid(model.decode(z)))", "torch.bernoulli(model.decode(z).clamp(0, 1))"), "follow"),
        (("torch.bernoulli(torch.sigmoid(model.decode(z)))", "torch.bernoulli(model.decode(z))"), "probabilities"),
        (("z = torch.randn(", "z = torch.rand("), "prior"),
        (
            (
                "x = torch.bernoulli(torch.sigmoid(model.decode(z)))",
                "x = torch.bernoulli(torch.sigmoid(model.decode(torch.randn_like(z))))",
            ),
            "the same z",
        ),
        (("z = torch.randn(", "torch.manual_seed(0)\n    z = torch.randn("), "two calls"),
    ],
)
def test_ancestral_sample_names_the_mistake(edit, hint, capsys):
    out = feedback(ex.ancestral_sample, mutant("ancestral_sample", edit), capsys)
    assert "✗ not yet right" in out and hint in out, out
    assert not ex.ancestral_sample.passed


def test_ancestral_sample_not_done(capsys):
    assert ex.ancestral_sample.check(not_done) is ex.reference_ancestral_sample
    assert "○ not done yet" in capsys.readouterr().out


def test_question_check_never_raises_and_prints_no_value(capsys):
    def broken():
        return b  # noqa: F821 (the slip under test)

    assert ex.iwae_trend.check(broken, "a") is None
    assert "✗ not yet right" in capsys.readouterr().out and not ex.iwae_trend.passed
    assert ex.iwae_trend.check(lambda: "a", "a") is None and ex.iwae_trend.passed


def test_vae_loss_names_an_in_place_change_of_the_data(capsys):
    f = mutant("vae_loss", ("mu, logvar = model.encode(x)", "x.clamp_(0.1, 0.9)\n    mu, logvar = model.encode(x)"))
    out = feedback(ex.vae_loss, f, capsys)
    assert "✗ not yet right" in out and "in place" in out, out
