"""Figs. 4.2, 5.1-5.7 and A.1-A.3 of the thesis, regenerated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ... import attribution, metrics
from ...figures import clear_axis
from .pairs import matrix, runs_by_task, select
from .runs import Run


def _runs_grid(means: pd.DataFrame) -> dict[str, list[str]]:
    """task -> its runs, in run order (one row of panels per task; tasks may have different black boxes)."""
    return {task: list(boxes.values()) for task, boxes in runs_by_task(means).items()}


def _panels(grid: dict[str, list[str]], width: float, height: float, **kw):
    import matplotlib.pyplot as plt

    n_cols = max(len(r) for r in grid.values())
    fig, axes = plt.subplots(len(grid), n_cols, figsize=(width * n_cols, height * len(grid)), squeeze=False, **kw)
    for i, runs in enumerate(grid.values()):
        for ax in axes[i, len(runs):]:
            ax.set_visible(False)
    return fig, axes


def plot_matrices(means: pd.DataFrame, metric: str, share: float | None = None):
    """Figs. 5.1 / 5.3 / 5.4 / 5.7 / A.1-A.3: the pairwise matrix of one metric (FA / SA at k = ``share``), one
    heatmap per task (rows) and black box (columns); darker = more agreement."""
    import seaborn as sns

    grid = {t: r for t, r in _runs_grid(means).items() if not select(means[means["task"] == t], metric, share).empty}
    fig, axes = _panels(grid, 4.6, 4.0)
    for i, runs in enumerate(grid.values()):
        for j, run in enumerate(runs):
            ax = axes[i, j]
            mat = matrix(means, run, metric, share)
            mask = np.triu(np.ones(mat.shape, dtype=bool), 1)
            sns.heatmap(mat, mask=mask, vmin=min(0.0, float(np.nanmin(mat.to_numpy()))), vmax=1, cmap="Blues",
                        annot=True, fmt=".2f", annot_kws={"size": 7}, cbar=False, square=True, ax=ax)
            ax.set_title(run.replace("/", " / "), fontsize=10)
            ax.tick_params(labelsize=7)
            ax.grid(False)
    fig.tight_layout()
    return fig


def plot_gallery(runs: Mapping[str, Run], maps: Mapping[str, Mapping[str, np.ndarray]], *, image: int = 0):
    """Fig. 5.2: per run (rows) the explained image and the magnitude of every method's map (min-max scaled;
    lighter = more salient)."""
    import matplotlib.pyplot as plt

    names = list(runs)
    methods = list(next(iter(maps.values())))
    fig, axes = plt.subplots(len(names), len(methods) + 1, figsize=(1.45 * (len(methods) + 1), 1.6 * len(names)),
                             squeeze=False)
    for i, r in enumerate(names):
        axes[i, 0].imshow(runs[r].task.x[image].permute(1, 2, 0).numpy())
        axes[i, 0].set_ylabel(r, fontsize=8)
        for j, m in enumerate(methods, 1):
            a = np.abs(maps[r][m][image])
            span = a.max() - a.min()
            axes[i, j].imshow((a - a.min()) / span if span > 0 else a, cmap="gray", vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(attribution.LABELS[m], fontsize=8)
        for ax in axes[i]:
            clear_axis(ax)
    fig.tight_layout()
    return fig


def plot_fa_illustration(maps: Mapping[str, np.ndarray], a: str, b: str, *, image: int, k: float):
    """Fig. 4.2: the top-k pixels of two maps of one image and their intersection (FA = |both| / k)."""
    import matplotlib.pyplot as plt

    def top(m: np.ndarray) -> np.ndarray:
        sel = np.zeros(m.size, dtype=bool)
        sel[metrics.topk_indices(m[None], k)[0]] = True
        return sel.reshape(m.shape)

    ta, tb = top(maps[a][image]), top(maps[b][image])
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
    for ax, img, title in zip(axes, (ta, tb, ta & tb),
                              (f"top {k:.0%}: {attribution.LABELS[a]}", f"top {k:.0%}: {attribution.LABELS[b]}",
                               f"both: FA = {(ta & tb).sum() / ta.sum():.2f}"), strict=True):
        ax.imshow(img, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        clear_axis(ax)
    fig.tight_layout()
    return fig


def plot_fa_vs_k(means: pd.DataFrame, ks: Sequence[float], highlight: Mapping[str, tuple[str, str]]):
    """Fig. 5.3 (as curves): FA against k for every pair (grey), the highlighted pairs in colour and the
    chance line FA = k of two unrelated maps (dashed), one panel per run."""
    fa = select(means, "FA")
    grid = _runs_grid(means)
    fig, axes = _panels(grid, 4.2, 3.0, sharex=True, sharey=True)
    hl = {frozenset(v): name for name, v in highlight.items()}
    for i, runs in enumerate(grid.values()):
        for j, run in enumerate(runs):
            ax = axes[i, j]
            rows = fa[fa["run"] == run]
            for (a, c, pair), g in rows.groupby(["a", "b", "pair"], sort=False):
                name = hl.get(frozenset((a, c)))
                ax.plot(g["k"], g["mean"], marker="o" if name else None, lw=2 if name else 0.8,
                        color=None if name else "0.75", label=pair if name else None, zorder=3 if name else 1)
            ax.plot(ks, ks, ls="--", color="k", lw=1, label="chance (k)")
            ax.set_xscale("log")
            ax.set_title(run.replace("/", " / "), fontsize=10)
            ax.set_xlabel("k (share of pixels)")
            ax.set_ylabel("feature agreement")
    axes[0, len(next(iter(grid.values()))) - 1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_topk_values(values: pd.DataFrame, task: str):
    """Figs. 5.5 / 5.6: the distribution of every method's values inside its top-k magnitudes (over the
    image's largest magnitude), one panel per black box."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = values[values["task"] == task]
    boxes = list(dict.fromkeys(rows["box"]))
    fig, axes = plt.subplots(1, len(boxes), figsize=(5.0 * len(boxes), 3.4), squeeze=False, sharey=True)
    for ax, b in zip(axes[0], boxes, strict=True):
        sns.violinplot(data=rows[rows["box"] == b], x="method", y="value", cut=0, density_norm="width",
                       inner=None, linewidth=0.6, ax=ax)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{task} / {b}", fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("value / max |map|")
        ax.tick_params(axis="x", labelrotation=60, labelsize=8)
    fig.tight_layout()
    return fig
