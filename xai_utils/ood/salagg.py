"""SalAgg+MLS (salagg paper, eqs. 2-6): a saliency aggregate combined with the maximum logit.

:func:`fit_salagg` takes the standard deviations and the sign S from validation data,
:func:`salagg_mls` scores, :func:`select_aggregate` picks a saliency method's aggregate by
validation AUROC.  Inputs are score vectors (N,), numpy or torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from ..metrics import auroc


def _vector(values: ArrayLike | Tensor, name: str) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be 1-D with at least 2 values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf values")
    return arr


#: Rules for the sign S: "auroc" (S = +1 iff the aggregate's validation AUROC, ID positive, is >= 0.5)
#: and "mean" (the paper's eq. 5 and its authors' code: S = sign(mean ID - mean OOD), a tie gives +1).
SIGN_RULES: tuple[str, ...] = ("auroc", "mean")


def sign(a_id: ArrayLike | Tensor, a_ood: ArrayLike | Tensor, *, rule: str) -> int:
    """S = +1 when the aggregate is larger on ID than on OOD validation data by ``rule``, else -1.

    The "mean" rule lets one extreme OOD set decide S for all of them (e.g. uniform noise with a
    saliency norm ten ID standard deviations above the ID mean flips S for every other set); the
    "auroc" rule counts how often an OOD value lies below an ID one, so no single set dominates.
    """
    return _sign(_vector(a_id, "a_id"), _vector(a_ood, "a_ood"), rule)


def _sign(a: np.ndarray, o: np.ndarray, rule: str) -> int:
    """:func:`sign` on arrays already checked by :func:`_vector`."""
    if rule == "mean":
        return 1 if a.mean() >= o.mean() else -1
    if rule == "auroc":
        return 1 if auroc(a, o) >= 0.5 else -1
    raise ValueError(f"unknown sign_rule {rule!r}; known: {', '.join(SIGN_RULES)}")


@dataclass(frozen=True)
class SalAggFit:
    """SalAgg+MLS constants from validation data: ID std of the aggregate and of MLS, and the sign S."""

    sigma_agg: float
    sigma_mls: float
    sign: int


def fit_salagg(
    agg_id_val: ArrayLike | Tensor,
    mls_id_val: ArrayLike | Tensor,
    agg_ood_val: ArrayLike | Tensor,
    *,
    sign_rule: str,
) -> SalAggFit:
    """Fit SalAgg+MLS (salagg paper, eqs. 2-6): sigma_Agg, sigma_MLS on ID validation, sign S.

    ``sign_rule``: one of :data:`SIGN_RULES` (see :func:`sign`).  Standard deviations use ddof = 1
    (torch's default, as in the authors' code).
    """
    a_id, m_id = _vector(agg_id_val, "agg_id_val"), _vector(mls_id_val, "mls_id_val")
    a_ood = _vector(agg_ood_val, "agg_ood_val")
    if len(a_id) != len(m_id):
        raise ValueError(
            f"agg_id_val ({len(a_id)}) and mls_id_val ({len(m_id)}) must describe the same samples"
        )
    s_sign = _sign(a_id, a_ood, sign_rule)
    s_a, s_m = float(a_id.std(ddof=1)), float(m_id.std(ddof=1))
    if s_a == 0 or s_m == 0:
        raise ValueError(f"zero ID standard deviation (aggregate {s_a}, MLS {s_m}); cannot standardise")
    return SalAggFit(sigma_agg=s_a, sigma_mls=s_m, sign=s_sign)


def salagg_mls(agg: ArrayLike | Tensor, mls: ArrayLike | Tensor, fit: SalAggFit) -> Tensor:
    """SalAgg+MLS score ``S * A / sigma_Agg + MLS / sigma_MLS`` (eq. 6), (N,) -> (N,), higher = ID."""
    a, m = torch.as_tensor(agg), torch.as_tensor(mls)
    if a.shape != m.shape or a.ndim != 1:
        raise ValueError(
            f"agg and mls must be (N,) of the same length, got {tuple(a.shape)} and {tuple(m.shape)}"
        )
    if not (torch.isfinite(a).all() and torch.isfinite(m).all()):
        raise ValueError("agg or mls contain NaN/inf values")
    return fit.sign * a / fit.sigma_agg + m / fit.sigma_mls


@dataclass(frozen=True)
class AggregateSelection:
    """The validation winner and every candidate's validation AUROC."""

    best: str
    auroc: dict[str, float]


def select_aggregate(
    id_val: Mapping[str, ArrayLike | Tensor],
    ood_val: Mapping[str, ArrayLike | Tensor],
    *,
    mls_id: ArrayLike | Tensor | None = None,
    mls_ood: ArrayLike | Tensor | None = None,
    sign_rule: str,
) -> AggregateSelection:
    """Pick one saliency method's aggregate by validation AUROC (salagg paper, sec. 5.3).

    id_val / ood_val : aggregate name -> (N_id,) / (N_ood,) values on the validation split.  Without
    MLS the criterion is the aggregate's own AUROC after the sign S (the paper's Figure 1 basis);
    with ``mls_id``/``mls_ood`` it is the AUROC of SalAgg+MLS fitted on the same validation data.
    ``sign_rule``: see :func:`sign`.  Ties go to the first name.
    """
    if set(id_val) != set(ood_val) or not id_val:
        raise ValueError(
            f"id_val and ood_val must name the same, non-empty aggregates: {sorted(id_val)} vs "
            f"{sorted(ood_val)}"
        )
    if (mls_id is None) != (mls_ood is None):
        raise ValueError("give both mls_id and mls_ood, or neither")
    scores: dict[str, float] = {}
    for name in id_val:
        a_id, a_ood = _vector(id_val[name], f"id_val[{name!r}]"), _vector(ood_val[name], f"ood_val[{name!r}]")
        if mls_id is None:
            value = auroc(a_id, a_ood)
            scores[name] = value if _sign(a_id, a_ood, sign_rule) == 1 else 1.0 - value
        else:
            fit = fit_salagg(a_id, mls_id, a_ood, sign_rule=sign_rule)
            scores[name] = auroc(
                salagg_mls(a_id, _vector(mls_id, "mls_id"), fit),
                salagg_mls(a_ood, _vector(mls_ood, "mls_ood"), fit),
            )
    return AggregateSelection(best=max(scores, key=scores.get), auroc=scores)
