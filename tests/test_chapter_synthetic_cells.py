"""The synthetic_cells chapter: its experiment module on tiny inputs, and the smoke preset end to end."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from xai_utils import config, models, params, report
from xai_utils.experiments import synthetic_cells as sc


def _family_spec(**over) -> dict:
    spec = {
        "arch": "small_vgg",
        "arch_kwargs": {"width": 2},
        "image_size": 16,
        "batch_size": 16,
        "base_epochs": 1,
        "base_schedule": "constant",
        "branch_epochs": 1,
        "lr": 0.01,
        "branch_lr": 0.01,
        "n_limit": 2,
        "refresh": 0.5,
        "init_weights": "",
    }
    return {**spec, **over}


def _protocol(**over) -> dict:
    """:func:`sc.train_family`'s keywords: the notebook's protocol defaults, 2 branches, on the CPU, quietly."""
    p = params.defaults("synthetic_cells")
    kw = {k: p[k] for k in ("target_acc", "val_every", "weight_decay", "seed", "retrain")}
    return {**kw, "n_branches": 2, "device": "cpu", "progress": False, **over}


#: :func:`sc.evaluate`'s and :func:`sc.gallery_data`'s run keywords in these tests.
_RUN = {"seed": 0, "device": "cpu"}
#: The chapter's defaults: the FP rule and the per-method settings (the authors').
_DEFAULTS = params.defaults("synthetic_cells")
_FP = _DEFAULTS["fp_rule"]
#: A stand-in model for :func:`sc.resolve_params` (only its first convolution matters).
_NET = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Conv2d(3, 2, 3), torch.nn.Conv2d(2, 2, 3))


@pytest.fixture
def tiny_splits() -> sc.CellSplits:
    return sc.make_splits(size=16, n_train=40, n_val_shards=2, shard_size=10, n_test=12, seed=0)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    return tmp_path / "cache"


# ---------------------------------------------------------------------------- data


def test_splits_shapes_balanced_shards_and_disjoint(tiny_splits):
    sp = tiny_splits
    assert sp.train.x.shape == (40, 3, 16, 16) and sp.val.x.shape == (20, 3, 16, 16) and len(sp.test) == 12
    for i in range(2):
        assert sorted(sp.shard(i).y.tolist()) == list(range(10))  # one of every class per shard of 10
    assert not torch.equal(sp.train.x[:12], sp.test.x)  # different seeds per split
    with pytest.raises(ValueError, match="shard 2 out of range"):
        sp.shard(2)
    with pytest.raises(ValueError, match="n_test"):
        sc.make_splits(size=16, n_train=10, n_val_shards=1, shard_size=10, n_test=0, seed=0)


def test_figure2_cells_cover_every_class_and_background():
    cells = sc.figure2_cells(size=16, seed=0)
    pairs = {(int(y), int(b)) for y, b in zip(cells.y, cells.background, strict=True)}
    assert pairs == {(c, b) for c in range(10) for b in range(3)}


def test_splits_for_shares_images_of_one_size():
    fams = {
        "a": _family_spec(),
        "b": _family_spec(arch="small_alexnet", arch_kwargs={"width": 2, "hidden": 8}),
    }
    sp = sc.splits_for(fams, n_train=10, n_val_shards=1, shard_size=10, n_test=10, seed=0)
    assert sp["a"] is sp["b"]


def test_check_family_rejects_bad_specs():
    with pytest.raises(ValueError, match="missing keys"):
        sc.check_family("x", {"arch": "small_vgg"})
    with pytest.raises(ValueError, match="unknown arch"):
        sc.check_family("x", _family_spec(arch="lenet"))
    with pytest.raises(ValueError, match="refresh"):
        sc.check_family("x", _family_spec(refresh=1.5))


# ---------------------------------------------------------------------------- training


def test_train_family_is_cached_and_reproducible(tiny_splits, tmp_cache):
    fam = sc.train_family("vgg", _family_spec(), tiny_splits, **_protocol())
    assert len(fam.branches) == 2 and not fam.from_cache
    again = sc.train_family("vgg", _family_spec(), tiny_splits, **_protocol())
    assert again.from_cache and again.key == fam.key
    for a, b in zip(fam.branches, again.branches, strict=True):
        for (ka, va), (kb, vb) in zip(
            a.model.state_dict().items(), b.model.state_dict().items(), strict=True
        ):
            assert ka == kb and torch.equal(va, vb)
        assert a.stop == b.stop and a.history == b.history
    with pytest.raises(ValueError, match="wants 32 px"):
        sc.train_family("vgg", _family_spec(image_size=32), tiny_splits, **_protocol(n_branches=1))


# ---------------------------------------------------------------------------- scoring


def test_score_heatmaps_of_the_ground_truth_itself():
    cells = sc.make_splits(size=16, n_train=1, n_val_shards=1, shard_size=10, n_test=9, seed=1).test
    h = cells.heatmap[:, None].repeat(1, 3, 1, 1).double().numpy()  # (N, 3, H, W): a perfect explanation
    out = sc.score_heatmaps(h, cells.heatmap, fp_rule=_FP)
    blank = (cells.y == 9).numpy()  # no object pixel: P = R = 0 whatever the map
    np.testing.assert_allclose(out["soft_precision_best"][~blank], 1.0, atol=1e-5)
    np.testing.assert_allclose(out["soft_recall_best"][~blank], 1.0, atol=1e-5)
    assert (out["soft_precision_best"][blank] == 0).all() and (out["soft_recall_best"][blank] == 0).all()
    np.testing.assert_allclose(out["other_fp_recall_avg"], out["soft_recall_avg"])  # no rule changes recall
    assert (out["other_fp_precision_avg"] <= out["soft_precision_avg"] + 1e-12).all()  # literal FP >= authors'
    out = sc.score_heatmaps(h[~blank], cells.heatmap[~blank], fp_rule=_FP)
    np.testing.assert_allclose(out["soft_precision_best"], 1.0, atol=1e-5)
    np.testing.assert_allclose(out["soft_recall_best"], 1.0, atol=1e-5)
    np.testing.assert_allclose(out["soft_fpr_best"], 0.0, atol=1e-9)  # at t_0 nothing is misplaced
    assert (out["soft_fpr_avg"] > 0).all()  # later, 0.44 (body) moves into band 2: wrong-band FP
    assert (out["soft_recall_avg"] < 1.0).all()  # 0.4 / 0.9 = 0.44 leaves band 1 for the lower thresholds
    np.testing.assert_allclose(out["abs_recall_avg"], out["soft_recall_avg"])  # no negative values
    np.testing.assert_allclose(out["density"], (cells.heatmap.numpy() > 0).mean(axis=(1, 2)))
    assert out["soft_roc_fpr"].shape == (56,) and out["clamped_roc_recall"].shape == (41,)


def test_abs_variant_recovers_negated_maps():
    cells = sc.make_splits(size=16, n_train=1, n_val_shards=1, shard_size=10, n_test=9, seed=1).test
    h = -cells.heatmap[:, None].double().numpy()
    out = sc.score_heatmaps(h, cells.heatmap, fp_rule=_FP)
    np.testing.assert_allclose(out["soft_recall_best"], 0.0, atol=1e-9)  # all object pixels in negative bands
    blank = (cells.y == 9).numpy()
    np.testing.assert_allclose(out["abs_recall_best"][~blank], 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="fp rule"):
        sc.score_heatmaps(h, cells.heatmap, fp_rule="paper")


def test_pearson_per_sample():
    a = np.random.default_rng(0).normal(size=(3, 4, 4))
    np.testing.assert_allclose(sc.pearson(a, a), 1.0)
    np.testing.assert_allclose(sc.pearson(a, -2 * a + 1), -1.0)
    assert np.isnan(sc.pearson(a, np.zeros_like(a))).all()


def test_near_zero_baselines_are_seeded_and_small():
    x = torch.zeros(2, 3, 8, 8)
    near_zero = {"baselines": "near_zero", "n_baselines": 3}
    kw = sc.resolve_params("deeplift_shap", near_zero, _NET, x, seed=0)
    assert set(kw) == {"baselines", "seed"} and kw["baselines"].shape == (3, 3, 8, 8)
    assert 0 < kw["baselines"].abs().max() < 0.01
    again = sc.resolve_params("deeplift_shap", near_zero, _NET, x, seed=0)
    torch.testing.assert_close(kw["baselines"], again["baselines"])
    assert sc.resolve_params("saliency", None, _NET, x, seed=0) == {}


def test_guided_gradcam_layer_is_the_first_convolution_of_every_family():
    """The authors' layer (``net.select_first_layer()``): ``layer="first_conv"`` resolves per model."""
    assert sc.resolve_params("guided_gradcam", {"layer": sc.FIRST_CONV}, _NET, torch.zeros(1, 3, 8, 8),
                             seed=0) == {"layer": _NET[1]}
    for arch in sorted({spec["arch"] for spec in _DEFAULTS["families"].values()}):
        model = models.build(arch, 10)
        x = torch.rand(1, 3, 32, 32)
        seen = []
        hook = sc.first_conv(model).register_forward_hook(lambda m, i, o, seen=seen: seen.append(i[0]))
        model.eval()(x)
        hook.remove()
        torch.testing.assert_close(seen[0], model.normalize(x), msg=arch)  # it sees the (normalised) image
    with pytest.raises(ValueError, match="no Conv2d"):
        sc.first_conv(torch.nn.Linear(2, 2))


def test_the_chapter_seed_reaches_every_random_draw():
    x = torch.zeros(2, 3, 8, 8)
    near_zero = {"baselines": "near_zero", "n_baselines": 3}
    a, b = (sc.resolve_params("deeplift_shap", near_zero, _NET, x, seed=s) for s in (0, 1))
    assert not torch.equal(a["baselines"], b["baselines"]) and a["seed"] != b["seed"]
    assert sc.resolve_params("gradient_shap", {"seed": 7}, _NET, x, seed=0)["seed"] == 7  # explicit seed wins


# ---------------------------------------------------------------------------- evaluation and summaries


@pytest.fixture(scope="module")
def tiny_eval(tmp_path_factory):
    splits = sc.make_splits(size=16, n_train=40, n_val_shards=2, shard_size=10, n_test=12, seed=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config, "CACHE_DIR", tmp_path_factory.mktemp("cache"))
        specs = {
            "vgg": _family_spec(),
            "alexnet": _family_spec(arch="small_alexnet", arch_kwargs={"width": 2, "hidden": 8}),
        }
        fams = sc.train_families(specs, {"vgg": splits, "alexnet": splits}, **_protocol())
        methods = ["saliency", "deeplift", "deeplift_shap", "guided_gradcam"]
        params = {m: p for m, p in _DEFAULTS["method_params"].items() if m in methods}
        ev = sc.evaluate(
            fams,
            {"vgg": splits, "alexnet": splits},
            methods=methods,
            method_params=params,
            batch_size=5,
            progress=False,
            fp_rule=_FP,
            **_RUN,
        )
        again = sc.evaluate(
            fams,
            {"vgg": splits, "alexnet": splits},
            methods=methods,
            method_params=params,
            batch_size=3,
            progress=False,
            fp_rule=_FP,
            **_RUN,
        )
    return fams, ev, methods, splits, again


def test_evaluate_tables(tiny_eval):
    fams, ev, methods, splits, _ = tiny_eval
    n = len(splits.test)
    assert len(ev.samples) == 2 * 2 * len(methods) * len(sc.VARIANTS) * n
    score_cols = [c for c in ev.samples if c.endswith(("_avg", "_best"))]
    assert ev.samples[score_cols].to_numpy().min() >= 0 and ev.samples[score_cols].to_numpy().max() <= 1
    assert (ev.samples.groupby(["family", "branch", "method", "variant"]).size() == n).all()
    assert len(ev.roc) == 2 * 2 * len(methods) * (56 + 41)
    assert set(ev.accuracy["stop"]) <= {"target", "early", "epochs"}
    assert set(ev.similarity["pair"]) == {"DeepLift vs DeepLiftShap", "Saliency vs DeepLift"}
    # the "best" of a score is at least its average over thresholds (FPR: at most)
    s = ev.samples
    assert (s["recall_best"] >= s["recall_avg"] - 1e-12).all() and (
        s["fpr_best"] <= s["fpr_avg"] + 1e-12
    ).all()


def test_evaluate_cache_gives_identical_tables(tiny_eval):
    _, ev, _, _, again = tiny_eval
    assert again.from_cache and not ev.from_cache
    pd.testing.assert_frame_equal(again.samples, ev.samples)


def test_evaluate_matches_a_direct_computation(tiny_eval):
    fams, ev, _, tiny_splits, _ = tiny_eval
    from xai_utils.attribution import attribute
    from xai_utils.metrics import fiveband

    model = fams["vgg"].branches[1].model
    x = tiny_splits.test.x
    pred = model(x).argmax(1)
    direct = fiveband.five_band_scores(
        attribute("saliency", model, x, pred, **_DEFAULTS["method_params"]["saliency"]),
        tiny_splits.test.heatmap,
    )
    sel = ev.samples.query("family == 'vgg' and branch == 2 and method == 'saliency' and variant == 'soft'")
    np.testing.assert_allclose(sel["recall_avg"], direct.avg("recall"), atol=1e-6)
    np.testing.assert_allclose(sel["precision_best"], direct.best("precision"), atol=1e-6)


def test_evaluate_rejects_unknown_methods(tiny_eval):
    fams, _, _, tiny_splits, _ = tiny_eval
    with pytest.raises(ValueError, match="unknown methods"):
        sc.evaluate(fams, {"vgg": tiny_splits, "alexnet": tiny_splits}, methods=["lime"], method_params={},
                    batch_size=5, progress=False, fp_rule=_FP, **_RUN)
    with pytest.raises(ValueError, match="fp rule"):
        sc.evaluate(fams, {"vgg": tiny_splits, "alexnet": tiny_splits}, methods=["saliency"], method_params={},
                    batch_size=5, progress=False, fp_rule="paper", **_RUN)
    with pytest.raises(ValueError, match="method_params for methods not evaluated"):
        sc.evaluate(
            fams,
            {"vgg": tiny_splits, "alexnet": tiny_splits},
            methods=["saliency"],
            method_params={"deeplift": {}},
            batch_size=5,
            progress=False,
            fp_rule=_FP,
            **_RUN,
        )


def test_summaries_and_checks(tiny_eval):
    fams, ev, methods, _, _ = tiny_eval
    pts = sc.points(ev.samples)
    assert len(pts) == len(sc.VARIANTS) * 2 * len(methods) * 2
    t = sc.method_table(ev.samples)
    assert t.shape == (len(methods), 2 * 5)
    g = sc.abs_gain(ev.samples)
    np.testing.assert_allclose(
        g.xs("gain", axis=1, level=1),
        g.xs("R avg |h|", axis=1, level=1) - g.xs("R avg signed", axis=1, level=1),
        atol=2e-3,
    )
    numbers = report.paper_numbers("synthetic_cells")
    t1 = sc.table1(fams, ev.accuracy, numbers)
    assert t1.loc[("VGG", "paper"), "<Acc.>"] == pytest.approx(0.986)
    assert t1.loc[("VGG", "ours"), "H,W"] == 16
    chk = sc.checks(ev)
    assert set(chk) == {
        "accuracy",
        "recall_low",
        "top_recall",
        "saliency_fpr",
        "deconvolution",
        "poor_roc",
        "dl_dls_alike",
        "abs_recall",
        "clamping",
        "sparsity",
        "recall_order",
    }
    assert all(c["verdict"] in report.VERDICTS and c["ours"] for c in chk.values())
    for key in ("deconvolution", "sparsity", "clamping"):  # not evaluated here (two families only)
        assert chk[key]["verdict"] == "not testable here" and chk[key]["why"].startswith("needs")
    for key in ("dl_dls_alike", "abs_recall"):
        assert chk[key]["verdict"] == "holds by construction" and chk[key]["why"]
    # every check has the paper's wording; the checks with data baselines are sc.check_informative and
    # sc.check_artifacts, and extra_layers is a "not testable here" stated by the chapter
    others = {"dl_dls_alike_data", "dls_artifacts", "extra_layers"}
    assert set(chk) | others == set(report.paper_claims("synthetic_cells"))
    assert set(sc.accuracy_numbers(ev)) == {"table1.vgg.acc", "table1.alexnet.acc"}
    assert sc.roc_summary(ev.roc).shape[0] == 2 * len(methods)
    fpt = sc.fp_rule_table(ev)
    assert fpt.shape == (2, 2 * 2) and "[this chapter]" in fpt.index[0] and fpt.index[0].startswith("authors'")
    recall = fpt.xs("R avg", axis=1, level=1)
    np.testing.assert_allclose(recall.iloc[0], recall.iloc[1])
    views = sc.sample_views(ev.samples)
    assert views.shape == (3, 2 * 3) and (views.xs("share of samples", axis=1, level=1).iloc[0] == 1.0).all()
    soft = ev.samples[ev.samples["variant"] == "soft"]
    assert views.loc[views.index[0], ("VGG", "R avg")] == pytest.approx(
        soft.loc[soft["family"] == "vgg", "recall_avg"].mean(), abs=1e-3
    )


def test_every_sample_is_scored_and_blank_cells_score_zero(tiny_eval):
    """The authors' view: wrong predictions and the blank type-9 cells are scored too (P = R = 0 there)."""
    _, ev, methods, splits, _ = tiny_eval
    s = ev.samples
    assert (s.groupby(["family", "branch", "method", "variant"]).size() == len(splits.test)).all()
    blank = s[s["y"] == 9]
    scores = blank[["precision_avg", "recall_avg", "precision_best", "recall_best"]]
    assert len(blank) and (scores == 0).all().all()


def test_saliency_in_this_chapter_is_non_negative(tiny_eval):
    """|gradient| (captum's abs=True, the authors' call) in every preset and in the chapter's heatmaps."""
    fams, _, _, splits, _ = tiny_eval
    for preset in ("offline", "smoke", "full"):
        p = params.resolve("synthetic_cells", preset)
        assert p["method_params"]["saliency"] == {"abs": True}, preset
        assert p["method_params"]["guided_gradcam"] == {"layer": sc.FIRST_CONV}, preset
        assert p["fp_rule"] == "authors", preset
    model = fams["vgg"].branches[0].model
    h = sc.evaluation.heatmaps(model, splits.test.x, "saliency", torch.arange(len(splits.test)) % 10,
                               params=_DEFAULTS["method_params"]["saliency"], batch_size=5, **_RUN)
    assert (h >= 0).all() and (h > 0).any()


def test_protocol_numbers_match_the_paper_where_the_paper_fixes_them(tiny_splits):
    ours = sc.protocol_numbers(
        {"a": tiny_splits}, n_branches=5, target_acc=0.96, val_every=4, weight_decay=1e-5
    )
    table = report.compare("synthetic_cells", ours, kind="setting")
    fixed = [k for k in ours if k.startswith(("fiveband.", "train."))]
    np.testing.assert_allclose(table.loc[fixed, "ours - paper"], 0.0, atol=1e-9)


def test_galleries_pick_correct_and_wrong_predictions(tiny_eval):
    fams, _, _, tiny_splits, _ = tiny_eval
    g = sc.gallery_data(fams["vgg"], tiny_splits.test, classes=(3, 1), methods=["saliency"], method_params={},
                        batch_size=5, n_wrong=2, **_RUN)
    assert g.maps["saliency"].shape == (len(g.y), 3, 16, 16)
    n_ok = int((g.y == g.pred).sum())
    assert n_ok <= 2 and len(g.y) - n_ok <= 2
    import matplotlib

    matplotlib.use("Agg")
    for fig in (
        sc.plot_channels(g, methods=["saliency"]),
        sc.plot_bands([g], methods=["saliency"]),
        sc.plot_predictions([g], methods=["saliency"]),
    ):
        assert fig.axes


# ---------------------------------------------------------------------------- the chapter, smoke preset


def test_smoke_preset_runs(tmp_path, tmp_cache, monkeypatch):
    from xai_utils import run

    monkeypatch.setenv("XAI_CACHE_DIR", str(tmp_cache))  # the kernel is a new process
    out = run.execute("synthetic_cells", "smoke", out=tmp_path / "x.ipynb", progress=False)
    nb = json.loads(out.read_text())
    text = "\n".join(
        o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    html = "\n".join(
        "".join(o.get("data", {}).get("text/plain", ""))
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    assert "Provenance" in text and "preset: smoke" in text
    # the headline table: accuracies and scores are probabilities
    rows = re.findall(r"^(alexnet|resnet|vgg)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", html, re.M)
    assert {r[0] for r in rows} == {"alexnet", "resnet", "vgg"}
    assert all(0.0 <= float(v) <= 1.0 for r in rows for v in r[1:])
    assert "holds here" in html or "does not hold here" in html


# ---------------------------------------------------------------------------- presets and the full preset's weights


@pytest.mark.parametrize("preset", ["offline", "smoke", "full"])
def test_presets_validate(preset):
    p = params.resolve("synthetic_cells", preset)
    for name, spec in p["families"].items():
        sc.check_family(name, spec)
    assert set(p["methods"]) <= set(sc.METHODS) and set(p["method_params"]) <= set(p["methods"])


def test_pretrained_state_keeps_fitting_weights_and_a_fresh_head(tmp_path):
    torch.manual_seed(1)
    imagenet = models.SmallVGG(1000, width=2, image_size=16)
    path = tmp_path / "w.pth"
    torch.save(imagenet.state_dict(), path)
    kw = {"num_classes": 10, "width": 2, "image_size": 16}
    state = sc.pretrained_state("small_vgg", kw, str(path), seed=0)
    for k, v in imagenet.state_dict().items():
        if k.startswith("head."):
            assert state[k].shape[0] == 10
        else:
            assert torch.equal(state[k], v), k
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        sc.pretrained_state("small_vgg", kw, str(tmp_path / "missing.pth"), seed=0)


def test_informative_baselines_can_make_deeplift_shap_differ(tiny_eval):
    fams, _, _, tiny_splits, _ = tiny_eval
    splits = {"vgg": tiny_splits, "alexnet": tiny_splits}
    t = sc.informative_similarity(fams, splits, n_baselines=3, batch_size=5, **_RUN)
    assert list(t.index) == ["VGG", "AlexNet"] and t["r(DL, DLS data)"].between(-1, 1).all()
    assert (t["r(DL, DLS data)"] < 0.999).any()  # unlike near-zero baselines, data baselines change the maps
    diff = t["DL - DLS background (pp)"]
    assert ((t["low"] <= diff) & (diff <= t["high"])).all()
    np.testing.assert_allclose(diff, t["background DL (%)"] - t["background DLS data (%)"])
    again = sc.informative_similarity(fams, splits, n_baselines=3, batch_size=5, **_RUN)
    pd.testing.assert_frame_equal(t, again)  # seeded
    assert sc.check_informative(t)["verdict"] == "not testable here"  # no ResNet family here
    both = pd.DataFrame({"r(DL, DLS data)": [0.9, 0.5]}, index=["VGG", "ResNet"])
    assert sc.check_informative(both)["verdict"] == "does not hold"
    assert sc.check_informative(both.assign(**{"r(DL, DLS data)": 0.95}))["verdict"] == "holds"
    with pytest.raises(ValueError, match="n_baselines"):
        sc.informative_similarity(fams, splits, n_baselines=0, batch_size=5, **_RUN)


def test_background_share_is_the_mass_off_the_object():
    gt = np.zeros((4, 4, 4))
    gt[:, 1:3, 1:3] = 0.9
    gt[3] = 0.0  # a blank type-9 cell: no object pixel
    h = np.zeros((4, 3, 4, 4))
    h[0, :, 0, 0] = 1.0  # all mass on the background
    h[1, :, 1, 1] = -1.0  # all mass on the object (sign does not matter)
    h[2, :, 0, 0], h[2, :, 1, 1] = 1.0, 1.0  # half and half
    h[3, :, 0, 0] = 1.0
    share = sc.background_share(h, gt)
    np.testing.assert_allclose(share[:3], [100.0, 0.0, 50.0])
    assert np.isnan(share[3])
    assert np.isnan(sc.background_share(np.zeros((1, 3, 4, 4)), gt[:1])[0])  # an all-zero map


def test_artifact_verdict_reads_the_interval_of_alexnets_difference():
    cols = ["background DL (%)", "background DLS data (%)", "DL - DLS background (pp)", "low", "high"]
    above = pd.DataFrame([[60.0, 50.0, 10.0, 5.0, 15.0]], columns=cols, index=["AlexNet"])
    assert sc.check_artifacts(above)["verdict"] == "holds"
    assert sc.check_artifacts(above.assign(low=-15.0, high=-5.0))["verdict"] == "does not hold"
    assert sc.check_artifacts(above.assign(low=-1.0))["verdict"] == "not testable here"
    assert sc.check_artifacts(above.rename(index={"AlexNet": "VGG"}))["verdict"] == "not testable here"


def test_quality_pair_keeps_the_best_and_the_worst_recall_of_one_cell_type(tiny_eval):
    fams, _, _, tiny_splits, _ = tiny_eval
    cells = tiny_splits.train
    pred = sc.evaluation.predict(fams["vgg"].branches[0].model, cells.x, torch.device("cpu"), 64)
    # the tiny VGG is barely trained: label the cells with its predictions so that one type has many "correct"
    cells = dataclasses.replace(cells, y=pred)
    counts = np.bincount(pred.numpy(), minlength=10)
    kw = dict(method="deeplift", method_params={}, fp_rule=_FP, batch_size=5, **_RUN)
    none_cls = int(np.argmin(counts))
    none, table = sc.quality_pair(fams["vgg"], cells, cls=none_cls, **kw)
    assert counts.min() == 0 and len(none.y) == 0 and table.empty
    g, table = sc.quality_pair(fams["vgg"], cells, cls=int(np.argmax(counts)), **kw)
    assert g.maps["deeplift"].shape == (2, 3, 16, 16) and (g.y == g.pred).all()
    assert table.index.name == f"{counts.max()} correct type-{np.argmax(counts)} cells"
    assert table["R avg"].iloc[0] >= table["R avg"].iloc[1]
    import matplotlib

    matplotlib.use("Agg")
    assert len(sc.plot_bands([g], methods=["deeplift"], all_cells=True).axes) == 2 * 5
    assert len(sc.plot_bands([none], methods=["deeplift"], all_cells=True).axes) == 1  # says there is none
    assert len(sc.plot_predictions([g], methods=["deeplift"], cls=int(g.y[0])).axes) == 2  # one correct, no wrong
    assert len(sc.plot_predictions([none], methods=["deeplift"], cls=int(none_cls)).axes) == 1
