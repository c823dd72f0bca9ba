"""Saliency-map aggregates of the salagg paper (sec. 4): one number per map, (N, ...) -> (N,).

mean, median, norm, range, max, Q3 (the third quartile of the raw values, as the paper words it) and
the scale-invariant CV, RMD, QCD, which raise where their denominator is 0.  Maps are raw
(unnormalised, unrectified) attribution maps.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


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
    """Third quartile (75th percentile, linear interpolation) of the raw values, (N, ...) -> (N,)."""
    return _quantile(_flat(maps), 0.75)


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
