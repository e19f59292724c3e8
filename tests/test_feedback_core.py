"""The feedback core that every checker shares: each diagnosis names the wrong answers of its kind and lets the
right ones through; `check` never raises and records its verdict in `passed`."""

import sys

import numpy as np
import pytest
import torch

from lecturelib.exercises import STATUS, Exercise, Hint, Question, call, compare, loss_terms, no_full_svd, reseeds


def _centre_checker(fn):
    x = torch.randn(6, 3) + 5
    compare(call(fn, x, what="centre(x)"), x - x.mean(0), "centre(x)")


def _centre(x):
    return x - x.mean(0)


# --- Exercise.check and Question.check: never raise, verdict in `passed` ------------------------------------------
def test_exercise_check_records_the_verdict_and_returns_what_the_notebook_uses(capsys):
    ex = Exercise("9.1", "centre", _centre_checker, reference=_centre)
    assert ex.passed is False  # before any check

    def not_done(x):
        raise NotImplementedError()

    assert ex.check(not_done) is _centre and ex.passed is False
    assert STATUS["not done"] in capsys.readouterr().out
    mine = lambda x: x - x.mean(dim=0, keepdim=True)  # noqa: E731
    assert ex.check(mine) is mine and ex.passed is True
    assert STATUS["correct"] in capsys.readouterr().out
    assert ex.check(lambda x: x) is _centre and ex.passed is False  # a wrong answer after a right one resets it


@pytest.mark.parametrize(
    "answer, says",
    [
        (lambda x: undefined_name, "NameError: name 'undefined_name' is not defined"),  # noqa: F821
        (lambda x: sys.exit(3), "SystemExit"),
        (lambda x: "garbage", "should return a tensor, got str"),
        (lambda x: None, "forget `return`"),
        (lambda x: 1 / 0, "ZeroDivisionError"),
        (lambda x: [][1], "IndexError"),
        (lambda x: x.reshape(99), "RuntimeError"),
        ("not a function", "TypeError"),
    ],
)
def test_exercise_check_never_raises_whatever_the_code_does(answer, says, capsys):
    ex = Exercise("9.1", "centre", _centre_checker, reference=_centre)
    assert ex.check(answer) is _centre and ex.passed is False
    line = capsys.readouterr().out.strip()
    assert line.startswith("Exercise 9.1") and STATUS["wrong"] in line and says in line, line


def test_exercise_check_reports_an_exception_whose_message_cannot_be_printed(capsys):
    class Broken(Exception):
        def __str__(self):
            raise RuntimeError("no")

    def answer(x):
        raise Broken()

    Exercise("9.1", "centre", _centre_checker, reference=_centre).check(answer)
    assert "your code raised Broken" in capsys.readouterr().out


CHOICES = {"a": "rises", "b": "falls"}


@pytest.mark.parametrize(
    "predict, status, says",
    [
        (lambda: "b", "correct", "the measurement says (b) falls"),
        (lambda: " (B) ", "correct", "(b) falls"),
        (lambda: "a", "wrong", "you predicted (a) rises, the measurement says (b) falls"),
        (lambda: b, "wrong", "NameError"),  # noqa: F821 - the forgotten quotes of issue 23
        (lambda: "yes", "wrong", "answer one of ['a', 'b']"),
        (lambda: None, "wrong", "answer one of"),
        (lambda: 1 / 0, "wrong", "ZeroDivisionError"),
    ],
)
def test_question_check_never_raises_and_returns_none(predict, status, says, capsys):
    question = Question("9.2", "the trend", choices=CHOICES)
    assert question.check(predict, "b", why="see the table") is None  # no stray True/False under the cell
    line = capsys.readouterr().out.strip()
    assert STATUS[status] in line and says in line, line
    assert question.passed is (status == "correct")


def test_question_not_done(capsys):
    def predict():
        raise NotImplementedError()

    question = Question("9.2", "the trend", choices=CHOICES)
    question.check(predict, "a")
    assert STATUS["not done"] in capsys.readouterr().out and question.passed is False


@pytest.mark.parametrize(
    "guess, passed",
    [(3.0, True), (np.float32(3.05), True), (torch.tensor(2.9), True), ("3", True), (4.0, False), (True, False),
     ([3.0], False), (float("nan"), False), ("three", False)],
)  # fmt: skip
def test_numeric_question_reads_any_number_and_refuses_the_rest(guess, passed, capsys):
    question = Question("9.3", "a number", rel_tol=0.05)
    question.check(lambda: guess, 3.0)
    assert question.passed is passed, capsys.readouterr().out


# --- call: the checker sees what the notebook passes ----------------------------------------------------------------
def _subtract_in_place(x):
    x -= x.mean(0)
    return x


def _write_into(x):
    x[:, 0] = 0
    return x - x.mean(0)


@pytest.mark.parametrize("wrong", [_subtract_in_place, _write_into, lambda x: x.sub_(x.mean(0))])
def test_call_names_the_input_changed_in_place(wrong):
    x = torch.randn(6, 3) + 5
    before = x.clone()
    with pytest.raises(Hint, match="changes its input `x` in place.*x_train"):
        call(wrong, x, what="centre(x)")
    assert torch.equal(x, before)  # the checker's own data is untouched


def test_call_checks_arrays_modules_keywords_and_lets_declared_changes_through():
    def scale_array(a):
        a *= 2
        return a

    with pytest.raises(Hint, match="`a` in place"):
        call(scale_array, np.ones(3))

    def zero_weights(model, x):
        torch.nn.init.zeros_(model.weight)
        return model(x)

    model, x = torch.nn.Linear(3, 2), torch.randn(4, 3)
    with pytest.raises(Hint, match="`model` in place"):
        call(zero_weights, model, x)
    call(zero_weights, model, x, may_change=("model",))  # training changes the model: declared
    assert torch.all(model.weight == 0)

    def keyword(x, *, noise):
        noise.add_(1)
        return x + noise

    with pytest.raises(Hint, match="`noise` in place"):
        call(keyword, x, noise=torch.zeros(4, 3))


def test_call_passes_right_answers_and_keeps_gradients():
    w = torch.randn(3, requires_grad=True)
    got = call(lambda v: (v * 2).sum(), w)
    got.backward()
    assert torch.equal(w.grad, torch.full((3,), 2.0))  # the copy is on the autograd graph of the original
    assert torch.equal(call(_centre, torch.ones(2, 2)), torch.zeros(2, 2))


# --- reseeds ---------------------------------------------------------------------------------------------------------
def test_reseeds_names_a_function_that_seeds_itself_and_leaves_the_random_stream_alone():
    def noisy_reseeding(x):
        torch.manual_seed(0)
        return x + torch.randn_like(x)

    def numpy_reseeding(x):
        return x + torch.from_numpy(np.random.default_rng(0).normal(size=x.shape)).float()

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for wrong in (noisy_reseeding, numpy_reseeding):
        with pytest.raises(Hint, match="reseeds inside the function"):
            reseeds(wrong, torch.zeros(3), what="noise(x)")
    assert torch.equal(torch.rand(3), expected)
    for right in (lambda x: x + torch.randn_like(x), lambda x: x + torch.from_numpy(np.random.normal(size=3)).float()):
        reseeds(right, torch.zeros(3))


# --- no_full_svd -----------------------------------------------------------------------------------------------------
def test_no_full_svd_names_the_memory_of_a_full_svd_and_restores_torch():
    real = torch.linalg.svd
    with pytest.raises(Hint, match="full_matrices=False.*GB"):
        no_full_svd(lambda x: torch.linalg.svd(x)[2], torch.randn(20, 3), what="axes(x)")
    assert torch.linalg.svd is real
    no_full_svd(lambda x: torch.linalg.svd(x, full_matrices=False)[2], torch.randn(20, 3))
    no_full_svd(lambda x: torch.linalg.svd(x.T @ x)[2], torch.randn(20, 3))  # square: no extra memory


# --- loss_terms: the contract of train.fit ---------------------------------------------------------------------------
def _terms(**kw):
    w = torch.ones((), requires_grad=True)
    terms = {"loss": w * 2, "rec": (w * 1.5).detach(), "kl": (w * 0.5).detach()}
    terms.update(kw)
    return terms


@pytest.mark.parametrize(
    "got, says",
    [
        (None, "forget `return`"),
        (torch.tensor(1.0), "should return a dict"),
        ({"loss": _terms()["loss"], "rec": _terms()["rec"]}, "no 'kl' entry"),
        (_terms(kl=0.5), "'kl' is a Python number.*item"),
        (_terms(loss=2.0), "'loss' is a Python number"),
        (_terms(rec=np.float64(1.5)), "'rec' is a Python number"),
        (_terms(loss=_terms()["loss"].detach()), "'loss' carries no gradient.*detach"),
        (_terms(rec=torch.ones(4)), r"'rec' has shape \(4,\)"),
        (_terms(rec=[1.5]), "'rec' should be a tensor, got list"),
    ],
)
def test_loss_terms_names_what_would_break_train_fit(got, says):
    with pytest.raises(Hint, match=says):
        loss_terms(got, ("loss", "rec", "kl"), "vae_loss(model, x)")


def test_loss_terms_accepts_the_contract_with_extra_terms():
    terms = loss_terms(_terms(extra=torch.tensor(0.0)), ("loss", "rec", "kl"), "vae_loss(model, x)")
    assert set(terms) == {"loss", "rec", "kl", "extra"}


# --- compare: the mistake named, for scalars too -----------------------------------------------------------------
@pytest.mark.parametrize(
    "got, want, says",
    [
        (2.0, 1.0, "twice"),
        (0.5, 1.0, "half"),
        (-1.5, 1.5, "wrong sign"),
        (64 * 1.3, 1.3, "summed over the batch of 64"),
        (1.3 / 64, 1.3, "averaged over the batch"),
        (1.3 / 784, 1.3, "per pixel"),
        (1.3, 1.0, "is 1.3, expected 1"),  # a ratio that means nothing is not called a factor
        (float("nan"), 1.0, "NaN"),
        ([1.0, 2.0], 1.0, "expected a scalar"),
        (1.0, [1.0, 2.0], "one value per example"),
        ([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], "twice"),
        ([1.3, 2.6, 3.9], [1.0, 2.0, 3.0], "factor 1.3"),
        ([1.5, 2.5, 3.5], [1.0, 2.0, 3.0], r"constant \(\+0.5"),
        ([1.0, 2.0, 9.0], [1.0, 2.0, 3.0], "differs from the reference"),
        ("3", 3.0, "should return a tensor, got str"),
    ],
)
def test_compare_names_the_mistake(got, want, says):
    got = torch.tensor(got) if isinstance(got, list) else got
    with pytest.raises(Hint, match=says):
        compare(got, torch.tensor(want), "the value", per_image=784, batch=64)


def test_compare_names_a_known_mistake_before_the_generic_ones():
    psnr = torch.tensor(21.0)
    with pytest.raises(Hint, match="peak 255"):
        compare(psnr + 48.13, psnr, "psnr(x, y)", known={"peak 255 where the images are in [0, 1]": psnr + 48.13})


@pytest.mark.parametrize(
    "got, want", [(1.0, 1.0), (1.00001, 1.0), (np.float64(2.0), 2.0), (torch.tensor([1.0, 2.0]), [1.0, 2.0])]
)
def test_compare_passes_right_answers(got, want):
    compare(got, torch.tensor(want), "the value", per_image=784, batch=64)
