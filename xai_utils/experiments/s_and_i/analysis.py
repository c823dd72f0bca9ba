"""Why S&I scores like GAIA-Z: the share of GAIA's non-zero mask entries that the attack switches off,
and how the two scores rank the same images (ours, not in the paper)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from .scores import RunScores


def _per_layer(dens: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """(N, K) channel densities -> (N, L) per split point (mean over its channels: every channel of a
    layer has the same number of entries, so this is the layer's share of non-zero entries)."""
    edges = np.cumsum((0, *sizes))
    return np.stack([dens[:, a:b].mean(1) for a, b in zip(edges[:-1], edges[1:], strict=True)], 1)


def flip_table(rs: RunScores) -> pd.DataFrame:
    """Per split point: GAIA-Z's share of non-zero gradient entries and the share (of all entries) that
    S&I's product switches off, in %, on the ID and on the pooled OOD test images; last row: all layers."""
    rows = {}
    for side, sets in (("ID", ["id"]), ("OOD", rs.ood_sets)):
        gaia = np.concatenate([rs.densities[s]["gaia"] for s in sets])
        si = np.concatenate([rs.densities[s]["s_and_i"] for s in sets])
        g, d = _per_layer(gaia, rs.layer_sizes), _per_layer(gaia - si, rs.layer_sizes)
        rows[f"{side}: GAIA non-zero (%)"] = [*(100 * g.mean(0)), 100 * g.mean()]
        rows[f"{side}: switched off by S&I (%)"] = [*(100 * d.mean(0)), 100 * d.mean()]
    index = pd.Index([*(str(i + 1) for i in range(len(rs.layer_sizes))), "all"], name="split point")
    return pd.DataFrame(rows, index=index).round(3)


def rank_agreement(scores: Mapping[str, RunScores]) -> pd.DataFrame:
    """Per run: Spearman correlation of the S&I and GAIA-Z scores over every test image, the share of
    images whose two scores are equal, and the largest share of switched-off entries of any image."""
    rows = {}
    for run, rs in scores.items():
        si, gz = rs.table["s_and_i"].to_numpy(), rs.table["gaia_z"].to_numpy()
        dens = {k: np.concatenate([rs.densities[s][k] for s in ["id", *rs.ood_sets]]) for k in ("gaia", "s_and_i")}
        flipped = (dens["gaia"] - dens["s_and_i"]).mean(1)
        rows[run] = {"Spearman r": float(stats.spearmanr(si, gz).statistic), "equal scores (%)": 100 * float(np.mean(si == gz)),
                     "max switched off per image (%)": 100 * float(flipped.max()), "images": len(si)}
    return pd.DataFrame.from_dict(rows, orient="index").round(4)


def density_frame(rs: RunScores) -> pd.DataFrame:
    """Per test image: its set, ID/OOD, and the mean non-zero density over all channels of GAIA-Z and S&I."""
    frames = []
    for s in ["id", *rs.ood_sets]:
        d = rs.densities[s]
        frames.append(pd.DataFrame({"set": s, "kind": "ID" if s == "id" else "OOD",
                                    "GAIA-Z": d["gaia"].mean(1), "S&I": d["s_and_i"].mean(1)}))
    return pd.concat(frames, ignore_index=True)
