"""Plot helpers: image grids, rows of images to compare, training curves and 2-D latent scatters.

Each returns the matplotlib Figure (or draws into a given `ax`) and never calls plt.show().
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def _grid_array(images: torch.Tensor, nrow: int, padding: int = 2) -> np.ndarray:
    """(N, 1, H, W) in [0, 1] -> one (H', W') array of the images tiled nrow per row, `padding` white pixels around
    each (torchvision.utils.make_grid's layout with pad_value=1, without needing torchvision)."""
    images = images.detach().float().cpu().clamp(0, 1)[:, 0]
    n, h, w = images.shape
    if n == 1:  # one image: shown alone, without a frame (as make_grid does)
        return images[0].numpy()
    cols, rows = min(nrow, n), -(-n // nrow)
    grid = np.ones((rows * (h + padding) + padding, cols * (w + padding) + padding), dtype=np.float32)
    for i, image in enumerate(images.numpy()):
        top, left = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def image_grid(images: torch.Tensor, nrow: int = 10, title: str | None = None, ax=None) -> plt.Figure:
    """Show images (N, 1, 28, 28) in [0, 1] as one grid, nrow per row."""
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    if ax is None:
        rows = -(-len(images) // nrow)
        fig, ax = plt.subplots(figsize=(min(nrow, 12) * 0.6 + 0.4, rows * 0.6 + 0.4), layout="constrained")
    ax.imshow(_grid_array(images, nrow), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure


def compare_rows(rows: dict[str, torch.Tensor], title: str | None = None) -> plt.Figure:
    """One labelled row per entry, e.g. {"x": x, "PCA": x_pca, "AE": x_ae}, each (n, 1, 28, 28)."""
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(n * 0.6 + 1.2, len(rows) * 0.7 + 0.3), layout="constrained", squeeze=False
    )
    for ax, (label, images) in zip(axes[:, 0], rows.items()):
        ax.imshow(_grid_array(images, n), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    return fig


def history(hist, terms: list[str] | None = None, logy: bool = False) -> plt.Figure:
    """Training curves: one panel per logged term, train (solid) and test (dashed) per epoch."""
    terms = terms or list(hist.train)
    fig, axes = plt.subplots(1, len(terms), figsize=(3.6 * len(terms), 2.8), layout="constrained", squeeze=False)
    for ax, term in zip(axes[0], terms):
        epochs = np.arange(1, len(hist.train[term]) + 1)
        ax.plot(epochs, hist.train[term], label="train")
        if term in hist.test:
            ax.plot(epochs, hist.test[term], "--", label="test")
        ax.set_xlabel("epoch")
        ax.set_title(term)
        if logy:
            ax.set_yscale("log")
        ax.legend()
    return fig


def latent_scatter(z: torch.Tensor, labels: torch.Tensor, title: str | None = None, ax=None) -> plt.Figure:
    """2-D codes z (N, 2) coloured by digit label (N,)."""
    if z.dim() != 2 or z.shape[1] != 2:
        raise ValueError(f"z must have shape (N, 2), got {tuple(z.shape)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.5), layout="constrained")
    z, labels = z.detach().cpu().numpy(), labels.detach().cpu().numpy()
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=9.5)
    ax.figure.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax.figure


# --- notebook 05 ---
def density_contours(ax, axis: torch.Tensor, log_density: torch.Tensor, color: str, label: str) -> None:
    """Contours of a density on the square grid axis × axis (log_density: (G, G)) at the heights of a Gaussian's
    1, 2 and 3 standard deviations (density / max = exp(-r²/2)), labelled once in the legend."""
    density = log_density.detach().exp().cpu()
    levels = (density.max() * torch.exp(-0.5 * torch.tensor([9.0, 4.0, 1.0]))).tolist()
    ax.contour(axis.cpu(), axis.cpu(), density, levels=levels, colors=color, linewidths=1.2)
    ax.plot([], [], color=color, label=label)
    ax.set(xlabel="$z_1$", ylabel="$z_2$", aspect="equal")


def elbo_bars(ax, elbo: float, kl: float, log_px: float) -> None:
    """log p(x) = ELBO + KL(q || p(z|x)) as a waterfall of three bars, each labelled with its value (nats)."""
    ax.bar(0, elbo, color="C1", width=0.6)
    ax.bar(1, kl, bottom=elbo, color="C3", width=0.6)
    ax.bar(2, log_px, color="C0", width=0.6)
    ax.axhline(log_px, color="k", lw=0.8, ls="--")
    ax.axhline(0, color="k", lw=0.8)
    labels = [f"ELBO\n= {elbo:.2f}", f"+ KL(q‖p(z|x))\n= {kl:.2f}", f"= log p(x)\n= {log_px:.2f}"]
    ax.set_xticks([0, 1, 2], labels)
    ax.set(ylabel="nats", title="log p(x) = ELBO + KL(q ‖ p(z|x))")


# --- notebook 07 ---
def labelled_grid(images: torch.Tensor, nrow: int, rows: list[str], cols: list[str], title: str = "", ax=None):
    """Images (len(rows) * nrow, 1, 28, 28) as a grid with a label per row and per column (e.g. a latent traversal
    or digits re-drawn as 0..9), sized for a slide: about 0.7 in per image, at most 8 × 3.6 in."""
    if len(images) != len(rows) * nrow or len(cols) != nrow:
        raise ValueError(f"{len(images)} images for {len(rows)} rows of {nrow}, with {len(cols)} column labels")
    if ax is None:
        size = min(0.7, 7.2 / nrow, 3.0 / len(rows))
        _, ax = plt.subplots(figsize=(nrow * size + 0.8, len(rows) * size + 0.6), layout="constrained")
    ax.imshow(_grid_array(images, nrow), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([15 + 30 * i for i in range(nrow)], cols)
    ax.set_yticks([15 + 30 * i for i in range(len(rows))], rows)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title)
    return ax.figure


def score_panels(reference, scores: dict, titles: dict | None = None, xlabel: str = "", bins: int = 40):
    """Small multiples: one panel per entry of `scores` (name -> 1-D values), each over the same `reference` values
    (grey), on a shared logarithmic x axis; 2 rows of 3 panels at most, 8 × 3.6 in."""
    ref = np.asarray(reference, dtype=float)
    values = {name: np.asarray(s, dtype=float) for name, s in scores.items()}
    edges = np.logspace(
        *np.log10(
            [min(ref.min(), *(v.min() for v in values.values())), max(ref.max(), *(v.max() for v in values.values()))]
        ),
        bins,
    )
    fig, axes = plt.subplots(2, 3, figsize=(8, 3.6), sharex=True, layout="constrained")
    for ax, (name, v) in zip(axes.flat, values.items()):
        ax.hist(ref, bins=edges, color="grey", alpha=0.6, label="reference")
        ax.hist(v, bins=edges, color="tab:red", alpha=0.6, label=name)
        ax.set(xscale="log", yticks=[], title=(titles or {}).get(name, name))
    for ax in axes.flat[len(values) :]:
        ax.set_axis_off()
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    return fig


# --- notebook 03 ---
def toy_denoisers(x, x_tilde, sigma: float, grid, curves: dict) -> plt.Figure:
    """Notebook 03's ±1 toy model. Left: the noisy values x̃ = x + σε by class x = ±1 (x, x_tilde: (n, 1)).
    Right: denoisers h(x̃) on a grid (G, 1) of x̃, one curve per entry of `curves` ({label: (G, 1) values});
    labels starting with "posterior" are the analytic optima, drawn as thin black lines."""
    fig, (ax_data, ax_h) = plt.subplots(1, 2, figsize=(8, 3.6), layout="constrained")
    x, x_tilde, grid = x.cpu(), x_tilde.cpu(), grid.cpu()
    for value, colour in [(-1, "C0"), (1, "C1")]:
        ax_data.hist(x_tilde[x == value], bins=80, range=(-3.5, 3.5), alpha=0.6, color=colour, label=f"x = {value:+d}")
    ax_data.set(xlabel=r"$\tilde{x}$", ylabel="count", title=rf"data: $\tilde{{x}} = x + \sigma\epsilon$, σ = {sigma}")
    ax_data.legend(fontsize=10, loc="upper left")
    dashes = iter(["--", "-."])
    for i, (label, values) in enumerate(curves.items()):
        style = {"color": "k", "ls": next(dashes), "lw": 1.5} if label.startswith("posterior") else {"lw": 3}
        ax_h.plot(grid, values.detach().cpu(), label=label, **({"color": f"C{i}", "alpha": 0.7} | style))
    ax_h.axhline(1, color="C3", lw=1, ls=":")
    ax_h.axhline(-1, color="C3", lw=1, ls=":", label="the only values x takes")
    ax_h.set(xlabel=r"$\tilde{x}$", ylabel=r"$h(\tilde{x})$", title="the two denoisers and their optima")
    fig.legend(*ax_h.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=9)
    return fig


# --- notebook 04 ---
def score_table(scores: dict[str, dict[str, float]], loglik: dict[str, float] | None = None) -> str:
    """Notebook 04's table of sample scores: a row per name with quality.score's confidence and fd, and the held-out
    log q(z) where `loglik` holds the name without its " samples" suffix."""
    rows = [f"{'':34s} {'confidence':>10s} {'fd':>8s}" + (f" {'test log q(z)':>14s}" if loglik else "")]
    for name, s in scores.items():
        ll = (loglik or {}).get(name.removesuffix(" samples"))
        rows.append(f"{name:34s} {s['confidence']:10.3f} {s['fd']:8.1f}" + ("" if ll is None else f" {ll:14.1f}"))
    return "\n".join(rows)


# --- notebook 06 ---
_REPARAM_NODES = {  # name: (x, y, random?)
    "x": (0.0, 1.0, False),
    "φ": (0.0, 0.0, False),
    "μ": (1.2, 1.0, False),
    "σ": (1.2, 0.0, False),
    "ε": (2.4, -0.9, True),
    "z": (2.4, 0.5, False),
    "θ": (3.6, -0.9, False),
    "log p": (3.6, 0.5, False),
}
_REPARAM_EDGES = [("x", "μ"), ("φ", "μ"), ("x", "σ"), ("φ", "σ"), ("μ", "z"), ("σ", "z"), ("ε", "z")]
_REPARAM_EDGES += [("z", "log p"), ("θ", "log p")]


def reparameterization_graph(ax=None) -> plt.Figure:
    """The stochastic computational graph of z = μ(x; φ) + σ(x; φ) ⊙ ε: deterministic nodes as boxes, the random ε
    as a circle; the gradient path from log p back to φ and θ in red, which ε is not on."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.2), layout="constrained")
    grad = {("x", "μ"), ("φ", "μ"), ("x", "σ"), ("φ", "σ"), ("μ", "z"), ("σ", "z"), ("z", "log p"), ("θ", "log p")}
    for a, b in _REPARAM_EDGES:
        (xa, ya, _), (xb, yb, _) = _REPARAM_NODES[a], _REPARAM_NODES[b]
        ax.annotate(
            "",
            (xb, yb),
            (xa, ya),
            arrowprops={"arrowstyle": "-|>", "color": "black", "shrinkA": 16, "shrinkB": 16, "lw": 1.2},
        )
        if (a, b) in grad and a != "x":  # the backward pass runs along these edges, against the arrows
            ax.annotate(
                "",
                (xa, ya + 0.12),
                (xb, yb + 0.12),
                arrowprops={"arrowstyle": "-|>", "color": "C3", "shrinkA": 16, "shrinkB": 16, "ls": "--"},
            )
    for name, (x, y, random) in _REPARAM_NODES.items():
        box = {"boxstyle": "circle" if random else "round", "fc": "#fde7c8" if random else "#dde8f5", "ec": "black"}
        ax.text(x, y, name, ha="center", va="center", fontsize=15, bbox=box)
    ax.text(2.4, -1.45, "ε ~ N(0, I): random, outside the gradient path", ha="center", fontsize=11)
    ax.text(1.8, 1.45, "red, dashed: ∇ of log p flows back to φ and θ", ha="center", fontsize=11, color="C3")
    ax.set(xlim=(-0.5, 4.2), ylim=(-1.7, 1.7))
    ax.set_axis_off()
    return ax.figure


def latent_pair(codes: dict[str, torch.Tensor], labels: torch.Tensor, radius: float | None = None) -> plt.Figure:
    """2-D codes of several models side by side, {"AE": (N, 2), "VAE": (N, 2)}, coloured by label; with `radius`,
    the circle |z| = radius (e.g. the prior's 95 % region) drawn on each."""
    fig, axes = plt.subplots(1, len(codes), figsize=(4 * len(codes), 3.5), layout="constrained", squeeze=False)
    for ax, (name, z) in zip(axes[0], codes.items()):
        latent_scatter(z, labels, title=name, ax=ax)
        if radius is not None:
            ax.add_patch(plt.Circle((0, 0), radius, fill=False, color="black", ls="--", lw=1.2))
            ax.set_aspect("equal", adjustable="datalim")
    return fig
