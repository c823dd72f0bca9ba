"""Fig. 1 (attribution maps of ID and OOD inputs) and our figures: densities, ablations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import attribution, config
from ..ood_runs import Run
from .analysis import density_frame
from .scores import RunScores


def plot_maps(run: Run, *, seed: int):
    """Fig. 1: per set (ID and every OOD set) one test image and its attribution map, |d max logit / d x|
    summed over the colour channels (captum's Saliency), each map scaled to its own maximum."""
    import matplotlib.pyplot as plt

    b = run.bench
    gen = np.random.default_rng(config.sub_seed(seed, "fig1"))
    picks = [("ID", b.id_test.x)] + [(k, v["test"].x) for k, v in b.ood.items()]
    fig, axes = plt.subplots(2, len(picks), figsize=(1.6 * len(picks), 3.4), squeeze=False)
    dev = next(run.model.parameters()).device
    for c, (name, x) in enumerate(picks):
        xi = x[int(gen.integers(len(x)))][None].to(dev)
        m = attribution.attribute("saliency", run.model, xi, abs=True).sum(1)[0].detach().cpu().numpy()
        axes[0, c].imshow(xi[0].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
        axes[1, c].imshow(m / max(m.max(), 1e-12), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        axes[0, c].set_title(name, fontsize=8)
        for ax in axes[:, c]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    axes[1, 0].set_ylabel("|gradient|", fontsize=8)
    fig.tight_layout()
    return fig


def plot_densities(rs: RunScores):
    """Per test image, the mean non-zero density over all channels of GAIA-Z (left) and S&I (right), ID vs
    each OOD set."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = density_frame(rs)
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.0), sharex=True, sharey=True)
    for ax, col in zip(axes, ("GAIA-Z", "S&I"), strict=True):
        sns.histplot(frame, x=col, hue="set", element="step", stat="density", common_norm=False, ax=ax,
                     bins=30)
        ax.set_xlabel(f"{col}: mean non-zero density")
    fig.tight_layout()
    return fig


def plot_ablation(table: pd.DataFrame):
    """S&I's average AUROC per ablation knob (eta on a log axis)."""
    import matplotlib.pyplot as plt

    knobs = list(dict.fromkeys(table.index.get_level_values("knob")))
    fig, axes = plt.subplots(1, len(knobs), figsize=(3.0 * len(knobs), 2.8), squeeze=False, sharey=True)
    for ax, knob in zip(axes[0], knobs, strict=True):
        part = table.xs(knob, level="knob")
        xs = part.index.astype(float)
        ax.plot(xs, part["AVG AUROC"], marker="o")
        if knob == "eta" and (xs > 0).all():
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(xs, part.index, rotation=45 if knob == "eta" else 0, fontsize=8)
        ax.set_xlabel(knob)
    axes[0, 0].set_ylabel("S&I average AUROC (%)")
    fig.tight_layout()
    return fig
