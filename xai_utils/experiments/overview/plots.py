"""The overview's figure: the paper's numbers against ours."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ...figures import clear_axis


def _log_scale(values: pd.Series) -> bool:
    """Log axes where every value is positive and they span more than two decades."""
    return bool((values > 0).all() and values.max() / values.min() > 100)


def plot_numbers(frame: pd.DataFrame) -> Any:
    """Paper (x) against ours (y), one panel per kind of number, coloured by chapter, the diagonal dashed."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    kinds = list(dict.fromkeys(frame["kind"]))
    cols = min(3, len(kinds))
    rows = math.ceil(len(kinds) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, kind in zip(axes.flat, kinds, strict=False):
        sub = frame[frame["kind"] == kind]
        both = pd.concat([sub["paper value"], sub["ours"]])
        lo, hi = float(both.min()), float(both.max())
        pad = 0.05 * (hi - lo or 1.0)
        sns.scatterplot(data=sub, x="paper value", y="ours", hue="paper", style="preset", ax=ax, s=28,
                        hue_order=sorted(frame["paper"].unique()), style_order=sorted(frame["preset"].unique()),
                        legend=kind == kinds[-1])
        if _log_scale(both):
            ax.set(xscale="log", yscale="log")
            lo, hi, pad = lo / 1.5, hi * 1.5, 0.0
        limits = (lo - pad, hi + pad)
        ax.plot(limits, limits, ls="--", c="0.5", lw=1, zorder=0)
        ax.set(xlim=limits, ylim=limits)
        ax.set(title=f"{kind} ({len(sub)})", xlabel="paper", ylabel="ours")
    for ax in list(axes.flat)[len(kinds):]:
        clear_axis(ax)
        ax.set_axis_off()
    sns.move_legend(axes.flat[len(kinds) - 1], "upper left", bbox_to_anchor=(1.02, 1), fontsize="small", frameon=False)
    fig.tight_layout()
    return fig
