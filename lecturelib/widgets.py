"""Widgets for presenting live: controls tied to one matplotlib figure that is redrawn when a control moves.

`LiveFigure(draw, **controls)` is the one widget; the helpers below build its controls (a labelled choice slider,
a float slider, a dropdown, a play-button slider for interpolations, one slider per latent dimension) and the
figures it shows (`image_row`), so every notebook's widget is built from the same few pieces.
"""

from __future__ import annotations

import base64
import inspect
import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import traitlets
from IPython.display import display

# Controls redraw on release, not on every pixel of a drag: a redraw costs a model call and a PNG.
_STYLE = {"description_width": "initial"}
_LAYOUT = {"width": "24em"}


def _check_label(label: str) -> str:
    if not isinstance(label, str) or not label:
        raise TypeError(f"label must be a non-empty str, got {label!r}")
    return label


def choice_slider(label: str, options: Sequence, value=None) -> widgets.SelectionSlider:
    """A slider over a few values, e.g. the latent size: `choice_slider("latent size d", [2, 8, 32], value=8)`.

    `value` defaults to the first option and must be one of `options`.
    """
    _check_label(label)
    options = list(options)
    if not options:
        raise ValueError("options must hold at least one value")
    value = options[0] if value is None else value
    if value not in options:
        raise ValueError(f"value must be one of options {options}, got {value!r}")
    return widgets.SelectionSlider(
        options=options, value=value, description=label, continuous_update=False, style=_STYLE, layout=_LAYOUT
    )


def float_slider(label: str, min: float, max: float, step: float, value: float | None = None) -> widgets.FloatSlider:
    """A slider over [min, max] in steps of `step`, e.g. the noise level: `float_slider("σ", 0, 1, 0.05, 0.3)`."""
    _check_label(label)
    if not (math.isfinite(min) and math.isfinite(max) and min < max):
        raise ValueError(f"need finite min < max, got min={min!r}, max={max!r}")
    if not (step > 0):
        raise ValueError(f"step must be > 0, got {step!r}")
    value = min if value is None else value
    if not min <= value <= max:
        raise ValueError(f"value must lie in [{min}, {max}], got {value!r}")
    digits = _decimals(step)
    return widgets.FloatSlider(
        min=min,
        max=max,
        step=step,
        value=value,
        description=label,
        continuous_update=False,
        readout_format=f".{digits}f",
        style=_STYLE,
        layout=_LAYOUT,
    )


def _decimals(step: float) -> int:
    """How many decimals show `step` exactly (0.05 -> 2, 1 -> 0), capped at 4."""
    for digits in range(5):
        if abs(round(step, digits) - step) < 1e-9:
            return digits
    return 4


def dropdown(label: str, options: Sequence | dict, value=None) -> widgets.Dropdown:
    """A menu, e.g. which model to show: `dropdown("model", {"PCA": pca, "deep AE": ae})`.

    `options` is a list of values or a {shown label: value} dict; `value` defaults to the first.
    """
    _check_label(label)
    pairs = list(options.items()) if isinstance(options, dict) else [(str(o), o) for o in options]
    if not pairs:
        raise ValueError("options must hold at least one value")
    values = [v for _, v in pairs]
    value = values[0] if value is None else value
    if not any(value is v or _same(value, v) for v in values):
        raise ValueError(f"value must be one of the options' values, got {value!r}")
    return widgets.Dropdown(options=pairs, value=value, description=label, style=_STYLE)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors, arrays: identity only
        return False


class PlayControl(widgets.HBox):
    """A play button beside a slider over t in [0, 1] (for interpolations): `value` is t.

    The play button steps through `steps` evenly spaced values of t; dragging the slider works too.
    """

    value = traitlets.Float()

    def __init__(self, label: str = "t", steps: int = 11, interval_ms: int = 400):
        _check_label(label)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps must be an int >= 2, got {steps!r}")
        if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms < 50:
            raise ValueError(f"interval_ms must be an int >= 50, got {interval_ms!r}")
        self.ts = [round(i / (steps - 1), 4) for i in range(steps)]
        self.play = widgets.Play(min=0, max=steps - 1, step=1, value=0, interval=interval_ms, description="play")
        self.slider = widgets.SelectionSlider(
            options=self.ts, value=0.0, description=label, continuous_update=False, style=_STYLE, layout=_LAYOUT
        )
        super().__init__([self.play, self.slider])
        # Kernel-side links, so the same code path runs in a browser, under nbclient and in plain Python tests.
        self._links = [
            widgets.link((self.play, "value"), (self.slider, "index")),
            widgets.link((self.slider, "value"), (self, "value")),
        ]

    @traitlets.validate("value")
    def _nearest_step(self, proposal) -> float:
        t = float(proposal["value"])
        if not 0.0 <= t <= 1.0:
            raise traitlets.TraitError(f"t must lie in [0, 1], got {t}")
        return min(self.ts, key=lambda s: abs(s - t)) if hasattr(self, "ts") else t


def play_slider(label: str = "t", steps: int = 11, interval_ms: int = 400) -> PlayControl:
    """A play button and a slider over t in [0, 1], e.g. `play_slider("t", steps=11)` for z = (1 - t) z_a + t z_b."""
    return PlayControl(label, steps, interval_ms)


def latent_sliders(
    latent_dim: int, span: float = 3.0, step: float = 0.25, prefix: str = "z"
) -> dict[str, widgets.FloatSlider]:
    """One slider per latent coordinate over [-span, span]: {"z1": ..., "z2": ...}, to pass as `**controls`.

    With a standard normal prior, span=3 covers 99.7% of each coordinate's mass.
    """
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or not 1 <= latent_dim <= 8:
        raise ValueError(f"latent_dim must be an int in [1, 8] (one slider each), got {latent_dim!r}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span!r}")
    return {f"{prefix}{i + 1}": float_slider(f"${prefix}_{i + 1}$", -span, span, step, 0.0) for i in range(latent_dim)}


def image_row(
    images: torch.Tensor, titles: Sequence[str] | None = None, title: str | None = None, size: float = 1.1
) -> plt.Figure:
    """Images (N, 1, H, W) in [0, 1] side by side, each under its own small title (e.g. "t = 0.25", "σ = 0.3")."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 1 or len(images) == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (N>0, 1, H, W), got {shape}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles must have one entry per image ({len(images)}), got {len(titles)}")
    n = len(images)
    fig, axes = plt.subplots(
        1, n, figsize=(n * size + 0.2, size + (0.55 if title else 0.3)), squeeze=False, layout="constrained"
    )
    pixels = images.detach().float().cpu().clamp(0, 1)[:, 0].numpy()  # (N, 1, H, W) -> (N, H, W)
    for i, ax in enumerate(axes[0]):
        ax.imshow(pixels[i], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def figure_pixels(figure: plt.Figure, dpi: int = 72) -> np.ndarray:
    """The figure rendered to an (H, W, 4) uint8 RGBA array, whatever the backend (for tests and comparisons)."""
    from PIL import Image

    if not isinstance(figure, plt.Figure):
        raise TypeError(f"figure must be a matplotlib Figure, got {type(figure).__name__}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGBA"))


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")  # as the inline backend shows it
    return buffer.getvalue()


class LiveFigure:
    """Controls (ipywidgets) and one figure drawn by `draw(**values)`, redrawn on every change.

    >>> live = LiveFigure(draw_fn, d=choice_slider("latent size d", [2, 8, 32]))
    >>> live          # shows the controls above the figure in a notebook
    `live.figure` is the last Figure drawn and `live.draws` counts redraws, so tests can check the callbacks.
    Without a browser (nbconvert, HTML, slides) it shows the first figure as a PNG.
    """

    def __init__(self, draw: Callable[..., plt.Figure], **controls: widgets.ValueWidget):
        if not callable(draw):
            raise TypeError(f"draw must be callable, got {type(draw).__name__}")
        if not controls:
            raise ValueError("LiveFigure needs at least one control")
        for name, control in controls.items():
            if not isinstance(control, widgets.Widget) or not control.has_trait("value"):
                raise TypeError(
                    f"control {name!r} must be an ipywidgets widget with a value, got {type(control).__name__}"
                )
        try:
            inspect.signature(draw).bind(**{name: None for name in controls})
        except TypeError as error:
            raise TypeError(f"draw cannot take the controls {sorted(controls)} as keyword arguments: {error}") from None
        except ValueError:  # no signature (builtins): checked by the first draw instead
            pass
        self.draw, self.controls = draw, controls
        self.output = widgets.Output()
        self.figure: plt.Figure | None = None
        self.draws = 0
        self.error: BaseException | None = None
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox(list(controls.values())), self.output])
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> plt.Figure:
        """Draw the figure for the current control values and show it in the output area."""
        figure = self.draw(**self.values)
        if not isinstance(figure, plt.Figure):
            raise TypeError(f"draw must return a matplotlib Figure, got {type(figure).__name__}")
        self.figure = figure
        self.draws += 1
        self.error = None
        with self.output:
            self.output.clear_output(wait=True)
            display(figure)
        plt.close(figure)  # shown through the output widget only, not again by the inline backend
        return figure

    def _on_change(self, change) -> None:
        try:
            self.redraw()
        except Exception as error:
            self.error = error
            self.output.clear_output(wait=True)
            # In a kernel the Output widget prints the traceback where the figure was (and swallows it), so the
            # presenter sees what broke; in plain Python the error reaches whoever set the value.
            with self.output:
                raise

    def _repr_mimebundle_(self, **kwargs):
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        if self.figure is not None:
            # A static fallback: shown where no widget manager runs (nbconvert HTML, slides, GitHub).
            bundle["image/png"] = base64.b64encode(_png(self.figure)).decode("ascii")
        return bundle
