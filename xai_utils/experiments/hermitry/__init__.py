"""The hermitry chapter ("Hermitry Ratio: Evaluating the Validity of Perturbation Methods").

* :mod:`.runs`: classifiers with X / Y images per class and reference sets, per preset.
* :mod:`.perturb`: the encodings of every perturbed input of Occlusion, LIME, KernelSHAP, Anchor.
* :mod:`.ratios`: Mahalanobis fits, thresholds and hermitry ratios with intervals; :mod:`.tables`;
  :mod:`.claims`; :mod:`.plots`.
"""

from .claims import (
    NEGLIGIBLE,
    PAPER_ARCHS,
    claim_all_ood,
    claim_architecture,
    claim_between,
    claim_lime_most,
    claim_occlusion,
    order,
)
from .perturb import METHODS, PAPER_SIZE, PerturbSettings, capture_all, encode, examples, perturbed_encodings
from .plots import plot_classes, plot_distances, plot_examples
from .ratios import Hermitry, hermitry, model_mean, pooled, pooled_interval
from .runs import FULL_SIZE, SHIPPED_N_VAL, HermitryRun, image_counts, make_runs
from .tables import (
    CUTOFF,
    method_means,
    paper_table4,
    references_table,
    sensitivity,
    split_counts,
    table4,
    thresholds_table,
)

__all__ = [
    "CUTOFF",
    "FULL_SIZE",
    "PAPER_ARCHS",
    "METHODS",
    "NEGLIGIBLE",
    "PAPER_SIZE",
    "SHIPPED_N_VAL",
    "Hermitry",
    "HermitryRun",
    "PerturbSettings",
    "capture_all",
    "claim_all_ood",
    "claim_architecture",
    "claim_between",
    "claim_lime_most",
    "claim_occlusion",
    "encode",
    "examples",
    "hermitry",
    "image_counts",
    "make_runs",
    "method_means",
    "model_mean",
    "order",
    "paper_table4",
    "perturbed_encodings",
    "plot_classes",
    "plot_distances",
    "plot_examples",
    "pooled",
    "pooled_interval",
    "references_table",
    "sensitivity",
    "split_counts",
    "table4",
    "thresholds_table",
]
