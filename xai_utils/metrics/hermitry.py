"""Hermitry ratio: the share of perturbed samples that are OOD for a class (hermitry paper, sec. 3.1).

Encodings are a model's features before the classification layer (``model.features``).  Class-
conditional, as in the paper: fit on the *training* encodings of one class, take the threshold T
from the Mahalanobis distances of that class's unperturbed *validation* encodings
(T = the n-th smallest distance, n = floor(q * I_Y), q = 0.95), and report the share of perturbed
encodings with distance > T.  The distance is sqrt((mu - h)^T S^-1 (mu - h)) (Lee et al.,
arXiv:1807.03888); S is the Ledoit-Wolf shrinkage estimate by default (sklearn ``LedoitWolf``),
invertible even when encodings have more dimensions than a class has images.  The empirical
covariance (``estimator="empirical"``) is singular then, and its pseudo-inverse ignores every
direction the class does not vary in (with n <= D every training distance is sqrt(n - 1)): such
a fit warns.  The paper's "normalised" distances only rescale the plots; the ratio does not
depend on a common scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from .arrays import as_numpy

ESTIMATORS = {"empirical": EmpiricalCovariance, "ledoitwolf": LedoitWolf}
#: Largest condition number of a fitted covariance accepted without a warning.
MAX_CONDITION = 1e10


def _features(values: ArrayLike, name: str, dim: int | None = None) -> np.ndarray:
    arr = as_numpy(values, np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be (N, D) encodings with N >= 1, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} features, the fit has {dim}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf values")
    return arr


@dataclass(frozen=True, eq=False)
class HermitryFit:
    """Location (D,), precision (D, D) and hermitry threshold of one class's encodings."""

    location: np.ndarray
    precision: np.ndarray
    threshold: float
    q: float
    estimator: str

    def distance(self, features: ArrayLike) -> np.ndarray:
        """Mahalanobis distances (N,) of encodings (N, D) to the fitted class distribution."""
        return _distance(self.location, self.precision, features)


def _distance(location: np.ndarray, precision: np.ndarray, features: ArrayLike) -> np.ndarray:
    x = _features(features, "features", len(location)) - location
    return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", x, precision, x), 0.0))


def order_statistic_threshold(distances: ArrayLike, q: float = 0.95) -> float:
    """The paper's T: the n-th smallest distance, n = floor(q * I) (1-based; at least the smallest)."""
    d = np.sort(np.asarray(distances, dtype=np.float64).ravel())
    if d.size == 0:
        raise ValueError("no distances to take a threshold from")
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1], got {q}")
    return float(d[max(int(np.floor(q * d.size)), 1) - 1])


def null_ratio(n: int, q: float = 0.95) -> float:
    """H of the n unperturbed threshold images themselves: (n - floor(q n)) / n, since T is the
    floor(q n)-th smallest of their distances (the paper's 50 images: 3/50 = 0.06)."""
    if n < 1:
        raise ValueError(f"need at least one image, got {n}")
    return (n - max(int(np.floor(q * n)), 1)) / n


def _check_conditioning(covariance: np.ndarray, x: np.ndarray, estimator: str) -> None:
    """Raise for a zero covariance; warn when it is singular or ill-conditioned (> ``MAX_CONDITION``)."""
    eig = np.linalg.eigvalsh(covariance)
    if eig[-1] <= 0:
        raise ValueError("train_features are identical (zero covariance): no distance can be measured")
    cond = eig[-1] / eig[0] if eig[0] > 0 else np.inf
    if cond <= MAX_CONDITION:
        return
    n, d = x.shape
    constant = np.flatnonzero(np.ptp(x, axis=0) == 0)
    why = [f"n = {n} <= D = {d}"] if n <= d else []
    if constant.size:
        why.append(f"{constant.size} zero-variance features, e.g. {constant[:5].tolist()}")
    fix = "; use estimator='ledoitwolf'" if estimator != "ledoitwolf" else ""
    warnings.warn(
        f"the {estimator} covariance of train_features is singular or ill-conditioned (condition "
        f"number {cond:.3g}{': ' + ', '.join(why) if why else ''}); its pseudo-inverse ignores "
        f"directions the class does not vary in, so encodings far away along them can look typical{fix}",
        RuntimeWarning,
        stacklevel=3,
    )


def fit_hermitry(
    train_features: ArrayLike,
    val_features: ArrayLike | None = None,
    *,
    q: float = 0.95,
    estimator: str = "ledoitwolf",
) -> HermitryFit:
    """Fit a class's encoding distribution and its hermitry threshold.

    train_features : (I_X, D) training encodings of one class; val_features : (I_Y, D) unperturbed
    validation encodings of the same class (the paper's threshold source; when None the training
    distances are used, which gives a smaller, optimistic T).  estimator : "ledoitwolf" (default,
    shrinkage: well-conditioned) | "empirical" (maximum likelihood; pseudo-inverted, so a singular
    or ill-conditioned estimate, e.g. I_X <= D or a constant feature, warns).  Identical training
    encodings raise.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {sorted(ESTIMATORS)}")
    x = _features(train_features, "train_features")
    if len(x) < 2:
        raise ValueError("need at least 2 training encodings to estimate a covariance")
    cov = ESTIMATORS[estimator]().fit(x)
    _check_conditioning(cov.covariance_, x, estimator)
    location, precision = cov.location_, cov.get_precision()
    ref = x if val_features is None else _features(val_features, "val_features", x.shape[1])
    threshold = order_statistic_threshold(_distance(location, precision, ref), q)
    return HermitryFit(location=location, precision=precision, threshold=threshold, q=q, estimator=estimator)


def hermitry_ratio(fit: HermitryFit, perturbed_features: ArrayLike) -> float:
    """H = I_H / I_Y: the share of perturbed encodings (N, D) with distance > the fitted threshold."""
    return float(np.mean(fit.distance(perturbed_features) > fit.threshold))
