"""Gradient-abnormality scores: GAIA-Z, GAIA-A (Chen et al., arXiv:2311.09620) and S&I (s_and_i paper).

All probe the outputs of chosen layers (default :func:`gaia_layers`) with forward hooks that are
removed on exit.  Every score is ``score(model, x, **kw) -> (N,)``, higher = more in-distribution;
x : (N, C, H, W) images in [0, 1], checked once per call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_images


class _LayerProbe:
    """Forward hooks that add a tensor (default a zero leaf) to chosen layers' outputs.

    After a forward pass ``leaves[i]`` is the tensor added to layer i's output, so the gradient
    w.r.t. it is the gradient w.r.t. that output; ``sums[i]`` is the sum of that output (taken in the
    hook, before any later in-place op).  Hooks are removed on exit, so the model is unchanged.
    """

    def __init__(self, layers: Sequence[nn.Module], deltas: Sequence[Tensor | None] | None = None):
        self.layers = list(layers)
        self.deltas = list(deltas) if deltas is not None else [None] * len(self.layers)
        self.leaves: list[Tensor | None] = [None] * len(self.layers)
        self.sums: list[Tensor | None] = [None] * len(self.layers)
        self._handles: list = []

    def _hook(self, i: int):
        def hook(module: nn.Module, inputs: tuple, out: Tensor) -> Tensor:
            if not isinstance(out, Tensor):
                raise ValueError(f"layer {type(module).__name__} does not return a tensor")
            if self.leaves[i] is not None:
                raise ValueError(
                    f"layer {type(module).__name__} ran twice in one forward pass; "
                    "GAIA/S&I layers must be called once (pass layers=...)"
                )
            leaf = self.deltas[i]
            if leaf is None:
                leaf = torch.zeros_like(out, requires_grad=True)
            self.leaves[i] = leaf
            out = out + leaf
            self.sums[i] = out.sum()
            return out

        return hook

    def __enter__(self) -> _LayerProbe:
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self.layers)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()


def gaia_layers(model: nn.Module) -> list[nn.Module]:
    """Default GAIA/S&I layers: every BatchNorm2d (else every Conv2d), then ``model.cam_layer`` last.

    GAIA's code hooks the normalisation layers (for ResNets those of the last two stages) and the
    last feature map; pass ``layers=`` to a score to choose others.
    """
    mods = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not mods:
        mods = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    last = getattr(model, "cam_layer", None)
    if last is None:
        raise ValueError("GAIA/S&I need model.cam_layer (the last convolutional feature map)")
    return [m for m in mods if m is not last] + [last]


def _channel_mean(g: Tensor) -> Tensor:
    """(N, C, ...) -> (N, C): mean over everything after the channel axis."""
    return g.flatten(2).mean(-1) if g.ndim > 2 else g


def _density(g: Tensor) -> Tensor:
    """Per-channel share of non-zero gradient entries, (N, C)."""
    return _channel_mean((g != 0).to(g.dtype))


def _top_log_softmax_sum(logits: Tensor, top_fraction: float) -> Tensor:
    """Sum over samples and the top ``ceil(top_fraction * K)`` classes (by logit) of log-softmax."""
    k = max(1, math.ceil(top_fraction * logits.shape[1]))
    lsm = F.log_softmax(logits, dim=1)
    if k == logits.shape[1]:
        return lsm.sum()
    return lsm.gather(1, logits.topk(k, dim=1).indices).sum()


def _aggregate(e: Tensor) -> Tensor:
    """Layer/channel abnormalities (N, K) -> score sqrt(sum E^2), negated so that higher = ID."""
    return -e.square().sum(1).sqrt()


def _grads(out: Tensor, leaves: Sequence[Tensor], retain: bool = False) -> list[Tensor]:
    gs = torch.autograd.grad(out, list(leaves), retain_graph=retain, allow_unused=True)
    return [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(gs, leaves, strict=True)]


def gaia_z(model: nn.Module, x: Tensor, *, layers: Sequence[nn.Module] | None = None) -> Tensor:
    """GAIA-Z, zero-deflation abnormality (Chen et al., arXiv:2311.09620). x : (N, C, H, W) -> (N,).

    Gradients of the maximum logit w.r.t. the outputs of ``layers`` (default :func:`gaia_layers`);
    per channel the share of non-zero entries; score ``-sqrt(sum over channels of share^2)``
    (GAIA's code uses the mean of squares: same ranking).  Higher = ID.
    """
    check_images(x)
    layers = list(layers) if layers is not None else gaia_layers(model)
    with torch.enable_grad(), _LayerProbe(layers) as probe:
        logits = model(x.detach())
        grads = _grads(logits.amax(1).sum(), probe.leaves)
    return _aggregate(torch.cat([_density(g) for g in grads], 1)).detach()


def gaia_a(model: nn.Module, x: Tensor, *, layers: Sequence[nn.Module] | None = None) -> Tensor:
    """GAIA-A, channel-wise average abnormality (Chen et al., arXiv:2311.09620). -> (N,), higher = ID.

    The last layer (``cam_layer``) gives ``o = sqrt(mean_k |mean_ij d(sum_c log softmax_c)/dF^L_kij|)``;
    every other layer j gives ``|mean_ij d(sum F^L)/dF^j_kij| / o`` per channel k; the score is
    ``-sqrt(sum of squares)`` (GAIA's code: mean of squares, same ranking).
    """
    check_images(x)
    layers = list(layers) if layers is not None else gaia_layers(model)
    if len(layers) < 2:
        raise ValueError("GAIA-A needs at least one inner layer before the last one")
    with torch.enable_grad(), _LayerProbe(layers) as probe:
        logits = model(x.detach())
        (g_last,) = _grads(F.log_softmax(logits, 1).sum(), probe.leaves[-1:], retain=True)
        inner = _grads(probe.sums[-1], probe.leaves[:-1])
    out = _channel_mean(g_last).abs().mean(1).sqrt()
    e = (
        torch.cat([_channel_mean(g).abs() for g in inner], 1)
        / out.clamp_min(torch.finfo(out.dtype).tiny)[:, None]
    )
    return _aggregate(e).detach()


def s_and_i(
    model: nn.Module,
    x: Tensor,
    *,
    variant: str = "z",
    steps: int = 5,
    step_size: float = 0.01,
    epsilon: float | None = None,
    top_fraction: float = 0.9,
    layers: Sequence[nn.Module] | None = None,
) -> Tensor:
    """S&I: layer Splitting and adversarial gradient Integration (s_and_i paper, eqs. 9-14). -> (N,).

    For each layer j separately (layer splitting: only j's output is perturbed, so its gradient
    comes from the later layers only), ``steps`` = T sign-gradient ascent steps of size ``step_size``
    on j's output raise the cross-entropy of the predicted class (eq. 9).  Along that path
    ``variant="z"`` averages the per-channel non-zero share of the attack gradient (eq. 11, small
    label spaces); ``variant="a"`` averages GAIA-A's gradients at the iterates (eqs. 12-13, large
    label spaces), with log-softmax summed over the top ``top_fraction`` classes by logit (the
    paper's "top-90 %").  Score ``-sqrt(sum E^2)`` (eq. 14 negated: higher = ID).
    Not in the paper, our choices: T = 5, step 0.01 in activation units, no L2 ball unless
    ``epsilon`` is given (then the perturbation is projected to L2 norm <= epsilon per sample), no
    early stop at misclassification, GAIA-A's channel-averaged denominator.  With ``steps=1``,
    "z" equals :func:`gaia_z` and "a" (``top_fraction=1``) equals :func:`gaia_a`.
    """
    check_images(x)
    if variant not in ("z", "a"):
        raise ValueError(f"unknown variant {variant!r}; known: 'z', 'a'")
    if steps < 1 or step_size < 0:
        raise ValueError(f"need steps >= 1 and step_size >= 0, got {steps}, {step_size}")
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    layers = list(layers) if layers is not None else gaia_layers(model)
    if variant == "a" and len(layers) < 2:
        raise ValueError("variant 'a' needs at least one inner layer before the last one")
    x = x.detach()
    with torch.no_grad():
        target = model(x).argmax(1)
    attacked = layers if variant == "z" else layers[:-1]
    per_layer = []
    for layer in attacked:
        delta: Tensor | None = None
        acc: Tensor | None = None
        acc_last: Tensor | None = None
        for _ in range(steps):
            probed = [layer] if variant == "z" else [layer, layers[-1]]
            leaf0 = None if delta is None else delta.detach().requires_grad_()
            with torch.enable_grad(), _LayerProbe(probed, [leaf0] + [None] * (len(probed) - 1)) as probe:
                logits = model(x)
                loss = F.cross_entropy(logits, target, reduction="sum")
                (g,) = _grads(loss, probe.leaves[:1], retain=variant == "a")
                if variant == "z":
                    term = _density(g)
                else:
                    (g_num,) = _grads(probe.sums[1], probe.leaves[:1], retain=True)
                    (g_last,) = _grads(_top_log_softmax_sum(logits, top_fraction), probe.leaves[1:])
                    term = _channel_mean(g_num)
                    last = _channel_mean(g_last)
                    acc_last = last if acc_last is None else acc_last + last
            acc = term if acc is None else acc + term
            with torch.no_grad():
                delta = (torch.zeros_like(g) if delta is None else delta) + step_size * g.sign()
                if epsilon is not None:
                    norm = delta.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *[1] * (delta.ndim - 1))
                    delta = delta * (epsilon / norm).clamp(max=1.0)
        if variant == "z":
            per_layer.append(acc / steps)
        else:
            out = (acc_last / steps).abs().mean(1).sqrt()
            per_layer.append((acc / steps).abs() / out.clamp_min(torch.finfo(out.dtype).tiny)[:, None])
    return _aggregate(torch.cat(per_layer, 1)).detach()


def s_and_i_a(model: nn.Module, x: Tensor, **kw) -> Tensor:
    """:func:`s_and_i` with ``variant="a"`` (the paper's choice for ImageNet-size label spaces)."""
    return s_and_i(model, x, variant="a", **kw)
