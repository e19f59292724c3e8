"""Tests of the conditional VAE, the β-VAE objective and the digit classifier against torch.distributions."""

import pytest
import torch
from torch import distributions as D

from lecturelib import cachekey, models, objectives, quality, train


def binary_images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 28, 28, generator=g) > 0.7).float()


def test_conditional_elbo_matches_torch_distributions():
    torch.manual_seed(0)
    model = models.ConditionalVAE(latent_dim=3, hidden_dim=16)
    x, y = binary_images(5), torch.tensor([0, 3, 9, 3, 1])
    torch.manual_seed(1)
    terms = objectives.elbo_terms(model, x, y)
    torch.manual_seed(1)
    mu, logvar = model.encode(x, y)
    q = D.Normal(mu, torch.exp(0.5 * logvar))
    z = mu + q.stddev * torch.randn_like(mu)  # the same draw as reparameterize under the same seed
    log_px_z = D.Bernoulli(logits=model.decode(z, y)).log_prob(x).flatten(1).sum(1)
    kl = D.kl_divergence(q, D.Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1)
    torch.testing.assert_close(terms["log_px_z"], log_px_z)
    torch.testing.assert_close(terms["kl"], kl)
    torch.testing.assert_close(terms["elbo"], log_px_z - kl)


def test_conditional_vae_decoder_uses_the_label():
    torch.manual_seed(0)
    model = models.ConditionalVAE(latent_dim=2, hidden_dim=8)
    z = torch.zeros(2, 2)
    a, b = model.decode(z, torch.tensor([1, 7]))
    assert a.shape == (1, 28, 28) and not torch.allclose(a, b)
    mu_1, _ = model.encode(binary_images(1), torch.tensor([1]))
    mu_7, _ = model.encode(binary_images(1), torch.tensor([7]))
    assert not torch.allclose(mu_1, mu_7)


@pytest.mark.parametrize(
    "y, error",
    [
        (torch.tensor([0.0, 1.0]), TypeError),
        (torch.tensor([0, 10]), ValueError),
        (torch.tensor([-1, 2]), ValueError),
        (torch.tensor([1, 2, 3]), ValueError),
    ],
)
def test_conditional_vae_rejects_bad_labels(y, error):
    model = models.ConditionalVAE(latent_dim=2, hidden_dim=8)
    with pytest.raises(error, match="y"):
        model.encode(binary_images(2), y)


def test_conditional_vae_is_rebuilt_from_its_config():
    """The rebuilt model takes the original's weights (any other layer shape fails) and computes the same function."""
    torch.manual_seed(0)
    model = models.ConditionalVAE(latent_dim=4, hidden_dim=32, num_classes=10)
    clone = models.build("ConditionalVAE", model.config)
    clone.load_state_dict(model.state_dict())
    x, y = binary_images(3), torch.tensor([0, 4, 9])
    for a, b in zip(model.encode(x, y), clone.encode(x, y)):
        torch.testing.assert_close(a, b)
    z = torch.randn(3, 4)
    torch.testing.assert_close(model.decode(z, y), clone.decode(z, y))


def test_conditional_vae_loss_trains_with_fit_on_labelled_batches():
    torch.manual_seed(0)
    model = models.ConditionalVAE(latent_dim=2, hidden_dim=32)
    y = torch.arange(100) % 10
    x = binary_images(10)[y]  # one fixed pattern per label: learnable from y alone
    before = train.evaluate(model, objectives.conditional_vae_loss, (x, y))["loss"]
    train.fit(model, objectives.conditional_vae_loss, (x, y), epochs=10, batch_size=20, lr=1e-2, progress=False)
    after = train.evaluate(model, objectives.conditional_vae_loss, (x, y))["loss"]
    assert after < before - 150  # from ~784 log 2 = 543 nats (random logits)


@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0])
def test_beta_vae_loss_weighs_the_kl_by_beta(beta):
    torch.manual_seed(0)
    model = models.VAE(latent_dim=3, hidden_dim=16)
    x = binary_images(6)
    torch.manual_seed(2)
    terms = objectives.beta_vae_loss(beta)(model, x)
    torch.manual_seed(2)
    mu, logvar = model.encode(x)
    q = D.Normal(mu, torch.exp(0.5 * logvar))
    z = mu + q.stddev * torch.randn_like(mu)
    log_px_z = D.Bernoulli(logits=model.decode(z)).log_prob(x).flatten(1).sum(1)
    kl = D.kl_divergence(q, D.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(terms["loss"], (-log_px_z + beta * kl).mean())
    torch.testing.assert_close(terms["kl"], kl.mean())


def test_beta_vae_loss_at_beta_one_is_the_negative_elbo():
    torch.manual_seed(0)
    model, x = models.VAE(latent_dim=3, hidden_dim=16), binary_images(6)
    torch.manual_seed(3)
    ours = objectives.beta_vae_loss(1)(model, x)["loss"]
    torch.manual_seed(3)
    torch.testing.assert_close(ours, objectives.vae_loss(model, x)["loss"])


def test_beta_vae_losses_are_told_apart_by_the_checkpoint_cache():
    assert cachekey.digest(objectives.beta_vae_loss(1.0)) != cachekey.digest(objectives.beta_vae_loss(4.0))
    assert cachekey.digest(objectives.beta_vae_loss(4)) == cachekey.digest(objectives.beta_vae_loss(4.0))


@pytest.mark.parametrize("beta", [-1.0, float("nan"), "2", True])
def test_beta_vae_loss_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        objectives.beta_vae_loss(beta)


def test_classification_loss_is_the_categorical_negative_log_likelihood():
    torch.manual_seed(0)
    model = quality.DigitClassifier(channels=4, feature_dim=16)
    x, y = binary_images(8), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    terms = quality.classification_loss(model, (x, y))
    logits = model(x)
    torch.testing.assert_close(terms["loss"], -D.Categorical(logits=logits).log_prob(y).mean())
    torch.testing.assert_close(terms["error"], (logits.argmax(1) != y).float().mean())
    assert model.predict(x).shape == (8,) and model.predict(x).dtype == torch.int64
