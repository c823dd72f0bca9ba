"""The chapter's figures: annotated methods x aggregates heatmaps (Figs. 1-6)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .scores import Scores
from .tables import auroc_grid, baseline_aurocs


def plot_grid(
    grid: pd.DataFrame,
    *,
    title: str,
    center: float | None = 50.0,
    fmt: str = ".1f",
    ax=None,
    cbar: bool = True,
):
    """Annotated heatmap of a methods x aggregates frame; returns the Axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.2))
    sns.heatmap(
        grid.astype(float),
        annot=True,
        fmt=fmt,
        cmap="RdBu_r" if center is not None else "viridis",
        center=center,
        ax=ax,
        cbar=cbar,
        annot_kws={"size": 8},
    )
    ax.set_title(title)
    ax.set_xlabel("aggregate")
    ax.set_ylabel("saliency method")
    return ax


def plot_grids(scores: Mapping[str, Scores], part: str = "test"):
    """Figs. 3-6: one AUROC heatmap per run and group (rows: runs; columns: near, far); returns the Figure."""
    import matplotlib.pyplot as plt

    n = len(scores)
    fig, axes = plt.subplots(n, 2, figsize=(13, 3.0 * n), squeeze=False)
    base = baseline_aurocs(scores, part=part)
    for i, (name, s) in enumerate(scores.items()):
        for j, g in enumerate(("near", "far")):
            grid = auroc_grid({name: s}, group=g, part=part)
            plot_grid(
                grid,
                title=f"{name}, {g}-OOD (MLS {base.loc[name, ('mls', g)]:.1f}, "
                f"MSP {base.loc[name, ('msp', g)]:.1f})",
                ax=axes[i, j],
                cbar=False,
            )
            if j:
                axes[i, j].set_ylabel("")
    fig.tight_layout()
    return fig
