"""`python -m course bench`: the course's training path against the canonical PyTorch VAE, side by side.

It times (1) an epoch of the pytorch/examples-style VAE script and of `train.fit` on the same 784-400-20 model,
(2) the test loss each reaches in the reference's wall time, (3) every notebook end to end, on each device.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course import build_data
from lecturelib import models, objectives, recipes, train

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
# The course path's settings for the equal-wall-time run live in train (FAST_BATCH_SIZE, FAST_LR); notebook 06
# trains its VAE at that batch size, with the higher peak recipes.VAE_LR for its six-times-longer budget.
TUNED_BATCH_SIZE, TUNED_LR = recipes.FAST_BATCH_SIZE, recipes.FAST_LR
TARGETS = {
    "epoch_ratio_min": 3.0,
    "budget_test_loss_max": 100.0,
    "notebook_full_s_max": 300.0,
    "course_fast_s_max": 600.0,
}


# ---------------------------------------------------------------------------------------------------------------
# The reference: pytorch/examples vae/main.py, kept in its own style on purpose (it is what a student would run).
# ---------------------------------------------------------------------------------------------------------------
class ReferenceVAE(nn.Module):
    """The pytorch/examples VAE verbatim: 784-400-20, sigmoid output, fc21/fc22 heads as in that script."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def reference_loss(recon_x, x, mu, logvar):
    """The example's loss: summed BCE + KL over the batch (Kingma & Welling 2014, appendix B)."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


class ReferenceMNIST(torch.utils.data.Dataset):
    """What the reference's `datasets.MNIST(root, transform=transforms.ToTensor())` hands its DataLoader, item by item
    as torchvision does it: the IDX file's uint8 digit turned into a PIL image, then ToTensor's (1, 28, 28) float in
    [0, 1], and the label. Written out here so that the course needs no torchvision (PyPI's torchvision does not
    load beside PyTorch's CPU-only build); the per-item cost of the reference's input pipeline is the same."""

    def __init__(self, root: Path, split: str):
        images_file, labels_file = build_data.IDX_FILES[split]
        raw = Path(root) / "MNIST" / "raw"
        self.images = torch.tensor(build_data.read_idx(raw / images_file, build_data.IDX_ITEM_SHAPE["images"]))
        self.labels = torch.tensor(build_data.read_idx(raw / labels_file, build_data.IDX_ITEM_SHAPE["labels"]))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        picture = Image.fromarray(self.images[index].numpy(), mode="L")  # torchvision's MNIST.__getitem__
        # transforms.ToTensor(): HxW uint8 -> (1, H, W) float / 255
        x = torch.from_numpy(np.array(picture, np.uint8, copy=True)).view(28, 28, 1).permute(2, 0, 1)
        return x.contiguous().float().div(255), int(self.labels[index])


def run_reference(
    root: Path, device: torch.device, epochs: int, limit: int | None = None, batch_size: int = 128, lr: float = 1e-3
) -> dict:
    """Train and test the reference as its script does (DataLoader + ToTensor, test after every epoch).

    Returns per-epoch train and test seconds, the total wall time, and the last test loss (nats per image).
    """
    kwargs = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    train_set, test_set = ReferenceMNIST(root, "train"), ReferenceMNIST(root, "test")
    if limit is not None:
        train_set = torch.utils.data.Subset(train_set, range(min(limit, len(train_set))))
        test_set = torch.utils.data.Subset(test_set, range(min(limit, len(test_set))))
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True, **kwargs)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=batch_size, shuffle=False, **kwargs)
    model = ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    train_s, test_s, test_loss = [], [], math.nan
    start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        train_loss = 0.0
        for x, _ in train_loader:
            x = x.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(x)
            loss = reference_loss(recon, x, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        t1 = time.perf_counter()
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for x, _ in test_loader:
                x = x.to(device)
                recon, mu, logvar = model(x)
                test_loss += reference_loss(recon, x, mu, logvar).item()
        test_loss /= len(test_loader.dataset)
        train_s.append(t1 - t0)
        test_s.append(time.perf_counter() - t1)
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "train_seconds": train_s,
        "test_seconds": test_s,
        "seconds_per_epoch": statistics.median(train_s),
        "wall_s": time.perf_counter() - start,
        "test_loss": test_loss,
    }


# ---------------------------------------------------------------------------------------------------------------
# The course's path: models.VAE through train.fit, on tensors read from the same IDX files.
# ---------------------------------------------------------------------------------------------------------------
def load_images(root: Path, split: str, limit: int | None = None) -> torch.Tensor:
    """The images of <root>/MNIST/raw as load_mnist returns them: (N, 1, 28, 28) float32 in [0, 1]."""
    images_file = build_data.IDX_FILES[split][0]
    images = build_data.read_idx(Path(root) / "MNIST" / "raw" / images_file, build_data.IDX_ITEM_SHAPE["images"])
    if limit is not None:
        images = images[:limit]
    # (N, 28, 28) uint8 -> (N, 1, 28, 28) float32 in [0, 1]
    return torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_course_epochs(x_train: torch.Tensor, device: torch.device, epochs: int, batch_size: int, lr: float) -> dict:
    """Seconds per epoch of train.fit on models.VAE(20, 400), evaluation left out as for the reference."""
    model = models.VAE(20, 400).to(device)
    x = x_train.to(device)
    _sync(device)
    history = train.fit(model, objectives.vae_loss, x, epochs=epochs, batch_size=batch_size, lr=lr, progress=False)
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "train_seconds": history.seconds,
        "seconds_per_epoch": statistics.median(history.seconds),
    }


def run_course_budget(
    x_train: torch.Tensor,
    x_test: torch.Tensor,
    device: torch.device,
    budget_s: float,
    seconds_per_epoch: float,
    batch_size: int,
    lr: float,
) -> tuple[dict, nn.Module]:
    """Train the course's VAE for as many whole epochs as fit in `budget_s`, then report its test -ELBO.

    The one-cycle schedule needs its length up front, so the epochs come from the measured epoch time, less the
    time to move the data and to evaluate once; the wall time reported covers all of it, evaluation included.
    """
    start = time.perf_counter()
    model = models.VAE(20, 400).to(device)
    x, xt = x_train.to(device), x_test.to(device)
    t0 = time.perf_counter()
    train.evaluate(model, objectives.vae_loss, xt)  # warms up and measures one evaluation
    eval_s = time.perf_counter() - t0
    left = budget_s - (time.perf_counter() - start) - eval_s
    epochs = max(1, int(0.97 * left / seconds_per_epoch))  # 3 % margin for the noise of a shared machine
    history = train.fit(
        model, objectives.vae_loss, x, epochs=epochs, batch_size=batch_size, lr=lr, schedule="onecycle", progress=False
    )
    test = train.evaluate(model, objectives.vae_loss, xt)
    _sync(device)
    wall = time.perf_counter() - start
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "schedule": "onecycle",
        "wall_s": wall,
        "budget_s": budget_s,
        "train_loss": history.train["loss"][-1],
        "test_loss": test["loss"],
        "test_recon_nll": test["recon_nll"],
        "test_kl": test["kl"],
    }, model


# ---------------------------------------------------------------------------------------------------------------
# Notebooks, end to end, as a reader runs them (cold: a fresh checkpoint folder, so every model is trained).
# ---------------------------------------------------------------------------------------------------------------
def time_notebook(path: Path, fast: bool, device: torch.device, timeout: int = 1800) -> dict:
    """Execute one notebook in a fresh kernel (render.execute) and return its wall time and whether it ran cleanly."""
    from course import render

    with tempfile.TemporaryDirectory(prefix="lecturelib-bench-") as checkpoints:
        env = {"LECTURELIB_DEVICE": device.type, "LECTURELIB_CHECKPOINTS": checkpoints}
        _, error, seconds = render.execute(path, fast=fast, timeout=timeout, env=env)
    return {
        "notebook": path.name,
        "mode": "fast" if fast else "full",
        "device": device.type,
        "seconds": seconds,
        "ok": not error,
        "error": error or None,
    }


# ---------------------------------------------------------------------------------------------------------------
# The run, the table and the JSON.
# ---------------------------------------------------------------------------------------------------------------
def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _devices(choice: str) -> list[torch.device]:
    if choice == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but CUDA is not available")
    return [device]


def bench_device(
    device: torch.device, args: argparse.Namespace, x_train: torch.Tensor, x_test: torch.Tensor
) -> tuple[dict, nn.Module | None]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else machine()["cpu"]
    print(f"[{device.type}] reference: {args.ref_epochs} epochs of the pytorch/examples VAE ...", flush=True)
    torch.manual_seed(args.seed)
    ref = run_reference(args.data_root, device, args.ref_epochs, limit=args.limit)
    print(f"[{device.type}] course: {args.epochs} epochs of train.fit at batch 128 ...", flush=True)
    torch.manual_seed(args.seed)
    course = run_course_epochs(x_train, device, args.epochs, batch_size=128, lr=1e-3)
    torch.manual_seed(args.seed)
    tuned = run_course_epochs(x_train, device, args.epochs, batch_size=args.batch_size, lr=args.lr)
    result = {
        "device": device.type,
        "name": name,
        "epoch": {
            "reference_s": ref["seconds_per_epoch"],
            "course_s": course["seconds_per_epoch"],
            "ratio": ref["seconds_per_epoch"] / course["seconds_per_epoch"],
            "course_tuned_s": tuned["seconds_per_epoch"],
            "ratio_tuned": ref["seconds_per_epoch"] / tuned["seconds_per_epoch"],
            "reference": ref,
            "course": course,
            "course_tuned": tuned,
        },
    }
    model = None
    if not args.skip_budget:
        print(f"[{device.type}] course: train.fit for the reference's {ref['wall_s']:.0f} s ...", flush=True)
        torch.manual_seed(args.seed)
        budget, model = run_course_budget(
            x_train, x_test, device, ref["wall_s"], tuned["seconds_per_epoch"], args.batch_size, args.lr
        )
        result["budget"] = {"reference": {k: ref[k] for k in ("epochs", "wall_s", "test_loss")}, "course": budget}
    return result, model


def verdict(report: dict) -> list[dict]:
    """Each target of the issue against this run's figures: what, the value, the bound, and whether it is met."""
    out = []
    for r in report["devices"]:
        e = r["epoch"]
        out.append(
            {
                "device": r["device"],
                "what": "epoch speed-up at batch 128",
                "value": e["ratio"],
                "bound": f">= {TARGETS['epoch_ratio_min']}",
                "met": e["ratio"] >= TARGETS["epoch_ratio_min"],
            }
        )
        out.append(
            {
                "device": r["device"],
                "what": f"epoch speed-up at batch {e['course_tuned']['batch_size']}",
                "value": e["ratio_tuned"],
                "bound": f">= {TARGETS['epoch_ratio_min']}",
                "met": e["ratio_tuned"] >= TARGETS["epoch_ratio_min"],
            }
        )
        if "budget" in r:
            loss = r["budget"]["course"]["test_loss"]
            out.append(
                {
                    "device": r["device"],
                    "what": "test -ELBO in the reference's wall time",
                    "value": loss,
                    "bound": f"<= {TARGETS['budget_test_loss_max']}",
                    "met": loss <= TARGETS["budget_test_loss_max"],
                }
            )
    for n in report["notebooks"]:
        if n["mode"] == "full":
            out.append(
                {
                    "device": n["device"],
                    "what": f"{n['notebook']} in full mode (s)",
                    "value": n["seconds"],
                    "bound": f"<= {TARGETS['notebook_full_s_max']}",
                    "met": n["ok"] and n["seconds"] <= TARGETS["notebook_full_s_max"],
                }
            )
    for t in report["notebook_totals"]:
        if t["mode"] == "fast":
            out.append(
                {
                    "device": t["device"],
                    "what": "whole course in fast mode (s)",
                    "value": t["seconds"],
                    "bound": f"<= {TARGETS['course_fast_s_max']}",
                    "met": t["seconds"] <= TARGETS["course_fast_s_max"],
                }
            )
    return out


def print_table(report: dict) -> None:
    rows = []
    for r in report["devices"]:
        e = r["epoch"]
        rows.append((r["device"], "reference epoch (DataLoader+ToTensor, batch 128)", f"{e['reference_s']:.2f} s"))
        rows.append((r["device"], "course epoch (train.fit, batch 128)", f"{e['course_s']:.2f} s  ({e['ratio']:.2f}x)"))
        b = e["course_tuned"]["batch_size"]
        rows.append(
            (
                r["device"],
                f"course epoch (train.fit, batch {b})",
                f"{e['course_tuned_s']:.2f} s  ({e['ratio_tuned']:.2f}x)",
            )
        )
        if "budget" in r:
            ref, course = r["budget"]["reference"], r["budget"]["course"]
            rows.append(
                (
                    r["device"],
                    f"reference test -ELBO after {ref['epochs']} epochs, {ref['wall_s']:.1f} s",
                    f"{ref['test_loss']:.2f} nats",
                )
            )
            rows.append(
                (
                    r["device"],
                    f"course test -ELBO after {course['epochs']} epochs "
                    f"(batch {course['batch_size']}, one-cycle {course['lr']:g}), "
                    f"{course['wall_s']:.1f} s",
                    f"{course['test_loss']:.2f} nats",
                )
            )
    for n in report["notebooks"]:
        rows.append(
            (
                n["device"],
                f"notebook {n['notebook']} ({n['mode']})",
                f"{n['seconds']:.1f} s" + ("" if n["ok"] else f"  FAILED: {n['error']}"),
            )
        )
    for t in report["notebook_totals"]:
        rows.append((t["device"], f"all notebooks ({t['mode']})", f"{t['seconds']:.1f} s"))
    width = max((len(r[1]) for r in rows), default=10)
    m = report["machine"]
    print(
        f"\ncourse bench on {m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch threads), "
        f"torch {m['torch']}, {report['date']}"
    )
    for device, what, value in rows:
        print(f"  {device:5s} {what:<{width}}  {value}")
    if report.get("verdict"):
        print("targets:")
        for v in report["verdict"]:
            print(f"  {'✓' if v['met'] else '✗'} {v['device']:5s} {v['what']} = {v['value']:.4g} (target {v['bound']})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m course bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-root",
        type=Path,
        help="folder with MNIST's IDX files under MNIST/raw (default: written from data/mnist.npz "
        "into a temporary folder)",
    )
    p.add_argument("--json", type=Path, help="write the figures as JSON to this file")
    p.add_argument("--save", type=Path, help="save the equal-wall-time VAE's state_dict here (models.VAE(20, 400))")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto: the CPU, then the GPU if there is one")
    p.add_argument(
        "--ref-epochs",
        type=int,
        default=10,
        help="epochs of the reference; their wall time is the budget of the equal-time run (10)",
    )
    p.add_argument("--epochs", type=int, default=3, help="epochs of train.fit timed per setting (3)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=TUNED_BATCH_SIZE,
        help=f"batch size of the equal-time run ({TUNED_BATCH_SIZE})",
    )
    p.add_argument("--lr", type=float, default=TUNED_LR, help=f"one-cycle peak lr of the equal-time run ({TUNED_LR})")
    p.add_argument("--skip-budget", action="store_true", help="skip the equal-wall-time run")
    p.add_argument("--skip-notebooks", action="store_true", help="do not time the notebooks")
    p.add_argument(
        "--full-notebooks", action="store_true", help="time the notebooks in full mode too (default: fast mode only)"
    )
    p.add_argument("--notebooks", type=Path, default=NOTEBOOK_DIR, help="folder of notebooks to time (notebooks/)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--limit", type=int, help="use only the first N digits of each split (for quick checks)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("ref_epochs", "epochs", "batch_size", "threads", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive int, got {value}")
    if args.data_root is not None:
        raw = args.data_root / "MNIST" / "raw"
        if not all((raw / name).exists() for names in build_data.IDX_FILES.values() for name in names):
            p.error(
                f"the MNIST IDX files are not under {raw}: write them with "
                f"`python -m course data export {args.data_root}`, or leave --data-root out"
            )
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        if args.data_root is not None:
            return _run(args)
        with tempfile.TemporaryDirectory(prefix="lecturelib-mnist-") as root:
            build_data.write_idx(Path(root))  # the reference reads IDX files, as its script does through torchvision
            args.data_root = Path(root)
            return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> dict:
    x_train = load_images(args.data_root, "train", args.limit)
    x_test = load_images(args.data_root, "test", args.limit)
    print(f"MNIST from {args.data_root / 'MNIST' / 'raw'}: {len(x_train):,} train, {len(x_test):,} test digits")
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "data": {"root": str(args.data_root), "train": len(x_train), "test": len(x_test)},
        "targets": TARGETS,
        "devices": [],
        "notebooks": [],
        "notebook_totals": [],
    }
    for device in _devices(args.device):
        result, model = bench_device(device, args, x_train, x_test)
        report["devices"].append(result)
        _write(report, args.json)  # after each part, so a long run interrupted later keeps its figures so far
        if args.save is not None and model is not None and device == _devices(args.device)[0]:
            args.save.parent.mkdir(parents=True, exist_ok=True)
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, args.save)
            print(f"saved the VAE's state_dict to {args.save} (load into models.VAE(20, 400))")
        if not args.skip_notebooks:
            paths = sorted(Path(args.notebooks).glob("*.ipynb"))
            for fast in (True, False) if args.full_notebooks else (True,):
                timed = []
                for path in paths:
                    print(f"[{device.type}] notebook {path.name} ({'fast' if fast else 'full'}) ...", flush=True)
                    timed.append(time_notebook(path, fast, device))
                    _write(report | {"notebooks": report["notebooks"] + timed}, args.json)
                report["notebooks"].extend(timed)
                report["notebook_totals"].append(
                    {
                        "device": device.type,
                        "mode": "fast" if fast else "full",
                        "notebooks": len(timed),
                        "seconds": sum(n["seconds"] for n in timed),
                    }
                )
    report["verdict"] = verdict(report)
    print_table(report)
    if args.json is not None:
        _write(report, args.json)
        print(f"figures written to {args.json}")
    return report


def _write(report: dict, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
