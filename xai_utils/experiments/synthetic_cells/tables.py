"""The chapter's tables: Fig. 3 points, method tables, spread, Table I, branches, ROC summary, headline."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from xai_utils import attribution, metrics

from .evaluation import VARIANTS, Evaluation, other_fp_rule
from .families import Family
from .labels import FAMILY_LABELS, family_label
from .splits import CellSplits


def points(samples: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3 points: per (variant, family, method, branch) mean and std over samples of P/R avg/best."""
    cols = ["precision_avg", "recall_avg", "precision_best", "recall_best", "fpr_avg"]
    g = samples.groupby(["variant", "family", "method", "branch"], sort=False)[cols]
    out = g.mean().join(g.std(ddof=0), rsuffix="_std")
    return out.reset_index()


def method_table(samples: pd.DataFrame, variant: str = "soft", decimals: int = 3) -> pd.DataFrame:
    """Mean over samples and branches of R/P (avg and best) and FPR per method (rows) and family (columns)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
    sel = samples[samples["variant"] == variant]
    cols = {
        "recall_avg": "R avg",
        "precision_avg": "P avg",
        "recall_best": "R best",
        "precision_best": "P best",
        "fpr_avg": "FPR avg",
    }
    t = sel.groupby(["method", "family"], sort=False)[list(cols)].mean().rename(columns=cols)
    t = t.unstack("family").swaplevel(0, 1, axis=1)
    fams = list(dict.fromkeys(sel["family"]))
    t = t.reindex(columns=pd.MultiIndex.from_product([fams, list(cols.values())]))
    t.index = [attribution.LABELS[m] for m in t.index]
    t.columns = pd.MultiIndex.from_tuples([(family_label(f), c) for f, c in t.columns])
    return t.round(decimals)


def abs_gain(samples: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Recall (avg over thresholds) of signed vs |h| adjusted maps, per method and family, and the gain."""
    sel = samples[samples["variant"].isin(["soft", "abs"])]
    t = sel.groupby(["method", "family", "variant"], sort=False)["recall_avg"].mean().unstack("variant")
    t["gain"] = t["abs"] - t["soft"]
    t = t.rename(columns={"soft": "R avg signed", "abs": "R avg |h|"})[["R avg signed", "R avg |h|", "gain"]]
    t = t.unstack("family").swaplevel(0, 1, axis=1)
    fams = list(dict.fromkeys(sel["family"]))
    t = t.reindex(columns=pd.MultiIndex.from_product([fams, ["R avg signed", "R avg |h|", "gain"]]))
    t.index = [attribution.LABELS[m] for m in t.index]
    t.columns = pd.MultiIndex.from_tuples([(family_label(f), c) for f, c in t.columns])
    return t.round(decimals)


def _pr_by_family(sel: pd.DataFrame, share: pd.Series | None = None) -> pd.Series:
    """Mean P avg / R avg over methods, branches and samples per family, indexed (family, P avg | R avg),
    plus (family, share of samples) when ``share`` (per family) is given."""
    t = sel.groupby("family", sort=False)[["precision_avg", "recall_avg"]].mean()
    t.columns = ["P avg", "R avg"]
    if share is not None:
        t["share of samples"] = share
    out = t.stack()
    out.index = pd.MultiIndex.from_tuples([(family_label(f), c) for f, c in out.index])
    return out


def fp_rule_table(ev: Evaluation, decimals: int = 3) -> pd.DataFrame:
    """Mean P avg / R avg (soft thresholds, all samples) per family under both FP rules of the five-band
    score: the chapter's (``soft``) and the other one (``other_fp``); rows are labelled by rule."""
    labels = {
        "authors": "authors' code: FP = wrong non-zero band",
        "literal": "literal: FP counts missed pixels too",
    }
    rows = {
        labels[rule] + (" [this chapter]" if variant == "soft" else ""): _pr_by_family(
            ev.samples[ev.samples["variant"] == variant]
        )
        for rule, variant in ((ev.fp_rule, "soft"), (other_fp_rule(ev.fp_rule), "other_fp"))
    }
    return pd.DataFrame(rows).T.round(decimals)


#: Which samples a mean covers: the views of the authors' analysis code (analysis/xai_analysis.py,
#: ``get_stats_across_samples``: default all samples; ``sample_mode="only_correct_pred"``; ``exclude_empty``).
SAMPLE_VIEWS: dict[str, str] = {
    "all samples (authors' default; the claims)": "all",
    "correct predictions only": "correct",
    "all but the blank type 9": "cells",
}


def sample_views(samples: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Mean P avg / R avg (soft thresholds) per family for each of :data:`SAMPLE_VIEWS`, with the share
    of the family's samples each view keeps."""
    soft = samples[samples["variant"] == "soft"]
    keep = {"all": soft["y"] >= 0, "correct": soft["correct"], "cells": soft["y"] != 9}
    rows = {
        label: _pr_by_family(soft[keep[view]], keep[view].groupby(soft["family"], sort=False).mean())
        for label, view in SAMPLE_VIEWS.items()
    }
    return pd.DataFrame(rows).T.round(decimals)


def similarity_table(ev: Evaluation, decimals: int = 3) -> pd.DataFrame:
    """Mean per-sample Pearson correlation of channel-adjusted maps for :data:`PAIRS` (rows: families)."""
    t = ev.similarity.groupby(["family", "pair"], sort=False)["correlation"].mean().unstack("pair")
    t.index = [family_label(f) for f in t.index]
    return t.round(decimals)


def sample_spread(samples: pd.DataFrame, variant: str = "soft", decimals: int = 3) -> pd.DataFrame:
    """Spread of the per-sample scores and the standard error of the Fig. 3 means, per family.

    Columns: n samples per point, median over points of the per-sample std of R avg / P avg, and the
    largest standard error (std / sqrt(n)) of any Fig. 3 point.
    """
    sel = samples[samples["variant"] == variant]
    g = sel.groupby(["family", "method", "branch"])[["recall_avg", "precision_avg"]]
    std, n = g.std(ddof=0), g.size()
    se = std.div(np.sqrt(n), axis=0)
    t = pd.DataFrame(
        {
            "samples per point": n.groupby("family").min(),
            "median std R avg": std["recall_avg"].groupby("family").median(),
            "median std P avg": std["precision_avg"].groupby("family").median(),
            "max s.e. of a mean": se.max(axis=1).groupby("family").max(),
        }
    )
    t.index = [family_label(f) for f in t.index]
    return t.round(decimals)


def table1(
    families: Mapping[str, Family], accuracy: pd.DataFrame, numbers: pd.DataFrame, decimals: int = 3
) -> pd.DataFrame:
    """The paper's Table I beside ours: H=W, n_batch, epochs (TC, TR), n_l, r_f, mean accuracy of 5 branches.

    numbers : :func:`xai_utils.report.paper_numbers` of this paper (ids ``table1.<family>.<column>``).
    """
    cols = {
        "hw": "H,W",
        "batch": "n_batch",
        "tc_epochs": "TC n_ep",
        "tr_epochs": "TR n_ep",
        "n_l": "n_l",
        "r_f": "r_f",
        "acc": "<Acc.>",
    }
    rows = []
    for name, fam in families.items():
        s = fam.settings
        mean_acc = accuracy.loc[accuracy["family"] == name, "test_acc"].mean()
        ours = {
            "hw": s["image_size"],
            "batch": s["batch_size"],
            "tc_epochs": s["base_epochs"],
            "tr_epochs": s["branch_epochs"],
            "n_l": s["n_limit"],
            "r_f": s["refresh"],
            "acc": mean_acc,
        }
        for who, get in (
            ("paper", lambda c, name=name: numbers["value"].get(f"table1.{name}.{c}", np.nan)),
            ("ours", lambda c, ours=ours: ours[c]),
        ):
            rows.append(
                {
                    "family": family_label(name),
                    "": who,
                    **{label: get(c) for c, label in cols.items()},
                }
            )
    return pd.DataFrame(rows).set_index(["family", ""]).astype(float).round(decimals)


def branch_table(accuracy: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Per family and branch: how the regular-evaluation phase stopped and the accuracies reached."""
    t = accuracy.copy()
    t["family"] = t["family"].map(family_label)
    return t.set_index(["family", "branch"]).round(decimals)


def roc_summary(roc: pd.DataFrame, variant: str = "soft") -> pd.DataFrame:
    """Per family and method (branches pooled): best Youden index max_m (recall - FPR) and where it lies."""
    sel = roc[roc["variant"] == variant].copy()
    sel["youden"] = sel["recall"] - sel["fpr"]
    g = sel.groupby(["family", "method"], sort=False)
    best = sel.loc[g["youden"].idxmax()]
    out = pd.DataFrame(
        {
            "family": best["family"].to_numpy(),
            "method": best["method"].to_numpy(),
            "max recall - FPR": best["youden"].to_numpy(),
            "recall there": best["recall"].to_numpy(),
            "FPR there": best["fpr"].to_numpy(),
            "mean FPR": g["fpr"].mean().to_numpy(),
            "mean recall": g["recall"].mean().to_numpy(),
        }
    )
    out["family"] = out["family"].map(family_label)
    out["method"] = out["method"].map(attribution.LABELS)
    return out.set_index(["family", "method"]).round(3)


def headline(ev: Evaluation) -> pd.DataFrame:
    """A few named numbers of ours (also for :func:`xai_utils.report.record`): per family the mean
    test accuracy and the mean R_avg / P_avg / FPR_avg over methods, branches and samples (soft)."""
    soft = ev.samples[ev.samples["variant"] == "soft"]
    t = soft.groupby("family", sort=False)[["recall_avg", "precision_avg", "fpr_avg"]].mean()
    t.insert(0, "test_acc", ev.accuracy.groupby("family", sort=False)["test_acc"].mean())
    return t.round(4)


def protocol_numbers(
    splits: Mapping[str, CellSplits],
    *,
    n_branches: int,
    target_acc: float,
    val_every: int,
    weight_decay: float,
) -> dict[str, float]:
    """Our values of the paper's protocol numbers (ids of ``data/paper_numbers/synthetic_cells.yaml``)."""
    sp = next(iter(splits.values()))
    t, tc = metrics.soft_thresholds(), metrics.clamped_thresholds()
    return {
        "data.n_train": len(sp.train),
        "data.n_val": len(sp.val),
        "data.n_test": len(sp.test),
        "train.target_acc": target_acc,
        "train.val_every": val_every,
        "train.weight_decay": weight_decay,
        "train.n_branches": n_branches,
        "fiveband.d": float(t[1, 1] - t[0, 1]),
        "fiveband.n_soft": len(t) - 1,
        "fiveband.t55_outer": float(t[-1, 3]),
        "fiveband.t55_inner": float(t[-1, 2]),
        "fiveband.clamp": metrics.fiveband.CLAMP[1],
        "fiveband.clamped_d": float(tc[1, 1] - tc[0, 1]),
        "fiveband.clamped_n_soft": len(tc) - 1,
    }


def accuracy_numbers(ev: Evaluation) -> dict[str, float]:
    """``table1.<family>.acc`` -> our mean test accuracy of the branches (families the paper has)."""
    acc = ev.accuracy.groupby("family", sort=False)["test_acc"].mean()
    return {f"table1.{f}.acc": float(v) for f, v in acc.items() if f in FAMILY_LABELS}
