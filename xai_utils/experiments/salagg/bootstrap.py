"""Bootstrap replicates of the chapter's test AUROCs: paired over columns (Table 1's Wilcoxon test) and
pooled over runs (the 95% intervals that every verdict rests on).

A replicate resamples, with replacement, the ID test images and each OOD set's test images of a run;
every column gets the same resample.  An aggregate that is undefined on some images (NaN) is scored
on the resampled images where it is defined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ... import config, metrics
from .scores import Scores, auroc_pct

GROUPS: tuple[str, ...] = ("near", "far", "all")


def bootstrap_group(s: Scores, cols: Sequence[str], group: str, *, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Test AUROC (%) of ``cols`` on ``n_boot`` bootstraps of the ID and OOD test images of one run: mean over
    the ``group``'s sets ("near", "far"; "all" = the mean of near and far, as the chapter's grids); every
    column gets the same resamples (paired, for the Wilcoxon test).  Returns column -> (n_boot,)."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    groups = [g for g in ("near", "far") if g in s.groups.values() and group in (g, "all")]
    if not groups:
        raise ValueError(f"{s.name}: no {group}-OOD sets")
    sets = {g: [k for k, gg in s.groups.items() if gg == g] for g in groups}
    id_all = {c: s.values(c, "id", "test", defined=False) for c in cols}
    ood_all = {(c, k): s.values(c, k, "test", defined=False) for c in cols for g in groups for k in sets[g]}
    rng = np.random.default_rng(config.sub_seed(seed, f"{s.name}/{group}"))
    out = {c: np.empty(n_boot) for c in cols}
    n_id = len(id_all[cols[0]])
    for b in range(n_boot):
        i_id = rng.integers(0, n_id, n_id)
        i_ood = {}
        for g in groups:
            for k in sets[g]:
                n = len(ood_all[(cols[0], k)])
                i_ood[k] = rng.integers(0, n, n)
        for c in cols:
            per_group = [
                np.mean([auroc_pct(id_all[c][i_id], ood_all[(c, k)][i_ood[k]]) for k in sets[g]]) for g in groups
            ]
            out[c][b] = float(np.mean(per_group))
    return out


def bootstrap_runs(
    scores: Mapping[str, Scores], cols: Sequence[str], group: str, *, n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    """:func:`bootstrap_group` averaged over runs (each run resampled independently): column -> (n_boot,)
    replicates of the runs' mean test AUROC (%), the quantity the chapter's grids average."""
    per_run = [bootstrap_group(s, cols, group, n_boot=n_boot, seed=seed) for s in scores.values()]
    return {c: np.mean([r[c] for r in per_run], axis=0) for c in cols}


def interval_table(replicates: Mapping[str, np.ndarray], estimates: Mapping[str, float]) -> pd.DataFrame:
    """Per column: the point estimate (on all images) and the 95% bootstrap interval of its AUROC (%)."""
    rows = {}
    for c, r in replicates.items():
        lo, hi = metrics.percentile_interval(r)
        rows[c] = {"AUROC": estimates[c], "95% low": lo, "95% high": hi}
    return pd.DataFrame.from_dict(rows, orient="index")
