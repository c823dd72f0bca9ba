"""The appendix theorem (salagg paper, Theorem 1): for a GAP + linear head, h w mean(unrectified Grad-CAM
at the last conv layer) = MLS - b_c, so Grad-CAM-mean ranks images exactly as MLS - b_c does."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from ... import attribution
from ..ood_runs import Run
from .scores import Scores, set_aurocs
from .tables import AUROC_DECIMALS


def theorem_check(runs: Mapping[str, Run], scores: Mapping[str, Scores], n_images: int = 64) -> pd.DataFrame:
    """Appendix Theorem 1: mean(unrectified GradCAM at the last conv layer) = (MLS - b_c) / (h w).

    Per run: the largest |h w mean(CAM) + b_c - MLS| on ``n_images`` test images (and relative to |MLS|),
    and the test AUROCs (%) of GradCAM-mean, of MLS - b_c and of MLS (mean of near and far).
    """
    rows = {}
    for name, run in runs.items():
        dev = next(run.model.parameters()).device
        x = run.bench.id_test.x[:n_images].to(dev)
        with torch.no_grad():
            logits = run.model(x)
        pred = logits.argmax(1)
        cam = attribution.gradcam_raw(run.model, x, pred).detach()
        hw = cam.shape[-2] * cam.shape[-1]
        bias = (
            run.model.head.bias.detach()[pred]
            if run.model.head.bias is not None
            else torch.zeros_like(pred, dtype=x.dtype)
        )
        err = (hw * cam.mean(dim=(1, 2, 3)) + bias - logits.amax(1)).abs()
        s = scores[name]
        cols = ["mls", "mls_minus_bias"] + (["GradCAM-mean"] if "GradCAM-mean" in s.table else [])
        au = set_aurocs(s, cols)["all"]  # mean of near and far, as every AUROC of the chapter
        row = {
            "feature map h x w": hw,
            "max |hw mean(CAM) + b_c - MLS|": float(err.max()),
            "relative to |MLS|": float((err / logits.amax(1).abs().clamp_min(1e-12)).max()),
            "AUROC MLS": float(au["mls"]),
            "AUROC MLS - b_c": float(au["mls_minus_bias"]),
        }
        if "GradCAM-mean" in au.index:
            row["AUROC GradCAM-mean"] = float(au["GradCAM-mean"])
            row["GradCAM-mean - (MLS - b_c)"] = row["AUROC GradCAM-mean"] - row["AUROC MLS - b_c"]
            row["GradCAM-mean - MLS"] = row["AUROC GradCAM-mean"] - row["AUROC MLS"]
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


#: Residuals of the theorem's identity below these bounds are float rounding; they are shown as "< bound"
#: because their digits differ from one CPU to the next.
THEOREM_TOL = {"relative": 1e-4, "absolute": 1e-3, "auroc": 1e-6}


def bound(value: float, tol: float) -> str:
    """``value`` in scientific notation, or ``"< tol"`` when it is below ``tol`` (float rounding)."""
    return f"< {tol:.0e}" if abs(value) < tol else f"{value:.2e}"


def theorem_table(check: pd.DataFrame) -> pd.DataFrame:
    """:func:`theorem_check` for display: residuals below :data:`THEOREM_TOL` as "< bound", AUROCs in %."""
    out = check.copy()
    out["max |hw mean(CAM) + b_c - MLS|"] = out["max |hw mean(CAM) + b_c - MLS|"].map(
        lambda v: bound(v, THEOREM_TOL["absolute"]))
    out["relative to |MLS|"] = out["relative to |MLS|"].map(lambda v: bound(v, THEOREM_TOL["relative"]))
    for col in ("GradCAM-mean - (MLS - b_c)",):
        if col in out:
            out[col] = out[col].map(lambda v: bound(v, THEOREM_TOL["auroc"]))
    return out.round(AUROC_DECIMALS)
