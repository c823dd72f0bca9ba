"""Agreement of every pair of methods, per image: feature and sign agreement at several k, rank correlation
inside the mask (positives of a masked task, on magnitudes) and SSIM (thesis eqs. 4.6-4.9)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from ... import attribution, metrics
from .runs import Run

#: The metrics in the thesis's order; FA and SA are computed at every k of the grid.
METRICS = ("FA", "SA", "RC", "SSIM")


#: Table 5.2's k: the top 10% of the pixels.
TABLE_K = 0.1


def check_shares(ks: Sequence[float], k: float) -> None:
    """Raise ValueError unless ``k`` (the claims' and matrices' k) and Table 5.2's :data:`TABLE_K` are in the grid
    ``ks`` (shares of the pixels in (0, 1))."""
    if not ks or not all(0 < s < 1 for s in ks):
        raise ValueError(f"ks must be shares of the pixels in (0, 1), got {list(ks)}")
    missing = [s for s in (k, TABLE_K) if not np.isclose(ks, s).any()]
    if missing:
        raise ValueError(f"ks {list(ks)} must contain k = {k} and Table 5.2's {TABLE_K}; missing {missing}")


def runs_by_task(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """task -> black box -> run name, in run order, from a frame with columns run, task, box."""
    out: dict[str, dict[str, str]] = {}
    for run, task, box in frame[["run", "task", "box"]].drop_duplicates().itertuples(index=False):
        out.setdefault(task, {})[box] = run
    return out


def pair_label(a: str, b: str) -> str:
    return f"{attribution.LABELS[a]} - {attribution.LABELS[b]}"


def pair_values(runs: Mapping[str, Run], maps: Mapping[str, Mapping[str, np.ndarray]], *,
                ks: Sequence[float]) -> pd.DataFrame:
    """Long table, one row per (run, pair, metric, k, image): columns run, task, box, a, b, pair, metric, k
    (NaN for RC and SSIM), image, value.  A degenerate map (constant magnitude, or constant inside the mask)
    gives NaN for that image's SSIM / RC (counted by :func:`pair_means`), not an error."""
    frames = []
    for r, run in runs.items():
        methods = list(maps[r])
        pos = run.task.positives.numpy()
        masks = run.task.masks.numpy()[pos] if run.task.masks is not None else None
        topk = {k: metrics.topk_agreements(maps[r], k) for k in ks}  # each map's top-k once, not once per pair
        for a, b in combinations(methods, 2):
            x, y = maps[r][a], maps[r][b]
            values: list[tuple[str, float, np.ndarray, np.ndarray]] = []
            idx = np.arange(len(x))
            for k in ks:
                values.append(("FA", k, idx, topk[k][a, b][0]))
                values.append(("SA", k, idx, topk[k][a, b][1]))
            values.append(("SSIM", np.nan, idx, metrics.ssim_maps(x, y, degenerate="nan")))
            if masks is not None and pos.any():
                values.append(("RC", np.nan, np.flatnonzero(pos),
                               metrics.rank_correlation(x[pos], y[pos], masks, absolute=True, degenerate="nan")))
            for metric, k, images, v in values:
                frames.append(pd.DataFrame({"run": r, "task": run.task.name, "box": run.box, "a": a, "b": b,
                                            "pair": pair_label(a, b), "metric": metric, "k": k, "image": images,
                                            "value": v}))
    return pd.concat(frames, ignore_index=True)


def pair_means(values: pd.DataFrame) -> pd.DataFrame:
    """Mean over images per (run, pair, metric, k), NaNs left out: columns mean, n (images with a value),
    undefined (images whose map made the metric undefined)."""
    g = values.groupby(["run", "task", "box", "a", "b", "pair", "metric", "k"], dropna=False, sort=False)["value"]
    out = g.agg(mean="mean", n="count", size="size").reset_index()
    out["undefined"] = out.pop("size") - out["n"]
    return out


def select(means: pd.DataFrame, metric: str, share: float | None = None) -> pd.DataFrame:
    """Rows of one metric (FA / SA at k = ``share``; all k when None)."""
    rows = means[means["metric"] == metric]
    return rows[np.isclose(rows["k"], share)] if share is not None else rows


def matrix(means: pd.DataFrame, run: str, metric: str, share: float | None = None) -> pd.DataFrame:
    """Method x method matrix (display names) of one run and metric (FA / SA at k = ``share``), symmetric,
    diagonal 1."""
    rows = select(means[means["run"] == run], metric, share)
    names = list(dict.fromkeys([*rows["a"], *rows["b"]]))
    labels = [attribution.LABELS[m] for m in names]
    mat = pd.DataFrame(np.eye(len(names)), index=labels, columns=labels)
    for row in rows.itertuples():
        mat.loc[attribution.LABELS[row.a], attribution.LABELS[row.b]] = row.mean
        mat.loc[attribution.LABELS[row.b], attribution.LABELS[row.a]] = row.mean
    return mat


def topk_values(runs: Mapping[str, Run], maps: Mapping[str, Mapping[str, np.ndarray]], *, k: float) -> pd.DataFrame:
    """Figs. 5.5 / 5.6: every method's values inside its top-k magnitudes, divided by the image's largest
    magnitude (so in [-1, 1]); columns run, task, box, method, value."""
    frames = []
    for r, run in runs.items():
        for m, a in maps[r].items():
            flat = a.reshape(len(a), -1)
            top = np.take_along_axis(flat, metrics.topk_indices(flat, k), axis=1)
            scale = np.abs(flat).max(axis=1, keepdims=True)
            v = np.divide(top, scale, out=np.zeros_like(top), where=scale > 0).ravel()
            frames.append(pd.DataFrame({"run": r, "task": run.task.name, "box": run.box,
                                        "method": attribution.LABELS[m], "value": v}))
    return pd.concat(frames, ignore_index=True)
