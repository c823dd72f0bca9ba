"""Gradient-abnormality scores: GAIA-Z, GAIA-A (Chen et al., arXiv:2311.09620) and S&I (s_and_i paper).

As the authors' code runs them (GAIA: github.com/JGEthanChen/GAIA-OOD; S&I: github.com/LMBTough/S-I,
``cal_method_cifar100_resnet34.py`` ``cal_zero`` / ``cal_method_imagenet_bit.py`` ``cal_grad_value``):

* GAIA-Z: gradient of the maximum logit w.r.t. the output of every normalisation layer, binarised
  (!= 0), per channel the share of non-zero entries (the *density*); score = mean of squared densities.
* GAIA-A: per channel |spatial mean of d(sum of the pooled last feature)/d(layer output)| divided by
  ``o = sqrt(mean_k |spatial mean of d(sum_c log-softmax)/d(last feature)|)``; score = mean of squares.
* S&I: each layer j is a *split point* handled on its own.  From its output h_0, T steps of
  h_{i+1} = h_i + eta * sign(d CE(f(h_i), y) / d h_i) (ascent, y = the prediction); the gradients g_i at
  the iterates are accumulated (product by default) and scored as in GAIA-Z (variant "z") or GAIA-A
  (variant "a", the denominator from the same attack on the last feature).

The authors' scores are higher = OOD; every score here is negated: higher = more in-distribution.
The layers are probed with forward hooks that are removed on exit; x : (N, C, H, W) images in [0, 1],
checked once per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_images

#: How S&I accumulates the gradients g_0..g_{T-1} of one split point: ``multiply`` (authors' code
#: default), ``add`` (code option), ``eq11`` (paper eq. 11: the mean over the iterates of g_i != 0).
ACCUMULATE: tuple[str, ...] = ("multiply", "add", "eq11")
#: Which gradient S&I accumulates: of the maximum logit (authors' code) or of the cross-entropy (eq. 11).
GRADIENTS: tuple[str, ...] = ("max_logit", "ce")
NORM_LAYERS = (nn.BatchNorm2d, nn.GroupNorm)
#: S&I's T (attack steps: authors' code) and eta (step size: the authors' rebuttal reproduces Table 1's
#: ResNet34 row with 0.001; the code's default 1/255 is an ablation).
STEPS, STEP_SIZE = 2, 0.001


class _LayerProbe:
    """Forward hooks that add a tensor (default a zero leaf) to chosen layers' outputs.

    After a forward pass ``leaves[i]`` is the tensor added to layer i's output, so the gradient
    w.r.t. it is the gradient w.r.t. that output; ``outs[i]`` is that (probed) output.  Hooks are
    removed on exit, so the model is unchanged.
    """

    def __init__(self, layers: Sequence[nn.Module], deltas: Sequence[Tensor | None] | None = None):
        self.layers = list(layers)
        self.deltas = list(deltas) if deltas is not None else [None] * len(self.layers)
        self.leaves: list[Tensor | None] = [None] * len(self.layers)
        self.outs: list[Tensor | None] = [None] * len(self.layers)
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
            self.outs[i] = out = out + leaf
            return out

        return hook

    def __enter__(self) -> _LayerProbe:
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self.layers)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()


def gaia_layers(model: nn.Module) -> list[nn.Module]:
    """Default GAIA-Z / S&I layers (split points): ``model.split_points`` where the model declares the authors'
    (WRN-40-2: its BatchNorms and the pooled feature; BiT: block4's GroupNorms and ``before_head``), else every
    BatchNorm2d and GroupNorm in module order, as the authors' code (every BN of ResNet34 incl. the shortcut
    BNs); every Conv2d if there is none.  A pooled split point adds channels whose max-logit gradient is the
    predicted class's head row, dense for a trained head: a near-constant block that leaves GAIA-Z's ranking
    as the authors' BatchNorms alone give it."""
    declared = getattr(model, "split_points", None)
    if declared is not None:
        return list(declared)
    mods = [m for m in model.modules() if isinstance(m, NORM_LAYERS)]
    return mods or [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def gaia_a_layers(model: nn.Module) -> list[nn.Module]:
    """Default GAIA-A / S&I-A inner layers: ``model.gaia_a_layers`` where the model declares the authors'
    (ResNet34: the BNs of layer3 and layer4; WRN-40-2: every BN; BiT: block4's GroupNorms), else
    :func:`gaia_layers`."""
    declared = getattr(model, "gaia_a_layers", None)
    return list(declared) if declared is not None else gaia_layers(model)


def last_feature(model: nn.Module) -> nn.Module:
    """GAIA-A's last layer: ``model.gaia_last`` where declared (the authors' pooled feature of WRN / BiT), else
    the module whose output is the last feature map (``model.cam_layer``)."""
    last = getattr(model, "gaia_last", None) or getattr(model, "cam_layer", None)
    if last is None:
        raise ValueError("GAIA-A / S&I-A need model.cam_layer (the last convolutional feature map)")
    return last


def layer_widths(model: nn.Module, x: Tensor, layers: Sequence[nn.Module] | None = None) -> tuple[int, ...]:
    """Channels of each layer's output (default :func:`gaia_layers`) on images x (one is enough)."""
    layers = _layers(model, layers)
    with torch.no_grad(), _LayerProbe(layers) as probe:
        model(x[:1].detach())
    return tuple(out.shape[1] for out in probe.outs)


def _channel_mean(g: Tensor) -> Tensor:
    """(N, C, ...) -> (N, C): mean over everything after the channel axis."""
    return g.flatten(2).mean(-1) if g.ndim > 2 else g


def _density(g: Tensor) -> Tensor:
    """Per-channel share of non-zero entries, (N, C)."""
    return _channel_mean((g != 0).to(g.dtype))


def mean_square_score(per_channel: Sequence[Tensor]) -> Tensor:
    """Per-layer (N, C_j) values -> score ``-mean over all channels of value^2`` (N,): the authors'
    ``get_square``, negated so that higher = ID."""
    return -torch.cat(list(per_channel), 1).square().mean(1).detach()


def _grads(out: Tensor, leaves: Sequence[Tensor], retain: bool = False) -> list[Tensor]:
    gs = torch.autograd.grad(out, list(leaves), retain_graph=retain, allow_unused=True)
    return [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(gs, leaves, strict=True)]


def _layers(model: nn.Module, layers: Sequence[nn.Module] | None,
            default: Callable[[nn.Module], list[nn.Module]] = gaia_layers) -> list[nn.Module]:
    layers = list(layers) if layers is not None else default(model)
    if not layers:
        raise ValueError("GAIA/S&I need at least one layer")
    return layers


def gaia_z_densities(model: nn.Module, x: Tensor, *, layers: Sequence[nn.Module] | None = None) -> list[Tensor]:
    """GAIA-Z's per-layer channel densities of the max-logit gradient, [(N, C_j)] (default layers
    :func:`gaia_layers`).  x is not checked (the public scores check it)."""
    layers = _layers(model, layers)
    with torch.enable_grad(), _LayerProbe(layers) as probe:
        logits = model(x.detach())
        grads = _grads(logits.amax(1).sum(), probe.leaves)
    return [_density(g).detach() for g in grads]


def gaia_z(model: nn.Module, x: Tensor, *, layers: Sequence[nn.Module] | None = None) -> Tensor:
    """GAIA-Z, zero-deflation abnormality: :func:`mean_square_score` of :func:`gaia_z_densities`.
    x : (N, C, H, W) -> (N,), higher = ID."""
    check_images(x)
    return mean_square_score(gaia_z_densities(model, x, layers=layers))


def _abnormality(inner: Sequence[Tensor], last: Tensor) -> list[Tensor]:
    """GAIA-A's E: per layer |spatial mean of inner gradient| / o, o from the last layer's gradient."""
    o = _channel_mean(last).abs().mean(1).sqrt()
    o = o.clamp_min(torch.finfo(o.dtype).tiny)[:, None]
    return [(_channel_mean(g).abs() / o).detach() for g in inner]


def gaia_a(model: nn.Module, x: Tensor, *, layers: Sequence[nn.Module] | None = None) -> Tensor:
    """GAIA-A, channel-wise average abnormality (authors' ``cal_grad_value``). -> (N,), higher = ID.

    ``o`` from d(sum of log-softmax over all classes)/d(last feature); per inner layer (default
    :func:`gaia_a_layers`) and channel ``|spatial mean of d(sum of pooled last feature)/d(output)| / o``;
    score ``-mean of squares``.
    """
    check_images(x)
    layers = _layers(model, layers, gaia_a_layers)
    with torch.enable_grad(), _LayerProbe([*layers, last_feature(model)]) as probe:
        logits = model(x.detach())
        (g_last,) = _grads(F.log_softmax(logits, 1).sum(), probe.leaves[-1:], retain=True)
        inner = _grads(_channel_mean(probe.outs[-1]).sum(), probe.leaves[:-1])
    return mean_square_score(_abnormality(inner, g_last))


Objective = Callable[[Tensor, list[Tensor]], Tensor]


def _max_logit(logits: Tensor, outs: list[Tensor]) -> Tensor:
    return logits.amax(1).sum()


def _pooled_last(logits: Tensor, outs: list[Tensor]) -> Tensor:
    return _channel_mean(outs[-1]).sum()


def _log_softmax(logits: Tensor, outs: list[Tensor]) -> Tensor:
    return F.log_softmax(logits, 1).sum()


def split_attack(
    model: nn.Module,
    x: Tensor,
    layer: nn.Module,
    target: Tensor,
    *,
    steps: int,
    step_size: float,
    objective: Objective,
    gradient: str,
    probe_last: bool = False,
) -> list[Tensor]:
    """The gradients g_0..g_{T-1} at the iterates of S&I's attack on the output of one split point.

    h_0 = ``layer``'s output on x; h_{i+1} = h_i + step_size * sign(d CE(f(h_i), target)/d h_i) (eq. 9,
    ascent; only this layer's output moves).  g_i = d objective(logits, probed outputs)/d h_i
    (``gradient="max_logit"``: the objective; ``"ce"``: the CE gradient itself).  ``probe_last`` also
    probes :func:`last_feature` so that the objective can read its output.  Returns [(N, C, ...)] * T.
    """
    probed = [layer, last_feature(model)] if probe_last else [layer]
    delta: Tensor | None = None
    out = []
    for i in range(steps):
        need_ce = gradient == "ce" or i < steps - 1
        leaf = None if delta is None else delta.requires_grad_()
        with torch.enable_grad(), _LayerProbe(probed, [leaf] + [None] * (len(probed) - 1)) as probe:
            logits = model(x)
            h = probe.leaves[0]
            g_ce = _grads(F.cross_entropy(logits, target, reduction="sum"), [h], retain=True)[0] if need_ce else None
            g = g_ce if gradient == "ce" else _grads(objective(logits, probe.outs), [h])[0]
        out.append(g.detach())
        if i < steps - 1:
            delta = (h.detach() + step_size * g_ce.sign()).detach()
    return out


def _accumulate(gs: Sequence[Tensor], how: str) -> Tensor:
    if how == "multiply":
        acc = gs[0].clone()
        for g in gs[1:]:
            acc *= g
        return acc
    if how == "add":
        return torch.stack(list(gs)).sum(0)
    return torch.stack([(g != 0).to(g.dtype) for g in gs]).mean(0)  # eq11: mean of indicators


def _check_si(steps: int, step_size: float, accumulate: str, gradient: str) -> None:
    if steps < 1 or not step_size >= 0:
        raise ValueError(f"need steps >= 1 and step_size >= 0, got {steps}, {step_size}")
    if accumulate not in ACCUMULATE:
        raise ValueError(f"unknown accumulate {accumulate!r}; known: {list(ACCUMULATE)}")
    if gradient not in GRADIENTS:
        raise ValueError(f"unknown gradient {gradient!r}; known: {list(GRADIENTS)}")


def s_and_i_densities(
    model: nn.Module,
    x: Tensor,
    *,
    steps: int = STEPS,
    step_size: float = STEP_SIZE,
    accumulate: str = "multiply",
    gradient: str = "max_logit",
    layers: Sequence[nn.Module] | None = None,
) -> list[Tensor]:
    """S&I-Z's per-split-point channel densities [(N, C_j)]: per layer, :func:`split_attack` with the
    max-logit objective, the gradients accumulated (:data:`ACCUMULATE`), binarised, channel share.

    Defaults follow the authors' code and rebuttal: T = 2, eta = 0.001, product of max-logit gradients.
    With ``accumulate="eq11", gradient="ce"`` it is the paper's eq. 11.  x is not checked.
    """
    _check_si(steps, step_size, accumulate, gradient)
    layers = _layers(model, layers)
    x = x.detach()
    with torch.no_grad():
        target = model(x).argmax(1)
    out = []
    for layer in layers:
        gs = split_attack(model, x, layer, target, steps=steps, step_size=step_size, objective=_max_logit,
                          gradient=gradient)
        acc = _accumulate(gs, accumulate)
        out.append(_channel_mean(acc) if accumulate == "eq11" else _density(acc))
    return out


def s_and_i(model: nn.Module, x: Tensor, *, variant: str = "z", **kw) -> Tensor:
    """S&I: layer Splitting and adversarial gradient Integration. x : (N, C, H, W) -> (N,), higher = ID.

    ``variant="z"``: :func:`mean_square_score` of :func:`s_and_i_densities` (``kw`` its keywords; small
    label spaces, the paper's eqs. 10-11); ``"a"``: :func:`s_and_i_a` (eqs. 12-13).  With ``steps=1`` or
    ``step_size=0`` "z" equals :func:`gaia_z` on the same layers.
    """
    check_images(x)
    if variant not in ("z", "a"):
        raise ValueError(f"unknown variant {variant!r}; known: 'z', 'a'")
    if variant == "a":
        return _s_and_i_a(model, x, **kw)
    return mean_square_score(s_and_i_densities(model, x, **kw))


def _s_and_i_a(
    model: nn.Module,
    x: Tensor,
    *,
    steps: int = STEPS,
    step_size: float = STEP_SIZE,
    accumulate: str = "multiply",
    layers: Sequence[nn.Module] | None = None,
) -> Tensor:
    _check_si(steps, step_size, accumulate, "max_logit")
    if accumulate == "eq11":
        raise ValueError("S&I-A accumulates gradient values: accumulate must be 'multiply' or 'add'")
    layers = _layers(model, layers, gaia_a_layers)
    x = x.detach()
    with torch.no_grad():
        target = model(x).argmax(1)
    kw = dict(steps=steps, step_size=step_size, gradient="max_logit")
    last = _accumulate(split_attack(model, x, last_feature(model), target, objective=_log_softmax, **kw),
                       accumulate)
    inner = [
        _accumulate(split_attack(model, x, layer, target, objective=_pooled_last, probe_last=True, **kw), accumulate)
        for layer in layers
    ]
    return mean_square_score(_abnormality(inner, last))


def s_and_i_a(model: nn.Module, x: Tensor, **kw) -> Tensor:
    """S&I-A (the paper's choice for ImageNet-size label spaces, eqs. 12-13; authors' ``cal_grad_value``):
    per split point the accumulated gradients of the pooled last feature, over ``o`` from the same attack
    on the last feature (log-softmax objective), scored as GAIA-A.  ``kw``: steps, step_size,
    accumulate (defaults as :func:`s_and_i_densities`), layers (default :func:`gaia_a_layers`)."""
    return s_and_i(model, x, variant="a", **kw)
