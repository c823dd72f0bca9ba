"""Five-band score of heatmaps against ground-truth heatmaps (Tjoa & Guan, synthetic_cells paper, sec. III-C).

Definitions follow the authors' code (github.com/ericotjo001/explainable_ai,
``xai_basic/legacy/srcV1/pipeline/eval/eval_metrics.py``, class ``FiveBandXAIMetric``) where the paper's
text is ambiguous.  Pipeline for one heatmap h (C, H, W) and its ground truth h0 (H, W) with values
0 / 0.4 / 0.9:

1. channel adjustment  h -> h / max|h| -> [clamp to (c1, c2)] -> sum over channels -> h / max|h|;
2. five-band stratification with a threshold row t = (t0, t1, t2, t3) (the paper's
   [-t(2), -t(1), t(1), t(2)]): 2 if h > t3, 1 if t2 < h <= t3, 0 if t1 < h <= t2,
   -1 if t0 < h <= t1, -2 if h <= t0 (the authors' ``five_band_stratification``; the paper leaves the
   edges open).  The ground truth maps 0.9 -> 2, 0.4 -> 1, 0 -> 0 (and -0.4 -> -1, -0.9 -> -2);
3. counts per sample and threshold: TP = #(h0 != 0 & h == h0), FN = #(h0 != 0 & h == 0),
   TN = #(h0 == 0 & h == 0), FP = #(h0 == 0 & h != 0) [background] + a wrong-band term.
   ``fp="authors"`` (default; their ``fiveband_score``, ``FP2``): #(h0 != 0 & h != 0 & h != h0), wrong
   *non-zero* bands only.  ``fp="literal"``: #(h0 != 0 & h != h0), the paper's sentence read literally,
   under which a missed object pixel (h = 0) counts both as FN and as FP (so precision <= recall);
4. P = TP/(TP+FP+eps), R = TP/(TP+FN+eps), FPR = FP/(FP+TN+eps), A = share of pixels with h == h0,
   eps = 1e-6; then average and best over the soft thresholds t_m, m = 0..M-1.

The paper writes the average as (1/n_soft) sum over m = 0..n_soft, i.e. n_soft + 1 terms; we (and the
authors' ``soft_fiveband_score``, 56 steps) average over the M = n_soft + 1 thresholds actually used.
Zero heatmaps stay zero (every pixel in band 0): they are valid, if useless, explanations and score
P = R = 0, as does any heatmap of an image without object pixels (the blank cell type 9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .arrays import as_numpy

EPS = 1e-6
GT_LEVELS = (-0.9, -0.4, 0.0, 0.4, 0.9)
CLAMP = (-0.1, 0.1)
METRICS = ("precision", "recall", "fpr", "accuracy")
#: Definitions of the wrong-band false positives (see the module docstring); the first is the default.
FP_RULES = ("authors", "literal")


def soft_thresholds(
    d: float = 0.005, m_max: int = 55, base: tuple[float, float, float, float] = (-0.5, -0.3, 0.3, 0.5)
) -> np.ndarray:
    """Soft five-band threshold schedule, (M, 4) with M = m_max + 1.

    Row m is ``base + m * d * (1, 1, -1, -1)``, i.e. t_m = [-0.5+md, -0.3+md, 0.3-md, 0.5-md]
    for the defaults (paper: d = 0.005, n_soft = 55; last row [-0.225, -0.025, 0.025, 0.225]).
    Every row must satisfy t0 < t1 <= t2 < t3.
    """
    if m_max < 0 or d < 0:
        raise ValueError(f"need m_max >= 0 and d >= 0, got m_max={m_max}, d={d}")
    t = np.asarray(base, dtype=np.float64)[None, :] + d * np.arange(m_max + 1)[:, None] * np.array(
        [1, 1, -1, -1]
    )
    _check_thresholds(t)
    return t


def clamped_thresholds(d: float = 0.01, m_max: int = 40) -> np.ndarray:
    """Schedule of the clamped variant: t_m = [-0.9+md, -0.5+md, 0.5-md, 0.9-md], d = 0.01, m = 0..40."""
    return soft_thresholds(d=d, m_max=m_max, base=(-0.9, -0.5, 0.5, 0.9))


def _check_thresholds(t: np.ndarray) -> None:
    if t.ndim != 2 or t.shape[1] != 4:
        raise ValueError(f"thresholds must be (M, 4), got shape {t.shape}")
    ok = (t[:, 0] < t[:, 1]) & (t[:, 1] <= t[:, 2]) & (t[:, 2] < t[:, 3])
    if not ok.all():
        raise ValueError(f"threshold rows {np.flatnonzero(~ok).tolist()} are not ordered t0 < t1 <= t2 < t3")


def _array(values: ArrayLike, name: str) -> np.ndarray:
    arr = as_numpy(values, np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf values")
    return arr


def _absmax_normalise(h: np.ndarray) -> np.ndarray:
    """h / max|h| per sample over all but the first axis; all-zero samples stay zero."""
    m = np.abs(h).reshape(len(h), -1).max(axis=1).reshape((-1,) + (1,) * (h.ndim - 1))
    return h / np.where(m > 0, m, 1.0)


def channel_adjust(heatmaps: ArrayLike, *, clamp: tuple[float, float] | None = None) -> np.ndarray:
    """h -> h/max|h| -> [clamp] -> sum over channels -> h/max|h|, per sample.

    heatmaps : (N, C, H, W) or (N, H, W) (treated as C = 1).  clamp : (c1, c2) applied after the
    first normalisation (paper's clamped variant: :data:`CLAMP` = (-0.1, 0.1)).  Returns (N, H, W) in [-1, 1].
    """
    h = _array(heatmaps, "heatmaps")
    if h.ndim == 3:
        h = h[:, None]
    if h.ndim != 4 or h.shape[0] == 0:
        raise ValueError(f"heatmaps must be (N, C, H, W) or (N, H, W) with N >= 1, got shape {h.shape}")
    h = _absmax_normalise(h)
    if clamp is not None:
        c1, c2 = clamp
        if not c1 < c2:
            raise ValueError(f"clamp must be (c1, c2) with c1 < c2, got {clamp}")
        h = np.clip(h, c1, c2)
    return _absmax_normalise(h.sum(axis=1))


def stratify(h: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """Five-band labels in {-2..2} of adjusted maps for each threshold row.

    h : (N, H, W) adjusted maps; thresholds : (4,) or (M, 4).  Bands: 2 if h > t3, 1 if t2 < h <= t3,
    0 if t1 < h <= t2, -1 if t0 < h <= t1, -2 if h <= t0 (the authors' ``five_band_stratification``).
    Returns int8 (N, M, H, W) (M = 1 for a single row).
    """
    x = _array(h, "h")
    t = np.atleast_2d(np.asarray(thresholds, dtype=np.float64))
    _check_thresholds(t)
    x = x[:, None]
    tt = [t[:, i].reshape((1, -1) + (1,) * (x.ndim - 2)) for i in range(4)]
    return ((x > tt[2]).astype(np.int8) + (x > tt[3]) - (x <= tt[1]) - (x <= tt[0])).astype(np.int8)


def stratify_ground_truth(h0: ArrayLike, *, atol: float = 1e-3) -> np.ndarray:
    """Ground-truth heatmap values -> bands: 0.9 -> 2, 0.4 -> 1, 0 -> 0, -0.4 -> -1, -0.9 -> -2.

    h0 : (N, H, W) with every value within ``atol`` of one of :data:`GT_LEVELS`.  Returns int8 (N, H, W).
    """
    g = _array(h0, "ground_truth")
    levels = np.asarray(GT_LEVELS)
    idx = np.searchsorted((levels[1:] + levels[:-1]) / 2, g)  # the nearest level
    off = np.abs(g - levels[idx]) > atol
    if off.any():
        raise ValueError(
            f"ground truth has {off.sum()} values not within {atol} of {GT_LEVELS}, "
            f"e.g. {g[off][:3].tolist()}"
        )
    return (idx - 2).astype(np.int8)


@dataclass(frozen=True, eq=False)
class FiveBandScores:
    """Per-sample, per-threshold counts and scores; arrays are (N, M) (float64 scores, int64 counts)."""

    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    fpr: np.ndarray
    accuracy: np.ndarray
    thresholds: np.ndarray

    def avg(self, metric: str) -> np.ndarray:
        """(N,) mean over the thresholds of ``metric`` (precision, recall, fpr, accuracy)."""
        return self._get(metric).mean(axis=1)

    def best(self, metric: str) -> np.ndarray:
        """(N,) maximum over the thresholds (for ``fpr`` the best is the minimum)."""
        v = self._get(metric)
        return v.min(axis=1) if metric == "fpr" else v.max(axis=1)

    def roc_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean FPR, mean recall) over samples per threshold, (M,) each: the paper's Fig. 4 points."""
        return self.fpr.mean(axis=0), self.recall.mean(axis=0)

    def _get(self, metric: str) -> np.ndarray:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {list(METRICS)}")
        return getattr(self, metric)


def band_counts(h: np.ndarray, g: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Confusion counts of the five-band labels: int64 (N, 5, 5, M), [n, gt band + 2, band + 2, m].

    The labels of :func:`stratify` without materialising them (N x M x H x W): every pixel's rank
    among the distinct threshold values (edges), the number of edges < h, is found once by binary
    search and histogrammed per sample and ground-truth band; h <= edges[j] iff rank <= j, so the
    counts at or below each threshold are cumulative sums.  h : (N, H, W) adjusted maps;
    g : (N, H, W) int bands in -2..2; t : (M, 4) thresholds.
    """
    n = len(h)
    edges = np.unique(t)
    k = len(edges) + 1
    group = (np.arange(n)[:, None] * 5 + (g.reshape(n, -1) + 2)).ravel() * k
    rank = np.searchsorted(edges, h.reshape(-1), side="left")
    at_most = np.bincount(group + rank, minlength=n * 5 * k).reshape(n, 5, k).cumsum(-1)  # h <= edges[j]
    total = at_most[..., -1:]
    j = [np.searchsorted(edges, t[:, c]) for c in range(4)]  # edges[j[c]] == t[:, c]
    gt3, gt2 = total - at_most[..., j[3]], total - at_most[..., j[2]]  # h > t3 (band 2), h > t2 (>= 1)
    le1, le0 = at_most[..., j[1]], at_most[..., j[0]]  # h <= t1 (bands <= -1), h <= t0 (band -2)
    return np.stack([le0, le1 - le0, total - gt2 - le1, gt2 - gt3, gt3], axis=2)


def five_band_scores(
    heatmaps: ArrayLike,
    ground_truth: ArrayLike,
    *,
    variant: str = "soft",
    thresholds: ArrayLike | None = None,
    clamp: tuple[float, float] | None = None,
    fp: str = "authors",
) -> FiveBandScores:
    """Five-band precision / recall / FPR / accuracy of heatmaps for every soft threshold.

    heatmaps : (N, C, H, W) or (N, H, W) raw attributions; ground_truth : (N, H, W) in {0, 0.4, 0.9}.
    variant : "soft" (:func:`soft_thresholds`, no clamp) or "clamped" (:data:`CLAMP` and
    :func:`clamped_thresholds`); ``thresholds``/``clamp`` override it.  fp : one of :data:`FP_RULES`,
    "authors" (their code) or "literal" (see the module docstring).  Counts come from :func:`band_counts`.
    Returns
    :class:`FiveBandScores` with (N, M) arrays.
    """
    if variant not in ("soft", "clamped"):
        raise ValueError(f"unknown variant {variant!r}; known: 'soft', 'clamped'")
    if fp not in FP_RULES:
        raise ValueError(f"unknown fp rule {fp!r}; known: {list(FP_RULES)}")
    if thresholds is None:
        thresholds = soft_thresholds() if variant == "soft" else clamped_thresholds()
    if clamp is None and variant == "clamped":
        clamp = CLAMP
    t = np.atleast_2d(np.asarray(thresholds, dtype=np.float64))
    _check_thresholds(t)
    h = channel_adjust(heatmaps, clamp=clamp)
    g = stratify_ground_truth(ground_truth)
    if g.shape != h.shape:
        raise ValueError(f"ground truth shape {g.shape} does not match the heatmaps' (N, H, W) {h.shape}")
    c = band_counts(h, g, t)  # (N, gt, band, M)
    obj = [0, 1, 3, 4]  # ground-truth bands other than 0
    hit = np.stack([c[:, k, k] for k in range(5)], axis=1)  # (N, 5, M): pixels in their own band
    per_gt = c.sum(axis=2)  # (N, 5, M): pixels of each ground-truth band
    tp = hit[:, obj].sum(axis=1)
    fn = c[:, obj, 2].sum(axis=1)
    tn = c[:, 2, 2]
    wrong = per_gt[:, obj].sum(axis=1) - tp  # object pixels off their band (band 0 included)
    fp_ = per_gt[:, 2] - tn + (wrong if fp == "literal" else wrong - fn)
    return FiveBandScores(
        tp=tp,
        fp=fp_,
        tn=tn,
        fn=fn,
        precision=tp / (tp + fp_ + EPS),
        recall=tp / (tp + fn + EPS),
        fpr=fp_ / (fp_ + tn + EPS),
        accuracy=hit.sum(axis=1) / (h.shape[1] * h.shape[2]),
        thresholds=t,
    )
