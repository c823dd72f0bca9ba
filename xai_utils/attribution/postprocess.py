"""Target resolution shared by every attribution method, and the named post-processing steps.

Attribution methods return raw, signed maps; taking absolute values, summing channels or
normalising is always an explicit call here (STYLE.md section 2).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from captum.attr import LayerAttribution
from torch import Tensor, nn

from ..checks import check_images

__all__ = ["resolve_target", "reduce_channels", "normalize", "Normalized", "upsample"]


def _num_classes(model: nn.Module, x: Tensor) -> int:
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return head.out_features
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


def resolve_target(model: nn.Module, x: Tensor, target: int | Tensor | None) -> Tensor:
    """Target classes as a (N,) long tensor on ``x.device``; ``None`` means the predicted class.

    Parameters
    ----------
    model : classifier; x : (N, C, H, W) images; target : None, int, 0-dim or (N,) integer tensor.

    Raises ``ValueError`` for a wrong shape, a non-integer tensor or a class out of range.
    """
    n = x.shape[0]
    if target is None:
        with torch.no_grad():
            return model(x).argmax(dim=1)
    if isinstance(target, bool) or not isinstance(target, (int, Tensor)):
        raise ValueError(
            f"target must be None, an int or an (N,) integer tensor, got {type(target).__name__}"
        )
    t = torch.as_tensor(target, device=x.device)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got dtype {t.dtype}")
    if t.dim() == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"target must have shape ({n},) to match x, got {tuple(t.shape)}")
    k = _num_classes(model, x)
    if n and (int(t.min()) < 0 or int(t.max()) >= k):
        raise ValueError(f"target out of range: classes are 0..{k - 1}, got {t.tolist()}")
    return t.long()


def reduce_channels(a: Tensor, how: str = "sum") -> Tensor:
    """Collapse the channel axis: (N, C, H, W) -> (N, 1, H, W).

    ``how``: ``"sum"`` (signed sum), ``"abs_sum"`` (sum of absolute values) or ``"max_abs"``
    (largest absolute value over channels).
    """
    check_images(a, "a")
    reducers = {
        "sum": lambda t: t.sum(dim=1, keepdim=True),
        "abs_sum": lambda t: t.abs().sum(dim=1, keepdim=True),
        "max_abs": lambda t: t.abs().amax(dim=1, keepdim=True),
    }
    if how not in reducers:
        raise ValueError(f"unknown channel reduction {how!r}; known: {sorted(reducers)}")
    return reducers[how](a)


class Normalized(NamedTuple):
    """Result of :func:`normalize`: ``maps`` like the input, ``degenerate`` (N,) bool flags."""

    maps: Tensor
    degenerate: Tensor


def normalize(a: Tensor, how: str = "max_abs", *, strict: bool = False) -> Normalized:
    """Per-sample normalisation of attribution maps of any shape (N, ...).

    ``"max_abs"``: a / max|a| (sign kept, values in [-1, 1]); ``"minmax"``: (a - min) / (max - min)
    (values in [0, 1]).  A map with no scale (all zero for max_abs, constant for minmax) becomes
    all zeros and is flagged in ``degenerate`` (N,); with ``strict=True`` it raises ``ValueError``.
    NaN or infinite values always raise ``ValueError``.

    Returns
    -------
    Normalized(maps, degenerate)
    """
    if not isinstance(a, Tensor) or a.dim() < 2 or not a.is_floating_point():
        raise ValueError("a must be a floating tensor of shape (N, ...)")
    if not torch.isfinite(a).all():
        raise ValueError("attribution maps contain NaN or infinite values")
    flat = a.flatten(1)
    if how == "max_abs":
        shift, scale = torch.zeros_like(flat[:, :1]), flat.abs().amax(dim=1, keepdim=True)
    elif how == "minmax":
        shift = flat.amin(dim=1, keepdim=True)
        scale = flat.amax(dim=1, keepdim=True) - shift
    else:
        raise ValueError(f"unknown normalisation {how!r}; known: ['max_abs', 'minmax']")
    degenerate = scale.squeeze(1) == 0
    if strict and degenerate.any():
        raise ValueError(
            f"maps {degenerate.nonzero().flatten().tolist()} are constant: cannot normalise ({how})"
        )
    out = torch.where(scale > 0, (flat - shift) / torch.where(scale > 0, scale, 1.0), 0.0)
    return Normalized(out.view_as(a), degenerate)


def upsample(cam: Tensor, size: tuple[int, int], mode: str = "nearest") -> Tensor:
    """Resize (N, 1, h, w) maps to (N, 1, *size) with captum's ``LayerAttribution.interpolate``.

    ``mode`` is torch's interpolation mode; ``"nearest"`` (captum's default) keeps the spatial
    mean exactly when ``size`` is a multiple of (h, w).
    """
    if not isinstance(cam, Tensor) or cam.dim() != 4:
        raise ValueError(f"cam must have shape (N, 1, h, w), got {getattr(cam, 'shape', type(cam))}")
    return LayerAttribution.interpolate(cam, tuple(int(s) for s in size), interpolate_mode=mode)
