"""The thesis's claims, each decided on 95% percentile bootstrap intervals over the explained images (ours:
the thesis reports means only).  Images are resampled once per task (RC, which uses the positives only, once
more), so the black boxes, pairs and metrics of a task are compared on the same resamples."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ... import attribution, config
from .pairs import METRICS, pair_label, runs_by_task

#: "SA is about half of FA" (ours): the ratio's interval inside 0.5 +- HALF_BAND.
HALF_BAND = 0.15
#: "The ranking of the pairs is stable" / "SA is close to redundant" (ours): a Spearman correlation across
#: the 28 pairs whose interval lies above STABLE / REDUNDANT.
STABLE = 0.5
REDUNDANT = 0.8
#: The pair the thesis finds most agreeable (Table 5.2).
TOP_PAIR = pair_label("guided_backprop", "guided_gradcam")


def _verdict(orders: Sequence[int], what: str) -> dict[str, str]:
    """holds when every order is +1, does not hold when any is -1, else not testable (intervals overlap)."""
    if orders and all(o == 1 for o in orders):
        return dict(verdict="holds", why="")
    if any(o == -1 for o in orders):
        return dict(verdict="does not hold", why="")
    return dict(verdict="not testable here", why=f"the 95% intervals of {what} contain the bound: more images are needed")


def _above(low: float, high: float, bound: float) -> int:
    return 1 if low > bound else -1 if high < bound else 0


class Resampler:
    """Per-image values as (images x pairs) matrices and bootstrap means over the same image resamples."""

    def __init__(self, values: pd.DataFrame, *, n_boot: int, seed: int):
        self.values = values
        self.n_boot, self.seed = n_boot, seed
        self._idx: dict[str, np.ndarray] = {}
        self._means: dict[tuple, tuple[pd.Series, np.ndarray]] = {}

    def idx(self, task: str, n: int) -> np.ndarray:
        if task not in self._idx:
            rng = np.random.default_rng(config.sub_seed(self.seed, f"disagreement_boot_{task}"))
            self._idx[task] = rng.integers(0, n, (self.n_boot, n))
        return self._idx[task]

    def wide(self, run: str, metric: str, k: float | None = None) -> pd.DataFrame:
        rows = self.values[(self.values["run"] == run) & (self.values["metric"] == metric)]
        if k is not None:
            rows = rows[np.isclose(rows["k"], k)]
        return rows.pivot(index="image", columns="pair", values="value")

    def means(self, run: str, metric: str, k: float | None = None) -> tuple[pd.Series, np.ndarray]:
        """Pair means (Series over pairs) and their bootstrap replicates (n_boot, pairs); computed once per
        (run, metric, k), as several claims ask for the same."""
        if (run, metric, k) not in self._means:
            self._means[(run, metric, k)] = self._bootstrap(run, metric, k)
        return self._means[(run, metric, k)]

    def _bootstrap(self, run: str, metric: str, k: float | None) -> tuple[pd.Series, np.ndarray]:
        w = self.wide(run, metric, k)
        task = self.values.loc[self.values["run"] == run, "task"].iloc[0]
        idx = self.idx(f"{task}/{'positives' if metric == 'RC' else 'all'}", len(w))  # RC: the positives only
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample of only undefined (NaN) images
            boot = np.nanmean(w.to_numpy()[idx], axis=1)
        return w.mean(), boot


def _interval(reps: np.ndarray) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return float(lo), float(hi)


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ra, rb = rankdata(a, axis=-1), rankdata(b, axis=-1)
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    return (ra * rb).sum(-1) / np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))


def _runs(rs: Resampler) -> list[str]:
    return list(dict.fromkeys(rs.values["run"]))


def _fmt(x: float, lo: float, hi: float) -> str:
    return f"{x:.2f} [{lo:.2f}, {hi:.2f}]"


def claim_top_pair(rs: Resampler, *, k: float) -> dict[str, str]:
    """Every run: GBP - GuidedGradCam has the highest FA@k of all pairs (its bootstrap difference to the
    runner-up above 0), and its SA equals its FA."""
    parts, orders = [], []
    for run in _runs(rs):
        fa, boot = rs.means(run, "FA", k)
        sa, _ = rs.means(run, "SA", k)
        other = fa.drop(TOP_PAIR).idxmax()
        cols = list(fa.index)
        diff = boot[:, cols.index(TOP_PAIR)] - boot[:, cols.index(other)]
        lo, hi = _interval(diff)
        orders.append(_above(lo, hi, 0.0))
        parts.append(f"{run}: FA {fa[TOP_PAIR]:.2f} (SA {sa[TOP_PAIR]:.2f}), minus runner-up {other} "
                     f"{_fmt(fa[TOP_PAIR] - fa[other], lo, hi)}")
    return dict(ours="; ".join(parts), **_verdict(orders, "the difference to the runner-up"))


def claim_sa_half(rs: Resampler, *, k: float) -> dict[str, str]:
    """Every run: over Saliency's pairs, mean SA / mean FA at k lies in 0.5 +- HALF_BAND."""
    parts, orders = [], []
    sal = attribution.LABELS["saliency"]
    for run in _runs(rs):
        fa, fboot = rs.means(run, "FA", k)
        sa, sboot = rs.means(run, "SA", k)
        cols = [i for i, p in enumerate(fa.index) if sal in p.split(" - ")]
        ratio = sa.iloc[cols].sum() / fa.iloc[cols].sum()
        lo, hi = _interval(sboot[:, cols].sum(1) / fboot[:, cols].sum(1))
        inside = lo >= 0.5 - HALF_BAND and hi <= 0.5 + HALF_BAND
        outside = hi < 0.5 - HALF_BAND or lo > 0.5 + HALF_BAND
        orders.append(1 if inside else -1 if outside else 0)
        parts.append(f"{run} {_fmt(ratio, lo, hi)}")
    return dict(ours="SA/FA of Saliency's pairs: " + "; ".join(parts),
                **_verdict(orders, f"SA/FA and the band 0.5 +- {HALF_BAND}"))


def claim_occlusion_ssim(rs: Resampler) -> dict[str, str]:
    """Every run: the mean SSIM of Occlusion's pairs is below that of the other pairs."""
    parts, orders = [], []
    occ = attribution.LABELS["occlusion"]
    for run in _runs(rs):
        m, boot = rs.means(run, "SSIM")
        is_occ = np.array([occ in p.split(" - ") for p in m.index])
        diff = np.nanmean(boot[:, ~is_occ], 1) - np.nanmean(boot[:, is_occ], 1)
        lo, hi = _interval(diff)
        orders.append(_above(lo, hi, 0.0))
        parts.append(f"{run}: Occlusion {m[is_occ].mean():.2f}, others {m[~is_occ].mean():.2f}, "
                     f"difference {_fmt(m[~is_occ].mean() - m[is_occ].mean(), lo, hi)}")
    return dict(ours="; ".join(parts), **_verdict(orders, "the SSIM difference"))


def claim_fa_rises(rs: Resampler, *, ks: Sequence[float]) -> dict[str, str]:
    """Every run: the mean FA over pairs rises from each k of the grid to the next; also its excess over
    the chance level k (two unrelated maps share k of their top-k share)."""
    parts, orders = [], []
    for run in _runs(rs):
        reps = [rs.means(run, "FA", k) for k in ks]
        for (_, b0), (_, b1) in zip(reps, reps[1:], strict=False):
            lo, hi = _interval(b1.mean(1) - b0.mean(1))
            orders.append(_above(lo, hi, 0.0))
        parts.append(f"{run}: " + ", ".join(f"{k:.0%} {m.mean():.2f} (chance {k:.2f})" for k, (m, _) in zip(ks, reps,
                                                                                                       strict=True)))
    return dict(ours="; ".join(parts), **_verdict(orders, "a rise in mean FA"))


def box_gaps(rs: Resampler, *, k: float) -> pd.DataFrame:
    """Per task, two black boxes (the first minus the second, in run order) and metric (FA and SA at k, RC,
    SSIM): the difference of the mean agreement over all pairs, with its 95% interval (paired: the same
    images).  Columns task, first, second, metric, difference, low, high."""
    rows = []
    for task, runs in runs_by_task(rs.values).items():
        metrics_here = set(rs.values.loc[rs.values["task"] == task, "metric"])
        for b1, b2 in combinations(runs, 2):
            for metric in (m for m in METRICS if m in metrics_here):
                kk = k if metric in ("FA", "SA") else None
                (m1, r1), (m2, r2) = rs.means(runs[b1], metric, kk), rs.means(runs[b2], metric, kk)
                lo, hi = _interval(np.nanmean(r1, 1) - np.nanmean(r2, 1))
                rows.append(dict(task=task, first=b1, second=b2, metric=metric, difference=m1.mean() - m2.mean(),
                                 low=lo, high=hi))
    return pd.DataFrame(rows, columns=["task", "first", "second", "metric", "difference", "low", "high"])


def claim_resnet_more(rs: Resampler, *, k: float, boxes: tuple[str, str] = ("Inception", "ResNet")) -> dict[str, str]:
    """Every task and metric: the mean agreement over pairs is higher for Inception than for ResNet (paired
    over the same images)."""
    gaps = box_gaps(rs, k=k)
    parts, orders = [], []
    for g in gaps.itertuples():
        if {g.first, g.second} != set(boxes):
            continue
        sign = 1 if g.first == boxes[0] else -1
        lo, hi = sorted((sign * g.low, sign * g.high))
        orders.append(_above(lo, hi, 0.0))
        parts.append(f"{g.task} {g.metric} {_fmt(sign * g.difference, lo, hi)}")
    if not orders:
        return dict(ours="", verdict="not testable here", why=f"needs the black boxes {boxes} on one task")
    return dict(ours=f"{boxes[0]} minus {boxes[1]}: " + "; ".join(parts),
                **_verdict(orders, "a difference between the black boxes"))


def _correlation_claim(rs: Resampler, comparisons: list[tuple[str, tuple, tuple]], bound: float,
                       what: str) -> dict[str, str]:
    parts, orders = [], []
    for label, (r1, m1, k1), (r2, m2, k2) in comparisons:
        (a, ab), (b, bb) = rs.means(r1, m1, k1), rs.means(r2, m2, k2)
        common = [p for p in a.index if p in b.index]
        ai, bi = [list(a.index).index(p) for p in common], [list(b.index).index(p) for p in common]
        rho = float(_spearman_rows(a[common].to_numpy(), b[common].to_numpy()))
        lo, hi = _interval(_spearman_rows(ab[:, ai], bb[:, bi]))
        orders.append(_above(lo, hi, bound))
        parts.append(f"{label} {_fmt(rho, lo, hi)}")
    return dict(ours="Spearman over pairs: " + "; ".join(parts), **_verdict(orders, what))


def claim_ranking_stable(rs: Resampler, *, k: float) -> dict[str, str]:
    """The ranking of the pairs agrees (Spearman over pairs > STABLE) between metrics within a run (FA@k vs
    RC, where the task has masks) and between the tasks for the same black box (FA@k); SSIM is left out, as
    the thesis excepts it."""
    tasks = runs_by_task(rs.values)
    comps = [(f"{run} FA~RC", (run, "FA", k), (run, "RC", None)) for runs in tasks.values() for run in runs.values()
             if (rs.values.loc[rs.values["run"] == run, "metric"] == "RC").any()]
    names = list(tasks)
    for box in dict.fromkeys(b for runs in tasks.values() for b in runs):
        with_box = [t for t in names if box in tasks[t]]
        comps += [(f"{box} {t1}~{t2} FA", (tasks[t1][box], "FA", k), (tasks[t2][box], "FA", k))
                  for i, t1 in enumerate(with_box) for t2 in with_box[i + 1:]]
    return _correlation_claim(rs, comps, STABLE, f"a rank correlation and {STABLE}")


def claim_sa_redundant(rs: Resampler, *, k: float) -> dict[str, str]:
    """Every run: SA@k orders the pairs as FA@k does (Spearman over pairs > REDUNDANT)."""
    comps = [(run, (run, "FA", k), (run, "SA", k)) for run in _runs(rs)]
    return _correlation_claim(rs, comps, REDUNDANT, f"the SA~FA rank correlation and {REDUNDANT}")


def claim_box_over_task(rs: Resampler, *, k: float) -> dict[str, str]:
    """The pair-mean FA@k vectors correlate more across tasks (same black box) than across black boxes (same
    task): mean Spearman over the first minus over the second, above 0."""
    tasks = runs_by_task(rs.values)
    names = list(tasks)
    boxes = sorted(set.intersection(*(set(runs) for runs in tasks.values())))
    if len(names) < 2 or len(boxes) < 2:
        return dict(ours=", ".join(f"{t}: {', '.join(r)}" for t, r in tasks.items()), verdict="not testable here",
                    why="needs the same two black boxes on two tasks")
    reps = {run: rs.means(run, "FA", k) for runs in tasks.values() for run in runs.values()}

    def rho(r1: str, r2: str) -> tuple[float, np.ndarray]:
        (a, ab), (b, bb) = reps[r1], reps[r2]
        return float(_spearman_rows(a.to_numpy(), b.to_numpy())), _spearman_rows(ab, bb)

    across_tasks = [rho(tasks[t1][b], tasks[t2][b]) for b in boxes for i, t1 in enumerate(names) for t2 in names[i + 1:]]
    across_boxes = [rho(tasks[t][b1], tasks[t][b2]) for t in names for i, b1 in enumerate(boxes) for b2 in boxes[i + 1:]]
    r_tasks, r_boxes = float(np.mean([r for r, _ in across_tasks])), float(np.mean([r for r, _ in across_boxes]))
    lo, hi = _interval(np.mean([b for _, b in across_tasks], 0) - np.mean([b for _, b in across_boxes], 0))
    ours = (f"mean Spearman across tasks {r_tasks:.2f}, across black boxes {r_boxes:.2f}, difference "
            f"{_fmt(r_tasks - r_boxes, lo, hi)}")
    return dict(ours=ours, **_verdict([_above(lo, hi, 0.0)], "the difference"))
