"""Exercises of notebook 02 (deep auto-encoders): `from lecturelib.exercises import nb02 as ex`.

2.1 pca_reconstruct: the PCA baseline x̂ = x̄ + U_d U_dᵀ (x − x̄).
2.2 conv_decoder: the decoder g of a convolutional AE, made of transposed convolutions (a class, ConvDecoder).
2.3 (question) can a non-linear auto-encoder beat PCA, the optimal linear one, at the same code size?
2.4 latent_path: the latent-space interpolation g((1 − t) f(x) + t f(x')).

Each checker runs the student's code the way the notebook does (on copies: an input changed in place is named, since
in the notebook it is x_test itself), in more than one configuration, against an independent reference: least
squares instead of the projection formula; each transposed convolution computed as the adjoint of a convolution
(torch.nn.grad.conv2d_input); one t at a time instead of broadcasting.
"""

from __future__ import annotations

import copy
import inspect

import torch
from torch import nn

from lecturelib import models

from . import Exercise, Hint, Question, as_tensor, call, compare

P = models.P  # 784 pixels


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------------------------
# 2.1 the PCA baseline
# ------------------------------------------------------------------------------------------------------------------
def reference_pca_reconstruct(x: torch.Tensor, x_bar: torch.Tensor, U: torch.Tensor, d: int) -> torch.Tensor:
    """x̂ = x̄ + U_d U_dᵀ (x − x̄), U_d the first d columns of U.  x: (N, 1, 28, 28), x_bar: (p,), U: (p, k) -> like x"""
    U_d = U[:, :d]  # (p, d)
    return (x_bar + (x.flatten(1) - x_bar) @ U_d @ U_d.T).view_as(x)


def _check_pca_case(fn, x, x_bar, U, d) -> None:
    n = len(x)
    what = f"pca_reconstruct(x, x_bar, U, {d})"
    got = as_tensor(call(fn, x, x_bar, U, d, what=what), what)
    flat, mean, U_d = x.flatten(1).double(), x_bar.double(), U[:, :d].double()
    # independent of the projection formula: the least-squares coefficients of x − x̄ on U_d's columns
    coef = torch.linalg.lstsq(U_d, (flat - mean).T).solution  # (d, N)
    want = (mean + (U_d @ coef).T).view_as(x)
    if got.shape == (n, d):
        raise Hint(
            f"shape {tuple(got.shape)}: these are the codes z = U_dᵀ(x − x̄); decode them too, x̄ + U_d z, "
            f"and reshape to x's shape"
        )
    if got.shape == (n, P):
        raise Hint(f"shape {tuple(got.shape)}: reshape x̂ back to the images' shape {tuple(x.shape)}, e.g. .view_as(x)")
    if got.shape == x.shape and torch.isfinite(got).all():
        G = got.detach().double().flatten(1)
        project = lambda v, basis: v @ basis @ basis.T  # noqa: E731
        U_all = U.double()
        slips = [
            (mean + project(flat, U_d), "project x − x̄, not x: x̂ = x̄ + U_d U_dᵀ (x − x̄)"),
            (project(flat - mean, U_d), "add the mean back after projecting: x̂ = x̄ + U_d U_dᵀ (x − x̄)"),
            (project(flat, U_d), "centre first and add the mean back: x̂ = x̄ + U_d U_dᵀ (x − x̄)"),
            (mean + project(flat - mean, U_all), f"that uses all {U.shape[1]} axes of U: keep the first d, U[:, :d]"),
            (
                mean + project(flat - mean, U_all[:, -d:]),
                "that uses the last d columns of U: the top axes come first, U[:, :d]",
            ),
        ]
        for slip, message in slips:
            if not _close(G, want.flatten(1)) and _close(G, slip):
                raise Hint(message)
    compare(got, want, f"pca_reconstruct(x, x_bar, U, {d})", atol=1e-4)


def check_pca_reconstruct(fn) -> None:
    """Against x̄ plus the least-squares fit of x − x̄ by U_d's columns, for d = 3 and d = 1 of k = 5 axes."""
    x = torch.rand(6, 1, 28, 28)
    x_bar = 0.3 * torch.rand(P)
    U = torch.linalg.qr(torch.randn(P, 5))[0]  # (p, 5), orthonormal columns
    _check_pca_case(fn, x, x_bar, U, 3)
    _check_pca_case(fn, x, x_bar, U, 1)


pca_reconstruct = Exercise(
    "2.1", "the PCA baseline x̂ = x̄ + U_d U_dᵀ(x − x̄)", check_pca_reconstruct, reference_pca_reconstruct
)


# ------------------------------------------------------------------------------------------------------------------
# 2.2 the transposed-convolution decoder
# ------------------------------------------------------------------------------------------------------------------
class ReferenceConvDecoder(nn.Module):
    """g: z (N, d) -> x̂ (N, 1, 28, 28) in [0, 1], the reciprocal of models.ConvAE's encoder (its decoder, layer
    for layer): Linear d -> 2c·7·7, then transposed convolutions 7 -> 14 -> 28, ReLU between, a sigmoid at the end."""

    def __init__(self, latent_dim: int, channels: int):
        super().__init__()
        c = channels
        self.latent_dim = latent_dim
        self.fc = nn.Linear(latent_dim, 2 * c * 7 * 7)
        self.unflatten = nn.Unflatten(1, (2 * c, 7, 7))
        self.up1 = nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(c, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.unflatten(torch.relu(self.fc(z)))  # (N, d) -> (N, 2c, 7, 7)
        h = torch.relu(self.up1(h))  # -> (N, c, 14, 14)
        return torch.sigmoid(self.up2(h))  # -> (N, 1, 28, 28)


def transposed_side(side: int, layer: nn.ConvTranspose2d) -> int:
    """The output side of a transposed convolution: (H − 1)·s − 2p + dilation·(k − 1) + output_padding + 1."""
    k, s, p, dil, op = (
        v[0] for v in (layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.output_padding)
    )
    return (side - 1) * s - 2 * p + dil * (k - 1) + op + 1


def _build(cls, d: int, c: int) -> nn.Module:
    """ConvDecoder(d, c), or a Hint on what the class is not (a class, an nn.Module, with two arguments)."""
    if not inspect.isclass(cls):
        what = "an instance of it" if isinstance(cls, nn.Module) else f"a {type(cls).__name__}"
        raise Hint(f"pass the class itself, ConvDecoder, not {what} (no parentheses)")
    try:
        decoder = cls(d, c)
    except TypeError as err:
        if "argument" not in str(err):
            raise
        raise Hint(f"ConvDecoder(latent_dim, channels) fails: {err}") from None
    if not isinstance(decoder, nn.Module):
        raise Hint("ConvDecoder must subclass nn.Module (class ConvDecoder(nn.Module)) so that its layers train")
    if not any(isinstance(m, nn.ConvTranspose2d) for m in decoder.modules()):
        raise Hint(
            "no nn.ConvTranspose2d layer: the lecture's decoder is made of transposed convolutions, "
            "nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2, ...)"
        )
    return decoder


def _decode(decoder: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, list]:
    """decoder(z) on a copy of z (an in-place change is named), with the (in, out) sides of each transposed
    convolution as they ran."""
    sides: list = []
    hooks = [
        m.register_forward_hook(lambda mod, i, o: sides.append((mod, i[0].shape[-1], o.shape[-1])))
        for m in decoder.modules()
        if isinstance(m, nn.ConvTranspose2d)
    ]
    try:
        out = call(decoder.forward, z, what="ConvDecoder.forward")
    finally:
        for hook in hooks:
            hook.remove()
    return as_tensor(out, "ConvDecoder(d, c)(z)"), sides


def _check_shape(out: torch.Tensor, sides: list, n: int) -> None:
    """(N, 1, 28, 28), or a Hint that follows the side through the transposed convolutions by the formula."""
    if out.shape == (n, 1, 28, 28):
        return
    if not sides:
        raise Hint("forward never calls a transposed convolution: use the layers of __init__ in forward")
    chain = " -> ".join([str(sides[0][1])] + [str(transposed_side(i, m)) for m, i, _ in sides])
    raise Hint(
        f"the output has shape {tuple(out.shape)}, expected ({n}, 1, 28, 28); the side goes {chain} through your "
        f"transposed convolutions (output side (H − 1)·stride − 2·padding + kernel + output_padding): with kernel 3, "
        f"stride 2 and padding 1, output_padding=1 doubles it, 7 -> 14 -> 28; the last layer has 1 channel"
    )


def _adjoint_reference(decoder: nn.Module, z: torch.Tensor, relu_mid: bool = True, relu_last: bool = False):
    """The slide's decoder recomputed from the student's own weights, each transposed convolution as the adjoint
    (gradient) of a convolution; None when the layers are not one Linear and transposed convolutions."""
    linears = [m for m in decoder.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    others = [m for m in decoder.modules() if next(m.parameters(recurse=False), None) is not None]
    if len(linears) != 1 or len(others) != 1 + len(convs) or convs[0].in_channels * 49 != linears[0].out_features:
        return None
    h = torch.relu(linears[0](z)).view(len(z), convs[0].in_channels, 7, 7)  # (N, d) -> (N, 2c, 7, 7)
    for j, conv in enumerate(convs):
        side = transposed_side(h.shape[-1], conv)
        size = (len(z), conv.out_channels, side, side)
        h = torch.nn.grad.conv2d_input(size, conv.weight, h, stride=conv.stride, padding=conv.padding)
        h = h + conv.bias.view(1, -1, 1, 1) if conv.bias is not None else h
        if (j < len(convs) - 1 and relu_mid) or (j == len(convs) - 1 and relu_last):
            h = torch.relu(h)
    return torch.sigmoid(h)


def _check_forward(decoder: nn.Module, z: torch.Tensor, out: torch.Tensor) -> None:
    """Values in [0, 1], examples decoded independently, every parameter trained, the slide's forward pass."""
    if out.min() < 0 or out.max() > 1:
        raise Hint("values outside [0, 1]: end forward with torch.sigmoid, so that x̂ is an image like x")
    if not out.requires_grad:
        raise Hint("the output carries no gradient (torch.no_grad, inference_mode or .detach() in forward?)")
    frozen = copy.deepcopy(decoder).eval()  # eval: a BatchNorm uses its running statistics, one image at a time
    with torch.no_grad():
        one_by_one = torch.cat([frozen(z[i : i + 1]) for i in range(len(z))])
        batch = frozen(z)
    if not torch.allclose(batch, one_by_one, atol=1e-5):
        raise Hint(
            "the examples of a batch mix: reshape keeping the batch axis first, h.view(len(z), 2 * c, 7, 7) "
            "or nn.Unflatten(1, (2 * c, 7, 7)), and never reduce over the batch"
        )
    out.sum().backward()
    unused = [name for name, w in decoder.named_parameters() if w.grad is None]
    if unused:
        raise Hint(f"{', '.join(unused)} get no gradient: a layer of __init__ that forward does not use")
    with torch.no_grad():
        want = _adjoint_reference(decoder, z)
        if want is None:  # another architecture (e.g. BatchNorm): the checks above are the contract
            return
        if torch.allclose(out, want, atol=1e-5):
            return
        slips = [
            (_adjoint_reference(decoder, z, relu_mid=False), "no ReLU between the transposed convolutions"),
            (_adjoint_reference(decoder, z, relu_last=True), "a ReLU before the sigmoid: then x̂ ≥ ½ everywhere"),
        ]
    for slip, message in slips:
        if torch.allclose(out, slip, atol=1e-5):
            raise Hint(message)
    compare(out, want, "ConvDecoder's output (against its own layers, the transposed convolutions as adjoints)")


def check_conv_decoder(cls) -> None:
    """ConvDecoder(d, c) for (d, c) = (2, 4) and (5, 8): shape (N, 1, 28, 28) in [0, 1], the side followed through
    the transposed convolutions by the output-size formula, examples decoded independently, every layer used, and
    the output against the slide's decoder recomputed from the student's own weights (each transposed convolution
    as the adjoint of a convolution) when the layers are a Linear and transposed convolutions. Any kernel, stride,
    padding and output_padding that give 28 × 28 is accepted."""
    for d, c in [(2, 4), (5, 8)]:
        decoder = _build(cls, d, c)
        z = 2 * torch.randn(3, d)
        out, sides = _decode(decoder, z)
        _check_shape(out, sides, len(z))
        _check_forward(decoder, z, out)


conv_decoder = Exercise("2.2", "the transposed-convolution decoder g", check_conv_decoder, ReferenceConvDecoder)


# ------------------------------------------------------------------------------------------------------------------
# 2.3 question: can a deep auto-encoder beat PCA at the same code size?
# ------------------------------------------------------------------------------------------------------------------
beats_pca = Question(
    "2.3",
    "can a deep AE beat PCA at the same code size?",
    choices={
        "a": "yes: at d = 2 the better deep AE has a lower test error than PCA",
        "b": "no: PCA is optimal, so a deep AE can at best match its error",
    },
)


def pixel_blend(x_a: torch.Tensor, x_b: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """(1 − t) x_a + t x_b for each t.  x_a, x_b: (1, 1, 28, 28), ts: (T,) -> (T, 1, 28, 28)"""
    t = ts.view(-1, 1, 1, 1)  # (T, 1, 1, 1): one weight per image
    return (1 - t) * x_a + t * x_b


# ------------------------------------------------------------------------------------------------------------------
# 2.4 the latent-space interpolation
# ------------------------------------------------------------------------------------------------------------------
def reference_latent_path(model: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """g((1 − t) f(x_a) + t f(x_b)) for each t.  x_a, x_b: (1, 1, 28, 28), ts: (T,) -> (T, 1, 28, 28)"""
    with torch.inference_mode():
        z_a, z_b = model.f(x_a), model.f(x_b)  # (1, d) each
        z_t = (1 - ts[:, None]) * z_a + ts[:, None] * z_b  # (T, d): points on the segment in Z
        return model.g(z_t)


class _CurvedAE(nn.Module):
    """A small auto-encoder (d = 3) whose encoder and decoder are far from linear, so that blending images, blending
    codes and blending decoded images give visibly different answers."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(P, 3), nn.Linear(3, P)
        with torch.no_grad():
            self.encoder.weight.normal_(0.0, 0.2)
            self.decoder.weight.normal_(0.0, 3.0)

    def f(self, x):
        return 2 * torch.tanh(self.encoder(x.flatten(1)) / 2)  # (N, 1, 28, 28) -> (N, 3)

    def g(self, z):
        return torch.sigmoid(self.decoder(torch.sin(z))).view(-1, 1, 28, 28)

    def forward(self, x):
        return self.g(self.f(x))


def check_latent_path(fn) -> None:
    """On a small auto-encoder (d = 3) with a curved decoder, against decoding each point (1 − t) f(x) + t f(x')
    one t at a time."""
    model = _CurvedAE().eval()
    x_a, x_b = torch.rand(1, 1, 28, 28), torch.rand(1, 1, 28, 28)
    ts = torch.tensor([0.0, 0.2, 0.5, 0.7, 1.0])  # T = 5: neither 1, 28 nor the code size
    try:
        got = call(fn, model, x_a, x_b, ts, what="latent_path")
    except RuntimeError as err:  # a broadcasting error: a Hint about the shape of ts; anything else is re-raised
        if "size" in str(err) or "shape" in str(err) or "broadcast" in str(err):
            raise Hint(
                f"latent_path fails to broadcast ({str(err).strip().splitlines()[0]}): ts has shape (T,); give it "
                f"trailing axes so that each t weighs a whole code or image, e.g. ts[:, None] for codes (1, d), "
                f"ts.view(-1, 1, 1, 1) for images (1, 1, 28, 28)"
            ) from None
        raise
    got = as_tensor(got, "latent_path(model, x, x', ts)")
    with torch.no_grad():
        z_a, z_b = model.f(x_a), model.f(x_b)
        want = torch.cat([model.g((1 - float(t)) * z_a + float(t) * z_b) for t in ts])  # (T, 1, 28, 28)
        pixels = pixel_blend(x_a, x_b, ts)
        slips = [
            (
                torch.cat([model.g((1 - float(t)) * z_b + float(t) * z_a) for t in ts]),
                "t runs backwards: at t = 0 the path decodes f(x), at t = 1 f(x'); (1 − t) f(x) + t f(x')",
            ),
            (
                pixels,
                "that is the pixel blend (1 − t) x + t x': encode both digits with f, blend the codes, decode with g",
            ),
            (
                model(pixels),
                "that decodes the pixel blend, g(f((1 − t) x + t x')): blend the codes f(x) and f(x'), not the images",
            ),
            (
                pixel_blend(model(x_a), model(x_b), ts),
                "that blends the reconstructions g(f(x)) and g(f(x')) pixel by pixel: blend the codes, then decode",
            ),
        ]
    if got.dim() == 2 and got.shape == (len(ts), 3):
        raise Hint(f"shape {tuple(got.shape)}: these are the codes z_t; decode them with model.g")
    if got.shape != want.shape and got.numel() == want.numel():
        raise Hint(
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)}: ts broadcast along the wrong axis; use "
            f"ts[:, None] against codes of shape (1, d)"
        )
    if got.shape == want.shape and not _close(got, want):
        for slip, message in slips:
            if _close(got, slip):
                raise Hint(message)
    compare(got, want, "latent_path(model, x, x', ts)")


latent_path = Exercise(
    "2.4", "the latent-space interpolation g((1 − t) f(x) + t f(x'))", check_latent_path, reference_latent_path
)
