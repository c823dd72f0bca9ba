"""Table 4 (ours beside the paper's), method and model means, the 0.3 split, the reference sets and the
thresholds (App. B), and the covariance-estimator sensitivity."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ... import metrics, report
from .perturb import METHODS
from .ratios import VAL, Hermitry, model_mean, pooled

PAPER = "hermitry"
#: The paper's cutoff between low and high hermitry ratios (Sec. 3.1).
CUTOFF = 0.3
MODEL_NAMES = {"densenet121": "DenseNet121", "mnasnet1_0": "MnasNet1.0", "resnet50": "ResNet50"}


def _paper(prefix: str) -> pd.Series:
    numbers = report.paper_numbers(PAPER)["value"]
    return numbers[numbers.index.str.startswith(prefix)]


def paper_table4() -> pd.DataFrame:
    """The paper's Table 4 as model x class rows and method columns (class order within a block decoded)."""
    rows = {}
    for key, value in _paper("table4.").items():
        _, model, cls, method = key.split(".")
        rows.setdefault((MODEL_NAMES[model], cls.replace("_", " ")), {})[METHODS[method]] = value
    table = pd.DataFrame.from_dict(rows, orient="index")[list(METHODS.values())]
    table.index.names = ["model", "class"]
    return table


def table4(h: Hermitry) -> pd.DataFrame:
    """Ours: H [95% interval over the Y images] per (run, class) and method; each H is recorded."""
    t = h.table
    for r in t.to_dict("records"):
        report.record(f"H.{r['run']}.{r['class']}.{r['method']}", r["H"], "fraction")
    cells = t.assign(cell=[f"{r['H']:.3f} [{r['low']:.3f}, {r['high']:.3f}]" for r in t.to_dict("records")])
    out = cells.pivot(index=["run", "class"], columns="method", values="cell")
    return out[[m for m in METHODS if m in out.columns]].rename(columns=METHODS)


def method_means(h: Hermitry, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Per method: the paper's mean over its 9 cases, and per run the mean H over classes and the pooled H
    with its interval (ours)."""
    paper = _paper("mean.method.")
    rows = []
    for m in [m for m in METHODS if m in set(h.table["method"])]:
        row = {"method": METHODS[m], "paper (mean of 9)": paper[f"mean.method.{m}"]}
        for run in h.table["run"].unique():
            sub = h.table[(h.table["run"] == run) & (h.table["method"] == m)]
            H, lo, hi = pooled(h, run, m, n_boot=n_boot, seed=seed)
            row[f"{run}: mean over classes"] = report.record(f"mean.{run}.{m}", sub["H"].mean(), "fraction",
                                                                   paper_id=f"mean.method.{m}")
            row[f"{run}: pooled [95%]"] = f"{H:.3f} [{lo:.3f}, {hi:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method").round(3)


def split_counts(h: Hermitry, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Per model (paper) and run (ours): the mean H over its (method, class) cases, and how many cases have
    H <= :data:`CUTOFF`."""
    means = _paper("mean.model.")
    rows = [{"model / run": f"{MODEL_NAMES[k.split('.')[1]]} (paper)", "mean H": means[f"mean.model.{k.split('.')[1]}"],
             "H <= 0.3": int(v), "cases": 12} for k, v in _paper("low_count.").items()]
    for run, sub in h.table.groupby("run", sort=False):
        low = int((sub["H"] <= CUTOFF).sum())
        mean, lo, hi = model_mean(h, run, n_boot=n_boot, seed=seed)
        rows.append({"model / run": f"{run} (ours)", "mean H": round(report.record(f"mean.{run}", mean, "fraction"), 3),
                     "[95%]": f"[{lo:.3f}, {hi:.3f}]",
                     "H <= 0.3": int(report.record(f"low_count.{run}", low, "count")), "cases": len(sub)})
    table = pd.DataFrame(rows).set_index("model / run")
    return table[["mean H", "[95%]", "H <= 0.3", "cases"]].fillna("")


def references_table(h: Hermitry, q: float) -> pd.DataFrame:
    """H of the unperturbed reference sets per (run, class): X itself, Y (the null), noise, other data."""
    t = h.references.pivot(index=["run", "class"], columns="set", values="H")
    t = t[list(h.references["set"].unique())]
    n_val = h.references.loc[h.references["set"] == VAL, "images"].iloc[0]
    t.insert(2, f"null (I - floor({q} I)) / I", metrics.null_ratio(int(n_val), q))
    return t.round(3)


def thresholds_table(h: Hermitry) -> pd.DataFrame:
    """T per (run, class), raw and normalised (ours: over the largest distance shown), beside the paper's
    normalised range (App. B) and any warning of the covariance fit."""
    paper = _paper("appB.")
    t = h.thresholds.set_index(["run", "class"])
    t["paper App. B range"] = f"{paper.min():.3f} - {paper.max():.3f}"
    return t.round(3)


def sensitivity(by_estimator: Mapping[str, Hermitry]) -> pd.DataFrame:
    """Mean H over classes per (run, method) under each covariance estimator (the paper does not say which)."""
    cols = {}
    for est, h in by_estimator.items():
        cols[est] = h.table.groupby(["run", "method"], sort=False)["H"].mean()
    out = pd.DataFrame(cols).rename(index=METHODS, level="method")
    return out.round(3)
