"""Tests of the five-band score (synthetic_cells paper): schedules, channel adjustment, bands, counts."""

from __future__ import annotations

import numpy as np
import pytest

from xai_utils.metrics import fiveband as fb

T0 = np.array([[-0.5, -0.3, 0.3, 0.5]])

# ground truth and an already-adjusted heatmap (max |h| = 1), one pixel per case, t = T0
GT = np.array([[0.9, 0.9, 0.4, 0.4], [0.4, 0.4, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.9, 0.4, 0.0, 0.0]])
H = np.array(
    [
        [1.0, 0.4, 0.4, 0.0],  # TP(2)   wrong band(1 vs 2)  TP(1)   FN
        [0.9, -0.4, 0.6, -0.9],  # wrong(2 vs 1)  wrong(-1 vs 1)  FP bg(2)  FP bg(-2)
        [0.0, 0.1, -0.2, 0.35],  # TN  TN  TN  FP bg(1)
        [0.0, 0.0, 0.0, 0.0],
    ]
)  # FN  FN  TN  TN


def test_soft_threshold_schedule():
    t = fb.soft_thresholds()
    assert t.shape == (56, 4)
    np.testing.assert_allclose(t[0], [-0.5, -0.3, 0.3, 0.5])
    np.testing.assert_allclose(t[-1], [-0.225, -0.025, 0.025, 0.225])  # the paper's t_55 (Fig. 6)
    np.testing.assert_allclose(np.diff(t, axis=0), np.tile([0.005, 0.005, -0.005, -0.005], (55, 1)))
    c = fb.clamped_thresholds()
    assert c.shape == (41, 4)
    np.testing.assert_allclose(c[0], [-0.9, -0.5, 0.5, 0.9])
    np.testing.assert_allclose(c[-1], [-0.5, -0.1, 0.1, 0.5])
    with pytest.raises(ValueError, match="ordered"):
        fb.soft_thresholds(m_max=70)  # t1 would pass t2


def test_channel_adjustment_hand_case():
    h = np.zeros((1, 3, 1, 2))
    h[0, :, 0, 0] = [4.0, -2.0, 2.0]  # / 4 -> [1, -.5, .5] -> sum 1
    h[0, :, 0, 1] = [-1.0, -1.0, 0.0]  # / 4 -> [-.25, -.25, 0] -> sum -.5
    np.testing.assert_allclose(fb.channel_adjust(h), [[[1.0, -0.5]]])
    # clamping after the first normalisation: [.1, -.1, .1] and [-.1, -.1, 0] -> sums .1 and -.2 -> / .2
    np.testing.assert_allclose(fb.channel_adjust(h, clamp=fb.CLAMP), [[[0.5, -1.0]]])
    # (N, H, W) input is one channel; scale does not matter
    np.testing.assert_allclose(fb.channel_adjust(7.0 * H[None]), H[None])
    np.testing.assert_allclose(fb.channel_adjust(np.zeros((1, 2, 2))), 0.0)  # zero map stays zero


def test_stratify_bands_and_edges():
    h = np.array([[[0.6, 0.5, 0.4, 0.3, 0.0, -0.3, -0.4, -0.5, -0.6]]])
    np.testing.assert_array_equal(fb.stratify(h, T0)[0, 0, 0], [2, 1, 1, 0, 0, 0, -1, -2, -2])
    assert fb.stratify(h, fb.soft_thresholds()).shape == (1, 56, 1, 9)


def test_stratify_ground_truth():
    np.testing.assert_array_equal(
        fb.stratify_ground_truth(np.array([[[0.9, 0.4, 0.0, -0.4, -0.9, 0.9000001]]])),
        [[[2, 1, 0, -1, -2, 2]]],
    )
    with pytest.raises(ValueError, match="not within"):
        fb.stratify_ground_truth(np.array([[[0.6]]]))


def test_every_band_of_the_hand_case():
    s = fb.five_band_scores(H[None], GT[None], thresholds=T0)
    assert (s.tp[0, 0], s.fn[0, 0], s.tn[0, 0]) == (2, 3, 5)
    assert s.fp[0, 0] == 3 + 3 + 3  # background + wrong non-zero band + missed object pixels (paper's FP)
    d = fb.five_band_scores(H[None], GT[None], thresholds=T0, fp="disjoint")
    assert d.fp[0, 0] == 6 and d.tp[0, 0] == 2
    assert s.precision[0, 0] == pytest.approx(2 / 11)
    assert d.precision[0, 0] == pytest.approx(2 / 8)
    assert s.recall[0, 0] == pytest.approx(2 / 5)
    assert s.fpr[0, 0] == pytest.approx(9 / 14)
    assert s.accuracy[0, 0] == 7 / 16


def test_single_band_cases():
    gt = np.full((1, 4, 4), 0.9)
    perfect = fb.five_band_scores(np.ones((1, 4, 4)), gt, thresholds=T0, fp="disjoint")
    assert (
        perfect.tp[0, 0] == 16
        and perfect.precision[0, 0] == pytest.approx(1.0)
        and perfect.accuracy[0, 0] == 1
    )
    bg = np.zeros((1, 4, 4))
    h = np.zeros((1, 4, 4))
    h[0, 0, 0] = 1.0
    s = fb.five_band_scores(h, bg, thresholds=T0)
    assert (s.tp[0, 0], s.fp[0, 0], s.tn[0, 0], s.fn[0, 0]) == (0, 1, 15, 0)
    zero = fb.five_band_scores(np.zeros((1, 4, 4)), gt, thresholds=T0)  # no NaN for an empty map
    assert zero.precision[0, 0] == 0.0 and zero.recall[0, 0] == 0.0 and zero.fn[0, 0] == 16


def test_vectorised_equals_naive_loop_and_avg_best():
    rng = np.random.default_rng(0)
    heat = rng.normal(size=(5, 3, 6, 6))
    gt = rng.choice([0.0, 0.4, 0.9], size=(5, 6, 6))
    t = fb.soft_thresholds()
    s = fb.five_band_scores(heat, gt)
    adjusted, g = fb.channel_adjust(heat), fb.stratify_ground_truth(gt)
    for n in range(5):
        for m in (0, 17, 55):
            lo2, lo1, hi1, hi2 = t[m]
            band = np.select(
                [adjusted[n] > hi2, adjusted[n] > hi1, adjusted[n] <= lo2, adjusted[n] < lo1],
                [2, 1, -2, -1],
                0,
            )
            tp = np.sum((g[n] != 0) & (band == g[n]))
            fp = np.sum((g[n] == 0) & (band != 0)) + np.sum((g[n] != 0) & (band != g[n]))
            assert (s.tp[n, m], s.fp[n, m]) == (tp, fp)
            assert s.tn[n, m] == np.sum((g[n] == 0) & (band == 0))
            assert s.fn[n, m] == np.sum((g[n] != 0) & (band == 0))
    np.testing.assert_allclose(s.avg("recall"), s.recall.mean(1))
    np.testing.assert_allclose(s.best("precision"), s.precision.max(1))
    np.testing.assert_allclose(s.best("fpr"), s.fpr.min(1))
    fpr, rec = s.roc_points()
    assert fpr.shape == rec.shape == (56,)
    with pytest.raises(ValueError, match="metric"):
        s.avg("f1")


@pytest.mark.parametrize("fp", ["paper", "disjoint"])
def test_counts_equal_the_stratified_labels_with_ties_at_every_threshold(fp):
    """band_counts (sorted values + binary search) against stratify's labels, pixel by pixel, on maps
    whose values sit exactly on the thresholds (the band edges) and ground truth with negative bands."""
    rng = np.random.default_rng(3)
    t = fb.soft_thresholds()
    values = np.concatenate([t.ravel(), -t.ravel(), [1.0, -1.0, 0.0]])
    h = rng.choice(values, size=(4, 7, 7))
    h[:, 0, 0] = 1.0  # max |h| = 1: channel_adjust leaves the values (and the ties) exact
    gt = rng.choice(list(fb.GT_LEVELS), size=(4, 7, 7))
    s = fb.five_band_scores(h, gt, thresholds=t, fp=fp)
    np.testing.assert_array_equal(fb.channel_adjust(h), h)
    band, g = fb.stratify(h, t), fb.stratify_ground_truth(gt)[:, None]
    obj, hit, zero = g != 0, band == g, band == 0
    wrong = obj & ~hit if fp == "paper" else obj & ~hit & ~zero
    np.testing.assert_array_equal(s.tp, (obj & hit).sum(axis=(2, 3)))
    np.testing.assert_array_equal(s.fn, (obj & zero).sum(axis=(2, 3)))
    np.testing.assert_array_equal(s.tn, (~obj & zero).sum(axis=(2, 3)))
    np.testing.assert_array_equal(s.fp, (~obj & ~zero).sum(axis=(2, 3)) + wrong.sum(axis=(2, 3)))
    np.testing.assert_array_equal(s.accuracy, hit.mean(axis=(2, 3)))


def test_clamped_variant_uses_its_schedule_and_clamp():
    rng = np.random.default_rng(1)
    heat, gt = rng.normal(size=(2, 3, 5, 5)), rng.choice([0.0, 0.4, 0.9], size=(2, 5, 5))
    s = fb.five_band_scores(heat, gt, variant="clamped")
    assert s.precision.shape == (2, 41)
    ref = fb.five_band_scores(
        fb.channel_adjust(heat, clamp=(-0.1, 0.1)), gt, thresholds=fb.clamped_thresholds()
    )
    np.testing.assert_array_equal(s.tp, ref.tp)
    with pytest.raises(ValueError, match="variant"):
        fb.five_band_scores(heat, gt, variant="hard")
    with pytest.raises(ValueError, match="match"):
        fb.five_band_scores(heat, gt[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        fb.five_band_scores(np.full((1, 2, 2), np.nan), np.zeros((1, 2, 2)))
