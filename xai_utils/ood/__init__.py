"""OOD scores ``score(model, x, **kw) -> (N,)``, higher = more in-distribution, and saliency aggregates.

Inputs are images in [0, 1], (N, C, H, W); models normalise inside and follow the project's model
contract (``features``, ``head``, ``cam_layer``).  ``model.eval()`` is the caller's job; inputs are
never modified.  Registries: :data:`SCORES` (name -> score), :data:`FITTED` (name -> fit function
for the scores that need ``fit=``), :data:`AGGREGATES` (name -> map aggregate, salagg paper).

Modules: :mod:`.scores` (logit and feature scores), :mod:`.gaia` (GAIA-Z/A, S&I),
:mod:`.aggregates` (saliency-map aggregates), :mod:`.salagg` (SalAgg+MLS fitting and selection).
The salagg paper's SalAgg+MLS score is :func:`fit_salagg` + :func:`salagg_mls`; the aggregate per
saliency method is picked on validation data with :func:`select_aggregate`.
"""

from __future__ import annotations

from torch import Tensor, nn

from .aggregates import agg_cv, agg_max, agg_mean, agg_median, agg_norm, agg_q3, agg_qcd, agg_range, agg_rmd
from .gaia import (
    ACCUMULATE,
    GRADIENTS,
    gaia_a,
    gaia_a_layers,
    gaia_layers,
    gaia_z,
    gaia_z_densities,
    last_feature,
    layer_widths,
    mean_square_score,
    s_and_i,
    s_and_i_a,
    s_and_i_densities,
    split_attack,
)
from .salagg import SIGN_RULES, AggregateSelection, SalAggFit, fit_salagg, salagg_mls, select_aggregate, sign
from .saliency import (
    SCALE_INVARIANT,
    aggregates_chunk,
    flagged_aggregate,
    saliency_aggregates,
    saliency_column,
)
from .scores import ReActFit, energy, fit_react, gradnorm, max_logit, msp, odin, rankfeat, react

SCORES = {
    "msp": msp,
    "mls": max_logit,
    "energy": energy,
    "odin": odin,
    "react": react,  # needs fit=FITTED["react"](model, id_x)
    "gradnorm": gradnorm,
    "rankfeat": rankfeat,
    "gaia_z": gaia_z,
    "gaia_a": gaia_a,
    "s_and_i": s_and_i,
    "s_and_i_a": s_and_i_a,
}
"""Score name -> ``fn(model, x, **kw) -> (N,)``, higher = ID.  Names in :data:`FITTED` need ``fit=``."""

LABELS = {"msp": "MSP", "mls": "MLS", "energy": "Energy", "odin": "ODIN", "react": "ReAct", "gradnorm": "GradNorm",
          "rankfeat": "RankFeat", "gaia_z": "GAIA-Z", "gaia_a": "GAIA-A", "s_and_i": "S&I", "s_and_i_a": "S&I-A"}
"""Score name -> its display name in the book's tables (one per score of :data:`SCORES`)."""

FITTED = {"react": fit_react}
"""Score name -> ``fit_fn(model, id_x, **kw)``: the fit to pass as ``fit=`` to that score."""

AGGREGATES = {
    "mean": agg_mean,
    "median": agg_median,
    "norm": agg_norm,
    "range": agg_range,
    "max": agg_max,
    "q3": agg_q3,
    "cv": agg_cv,
    "rmd": agg_rmd,
    "qcd": agg_qcd,
}
"""Aggregate name -> ``fn(maps (N, ...)) -> (N,)`` (salagg paper, sec. 4); cv/rmd/qcd are scale invariant."""


def score(name: str, model: nn.Module, x: Tensor, **kw) -> Tensor:
    """``SCORES[name](model, x, **kw)``; an unknown name raises listing the known ones."""
    if name not in SCORES:
        raise ValueError(f"unknown OOD score {name!r}; known: {sorted(SCORES)}")
    return SCORES[name](model, x, **kw)


def aggregate(name: str, maps: Tensor) -> Tensor:
    """``AGGREGATES[name](maps)``; an unknown name raises listing the known ones."""
    if name not in AGGREGATES:
        raise ValueError(f"unknown aggregate {name!r}; known: {sorted(AGGREGATES)}")
    return AGGREGATES[name](maps)


__all__ = [
    "SCORES",
    "LABELS",
    "FITTED",
    "AGGREGATES",
    "score",
    "aggregate",
    "saliency_aggregates",
    "aggregates_chunk",
    "flagged_aggregate",
    "saliency_column",
    "SCALE_INVARIANT",
    "SIGN_RULES",
    # scores
    "msp",
    "max_logit",
    "energy",
    "odin",
    "ReActFit",
    "fit_react",
    "react",
    "gradnorm",
    "rankfeat",
    # gaia
    "ACCUMULATE",
    "GRADIENTS",
    "gaia_layers",
    "gaia_a_layers",
    "last_feature",
    "layer_widths",
    "gaia_z_densities",
    "gaia_z",
    "gaia_a",
    "mean_square_score",
    "split_attack",
    "s_and_i_densities",
    "s_and_i",
    "s_and_i_a",
    # aggregates
    "agg_mean",
    "agg_median",
    "agg_norm",
    "agg_range",
    "agg_max",
    "agg_q3",
    "agg_cv",
    "agg_rmd",
    "agg_qcd",
    # salagg
    "SalAggFit",
    "fit_salagg",
    "salagg_mls",
    "AggregateSelection",
    "select_aggregate",
    "sign",
]
