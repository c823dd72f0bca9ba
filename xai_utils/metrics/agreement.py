"""Agreement between saliency maps (Mai & Nguyen, "The Disagreement Problem in XAI on Image Data").

SSIM on magnitudes (skimage), top-k feature and sign agreement and rank correlation (Krishna et al.,
"The Disagreement Problem in Explainable Machine Learning", arXiv:2202.01602, adapted to pixels),
and a method-by-method matrix of any of them.  Maps are (N, H, W) (reduce channels first, e.g.
with ``attribution.reduce_channels``); every function returns one value per sample, (N,) float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import combinations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from skimage.metrics import structural_similarity

from .arrays import as_numpy


def _maps(values: ArrayLike, name: str, *, ndim: int | None = None) -> np.ndarray:
    arr = as_numpy(values, np.float64)
    if arr.ndim < 2 or (ndim is not None and arr.ndim != ndim):
        raise ValueError(
            f"{name} must be a batch of maps {'(N, H, W)' if ndim == 3 else '(N, ...)'}, "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf values")
    return arr


def _pair(a: ArrayLike, b: ArrayLike, *, ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    x, y = _maps(a, "a", ndim=ndim), _maps(b, "b", ndim=ndim)
    if x.shape != y.shape:
        raise ValueError(f"maps differ in shape: {x.shape} vs {y.shape}")
    return x, y


#: What the functions whose value is undefined on a degenerate map (constant, e.g. all zero) do with it:
#: ``"raise"`` a ValueError naming the samples (default), or give ``"nan"`` for those samples.
DEGENERATE = ("raise", "nan")


def _check_degenerate(degenerate: str) -> None:
    if degenerate not in DEGENERATE:
        raise ValueError(f"degenerate must be one of {DEGENERATE}, got {degenerate!r}")


def _undefined(bad: np.ndarray, degenerate: str, what: str) -> None:
    """Raise for the samples ``bad`` (boolean (N,)) unless ``degenerate == "nan"``."""
    if degenerate == "raise" and bad.any():
        raise ValueError(f"samples {np.flatnonzero(bad).tolist()} {what}")


def _minmax_magnitude(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|x| rescaled per sample to [0, 1] (zeros where |x| is constant) and which samples are constant."""
    mag = np.abs(x)
    lo = mag.min(axis=(1, 2), keepdims=True)
    span = mag.max(axis=(1, 2), keepdims=True) - lo
    flat = span.ravel() == 0
    return (mag - lo) / np.where(span == 0, 1.0, span), flat


def ssim_maps(a: ArrayLike, b: ArrayLike, *, win_size: int = 7, degenerate: str = "raise") -> np.ndarray:
    """Per-sample SSIM of two batches of 2-D saliency maps, on magnitudes scaled to [0, 1].

    As in the disagreement thesis (section 4.2.2.1): |map| is min-max normalised per sample to
    [0, 1], then ``skimage.metrics.structural_similarity`` runs with ``data_range=1`` and its
    defaults (7x7 uniform window, K1=0.01, K2=0.03).  a, b : (N, H, W) with H, W >= ``win_size``.
    A map of constant magnitude has no min-max normalisation: ``degenerate`` (:data:`DEGENERATE`) raises
    or gives NaN for its sample.  Returns (N,), 1 for identical maps.
    """
    _check_degenerate(degenerate)
    x, y = _pair(a, b, ndim=3)
    if min(x.shape[1:]) < win_size:
        raise ValueError(f"maps of size {x.shape[1:]} are smaller than the SSIM window {win_size}")
    (x, flat_x), (y, flat_y) = _minmax_magnitude(x), _minmax_magnitude(y)
    bad = flat_x | flat_y
    _undefined(bad, degenerate, "have a constant magnitude map; SSIM of a min-max normalised map is undefined")
    # one call for the whole batch: samples as channels, then skimage's per-channel mean (border cropped)
    _, full = structural_similarity(x, y, win_size=win_size, data_range=1.0, channel_axis=0, full=True)
    pad = (win_size - 1) // 2
    return np.where(bad, np.nan, full[:, pad : full.shape[1] - pad, pad : full.shape[2] - pad].mean(axis=(1, 2)))


def _k(k: int | float, n_features: int) -> int:
    """k as a count: an int >= 1, or a float in (0, 1) meaning that share of the pixels (rounded, >= 1)."""
    if isinstance(k, (bool, np.bool_)):
        raise ValueError("k must be an int or a fraction, not a bool")
    if isinstance(k, (int, np.integer)):
        kk = int(k)
    elif isinstance(k, float) and 0.0 < k < 1.0:
        kk = max(1, int(round(k * n_features)))
    else:
        raise ValueError(f"k must be an int >= 1 or a float in (0, 1), got {k!r}")
    if not 1 <= kk <= n_features:
        raise ValueError(f"k={kk} is outside [1, {n_features}] (pixels per map)")
    return kk


def topk_indices(maps: ArrayLike, k: int | float) -> np.ndarray:
    """(N, k) flat pixel indices of the k largest magnitudes of each map, largest first (ties broken by the
    lower index): the top-k set of :func:`topk_feature_agreement`.  maps : (N, ...); k as there."""
    flat = _maps(maps, "maps").reshape(len(maps), -1)
    return np.argsort(-np.abs(flat), axis=1, kind="stable")[:, : _k(k, flat.shape[1])]


def _topk_mask(flat: np.ndarray, k: int) -> np.ndarray:
    """Boolean (N, D): the k entries of largest |value| per row (:func:`topk_indices`)."""
    mask = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(mask, topk_indices(flat, k), True, axis=1)
    return mask


def topk_agreements(maps: Mapping[str, ArrayLike], k: int | float = 0.05) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Feature and sign agreement (eqs. 4.6, 4.7) of every pair of ``maps``, each map's top-k set found once.

    maps : name -> (N, ...) map, all of one shape; k as in :func:`topk_feature_agreement`.  Returns
    (a, b) -> (FA, SA), each (N,) in [0, 1], for the pairs in ``itertools.combinations`` order.
    """
    checked = {name: _maps(m, name) for name, m in maps.items()}
    shapes = {a.shape for a in checked.values()}
    if len(shapes) > 1:
        raise ValueError(f"maps differ in shape: {sorted(shapes)}")
    if not checked:
        return {}
    arrays = {name: a.reshape(len(a), -1) for name, a in checked.items()}
    kk = _k(k, next(iter(arrays.values())).shape[1])
    top = {name: _topk_mask(a, kk) for name, a in arrays.items()}
    out = {}
    for a, b in combinations(arrays, 2):
        both = top[a] & top[b]
        out[a, b] = both.sum(axis=1) / kk, (both & (arrays[a] * arrays[b] > 0)).sum(axis=1) / kk
    return out


def topk_feature_agreement(a: ArrayLike, b: ArrayLike, k: int | float = 0.05) -> np.ndarray:
    """|top_k(a) & top_k(b)| / k, top-k by absolute value (Krishna et al. feature agreement, eq. 4.6).

    a, b : (N, ...) maps; k : count, or a share of the pixels (default the thesis' top 5 %).
    Returns (N,) in [0, 1].
    """
    return topk_agreements({"a": a, "b": b}, k)["a", "b"][0]


def topk_sign_agreement(a: ArrayLike, b: ArrayLike, k: int | float = 0.05) -> np.ndarray:
    """Share of k in both top-k sets *and* of the same sign (``a * b > 0``), eq. 4.7.

    a, b : (N, ...) maps; k as in :func:`topk_feature_agreement`.  Returns (N,) in [0, 1].
    """
    return topk_agreements({"a": a, "b": b}, k)["a", "b"][1]


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc, yc = x - x.mean(axis=1, keepdims=True), y - y.mean(axis=1, keepdims=True)
    return (xc * yc).sum(axis=1) / np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))


def rank_correlation(
    a: ArrayLike, b: ArrayLike, mask: ArrayLike | None = None, *, absolute: bool = False, degenerate: str = "raise"
) -> np.ndarray:
    """Spearman's rho between the pixel rankings of two maps, optionally inside a mask (eq. 4.9).

    a, b : (N, ...) maps; mask : bool, same shape or broadcastable to it (e.g. a ground-truth
    segmentation; the thesis ranks raw pixel values, ``absolute=True`` ranks magnitudes).  Average
    ranks for ties (scipy ``rankdata``).  A map constant in the region has no ranking: ``degenerate``
    (:data:`DEGENERATE`) raises or gives NaN for its sample.  Returns (N,) in [-1, 1].
    """
    _check_degenerate(degenerate)
    x, y = _pair(a, b)
    if absolute:
        x, y = np.abs(x), np.abs(y)
    fx, fy = x.reshape(len(x), -1), y.reshape(len(y), -1)
    if mask is None:
        rx, ry = rankdata(fx, axis=1), rankdata(fy, axis=1)
        bad = (rx.std(axis=1) == 0) | (ry.std(axis=1) == 0)
        _undefined(bad, degenerate, "have a constant map; rank correlation is undefined")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(bad, np.nan, _rowwise_pearson(rx, ry))
    m = np.broadcast_to(np.asarray(mask, dtype=bool), x.shape).reshape(len(x), -1)
    out = np.empty(len(x))
    for i in range(len(x)):  # masks select different pixel counts per sample
        sel = m[i]
        if sel.sum() < 2:
            raise ValueError(f"sample {i}: the mask selects {sel.sum()} pixels; need at least 2")
        rx, ry = rankdata(fx[i, sel]), rankdata(fy[i, sel])
        flat = rx.std() == 0 or ry.std() == 0
        if flat and degenerate == "raise":
            raise ValueError(f"sample {i}: constant map inside the mask; rank correlation is undefined")
        out[i] = np.nan if flat else _rowwise_pearson(rx[None], ry[None])[0]
    return out


def pairwise(maps: Mapping[str, ArrayLike], fn: Callable[..., np.ndarray], **kw) -> pd.DataFrame:
    """Method x method matrix of the sample mean of ``fn(maps[row], maps[col], **kw)``.

    maps : method name -> (N, H, W) maps of the same samples; fn : one of this module's per-sample
    functions (or any ``(a, b) -> (N,)``).  The diagonal compares a method with itself.
    """
    names = list(maps)
    if not names:
        raise ValueError("maps is empty")
    table = pd.DataFrame(np.nan, index=pd.Index(names, name="method"), columns=names, dtype=float)
    for i, r in enumerate(names):
        for c in names[i:]:
            table.loc[r, c] = float(np.mean(fn(maps[r], maps[c], **kw)))
            if c != r:
                table.loc[c, r] = float(np.mean(fn(maps[c], maps[r], **kw)))
    return table
