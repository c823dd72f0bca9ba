"""Tests of the hermitry chapter: the ratio's closed forms, the capture of perturbed inputs (counts per
method, Anchor's replaced superpixels against anchor-exp's own sampler), the verdicts and the smoke preset."""

from __future__ import annotations

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from xai_utils import attribution as A
from xai_utils import metrics, report
from xai_utils.experiments import hermitry as hm

SETTINGS = hm.PerturbSettings(occlusion_window=22, occlusion_stride=11, n_samples=12, kernel_width=1000.0,
                              anchor_images=2, chunk_images=3)


# ------------------------------------------------------------------------------------ the ratio
@pytest.mark.parametrize("shift2, expected", [(4.0, 0.320), (9.0, 0.663)])
def test_ratio_of_a_shifted_gaussian_is_the_noncentral_chi2_tail(shift2, expected):
    """X ~ N(0, I_4), T = the 95% quantile of X's distances (sqrt of chi2_4 0.95 = 9.488): samples shifted by
    |s|^2 lie beyond T with probability ncx2.sf(9.488; 4, |s|^2)."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(40000, 4))
    fit = metrics.fit_hermitry(train, q=0.95)
    assert fit.threshold**2 == pytest.approx(stats.chi2.ppf(0.95, 4), rel=0.02)
    shifted = rng.normal(size=(40000, 4)) + np.sqrt(shift2 / 4)
    assert stats.ncx2.sf(stats.chi2.ppf(0.95, 4), 4, shift2) == pytest.approx(expected, abs=5e-4)
    assert metrics.hermitry_ratio(fit, shifted) == pytest.approx(expected, abs=0.015)


@pytest.mark.parametrize("n", [1, 7, 20, 50, 51])
def test_unperturbed_images_score_the_null(n):
    rng = np.random.default_rng(n)
    fit = metrics.fit_hermitry(rng.normal(size=(300, 3)), y := rng.normal(size=(n, 3)))
    assert metrics.hermitry_ratio(fit, y) == pytest.approx(metrics.null_ratio(n)) == pytest.approx(
        (n - max(int(np.floor(0.95 * n)), 1)) / n)
    assert metrics.null_ratio(50) == pytest.approx(0.06)
    with pytest.raises(ValueError, match="at least one"):
        metrics.null_ratio(0)


def test_pooled_interval_contains_the_pooled_ratio():
    hits, counts = np.array([0, 5, 10, 2]), np.array([10, 10, 10, 10])
    low, high = hm.pooled_interval(hits.astype(float), counts, n_boot=200, seed=0)
    assert low <= hits.sum() / counts.sum() <= high


# ------------------------------------------------------------------------------------ capture
def test_per_value_features_switch_single_values(tiny_cnn, tiny_images):
    x = tiny_images[:2]
    feats = A.per_value(3, 8, 8)
    masks = torch.ones(1, 192, dtype=torch.bool)
    masks[0, [0, 64, 191]] = False  # value (c=0, 0, 0), (c=1, 0, 0), (c=2, 7, 7)
    seen = []
    A.evaluate_masks(tiny_cnn, x, masks, feats, 0, baseline=-1.0, callback=lambda b, i: seen.append(b))
    changed = (seen[0] != x).nonzero().tolist()
    assert sorted(changed) == sorted([[i, 0, 0, 0] for i in (0, 1)] + [[i, 1, 0, 0] for i in (0, 1)]
                                     + [[i, 2, 7, 7] for i in (0, 1)])
    lime = A.lime(tiny_cnn, x, features=feats, n_samples=30, distance="euclidean", kernel_width=1000.0)
    assert lime.shape == x.shape and not torch.equal(lime[:, 0], lime[:, 1])  # values differ per channel
    with pytest.raises(ValueError, match="label map"):
        A.lime(tiny_cnn, x, features=torch.zeros(1, 2, 8, 8, dtype=torch.long))


@pytest.mark.parametrize("method", ["occlusion", "lime", "kernel_shap"])
def test_capture_counts_every_perturbed_input_and_no_clean_forward(tiny_cnn, tiny_images, method):
    x = tiny_images[:5]
    got = hm.perturbed_encodings(tiny_cnn, method, x, mean=(0.5, 0.5, 0.5), settings=SETTINGS, seed=0)
    per_image = 8 * 8 if method == "occlusion" else SETTINGS.n_samples  # 22/224 of 8 px -> 1 px windows
    assert got["encodings"].shape == (per_image * len(x), 6)
    np.testing.assert_array_equal(np.bincount(got["image"]), [per_image] * len(x))
    # the encodings are the model's features of the inputs the method evaluated
    if method == "occlusion":
        z = x[:1].clone()
        z[0, :, 0, 0] = 0.5
        np.testing.assert_allclose(got["encodings"][0], tiny_cnn.features(z)[0].detach().numpy())


def test_anchor_capture_counts_the_library_rows_minus_the_clean_one(tiny_cnn, tiny_images):
    x = (tiny_images[:2].repeat_interleave(2, -1).repeat_interleave(2, -2)).float()  # 16 px: a few superpixels
    model = tiny_cnn.float()
    rows = []
    handle = model.head.register_forward_pre_hook(lambda m, a: rows.append(len(a[0])))
    try:
        got = hm.perturbed_encodings(model, "anchor", x, mean=(0.5, 0.5, 0.5), settings=SETTINGS, seed=0)
    finally:
        handle.remove()
    # one clean forward per image to pick the label (plus resolve_target's one for the batch)
    assert len(got["encodings"]) == sum(rows) - len(x) - len(x)
    assert set(np.unique(got["image"])) == {0, 1}


def test_anchor_replaces_superpixels_by_their_mean_colour_half_the_time(tiny_images):
    """anchor-exp's sampler: every superpixel of a perturbed image is either the original's or its mean colour,
    and a superpixel outside the anchor is replaced with probability 0.5."""
    from skimage.segmentation import quickshift

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3)).float()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 4, 4, generator=gen).repeat_interleave(8, -1).repeat_interleave(8, -2)  # 16 blocks
    img = x[0].permute(1, 2, 0).double().numpy()
    seg = quickshift(img, kernel_size=4, max_dist=200, ratio=0.2)
    seen = []
    A.anchor_beam(model, x, seed=0, callback=lambda b, i: seen.extend(b))
    assert len(seen) >= 100
    replaced = []
    for z in seen:
        z = z.permute(1, 2, 0).double().numpy()
        for s in np.unique(seg):
            part, orig = z[seg == s], img[seg == s]
            mean = orig.mean(0)
            same, fudged = np.allclose(part, orig, atol=1e-6), np.allclose(part, mean, atol=1e-6)
            assert same or fudged
            replaced.append(fudged and not same)
    assert 0.3 <= np.mean(replaced) <= 0.55


def test_anchor_beam_refuses_another_target(tiny_cnn, tiny_images):
    x = tiny_images[:2].float()
    model = tiny_cnn.float()
    pred = model(x).argmax(1)
    with pytest.raises(ValueError, match="predicted class"):
        A.anchor_beam(model, x, target=(pred + 1) % 4)
    with pytest.raises(ValueError, match="RGB"):
        A.anchor_beam(model, x[:, :1].expand(-1, 1, -1, -1).contiguous())


def test_occlusion_window_scales_with_the_image():
    assert SETTINGS.window(224) == (22, 11)
    assert SETTINGS.window(32) == (3, 2)
    assert SETTINGS.window(64) == (6, 3)
    assert SETTINGS.window(4) == (1, 1)


# ------------------------------------------------------------------------------------ verdicts
def _hermitry(rows: list[tuple[str, float, float, float]]) -> hm.Hermitry:
    table = pd.DataFrame([{"run": "r", "class": "c", "method": m, "H": H, "low": lo, "high": hi}
                          for m, H, lo, hi in rows])
    return hm.Hermitry(table, pd.DataFrame(), pd.DataFrame(), {}, {}, "ledoitwolf")


@pytest.mark.parametrize("interval, verdict", [((0.02, 0.2), "holds"), ((0.35, 0.5), "does not hold"),
                                               ((0.2, 0.4), "not testable here")])
def test_occlusion_verdict_has_three_outcomes(interval, verdict):
    out = hm.claim_occlusion(_hermitry([("occlusion", sum(interval) / 2, *interval)]))
    assert out["verdict"] == verdict


def _per_image(values: dict[str, tuple[int, int]]) -> hm.Hermitry:
    """Per method, 40 images with hits out of 100 samples each: a wide spread, so intervals are real."""
    per = {}
    for m, (lo, hi) in values.items():
        hits = np.linspace(lo, hi, 40)
        per[("r", "c", m)] = (hits, np.full(40, 100))
    table = pd.DataFrame([{"run": "r", "class": "c", "method": m} for m in values])
    return hm.Hermitry(table, pd.DataFrame(), pd.DataFrame(), {}, per, "ledoitwolf")


@pytest.mark.parametrize("values, verdict", [
    ({"occlusion": (0, 10), "lime": (80, 100), "kernel_shap": (30, 50), "anchor": (30, 50)}, "holds"),
    ({"occlusion": (0, 10), "lime": (80, 100), "kernel_shap": (85, 100), "anchor": (30, 50)}, "not testable here"),
    ({"occlusion": (0, 10), "lime": (30, 50), "kernel_shap": (80, 100), "anchor": (30, 50)}, "does not hold"),
])
def test_lime_and_between_verdicts(values, verdict):
    h = _per_image(values)
    assert hm.claim_lime_most(h, n_boot=200, seed=0)["verdict"] == verdict
    assert hm.claim_between(h, n_boot=200, seed=0)["verdict"] == ("holds" if verdict == "holds" else verdict)


def test_all_ood_fails_on_a_method_at_the_null():
    h = _per_image({"occlusion": (5, 7), "lime": (80, 100), "kernel_shap": (30, 50), "anchor": (30, 50)})
    assert hm.claim_all_ood(h, n_val=50, q=0.95, n_boot=200, seed=0)["verdict"] == "does not hold"
    h = _per_image({"occlusion": (20, 30), "lime": (80, 100), "kernel_shap": (30, 50), "anchor": (30, 50)})
    assert hm.claim_all_ood(h, n_val=50, q=0.95, n_boot=200, seed=0)["verdict"] == "holds"


def test_paper_table4_decodes_to_the_quoted_means():
    t = hm.paper_table4()
    assert t.shape == (9, 4)
    np.testing.assert_allclose(t.mean().to_numpy(), [0.061, 0.642, 0.315, 0.325], atol=0.0015)
    by_model = t.T.mean().groupby(level="model").mean()
    np.testing.assert_allclose(by_model[["MnasNet1.0", "DenseNet121", "ResNet50"]], [0.195, 0.387, 0.426],
                               atol=0.0015)
    low = (t <= hm.CUTOFF).groupby(level="model").sum().sum(1)
    assert low.to_dict() == {"DenseNet121": 5, "MnasNet1.0": 9, "ResNet50": 4}


def test_smoke_preset_runs(tmp_path):
    from xai_utils.run import execute

    out = execute("hermitry", "smoke", out=tmp_path / "x.ipynb", progress=False)
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for key in report.paper_claims("hermitry"):
        assert report.paper_claims("hermitry")[key]["text"] in text
    assert "KernelSHAP" in text and "null" in text


def _archs(values: dict[str, tuple[int, int]]) -> hm.Hermitry:
    per = {(run, "c", "lime"): (np.linspace(lo, hi, 40), np.full(40, 100)) for run, (lo, hi) in values.items()}
    table = pd.DataFrame([{"run": r, "class": "c", "method": "lime"} for r in values])
    return hm.Hermitry(table, pd.DataFrame(), pd.DataFrame(), {}, per, "ledoitwolf")


def test_architecture_verdict_needs_the_papers_models():
    other = _archs({"resnet20": (0, 10)})
    assert hm.claim_architecture(other, n_boot=50, seed=0)["verdict"] == "not testable here"
    low = _archs({"mnasnet1_0": (0, 20), "densenet121": (40, 60), "resnet50": (50, 70)})
    assert hm.claim_architecture(low, n_boot=200, seed=0)["verdict"] == "holds"
    high = _archs({"mnasnet1_0": (60, 80), "densenet121": (0, 20), "resnet50": (50, 70)})
    assert hm.claim_architecture(high, n_boot=200, seed=0)["verdict"] == "does not hold"
    mean, lo, hi = hm.model_mean(low, "mnasnet1_0", n_boot=200, seed=0)
    assert lo <= mean <= hi and mean == pytest.approx(0.1)


def test_full_preset_reads_the_imagenet_layout(tmp_path):
    from PIL import Image

    from xai_utils import models

    rng = np.random.default_rng(0)

    def jpg(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(path)

    train = tmp_path / "imagenet" / "train"
    for i in range(1000):
        (train / f"n{i:08d}").mkdir(parents=True)
    for c in (1, 998):
        for j in range(3):
            jpg(train / f"n{c:08d}" / f"{j}.JPEG")
        for j in range(2):
            jpg(tmp_path / "imagenet" / "val" / f"n{c:08d}" / f"v{j}.JPEG")
    jpg(tmp_path / "dtd_textures_10classes" / "banded" / "a.jpg")
    jpg(tmp_path / "dtd_textures_10classes" / "banded" / "b.jpg")
    weights = tmp_path / "torchvision" / "mnasnet.pth"
    weights.parent.mkdir()
    torch.save(models.build("mnasnet1_0", 1000).net.state_dict(), weights)
    kw = dict(device="cpu", seed=0, data_root=str(tmp_path), classes=[1, 998], n_val=50, n_train=2, n_reference=3,
              sizes=[], archs=["mnasnet1_0"], widths=[], train_images=[], epochs=1,
              checkpoints=["torchvision/mnasnet.pth"], retrain=False, progress=False)
    run = hm.make_runs("full", **kw)["mnasnet1_0"]
    assert run.classes == ["n00000001", "n00000998"] and run.labels == {"n00000001": 1, "n00000998": 998}
    assert run.train["n00000001"].shape == (2, 3, 224, 224) and run.val["n00000998"].shape == (2, 3, 224, 224)
    assert run.references["noise"].shape == (3, 3, 224, 224) and len(run.references["textures"]) == 2
    assert hm.encode(run.model, run.val["n00000001"]).shape == (2, 1280)
    (train / "n00000500").rmdir()
    with pytest.raises(ValueError, match="1000 ImageNet class folders"):
        hm.make_runs("full", **kw)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        hm.make_runs("full", **{**kw, "checkpoints": ["torchvision/missing.pth"]})
