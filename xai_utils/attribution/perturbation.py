"""Perturbation attributions: Occlusion, LIME, KernelSHAP and Anchor, on the batched engine of :mod:`.engine`.

Masks are True where a feature keeps the image and False where it is replaced by the baseline; random masks
come from a generator seeded with ``seed`` and are shared by all images.  Outputs are (N, C, H, W): a
feature's value on all its pixels and channels (captum's ``feature_mask`` convention).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..checks import check_images
from .engine import (
    KERNEL_SHAP_INF_WEIGHT,
    Features,
    as_baseline,
    as_features,
    evaluate_unchecked,
    kernel_shap_masks,
    lime_masks,
    weighted_least_squares,
)
from .postprocess import resolve_target
from .segmentation import sliding_windows

__all__ = ["occlusion", "lime", "kernel_shap", "anchor"]


def _lime_weights(
    x: Tensor,
    masks: Tensor,
    feats: Features,
    valid: Tensor,
    base: Tensor,
    distance: str,
    kernel_width: float,
) -> Tensor:
    """(N, S) kernel weights exp(-d^2 / (2 width^2)) (captum's and lime's kernel)."""
    m = masks.double() * valid.unsqueeze(1)
    if distance == "mask_cosine":  # lime_image: cosine distance between the mask and all-ones
        on, nf = m.sum(-1), valid.sum(-1, keepdim=True).double()
        d = torch.where(on > 0, 1 - on / (on.sqrt() * nf.sqrt()).clamp_min(1e-300), 1.0)
    elif distance in ("cosine", "euclidean"):  # captum: distance of the perturbed image to the original
        n = x.shape[0]
        xd, bd = x.double(), torch.broadcast_to(base.double(), x.shape)
        diff = xd - bd

        def per_feature(t: Tensor) -> Tensor:  # (N, C, H, W) -> (N, F) sums over each feature's pixels
            values = (t if feats.per_channel else t.sum(1)).flatten(1)
            return torch.zeros(n, feats.n, dtype=t.dtype, device=t.device).scatter_add_(
                1, feats.labels.expand(n, -1), values
            )

        fc = per_feature(diff * diff)
        if distance == "euclidean":
            d = ((1 - m) * fc.unsqueeze(1)).sum(-1).clamp_min(0).sqrt()
        else:
            xz = (xd * bd).flatten(1).sum(1, keepdim=True) + (m * per_feature(xd * diff).unsqueeze(1)).sum(-1)
            zz = (bd * bd).flatten(1).sum(1, keepdim=True) + (
                m * (2 * per_feature(bd * diff) + fc).unsqueeze(1)
            ).sum(-1)
            xx = (xd * xd).flatten(1).sum(1, keepdim=True)
            d = 1 - xz / (xx.sqrt().clamp_min(1e-8) * zz.clamp_min(0).sqrt().clamp_min(1e-8))
    else:
        raise ValueError(f"unknown LIME distance {distance!r}; known: ['cosine', 'euclidean', 'mask_cosine']")
    return torch.exp(-(d**2) / (2 * kernel_width**2))


def _check_labels(feats: Features, method: str) -> None:
    if feats.labels is None:
        raise ValueError(f"{method} needs disjoint features (a label map), not a membership stack")


def _masks_for(
    masks: Tensor | None, default: Tensor, n: int, n_features: int, device: torch.device
) -> Tensor:
    m = default if masks is None else torch.as_tensor(masks).bool()
    if m.shape[-1] != n_features or m.dim() not in (2, 3) or (m.dim() == 3 and m.shape[0] != n):
        raise ValueError(f"masks must be (S, {n_features}) or ({n}, S, {n_features}), got {tuple(m.shape)}")
    return (m.unsqueeze(0).expand(n, -1, -1) if m.dim() == 2 else m).to(device)


def _surrogate_data(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None,
    features: Tensor | None,
    masks: Tensor | None,
    sample: Callable[[int], Tensor],
    method: str,
    **evaluate_kw,
) -> tuple[Features, Tensor, Tensor, Tensor]:
    """What LIME and KernelSHAP fit their linear surrogate on: the checked inputs' features, the masks
    (``masks`` or ``sample(n_features)``) as (N, S, F), the valid-feature flags (N, F) and the model's
    target outputs on the masked images (N, S)."""
    check_images(x)
    target = resolve_target(model, x, target)
    feats = as_features(features, x)
    _check_labels(feats, method)
    n = x.shape[0]
    m = _masks_for(masks, sample(feats.n) if masks is None else None, n, feats.n, x.device)
    y = evaluate_unchecked(model, x, m, feats, target, **evaluate_kw)
    return feats, m, feats.valid(n), y


# ----------------------------------------------------------------------------------------- methods
def occlusion(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    features: Tensor | None = None,
    sliding_window_shapes: tuple[int, ...] | None = None,
    strides: tuple[int, ...] | int | None = None,
    baseline: float | Tensor = 0.0,
    chunk_size: int | None = None,
    callback: Callable | None = None,
) -> Tensor:
    """Occlusion (Zeiler & Fergus, arXiv:1311.2901): f(x) - f(x with one feature set to the baseline).

    x : (N, C, H, W).  Features: ``features`` (label map, default 4 x 4 grid as salagg, or membership)
    or captum-style windows ``sliding_window_shapes`` (C', h, w) with ``strides`` (hermitry: (3, 22, 22),
    (3, 11, 11)).  A pixel gets the mean difference over the windows covering it (captum's ``Occlusion``;
    disjoint features: the feature's difference), 0 where no window covers it.  Returns (N, C, H, W).
    """
    check_images(x)
    target = resolve_target(model, x, target)
    if sliding_window_shapes is not None:
        if features is not None:
            raise ValueError("give either features or sliding_window_shapes, not both")
        win = tuple(sliding_window_shapes)
        features = sliding_windows(
            tuple(x.shape[1:]),
            win if len(win) == 3 else (x.shape[1], *win),
            strides if strides is not None else 1,
        )
        if features.shape[1] == 1 or bool((features == features[:, :1]).all()):
            features = features[:, 0]  # windows span all channels: one (H, W) map per window
    feats = as_features(features, x)
    masks = torch.cat([torch.ones(1, feats.n, dtype=torch.bool), ~torch.eye(feats.n, dtype=torch.bool)])
    out = evaluate_unchecked(
        model, x, masks, feats, target, baseline=baseline, chunk_size=chunk_size, callback=callback
    )
    return feats.to_pixels(out[:, :1] - out[:, 1:], x.shape).to(x.dtype)


def lime(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    features: Tensor | None = None,
    n_samples: int = 100,
    p: float = 0.5,
    kernel_width: float = 0.25,
    distance: str = "mask_cosine",
    alpha: float = 0.0,
    baseline: float | Tensor = 0.0,
    masks: Tensor | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
    callback: Callable | None = None,
) -> Tensor:
    """LIME (Ribeiro et al., arXiv:1602.04938), batched over images; salagg's settings by default.

    Samples ``n_samples`` masks (feature off with probability p; or ``masks`` (S, F)/(N, S, F)), weights
    them by exp(-d^2 / (2 kernel_width^2)) (captum and lime_image), d = ``distance``: "mask_cosine"
    (mask vs all-ones, lime_image), "cosine" / "euclidean" (perturbed vs original image, captum), and
    fits target logit ~ masks by weighted least squares (``alpha`` > 0: ridge; captum's default Lasso
    is not used).  features : label map (default 4 x 4 grid).  x : (N, C, H, W) -> (N, C, H, W).
    """
    feats, m, valid, y = _surrogate_data(
        model, x, target, features, masks, lambda f: lime_masks(n_samples, f, p, seed), "LIME",
        baseline=baseline, chunk_size=chunk_size, callback=callback,
    )
    wts = _lime_weights(x, m, feats, valid, as_baseline(baseline, x)[0], distance, kernel_width)
    coef, _ = weighted_least_squares(m.double() * valid.unsqueeze(1), y, wts, alpha)
    return feats.to_pixels(coef.to(x.dtype), x.shape)


def kernel_shap(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    features: Tensor | None = None,
    n_samples: int = 100,
    baseline: float | Tensor = 0.0,
    masks: Tensor | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
    callback: Callable | None = None,
) -> Tensor:
    """KernelSHAP (Lundberg & Lee, arXiv:1705.07874) as captum's ``KernelShap``, batched over images.

    Coalitions sampled by size with the Shapley kernel's marginal (:func:`kernel_shap_masks`), weight 1,
    and 1e6 for the empty and full coalitions; weighted least squares of the target logit on the masks.
    features : label map (default 4 x 4 grid).  x : (N, C, H, W) -> (N, C, H, W).
    """
    feats, m, valid, y = _surrogate_data(
        model, x, target, features, masks, lambda f: kernel_shap_masks(n_samples, f, seed), "KernelSHAP",
        baseline=baseline, chunk_size=chunk_size, callback=callback,
    )
    on = (m & valid.unsqueeze(1)).sum(-1)
    edge = (on == 0) | (on == valid.sum(-1, keepdim=True))
    wts = torch.where(edge, KERNEL_SHAP_INF_WEIGHT, 1.0).double()
    coef, _ = weighted_least_squares(m.double() * valid.unsqueeze(1), y, wts)
    return feats.to_pixels(coef.to(x.dtype), x.shape)


def anchor(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    features: Tensor | None = None,
    threshold: float = 0.95,
    max_size: int | None = None,
    n_samples: int = 64,
    p: float = 0.5,
    baseline: float | Tensor = 0.0,
    mark: str = "gain",
    seed: int = 0,
    chunk_size: int | None = None,
    callback: Callable | None = None,
) -> Tensor:
    """Anchor-LIME-style explanation (Ribeiro et al., AAAI 2018): a greedy search for a set of features
    that, kept, keeps the prediction.

    Precision of a feature set A = share of perturbations (A kept, other features masked with
    probability p; the same ``n_samples`` seeded random masks for every candidate) that the model
    still assigns to ``target``.  Starting from A = {}, each step adds the feature with the highest
    precision, until precision >= ``threshold`` or |A| = ``max_size`` (default all features); all
    images advance together, finished ones drop out.  Unlike the anchor library (KL-LUCB bandit,
    beam search) the sample size is fixed.  Map: each anchor feature gets its precision gain
    (``mark="gain"``) or 1/rank (``"order"``); other features 0.  x : (N, C, H, W) -> (N, C, H, W).
    """
    check_images(x)
    target = resolve_target(model, x, target)
    feats = as_features(features, x)
    _check_labels(feats, "Anchor")
    if mark not in ("gain", "order"):
        raise ValueError(f"unknown mark {mark!r}; known: ['gain', 'order']")
    n, f, dev = x.shape[0], feats.n, x.device
    valid = feats.valid(n)
    rand = lime_masks(n_samples, f, p, seed).to(dev)  # (S, F)
    kw = dict(baseline=baseline, score="hit", chunk_size=chunk_size, callback=callback)
    prec = evaluate_unchecked(model, x, rand, feats, target, **kw).mean(1)  # empty anchor
    chosen = torch.zeros(n, f, dtype=torch.bool, device=dev)
    value = torch.zeros(n, f, dtype=torch.float64, device=dev)
    limit = f if max_size is None else max_size
    for step in range(limit):
        active = ((prec < threshold) & (valid & ~chosen).any(1)).nonzero().flatten()
        if len(active) == 0:
            break
        cand = valid[active] & ~chosen[active]  # (A, F)
        ai, ci = cand.nonzero(as_tuple=True)  # one (image, candidate) pair per entry
        keep = chosen[active][ai] | torch.nn.functional.one_hot(ci, f).bool()  # (P, F)
        rows = rand.unsqueeze(0) | keep.unsqueeze(1)  # (P, S, F)
        hits = evaluate_unchecked(
            model,
            x,
            rows.reshape(-1, f),
            feats,
            target,
            image_index=active[ai].repeat_interleave(n_samples),
            **kw,
        )
        cand_prec = torch.full((len(active), f), -1.0, dtype=torch.float64, device=dev)
        cand_prec[ai, ci] = hits.view(-1, n_samples).double().mean(1)
        best_prec, best = cand_prec.max(1)
        chosen[active, best] = True
        value[active, best] = (best_prec - prec[active].double()) if mark == "gain" else 1.0 / (step + 1)
        prec[active] = best_prec.to(prec.dtype)
    return feats.to_pixels(value.to(x.dtype), x.shape)
