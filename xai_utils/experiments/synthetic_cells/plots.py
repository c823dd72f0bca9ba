"""The chapter's figures: Fig. 2 (cells), Fig. 3 (precision vs recall), Fig. 4 (ROC), Figs. 5, 6 and the
appendix (heatmap galleries)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from xai_utils import attribution, data, metrics

from .galleries import GalleryData
from .labels import METHODS, family_label

#: The methods of the paper's Fig. 5 (channel responses) and Fig. 6 (five-band maps).
FIG5_METHODS: tuple[str, ...] = ("saliency", "guided_gradcam", "deconvolution")
FIG6_METHODS: tuple[str, ...] = ("saliency", "deeplift", "deeplift_shap")


def _hide(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _show_map(ax, m: np.ndarray, title: str = "") -> None:
    ax.imshow(m, cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
    _hide(ax)
    if title:
        ax.set_title(title, fontsize=8)


def _nothing(title: str):
    """A figure that says it has no image to show (e.g. no correct prediction of a cell type)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 0.8))
    ax.text(0.5, 0.5, "no image to show", ha="center", va="center")
    ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return fig


def plot_cells(cells: data.Cells):
    """Fig. 2: the 10 cell types (columns) on the 3 backgrounds (rows 1-3) and their ground truth (rows 4-6)."""
    import matplotlib.pyplot as plt

    n_bg = len(data.BACKGROUND_NAMES)
    n_cls = len(data.CLASS_NAMES)
    fig, axes = plt.subplots(2 * n_bg, n_cls, figsize=(1.0 * n_cls, 1.05 * 2 * n_bg))
    for i in range(len(cells)):
        c, bg = int(cells.y[i]), int(cells.background[i])
        axes[bg, c].imshow(cells.x[i].permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[n_bg + bg, c].imshow(
            cells.heatmap[i].numpy(), cmap="Reds", vmin=0, vmax=1, interpolation="nearest"
        )
    for ax in axes.flat:
        _hide(ax)
    for c in range(n_cls):
        axes[0, c].set_title(f"{c}: {data.CLASS_NAMES[c]}", fontsize=7)
    for bg in range(n_bg):
        axes[bg, 0].set_ylabel(f"bg {bg}\n{data.BACKGROUND_NAMES[bg]}", fontsize=7)
        axes[n_bg + bg, 0].set_ylabel(f"$h_0$, bg {bg}", fontsize=7)
    fig.suptitle("Fig. 2: cell types on three backgrounds (top) and ground-truth heatmaps (bottom)")
    fig.tight_layout()
    return fig


def plot_precision_recall(pts: pd.DataFrame, *, errorbars: bool = True):
    """Fig. 3: precision vs recall per method (colour) and branch (one point each), std over samples as bars.

    Rows: (A) average over thresholds, (B) best, (C) best after clamping; columns: families.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    fams = list(dict.fromkeys(pts["family"]))
    panels = [
        ("soft", "avg", "(A) average"),
        ("soft", "best", "(B) best"),
        ("clamped", "best", "(C) best, clamped"),
    ]
    colors = dict(zip(METHODS, sns.color_palette("tab10", len(METHODS)), strict=True))
    fig, axes = plt.subplots(3, len(fams), figsize=(3.6 * len(fams), 9.6), squeeze=False)
    for r, (variant, stat, label) in enumerate(panels):
        for c, fam in enumerate(fams):
            ax = axes[r, c]
            sel = pts[(pts["variant"] == variant) & (pts["family"] == fam)]
            for m, grp in sel.groupby("method", sort=False):
                xr, yp = grp[f"recall_{stat}"], grp[f"precision_{stat}"]
                if errorbars:
                    ax.errorbar(
                        xr,
                        yp,
                        xerr=grp[f"recall_{stat}_std"],
                        yerr=grp[f"precision_{stat}_std"],
                        fmt="none",
                        ecolor=colors[m],
                        alpha=0.25,
                        lw=0.8,
                    )
                ax.scatter(xr, yp, s=14, color=colors[m], label=attribution.LABELS[m], zorder=3)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel(f"recall ({stat})")
            ax.set_ylabel(f"precision ({stat})")
            ax.set_title(f"{label}: {family_label(fam)}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def plot_roc(roc: pd.DataFrame, variant: str = "soft"):
    """Fig. 4: mean FPR vs mean recall over the soft thresholds, per method (colour) and branch (one line each)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sel = roc[roc["variant"] == variant]
    fams = list(dict.fromkeys(sel["family"]))
    colors = dict(zip(METHODS, sns.color_palette("tab10", len(METHODS)), strict=True))
    fig, axes = plt.subplots(1, len(fams), figsize=(3.6 * len(fams), 3.9), squeeze=False)
    for c, fam in enumerate(fams):
        ax = axes[0, c]
        for (m, _b), grp in sel[sel["family"] == fam].groupby(["method", "branch"], sort=False):
            ax.plot(
                grp["fpr"],
                grp["recall"],
                color=colors[m],
                lw=1,
                alpha=0.8,
                marker=".",
                ms=2,
                label=attribution.LABELS[m] if _b == 1 else None,
            )
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("FPR (mean over samples)")
        ax.set_ylabel("recall (mean over samples)")
        ax.set_title(family_label(fam))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def _title(g: GalleryData, k: int) -> str:
    return f"y={g.pred[k]}, y0={g.y[k]}"


def plot_channels(g: GalleryData, *, methods: Sequence[str], n: int = 2):
    """Fig. 5: image, ground truth and the R, G, B channels of each method's heatmap (h / max|h|);
    the paper's methods are :data:`FIG5_METHODS`.

    Shows the first ``n`` correct predictions (any predictions if there is none)."""
    import matplotlib.pyplot as plt

    correct = ([k for k in range(len(g.y)) if g.y[k] == g.pred[k]] or list(range(len(g.y))))[:n]
    rows = [(m, k) for m in methods if m in g.maps for k in correct]
    fig, axes = plt.subplots(len(rows), 5, figsize=(6.2, 1.35 * len(rows)), squeeze=False)
    for r, (m, k) in enumerate(rows):
        h = g.maps[m][k]
        h = h / max(np.abs(h).max(), 1e-12)
        axes[r, 0].imshow(g.x[k].transpose(1, 2, 0), interpolation="nearest")
        _hide(axes[r, 0])
        axes[r, 0].set_ylabel(attribution.LABELS[m], fontsize=7)
        axes[r, 0].set_title(_title(g, k), fontsize=7)
        _show_map(axes[r, 1], g.heatmap[k], "$h_0$" if r == 0 else "")
        for ch, name in enumerate("RGB"):
            _show_map(axes[r, 2 + ch], h[min(ch, len(h) - 1)], name if r == 0 else "")
    fig.suptitle(
        f"Fig. 5: channel responses, {family_label(g.family)} (correct predictions)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def plot_bands(
    galleries: Sequence[GalleryData], *, methods: Sequence[str], all_cells: bool = False,
    title: str = "Fig. 6: summed heatmaps and five-band maps at the first and last soft threshold",
):
    """Fig. 6: per family and method: image, h0, summed map h, five-band maps at t_0 and t_55 (soft);
    the paper's methods are :data:`FIG6_METHODS`.

    Uses each gallery's first correct prediction (its first image if there is none), or every image with
    ``all_cells`` (Fig. 6(C))."""
    import matplotlib.pyplot as plt

    def cells(g: GalleryData) -> list[int]:
        if all_cells:
            return list(range(len(g.y)))
        return [next((i for i in range(len(g.y)) if g.y[i] == g.pred[i]), 0)] if len(g.y) else []

    t = metrics.soft_thresholds()
    rows = [(g, m, k) for g in galleries for m in methods if m in g.maps for k in cells(g)]
    if not rows:
        return _nothing(title)
    fig, axes = plt.subplots(len(rows), 5, figsize=(6.2, 1.3 * len(rows)), squeeze=False)
    for r, (g, m, k) in enumerate(rows):
        h = metrics.channel_adjust(g.maps[m][k : k + 1])
        axes[r, 0].imshow(g.x[k].transpose(1, 2, 0), interpolation="nearest")
        _hide(axes[r, 0])
        axes[r, 0].set_ylabel(f"{family_label(g.family)}\n{attribution.LABELS[m]}", fontsize=7)
        _show_map(axes[r, 1], g.heatmap[k], "$h_0$" if r == 0 else "")
        _show_map(axes[r, 2], h[0], "h" if r == 0 else "")
        _show_map(axes[r, 3], metrics.stratify(h, t[0])[0, 0] / 2, "$S_{t_0}(h)$" if r == 0 else "")
        _show_map(
            axes[r, 4],
            metrics.stratify(h, t[-1])[0, 0] / 2,
            f"$S_{{t_{{{len(t) - 1}}}}}(h)$" if r == 0 else "",
        )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_predictions(
    galleries: Sequence[GalleryData], *, methods: Sequence[str], n_correct: int = 1, n_wrong: int = 1,
    cls: int | None = None, title: str = "Appendix (compact): summed heatmaps h of correct and wrong predictions",
):
    """Appendix, compact: per family a correct and a wrong prediction (of cell type ``cls`` if given);
    rows = methods (summed maps h)."""
    import matplotlib.pyplot as plt

    methods = [m for m in methods if all(m in g.maps for g in galleries)]
    cols = []
    for g in galleries:
        kept = [k for k in range(len(g.y)) if cls is None or g.y[k] == cls]
        ok = [k for k in kept if g.y[k] == g.pred[k]][:n_correct]
        bad = [k for k in kept if g.y[k] != g.pred[k]][:n_wrong]
        cols += [(g, k) for k in ok + bad]
    if not cols:
        return _nothing(title)
    fig, axes = plt.subplots(
        len(methods) + 1, len(cols), figsize=(1.15 * len(cols) + 0.6, 1.1 * (len(methods) + 1)), squeeze=False
    )
    for c, (g, k) in enumerate(cols):
        axes[0, c].imshow(g.x[k].transpose(1, 2, 0), interpolation="nearest")
        _hide(axes[0, c])
        ok = "correct" if g.y[k] == g.pred[k] else "wrong"
        axes[0, c].set_title(f"{family_label(g.family)} {ok}\n{_title(g, k)}", fontsize=7)
        for r, m in enumerate(methods, start=1):
            _show_map(axes[r, c], metrics.channel_adjust(g.maps[m][k : k + 1])[0])
            if c == 0:
                axes[r, c].set_ylabel(attribution.LABELS[m], fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
