"""DeepLift vs DeepLiftShap with informative baselines: checks of the paper's "similar heatmaps" and "the
SHAP variant removes some artifacts in AlexNet" (Fig. 6(B)) that can fail.

The authors' SHAP baselines are near-zero noise (N(0, 0.001^2) images), so their DeepLiftShap is DeepLift
from (almost) DeepLift's own zero baseline and the two maps agree whatever the model.  Here DeepLiftShap
gets what SHAP baselines are meant to be, a sample of the data: ``n_baselines`` training cells drawn with
the chapter's seed.  Artifacts are measured as the *background share*: the part of a map's mass
(sum of |h| after channel adjustment) on pixels whose ground truth is 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from xai_utils import config, metrics, report

from .evaluation import heatmaps, pearson, predict
from .families import Family
from .labels import family_label
from .splits import CellSplits

#: Mean Pearson correlation of two methods' channel-adjusted maps that counts as "similar heatmaps".
ALIKE_R = 0.8
#: Bootstrap resamples of the cells for the interval of the background-share difference.
N_BOOT = 1000
_DIFF = "DL - DLS background (pp)"


def background_share(h: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """Per cell, the share (in %) of the channel-adjusted map's mass sum |h| on background pixels
    (ground truth 0) of raw maps h (N, C, H, W); NaN for cells without object pixels (type 9) or with an
    all-zero map."""
    mass = np.abs(metrics.channel_adjust(h))
    gt = np.asarray(ground_truth)
    total = mass.sum(axis=(1, 2))
    back = (mass * (gt == 0)).sum(axis=(1, 2))
    ok = (total > 0) & (gt > 0).any(axis=(1, 2))
    return np.where(ok, 100 * back / np.where(ok, total, 1), np.nan)


def informative_similarity(
    families: Mapping[str, Family],
    splits: Mapping[str, CellSplits],
    *,
    n_baselines: int,
    batch_size: int,
    seed: int,
    device: str | torch.device,
) -> pd.DataFrame:
    """Per family, over every branch and evaluation cell: the mean per-cell Pearson correlation of DeepLift
    (zero baseline) with DeepLiftShap on ``n_baselines`` training cells as baselines (constant maps left
    out, as in the chapter's similarity table), both methods' mean :func:`background_share` and the mean
    paired difference DL - DLS with its 95% bootstrap interval over the cells (seeded by ``seed``).
    Columns: r(DL, DLS data), background DL (%), background DLS data (%), the difference, low, high,
    baselines."""
    if n_baselines < 1:
        raise ValueError(f"n_baselines must be >= 1, got {n_baselines}")
    dev = config.resolve_device(device)
    rows = []
    for name, fam in families.items():
        train, test = splits[name].train, splits[name].test
        gen = torch.Generator().manual_seed(config.sub_seed(seed, f"informative_baselines/{name}"))
        base = train.x[torch.randperm(len(train), generator=gen)[:n_baselines]]
        rs, bg_dl, bg_dls = [], [], []
        for br in fam.branches:
            pred = predict(br.model, test.x, dev, batch_size)
            kw = dict(batch_size=batch_size, seed=seed, device=dev)
            dl = heatmaps(br.model, test.x, "deeplift", pred, params={}, **kw)
            dls = heatmaps(br.model, test.x, "deeplift_shap", pred, params={"baselines": base}, **kw)
            rs.append(pearson(metrics.channel_adjust(dl), metrics.channel_adjust(dls)))
            bg_dl.append(background_share(dl, test.heatmap.numpy()))
            bg_dls.append(background_share(dls, test.heatmap.numpy()))
        a, b = np.concatenate(bg_dl), np.concatenate(bg_dls)
        keep = np.isfinite(a) & np.isfinite(b)
        diff = a[keep] - b[keep]
        boot = metrics.bootstrap(np.mean, diff, n=N_BOOT, seed=config.sub_seed(seed, f"background/{name}"))
        low, high = metrics.percentile_interval(boot)
        rows.append({"family": family_label(name), "r(DL, DLS data)": float(np.nanmean(np.concatenate(rs))),
                     "background DL (%)": float(a[keep].mean()), "background DLS data (%)": float(b[keep].mean()),
                     _DIFF: float(diff.mean()), "low": low, "high": high,
                     "baselines": f"{len(base)} training cells"})
    return pd.DataFrame(rows).set_index("family")


def check_informative(table: pd.DataFrame) -> dict[str, str]:
    """Verdict on "DeepLift and DeepLiftShap produce similar heatmaps" with data baselines: the paper says
    so for VGG and ResNet (for AlexNet it sees SHAP remove artifacts), so both need r >= :data:`ALIKE_R`."""
    ours = ", ".join(f"{f} r = {v:.3f}" for f, v in table["r(DL, DLS data)"].items())
    needed = [f for f in ("VGG", "ResNet") if f in table.index]
    if len(needed) < 2:
        return {"ours": ours, "verdict": "not testable here", "why": "needs the VGG and ResNet families"}
    ok = all(table.loc[f, "r(DL, DLS data)"] >= ALIKE_R for f in needed)
    return {"ours": f"{ours} (similar: r >= {ALIKE_R})", "verdict": "holds" if ok else "does not hold", "why": ""}


def check_artifacts(table: pd.DataFrame) -> dict[str, str]:
    """Verdict on "the SHAP variant removes some artifacts in AlexNet": AlexNet's background share is
    lower with DeepLiftShap (data baselines) than with DeepLift, i.e. the 95% interval of DL - DLS is
    above 0."""
    if "AlexNet" not in table.index:
        return {"ours": "", "verdict": "not testable here", "why": "needs the AlexNet family"}
    row = table.loc["AlexNet"]
    ours = (f"AlexNet background share DL {row['background DL (%)']:.1f}% vs DLS {row['background DLS data (%)']:.1f}%"
            f" (difference {row[_DIFF]:+.1f} pp, 95% CI [{row['low']:+.1f}, {row['high']:+.1f}])")
    return {"ours": ours, **report.decide_interval(row["low"], row["high"], above=0.0,
                                                   what="AlexNet's background share DL - DLS (pp)")}
