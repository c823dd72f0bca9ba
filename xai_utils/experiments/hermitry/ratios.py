"""Hermitry ratios of the captured perturbations: per (run, class) a Mahalanobis fit on X's encodings, the
threshold T from Y's (the paper's 47th smallest of 50), and per method the pooled share of perturbed
encodings beyond T with a 95% bootstrap interval over Y images (ours), beside the reference sets."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ... import metrics
from .perturb import METHODS, encode
from .runs import HermitryRun


@dataclass(frozen=True, eq=False)
class Hermitry:
    """table: one row per (run, class, method) with images, samples, hermits, H, low, high (95%) and the
    median per-image H; references: one row per (run, class, set) with images and H; thresholds: per
    (run, class) T and T normalised (ours: T over the largest distance of the class's Y and perturbed
    samples); distances: (run, class, "Y" | method | reference set) -> distances, for the density figures;
    per_image: (run, class, method) -> (hermits, samples) per Y image, for pooled intervals."""

    table: pd.DataFrame
    references: pd.DataFrame
    thresholds: pd.DataFrame
    distances: dict[tuple[str, str, str], np.ndarray]
    per_image: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]
    estimator: str


def pooled_interval(hits: np.ndarray, counts: np.ndarray, *, n_boot: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of sum(hits) / sum(counts) over bootstrap resamples of the images."""
    reps = metrics.bootstrap(lambda h, c: h.sum() / c.sum(), hits, counts, n=n_boot, seed=seed, paired=True)
    return metrics.percentile_interval(reps)


#: The reference-set names of X and Y in :attr:`Hermitry.references` and :attr:`Hermitry.distances`.
TRAIN, VAL = "train (X)", "val (Y, unperturbed)"


def _fit(train: np.ndarray, val: np.ndarray, estimator: str, q: float) -> tuple[metrics.HermitryFit, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        fit = metrics.fit_hermitry(train, val, q=q, estimator=estimator)
    return fit, [str(w.message) for w in caught]


def hermitry(runs: Mapping[str, HermitryRun], captures: Mapping[tuple[str, str, str], Mapping[str, np.ndarray]],
             *, estimator: str, q: float, n_boot: int, seed: int) -> Hermitry:
    """Fit every (run, class) with ``estimator`` and score the captures (:func:`.perturb.capture_all`) and the
    reference sets (X itself = "train", Y = "val", then the run's references)."""
    rows, refs, thr, dists, per_image = [], [], [], {}, {}
    for rname, run in runs.items():
        shared = {k: encode(run.model, x) for k, x in run.references.items()}  # encoded once per run
        for cls in run.classes:
            encoded = {TRAIN: encode(run.model, run.train[cls]), VAL: encode(run.model, run.val[cls]), **shared}
            fit, warned = _fit(encoded[TRAIN], encoded[VAL], estimator, q)
            d_val = fit.distance(encoded[VAL])
            dists[(rname, cls, "Y")] = d_val
            largest = d_val.max()
            for method in METHODS:
                got = captures.get((rname, cls, method))
                if got is None:
                    continue
                d = fit.distance(got["encodings"])
                dists[(rname, cls, method)] = d
                largest = max(largest, d.max())
                n_img = int(got["image"].max()) + 1
                counts = np.bincount(got["image"], minlength=n_img)
                hits = np.bincount(got["image"], weights=d > fit.threshold, minlength=n_img)
                per_image[(rname, cls, method)] = (hits, counts)
                low, high = pooled_interval(hits, counts, n_boot=n_boot, seed=seed)
                rows.append({"run": rname, "class": cls, "method": method, "images": n_img, "samples": len(d),
                             "hermits": int(hits.sum()), "H": float(hits.sum() / len(d)), "low": low, "high": high,
                             "per-image H (median)": float(np.median(hits / np.maximum(counts, 1)))})
            for sname, enc in encoded.items():
                d = fit.distance(enc)
                dists[(rname, cls, sname)] = d
                refs.append({"run": rname, "class": cls, "set": sname, "images": len(d),
                             "H": float(np.mean(d > fit.threshold))})
            thr.append({"run": rname, "class": cls, "T": fit.threshold, "T normalised (ours)": fit.threshold / largest,
                        "largest distance": largest, "fit warning": "; ".join(warned)})
    return Hermitry(pd.DataFrame(rows), pd.DataFrame(refs), pd.DataFrame(thr), dists, per_image, estimator)


def pooled(h: Hermitry, run: str, method: str, *, n_boot: int, seed: int) -> tuple[float, float, float]:
    """A method's H over all classes of a run (all its perturbed samples pooled) and its 95% interval over
    the Y images: (H, low, high)."""
    parts = [v for (r, _, m), v in h.per_image.items() if r == run and m == method]
    if not parts:
        raise ValueError(f"no captures of {method!r} in run {run!r}")
    hits, counts = (np.concatenate(p) for p in zip(*parts, strict=True))
    return (float(hits.sum() / counts.sum()), *pooled_interval(hits, counts, n_boot=n_boot, seed=seed))


def model_mean(h: Hermitry, run: str, *, n_boot: int, seed: int) -> tuple[float, float, float]:
    """The paper's model mean: the mean H over a run's (class, method) cases, with a 95% interval from
    resampling each case's Y images on its own: (mean, low, high)."""
    parts = [v for (r, _, _), v in h.per_image.items() if r == run]
    if not parts:
        raise ValueError(f"no captures of run {run!r}")
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        vals = []
        for hits, counts in parts:
            idx = rng.integers(0, len(hits), len(hits))
            vals.append(hits[idx].sum() / counts[idx].sum())
        reps[b] = np.mean(vals)
    point = float(np.mean([hits.sum() / counts.sum() for hits, counts in parts]))
    return (point, *metrics.percentile_interval(reps))
