"""Notebook 01's exercises: the checker accepts the notebook's own solution, names typical mistakes, and reports an
unfinished exercise as not done; the question compares a prediction with what the notebook measured."""

import pytest
import torch
from notebook_source import not_implemented, solution

from lecturelib import metrics, models
from lecturelib.exercises import STATUS
from lecturelib.exercises import nb01 as ex


def feedback(exercise, answer, capsys):
    """(what check() returned, the feedback line it printed)."""
    returned = exercise.check(answer)
    return returned, capsys.readouterr().out.strip()


def centred_svd(x):
    return torch.linalg.svd(x - x.mean(0, keepdim=True), full_matrices=False)


def codes_svd(U, X):
    return torch.linalg.svd(X @ U, full_matrices=False)


def centre_x_in_place(x, d):
    x -= x.mean(0, keepdim=True)  # in the notebook x is x_train.flatten(1), a view: this corrupts the data
    return torch.linalg.svd(x, full_matrices=False)[2][:d].T


def centre_X_in_place(U, X):
    X -= X.mean(0)  # X is centred already; in the notebook it is x_train's centred copy, reused later
    X *= 1.0
    X[0] = 0.0
    return U @ codes_svd(U, X)[2].T


def normalise_U_in_place(U, X):
    Wh = codes_svd(U, X)[2]
    U.copy_(U @ Wh.T)  # overwrites the trained decoder's weights in the notebook
    return U


# ------------------------------------------------------------------------------------------------------------------
# 1.1 reconstruction_loss
# ------------------------------------------------------------------------------------------------------------------
def test_reconstruction_loss_accepts_the_notebook_solution(capsys):
    mine = solution("01", "reconstruction_loss")
    returned, line = feedback(ex.reconstruction_loss, mine, capsys)
    assert returned is mine and line.startswith("Exercise 1.1") and STATUS["correct"] in line


def test_reference_reconstruction_loss_is_the_closed_form_for_an_orthonormal_U():
    ae = models.LinearAE(4)
    with torch.no_grad():
        ae.U.copy_(torch.linalg.qr(torch.randn(784, 4))[0])
    x = torch.rand(7, 1, 28, 28)
    flat = x.flatten(1).double()
    want = (flat.pow(2).sum(1) - (flat @ ae.U.detach().double()).pow(2).sum(1)).mean()  # Pythagoras
    got = ex.reference_reconstruction_loss(ae, x)["loss"]
    assert got.requires_grad and torch.allclose(got.double(), want, rtol=1e-5)


def x_hat(ae, x):
    return ae.g(ae.f(x))


def loss_of(ae, x):
    return (x - x_hat(ae, x)).pow(2).flatten(1).sum(1).mean()


def centre_in_place_then_loss(ae, x):
    x -= 0.5  # in the notebook, x would be a batch of the data set itself
    return {"loss": loss_of(ae, x)}


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda ae, x: {"loss": (x - x_hat(ae, x)).pow(2).mean()}, "per pixel"),
        (lambda ae, x: {"loss": (x - x_hat(ae, x)).pow(2).sum()}, "summed over the batch"),
        (lambda ae, x: {"loss": (x - x_hat(ae, x)).flatten(1).norm(dim=1).mean()}, "forgot the square"),
        (lambda ae, x: {"loss": (x - x_hat(ae, x)).abs().flatten(1).sum(1).mean()}, "an L1 loss"),
        (
            lambda ae, x: {"loss": (x - x_hat(ae, x)).pow(2).flatten(1).mean(1).sum()},
            "per pixel and summed over the batch",
        ),
        (lambda ae, x: (x - x_hat(ae, x)).pow(2).flatten(1).sum(1).mean(), 'return a dict, {"loss": value}'),
        (lambda ae, x: {"loss": (x - x_hat(ae, x)).pow(2).flatten(1).sum(1).mean().item()}, "Python number"),
        (lambda ae, x: {"loss": (x - x_hat(ae, x)).pow(2).flatten(1).sum(1).mean().detach()}, "carries no gradient"),
        (lambda ae, x: {"loss": (x - x_hat(ae, x)).pow(2).flatten(1).sum(1)}, "reduce it to a scalar"),
        (lambda ae, x: {"loss": loss_of(ae, x), "mse": loss_of(ae, x).item()}, "'mse' is a Python number"),
        (lambda ae, x: {"loss": loss_of(ae, x), "mse": float(loss_of(ae, x).detach())}, "not a tensor"),
        (lambda ae, x: {"mse": loss_of(ae, x)}, "no 'loss' entry"),
        (lambda ae, x: None, "forget `return`"),
        (centre_in_place_then_loss, "changes its input `x` in place"),
    ],
)
def test_reconstruction_loss_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.reconstruction_loss, wrong, capsys)
    assert returned is ex.reference_reconstruction_loss
    assert STATUS["wrong"] in line and hint in line, line


@pytest.mark.parametrize(
    "right",
    [
        lambda ae, x: {"loss": torch.nn.functional.mse_loss(ae(x), x, reduction="sum") / len(x)},
        lambda ae, x: {"loss": loss_of(ae, x), "per_pixel": (x - ae(x)).pow(2).mean()},
        lambda ae, x: {"loss": ((x - ae(x)) ** 2).sum(dim=(1, 2, 3)).mean()},
    ],
)
def test_reconstruction_loss_accepts_other_correct_answers(right, capsys):
    returned, line = feedback(ex.reconstruction_loss, right, capsys)
    assert returned is right and STATUS["correct"] in line, line


def test_the_accepted_loss_trains_with_train_fit(capsys):
    """What the checker accepts, train.fit can use: one epoch on a few digits runs and logs every term."""
    from lecturelib import train

    right = lambda ae, x: {"loss": loss_of(ae, x), "per_pixel": (x - ae(x)).pow(2).mean()}  # noqa: E731
    assert ex.reconstruction_loss.check(right) is right and ex.reconstruction_loss.passed
    hist = train.fit(models.LinearAE(2), right, torch.rand(64, 1, 28, 28), epochs=1, batch_size=32, progress=False)
    assert set(hist.train) >= {"loss", "per_pixel"}


def test_reconstruction_loss_not_done(capsys):
    returned, line = feedback(ex.reconstruction_loss, not_implemented, capsys)
    assert returned is ex.reference_reconstruction_loss and STATUS["not done"] in line


def test_checkers_do_not_move_the_notebooks_random_stream(capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.reconstruction_loss.check(solution("01", "reconstruction_loss"))
    ex.principal_axes.check(solution("01", "principal_axes"))
    ex.rotate_to_principal_axes.check(solution("01", "rotate_to_principal_axes"))
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------------------------------------------------------
# 1.2 principal_axes
# ------------------------------------------------------------------------------------------------------------------
def test_principal_axes_accepts_the_notebook_solution(capsys):
    mine = solution("01", "principal_axes")
    returned, line = feedback(ex.principal_axes, mine, capsys)
    assert returned is mine and line.startswith("Exercise 1.2") and STATUS["correct"] in line


def test_principal_axes_accepts_the_eigenvectors_of_the_covariance(capsys):
    returned, line = feedback(
        ex.principal_axes, lambda x, d: torch.linalg.eigh(torch.cov(x.T))[1].flip(1)[:, :d], capsys
    )
    assert STATUS["correct"] in line, line


def test_reference_principal_axes_span_sklearns_pca():
    from sklearn.decomposition import PCA

    x = torch.randn(300, 10) @ torch.randn(10, 10) + 4.0
    got = ex.reference_principal_axes(x, 3)
    want = torch.as_tensor(PCA(n_components=3).fit(x.numpy()).components_.T)
    assert metrics.principal_angles(got, want).max() < 0.1


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, d: torch.linalg.svd(x, full_matrices=False)[2][:d].T, "not centred"),
        (
            lambda x, d: torch.linalg.svd(x - x.mean(1, keepdim=True), full_matrices=False)[2][:d].T,
            "centred each example",
        ),
        (lambda x, d: centred_svd(x)[2][:d], "one axis per column"),
        (lambda x, d: centred_svd(x)[2][:, :d], "rows vs columns"),
        (lambda x, d: centred_svd(x)[2][-d:].T, "the last d axes"),
        (lambda x, d: centred_svd(x)[2].T, "keep only the first d"),
        (lambda x, d: centred_svd(x)[0][:, :d], "left factor A"),
        (lambda x, d: centred_svd(x)[2][:d].T * 3, "not unit vectors"),
        (lambda x, d: centred_svd(x)[2][:d].flip(0).T, "not in decreasing order"),
        (lambda x, d: torch.linalg.svd(x - x.mean(0))[2][:d].T, "full_matrices=False"),
        (centre_x_in_place, "changes its input `x` in place"),
    ],
)
def test_principal_axes_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.principal_axes, wrong, capsys)
    assert returned is ex.reference_principal_axes
    assert STATUS["wrong"] in line and hint in line, line


@pytest.mark.parametrize(
    "right",
    [
        lambda x, d: torch.linalg.svd(x - x.mean(0), full_matrices=False).Vh[:d].mT,
        lambda x, d: -centred_svd(x)[2][:d].T,  # each axis up to its sign
        lambda x, d: torch.pca_lowrank(x, q=d + 2, center=True, niter=6)[2][:, :d],
    ],
)
def test_principal_axes_accepts_other_correct_answers(right, capsys):
    returned, line = feedback(ex.principal_axes, right, capsys)
    assert returned is right and STATUS["correct"] in line, line


def test_principal_axes_checker_restores_torch_linalg_svd(capsys):
    real = torch.linalg.svd
    ex.principal_axes.check(lambda x, d: 1 / 0)
    assert torch.linalg.svd is real


def test_principal_axes_not_done(capsys):
    returned, line = feedback(ex.principal_axes, not_implemented, capsys)
    assert returned is ex.reference_principal_axes and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# 1.3 question: PCA's axes or a rotation
# ------------------------------------------------------------------------------------------------------------------
def test_axes_question_right_and_wrong(capsys):
    mine = solution("01", "predict_axes")
    for predict, truth, passed, status in [
        (mine, "b", True, "correct"),
        (lambda: "a", "b", False, "wrong"),
        (not_implemented, "b", False, "not done"),
        (lambda: b, "b", False, "wrong"),  # noqa: F821 - a forgotten quote: NameError, reported, not raised
    ]:
        assert ex.axes_or_rotation.check(predict, truth) is None
        assert ex.axes_or_rotation.passed is passed and STATUS[status] in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------------
# 1.4 rotate_to_principal_axes
# ------------------------------------------------------------------------------------------------------------------
def test_rotate_to_principal_axes_accepts_the_notebook_solution(capsys):
    mine = solution("01", "rotate_to_principal_axes")
    returned, line = feedback(ex.rotate_to_principal_axes, mine, capsys)
    assert returned is mine and line.startswith("Exercise 1.4") and STATUS["correct"] in line


def test_rotation_recovers_the_axes_from_a_rotated_basis_of_pcas_subspace():
    """U = V_d R for a random rotation R: rotating U by its codes' PCA gives V_d back, column by column up to sign."""
    x = torch.randn(500, 8, dtype=torch.float64) * torch.tensor([5.0, 4, 3, 2, 1.5, 1, 0.5, 0.2], dtype=torch.float64)
    X = x - x.mean(0)
    V = ex.reference_principal_axes(X, 3)
    R = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    got = ex.reference_rotate_to_principal_axes(V @ R, X)
    assert torch.allclose((got * V).sum(0).abs(), torch.ones(3, dtype=torch.float64), atol=1e-8)


@pytest.mark.parametrize(
    "right",
    [
        lambda U, X: U @ torch.linalg.eigh(U.T @ X.T @ X @ U)[1].flip(1),  # eigenvectors of the codes' covariance
        lambda U, X: U @ -codes_svd(U, X)[2].T,
        lambda U, X: (codes_svd(U, X)[2] @ U.T).T,
    ],
)
def test_rotate_to_principal_axes_accepts_other_correct_answers(right, capsys):
    returned, line = feedback(ex.rotate_to_principal_axes, right, capsys)
    assert returned is right and STATUS["correct"] in line, line


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda U, X: U @ codes_svd(U, X)[2], "rows vs columns"),
        (lambda U, X: U, "U unchanged"),
        (lambda U, X: ex.reference_principal_axes(X, U.shape[1]), "PCA's axes of X itself"),
        (lambda U, X: U @ codes_svd(U, X)[2].T.flip(1), "increasing order of variance"),
        (lambda U, X: codes_svd(U, X)[2].T, "the rotation itself"),
        (lambda U, X: codes_svd(U, X)[0], "normalised codes"),
        (lambda U, X: torch.linalg.svd(U, full_matrices=False)[0], "the SVD of U alone"),
        (lambda U, X: U @ torch.linalg.svd(X @ U)[2].T, "full_matrices=False"),  # 60,000² in full mode
        (centre_X_in_place, "changes its input `X` in place"),
        (normalise_U_in_place, "changes its input `U` in place"),
    ],
)
def test_rotate_to_principal_axes_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.rotate_to_principal_axes, wrong, capsys)
    assert returned is ex.reference_rotate_to_principal_axes
    assert STATUS["wrong"] in line and hint in line, line


def test_rotate_to_principal_axes_not_done(capsys):
    returned, line = feedback(ex.rotate_to_principal_axes, not_implemented, capsys)
    assert returned is ex.reference_rotate_to_principal_axes and STATUS["not done"] in line
