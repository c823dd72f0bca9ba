"""Input checks shared by the attribution methods and the OOD scores."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_images"]


def check_images(x: Tensor, name: str = "x") -> Tensor:
    """Raise ``ValueError`` unless ``x`` is a finite floating tensor of shape (N, C, H, W) with N >= 1.

    One full scan of the batch for NaN/inf: call it once per public call, not in helpers.
    Returns ``x`` unchanged.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got shape {tuple(x.shape)} ({x.dim()} dims)")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0)")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point images in [0, 1], got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x
