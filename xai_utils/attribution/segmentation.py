"""Feature maps for the perturbation engine.

Two representations, told apart by dtype:

* integer **label maps**, shared (H, W) or per image (N, H, W), ids 0..F-1: disjoint features
  (grid rectangles, SLIC superpixels).  LIME, KernelSHAP, Anchor and Occlusion accept them.
* integer **per-value label maps** (1, C, H, W) or (N, C, H, W): features over single input values,
  e.g. :func:`per_value` (captum's LIME / KernelSHAP without a ``feature_mask``: every value is its own
  feature).  LIME, KernelSHAP, Anchor and Occlusion accept them.
* boolean **membership stacks** (F, H, W) or (F, C, H, W): possibly overlapping features
  (sliding patches, captum-style occlusion windows over channels).  Occlusion accepts them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..checks import check_images

__all__ = ["grid", "per_value", "patches", "sliding_windows", "slic"]


def grid(h: int, w: int, g: int | tuple[int, int] = 4) -> Tensor:
    """Label map (h, w) of g x g near-equal rectangles, ids row-major (salagg: g = 4, 16 features).

    ``g`` may be (rows, cols).  Block i holds rows floor(i h / g) .. floor((i+1) h / g) - 1.
    """
    gh, gw = (g, g) if isinstance(g, int) else g
    if not (1 <= gh <= h and 1 <= gw <= w):
        raise ValueError(f"grid of {gh}x{gw} does not fit an image of {h}x{w}")
    rows = torch.arange(h) * gh // h
    cols = torch.arange(w) * gw // w
    return rows[:, None] * gw + cols[None, :]


def per_value(c: int, h: int, w: int) -> Tensor:
    """Label map (1, c, h, w) with one feature per input value, ids in C-order (captum's default features)."""
    if min(c, h, w) < 1:
        raise ValueError(f"per_value needs a positive shape, got ({c}, {h}, {w})")
    return torch.arange(c * h * w).view(1, c, h, w)


def _window_starts(size: int, window: int, stride: int) -> list[int]:
    # captum Occlusion: ceil((size - window) / stride) + 1 windows; the last one is cut at the border
    if not (1 <= window <= size) or stride < 1:
        raise ValueError(f"window {window} / stride {stride} do not fit a dimension of size {size}")
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def sliding_windows(
    shape: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...] | int
) -> Tensor:
    """Membership (F, *shape) of captum-``Occlusion``-style sliding windows over an input of ``shape``.

    shape, window, strides : per-dimension tuples, e.g. (3, 32, 32), (3, 8, 8), (3, 4, 4).  Windows
    start at 0, stride, ... (ceil((size - window) / stride) + 1 per dim), cut at the border.
    """
    strides = (strides,) * len(shape) if isinstance(strides, int) else tuple(strides)
    if not (len(shape) == len(window) == len(strides)):
        raise ValueError(f"shape {shape}, window {window} and strides {strides} need the same length")
    axes = []
    for size, win, st in zip(shape, window, strides, strict=True):
        starts = torch.tensor(_window_starts(size, win, st))
        idx = torch.arange(size)
        axes.append((idx[None, :] >= starts[:, None]) & (idx[None, :] < starts[:, None] + win))  # (n_d, size)
    member = axes[0]
    for ax in axes[1:]:  # outer product over dims -> (prod n_d, *shape)
        member = member.reshape(member.shape[0], 1, *member.shape[1:], 1) & ax.reshape(
            1, ax.shape[0], *([1] * (member.dim() - 1)), ax.shape[1]
        )
        member = member.reshape(-1, *member.shape[2:])
    return member


def patches(
    h: int, w: int, patch: int | tuple[int, int], stride: int | tuple[int, int] | None = None
) -> Tensor:
    """Membership (F, h, w) of fixed-size sliding patches (overlapping when stride < patch).

    Same placement as :func:`sliding_windows`; stride defaults to the patch size (a tiling).
    """
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    stride = (ph, pw) if stride is None else stride
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    return sliding_windows((h, w), (ph, pw), (sh, sw))


def slic(x: Tensor, n_segments: int = 16, compactness: float = 10.0, **kwargs) -> Tensor:
    """SLIC superpixels (Achanta et al. 2012) per image via ``skimage.segmentation.slic``.

    x : (N, C, H, W) in [0, 1].  Returns label maps (N, H, W) with consecutive ids 0..F_i-1 per
    image (images may have different F_i).  Runs on CPU, one skimage call per image.
    """
    from skimage.segmentation import slic as _slic

    check_images(x)
    imgs = x.detach().cpu().double().permute(0, 2, 3, 1).numpy()
    out = np.empty(imgs.shape[:3], dtype=np.int64)
    for i, img in enumerate(imgs):
        multi = img.shape[-1] > 1
        lab = _slic(
            img if multi else img[..., 0],
            n_segments=n_segments,
            compactness=compactness,
            start_label=0,
            channel_axis=-1 if multi else None,
            **kwargs,
        )
        out[i] = np.unique(lab, return_inverse=True)[1].reshape(lab.shape)
    return torch.from_numpy(out).to(x.device)
