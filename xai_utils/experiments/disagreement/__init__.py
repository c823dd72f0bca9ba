"""The disagreement chapter (Mai & Nguyen, "The Disagreement Problem in XAI on Image Data via Saliency Maps").

* :mod:`.runs`: the black boxes and the test images they explain, per preset.
* :mod:`.maps`: the thesis's eight methods with its settings, maps cached per run and method.
* :mod:`.pairs`: FA, SA, RC and SSIM of every pair, per image; :mod:`.claims`; :mod:`.tables`; :mod:`.plots`.
"""

from .claims import (
    HALF_BAND,
    REDUNDANT,
    STABLE,
    TOP_PAIR,
    Resampler,
    box_gaps,
    claim_box_over_task,
    claim_fa_rises,
    claim_occlusion_ssim,
    claim_ranking_stable,
    claim_resnet_more,
    claim_sa_half,
    claim_sa_redundant,
    claim_top_pair,
)
from .maps import METHODS, MapSettings, compute_maps, method_maps, method_params
from .pairs import (
    METRICS,
    TABLE_K,
    check_shares,
    matrix,
    pair_label,
    pair_means,
    pair_values,
    select,
    topk_values,
)
from .plots import plot_fa_illustration, plot_fa_vs_k, plot_gallery, plot_matrices, plot_topk_values
from .runs import BOXES, CELL_CLASSES, DIGIT_CLASSES, Run, Task, make_runs, run_table
from .tables import (
    PAPER_BOXES,
    PAPER_TASKS,
    TABLE_PAIRS,
    TEXT_PAIRS,
    ranking,
    table52,
    topk_shares,
    undefined_counts,
)

__all__ = [
    "BOXES",
    "CELL_CLASSES",
    "DIGIT_CLASSES",
    "HALF_BAND",
    "METHODS",
    "METRICS",
    "REDUNDANT",
    "STABLE",
    "TOP_PAIR",
    "PAPER_BOXES",
    "PAPER_TASKS",
    "TABLE_K",
    "TABLE_PAIRS",
    "TEXT_PAIRS",
    "MapSettings",
    "Resampler",
    "Run",
    "Task",
    "box_gaps",
    "check_shares",
    "claim_box_over_task",
    "claim_fa_rises",
    "claim_occlusion_ssim",
    "claim_ranking_stable",
    "claim_resnet_more",
    "claim_sa_half",
    "claim_sa_redundant",
    "claim_top_pair",
    "compute_maps",
    "make_runs",
    "matrix",
    "method_maps",
    "method_params",
    "pair_label",
    "pair_means",
    "pair_values",
    "plot_fa_illustration",
    "plot_fa_vs_k",
    "plot_gallery",
    "plot_matrices",
    "plot_topk_values",
    "ranking",
    "run_table",
    "select",
    "table52",
    "topk_shares",
    "topk_values",
    "undefined_counts",
]
