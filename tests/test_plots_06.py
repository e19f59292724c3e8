"""Notebook 06's plot helpers: the reparameterization graph and the side-by-side latent spaces."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from lecturelib import plots  # noqa: E402


def test_reparameterization_graph_draws_every_node_and_marks_eps_random():
    fig = plots.reparameterization_graph()
    texts = {t.get_text(): t for t in fig.axes[0].texts}
    assert {"x", "φ", "μ", "σ", "ε", "z", "θ", "log p"} <= set(texts)
    assert texts["ε"].get_bbox_patch().get_boxstyle().__class__.__name__ == "Circle"
    assert texts["z"].get_bbox_patch().get_boxstyle().__class__.__name__ != "Circle"
    plt.close(fig)


def test_latent_pair_one_panel_per_model_with_the_prior_circle():
    z = torch.randn(50, 2)
    fig = plots.latent_pair({"AE": z * 5, "VAE": z}, torch.randint(0, 10, (50,)), radius=2.45)
    panels = [ax for ax in fig.axes if ax.get_title() in ("AE", "VAE")]
    assert len(panels) == 2
    assert all(len(ax.patches) == 1 for ax in panels)
    plt.close(fig)
