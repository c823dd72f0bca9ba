"""OOD detection metrics: AUROC, AUPR-In/Out, FPR at a TPR (ID = positive class, scores higher = ID).

Conventions (one for the whole project): the in-distribution (ID) set is the *positive* class and
a score is higher for ID samples (OpenOOD's ``conf``). ``fpr_at_tpr`` picks the largest threshold
that keeps at least ``tpr`` of the ID samples (the first ROC point with TPR >= ``tpr``) and
returns the share of OOD samples at or above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_curve

from .arrays import as_numpy


def _scores(values: ArrayLike, name: str) -> np.ndarray:
    """1-D finite float64 array, or a ValueError naming ``name``."""
    arr = as_numpy(values, np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per sample), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {np.sum(~np.isfinite(arr))} NaN/inf values")
    return arr


def _labelled(id_scores: ArrayLike, ood_scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(y, s): y = 1 for ID, 0 for OOD; s the concatenated scores."""
    a, b = _scores(id_scores, "id_scores"), _scores(ood_scores, "ood_scores")
    return np.r_[np.ones(a.size), np.zeros(b.size)], np.r_[a, b]


def auroc(id_scores: ArrayLike, ood_scores: ArrayLike) -> float:
    """Area under the ROC curve with ID as the positive class (= sklearn ``roc_auc_score``).

    The Mann-Whitney U statistic from mid-ranks, without sklearn's per-call overhead, which dominates
    the thousands of small AUROCs of bootstraps and grids.  id_scores : (N_id,), ood_scores : (N_ood,),
    higher = more ID.  Returns a float in [0, 1]; 0.5 is chance, ties count one half.
    """
    a, b = _scores(id_scores, "id_scores"), _scores(ood_scores, "ood_scores")
    ranks = rankdata(np.concatenate([a, b]))
    return float((ranks[: a.size].sum() - a.size * (a.size + 1) / 2) / (a.size * b.size))


def aupr_in(id_scores: ArrayLike, ood_scores: ArrayLike) -> float:
    """Average precision with ID as the positive class (sklearn ``average_precision_score``)."""
    y, s = _labelled(id_scores, ood_scores)
    return float(average_precision_score(y, s))


def aupr_out(id_scores: ArrayLike, ood_scores: ArrayLike) -> float:
    """Average precision with OOD as the positive class, ranked by the negated score."""
    y, s = _labelled(id_scores, ood_scores)
    return float(average_precision_score(1 - y, -s))


def fpr_at_tpr(id_scores: ArrayLike, ood_scores: ArrayLike, *, tpr: float = 0.95) -> float:
    """Share of OOD samples accepted at the threshold that keeps ``tpr`` of the ID samples (FPR@95TPR).

    The threshold is the largest score ``t`` with ``mean(id >= t) >= tpr``; the result is
    ``mean(ood >= t)``.  id_scores : (N_id,), ood_scores : (N_ood,), higher = more ID.
    """
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    y, s = _labelled(id_scores, ood_scores)
    fpr, tpr_curve, _ = roc_curve(y, s, drop_intermediate=False)
    # tpr_curve is non-decreasing; tolerate float round-off in the comparison
    return float(fpr[np.searchsorted(tpr_curve, tpr - 1e-12, side="left")])


@dataclass(frozen=True)
class OODMetrics:
    """The usual OOD table row; all values are fractions in [0, 1] (ID = positive)."""

    auroc: float
    aupr_in: float
    aupr_out: float
    fpr_at_tpr: float
    tpr: float = 0.95

    def as_dict(self, percent: bool = False) -> dict[str, float]:
        """Metric name -> value (times 100 when ``percent``; the TPR level is not scaled)."""
        f = 100.0 if percent else 1.0
        return {
            "auroc": f * self.auroc,
            "aupr_in": f * self.aupr_in,
            "aupr_out": f * self.aupr_out,
            f"fpr@{round(100 * self.tpr)}tpr": f * self.fpr_at_tpr,
        }


def ood_metrics(id_scores: ArrayLike, ood_scores: ArrayLike, *, tpr: float = 0.95) -> OODMetrics:
    """AUROC, AUPR-In, AUPR-Out and FPR at ``tpr`` for one ID/OOD pair of score arrays."""
    return OODMetrics(
        auroc=auroc(id_scores, ood_scores),
        aupr_in=aupr_in(id_scores, ood_scores),
        aupr_out=aupr_out(id_scores, ood_scores),
        fpr_at_tpr=fpr_at_tpr(id_scores, ood_scores, tpr=tpr),
        tpr=tpr,
    )
