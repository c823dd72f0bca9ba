"""Scores from logits and penultimate features: MSP, MLS, Energy, ODIN, ReAct, GradNorm, RankFeat.

Every score is ``score(model, x, **kw) -> (N,)``, higher = more in-distribution; x : (N, C, H, W)
images in [0, 1], checked once per call.  ReAct, GradNorm use the model contract (``features``,
``head``), RankFeat ``cam_layer``.  The scores run the model's fastest form
(:func:`~xai_utils.models.form.fastest_form`; the eager model in the notebooks), except RankFeat, whose
rank-1 removal is a forward hook that a copy of the model would not run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_images
from ..models.form import fastest_form


def _fast(model: nn.Module, x: Tensor, *, backward: bool = False, method: str = "forward") -> nn.Module:
    """The fastest form of ``model`` (of its ``method``) for one pass over x's images."""
    return fastest_form(model, x, backward=backward, workload=len(x), method=method).module


def _free_energy(logits: Tensor, temperature: float) -> Tensor:
    """``T * logsumexp(logits / T)`` over classes, (N, K) -> (N,)."""
    return temperature * torch.logsumexp(logits / temperature, dim=1)


@torch.no_grad()
def msp(model: nn.Module, x: Tensor) -> Tensor:
    """Maximum softmax probability (Hendrycks & Gimpel, arXiv:1610.02136). x : (N, C, H, W) -> (N,)."""
    check_images(x)
    return F.softmax(_fast(model, x)(x), dim=1).amax(dim=1)


@torch.no_grad()
def max_logit(model: nn.Module, x: Tensor) -> Tensor:
    """Maximum logit score, MLS (Hendrycks et al., arXiv:1911.11132). x : (N, C, H, W) -> (N,)."""
    check_images(x)
    return _fast(model, x)(x).amax(dim=1)


@torch.no_grad()
def energy(model: nn.Module, x: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Negative free energy ``T * logsumexp(f(x) / T)`` (Liu et al., arXiv:2010.03759). -> (N,)."""
    check_images(x)
    return _free_energy(_fast(model, x)(x), temperature)


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
    check_images(x)
    std = x.new_tensor(tuple(input_std))
    if std.numel() not in (1, x.shape[1]) or (std <= 0).any():
        raise ValueError(f"input_std must be 1 or {x.shape[1]} positive values, got {tuple(input_std)}")
    net = _fast(model, x, backward=True)
    xg = x.detach().requires_grad_()
    with torch.enable_grad():
        logits = net(xg) / temperature
        # "sum": a sample's step does not depend on the batch it is in
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, logits.argmax(1), reduction="sum"), xg)
    step = epsilon * grad.sign() / std.view(1, -1, 1, 1)
    with torch.no_grad():
        return F.softmax(net(x.detach() - step) / temperature, dim=1).amax(dim=1)


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
    check_images(x)
    _check_contract(model)
    if not isinstance(fit, ReActFit):
        raise ValueError("react needs fit=fit_react(model, id_x) (a ReActFit)")
    features = _fast(model, x, method="features")(x)
    return _free_energy(model.head(features.clamp(max=fit.threshold)), temperature)


@torch.no_grad()
def gradnorm(model: nn.Module, x: Tensor, *, temperature: float = 1.0) -> Tensor:
    """GradNorm (Huang et al., arXiv:2110.00218): L1 norm of d KL(u || softmax(f/T)) / d head.weight.

    Per sample that gradient is ``outer(softmax(f/T) - 1/K, h) / T`` (h = features, K classes), so its
    L1 norm is ``||p - 1/K||_1 * ||h||_1 / T``: one batched forward, no per-sample backward.
    x : (N, C, H, W) -> (N,), higher = ID.
    """
    check_images(x)
    _check_contract(model)
    h = _fast(model, x, method="features")(x)
    p = F.softmax(model.head(h) / temperature, dim=1)
    return (p - 1.0 / p.shape[1]).abs().sum(1) * h.abs().sum(1) / temperature


def _remove_rank1(module: nn.Module, inputs: tuple, out: Tensor) -> Tensor:
    """Forward hook: (N, C, H, W) -> the same minus each sample's rank-1 part ``s1 u1 v1^T`` of (C, HW)."""
    if out.ndim != 4:
        raise ValueError(f"rankfeat needs a 4-D cam_layer output, got shape {tuple(out.shape)}")
    m = out.flatten(2)
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    return (m - s[:, :1, None] * u[:, :, :1] @ vh[:, :1, :]).view_as(out)


@torch.no_grad()
def rankfeat(model: nn.Module, x: Tensor, *, temperature: float = 1.0) -> Tensor:
    """RankFeat (Song et al., arXiv:2209.08590): energy after removing the rank-1 part of the last map.

    The output of ``model.cam_layer`` (N, C, H, W), seen as (N, C, HW) matrices, loses
    ``s1 u1 v1^T`` (exact batched SVD instead of the paper's power iteration) before the rest of
    the network runs.  x : (N, C, H, W) -> (N,).
    """
    check_images(x)
    handle = model.cam_layer.register_forward_hook(_remove_rank1)
    try:
        logits = model(x)
    finally:
        handle.remove()
    return _free_energy(logits, temperature)
