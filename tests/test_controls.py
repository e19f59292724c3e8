"""The control helpers and the live figure's callbacks in plain Python: move a control, check the figure changed."""

import base64
import io

import ipywidgets as ipw
import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from lecturelib import controls  # noqa: E402


def bar_figure(height):
    """A figure whose pixels depend on `height` only: one black bar of that height."""
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar([0], [height], color="black")
    ax.set_ylim(0, 10)
    ax.set_axis_off()
    return fig


def test_moving_a_slider_redraws_a_different_figure():
    live = controls.LiveFigure(bar_figure, height=controls.choice_slider("height", [1, 5, 9], value=1))
    before = controls.figure_pixels(live.figure)
    assert live.draws == 1
    live.controls["height"].value = 9
    after = controls.figure_pixels(live.figure)
    assert live.draws == 2
    assert before.shape == after.shape
    dark = lambda px: (px[..., :3].mean(-1) < 128).sum()  # noqa: E731
    assert dark(after) > 5 * dark(before)  # a bar 9 high has ~9x the black pixels of a bar 1 high


def test_setting_the_same_value_does_not_redraw():
    live = controls.LiveFigure(bar_figure, height=controls.slider("height", 0, 10, 0.5, 2.0))
    live.controls["height"].value = 2.0
    assert live.draws == 1


def test_draw_receives_every_control_value_by_name():
    seen = []

    def draw(d, sigma, model):
        seen.append((d, sigma, model))
        return bar_figure(1)

    live = controls.LiveFigure(
        draw,
        d=controls.choice_slider("d", [2, 8]),
        sigma=controls.slider("σ", 0, 1, 0.1, 0.3),
        model=controls.menu("model", {"PCA": "pca", "deep AE": "ae"}),
    )
    live.controls["model"].value = "ae"
    live.controls["sigma"].value = 0.7
    assert seen == [(2, 0.3, "pca"), (2, 0.3, "ae"), (2, 0.7, "ae")]
    assert live.values == {"d": 2, "sigma": 0.7, "model": "ae"}


def test_draw_not_returning_a_figure_is_a_type_error():
    with pytest.raises(TypeError, match="matplotlib Figure, got NoneType"):
        controls.LiveFigure(lambda d: None, d=controls.choice_slider("d", [1, 2]))


def test_error_in_a_callback_reaches_the_caller_outside_a_kernel_and_is_recorded():
    def draw(d):
        if d == 2:
            raise RuntimeError("decoder failed")
        return bar_figure(d)

    live = controls.LiveFigure(draw, d=controls.choice_slider("d", [1, 2, 3]))
    with pytest.raises(RuntimeError, match="decoder failed"):
        live.controls["d"].value = 2
    assert isinstance(live.error, RuntimeError) and live.draws == 1
    live.controls["d"].value = 3  # the widget recovers on the next change
    assert live.error is None and live.draws == 2


def test_draw_that_cannot_take_the_controls_is_rejected_up_front():
    with pytest.raises(TypeError, match="cannot take the controls"):
        controls.LiveFigure(lambda d: bar_figure(d), beta=controls.choice_slider("β", [1, 2]))


def test_controls_must_be_value_widgets():
    with pytest.raises(TypeError, match="control 'd'"):
        controls.LiveFigure(bar_figure, d=3)
    with pytest.raises(TypeError, match="control 'box'"):
        controls.LiveFigure(bar_figure, box=ipw.HBox([]))
    with pytest.raises(ValueError, match="at least one control"):
        controls.LiveFigure(bar_figure)


def test_mimebundle_holds_the_widget_and_a_png_of_the_current_figure():
    live = controls.LiveFigure(bar_figure, height=controls.choice_slider("height", [1, 9]))
    first = live._repr_mimebundle_()
    live.controls["height"].value = 9
    second = live._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in first
    png = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b["image/png"])))) for b in (first, second)]
    assert png[0].shape[-1] in (3, 4) and not np.array_equal(png[0], png[1])


def test_control_helpers_validate_their_arguments():
    with pytest.raises(ValueError, match="one of the options"):
        controls.choice_slider("d", [2, 8], value=3)
    with pytest.raises(ValueError, match="min < max"):
        controls.slider("σ", 1, 0, 0.1)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        controls.slider("σ", 0, 1, 0.1, 2)
    with pytest.raises(ValueError, match="options' values"):
        controls.menu("model", ["a", "b"], value="c")
    with pytest.raises(TypeError, match="label"):
        controls.choice_slider("", [1])
    assert controls.slider("σ", 0, 1, 0.05).readout_format == ".2f"


def test_figure_pixels_reflect_the_drawing():
    white, black = plt.figure(figsize=(1, 1)), plt.figure(figsize=(1, 1), facecolor="black")
    assert controls.figure_pixels(white)[..., :3].min() == 255
    assert controls.figure_pixels(black)[..., :3].max() == 0
    plt.close("all")


def test_slider_is_an_integer_slider_for_whole_numbers_and_a_float_slider_otherwise():
    digit = controls.slider("test digit", 0, 99)
    assert isinstance(digit, ipw.IntSlider) and (digit.min, digit.max, digit.step, digit.value) == (0, 99, 1, 0)
    sigma = controls.slider("noise σ", 0.0, 1.0, 0.05, value=0.3)
    assert isinstance(sigma, ipw.FloatSlider) and sigma.value == pytest.approx(0.3) and sigma.readout_format == ".2f"
    assert controls.slider("z1", -5.0, 5.0).step == pytest.approx(0.5)  # a twentieth of the range by default
    with pytest.raises(ValueError, match="finite"):
        controls.slider("σ", 0, float("nan"))


def test_every_control_is_wide_enough_to_drag_and_redraws_on_release():
    made = [
        controls.slider("t", 0.0, 1.0),
        controls.slider("example", 0, 20),
        controls.choice_slider("d", [2, 8]),
        controls.menu("digit", list(range(10))),
    ]
    assert all(c.layout.width == "24em" for c in made)
    assert all(c.continuous_update is False for c in made[:3])
    assert all(c.style.description_width == "initial" for c in made)  # the whole label shows


def test_buttons_show_a_few_options_and_refuse_many():
    q = controls.buttons("q", ["diagonal", "full", "mixture"], value="mixture")
    assert isinstance(q, ipw.ToggleButtons) and q.value == "mixture" and q.label == "mixture"
    with pytest.raises(ValueError, match="at most 4"):
        controls.buttons("digit", list(range(10)))


def test_enable_when_greys_out_a_control_while_it_has_no_effect():
    q = controls.buttons("q", ["diagonal", "full", "mixture"], value="diagonal")
    k = controls.slider("k", 1, 30, value=5)
    controls.enable_when(k, q, lambda value: value == "mixture")
    assert k.disabled
    q.value = "mixture"
    assert not k.disabled
    q.value = "full"
    assert k.disabled
    with pytest.raises(TypeError, match="condition"):
        controls.enable_when(k, q, "mixture")


def test_controls_wrap_onto_a_second_row_on_a_narrow_screen():
    live = controls.LiveFigure(
        lambda a, b: bar_figure(a + b), a=controls.slider("a", 0, 4), b=controls.slider("b", 0, 4)
    )
    assert live.widget.children[0].layout.flex_flow == "row wrap"
