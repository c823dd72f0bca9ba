"""Tests of the disagreement chapter: the agreement metrics' closed forms (chance level of FA, SA of a map with
its magnitude, identical and opposite maps, RC under monotone transforms, degenerate maps), the small
Inception net and the digit task, the thesis's methods on a tiny net, the verdicts and the smoke preset."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from xai_utils import attribution as A
from xai_utils import data, metrics, models, report
from xai_utils.experiments import disagreement as dg


# ------------------------------------------------------------------------------------ metrics
@pytest.mark.parametrize("k", [0.05, 0.1, 0.5])
def test_feature_agreement_of_unrelated_maps_is_the_chance_level_k(k):
    """Two independent random maps share k/D of their top-k on average: FA = k (as a share of the pixels)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 32, 32)), rng.normal(size=(400, 32, 32))
    fa = metrics.topk_feature_agreement(a, b, k)
    assert fa.mean() == pytest.approx(k, abs=3 * fa.std() / np.sqrt(len(fa)) + 1e-3)


def test_sign_agreement_of_a_symmetric_map_with_its_magnitude_is_half_its_feature_agreement():
    """|g| ranks the pixels as g does (FA = 1); SA counts those where g > 0: about half for a symmetric g."""
    g = np.random.default_rng(1).normal(size=(300, 16, 16))
    fa = metrics.topk_feature_agreement(g, np.abs(g), 0.1)
    sa = metrics.topk_sign_agreement(g, np.abs(g), 0.1)
    np.testing.assert_array_equal(fa, 1.0)
    assert sa.mean() == pytest.approx(fa.mean() / 2, abs=0.02)


def test_identical_maps_agree_fully_and_opposite_maps_never_in_sign():
    g = np.random.default_rng(2).normal(size=(5, 16, 16))
    for fn in (metrics.topk_feature_agreement, metrics.topk_sign_agreement):
        np.testing.assert_array_equal(fn(g, g, 0.1), 1.0)
    np.testing.assert_allclose(metrics.ssim_maps(g, g), 1.0)
    np.testing.assert_allclose(metrics.rank_correlation(g, g, absolute=True), 1.0)
    np.testing.assert_array_equal(metrics.topk_feature_agreement(g, -g, 0.1), 1.0)
    np.testing.assert_array_equal(metrics.topk_sign_agreement(g, -g, 0.1), 0.0)


def test_rank_correlation_is_invariant_under_monotone_transforms_of_the_magnitude():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 12, 12)), rng.normal(size=(4, 12, 12))
    mask = rng.random((4, 12, 12)) < 0.4
    ref = metrics.rank_correlation(a, b, mask, absolute=True)
    np.testing.assert_allclose(metrics.rank_correlation(np.exp(np.abs(a)), -(b**3), mask, absolute=True), ref)
    assert not np.allclose(metrics.rank_correlation(a, b, mask), ref)  # raw values rank differently


def test_degenerate_maps_give_nan_and_are_counted_not_raised():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(3, 10, 10)), rng.normal(size=(3, 10, 10))
    a[1] = 0.0  # Guided Grad-CAM where the rectified CAM vanishes
    mask = np.ones((3, 10, 10), dtype=bool)
    with pytest.raises(ValueError, match=r"samples \[1\]"):
        metrics.ssim_maps(a, b)
    with pytest.raises(ValueError, match="sample 1"):
        metrics.rank_correlation(a, b, mask)
    with pytest.raises(ValueError, match="degenerate must be one of"):
        metrics.ssim_maps(a, b, degenerate="zero")
    s = metrics.ssim_maps(a, b, degenerate="nan")
    r = metrics.rank_correlation(a, b, mask, absolute=True, degenerate="nan")
    assert np.isnan(s[1]) and np.isnan(r[1]) and np.isfinite(s[[0, 2]]).all() and np.isfinite(r[[0, 2]]).all()
    np.testing.assert_allclose(s[[0, 2]], metrics.ssim_maps(a[[0, 2]], b[[0, 2]]))
    assert np.isnan(metrics.rank_correlation(a, b, degenerate="nan")[1])  # without a mask too


def test_pair_means_count_undefined_images():
    task = dg.Task("t", torch.zeros(3, 3, 8, 8), torch.tensor([1, 1, 0]), torch.ones(3, 8, 8, dtype=torch.bool),
                   ("a", "b"), "")
    run = dg.Run(task, "box", torch.nn.Identity(), "none", 1.0, 1.0)
    rng = np.random.default_rng(5)
    maps = {"saliency": rng.random((3, 8, 8)), "guided_gradcam": rng.normal(size=(3, 8, 8))}
    maps["guided_gradcam"][0] = 0.0
    means = dg.pair_means(dg.pair_values({"t/box": run}, {"t/box": maps}, ks=[0.1]))
    undefined = means.set_index("metric")["undefined"]
    assert undefined["SSIM"] == 1 and undefined["RC"] == 1 and undefined["FA"] == 0
    assert means.set_index("metric").loc["RC", "n"] == 1  # two positives, one of them degenerate


# ------------------------------------------------------------------------------------ data and models
def test_small_inception_follows_the_model_contract_and_is_captum_safe():
    torch.manual_seed(0)
    m = models.build("small_inception", 2, width=4).double().eval()
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(m(x), m.head(m.features(x)))
    assert m.cam_layer is m.body
    relus = [mod for mod in m.modules() if isinstance(mod, torch.nn.ReLU)]
    assert relus and not any(r.inplace for r in relus) and len({id(r) for r in relus}) == len(relus)
    with pytest.raises(ValueError, match="even"):
        models.build("small_inception", 2, width=3)


def test_digit_task_labels_masks_and_disjoint_halves():
    x, y, strokes = data.digit_task(40, classes=(4, 9), size=16, seed=0, part="test")
    assert x.shape == (40, 3, 16, 16) and set(y.tolist()) == {0, 1} and strokes.dtype == torch.bool
    assert 0.02 < strokes.float().mean() < 0.5
    again = data.digit_task(40, classes=(4, 9), size=16, seed=0, part="test")
    torch.testing.assert_close(x, again[0])
    with pytest.raises(ValueError, match="distinct digits"):
        data.digit_task(4, classes=(4, 4))
    with pytest.raises(ValueError, match="part must be one of"):
        data.digit_task(4, part="train")


def test_the_thesis_methods_run_with_its_settings_on_a_tiny_inception():
    torch.manual_seed(0)
    model = models.build("small_inception", 2, width=4).eval()
    task = dg.Task("t", torch.rand(4, 3, 16, 16), torch.tensor([1, 0, 1, 0]), None, ("a", "b"), "")
    run = dg.Run(task, "Inception", model, "small_inception", 0.5, 0.5)
    settings = dg.MapSettings(occlusion_window=4, occlusion_stride=4, ig_steps=4, gs_samples=2, lrp_epsilon=1e-9,
                              batch_images=3)
    maps = dg.compute_maps({"t": run}, methods=dg.METHODS, settings=settings, seed=0, use_cache=False,
                           progress=False)["t"]
    assert list(maps) == list(dg.METHODS)
    for m, a in maps.items():
        assert a.shape == (4, 16, 16) and np.isfinite(a).all(), m
    assert (maps["saliency"] >= 0).all()  # captum's default abs=True
    # Guided Grad-CAM is the rectified CAM times GBP: it is zero wherever GBP is, and has the sign of GBP
    gbp, ggc = maps["guided_backprop"], maps["guided_gradcam"]
    assert ((ggc == 0) | (np.sign(ggc) == np.sign(gbp))).all()
    with pytest.raises(ValueError, match="unknown methods"):
        dg.compute_maps({"t": run}, methods=["lime"], settings=settings, seed=0, use_cache=False, progress=False)


def test_real_runs_read_the_real_layout(tmp_path, monkeypatch):
    """The real preset on tiny files in the data root's layout: MNIST idx files, CIFAR-10 JPEG class folders,
    the two CIFAR ResNet checkpoints (random weights in the released format)."""
    import gzip

    from PIL import Image

    from xai_utils import config
    from xai_utils.models import real

    rng = np.random.default_rng(9)
    mnist = tmp_path / "mnist_test"
    mnist.mkdir()
    labels = np.array([4, 9, 1] * 12, np.uint8)
    for name, arr in (("images-idx3", rng.integers(0, 256, (36, 28, 28), dtype=np.uint8)), ("labels-idx1", labels)):
        header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
        with gzip.open(mnist / f"t10k-{name}-ubyte.gz", "wb") as f:
            f.write(header + arr.tobytes())
    for c in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"):
        (tmp_path / "cifar10_test_jpg" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "cifar10_test_jpg" / c / f"{i:04d}.jpg")
    (tmp_path / "cifar10_resnet_checkpoints").mkdir()
    for depth, tag in ((20, "12345678"), (56, "87654321")):
        sd = {"module." + k: v for k, v in real.cifar_resnet(depth).state_dict().items()}
        torch.save({"best_prec1": 0.0, "state_dict": sd}, tmp_path / "cifar10_resnet_checkpoints" /
                   f"resnet{depth}-{tag}.th")
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    runs = dg.make_runs("real", device="cpu", seed=0, data_root=str(tmp_path), checkpoints=["resnet20", "resnet56"],
                        size=32, n_train=12, n_val=6, n_test=6, width=4, epochs=1, retrain=True, progress=False)
    assert list(runs) == ["mnist/ResNet", "mnist/Inception", "cifar10/ResNet-20", "cifar10/ResNet-56"]
    mn, cf = runs["mnist/ResNet"].task, runs["cifar10/ResNet-56"].task
    assert mn.x.shape == (6, 3, 28, 28) and mn.masks.shape == (6, 28, 28) and set(mn.y.tolist()) <= {0, 1}
    assert cf.x.shape == (6, 3, 32, 32) and cf.masks is None and runs["cifar10/ResNet-56"].arch == "cifar_resnet56"
    with pytest.raises(ValueError, match="fewer than n_train"):
        dg.make_runs("real", device="cpu", seed=0, data_root=str(tmp_path), checkpoints=["resnet20"], size=32,
                     n_train=20, n_val=6, n_test=6, width=4, epochs=1, retrain=True, progress=False)


def _xray_root(root, rng) -> None:
    """Tiny files in the full preset's layout: SIIM-ACR PNGs + masks + test list, Kermany class folders."""
    import os

    from PIL import Image

    siim = root / "siim-acr-pneumothorax"
    for sub in ("png_images", "png_masks"):
        (siim / sub).mkdir(parents=True)
    names = [f"{i}_test_{i % 2}_.png" for i in range(5)]
    for i, name in enumerate(names):
        Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(siim / "png_images" / name)
        mask = np.zeros((40, 48), np.uint8)
        mask[10:20, 20:30] = 255 * (i % 2)
        Image.fromarray(mask).save(siim / "png_masks" / name)
    pd.DataFrame({"new_filename": names, "ImageId": range(5), "has_pneumo": [i % 2 for i in range(5)]}).to_csv(
        siim / "stage_1_test_images.csv", index=False)
    for c in ("NORMAL", "PNEUMONIA"):
        (root / "chest_xray" / "test" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (36, 30), dtype=np.uint8)).save(
                root / "chest_xray" / "test" / c / f"person{i}.jpeg")
    (root / "xray").mkdir()
    for arch in ("inception_v3", "resnet101"):  # random weights; the second task's file is a link (disk)
        torch.save(models.build(arch, 2).net.state_dict(), root / "xray" / f"pneumothorax_{arch}.pth")
        os.link(root / "xray" / f"pneumothorax_{arch}.pth", root / "xray" / f"pneumonia_{arch}.pth")


def test_full_runs_read_the_chest_xray_layout(tmp_path):
    """The full preset on tiny files in the thesis's layout: every task at 128 px with the masks of the
    positives, each black box given its own input side, and maps that come back at 128 x 128."""
    torch.manual_seed(0)
    _xray_root(tmp_path, np.random.default_rng(3))
    ckpts = [f"xray/{t}_{a}.pth" for t in ("pneumothorax", "pneumonia") for a in ("inception_v3", "resnet101")]
    runs = dg.make_runs("full", device="cpu", seed=0, data_root=str(tmp_path), checkpoints=ckpts, size=32,
                        n_train=10, n_val=10, n_test=3, width=4, epochs=1, retrain=False, progress=False)
    assert list(runs) == ["pneumothorax/Inception", "pneumothorax/ResNet", "pneumonia/Inception", "pneumonia/ResNet"]
    px, pn = runs["pneumothorax/Inception"].task, runs["pneumonia/ResNet"].task
    assert px.x.shape == (3, 3, 128, 128) and px.masks.shape == (3, 128, 128) and pn.masks is None
    assert len(pn.y) == 3 and set(pn.y.tolist()) <= {0, 1}
    assert (px.masks.flatten(1).any(1) == (px.y == 1)).all()  # a positive's mask is its square, a negative's empty
    assert runs["pneumothorax/Inception"].x.shape[-1] == 299 and runs["pneumonia/ResNet"].x.shape[-1] == 224
    settings = dg.MapSettings(occlusion_window=8, occlusion_stride=4, ig_steps=2, gs_samples=1, lrp_epsilon=1e-9,
                              batch_images=3)
    maps = dg.compute_maps({r: runs[r] for r in ("pneumothorax/Inception", "pneumonia/ResNet")},
                           methods=["saliency"], settings=settings, seed=0, use_cache=False, progress=False)
    for m in maps.values():
        assert m["saliency"].shape == (3, 128, 128) and np.isfinite(m["saliency"]).all()


def test_full_preset_names_what_is_wrong(tmp_path):
    root = tmp_path
    with pytest.raises(ValueError, match="must name one task"):
        dg.xray_checkpoints(["xray/inception_v3.pth"], root)
    with pytest.raises(ValueError, match="both for"):
        dg.xray_checkpoints(["a/pneumonia_resnet101.pth", "b/pneumonia_resnet101.pt"], root)
    with pytest.raises(ValueError, match=r"no checkpoint for .*'pneumonia', 'Inception'"):
        dg.xray_checkpoints(["pneumothorax_inception_v3.pth", "pneumothorax_resnet101.pth", "pneumonia_resnet101.pth"],
                            root)
    assert dg.xray_checkpoints(["/abs/pneumonia_resnet101.pth", "x/pneumonia_inception_v3.pth",
                                "pneumothorax_resnet101.pth", "pneumothorax_inception_v3.pth"],
                               root)["pneumonia", "ResNet"] == Path("/abs/pneumonia_resnet101.pth")
    with pytest.raises(FileNotFoundError, match="SIIM-ACR folder"):
        data.siim_pneumothorax(root)
    siim = root / "siim-acr-pneumothorax"
    (siim / "png_images").mkdir(parents=True)
    (siim / "png_masks").mkdir()
    with pytest.raises(FileNotFoundError, match="stage_1_test_images.csv"):
        data.siim_pneumothorax(root)
    pd.DataFrame({"new_filename": ["a.png"], "label": [1]}).to_csv(siim / "stage_1_test_images.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks the columns \['has_pneumo'\]"):
        data.siim_pneumothorax(root)
    pd.DataFrame({"new_filename": ["a.png"], "has_pneumo": [2]}).to_csv(siim / "stage_1_test_images.csv", index=False)
    with pytest.raises(ValueError, match="must be 0 or 1"):
        data.siim_pneumothorax(root)
    pd.DataFrame({"new_filename": ["a.png"], "has_pneumo": [1]}).to_csv(siim / "stage_1_test_images.csv", index=False)
    with pytest.raises(FileNotFoundError, match="1 files listed .* are not in .*png_images"):
        data.siim_pneumothorax(root)
    with pytest.raises(ValueError, match="split must be one of"):
        data.siim_pneumothorax(root, split="val")
    (root / "chest_xray" / "test" / "NORMAL").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"missing \['PNEUMONIA'\]"):
        data.kermany_pneumonia(root)
    with pytest.raises(ValueError, match="no masks"):
        data.XrayFiles("k", (), (), ("a", "b")).load_masks(8)


# ------------------------------------------------------------------------------------ verdicts
def _values(fa: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Per-image FA@0.1 (and SA = FA / 2) of the given pairs per run ``task/box``."""
    rows = []
    for run, pairs in fa.items():
        task, box = run.split("/")
        for pair, v in pairs.items():
            for metric, vals in (("FA", v), ("SA", v / 2)):
                rows.append(pd.DataFrame({"run": run, "task": task, "box": box, "a": pair, "b": pair, "pair": pair,
                                          "metric": metric, "k": 0.1, "image": np.arange(len(v)), "value": vals}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("gap, verdict", [(0.3, "holds"), (-0.3, "does not hold"), (0.0, "not testable here")])
def test_top_pair_verdict_can_go_each_way(gap, verdict):
    rng = np.random.default_rng(6)
    other = rng.uniform(0.4, 0.6, 60)
    top = np.clip(other + gap + rng.normal(0, 0.02, 60), 0, 1) if gap else rng.permutation(other)
    rs = dg.Resampler(_values({"c/ResNet": {dg.TOP_PAIR: top, "Saliency - LRP": other}}), n_boot=200, seed=0)
    assert dg.claim_top_pair(rs, k=0.1)["verdict"] == verdict


@pytest.mark.parametrize("ratio, verdict", [(0.5, "holds"), (1.0, "does not hold")])
def test_sa_half_verdict_can_go_each_way(ratio, verdict):
    rng = np.random.default_rng(7)
    v = _values({"c/ResNet": {"Saliency - GBP": rng.uniform(0.3, 0.9, 80)}})
    v.loc[v["metric"] == "SA", "value"] = v.loc[v["metric"] == "FA", "value"].to_numpy() * ratio
    assert dg.claim_sa_half(dg.Resampler(v, n_boot=200, seed=0), k=0.1)["verdict"] == verdict


def test_resnet_more_compares_boxes_on_the_same_images():
    rng = np.random.default_rng(8)
    base = rng.uniform(0.3, 0.7, (2, 60))
    v = _values({"c/Inception": {"p": base[0] + 0.1, "q": base[1] + 0.1}, "c/ResNet": {"p": base[0], "q": base[1]}})
    assert dg.claim_resnet_more(dg.Resampler(v, n_boot=200, seed=0), k=0.1)["verdict"] == "holds"
    v2 = _values({"c/Inception": {"p": base[0], "q": base[1]}, "c/ResNet": {"p": base[0] + 0.1, "q": base[1] + 0.1}})
    assert dg.claim_resnet_more(dg.Resampler(v2, n_boot=200, seed=0), k=0.1)["verdict"] == "does not hold"


def test_table52_ids_are_the_papers():
    numbers = report.paper_numbers("disagreement")
    assert len([i for i in numbers.index if i.startswith("t52.")]) == 42  # 3 pairs x (2 x 3 + 1) metrics x 2 boxes
    with pytest.raises(ValueError, match="must contain k = 0.2 and Table 5.2's 0.1; missing"):
        dg.check_shares([0.2, 0.5], 0.2)
    with pytest.raises(ValueError, match="shares of the pixels"):
        dg.check_shares([0.1, 5], 0.1)
    dg.check_shares([0.05, 0.1], 0.05)


# ------------------------------------------------------------------------------------ the chapter
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_smoke_preset_runs(tmp_path):
    from xai_utils.run import execute

    out = execute("disagreement", "smoke", out=tmp_path / "x.ipynb", progress=False)
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for claim in report.paper_claims("disagreement").values():
        assert claim["text"] in text
    assert "t52.gbp_ggc.pneumothorax.inception.fa10" in text and A.LABELS["guided_gradcam"] in text
