"""Fig. 3 and App. C (densities of distances split at T), Table 2 (perturbed examples), Table 3 (classes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from torch import Tensor

from ...figures import clear_axis
from .perturb import METHODS
from .ratios import Hermitry
from .runs import HermitryRun


def plot_distances(h: Hermitry, run: str, kinds: Sequence[str]):
    """Fig. 3 / App. C: per class (rows) and kind (columns: a method or a reference set), the histogram of
    distances over T (ours, log axis: the paper's normalisation is not stated), grey within T and black
    beyond it; the dashed line is T."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker
    import seaborn as sns

    thr = h.thresholds[h.thresholds["run"] == run].set_index("class")
    classes = list(thr.index)
    kinds = [k for k in kinds if (run, classes[0], k) in h.distances]
    fig, axes = plt.subplots(len(classes), len(kinds), figsize=(2.3 * len(kinds), 1.9 * len(classes)),
                             squeeze=False, sharex=True)
    for i, cls in enumerate(classes):
        t = thr.loc[cls, "T"]
        for j, kind in enumerate(kinds):
            d = h.distances[(run, cls, kind)]
            frame = pd.DataFrame({"distance": np.maximum(d / t, 1e-3), "side": np.where(d > t, "beyond T", "within T")})
            ax = axes[i, j]
            sns.histplot(frame, x="distance", hue="side", hue_order=["within T", "beyond T"], multiple="stack",
                         palette={"within T": "0.7", "beyond T": "0.1"}, bins=30, stat="density", ax=ax,
                         log_scale=(True, False), legend=False)
            ax.axvline(1.0, ls="--", c="C3", lw=1)
            ax.xaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 3.0)))
            ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_locator(mticker.NullLocator())
            ax.set_title(f"{cls}: {METHODS.get(kind, kind)} (H {np.mean(d > t):.2f})", fontsize=8)
            ax.set_xlabel("distance / T" if i == len(classes) - 1 else "")
            ax.set_ylabel("")
    fig.tight_layout()
    return fig


def plot_examples(samples: Mapping[str, Tensor], original: Tensor):
    """Table 2: the original image, then the first perturbed inputs of each method (rows)."""
    import matplotlib.pyplot as plt

    k = max(len(v) for v in samples.values())
    fig, axes = plt.subplots(len(samples), k + 1, figsize=(1.3 * (k + 1), 1.3 * len(samples)), squeeze=False)
    for i, (m, imgs) in enumerate(samples.items()):
        axes[i, 0].imshow(original.permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[i, 0].set_ylabel(METHODS.get(m, m), fontsize=8)
        for j in range(k):
            if j < len(imgs):
                axes[i, j + 1].imshow(imgs[j].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        for ax in axes[i]:
            clear_axis(ax)
    axes[0, 0].set_title("original", fontsize=8)
    fig.tight_layout()
    return fig


def plot_classes(run: HermitryRun, k: int = 6):
    """Table 3: the first ``k`` Y images of every class (rows)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(run.classes), k, figsize=(1.2 * k, 1.25 * len(run.classes)), squeeze=False)
    for i, cls in enumerate(run.classes):
        for j in range(k):
            axes[i, j].imshow(run.val[cls][j].permute(1, 2, 0).numpy(), interpolation="nearest")
            clear_axis(axes[i, j])
        axes[i, 0].set_ylabel(cls, fontsize=8)
    fig.tight_layout()
    return fig
