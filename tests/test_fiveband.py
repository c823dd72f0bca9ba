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


# ---- a transcription of the authors' code (github.com/ericotjo001/explainable_ai, commit 48cd30a,
# xai_basic/legacy/srcV1/pipeline/eval/eval_metrics.py: XAITranformation3c1c.sum_pixels_over_channels and
# .five_band_stratification, FiveBandXAIMetric.fiveband_score and .soft_fiveband_score; settings
# XAI_SETTING_0001 of pipeline/eval/xai_settings.py), one heatmap at a time, kept as close to theirs as
# numpy allows.


def authors_stratification(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``five_band_stratification`` for each row of ``thresholds`` (M, 4) on x (M, ...)."""
    out = []
    for xm, yth in zip(x, thresholds, strict=True):
        b1 = xm <= yth[0]
        b2 = (xm > yth[0]) * (xm <= yth[1])
        b3 = (xm > yth[1]) * (xm <= yth[2])
        b4 = (xm > yth[2]) * (xm <= yth[3])
        b5 = xm > yth[3]
        assert np.all(b1 + b2 + b3 + b4 + b5 == 1)
        out.append(xm * 0 + b1 * -2 + b2 * -1 + b3 * 0 + b4 * 1 + b5 * 2)
    return np.stack(out)


def authors_fiveband_score(h: np.ndarray, h0: np.ndarray, thresholds: np.ndarray) -> dict[str, float]:
    """``fiveband_score`` with ``sum_pixels_over_channels`` ('absmax_after_sum'); h (C, H, W), h0 (H, W)."""
    if not np.all(h == 0):
        h = np.sum(h, axis=0)
        h = h / np.max(np.abs(h))
    else:
        h = np.sum(h, axis=0)
    h = authors_stratification(h[None], thresholds[None])[0]
    h0 = authors_stratification(h0[None], np.array([[-0.7, -0.3, 0.3, 0.7]]))[0]
    binary_equality = (h == h0).astype(float)
    tp = np.sum((h != 0) * (h0 != 0) * binary_equality)
    fp = np.sum((h != 0) * (h0 == 0)) + np.sum((h != 0) * (h0 != 0) * (1 - binary_equality))
    tn = np.sum((h == 0) * (h0 == 0))
    fn = np.sum((h == 0) * (h0 != 0))
    ep = 1e-6
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "recall": tp / (tp + fn + ep),
            "precision": tp / (tp + fp + ep), "fpr": fp / (fp + tn + ep),
            "accuracy": np.sum(binary_equality) / binary_equality.size}


def authors_soft_thresholds(g=(-0.5, -0.3, 0.3, 0.5), d: float = 0.005, n_soft_steps: int = 56) -> np.ndarray:
    """The thresholds of ``soft_fiveband_score``: g += (-1)**(g > 0) * d after each step."""
    g, rows = np.array(g), []
    for i in range(n_soft_steps):
        if i > 0:
            g = g + (-1) ** (g > 0.0).astype(float) * d
        rows.append(g)
    return np.stack(rows)


def test_default_rule_equals_the_authors_function_on_random_maps():
    rng = np.random.default_rng(7)
    heat = rng.normal(size=(6, 3, 12, 12)) * rng.random((6, 1, 12, 12))
    heat[0] = 0.0  # a zero map
    gt = rng.choice([0.0, 0.4, 0.9], size=(6, 12, 12), p=[0.6, 0.25, 0.15])
    gt[1] = 0.0  # a blank cell (type 9): no object pixel, P = R = 0
    t = authors_soft_thresholds()
    np.testing.assert_allclose(t, fb.soft_thresholds(), atol=1e-12)
    s = fb.five_band_scores(heat, gt, thresholds=t)
    for n in range(len(heat)):
        for m in range(len(t)):
            ref = authors_fiveband_score(heat[n], gt[n], t[m])
            for k in ("tp", "fp", "tn", "fn"):
                assert getattr(s, k)[n, m] == ref[k], (n, m, k)
            for k in ("precision", "recall", "fpr", "accuracy"):
                assert getattr(s, k)[n, m] == pytest.approx(ref[k], abs=1e-12), (n, m, k)
    assert (s.precision[1] == 0).all() and (s.recall[1] == 0).all()


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
    np.testing.assert_array_equal(fb.stratify(h, T0)[0, 0, 0], [2, 1, 1, 0, 0, -1, -1, -2, -2])
    assert fb.stratify(h, fb.soft_thresholds()).shape == (1, 56, 1, 9)


def test_stratify_puts_each_threshold_in_the_authors_band():
    """A value exactly at t0, t1, t2, t3 goes to -2, -1, 0, 1 (upper-closed bands), as in the authors'
    ``five_band_stratification`` (eval_metrics.py): -t(1) is in band -1, not 0."""
    for t in (fb.soft_thresholds(), fb.clamped_thresholds()):
        h = np.concatenate([t, np.nextafter(t, np.inf)], axis=1)[:, None, :]  # (M, 1, 8): edges, just above
        bands = np.stack([fb.stratify(h[m : m + 1], t[m])[0, 0, 0] for m in range(len(t))])
        np.testing.assert_array_equal(bands, np.tile([-2, -1, 0, 1, -1, 0, 1, 2], (len(t), 1)))
        np.testing.assert_array_equal(bands, authors_stratification(h[:, 0], t))


def test_stratify_ground_truth():
    np.testing.assert_array_equal(
        fb.stratify_ground_truth(np.array([[[0.9, 0.4, 0.0, -0.4, -0.9, 0.9000001]]])),
        [[[2, 1, 0, -1, -2, 2]]],
    )
    with pytest.raises(ValueError, match="not within"):
        fb.stratify_ground_truth(np.array([[[0.6]]]))


def test_every_band_of_the_hand_case():
    s = fb.five_band_scores(H[None], GT[None], thresholds=T0)  # authors' FP: background + wrong non-zero band
    assert (s.tp[0, 0], s.fn[0, 0], s.tn[0, 0]) == (2, 3, 5)
    assert s.fp[0, 0] == 3 + 3
    lit = fb.five_band_scores(H[None], GT[None], thresholds=T0, fp="literal")
    assert lit.fp[0, 0] == 3 + 3 + 3 and lit.tp[0, 0] == 2  # + the missed object pixels
    assert s.precision[0, 0] == pytest.approx(2 / 8)
    assert lit.precision[0, 0] == pytest.approx(2 / 11)
    assert s.recall[0, 0] == lit.recall[0, 0] == pytest.approx(2 / 5)
    assert s.fpr[0, 0] == pytest.approx(6 / 11)
    assert lit.fpr[0, 0] == pytest.approx(9 / 14)
    assert s.accuracy[0, 0] == 7 / 16
    with pytest.raises(ValueError, match="fp rule"):
        fb.five_band_scores(H[None], GT[None], fp="paper")


def test_single_band_cases():
    gt = np.full((1, 4, 4), 0.9)
    perfect = fb.five_band_scores(np.ones((1, 4, 4)), gt, thresholds=T0)
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
    s = fb.five_band_scores(heat, gt, fp="literal")
    adjusted, g = fb.channel_adjust(heat), fb.stratify_ground_truth(gt)
    for n in range(5):
        for m in (0, 17, 55):
            lo2, lo1, hi1, hi2 = t[m]
            band = np.select(
                [adjusted[n] > hi2, adjusted[n] > hi1, adjusted[n] <= lo2, adjusted[n] <= lo1],
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


@pytest.mark.parametrize("fp", fb.FP_RULES)
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
    wrong = obj & ~hit if fp == "literal" else obj & ~hit & ~zero
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
