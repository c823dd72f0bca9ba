"""The methods reference chapter: every registered attribution method on the same cell images.

A small ResNet is trained (and cached) on the ID cells of the offline benchmark; :func:`gallery`
runs every method of :data:`xai_utils.attribution.METHODS` on a few test cells and
:func:`plot_gallery` shows the maps beside the images and their ground-truth heatmaps.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .. import attribution, config
from ..data import Cells, make_cells


def gallery_cells(size: int, *, seed: int) -> Cells:
    """One test cell of each ID class (0-5), backgrounds in turn, from a seed of its own."""
    return make_cells(6, size=size, classes=range(6), seed=config.sub_seed(seed, "gallery"))


def gallery(model: nn.Module, x: Tensor, *, methods: Sequence[str], seed: int,
            params: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[dict[str, Tensor], pd.DataFrame]:
    """Maps of ``methods`` (names in ``METHODS``; empty: all of them) for the predicted class, each with
    its defaults = the papers' settings (e.g. salagg's 4 x 4 grid for the perturbation methods) unless
    ``params[name]`` sets some.  Every method that draws at random (masks, baselines, noise) draws from
    ``config.sub_seed(seed, name)``.

    Returns ``{name: (N, 1, H, W) channel-summed map}`` and a table, indexed by ``attribution.LABELS``,
    of each method's registry name, raw output shape, parameters and value range.
    """
    params = params or {}
    maps, rows = {}, []
    for name in methods or sorted(attribution.METHODS):
        kw = dict(params.get(name, {}))
        fixed = dict(kw)  # what the table shows: the chosen settings, not the derived seed
        if "seed" in inspect.signature(attribution.METHODS[name]).parameters:
            kw.setdefault("seed", config.sub_seed(seed, name))
        a = attribution.attribute(name, model, x, **kw)
        maps[name] = attribution.reduce_channels(a, "sum").detach().cpu()
        rows.append({"method": attribution.LABELS[name], "name": name, "raw output shape": tuple(a.shape[1:]),
                     "parameters": fixed or "defaults",
                     "min": round(float(maps[name].min()), 4), "max": round(float(maps[name].max()), 4)})
    return maps, pd.DataFrame(rows).set_index("method")


def plot_gallery(cells: Cells, maps: Mapping[str, Tensor], predicted: Tensor, *, rows: Sequence[int]) -> plt.Figure:
    """Images, ground truth and every method's map (signed, red = for the predicted class)."""
    names = list(maps)
    fig, axes = plt.subplots(len(rows), len(names) + 2, figsize=(1.15 * (len(names) + 2), 1.25 * len(rows)),
                             squeeze=False)
    for r, i in enumerate(rows):
        axes[r, 0].imshow(cells.x[i].permute(1, 2, 0).numpy())
        axes[r, 1].imshow(cells.heatmap[i].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(f"class {int(cells.y[i])}\npred {int(predicted[i])}", fontsize=8)
        for c, name in enumerate(names):
            m = maps[name][i].squeeze(0).numpy()
            lim = float(np.abs(m).max()) or 1.0
            axes[r, c + 2].imshow(m, cmap="bwr", vmin=-lim, vmax=lim)
    for c, title in enumerate(["image", "ground truth", *(attribution.LABELS[n] for n in names)]):
        axes[0, c].set_title(title, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    return fig


def mass_on_ground_truth(maps: Mapping[str, Tensor], heatmap: Tensor) -> pd.DataFrame:
    """Share of each method's absolute attribution that falls on each ground-truth region, averaged
    over images: background (0), cell body (0.4), discriminative parts (0.9).  heatmap : (N, H, W)."""
    regions = {"background": heatmap == 0, "cell body": (heatmap - 0.4).abs() < 1e-3,
               "discriminative parts": (heatmap - 0.9).abs() < 1e-3}
    area = {k: float(v.float().mean()) for k, v in regions.items()}
    rows = {}
    for name, m in maps.items():
        mass = m.squeeze(1).abs()
        total = mass.flatten(1).sum(1).clamp_min(1e-12)
        shares = {k: float(((mass * v).flatten(1).sum(1) / total).mean()) for k, v in regions.items()}
        rows[attribution.LABELS[name]] = shares
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["(share of pixels)"] = area
    return table.round(3)


def property_checks(model: nn.Module, x: Tensor) -> pd.DataFrame:
    """Closed-form properties on the gallery images, as the unit tests check them on tiny models:
    IG completeness, DeepLift summation-to-delta, and the salagg theorem (mean of the raw Grad-CAM
    map = (logit - bias) / (h w) for a global-average-pool + linear head).  Relative errors:
    max |lhs - rhs| / max |rhs| over the images, rounded to 4 decimals."""
    with torch.no_grad():
        logits = model(x)
    target = logits.argmax(1)
    picked = logits.gather(1, target[:, None]).squeeze(1)
    with torch.no_grad():
        at_zero = model(torch.zeros_like(x)).gather(1, target[:, None]).squeeze(1)
    ig = attribution.attribute("integrated_gradients", model, x, target, n_steps=200)
    dl = attribution.attribute("deeplift", model, x, target)
    cam = attribution.gradcam_raw(model, x, target).detach()
    theorem = (picked - model.head.bias.detach()[target]) / cam[0, 0].numel()
    labels = attribution.LABELS
    rows = [
        (labels["integrated_gradients"], "sum of attributions = f(x) - f(0)", ig.flatten(1).sum(1), picked - at_zero),
        (labels["deeplift"], "sum of attributions = f(x) - f(0)", dl.flatten(1).sum(1), picked - at_zero),
        (f"{labels['gradcam']} (raw)", "mean of map = (logit - bias) / (h w)", cam.flatten(1).mean(1), theorem),
    ]
    return pd.DataFrame(
        [{"method": m, "property": p,
          "relative error": round(float((a - b).abs().max() / b.abs().max().clamp_min(1e-12)), 4)}
         for m, p, a, b in rows]
    ).set_index("method")
