"""OOD scores ``score(model, x, **kw) -> (N,)``, higher = more in-distribution, and saliency aggregates.

Inputs are images in [0, 1], (N, C, H, W); models normalise inside and follow the project's model
contract (``features``, ``head``, ``cam_layer``).  ``model.eval()`` is the caller's job; inputs are
never modified.  Registries: :data:`SCORES` (name -> score), :data:`FITTED` (name -> fit function
for the scores that need ``fit=``), :data:`AGGREGATES` (name -> map aggregate, salagg paper).

The salagg paper's SalAgg+MLS score is :func:`fit_salagg` + :func:`salagg_mls`; the aggregate per
saliency method is picked on validation data with :func:`select_aggregate`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor, nn

from .metrics.ood import auroc as _auroc


def _check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) tensor, got {getattr(x, 'shape', type(x))}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN/inf values")


# --------------------------------------------------------------------------------------------- logits


@torch.no_grad()
def msp(model: nn.Module, x: Tensor) -> Tensor:
    """Maximum softmax probability (Hendrycks & Gimpel, arXiv:1610.02136). x : (N, C, H, W) -> (N,)."""
    _check_images(x)
    return F.softmax(model(x), dim=1).amax(dim=1)


@torch.no_grad()
def max_logit(model: nn.Module, x: Tensor) -> Tensor:
    """Maximum logit score, MLS (Hendrycks et al., arXiv:1911.11132). x : (N, C, H, W) -> (N,)."""
    _check_images(x)
    return model(x).amax(dim=1)


@torch.no_grad()
def energy(model: nn.Module, x: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Negative free energy ``T * logsumexp(f(x) / T)`` (Liu et al., arXiv:2010.03759). -> (N,)."""
    _check_images(x)
    return temperature * torch.logsumexp(model(x) / temperature, dim=1)


def odin(
    model: nn.Module,
    x: Tensor,
    *,
    temperature: float = 1000.0,
    epsilon: float = 0.0014,
    input_std: Sequence[float] = (1.0, 1.0, 1.0),
) -> Tensor:
    """ODIN: temperature-scaled MSP after a small input step (Liang et al., arXiv:1706.02690).

    The step ``x - epsilon * sign(grad) / input_std`` lowers the loss of the predicted class.  Our
    models normalise inside, so with ``input_std = 1`` the step is ``epsilon`` in [0, 1] pixel units,
    which equals ODIN's/OpenOOD's step of ``epsilon / std`` on normalised inputs; pass the dataset
    std only for a model that is fed normalised inputs.  x : (N, C, H, W) -> (N,).
    """
    _check_images(x)
    std = x.new_tensor(tuple(input_std))
    if std.numel() not in (1, x.shape[1]) or (std <= 0).any():
        raise ValueError(f"input_std must be 1 or {x.shape[1]} positive values, got {tuple(input_std)}")
    xg = x.detach().requires_grad_()
    with torch.enable_grad():
        logits = model(xg) / temperature
        # "sum": a sample's step does not depend on the batch it is in
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, logits.argmax(1), reduction="sum"), xg)
    step = epsilon * grad.sign() / std.view(1, -1, 1, 1)
    with torch.no_grad():
        return F.softmax(model(x.detach() - step) / temperature, dim=1).amax(dim=1)


# ------------------------------------------------------------------------------------ features / head


def _check_contract(model: nn.Module) -> None:
    if not (hasattr(model, "features") and isinstance(getattr(model, "head", None), nn.Linear)):
        raise ValueError(
            "this score needs the model contract: model.features(x) -> (N, D) and model.head: nn.Linear"
        )


@dataclass(frozen=True)
class ReActFit:
    """ReAct's clipping threshold: the ``percentile`` of ID penultimate activations."""

    threshold: float
    percentile: float


@torch.no_grad()
def fit_react(
    model: nn.Module, id_x: Tensor | Iterable[Tensor], *, percentile: float = 90.0, batch_size: int = 256
) -> ReActFit:
    """Fit ReAct (Sun et al., arXiv:2111.12797): threshold = ``percentile`` of all ID feature values.

    id_x : (N, C, H, W) ID images (or an iterable of such batches).  ``percentile`` is in percent,
    (1, 100] (the paper: 90).  Values in (0, 1] raise: they are what a fraction looks like
    (pytorch-ood takes 0.9), and 1.0 is ambiguous (1 % or all of them) while clipping at or below
    the 1st percentile is never a useful ReAct setting.
    """
    _check_contract(model)
    if 0.0 < percentile <= 1.0:
        raise ValueError(
            f"percentile={percentile} looks like a fraction; ReAct takes percent in (1, 100], e.g. 90"
        )
    if not 1.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be percent in (1, 100], e.g. 90; got {percentile}")
    batches = id_x.split(batch_size) if isinstance(id_x, Tensor) else id_x
    feats = [model.features(b).flatten().cpu() for b in batches]
    if not feats:
        raise ValueError("id_x is empty")
    values = torch.cat(feats).double().numpy()
    return ReActFit(threshold=float(np.percentile(values, percentile)), percentile=percentile)


@torch.no_grad()
def react(model: nn.Module, x: Tensor, *, fit: ReActFit | None = None, temperature: float = 1.0) -> Tensor:
    """ReAct: energy score of ``head(min(features(x), c))`` with c from :func:`fit_react`. -> (N,)."""
    _check_images(x)
    _check_contract(model)
    if not isinstance(fit, ReActFit):
        raise ValueError("react needs fit=fit_react(model, id_x) (a ReActFit)")
    logits = model.head(model.features(x).clamp(max=fit.threshold))
    return temperature * torch.logsumexp(logits / temperature, dim=1)


@torch.no_grad()
def gradnorm(model: nn.Module, x: Tensor, *, temperature: float = 1.0) -> Tensor:
    """GradNorm (Huang et al., arXiv:2110.00218): L1 norm of d KL(u || softmax(f/T)) / d head.weight.

    Per sample that gradient is ``outer(softmax(f/T) - 1/K, h) / T`` (h = features, K classes), so its
    L1 norm is ``||p - 1/K||_1 * ||h||_1 / T``: one batched forward, no per-sample backward.
    x : (N, C, H, W) -> (N,), higher = ID.
    """
    _check_images(x)
    _check_contract(model)
    h = model.features(x)
    p = F.softmax(model.head(h) / temperature, dim=1)
    return (p - 1.0 / p.shape[1]).abs().sum(1) * h.abs().sum(1) / temperature


@torch.no_grad()
def rankfeat(model: nn.Module, x: Tensor, *, temperature: float = 1.0) -> Tensor:
    """RankFeat (Song et al., arXiv:2209.08590): energy after removing the rank-1 part of the last map.

    The output of ``model.cam_layer`` (N, C, H, W), seen as (N, C, HW) matrices, loses
    ``s1 u1 v1^T`` (exact batched SVD instead of the paper's power iteration) before the rest of
    the network runs.  x : (N, C, H, W) -> (N,).
    """
    _check_images(x)

    def remove_rank1(module: nn.Module, inputs: tuple, out: Tensor) -> Tensor:
        if out.ndim != 4:
            raise ValueError(f"rankfeat needs a 4-D cam_layer output, got shape {tuple(out.shape)}")
        m = out.flatten(2)
        u, s, vh = torch.linalg.svd(m, full_matrices=False)
        return (m - s[:, :1, None] * u[:, :, :1] @ vh[:, :1, :]).view_as(out)

    handle = model.cam_layer.register_forward_hook(remove_rank1)
    try:
        logits = model(x)
    finally:
        handle.remove()
    return temperature * torch.logsumexp(logits / temperature, dim=1)


# --------------------------------------------------------------------------------- GAIA and S&I


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
    _check_images(x)
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
    _check_images(x)
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
    _check_images(x)
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


SCORES = {
    "msp": msp,
    "mls": max_logit,
    "energy": energy,
    "odin": odin,
    "react": react,  # needs fit=FITTED["react"](model, id_x)
    "gradnorm": gradnorm,
    "rankfeat": rankfeat,
    "gaia_z": gaia_z,
    "gaia_a": gaia_a,
    "s_and_i": s_and_i,
    "s_and_i_a": s_and_i_a,
}
"""Score name -> ``fn(model, x, **kw) -> (N,)``, higher = ID.  Names in :data:`FITTED` need ``fit=``."""

FITTED = {"react": fit_react}
"""Score name -> ``fit_fn(model, id_x, **kw)``: the fit to pass as ``fit=`` to that score."""


def score(name: str, model: nn.Module, x: Tensor, **kw) -> Tensor:
    """``SCORES[name](model, x, **kw)``; an unknown name raises listing the known ones."""
    if name not in SCORES:
        raise ValueError(f"unknown OOD score {name!r}; known: {sorted(SCORES)}")
    return SCORES[name](model, x, **kw)


# ----------------------------------------------------------------------------------- aggregates


def _flat(maps: Tensor) -> Tensor:
    """(N, ...) saliency maps -> (N, D) floating tensor, checked."""
    maps = torch.as_tensor(maps)
    if maps.ndim < 2 or maps.shape[0] == 0 or maps[0].numel() == 0:
        raise ValueError(f"maps must be a non-empty batch (N, ...), got shape {tuple(maps.shape)}")
    if not maps.is_floating_point():
        maps = maps.double()
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN/inf values")
    return maps.detach().reshape(len(maps), -1)


def _quantile(flat: Tensor, q: float) -> Tensor:
    """Row-wise q-quantile with linear interpolation (= numpy's default), (N, D) -> (N,)."""
    s = flat.sort(dim=1).values
    pos = q * (s.shape[1] - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[:, lo] + (pos - lo) * (s[:, hi] - s[:, lo])


def _ratio(num: Tensor, den: Tensor, what: str) -> Tensor:
    bad = (den == 0).nonzero().flatten()
    if bad.numel():
        raise ValueError(
            f"{what} is 0 for samples {bad.tolist()[:10]}; the scale-invariant aggregate is undefined"
        )
    return num / den


def agg_mean(maps: Tensor) -> Tensor:
    """Mean saliency, (N, ...) -> (N,)."""
    return _flat(maps).mean(1)


def agg_median(maps: Tensor) -> Tensor:
    """Median (midpoint of the two middle values for an even count, like numpy), (N, ...) -> (N,)."""
    return _quantile(_flat(maps), 0.5)


def agg_norm(maps: Tensor) -> Tensor:
    """Euclidean (L2) norm of the whole map, (N, ...) -> (N,)."""
    return _flat(maps).norm(dim=1)


def agg_range(maps: Tensor) -> Tensor:
    """max - min, (N, ...) -> (N,)."""
    f = _flat(maps)
    return f.amax(1) - f.amin(1)


def agg_max(maps: Tensor) -> Tensor:
    """Maximum value, (N, ...) -> (N,)."""
    return _flat(maps).amax(1)


def agg_q3(maps: Tensor) -> Tensor:
    """Third quartile (75th percentile, linear interpolation) of the magnitudes |h|, (N, ...) -> (N,)."""
    return _quantile(_flat(maps).abs(), 0.75)


def agg_cv(maps: Tensor) -> Tensor:
    """Coefficient of variation std/mean (population std, = ``scipy.stats.variation``); mean 0 raises."""
    f = _flat(maps)
    return _ratio(f.std(1, correction=0), f.mean(1), "the mean")


def agg_rmd(maps: Tensor) -> Tensor:
    """Relative mean absolute difference MD / mean, MD = sum_{i != j} |h_i - h_j| / (n (n - 1)).

    Computed from the sorted values in O(n log n): sum_{i,j} |h_i - h_j| = 2 sum_i (2i - n - 1) h_(i).
    The salagg paper does not spell out the normaliser; n(n-1) (vs n^2) only rescales by a constant.
    """
    f = _flat(maps)
    n = f.shape[1]
    if n < 2:
        raise ValueError("rmd needs maps of at least 2 values")
    s = f.sort(dim=1).values
    w = 2.0 * torch.arange(1, n + 1, dtype=s.dtype, device=s.device) - n - 1
    md = 2.0 * (s * w).sum(1) / (n * (n - 1))
    return _ratio(md, f.mean(1), "the mean")


def agg_qcd(maps: Tensor) -> Tensor:
    """Quartile coefficient of dispersion (Q3 - Q1) / (Q3 + Q1); Q3 + Q1 = 0 raises."""
    f = _flat(maps)
    q1, q3 = _quantile(f, 0.25), _quantile(f, 0.75)
    return _ratio(q3 - q1, q3 + q1, "Q3 + Q1")


AGGREGATES = {
    "mean": agg_mean,
    "median": agg_median,
    "norm": agg_norm,
    "range": agg_range,
    "max": agg_max,
    "q3": agg_q3,
    "cv": agg_cv,
    "rmd": agg_rmd,
    "qcd": agg_qcd,
}
"""Aggregate name -> ``fn(maps (N, ...)) -> (N,)`` (salagg paper, sec. 4); cv/rmd/qcd are scale invariant."""


def aggregate(name: str, maps: Tensor) -> Tensor:
    """``AGGREGATES[name](maps)``; an unknown name raises listing the known ones."""
    if name not in AGGREGATES:
        raise ValueError(f"unknown aggregate {name!r}; known: {sorted(AGGREGATES)}")
    return AGGREGATES[name](maps)


def saliency_scores(
    model: nn.Module, x: Tensor, method: str, aggregates: Sequence[str] = tuple(AGGREGATES), **attr_params
) -> dict[str, Tensor]:
    """Aggregates of one saliency map per image, for the predicted class (salagg paper).

    The map ``attribution.attribute(method, model, x, target=argmax model(x), **attr_params)`` is
    computed once and every aggregate in ``aggregates`` is taken on it (raw, unnormalised values).
    x : (N, C, H, W).  Returns aggregate name -> (N,).
    """
    _check_images(x)
    unknown = [a for a in aggregates if a not in AGGREGATES]
    if unknown:
        raise ValueError(f"unknown aggregates {unknown}; known: {sorted(AGGREGATES)}")
    from .attribution import attribute  # lazy: attribution pulls in captum/zennit

    with torch.no_grad():
        target = model(x).argmax(1)
    maps = attribute(method, model, x, target=target, **attr_params).detach()
    return {a: AGGREGATES[a](maps) for a in aggregates}


# --------------------------------------------------------------------------------------- SalAgg+MLS


def _vector(values: ArrayLike | Tensor, name: str) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be 1-D with at least 2 values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf values")
    return arr


def _sign(a_id: np.ndarray, a_ood: np.ndarray, rule: str) -> int:
    """S = +1 when the aggregate is larger on ID than on OOD validation data, else -1."""
    if rule == "mean":
        return 1 if a_id.mean() >= a_ood.mean() else -1
    if rule == "auroc":
        return 1 if _auroc(a_id, a_ood) >= 0.5 else -1
    raise ValueError(f"unknown sign_rule {rule!r}; known: 'mean', 'auroc'")


@dataclass(frozen=True)
class SalAggFit:
    """SalAgg+MLS constants from validation data: ID std of the aggregate and of MLS, and the sign S."""

    sigma_agg: float
    sigma_mls: float
    sign: int


def fit_salagg(
    agg_id_val: ArrayLike | Tensor,
    mls_id_val: ArrayLike | Tensor,
    agg_ood_val: ArrayLike | Tensor,
    *,
    sign_rule: str = "mean",
) -> SalAggFit:
    """Fit SalAgg+MLS (salagg paper, eqs. 2-6): sigma_Agg, sigma_MLS on ID validation, sign S.

    sign_rule "mean" (the paper, and its authors' code): S = sign(mean ID agg - mean OOD-val agg),
    a tie gives +1; "auroc": S = +1 if the aggregate's validation AUROC (ID positive) >= 0.5.
    Standard deviations use ddof = 1 (torch's default, as in the authors' code).
    """
    a_id, m_id = _vector(agg_id_val, "agg_id_val"), _vector(mls_id_val, "mls_id_val")
    a_ood = _vector(agg_ood_val, "agg_ood_val")
    if len(a_id) != len(m_id):
        raise ValueError(
            f"agg_id_val ({len(a_id)}) and mls_id_val ({len(m_id)}) must describe the same samples"
        )
    sign = _sign(a_id, a_ood, sign_rule)
    s_a, s_m = float(a_id.std(ddof=1)), float(m_id.std(ddof=1))
    if s_a == 0 or s_m == 0:
        raise ValueError(f"zero ID standard deviation (aggregate {s_a}, MLS {s_m}); cannot standardise")
    return SalAggFit(sigma_agg=s_a, sigma_mls=s_m, sign=sign)


def salagg_mls(agg: ArrayLike | Tensor, mls: ArrayLike | Tensor, fit: SalAggFit) -> Tensor:
    """SalAgg+MLS score ``S * A / sigma_Agg + MLS / sigma_MLS`` (eq. 6), (N,) -> (N,), higher = ID."""
    a, m = torch.as_tensor(agg), torch.as_tensor(mls)
    if a.shape != m.shape or a.ndim != 1:
        raise ValueError(
            f"agg and mls must be (N,) of the same length, got {tuple(a.shape)} and {tuple(m.shape)}"
        )
    if not (torch.isfinite(a).all() and torch.isfinite(m).all()):
        raise ValueError("agg or mls contain NaN/inf values")
    return fit.sign * a / fit.sigma_agg + m / fit.sigma_mls


@dataclass(frozen=True)
class AggregateSelection:
    """The validation winner and every candidate's validation AUROC."""

    best: str
    auroc: dict[str, float]


def select_aggregate(
    id_val: Mapping[str, ArrayLike | Tensor],
    ood_val: Mapping[str, ArrayLike | Tensor],
    *,
    mls_id: ArrayLike | Tensor | None = None,
    mls_ood: ArrayLike | Tensor | None = None,
    sign_rule: str = "mean",
) -> AggregateSelection:
    """Pick one saliency method's aggregate by validation AUROC (salagg paper, sec. 5.3).

    id_val / ood_val : aggregate name -> (N_id,) / (N_ood,) values on the validation split.  Without
    MLS the criterion is the aggregate's own AUROC after the sign S (the paper's Figure 1 basis);
    with ``mls_id``/``mls_ood`` it is the AUROC of SalAgg+MLS fitted on the same validation data.
    Ties go to the first name.
    """
    if set(id_val) != set(ood_val) or not id_val:
        raise ValueError(
            f"id_val and ood_val must name the same, non-empty aggregates: {sorted(id_val)} vs "
            f"{sorted(ood_val)}"
        )
    if (mls_id is None) != (mls_ood is None):
        raise ValueError("give both mls_id and mls_ood, or neither")
    scores: dict[str, float] = {}
    for name in id_val:
        a_id, a_ood = _vector(id_val[name], f"id_val[{name!r}]"), _vector(ood_val[name], f"ood_val[{name!r}]")
        if mls_id is None:
            value = _auroc(a_id, a_ood)
            scores[name] = value if _sign(a_id, a_ood, sign_rule) == 1 else 1.0 - value
        else:
            fit = fit_salagg(a_id, mls_id, a_ood, sign_rule=sign_rule)
            scores[name] = _auroc(
                salagg_mls(a_id, _vector(mls_id, "mls_id"), fit),
                salagg_mls(a_ood, _vector(mls_ood, "mls_ood"), fit),
            )
    return AggregateSelection(best=max(scores, key=scores.get), auroc=scores)
