"""Notebook 02's exercises: the checker accepts the notebook's own solution, names typical mistakes, and reports an
unfinished exercise as not done; the question compares a prediction with what the notebook measured."""

import pytest
import torch
from notebook_source import not_implemented, solution

from lecturelib.exercises import STATUS
from lecturelib.exercises import nb02 as ex


def feedback(exercise, answer, capsys):
    """(what check() returned, the feedback line it printed)."""
    returned = exercise.check(answer)
    return returned, capsys.readouterr().out.strip()


def test_checkers_do_not_move_the_notebooks_random_stream(capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for name in ["pca_reconstruct", "pixel_path", "latent_path"]:
        getattr(ex, name).check(solution("02", name))
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------------------------------------------------------
# 2.1 pca_reconstruct
# ------------------------------------------------------------------------------------------------------------------
def test_pca_reconstruct_accepts_the_notebook_solution(capsys):
    mine = solution("02", "pca_reconstruct")
    returned, line = feedback(ex.pca_reconstruct, mine, capsys)
    assert returned is mine and line.startswith("Exercise 2.1") and STATUS["correct"] in line


def test_reference_pca_reconstruct_matches_sklearn():
    from sklearn.decomposition import PCA

    x = torch.rand(200, 1, 28, 28)
    pca = PCA(n_components=5, svd_solver="full").fit(x.flatten(1).numpy())
    U, x_bar = torch.as_tensor(pca.components_).T, torch.as_tensor(pca.mean_)
    sk = PCA(n_components=3, svd_solver="full").fit(x.flatten(1).numpy())
    want = torch.as_tensor(sk.inverse_transform(sk.transform(x.flatten(1).numpy()))).view_as(x)
    assert torch.allclose(ex.reference_pca_reconstruct(x, x_bar, U, 3), want, atol=1e-4)


def project(v, basis):
    return v @ basis @ basis.T


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, m, U, d: (m + project(x.flatten(1), U[:, :d])).view_as(x), "project x − x̄, not x"),
        (lambda x, m, U, d: project(x.flatten(1) - m, U[:, :d]).view_as(x), "add the mean back"),
        (lambda x, m, U, d: (m + project(x.flatten(1) - m, U)).view_as(x), "keep the first d"),
        (lambda x, m, U, d: (m + project(x.flatten(1) - m, U[:, -d:])).view_as(x), "the last d columns"),
        (lambda x, m, U, d: m + project(x.flatten(1) - m, U[:, :d]), "reshape x̂ back"),
        (lambda x, m, U, d: (x.flatten(1) - m) @ U[:, :d], "these are the codes"),
    ],
)
def test_pca_reconstruct_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.pca_reconstruct, wrong, capsys)
    assert returned is ex.reference_pca_reconstruct
    assert STATUS["wrong"] in line and hint in line, line


def test_pca_reconstruct_not_done(capsys):
    returned, line = feedback(ex.pca_reconstruct, not_implemented, capsys)
    assert returned is ex.reference_pca_reconstruct and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# 2.2 question: does a deep AE beat PCA at the same code size
# ------------------------------------------------------------------------------------------------------------------
def test_beats_pca_question_right_and_wrong(capsys):
    mine = solution("02", "predict_beats_pca")
    assert ex.beats_pca.check(mine, "a") is True
    assert STATUS["correct"] in capsys.readouterr().out
    assert ex.beats_pca.check(lambda: "b", "a") is False
    assert STATUS["wrong"] in capsys.readouterr().out
    assert ex.beats_pca.check(lambda: "yes", "a") is False
    assert "answer one of" in capsys.readouterr().out
    assert ex.beats_pca.check(not_implemented, "a") is False
    assert STATUS["not done"] in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# 2.3 pixel_path
# ------------------------------------------------------------------------------------------------------------------
def test_pixel_path_accepts_the_notebook_solution(capsys):
    mine = solution("02", "pixel_path")
    returned, line = feedback(ex.pixel_path, mine, capsys)
    assert returned is mine and line.startswith("Exercise 2.3") and STATUS["correct"] in line


def weights(ts):
    return ts.view(-1, 1, 1, 1)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda a, b, ts: weights(ts) * a + (1 - weights(ts)) * b, "t runs backwards"),
        (lambda a, b, ts: a + weights(ts) * b, "add up to 1"),
        (lambda a, b, ts: (1 - ts) * a + ts * b, "fails to broadcast"),
    ],
)
def test_pixel_path_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.pixel_path, wrong, capsys)
    assert returned is ex.reference_pixel_path
    assert STATUS["wrong"] in line and hint in line, line


def test_pixel_path_not_done(capsys):
    returned, line = feedback(ex.pixel_path, not_implemented, capsys)
    assert returned is ex.reference_pixel_path and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# 2.4 latent_path
# ------------------------------------------------------------------------------------------------------------------
def test_latent_path_accepts_the_notebook_solution(capsys):
    mine = solution("02", "latent_path")
    returned, line = feedback(ex.latent_path, mine, capsys)
    assert returned is mine and line.startswith("Exercise 2.4") and STATUS["correct"] in line


def test_reference_latent_path_ends_at_the_reconstructions():
    from lecturelib import models

    model = models.MLPAE(latent_dim=2, hidden_dims=(8,)).eval()
    x_a, x_b = torch.rand(1, 1, 28, 28), torch.rand(1, 1, 28, 28)
    path = ex.reference_latent_path(model, x_a, x_b, torch.tensor([0.0, 0.5, 1.0]))
    with torch.no_grad():
        assert torch.allclose(path[0], model(x_a)[0]) and torch.allclose(path[-1], model(x_b)[0])


def codes(model, a, b):
    return model.f(a), model.f(b)


def reversed_path(model, a, b, ts):
    z_a, z_b = codes(model, a, b)
    return model.g(ts[:, None] * z_a + (1 - ts[:, None]) * z_b)


def codes_only(model, a, b, ts):
    z_a, z_b = codes(model, a, b)
    return (1 - ts[:, None]) * z_a + ts[:, None] * z_b


def unbroadcast(model, a, b, ts):
    z_a, z_b = codes(model, a, b)
    return model.g((1 - ts) * z_a + ts * z_b)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (reversed_path, "t runs backwards"),
        (codes_only, "decode them with model.g"),
        (lambda model, a, b, ts: ex.reference_pixel_path(a, b, ts), "that is the pixel blend"),
        (lambda model, a, b, ts: model(ex.reference_pixel_path(a, b, ts)), "decodes the pixel blend"),
        (lambda model, a, b, ts: ex.reference_pixel_path(model(a), model(b), ts), "blends the reconstructions"),
        (unbroadcast, "fails to broadcast"),
    ],
)
def test_latent_path_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.latent_path, wrong, capsys)
    assert returned is ex.reference_latent_path
    assert STATUS["wrong"] in line and hint in line, line


def test_latent_path_not_done(capsys):
    returned, line = feedback(ex.latent_path, not_implemented, capsys)
    assert returned is ex.reference_latent_path and STATUS["not done"] in line
