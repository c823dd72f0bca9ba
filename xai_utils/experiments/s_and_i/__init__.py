"""The s_and_i chapter ("Splitting & Integrating: OOD Detection via Adversarial Gradient Attribution").

* runs: :func:`xai_utils.experiments.ood_runs.make_runs` (shared with salagg).
* :mod:`.scores`: per-image baselines, GAIA-Z/A and S&I(-A) on every test split, with the densities.
* :mod:`.tables`: Tables 1-2, ours beside the paper's; :mod:`.analysis`: the mask flips and rank
  agreement of S&I and GAIA-Z; :mod:`.ablation`: eta, T, split points; :mod:`.claims`; :mod:`.plots`.
"""

from ..ood_runs import Run, accuracy_table, make_runs
from .ablation import Ablation, ablation, spread_layers
from .analysis import density_frame, flip_table, rank_agreement
from .claims import (
    ALIKE_MARGIN,
    claim_beats_baselines,
    claim_eta,
    claim_large_label_space,
    claim_si_like_gaia,
    decide_alike,
    difference,
)
from .plots import plot_ablation, plot_densities, plot_maps
from .scores import LABELS, RunScores, SISettings, compute_scores, score_images
from .tables import (
    BACKBONE_TABLE,
    average_table,
    metrics_table,
    paper_inconsistencies,
    paper_table,
    record_averages,
    set_metrics,
)

__all__ = [
    "ALIKE_MARGIN",
    "BACKBONE_TABLE",
    "LABELS",
    "Ablation",
    "Run",
    "RunScores",
    "SISettings",
    "ablation",
    "accuracy_table",
    "average_table",
    "claim_beats_baselines",
    "claim_eta",
    "claim_large_label_space",
    "claim_si_like_gaia",
    "compute_scores",
    "decide_alike",
    "density_frame",
    "difference",
    "flip_table",
    "make_runs",
    "metrics_table",
    "paper_inconsistencies",
    "paper_table",
    "plot_ablation",
    "plot_densities",
    "plot_maps",
    "rank_agreement",
    "record_averages",
    "score_images",
    "set_metrics",
    "spread_layers",
]
