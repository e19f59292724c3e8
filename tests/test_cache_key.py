"""The checkpoint cache cannot go stale: each hole of issue 25 (another seed, a large array, a keyword-only default,
a plain object, the test data) gives another key, an input the key cannot describe means no caching, said once, and
a caller can name the key. Only train.fit's behaviour is used, so the tests run against any version of the store."""

import re

import numpy as np
import pytest
import torch

from lecturelib import models, objectives, train


@pytest.fixture(autouse=True)
def checkpoints_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURELIB_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.delenv("LECTURELIB_RETRAIN", raising=False)
    return tmp_path / "ckpt"


def data(n=48, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def mse(ae, x):
    return {"loss": objectives.reconstruction_error(x, ae(x)).mean()}


def run(loss=mse, seed=0, name="run", **kwargs):
    """Seed, build a small model, fit it with the cache; the model."""
    torch.manual_seed(seed)
    model = models.LinearAE(2)
    train.fit(model, loss, data(), epochs=1, batch_size=16, checkpoint=name, progress=False, **kwargs)
    return model


def cached(folder, name="run"):
    return sorted(folder.glob(f"{name}-*.pt"))


def test_another_seed_before_building_the_model_retrains(checkpoints_in_tmp, capsys):
    run(seed=0)
    run(seed=1)  # a student re-runs with another seed to see the spread
    assert len(cached(checkpoints_in_tmp)) == 2
    assert "loaded" not in capsys.readouterr().out


def test_a_large_numpy_array_the_loss_reads_is_part_of_the_key(checkpoints_in_tmp):
    namespace = {"objectives": objectives, "torch": torch, "weights": np.ones(5000, dtype=np.float32)}
    exec(
        "def loss(m, x):\n"
        "    w = torch.from_numpy(weights[2000:2784]).view(1, 1, 28, 28)\n"
        "    return {'loss': objectives.reconstruction_error(w * x, m(x)).mean()}\n",
        namespace,
    )
    run(namespace["loss"])
    namespace["weights"][2500] = 0.0  # in the middle, where numpy's repr writes "..."
    run(namespace["loss"])
    assert len(cached(checkpoints_in_tmp)) == 2


def _loss_with_keyword_only_default(scale):
    def loss(m, x, *, s=scale):
        return {"loss": objectives.reconstruction_error(s * x, m(x)).mean()}

    return loss


def test_a_keyword_only_default_is_part_of_the_key(checkpoints_in_tmp):
    run(_loss_with_keyword_only_default(1.0))
    run(_loss_with_keyword_only_default(0.5))  # the same code, another default
    assert len(cached(checkpoints_in_tmp)) == 2


class Settings:
    """A plain object a loss reads its settings from."""

    def __init__(self, level):
        self.level = level


def _loss_reading(namespace):
    exec(
        "def loss(m, x):\n    return {'loss': objectives.reconstruction_error(x.clamp(0, cfg.level), m(x)).mean()}",
        namespace,
    )
    return namespace["loss"]


def test_a_plain_object_changed_in_place_retrains(checkpoints_in_tmp):
    namespace = {"objectives": objectives, "cfg": Settings(0.5)}
    loss = _loss_reading(namespace)
    run(loss)
    namespace["cfg"].level = 0.8  # the same object, edited
    run(loss)
    assert len(cached(checkpoints_in_tmp)) == 2


def test_an_equal_plain_object_is_a_hit_as_in_a_new_kernel(checkpoints_in_tmp, capsys):
    namespace = {"objectives": objectives, "cfg": Settings(0.5)}
    loss = _loss_reading(namespace)
    run(loss)
    first = namespace["cfg"]  # kept alive, so that the new object cannot take its memory address
    namespace["cfg"] = Settings(0.5)  # what a new kernel builds: equal, at another address
    run(loss)
    assert len(cached(checkpoints_in_tmp)) == 1 and first.level == 0.5
    assert "(from the cache)" in capsys.readouterr().out


def test_an_input_the_key_cannot_describe_is_not_cached_and_fit_says_why(checkpoints_in_tmp, capsys):
    namespace = {"objectives": objectives, "torch": torch, "rng": np.random.default_rng(0)}
    exec(
        "def loss(m, x):\n"
        "    noise = torch.from_numpy(rng.normal(size=x.shape).astype('float32'))\n"
        "    return {'loss': objectives.reconstruction_error(x + 0.1 * noise, m(x)).mean()}\n",
        namespace,
    )
    run(namespace["loss"])
    run(namespace["loss"])
    assert not cached(checkpoints_in_tmp)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("not cached" in line and "`rng`" in line and "Generator" in line for line in lines)


def test_other_test_data_are_not_a_hit_and_the_test_figures_are_their_own(checkpoints_in_tmp):
    x = data()
    run(test=x[:16])
    torch.manual_seed(0)
    model = models.LinearAE(2)
    history = train.fit(model, mse, x, epochs=1, batch_size=16, test=x[16:32], checkpoint="run", progress=False)
    assert len(cached(checkpoints_in_tmp)) == 2
    assert history.test["loss"][-1] == pytest.approx(train.evaluate(model, mse, x[16:32])["loss"], rel=1e-5)


def test_a_key_given_by_the_caller_names_the_run(checkpoints_in_tmp, capsys):
    first = run(seed=0, key="v1")
    second = run(seed=1, key="v1")  # the caller's key says "the same run": loaded
    assert torch.equal(first.U, second.U) and len(cached(checkpoints_in_tmp)) == 1
    assert "from the cache, key 'v1'" in capsys.readouterr().out
    run(seed=0, key="v2")
    assert len(cached(checkpoints_in_tmp)) == 2
    with pytest.raises(ValueError, match="checkpoint"):
        train.fit(models.LinearAE(2), mse, data(), epochs=1, key="v1", progress=False)


FINISHED = r"run: 2 epochs in \d+\.\d s, loss \d[\d.e+-]*, test loss \d[\d.e+-]*"


def test_fit_prints_one_finished_line_trained_or_loaded(capsys):
    x = data()
    for _ in range(2):
        torch.manual_seed(0)
        train.fit(models.LinearAE(2), mse, x, epochs=2, batch_size=16, test=x[:16], checkpoint="run", progress=False)
    trained, loaded = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(FINISHED + r" \(trained\)", trained)
    assert re.fullmatch(FINISHED + r" \(from the cache\)", loaded)
    train.fit(models.LinearAE(2), mse, x, epochs=1, batch_size=16, progress=False)
    assert re.fullmatch(r"LinearAE: 1 epoch in .* \(trained\)\n", capsys.readouterr().out)


def _loss_from(folder, name: str, source: str):
    """`loss` of a module written from `source` to folder/name.py (a file: the key reads a function's source)."""
    import importlib.util

    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.loss


SOLUTION = """
def loss(ae, x):
    ### BEGIN SOLUTION
    x_hat = ae(x)  # (N, 1, 28, 28)
    return {"loss": (x - x_hat).pow(2).flatten(1).sum(1).mean()}
    ### END SOLUTION
"""
HANDED_IN = """
def loss(ae, x):
    x_hat = ae(x)

    return {"loss": (x - x_hat).pow(2).flatten(1)
                    .sum(1).mean()}
"""


def test_a_comment_or_another_layout_of_the_same_code_reuses_the_model(tmp_path, checkpoints_in_tmp, capsys):
    """What counts is the code as Python parses it: the instructor's solution and the same lines handed in without
    the solution markers and comments, laid out otherwise, train the same model, so the second run loads it."""
    run(_loss_from(tmp_path, "instructor", SOLUTION))
    capsys.readouterr()
    run(_loss_from(tmp_path, "student", HANDED_IN))
    assert len(cached(checkpoints_in_tmp)) == 1
    assert "from the cache" in capsys.readouterr().out


def test_one_changed_token_in_the_code_retrains(tmp_path, checkpoints_in_tmp, capsys):
    run(_loss_from(tmp_path, "instructor", SOLUTION))
    run(_loss_from(tmp_path, "student", HANDED_IN.replace("sum(1)", "mean(1)")))  # the per-pixel slip of 1.1
    assert len(cached(checkpoints_in_tmp)) == 2
