"""Table 5.2 (the three pairs of GBP, Guided Grad-CAM and Saliency) beside the thesis, and the summary
tables of the chapter."""

from __future__ import annotations

import pandas as pd

from ... import report
from .pairs import TABLE_K, select

#: Our tasks and black boxes as the thesis's datasets and models (ids in data/paper_numbers/disagreement.yaml):
#: the masked tasks stand for Pneumothorax, the unmasked ones for Pneumonia (``full`` runs the thesis's own).
PAPER_TASKS = {"cells": "pneumothorax", "digits": "pneumonia", "mnist": "pneumothorax", "cifar10": "pneumonia",
               "pneumothorax": "pneumothorax", "pneumonia": "pneumonia"}
PAPER_BOXES = {"Inception": "inception", "ResNet": "resnet"}
#: Table 5.2's pairs: id -> the two methods.
TABLE_PAIRS = {"gbp_ggc": ("guided_backprop", "guided_gradcam"), "gbp_saliency": ("guided_backprop", "saliency"),
               "ggc_saliency": ("guided_gradcam", "saliency")}
#: The pairs whose FA at 10% the text quotes (Sec. 5.2.1.2, Pneumothorax only).
TEXT_PAIRS = {"lrp_gbp": ("lrp", "guided_backprop"), "lrp_ggc": ("lrp", "guided_gradcam")}


def _pair_rows(means: pd.DataFrame, methods: tuple[str, str]) -> pd.DataFrame:
    return means[means.apply(lambda r: {r["a"], r["b"]} == set(methods), axis=1)]


def table52(means: pd.DataFrame) -> pd.DataFrame:
    """Table 5.2 (FA and SA at the top 10%, RC and SSIM of the three pairs per task and black box) and the LRP pairs of
    Sec. 5.2.1.2, ours beside the thesis's (:data:`PAPER_TASKS`, :data:`PAPER_BOXES`)."""
    k = TABLE_K
    ours = {}
    for pid, methods in TABLE_PAIRS.items():
        rows = _pair_rows(means, methods)
        for metric, kk in (("FA", k), ("SA", k), ("RC", None), ("SSIM", None)):
            for r in select(rows, metric, kk).itertuples():
                if r.task in PAPER_TASKS and r.box in PAPER_BOXES:
                    tag = metric.lower() + ("10" if metric in ("FA", "SA") else "")
                    ours[f"t52.{pid}.{PAPER_TASKS[r.task]}.{PAPER_BOXES[r.box]}.{tag}"] = r.mean
    for pid, methods in TEXT_PAIRS.items():
        for r in select(_pair_rows(means, methods), "FA", k).itertuples():
            if PAPER_TASKS.get(r.task) == "pneumothorax" and r.box in PAPER_BOXES:
                ours[f"s5212.{pid}.pneumothorax.{PAPER_BOXES[r.box]}.fa10"] = r.mean
    return report.compare("disagreement", ours, kind="correlation", decimals=2)


def undefined_counts(means: pd.DataFrame) -> pd.DataFrame | str:
    """Images whose SSIM / RC is undefined (a constant map), per run and pair; a sentence when there are none."""
    bad = means[means["undefined"] > 0]
    if bad.empty:
        return "No map was constant: every SSIM and rank correlation is defined."
    return bad[["run", "pair", "metric", "undefined", "n"]].set_index(["run", "pair", "metric"])


def topk_shares(values: pd.DataFrame) -> pd.DataFrame:
    """Figs. 5.5 / 5.6 as numbers: per task, black box and method, the shares of positive, negative and zero
    values inside the top-k (zeros are ties: they are picked by pixel order and never agree in sign)."""
    g = values.groupby(["task", "box", "method"], sort=False)["value"]
    out = pd.DataFrame({"positive": g.apply(lambda v: float((v > 0).mean())),
                        "negative": g.apply(lambda v: float((v < 0).mean())),
                        "zero": g.apply(lambda v: float((v == 0).mean()))})
    return out.round(3)


def ranking(means: pd.DataFrame, *, k: float) -> pd.DataFrame:
    """The pairs ordered by their FA at k averaged over the runs, one column per run (display names)."""
    fa = select(means, "FA", k).pivot(index="pair", columns="run", values="mean")
    return fa.assign(mean=fa.mean(axis=1)).sort_values("mean", ascending=False).round(2)
