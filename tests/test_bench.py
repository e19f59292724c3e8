"""The benchmark's whole code path on a tiny budget: a few hundred real digits, one epoch, two tiny notebooks.

No timing is asserted (the machine may be busy); the JSON's structure and the figures' sanity are.
"""

import json
import math
import statistics

import nbformat
import numpy as np
import pytest
import torch

from course import bench, build_data
from lecturelib import data, models, objectives, train

pytestmark = pytest.mark.slow  # runs the benchmark end to end on a tiny data set


def _write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (the MNIST format: magic 0x0000 08 ndim, big-endian dims, bytes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A data root laid out as torchvision expects (MNIST/raw), holding 256 train and 128 test real digits."""
    root = tmp_path_factory.mktemp("mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 256), ("test", 128)):
        arrays = data.mnist_arrays()
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        images_file, labels_file = build_data.IDX_FILES[split]
        _write_idx(raw / images_file, images[:n])
        _write_idx(raw / labels_file, labels[:n])
    return root


def _notebook(path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def report(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    notebooks = out / "notebooks"
    notebooks.mkdir()
    _notebook(
        notebooks / "01_ok.ipynb",
        "import os\nassert os.environ['LECTURELIB_FAST'] == '1'\nassert os.environ['LECTURELIB_DEVICE'] == 'cpu'",
    )
    _notebook(notebooks / "02_fails.ipynb", "raise ValueError('this claim does not hold')")
    returned = bench.main(
        [
            "--data-root",
            str(tiny_root),
            "--json",
            str(out / "bench.json"),
            "--save",
            str(out / "vae.pt"),
            "--device",
            "cpu",
            "--ref-epochs",
            "1",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--threads",
            "1",
            "--notebooks",
            str(notebooks),
        ]
    )
    written = json.loads((out / "bench.json").read_text())
    return returned, written, out


def test_json_holds_the_returned_report(report):
    returned, written, _ = report
    assert written == json.loads(json.dumps(returned))
    assert set(written) >= {"date", "machine", "data", "targets", "devices", "notebooks", "notebook_totals", "verdict"}
    assert written["data"]["train"] == 256 and written["data"]["test"] == 128
    assert written["machine"]["torch"] == torch.__version__ and written["machine"]["torch_threads"] == 1


def test_verdict_checks_each_target_against_the_figures(report):
    (cpu,) = report[1]["devices"]
    verdict = {v["what"]: v for v in report[1]["verdict"]}
    ratio = verdict["epoch speed-up at batch 128"]
    assert ratio["value"] == cpu["epoch"]["ratio"] and ratio["met"] == (cpu["epoch"]["ratio"] >= 3.0)
    loss = verdict["test -ELBO in the reference's wall time"]
    assert loss["met"] == (cpu["budget"]["course"]["test_loss"] <= 100.0)
    assert verdict["whole course in fast mode (s)"]["value"] == report[1]["notebook_totals"][0]["seconds"]


def test_epoch_figures_are_positive_and_their_ratio_is_consistent(report):
    (cpu,) = report[1]["devices"]
    assert cpu["device"] == "cpu"
    e = cpu["epoch"]
    for key in ("reference_s", "course_s", "course_tuned_s"):
        assert e[key] > 0 and math.isfinite(e[key])
    # each epoch figure is the median of its own per-epoch timings (recorded separately in the report)
    assert e["reference_s"] == pytest.approx(statistics.median(e["reference"]["train_seconds"]))
    assert e["course"]["batch_size"] == 128 and e["course_tuned"]["batch_size"] == 64
    assert len(e["reference"]["train_seconds"]) == 1


def test_equal_time_run_reports_plausible_test_losses(report):
    (cpu,) = report[1]["devices"]
    ref, course = cpu["budget"]["reference"], cpu["budget"]["course"]
    # an untrained Bernoulli decoder scores about 784 log 2 = 543 nats; a trained one less, never below 0
    for loss in (ref["test_loss"], course["test_loss"]):
        assert 0 < loss < 784 * math.log(2) + 100
    assert course["epochs"] >= 1 and course["budget_s"] == pytest.approx(ref["wall_s"])
    assert course["test_loss"] == pytest.approx(course["test_recon_nll"] + course["test_kl"], rel=1e-4)


def test_saved_state_dict_loads_into_the_course_vae_and_scores_as_reported(report, tiny_root):
    (cpu,) = report[1]["devices"]
    vae = models.VAE(20, 400)
    vae.load_state_dict(torch.load(report[2] / "vae.pt", weights_only=True))
    x_test = bench.load_images(tiny_root, "test")
    torch.manual_seed(0)
    loss = train.evaluate(vae, objectives.vae_loss, x_test)["loss"]
    # the one-sample ELBO is stochastic: the same weights score within a few percent on 128 digits
    assert loss == pytest.approx(cpu["budget"]["course"]["test_loss"], rel=0.05)


def test_each_notebook_is_timed_and_a_failing_one_is_reported_not_fatal(report):
    notebooks = {n["notebook"]: n for n in report[1]["notebooks"]}
    assert set(notebooks) == {"01_ok.ipynb", "02_fails.ipynb"}
    assert all(n["mode"] == "fast" and n["device"] == "cpu" and n["seconds"] > 0 for n in notebooks.values())
    assert notebooks["01_ok.ipynb"]["ok"] and notebooks["01_ok.ipynb"]["error"] is None
    assert not notebooks["02_fails.ipynb"]["ok"] and "ValueError" in notebooks["02_fails.ipynb"]["error"]
    (total,) = report[1]["notebook_totals"]
    assert total["seconds"] == pytest.approx(sum(n["seconds"] for n in notebooks.values()))


def test_load_images_matches_load_mnist_layout(tiny_root):
    x = bench.load_images(tiny_root, "train", limit=10)
    images = data.mnist_arrays()["train_images"]
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], torch.from_numpy(images[:10]).float() / 255)


def test_reference_dataset_hands_out_what_torchvision_mnist_with_to_tensor_does(tiny_root):
    """Item by item: a (1, 28, 28) float tensor, the grey levels / 255, and the label as an int."""
    items = bench.ReferenceMNIST(tiny_root, "test")
    arrays = data.mnist_arrays()
    assert len(items) == 128
    for i in (0, 1, 127):
        x, y = items[i]
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32
        assert torch.equal(x[0], torch.from_numpy(arrays["test_images"][i]).float() / 255)
        assert type(y) is int and y == int(arrays["test_labels"][i])


def test_reference_model_matches_the_course_vae_in_size():
    sizes = lambda m: sorted(p.numel() for p in m.parameters())  # noqa: E731
    assert sizes(bench.ReferenceVAE()) == sizes(models.VAE(20, 400))


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--ref-epochs", "-1"], ["--batch-size", "0"]])
def test_bad_counts_are_refused(argv, tiny_root):
    with pytest.raises(SystemExit):
        bench.parse_args(["--data-root", str(tiny_root)] + argv)


def test_missing_data_root_is_refused_with_a_hint(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--data-root", str(tmp_path)])
    assert "course data export" in capsys.readouterr().err
