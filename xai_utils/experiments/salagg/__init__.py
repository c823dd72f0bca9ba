"""Experiments of the salagg chapter: Hanssen & Hammer, "XAI saliency maps can be used for OOD detection".

The chapter's code, so that the notebook only sets parameters, calls and displays:

* :mod:`xai_utils.experiments.ood_runs` (shared with s_and_i): :func:`make_runs` builds the (benchmark, classifier) pairs of a preset: ``offline``
  (cell benchmarks at 32 and 64 px with small ResNets trained here), ``real`` (the CIFAR-10 JPEG
  benchmark with the ResNet-20 checkpoint, or others by name), ``full`` (OpenOOD v1.5 image lists and checkpoints), ``smoke``.
* :mod:`.scores`: :func:`compute_scores`, per image, the classical OOD scores and the 5 x 9 saliency
  aggregates (maps cached keyed by model weights, images and settings), AUROCs per set and group.
* :mod:`.combination`: SalAgg+MLS (sign rule, standard deviations) and the selection of aggregates.
* :mod:`.bootstrap`: paired bootstrap replicates of test AUROCs, for Table 1 and the 95% intervals.
* :mod:`.tables`, :mod:`.theorem`, :mod:`.plots`: AUROC grids (Figs. 1, 3-6), correlation with the MLS
  (Fig. 2), Table 1 (bootstrap + Wilcoxon), Table 2, the appendix theorem, and the paper-vs-ours tables.
* :mod:`.claims`: our verdicts on the paper's claims (wording in ``data/paper_numbers/salagg.yaml``),
  decided on 95% intervals, and the headline numbers.
"""

from ..ood_runs import Run, accuracy_table, make_runs, subsample
from .bootstrap import bootstrap_group, bootstrap_runs, interval_table
from .claims import (
    CLOSE_DETECTOR,
    CLOSE_MARGIN,
    claim_beats_mls,
    claim_close_to_best,
    claim_gbp_far,
    claim_gradcam_correlation,
    claim_id_magnitude,
    claim_magnitude,
    claim_significant,
    claim_theorem,
    magnitude_table,
    summary,
)
from .combination import (
    SELECTION_RULES,
    best_combination,
    fit_combination,
    select_on_validation,
    selected_combinations,
    selection_table,
    sign_table,
    with_salagg,
)
from .plots import plot_grid, plot_grids
from .scores import (
    BASELINES,
    METHODS,
    SaliencySettings,
    Scores,
    compute_scores,
    method_specs,
    pairs,
    set_aurocs,
    undefined_table,
)
from .tables import (
    AUROC_DECIMALS,
    EXAMPLES,
    SIGN_RULE_LABELS,
    auroc_grid,
    classical_table,
    compare_baselines,
    compare_table1,
    correlation_grid,
    paper_table1,
    table1,
    table1_by_rule,
    table1_wide,
    table2,
)
from .theorem import theorem_check, theorem_table

__all__ = [
    "AUROC_DECIMALS",
    "BASELINES",
    "CLOSE_DETECTOR",
    "CLOSE_MARGIN",
    "EXAMPLES",
    "METHODS",
    "SELECTION_RULES",
    "SIGN_RULE_LABELS",
    "Run",
    "SaliencySettings",
    "Scores",
    "accuracy_table",
    "auroc_grid",
    "best_combination",
    "bootstrap_group",
    "bootstrap_runs",
    "claim_beats_mls",
    "claim_close_to_best",
    "claim_gbp_far",
    "claim_gradcam_correlation",
    "claim_id_magnitude",
    "claim_magnitude",
    "claim_significant",
    "claim_theorem",
    "classical_table",
    "compare_baselines",
    "compare_table1",
    "compute_scores",
    "correlation_grid",
    "fit_combination",
    "interval_table",
    "magnitude_table",
    "make_runs",
    "method_specs",
    "pairs",
    "paper_table1",
    "plot_grid",
    "plot_grids",
    "select_on_validation",
    "selected_combinations",
    "selection_table",
    "set_aurocs",
    "sign_table",
    "subsample",
    "summary",
    "table1",
    "table1_by_rule",
    "table1_wide",
    "table2",
    "theorem_check",
    "theorem_table",
    "undefined_table",
    "with_salagg",
]
