"""The widgets' callbacks in plain Python: move a control, check the figure on show changed accordingly."""

import base64
import io

import ipywidgets as ipw
import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from lecturelib import widgets  # noqa: E402


def bar_figure(height):
    """A figure whose pixels depend on `height` only: one black bar of that height."""
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar([0], [height], color="black")
    ax.set_ylim(0, 10)
    ax.set_axis_off()
    return fig


def test_moving_a_slider_redraws_a_different_figure():
    live = widgets.LiveFigure(bar_figure, height=widgets.choice_slider("height", [1, 5, 9], value=1))
    before = widgets.figure_pixels(live.figure)
    assert live.draws == 1
    live.controls["height"].value = 9
    after = widgets.figure_pixels(live.figure)
    assert live.draws == 2
    assert before.shape == after.shape
    dark = lambda px: (px[..., :3].mean(-1) < 128).sum()  # noqa: E731
    assert dark(after) > 5 * dark(before)  # a bar 9 high has ~9x the black pixels of a bar 1 high


def test_setting_the_same_value_does_not_redraw():
    live = widgets.LiveFigure(bar_figure, height=widgets.float_slider("height", 0, 10, 0.5, 2.0))
    live.controls["height"].value = 2.0
    assert live.draws == 1


def test_draw_receives_every_control_value_by_name():
    seen = []

    def draw(d, sigma, model):
        seen.append((d, sigma, model))
        return bar_figure(1)

    live = widgets.LiveFigure(
        draw,
        d=widgets.choice_slider("d", [2, 8]),
        sigma=widgets.float_slider("σ", 0, 1, 0.1, 0.3),
        model=widgets.dropdown("model", {"PCA": "pca", "deep AE": "ae"}),
    )
    live.controls["model"].value = "ae"
    live.controls["sigma"].value = 0.7
    assert seen == [(2, 0.3, "pca"), (2, 0.3, "ae"), (2, 0.7, "ae")]
    assert live.values == {"d": 2, "sigma": 0.7, "model": "ae"}


def test_draw_not_returning_a_figure_is_a_type_error():
    with pytest.raises(TypeError, match="matplotlib Figure, got NoneType"):
        widgets.LiveFigure(lambda d: None, d=widgets.choice_slider("d", [1, 2]))


def test_error_in_a_callback_reaches_the_caller_outside_a_kernel_and_is_recorded():
    def draw(d):
        if d == 2:
            raise RuntimeError("decoder failed")
        return bar_figure(d)

    live = widgets.LiveFigure(draw, d=widgets.choice_slider("d", [1, 2, 3]))
    with pytest.raises(RuntimeError, match="decoder failed"):
        live.controls["d"].value = 2
    assert isinstance(live.error, RuntimeError) and live.draws == 1
    live.controls["d"].value = 3  # the widget recovers on the next change
    assert live.error is None and live.draws == 2


def test_draw_that_cannot_take_the_controls_is_rejected_up_front():
    with pytest.raises(TypeError, match="cannot take the controls"):
        widgets.LiveFigure(lambda d: bar_figure(d), beta=widgets.choice_slider("β", [1, 2]))


def test_controls_must_be_value_widgets():
    with pytest.raises(TypeError, match="control 'd'"):
        widgets.LiveFigure(bar_figure, d=3)
    with pytest.raises(TypeError, match="control 'box'"):
        widgets.LiveFigure(bar_figure, box=ipw.HBox([]))
    with pytest.raises(ValueError, match="at least one control"):
        widgets.LiveFigure(bar_figure)


def test_mimebundle_holds_the_widget_and_a_png_of_the_current_figure():
    live = widgets.LiveFigure(bar_figure, height=widgets.choice_slider("height", [1, 9]))
    first = live._repr_mimebundle_()
    live.controls["height"].value = 9
    second = live._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in first
    png = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b["image/png"])))) for b in (first, second)]
    assert png[0].shape[-1] in (3, 4) and not np.array_equal(png[0], png[1])


def test_play_control_steps_t_and_redraws():
    seen = []

    def draw(t):
        seen.append(t)
        return bar_figure(10 * t)

    play = widgets.play_slider("t", steps=5)
    live = widgets.LiveFigure(draw, t=play)
    play.play.value = 2  # what the play button does on its third tick
    assert play.value == pytest.approx(0.5) and seen[-1] == pytest.approx(0.5)
    play.slider.value = 1.0  # dragging the slider
    assert play.value == 1.0 and play.play.value == 4
    assert live.draws == 3


def test_play_control_rounds_t_to_its_steps_and_rejects_outside_unit_interval():
    play = widgets.play_slider("t", steps=3)
    play.value = 0.49
    assert play.value == 0.5 and play.slider.value == 0.5
    with pytest.raises(Exception, match=r"\[0, 1\]"):
        play.value = 1.5
    with pytest.raises(ValueError, match="steps"):
        widgets.play_slider("t", steps=1)


def test_latent_sliders_give_one_centred_slider_per_dimension():
    sliders = widgets.latent_sliders(3, span=2.0)
    assert list(sliders) == ["z1", "z2", "z3"]
    assert all(s.value == 0 and s.min == -2 and s.max == 2 for s in sliders.values())
    with pytest.raises(ValueError, match="latent_dim"):
        widgets.latent_sliders(20)


def test_control_helpers_validate_their_arguments():
    with pytest.raises(ValueError, match="one of options"):
        widgets.choice_slider("d", [2, 8], value=3)
    with pytest.raises(ValueError, match="min < max"):
        widgets.float_slider("σ", 1, 0, 0.1)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        widgets.float_slider("σ", 0, 1, 0.1, 2)
    with pytest.raises(ValueError, match="options' values"):
        widgets.dropdown("model", ["a", "b"], value="c")
    with pytest.raises(TypeError, match="label"):
        widgets.choice_slider("", [1])
    assert widgets.float_slider("σ", 0, 1, 0.05).readout_format == ".2f"


def test_image_row_shows_each_image_in_its_own_panel_with_its_title():
    images = torch.zeros(3, 1, 28, 28)
    images[1, :, 10:18, 10:18] = 1.0
    fig = widgets.image_row(images, titles=["a", "b", "c"], title="row")
    assert len(fig.axes) == 3 and [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    shown = [ax.images[0].get_array() for ax in fig.axes]
    assert np.array_equal(np.asarray(shown[1]), images[1, 0].numpy()) and np.asarray(shown[0]).max() == 0
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(N>0, 1, H, W\)"):
        widgets.image_row(torch.zeros(3, 28, 28))
    with pytest.raises(ValueError, match="one entry per image"):
        widgets.image_row(images, titles=["a"])


def test_figure_pixels_reflect_the_drawing():
    white, black = plt.figure(figsize=(1, 1)), plt.figure(figsize=(1, 1), facecolor="black")
    assert widgets.figure_pixels(white)[..., :3].min() == 255
    assert widgets.figure_pixels(black)[..., :3].max() == 0
    plt.close("all")
