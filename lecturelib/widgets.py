"""Widgets for presenting live: controls tied to one matplotlib figure that is redrawn when a control moves."""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display


class LiveFigure:
    """Controls (ipywidgets) and one figure drawn by `draw(**values)`, redrawn on every change.

    >>> live = LiveFigure(draw_fn, d=widgets.SelectionSlider(options=[2, 8, 32]))
    >>> live          # shows the controls above the figure in a notebook
    `live.figure` is the last Figure drawn and `live.draws` counts redraws, so tests can check the callbacks.
    """

    def __init__(self, draw: Callable[..., plt.Figure], **controls: widgets.ValueWidget):
        if not controls:
            raise ValueError("LiveFigure needs at least one control")
        self.draw, self.controls = draw, controls
        self.output = widgets.Output()
        self.figure: plt.Figure | None = None
        self.draws = 0
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox(list(controls.values())), self.output])
        self.redraw()

    @property
    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> plt.Figure:
        """Draw the figure for the current control values and show it in the output area."""
        figure = self.draw(**self.values)
        if not isinstance(figure, plt.Figure):
            raise TypeError(f"draw must return a matplotlib Figure, got {type(figure).__name__}")
        self.figure = figure
        self.draws += 1
        with self.output:
            self.output.clear_output(wait=True)
            display(figure)
        plt.close(figure)  # shown through the output widget only, not again by the inline backend
        return figure

    def _on_change(self, change) -> None:
        self.redraw()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
