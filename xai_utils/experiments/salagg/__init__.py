"""Experiments of the salagg chapter: Hanssen & Hammer, "XAI saliency maps can be used for OOD detection".

The chapter's code, so that the notebook only sets parameters, calls and displays:

* :mod:`.runs`: :func:`make_runs` builds the (benchmark, classifier) pairs of a preset: ``offline``
  (cell benchmarks at 32 and 64 px with small ResNets trained here), ``real`` (the CIFAR-10 JPEG
  benchmark with the ResNet-20/56 checkpoints), ``full`` (OpenOOD v1.5 image lists and checkpoints), ``smoke``.
* :mod:`.scores`: :func:`compute_scores`, per image, the classical OOD scores and the 5 x 9 saliency
  aggregates (maps cached keyed by model weights, images and settings); SalAgg+MLS, selection, bootstraps.
* :mod:`.tables`, :mod:`.theorem`, :mod:`.plots`: AUROC grids (Figs. 1, 3-6), correlation with the MLS
  (Fig. 2), Table 1 (bootstrap + Wilcoxon), Table 2, the appendix theorem, and the paper-vs-ours tables.
* :mod:`.claims`: our verdicts on the paper's claims (wording in ``data/paper_numbers/salagg.yaml``).
"""

from .claims import (
    CLOSE_DETECTOR,
    CLOSE_MARGIN,
    claim_beats_mls,
    claim_close_to_best,
    claim_gbp_far,
    claim_gradcam_correlation,
    claim_magnitude,
    claim_significant,
    claim_theorem,
)
from .plots import plot_grid, plot_grids
from .runs import Run, accuracy_table, make_runs, subsample, subsample_runs
from .scores import (
    METHODS,
    SaliencySettings,
    Scores,
    best_combination,
    compute_scores,
    fit_combination,
    method_specs,
    pairs,
    select_on_validation,
    selected_combinations,
    set_aurocs,
    undefined_table,
    with_salagg,
)
from .tables import (
    AUROC_DECIMALS,
    EXAMPLES,
    auroc_grid,
    classical_table,
    compare_baselines,
    compare_table1,
    correlation_grid,
    links,
    paper_table1,
    summary,
    table1,
    table1_wide,
    table2,
)
from .theorem import theorem_check, theorem_table

__all__ = [
    "AUROC_DECIMALS",
    "CLOSE_DETECTOR",
    "CLOSE_MARGIN",
    "EXAMPLES",
    "METHODS",
    "Run",
    "SaliencySettings",
    "Scores",
    "accuracy_table",
    "auroc_grid",
    "best_combination",
    "claim_beats_mls",
    "claim_close_to_best",
    "claim_gbp_far",
    "claim_gradcam_correlation",
    "claim_magnitude",
    "claim_significant",
    "claim_theorem",
    "classical_table",
    "compare_baselines",
    "compare_table1",
    "compute_scores",
    "correlation_grid",
    "fit_combination",
    "links",
    "make_runs",
    "method_specs",
    "pairs",
    "paper_table1",
    "plot_grid",
    "plot_grids",
    "select_on_validation",
    "selected_combinations",
    "set_aurocs",
    "subsample",
    "subsample_runs",
    "summary",
    "table1",
    "table1_wide",
    "table2",
    "theorem_check",
    "theorem_table",
    "undefined_table",
    "with_salagg",
]
