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
    for exercise, name in [
        (ex.pca_reconstruct, "pca_reconstruct"),
        (ex.conv_decoder, "ConvDecoder"),
        (ex.latent_path, "latent_path"),
    ]:
        exercise.check(solution("02", name))
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


def centre_in_place(x, x_bar, U, d):
    x_c = x.flatten(1)  # a view of x: in the notebook, of x_test itself
    x_c -= x_bar
    return (x_bar + x_c @ U[:, :d] @ U[:, :d].T).view_as(x)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, m, U, d: (m + project(x.flatten(1), U[:, :d])).view_as(x), "project x − x̄, not x"),
        (lambda x, m, U, d: project(x.flatten(1) - m, U[:, :d]).view_as(x), "add the mean back"),
        (lambda x, m, U, d: (m + project(x.flatten(1) - m, U)).view_as(x), "keep the first d"),
        (lambda x, m, U, d: (m + project(x.flatten(1) - m, U[:, -d:])).view_as(x), "the last d columns"),
        (lambda x, m, U, d: m + project(x.flatten(1) - m, U[:, :d]), "reshape x̂ back"),
        (lambda x, m, U, d: (x.flatten(1) - m) @ U[:, :d], "these are the codes"),
        (centre_in_place, "changes its input `x` in place"),
    ],
)
def test_pca_reconstruct_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.pca_reconstruct, wrong, capsys)
    assert returned is ex.reference_pca_reconstruct
    assert STATUS["wrong"] in line and hint in line, line


@pytest.mark.parametrize(
    "right",
    [
        lambda x, m, U, d: (m + (x.reshape(len(x), -1) - m) @ U[:, :d] @ U[:, :d].T).reshape(x.shape),
        lambda x, m, U, d: (m + ((x.flatten(1) - m) @ U[:, :d]) @ U[:, :d].mT).view(-1, 1, 28, 28),
        lambda x, m, U, d: x - ((x.flatten(1) - m) @ (torch.eye(784) - U[:, :d] @ U[:, :d].T)).view_as(x),
    ],
)
def test_pca_reconstruct_accepts_other_correct_answers(right, capsys):
    returned, line = feedback(ex.pca_reconstruct, right, capsys)
    assert returned is right and STATUS["correct"] in line, line


def test_pca_reconstruct_not_done(capsys):
    returned, line = feedback(ex.pca_reconstruct, not_implemented, capsys)
    assert returned is ex.reference_pca_reconstruct and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# 2.2 ConvDecoder
# ------------------------------------------------------------------------------------------------------------------
def test_conv_decoder_accepts_the_notebook_solution(capsys):
    mine = solution("02", "ConvDecoder")
    returned, line = feedback(ex.conv_decoder, mine, capsys)
    assert returned is mine and line.startswith("Exercise 2.2") and STATUS["correct"] in line, line


def test_reference_conv_decoder_is_models_conv_ae_decoder():
    """Layer for layer the library's decoder: with the same weights, the same images."""
    from lecturelib import models

    ae = models.ConvAE(latent_dim=3, channels=4)
    mine = ex.ReferenceConvDecoder(3, 4)
    for ours, theirs in zip([mine.fc, mine.up1, mine.up2], [ae.decoder[0], ae.decoder[3], ae.decoder[5]]):
        ours.load_state_dict(theirs.state_dict())
    z = torch.randn(5, 3)
    with torch.no_grad():
        assert torch.allclose(mine(z), ae.g(z), atol=1e-6)


def test_a_transposed_convolution_is_the_adjoint_of_a_convolution():
    """⟨conv(x), y⟩ = ⟨x, convᵀ(y)⟩: the identity the checker's reference rests on, checked with conv2d itself."""
    up = torch.nn.ConvTranspose2d(6, 3, 3, stride=2, padding=1, output_padding=1, bias=False)
    x, y = torch.randn(2, 3, 14, 14), torch.randn(2, 6, 7, 7)
    down = torch.nn.functional.conv2d(x, up.weight, stride=2, padding=1)  # (2, 6, 7, 7)
    assert torch.allclose((down * y).sum(), (x * up(y)).sum(), rtol=1e-4)
    assert [ex.transposed_side(7, up), ex.transposed_side(14, up)] == [14, 28]


class Kernel4(torch.nn.Module):
    """Another correct decoder: kernel 4, stride 2, padding 1 doubles the side without output_padding."""

    def __init__(self, latent_dim, channels):
        super().__init__()
        self.c = channels
        self.fc = torch.nn.Linear(latent_dim, 2 * channels * 49)
        self.up1 = torch.nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1)
        self.up2 = torch.nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1)

    def forward(self, z):
        h = torch.relu(self.fc(z)).view(len(z), 2 * self.c, 7, 7)
        return torch.sigmoid(self.up2(torch.relu(self.up1(h))))


class Sequential(torch.nn.Module):
    """Another correct decoder: models.ConvAE's own layout, an nn.Sequential with a BatchNorm."""

    def __init__(self, latent_dim, channels):
        super().__init__()
        c, nn = channels, torch.nn
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * c * 49),
            nn.ReLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 3, 2, 1, 1),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 3, 2, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, z):
        return self.net(z)


@pytest.mark.parametrize("right", [ex.ReferenceConvDecoder, Kernel4, Sequential])
def test_conv_decoder_accepts_other_correct_answers(right, capsys):
    returned, line = feedback(ex.conv_decoder, right, capsys)
    assert returned is right and STATUS["correct"] in line, line


def variant(forward=None, **layers):
    """A subclass of the reference with other layers and/or another forward."""

    class Variant(ex.ReferenceConvDecoder):
        def __init__(self, latent_dim, channels):
            super().__init__(latent_dim, channels)
            for name, make in layers.items():
                setattr(self, name, make(channels))

    if forward is not None:
        Variant.forward = forward
    return Variant


def head(self, z):
    return self.unflatten(torch.relu(self.fc(z)))


def mixes_the_batch(self, z):
    h = torch.relu(self.fc(z)).view(-1, len(z), 7, 7).transpose(0, 1)  # channels and examples swapped
    return torch.sigmoid(self.up2(torch.relu(self.up1(h.reshape(len(z), -1, 7, 7)))))


def changes_z(self, z):
    z[0] = 0.0
    return ex.ReferenceConvDecoder.forward(self, z)


class NoLayers(torch.nn.Module):
    def __init__(self, latent_dim, channels):
        super().__init__()
        self.fc = torch.nn.Linear(latent_dim, 784)

    def forward(self, z):
        return torch.sigmoid(self.fc(z)).view(-1, 1, 28, 28)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (variant(up1=lambda c: torch.nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1)), "7 -> 13 -> 26"),
        (variant(up2=lambda c: torch.nn.ConvTranspose2d(c, 2, 3, 2, 1, 1)), "expected (3, 1, 28, 28)"),
        (variant(lambda self, z: torch.sigmoid(self.up2(self.up1(head(self, z))))), "no ReLU between"),
        (variant(lambda self, z: torch.sigmoid(torch.relu(self.up2(torch.relu(self.up1(head(self, z))))))), "≥ ½"),
        (variant(lambda self, z: self.up2(torch.relu(self.up1(head(self, z))))), "end forward with torch.sigmoid"),
        (variant(lambda self, z: torch.sigmoid(self.up1(head(self, z))[:, :1].repeat(1, 1, 2, 2))), "no gradient"),
        (variant(mixes_the_batch), "the examples of a batch mix"),
        (variant(changes_z), "changes its input `z` in place"),
        (variant(lambda self, z: ex.ReferenceConvDecoder.forward(self, z).detach()), "carries no gradient"),
        (NoLayers, "no nn.ConvTranspose2d"),
        (ex.ReferenceConvDecoder(2, 4), "pass the class itself"),
        (lambda latent_dim: ex.ReferenceConvDecoder(latent_dim, 4), "pass the class itself"),
        (variant(lambda self, z: self.up1(head(self, z))), "expected (3, 1, 28, 28)"),
    ],
)
def test_conv_decoder_names_the_mistake(wrong, hint, capsys):
    returned, line = feedback(ex.conv_decoder, wrong, capsys)
    assert returned is ex.ReferenceConvDecoder
    assert STATUS["wrong"] in line and hint in line, line


class NotDone(torch.nn.Module):
    def __init__(self, latent_dim, channels):
        super().__init__()
        raise NotImplementedError()


def test_conv_decoder_not_done(capsys):
    returned, line = feedback(ex.conv_decoder, NotDone, capsys)
    assert returned is ex.ReferenceConvDecoder and STATUS["not done"] in line


# ------------------------------------------------------------------------------------------------------------------
# 2.3 question: does a deep AE beat PCA at the same code size
# ------------------------------------------------------------------------------------------------------------------
def test_beats_pca_question_right_and_wrong(capsys):
    mine = solution("02", "predict_beats_pca")
    for predict, passed, said in [
        (mine, True, STATUS["correct"]),
        (lambda: "b", False, STATUS["wrong"]),
        (lambda: "yes", False, "answer one of"),
        (lambda: a, False, "NameError"),  # noqa: F821 - a forgotten quote is reported, not raised
        (not_implemented, False, STATUS["not done"]),
    ]:
        assert ex.beats_pca.check(predict, "a") is None
        out = capsys.readouterr().out
        assert ex.beats_pca.passed is passed and said in out and out.startswith("Exercise 2.3"), out


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
        (lambda model, a, b, ts: ex.pixel_blend(a, b, ts), "that is the pixel blend"),
        (lambda model, a, b, ts: model(ex.pixel_blend(a, b, ts)), "decodes the pixel blend"),
        (lambda model, a, b, ts: ex.pixel_blend(model(a), model(b), ts), "blends the reconstructions"),
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
