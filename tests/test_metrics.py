"""Tests of xai_utils.metrics: OOD metrics, statistics, map agreement, hermitry ratio."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity
from sklearn.covariance import LedoitWolf
from sklearn.metrics import average_precision_score, roc_auc_score

from xai_utils import metrics
from xai_utils.metrics import hermitry

RNG = np.random.default_rng(0)
ID, OOD = RNG.normal(1.0, 1.0, 200), RNG.normal(0.0, 1.5, 150)


# -------------------------------------------------------------------------------------------- OOD


def test_auroc_and_aupr_equal_sklearn():
    y = np.r_[np.ones(len(ID)), np.zeros(len(OOD))]
    s = np.r_[ID, OOD]
    assert metrics.auroc(ID, OOD) == pytest.approx(roc_auc_score(y, s))
    assert metrics.aupr_in(ID, OOD) == pytest.approx(average_precision_score(y, s))
    assert metrics.aupr_out(ID, OOD) == pytest.approx(average_precision_score(1 - y, -s))
    assert metrics.auroc(torch.from_numpy(ID), torch.from_numpy(OOD)) == metrics.auroc(ID, OOD)


def test_auroc_equals_sklearn_with_ties():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1, 1, 37).round(1), rng.normal(0, 1, 23).round(1)  # rounding makes ties
    y = np.r_[np.ones(len(a)), np.zeros(len(b))]
    assert metrics.auroc(a, b) == pytest.approx(roc_auc_score(y, np.r_[a, b]), abs=1e-12)
    assert metrics.auroc(np.ones(3), np.ones(4)) == 0.5


def test_auroc_hand_cases():
    assert metrics.auroc([3, 4], [1, 2]) == 1.0
    assert metrics.auroc([1, 2], [3, 4]) == 0.0
    assert metrics.auroc([1, 1], [1, 1]) == 0.5
    assert metrics.auroc([1, 3], [2]) == 0.5


def test_fpr_at_tpr_hand_case():
    id_scores = np.arange(1, 21, dtype=float)  # 95 % of ID kept by the threshold t = 2
    ood_scores = np.array([0.5, 1.5, 2.0, 2.5, 30.0])  # 3 of 5 are >= 2
    assert metrics.fpr_at_tpr(id_scores, ood_scores) == pytest.approx(0.6)
    assert metrics.fpr_at_tpr(id_scores, ood_scores, tpr=1.0) == pytest.approx(0.8)  # t = 1
    assert metrics.fpr_at_tpr(id_scores, ood_scores - 100) == 0.0


def test_fpr_at_tpr_matches_the_threshold_definition():
    fpr = metrics.fpr_at_tpr(ID, OOD)
    t = np.sort(ID)[::-1][int(np.ceil(0.95 * len(ID))) - 1]  # largest t keeping >= 95 % of ID
    assert np.mean(ID >= t) >= 0.95
    assert fpr == pytest.approx(np.mean(OOD >= t))


def test_ood_metrics_dataclass_and_validation():
    m = metrics.ood_metrics(ID, OOD)
    assert m.auroc == metrics.auroc(ID, OOD) and m.fpr_at_tpr == metrics.fpr_at_tpr(ID, OOD)
    assert m.as_dict(percent=True)["fpr@95tpr"] == pytest.approx(100 * m.fpr_at_tpr)
    with pytest.raises(ValueError, match="NaN"):
        metrics.auroc([1.0, np.nan], [0.0])
    with pytest.raises(ValueError, match="1-D"):
        metrics.auroc(np.ones((2, 2)), [0.0])
    with pytest.raises(ValueError, match="empty"):
        metrics.auroc([], [0.0])
    with pytest.raises(ValueError, match="tpr"):
        metrics.fpr_at_tpr(ID, OOD, tpr=0.0)


# ------------------------------------------------------------------------------------------ stats


def test_bootstrap_is_seeded_and_resamples_with_replacement():
    x = np.arange(10.0)
    a = metrics.bootstrap(np.mean, x, n=10, seed=3)
    assert a.shape == (10,) and np.array_equal(a, metrics.bootstrap(np.mean, x, n=10, seed=3))
    assert not np.array_equal(a, metrics.bootstrap(np.mean, x, n=10, seed=4))
    assert np.allclose(metrics.bootstrap(np.mean, np.full(7, 2.5), n=5), 2.5)
    # same seed and lengths -> same indices: scores of the same samples are paired
    np.testing.assert_allclose(metrics.bootstrap(np.mean, x + 1, n=10, seed=3), a + 1)
    # each array is resampled on its own
    both = metrics.bootstrap(lambda u, v: u.mean() - v.mean(), x, x, n=20, seed=0)
    assert np.any(both != 0)
    paired = metrics.bootstrap(lambda u, v: u.mean() - v.mean(), x, x, n=20, seed=0, paired=True)
    assert np.all(paired == 0)
    # with replacement: some resample repeats a value
    assert np.any(metrics.bootstrap(lambda u: len(np.unique(u)), x, n=10) < 10)


def test_bootstrap_auroc_and_errors():
    b = metrics.bootstrap(metrics.auroc, ID, OOD, n=10)
    assert b.shape == (10,) and abs(b.mean() - metrics.auroc(ID, OOD)) < 0.05
    with pytest.raises(ValueError, match="paired"):
        metrics.bootstrap(np.mean, ID, OOD, paired=True)
    with pytest.raises(ValueError, match="non-finite"):
        metrics.bootstrap(lambda u: np.nan, ID)


def test_wilcoxon_vs_baseline_with_bonferroni():
    base = np.linspace(0.80, 0.90, 10)
    samples = {
        "mls": base,
        "better": base + np.linspace(0.001, 0.01, 10),
        "worse": base - 0.01,
        "same": base.copy(),
    }
    table = metrics.wilcoxon_vs_baseline(samples, "mls")
    assert list(table.index) == ["better", "worse", "same"]
    assert table.loc["better", "p"] == pytest.approx(2.0**-10)  # exact one-sided, all 10 differences positive
    assert table.loc["better", "p_corrected"] == pytest.approx(3 * 2.0**-10)
    assert table.loc["better", "stars"] == "**"
    assert table.loc["worse", "p"] == pytest.approx(1.0) and table.loc["worse", "stars"] == ""
    assert table.loc["same", "p"] == 1.0
    assert table.loc["better", "diff"] == pytest.approx(np.mean(np.linspace(0.001, 0.01, 10)))
    ref = stats.wilcoxon(samples["better"], base, alternative="greater")
    assert table.loc["better", "statistic"] == pytest.approx(ref.statistic)
    none = metrics.wilcoxon_vs_baseline(samples, "mls", correction="none")
    assert none.loc["better", "p_corrected"] == none.loc["better", "p"]


def test_wilcoxon_errors_and_holm():
    with pytest.raises(ValueError, match="baseline"):
        metrics.wilcoxon_vs_baseline({"a": [1, 2]}, "b")
    with pytest.raises(ValueError, match="paired"):
        metrics.wilcoxon_vs_baseline({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]}, "a")
    with pytest.raises(ValueError, match="correction"):
        metrics.wilcoxon_vs_baseline({"a": [1.0, 2.0], "b": [2.0, 3.0]}, "a", correction="sidak")
    p = np.array([0.01, 0.04, 0.03])
    np.testing.assert_allclose(metrics.stats._correct(p, "holm"), [0.03, 0.06, 0.06])


def test_stars_thresholds():
    assert [metrics.stars(p) for p in (0.0005, 0.005, 0.03, 0.2)] == ["***", "**", "*", ""]


def test_mean_ci_equals_scipy_t_interval():
    x = RNG.normal(3, 2, 12)
    ci = metrics.mean_ci(x, confidence=0.9)
    lo, hi = stats.t.interval(0.9, df=11, loc=x.mean(), scale=stats.sem(x))
    assert (ci.mean, ci.n) == (pytest.approx(x.mean()), 12)
    assert ci.low == pytest.approx(lo) and ci.high == pytest.approx(hi)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.mean_ci([1.0])


# -------------------------------------------------------------------------------------- agreement

A = RNG.normal(size=(4, 12, 12))
B = A + 0.5 * RNG.normal(size=(4, 12, 12))


def test_ssim_maps_equals_per_sample_skimage():
    got = metrics.ssim_maps(A, B)
    ref = []
    for a, b in zip(np.abs(A), np.abs(B), strict=True):
        na, nb = (a - a.min()) / np.ptp(a), (b - b.min()) / np.ptp(b)
        ref.append(structural_similarity(na, nb, data_range=1.0))
    np.testing.assert_allclose(got, ref)
    assert got.shape == (4,)


def test_ssim_maps_properties():
    np.testing.assert_allclose(metrics.ssim_maps(A, A), 1.0)
    np.testing.assert_allclose(metrics.ssim_maps(A, -3 * A), 1.0)  # magnitudes, min-max normalised
    with pytest.raises(ValueError, match="constant"):
        metrics.ssim_maps(np.ones((1, 8, 8)), A[:1, :8, :8])
    with pytest.raises(ValueError, match="window"):
        metrics.ssim_maps(A[:, :5, :5], B[:, :5, :5])
    with pytest.raises(ValueError, match="shape"):
        metrics.ssim_maps(A, B[:, :10])


def test_topk_agreement_hand_case():
    a = np.array([[[5.0, -4.0], [0.1, 0.2]]])
    b = np.array([[[3.0, 0.0], [-7.0, 0.1]]])
    # top-2 by |.|: a -> {(0,0),(0,1)}, b -> {(0,0),(1,0)}: one shared pixel, of the same sign
    assert metrics.topk_feature_agreement(a, b, 2)[0] == 0.5
    assert metrics.topk_sign_agreement(a, b, 2)[0] == 0.5
    assert metrics.topk_sign_agreement(a, -b, 2)[0] == 0.0
    assert metrics.topk_feature_agreement(a, -b, 2)[0] == 0.5  # magnitudes only
    assert metrics.topk_feature_agreement(a, b, 4)[0] == 1.0
    assert metrics.topk_feature_agreement(a, b, 0.5)[0] == 0.5  # fraction of the 4 pixels
    assert metrics.topk_indices(b, 2).tolist() == [[2, 0]]  # flat indices, largest magnitude first
    assert metrics.topk_indices(np.zeros((1, 2, 2)), 0.5).tolist() == [[0, 1]]  # ties: the lower index
    with pytest.raises(ValueError, match="k"):
        metrics.topk_feature_agreement(a, b, 5)


def test_topk_agreement_properties():
    np.testing.assert_allclose(metrics.topk_feature_agreement(A, A, 0.1), 1.0)
    np.testing.assert_allclose(metrics.topk_sign_agreement(A, A, 0.1), 1.0)
    fa, sa = metrics.topk_feature_agreement(A, B, 0.1), metrics.topk_sign_agreement(A, B, 0.1)
    assert fa.shape == (4,) and np.all(sa <= fa)



def test_topk_agreements_of_all_pairs_count_the_shared_top_pixels():
    maps = {"x": A, "y": B, "z": -A + 0.5 * B}
    got = metrics.topk_agreements(maps, 14)
    assert list(got) == [("x", "y"), ("x", "z"), ("y", "z")]
    for (a, b), (fa, sa) in got.items():
        for i in range(len(A)):  # by hand: sets of the 14 largest magnitudes, shared pixels of one sign
            fx, fy = maps[a][i].ravel(), maps[b][i].ravel()
            top = set(np.argsort(-np.abs(fx))[:14]) & set(np.argsort(-np.abs(fy))[:14])
            assert fa[i] == len(top) / 14
            assert sa[i] == sum(fx[j] * fy[j] > 0 for j in top) / 14
    with pytest.raises(ValueError, match="shape"):
        metrics.topk_agreements({"x": A, "y": B[:, :10]}, 0.1)
    with pytest.raises(ValueError, match="shape"):  # as many pixels, another layout
        metrics.topk_agreements({"x": A, "y": B.reshape(len(B), 16, 9)}, 0.1)
    with pytest.raises(ValueError, match="y contains NaN"):
        metrics.topk_agreements({"x": A, "y": np.full_like(B, np.nan)}, 0.1)

def test_rank_correlation_equals_scipy_spearman():
    got = metrics.rank_correlation(A, B)
    np.testing.assert_allclose(
        got, [stats.spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(A, B, strict=True)]
    )
    mask = RNG.random((4, 12, 12)) > 0.5
    got = metrics.rank_correlation(A, B, mask)
    ref = [stats.spearmanr(a[m], b[m]).statistic for a, b, m in zip(A, B, mask, strict=True)]
    np.testing.assert_allclose(got, ref)
    np.testing.assert_allclose(metrics.rank_correlation(A, np.abs(A), absolute=True), 1.0)
    with pytest.raises(ValueError, match="constant"):
        metrics.rank_correlation(np.ones((1, 3, 3)), A[:1, :3, :3])


def test_pairwise_matrix():
    maps = {"x": A, "y": B, "z": -A}
    table = metrics.pairwise(maps, metrics.topk_feature_agreement, k=0.1)
    assert isinstance(table, pd.DataFrame) and list(table.columns) == ["x", "y", "z"]
    np.testing.assert_allclose(np.diag(table.to_numpy()), 1.0)
    np.testing.assert_allclose(table.to_numpy(), table.to_numpy().T)
    assert table.loc["x", "z"] == 1.0
    assert metrics.pairwise(maps, metrics.topk_sign_agreement, k=0.1).loc["x", "z"] == 0.0
    assert table.loc["x", "y"] == pytest.approx(metrics.topk_feature_agreement(A, B, 0.1).mean())


# --------------------------------------------------------------------------------------- hermitry


def test_mahalanobis_distance_closed_form():
    train = RNG.normal(size=(300, 4)) @ RNG.normal(size=(4, 4))
    cov = np.cov(train, rowvar=False, bias=True)  # EmpiricalCovariance: maximum likelihood
    shrink = LedoitWolf().fit(train).shrinkage_
    lw = (1 - shrink) * cov + shrink * np.trace(cov) / 4 * np.eye(4)  # the default: Ledoit-Wolf
    z = RNG.normal(size=(5, 4))
    diff = z - train.mean(0)
    for est, s in (("empirical", cov), ("ledoitwolf", lw)):
        np.testing.assert_allclose(
            metrics.fit_hermitry(train, estimator=est).distance(z),
            np.sqrt(np.einsum("nd,de,ne->n", diff, np.linalg.inv(s), diff)),
        )
    assert metrics.fit_hermitry(train).estimator == "ledoitwolf"


def test_threshold_is_the_papers_order_statistic():
    d = RNG.permutation(np.arange(1.0, 101.0))
    assert hermitry.order_statistic_threshold(d, 0.95) == 95.0  # n = floor(0.95 * 100) = 95th smallest
    assert np.mean(d > 95.0) == 0.05
    assert hermitry.order_statistic_threshold([3.0], 0.95) == 3.0


def test_hermitry_ratio_separates_shifted_samples():
    train, val = RNG.normal(size=(400, 3)), RNG.normal(size=(200, 3))
    fit = metrics.fit_hermitry(train, val, q=0.95)
    assert np.mean(fit.distance(val) > fit.threshold) == pytest.approx(0.05, abs=0.006)
    assert metrics.hermitry_ratio(fit, val) == pytest.approx(0.05, abs=0.006)
    assert metrics.hermitry_ratio(fit, RNG.normal(size=(100, 3)) + 6.0) == 1.0
    assert metrics.hermitry_ratio(fit, RNG.normal(size=(500, 3))) < 0.12


def test_hermitry_more_dimensions_than_samples_and_errors():
    train = RNG.normal(size=(20, 50))
    with pytest.warns(RuntimeWarning, match=r"empirical covariance.*n = 20 <= D = 50.*ledoitwolf"):
        fit = metrics.fit_hermitry(train, RNG.normal(size=(20, 50)), estimator="empirical")
    np.testing.assert_allclose(fit.distance(train), np.sqrt(19), rtol=1e-6)  # degenerate: all sqrt(n - 1)
    fit = metrics.fit_hermitry(train, RNG.normal(size=(20, 50)))
    assert np.isfinite(fit.threshold) and np.all(np.isfinite(fit.distance(train)))
    assert np.ptp(fit.distance(train)) > 0.1
    with pytest.raises(ValueError, match="features"):
        metrics.hermitry_ratio(fit, RNG.normal(size=(3, 49)))
    with pytest.raises(ValueError, match="estimator"):
        metrics.fit_hermitry(train, estimator="mcd")
    with pytest.raises(ValueError, match="NaN"):
        metrics.fit_hermitry(np.full((3, 2), np.nan))


def test_percentile_interval():
    from xai_utils.metrics import percentile_interval

    lo, hi = percentile_interval(np.arange(1001.0))
    assert (lo, hi) == pytest.approx((25.0, 975.0))
    with pytest.raises(ValueError, match="NaN"):
        percentile_interval(np.array([1.0, np.nan]))
