"""Heatmap galleries (Figs. 5, 6 and the appendix): a few test images with every method's heatmap, and the
pair of Fig. 6(C): the best and the worst map of one method on one cell type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from xai_utils import config, data, metrics

from .evaluation import heatmaps, predict
from .families import Family
from .splits import CellSplits

#: Fig. 6(C): DeepLift heatmaps of two correctly predicted type-8 cells (eight tails) on VGG.
FIG6C: dict[str, Any] = {"family": "vgg", "method": "deeplift", "cls": 8}


@dataclass
class GalleryData:
    """A few test images of one family (branch 1) with every method's raw heatmap.

    x (K, 3, H, W), heatmap (K, H, W), y / pred (K,) numpy, maps : method -> (K, C, H, W) float64.
    """

    family: str
    x: np.ndarray
    heatmap: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    maps: dict[str, np.ndarray] = field(default_factory=dict)


def gallery_data(
    fam: Family,
    cells: data.Cells,
    *,
    classes: Sequence[int],
    methods: Sequence[str],
    method_params: Mapping[str, Mapping[str, Any]],
    batch_size: int,
    seed: int,
    device: str | torch.device,
    n_wrong: int = 2,
) -> GalleryData:
    """Pick, for branch 1 of ``fam``, the first correctly predicted test image of each class in
    ``classes`` and the first ``n_wrong`` wrong predictions, and compute every method's heatmap
    (method_params, batch_size and seed as in :func:`~.evaluation.evaluate`)."""
    dev = config.resolve_device(device)
    model = fam.branches[0].model
    pred = predict(model, cells.x, dev, 128)
    ok = (pred == cells.y).numpy()
    idx = [
        int(np.flatnonzero(ok & (cells.y.numpy() == c))[0])
        for c in classes
        if (ok & (cells.y.numpy() == c)).any()
    ]
    idx += [int(i) for i in np.flatnonzero(~ok)[:n_wrong]]
    sel = cells.subset(idx)
    target = pred[idx]
    maps = {m: heatmaps(model, sel.x, m, target, params=method_params.get(m), batch_size=batch_size, seed=seed,
                        device=dev) for m in methods}
    return GalleryData(
        family=fam.name,
        x=sel.x.numpy(),
        heatmap=sel.heatmap.numpy(),
        y=sel.y.numpy(),
        pred=target.numpy(),
        maps=maps,
    )


def galleries(
    families: Mapping[str, Family], splits: Mapping[str, CellSplits], **kwargs: Any
) -> dict[str, GalleryData]:
    """:func:`gallery_data` for every family on its test cells; ``kwargs`` are :func:`gallery_data`'s keywords."""
    return {name: gallery_data(fam, splits[name].test, **kwargs) for name, fam in families.items()}


def quality_pair(
    fam: Family,
    cells: data.Cells,
    *,
    cls: int,
    method: str,
    method_params: Mapping[str, Mapping[str, Any]],
    fp_rule: str,
    batch_size: int,
    seed: int,
    device: str | torch.device,
) -> tuple[GalleryData, pd.DataFrame]:
    """Fig. 6(C): ``method``'s heatmaps of branch 1 of ``fam`` on every correctly predicted cell of type
    ``cls``, five-band scored (soft thresholds, ``fp_rule``); returns the cell with the highest and the one
    with the lowest average recall (in that order; fewer when fewer cells are correct) and a table of their
    scores (cell index, R avg, P avg) whose index name says how many cells were correct."""
    dev = config.resolve_device(device)
    model = fam.branches[0].model
    pred = predict(model, cells.x, dev, 128)
    idx = np.flatnonzero(((pred == cells.y) & (cells.y == cls)).numpy())
    sel = cells.subset(torch.as_tensor(idx, dtype=torch.long))
    recall = precision = np.zeros(0)
    maps = {method: np.zeros((0, *sel.x.shape[1:]))}
    if len(idx):
        maps[method] = heatmaps(model, sel.x, method, pred[idx], params=method_params.get(method),
                                batch_size=batch_size, seed=seed, device=dev)
        s = metrics.five_band_scores(metrics.channel_adjust(maps[method]), sel.heatmap, fp=fp_rule)
        recall, precision = s.avg("recall"), s.avg("precision")
    pick = list(dict.fromkeys([int(np.argmax(recall)), int(np.argmin(recall))])) if len(idx) else []
    g = GalleryData(family=fam.name, x=sel.x.numpy()[pick], heatmap=sel.heatmap.numpy()[pick],
                    y=sel.y.numpy()[pick], pred=pred[idx].numpy()[pick], maps={method: maps[method][pick]})
    table = pd.DataFrame({"cell": idx[pick], "R avg": recall[pick], "P avg": precision[pick]},
                         index=pd.Index(["best recall", "worst recall"][: len(pick)],
                                        name=f"{len(idx)} correct type-{cls} cells"))
    return g, table
