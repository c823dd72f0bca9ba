"""Metrics: pure functions, arrays in, floats / per-sample arrays / frozen dataclasses out.

- :mod:`.ood` -- AUROC, AUPR-In/Out, FPR@95TPR (ID = positive class, scores higher = ID).
- :mod:`.stats` -- bootstrap, percentile intervals, Wilcoxon signed-rank vs a baseline with Bonferroni/Holm, mean CIs.
- :mod:`.agreement` -- SSIM, top-k feature/sign agreement, rank correlation, pairwise matrices.
- :mod:`.fiveband` -- five-band precision/recall/FPR/accuracy with soft thresholds.
- :mod:`.hermitry` -- Mahalanobis hermitry ratio of perturbed samples.
"""

from .agreement import (
    pairwise,
    rank_correlation,
    ssim_maps,
    topk_agreements,
    topk_feature_agreement,
    topk_indices,
    topk_sign_agreement,
)
from .fiveband import (
    FiveBandScores,
    channel_adjust,
    clamped_thresholds,
    five_band_scores,
    soft_thresholds,
    stratify,
    stratify_ground_truth,
)
from .hermitry import HermitryFit, fit_hermitry, hermitry_ratio, null_ratio
from .ood import OODMetrics, aupr_in, aupr_out, auroc, fpr_at_tpr, ood_metrics
from .stats import MeanCI, bootstrap, mean_ci, percentile_interval, stars, wilcoxon_vs_baseline

__all__ = [
    "FiveBandScores",
    "HermitryFit",
    "MeanCI",
    "OODMetrics",
    "aupr_in",
    "aupr_out",
    "auroc",
    "bootstrap",
    "channel_adjust",
    "clamped_thresholds",
    "fit_hermitry",
    "five_band_scores",
    "fpr_at_tpr",
    "hermitry_ratio",
    "null_ratio",
    "mean_ci",
    "percentile_interval",
    "ood_metrics",
    "pairwise",
    "rank_correlation",
    "soft_thresholds",
    "ssim_maps",
    "stars",
    "stratify",
    "stratify_ground_truth",
    "topk_agreements",
    "topk_feature_agreement",
    "topk_indices",
    "topk_sign_agreement",
    "wilcoxon_vs_baseline",
]
