"""Checker of notebook 06's exercise 6.4 (a plain training loop): a counting Adam records the optimizer's use,
and the loss function records the mini-batches; the reference loop is reference_train_vae."""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from lecturelib import models, objectives

from . import Hint
from .nb06_networks import _digits


# ------------------------------------------------------------------------------------------------------------------
# 6.4 the training loop
# ------------------------------------------------------------------------------------------------------------------
def reference_train_vae(
    model: nn.Module, loss_fn, x: torch.Tensor, epochs: int, batch_size: int = 128, lr: float = 1e-3
) -> list[float]:
    """Adam on shuffled mini-batches for `epochs` passes over x (N, 1, 28, 28); the loss of every step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), device=x.device)  # a new order every epoch
        for start in range(0, len(x), batch_size):
            loss = loss_fn(model, x[order[start : start + batch_size]])["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


@contextlib.contextmanager
def _counting_adam(record: dict):
    """Replace torch.optim.Adam for the duration by a subclass that counts constructions, steps and zero_grads."""
    original = torch.optim.Adam

    class CountingAdam(original):
        def __init__(self, params, *args, **kwargs):
            super().__init__(params, *args, **kwargs)
            record["made"] += 1
            record["lr"] = self.defaults["lr"]

        def step(self, *args, **kwargs):
            record["steps"] += 1
            record["grads"].append(any(p.grad is not None for g in self.param_groups for p in g["params"]))
            return super().step(*args, **kwargs)

        def zero_grad(self, *args, **kwargs):
            record["zero_grads"] += 1
            return super().zero_grad(*args, **kwargs)

    torch.optim.Adam = CountingAdam
    try:
        yield
    finally:
        torch.optim.Adam = original


def _run_loop(f, model: nn.Module, x: torch.Tensor, epochs: int, batch_size: int, lr: float):
    """Run the student's loop with a counting Adam and a counting model.zero_grad (either way of clearing the
    gradients is right). Returns the losses it returned, the images of each batch it asked the loss for, the record."""
    seen: list[list[float]] = []

    def loss_fn(m, batch):
        seen.append(batch.detach().flatten(1).sum(1).tolist())  # the sums tell the images apart
        return objectives.vae_loss(m, batch)

    record = {"made": 0, "steps": 0, "zero_grads": 0, "lr": None, "grads": []}
    module_zero_grad = model.zero_grad

    def counting_zero_grad(*args, **kwargs):
        record["zero_grads"] += 1
        return module_zero_grad(*args, **kwargs)

    model.zero_grad = counting_zero_grad
    with _counting_adam(record):
        losses = f(model, loss_fn, x, epochs, batch_size=batch_size, lr=lr)
    return losses, seen, record


def _check_optimizer(record: dict, lr: float) -> None:
    """One Adam, made once, with the function's lr."""
    if record["made"] == 0:
        raise Hint("no Adam optimizer was made: optimizer = torch.optim.Adam(model.parameters(), lr=lr)")
    if record["made"] > 1:
        raise Hint(
            f"Adam was made {record['made']} times: make the optimizer once, before the loop (a new Adam "
            f"forgets its running averages of the gradients)"
        )
    if record["lr"] != lr:
        raise Hint(f"Adam got lr={record['lr']}: pass the function's lr argument")


def _check_batches(seen: list[list[float]], keys: list[float], epochs: int, batch_size: int) -> None:
    """Mini-batches of at most batch_size, every digit once per epoch, a new order every epoch."""
    n, calls, sizes = len(keys), len(seen), [len(b) for b in seen]
    per_epoch_batches = math.ceil(n / batch_size)
    if calls == epochs and max(sizes) == n:
        raise Hint("each step uses the whole training set: loop over mini-batches of batch_size digits")
    if max(sizes) > batch_size:
        raise Hint(f"a batch of {max(sizes)} digits for batch_size={batch_size}: slice x[order[i:i + batch_size]]")
    if not epochs * (n // batch_size) <= calls <= epochs * per_epoch_batches:
        raise Hint(
            f"loss_fn was called {calls} times for {epochs} epochs of {per_epoch_batches} mini-batches: once per "
            f"mini-batch of every epoch, range(0, len(x), batch_size)"
        )
    per_epoch = calls // epochs
    epochs_seen = [sum(seen[e * per_epoch : (e + 1) * per_epoch], []) for e in range(epochs)]
    for batch_keys in epochs_seen:
        if len(set(batch_keys)) < len(batch_keys):
            raise Hint(
                "some digits come twice in one epoch (torch.randint?): draw a permutation, "
                "torch.randperm(len(x)), so that every digit is used once per epoch"
            )
        if len(batch_keys) < n - batch_size + 1:
            raise Hint(f"an epoch used {len(batch_keys)} of the {n} digits: every digit once per epoch")
    if epochs_seen[0] == keys[: len(epochs_seen[0])] or all(e == epochs_seen[0] for e in epochs_seen[1:]):
        raise Hint(
            "the digits come in the same order every epoch: shuffle them anew each epoch, "
            "order = torch.randperm(len(x))"
        )


def _check_steps(record: dict, calls: int, changed: bool) -> None:
    """One step and one zero_grad (the optimizer's or the model's) per mini-batch, after a backward pass."""
    if record["steps"] != calls:
        raise Hint(
            f"optimizer.step() ran {record['steps']} times for {calls} mini-batches: once per mini-batch, "
            f"after loss.backward()"
        )
    if record["zero_grads"] < calls:
        raise Hint(
            "optimizer.zero_grad() is not called every step: without it the gradients of all earlier steps add up"
        )
    if not changed or not any(record["grads"]):
        raise Hint("the parameters did not change: call loss.backward() before optimizer.step()")


def _check_losses(losses, epochs: int, calls: int) -> None:
    """A list of one float per step (not the tensors: they keep their graphs), falling over the run."""
    if losses is None:
        raise Hint("train_vae returned None: return the list of the losses of every step")
    try:
        losses = list(losses)
    except TypeError:
        raise Hint(f"train_vae should return a list of the losses of every step, got {type(losses).__name__}") from None
    if len(losses) == epochs:
        raise Hint("return the loss of every step (a list of floats), not one per epoch")
    if len(losses) != calls:
        raise Hint(f"train_vae returned {len(losses)} losses for {calls} steps: append loss.item() once per step")
    if any(isinstance(v, torch.Tensor) and v.requires_grad for v in losses):
        raise Hint(
            "append loss.item() (a float), not the loss tensor: each tensor keeps its step's whole graph in memory"
        )
    losses = [float(v) for v in losses]
    head, tail = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    if not tail < head - 10:
        raise Hint(f"the loss did not fall ({head:.1f} -> {tail:.1f} nats over {calls} steps)")


def check_train_vae(f) -> None:
    """Runs the loop on a small VAE and 200 small images (3 epochs of batch 64): one Adam, one step and one zero_grad
    per mini-batch, every digit once per epoch in a new order, the parameters move and the loss falls."""
    torch.manual_seed(0)
    epochs, batch_size, lr = 3, 64, 3e-3
    x = _digits(200, seed=3)
    model = models.VAE(latent_dim=4, hidden_dim=32)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    losses, seen, record = _run_loop(f, model, x, epochs, batch_size, lr)
    if losses is None:
        raise Hint("train_vae returned None: return the list of the losses of every step")
    _check_optimizer(record, lr)
    _check_batches(seen, x.flatten(1).sum(1).tolist(), epochs, batch_size)
    changed = any(not torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    _check_steps(record, len(seen), changed)
    _check_losses(losses, epochs, len(seen))
