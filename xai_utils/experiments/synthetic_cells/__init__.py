"""The synthetic_cells chapter (Tjoa & Guan, arXiv:2009.02899), in rooms of one concern.

* :mod:`.splits`: training / validation (in shards) / evaluation cells, Fig. 2's cells.
* :mod:`.families`: per architecture family a base model and branch models (the one trainer,
  :func:`xai_utils.models.fit`, in the paper's regular evaluation mode).
* :mod:`.evaluation`: heatmaps of 8 captum methods scored with the five-band score (the authors'
  definitions: FP rule, samples, Saliency and Guided Grad-CAM settings).
* :mod:`.baselines`: DeepLift vs DeepLiftShap with data-sample baselines (checks that can fail).
* :mod:`.tables`, :mod:`.claims`, :mod:`.galleries`, :mod:`.plots`: what the chapter shows.
* :mod:`.labels`: the method list and the families' display names (methods': ``attribution.LABELS``).
"""

from .baselines import ALIKE_R, background_share, check_artifacts, check_informative, informative_similarity
from .claims import POOR_YOUDEN, checks
from .evaluation import (
    FIRST_CONV,
    VARIANTS,
    Evaluation,
    evaluate,
    first_conv,
    pearson,
    resolve_params,
    score_heatmaps,
)
from .families import Branch, Family, check_family, pretrained_state, splits_for, train_families, train_family
from .galleries import FIG6C, GalleryData, galleries, gallery_data, quality_pair
from .labels import METHODS
from .plots import (
    FIG5_METHODS,
    FIG6_METHODS,
    plot_bands,
    plot_cells,
    plot_channels,
    plot_precision_recall,
    plot_predictions,
    plot_roc,
)
from .splits import CellSplits, figure2_cells, make_splits
from .tables import (
    abs_gain,
    accuracy_numbers,
    branch_table,
    fp_rule_table,
    headline,
    method_table,
    points,
    protocol_numbers,
    roc_summary,
    sample_spread,
    sample_views,
    similarity_table,
    table1,
)

__all__ = [
    "ALIKE_R",
    "FIG5_METHODS",
    "FIG6C",
    "FIG6_METHODS",
    "FIRST_CONV",
    "METHODS",
    "POOR_YOUDEN",
    "VARIANTS",
    "Branch",
    "CellSplits",
    "Evaluation",
    "Family",
    "GalleryData",
    "abs_gain",
    "background_share",
    "accuracy_numbers",
    "branch_table",
    "check_artifacts",
    "check_family",
    "check_informative",
    "checks",
    "evaluate",
    "figure2_cells",
    "first_conv",
    "fp_rule_table",
    "galleries",
    "informative_similarity",
    "gallery_data",
    "headline",
    "make_splits",
    "method_table",
    "pearson",
    "plot_bands",
    "plot_cells",
    "plot_channels",
    "plot_precision_recall",
    "plot_predictions",
    "plot_roc",
    "points",
    "pretrained_state",
    "protocol_numbers",
    "quality_pair",
    "resolve_params",
    "roc_summary",
    "sample_spread",
    "sample_views",
    "score_heatmaps",
    "similarity_table",
    "splits_for",
    "table1",
    "train_families",
    "train_family",
]
