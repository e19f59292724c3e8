"""Controls for presenting live: sliders and menus tied to one matplotlib figure that is redrawn when they move.

`LiveFigure(draw, **controls)` is the one live figure; every control in the notebooks is built here, with one
call each: `slider` (numbers), `choice_slider` (a few ordered values), `menu` (a drop-down list), `buttons`
(two to four options side by side). All of them are wide enough to drag on a projector, redraw when released
rather than at every pixel of a drag, and show their full label. `enable_when` greys out a control while it has
no effect.
"""

from __future__ import annotations

import base64
import inspect
import io
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

# Controls redraw on release, not on every pixel of a drag: a redraw costs a model call and a PNG.
_STYLE = {"description_width": "initial"}
_WIDTH = "24em"  # about 380 px at 16 px per em: four fit side by side on a 1280-px screen with the file browser open


def _check_label(label: str) -> str:
    if not isinstance(label, str) or not label:
        raise TypeError(f"label must be a non-empty str, got {label!r}")
    return label


def _options(options: Sequence | dict) -> list[tuple[str, Any]]:
    pairs = list(options.items()) if isinstance(options, dict) else [(str(o), o) for o in options]
    if not pairs:
        raise ValueError("options must hold at least one value")
    return pairs


def _initial(value, values: list, what: str = "options"):
    value = values[0] if value is None else value
    if not any(value is v or _same(value, v) for v in values):
        raise ValueError(f"value must be one of the {what} {values}, got {value!r}")
    return value


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors, arrays: identity only
        return False


def slider(label: str, min: float, max: float, step: float | None = None, value: float | None = None):
    """A slider over [min, max]: `slider("noise σ", 0.0, 1.0, 0.05, value=0.3)`, `slider("test digit", 0, 99)`.

    Whole numbers everywhere (min, max, step, value) give an integer slider (step 1 by default); otherwise a float
    slider with `step` (default: a twentieth of the range). `value` defaults to `min`.
    """
    _check_label(label)
    numbers = [n for n in (min, max, step, value) if n is not None]
    if any(isinstance(n, bool) or not isinstance(n, (int, float)) or n != n or abs(n) == float("inf") for n in numbers):
        raise ValueError(f"min, max, step and value must be finite numbers, got {numbers!r}")
    if not min < max:
        raise ValueError(f"need min < max, got min={min!r}, max={max!r}")
    if step is not None and not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    value = min if value is None else value
    if not min <= value <= max:
        raise ValueError(f"value must lie in [{min}, {max}], got {value!r}")
    common = dict(description=label, continuous_update=False, style=_STYLE, layout={"width": _WIDTH})
    if all(isinstance(n, int) for n in numbers):
        return ipywidgets.IntSlider(min=min, max=max, step=step or 1, value=value, **common)
    step = (max - min) / 20 if step is None else step
    return ipywidgets.FloatSlider(
        min=min, max=max, step=step, value=value, readout_format=f".{_decimals(step)}f", **common
    )


def _decimals(step: float) -> int:
    """How many decimals show `step` exactly (0.05 -> 2, 1 -> 0), capped at 4."""
    for digits in range(5):
        if abs(round(step, digits) - step) < 1e-9:
            return digits
    return 4


def choice_slider(label: str, options: Sequence, value=None) -> ipywidgets.SelectionSlider:
    """A slider over a few ordered values, e.g. the latent size: `choice_slider("latent size d", [2, 8, 32], 8)`.

    `value` defaults to the first option and must be one of `options`.
    """
    _check_label(label)
    options = list(options)
    if not options:
        raise ValueError("options must hold at least one value")
    return ipywidgets.SelectionSlider(
        options=options,
        value=_initial(value, options),
        description=label,
        continuous_update=False,
        style=_STYLE,
        layout={"width": _WIDTH},
    )


def menu(label: str, options: Sequence | dict, value=None) -> ipywidgets.Dropdown:
    """A drop-down list, e.g. which model to show: `menu("model", {"PCA": pca, "deep AE": ae})`.

    `options` is a list of values or a {shown label: value} dict; `value` defaults to the first.
    """
    _check_label(label)
    pairs = _options(options)
    value = _initial(value, [v for _, v in pairs], "options' values")
    return ipywidgets.Dropdown(options=pairs, value=value, description=label, style=_STYLE, layout={"width": _WIDTH})


def buttons(label: str, options: Sequence | dict, value=None) -> ipywidgets.ToggleButtons:
    """Two to four options side by side, one pressed: `buttons("q", ["diagonal", "full", "mixture"])`."""
    _check_label(label)
    pairs = _options(options)
    if len(pairs) > 4:
        raise ValueError(f"buttons take at most 4 options (use menu for more), got {len(pairs)}")
    value = _initial(value, [v for _, v in pairs], "options' values")
    return ipywidgets.ToggleButtons(options=pairs, value=value, description=label, style=_STYLE)


def enable_when(control: ipywidgets.Widget, other: ipywidgets.Widget, condition: Callable[[Any], bool]) -> None:
    """Grey out `control` whenever `condition(other.value)` is false, e.g. the number of components of a mixture:
    `enable_when(k, q, lambda q: q == "mixture")`. Applied now and on every change of `other`."""
    for widget, name in ((control, "control"), (other, "other")):
        if not isinstance(widget, ipywidgets.Widget) or not widget.has_trait("value"):
            raise TypeError(f"{name} must be a control with a value, got {type(widget).__name__}")
    if not callable(condition):
        raise TypeError(f"condition must be callable, got {type(condition).__name__}")

    def update(_=None) -> None:
        control.disabled = not condition(other.value)

    other.observe(update, names="value")
    update()


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

    def __init__(self, draw: Callable[..., plt.Figure], **controls: ipywidgets.ValueWidget):
        if not callable(draw):
            raise TypeError(f"draw must be callable, got {type(draw).__name__}")
        if not controls:
            raise ValueError("LiveFigure needs at least one control")
        for name, control in controls.items():
            if not isinstance(control, ipywidgets.Widget) or not control.has_trait("value"):
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
        self.output = ipywidgets.Output()
        self.figure: plt.Figure | None = None
        self.draws = 0
        self.error: BaseException | None = None
        for control in controls.values():
            control.observe(self._on_change, names="value")
        row = ipywidgets.HBox(list(controls.values()), layout={"flex_flow": "row wrap"})  # wraps on a narrow screen
        self.widget = ipywidgets.VBox([row, self.output])
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
