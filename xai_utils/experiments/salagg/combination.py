"""SalAgg+MLS on the chapter's scores (salagg paper, sec. 3 and 5.3): the sign S and the standard deviations
fitted on validation data, the combined columns, and the selection of one aggregate per saliency method.

The sign rule and the selection rule are notebook parameters (``ood.SIGN_RULES``, :data:`SELECTION_RULES`);
their other values are shown beside the default as labelled deviations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ... import ood
from ...ood import saliency_column
from .scores import Combos, Scores, method_grid, pairs, set_aurocs

#: How each method's aggregate is selected on validation data (sec. 5.3): ``aggregate`` by the
#: aggregate's own sign-corrected AUROC (the paper: "the best performing aggregation for each XAI method,
#: as reported in Figure 1"), ``salagg`` by the AUROC of SalAgg+MLS built on it.
SELECTION_RULES: tuple[str, ...] = ("aggregate", "salagg")


def fit_combination(scores: Scores, col: str, *, sign_rule: str) -> ood.SalAggFit:
    """SalAgg+MLS constants for one aggregate column: sigmas on the ID val images where the aggregate is
    defined, S from ID val vs all OOD val pooled."""
    ood_val = np.concatenate([scores.values(col, s, "val") for s in scores.groups])
    a_id = scores.values(col, "id", "val", defined=False)
    ok = ~np.isnan(a_id)
    mls_id = scores.values("mls", "id", "val")[ok]
    return ood.fit_salagg(a_id[ok], mls_id, ood_val, sign_rule=sign_rule)


def salagg_column(scores: Scores, col: str, fit: ood.SalAggFit) -> np.ndarray:
    """SalAgg+MLS values of one aggregate column on every row (NaN where the aggregate is undefined)."""
    agg, mls = scores.table[col].to_numpy(np.float64), scores.table["mls"].to_numpy(np.float64)
    out = np.full(len(agg), np.nan)
    ok = ~np.isnan(agg)
    out[ok] = ood.salagg_mls(torch.from_numpy(agg[ok]), torch.from_numpy(mls[ok]), fit).numpy()
    return out


def with_salagg(scores: Scores, combos: Combos, *, sign_rule: str) -> tuple[Scores, dict[str, ood.SalAggFit]]:
    """Add SalAgg+MLS columns ``"<method>-<agg>+MLS"`` for ``combos`` (method -> aggregate)."""
    table, fits = scores.table.copy(), {}
    for m, a in pairs(combos):
        col = saliency_column(m, a)
        fits[col] = fit_combination(scores, col, sign_rule=sign_rule)
        table[f"{col}+MLS"] = salagg_column(scores, col, fits[col])
    return replace(scores, table=table), fits


def _validation_grid(s: Scores, *, rule: str, sign_rule: str) -> pd.Series:
    """One run's validation AUROC (%) per saliency column, mean of near and far, by the selection ``rule``."""
    if rule == "aggregate":
        raw = set_aurocs(s, s.saliency_columns, part="val")["all"]
        signs = pd.Series({c: fit_combination(s, c, sign_rule=sign_rule).sign for c in s.saliency_columns})
        return raw.where(signs == 1, 100.0 - raw)
    if rule == "salagg":
        combined, _ = with_salagg(s, [(m, a) for m in s.methods for a in s.aggregates], sign_rule=sign_rule)
        grid = set_aurocs(combined, [f"{c}+MLS" for c in s.saliency_columns], part="val")["all"]
        return grid.set_axis(s.saliency_columns)
    raise ValueError(f"unknown selection rule {rule!r}; known: {', '.join(SELECTION_RULES)}")


def select_on_validation(scores: Mapping[str, Scores], *, rule: str, sign_rule: str) -> pd.DataFrame:
    """Validation AUROC (%) of every (method, aggregate) by the selection ``rule`` (:data:`SELECTION_RULES`),
    mean of near and far, averaged over runs; column ``selected`` names each method's best aggregate."""
    first = next(iter(scores.values()))
    per_run = [_validation_grid(s, rule=rule, sign_rule=sign_rule) for s in scores.values()]
    grid = method_grid(pd.concat(per_run, axis=1).mean(axis=1), first.methods, first.aggregates)
    grid["selected"] = grid[list(first.aggregates)].idxmax(axis=1)
    return grid


def selection_table(selection: pd.DataFrame) -> pd.DataFrame:
    """:func:`select_on_validation` for display, AUROCs in whole points.

    The scale-invariant aggregates of a map whose quartiles or mean are near zero (e.g. the QCD of an
    Integrated Gradients map, (Q3 - Q1) / (Q3 + Q1) with Q3 + Q1 ~ 0) are ill-conditioned: measured on the
    real preset, IG-qcd's validation AUROC moved by 0.2 points between two CPUs (another instruction set
    and thread count) because its denominators there change by tenths of a percent.  Whole points show
    every choice the selection makes and no digit that another CPU would print differently."""
    out = selection.copy()
    cols = [c for c in out.columns if c != "selected"]
    out[cols] = out[cols].astype(float).round(0).astype("Int64")
    return out


def best_combination(selection: pd.DataFrame) -> list[tuple[str, str]]:
    """The single (method, aggregate) with the best validation AUROC, as a one-pair list."""
    grid = selection.drop(columns="selected").astype(float)
    m, a = grid.stack().idxmax()
    return [(str(m), str(a))]


def selected_combinations(selection: pd.DataFrame) -> dict[str, str]:
    """Method -> aggregate chosen on validation (from :func:`select_on_validation`)."""
    return dict(selection["selected"])


def sign_table(scores: Mapping[str, Scores], combos: Combos, sign_rules: Sequence[str]) -> pd.DataFrame:
    """Per run and combination: S under each rule, and each OOD validation set's mean of the aggregate in
    ID standard deviations from the ID mean (z): one set with a large |z| decides the "mean" rule."""
    rows = {}
    for name, s in scores.items():
        for m, a in pairs(combos):
            col = saliency_column(m, a)
            a_id = s.values(col, "id", "val")
            row = {f"S ({r} rule)": fit_combination(s, col, sign_rule=r).sign for r in sign_rules}
            for k in s.groups:
                row[f"z {k}"] = (s.values(col, k, "val").mean() - a_id.mean()) / a_id.std(ddof=1)
            rows[(name, col)] = row
    out = pd.DataFrame.from_dict(rows, orient="index").round(1)
    out.index.names = ["run", "aggregate"]
    return out
