"""Tests of the s_and_i chapter: its tables, mask analysis, verdicts and the smoke preset end to end."""

from __future__ import annotations

import pickle
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from xai_utils import data, models, ood, report
from xai_utils.experiments import s_and_i as si

SETTINGS = si.SISettings(steps=2, step_size=0.3, accumulate="multiply", gradient="max_logit")


def _run_scores(tiny_resnet, tiny_images, shift: float = 0.0, scores=("msp", "gaia_z", "s_and_i")) -> si.RunScores:
    """ID = tiny_images, two OOD sets: brightened and noisy copies (the tiny net is untrained)."""
    sets = {"id": tiny_images, "bright": (tiny_images + 0.5).clamp(0, 1),
            "noisy": (tiny_images.flip(0) * 0.2 + shift).clamp(0, 1)}
    frames, dens = [], {}
    for name, x in sets.items():
        cols = si.score_images(tiny_resnet, x, scores=list(scores), fits={}, si=SETTINGS, batch_size=3)
        dens[name] = {k.split("/", 1)[1]: cols.pop(k).numpy() for k in [k for k in cols if "/" in k]}
        frames.append(pd.DataFrame({k: v.numpy() for k, v in cols.items()}).assign(set=name))
    sizes = tuple(m.num_features for m in ood.gaia_layers(tiny_resnet))
    return si.RunScores("tiny", pd.concat(frames, ignore_index=True), dens, sizes, {"bright": "far", "noisy": "far"},
                        tuple(scores))


def test_scores_and_densities_agree(tiny_resnet, tiny_images):
    rs = _run_scores(tiny_resnet, tiny_images)
    # the S&I column is the mean-square score of the kept densities, and equal to ood.s_and_i
    np.testing.assert_allclose(rs.values("s_and_i", "id"), -np.square(rs.densities["id"]["s_and_i"]).mean(1))
    np.testing.assert_allclose(rs.values("s_and_i", "id"),
                               ood.s_and_i(tiny_resnet, tiny_images, **SETTINGS.kw()).numpy())
    np.testing.assert_allclose(rs.values("gaia_z", "id"), ood.gaia_z(tiny_resnet, tiny_images).numpy())
    assert rs.densities["id"]["gaia"].shape[1] == sum(rs.layer_sizes)


def test_tables_have_the_papers_shape(tiny_resnet, tiny_images):
    rs = _run_scores(tiny_resnet, tiny_images)
    table = si.metrics_table(rs)
    assert list(table.index) == ["MSP", "GAIA-Z", "S&I"]
    assert list(table.columns.get_level_values(0).unique()) == ["bright", "noisy", "AVG"]
    fpr, auc = table[("AVG", "FPR95")], table[("AVG", "AUROC")]
    assert fpr.between(0, 100).all() and auc.between(0, 100).all()
    np.testing.assert_allclose(auc, table.xs("AUROC", axis=1, level=1)[["bright", "noisy"]].mean(1), atol=0.01)
    paper = si.paper_table("resnet34")
    assert paper.loc["S&I", ("AVG", "FPR95")] == 29.05 and paper.loc["GAIA", ("Textures", "AUROC")] == 97.09
    assert si.paper_table("bit").loc["S&I", ("AVG", "AUROC")] == 91.84
    avg = si.average_table({"tiny": rs}, {"tiny": "wrn40"})
    assert list(avg.index.get_level_values("method")) == ["MSP", "GAIA-Z", "S&I"]
    assert avg.loc[("tiny", "S&I"), "paper FPR95"] == 38.61
    # the paper's own inconsistencies are listed with what they recompute to
    assert {"table1.resnet34.react.avg.fpr95", "text.resnet34.odin_fpr_reduction"} <= set(si.paper_inconsistencies().index)
    react = [report.paper_numbers("s_and_i")["value"][f"table1.resnet34.react.{s}.fpr95"]
             for s in ("svhn", "lsun", "tin", "places", "textures")]
    assert round(float(np.mean(react)), 2) == 82.71  # what the ReAct note says


def test_a_bit_run_reads_table_2_with_the_a_variants(tiny_resnet, tiny_images):
    rs = _run_scores(tiny_resnet, tiny_images, scores=("msp", "gaia_z", "s_and_i", "gaia_a", "s_and_i_a"))
    runs, bb = {"cifar": rs, "inet": rs}, {"cifar": "resnet34", "inet": "bit"}
    avg = si.average_table(runs, bb)
    assert list(avg.loc["inet"].index) == ["MSP", "GAIA-A", "S&I-A"] and list(avg.loc["cifar"].index) == ["MSP", "GAIA-Z", "S&I"]
    assert avg.loc[("inet", "GAIA-A"), "paper AUROC"] == 91.67 and avg.loc[("inet", "S&I-A"), "paper FPR95"] == 37.31
    assert avg.loc[("cifar", "S&I"), "paper FPR95"] == 29.05
    large = si.claim_large_label_space(runs, bb, n_boot=50, seed=0)
    assert large["verdict"] in report.VERDICTS and "inet:" in large["ours"] and "cifar:" in large["ours"]
    with pytest.raises(ValueError, match="unknown paper backbone 'vit'"):
        si.paper_table("vit")


def test_flip_table_counts_what_the_product_switches_off(tiny_resnet, tiny_images):
    rs = _run_scores(tiny_resnet, tiny_images)
    flips = si.flip_table(rs)
    assert len(flips) == len(rs.layer_sizes) + 1
    for side in ("ID", "OOD"):
        off, nonzero = flips[f"{side}: switched off by S&I (%)"], flips[f"{side}: GAIA non-zero (%)"]
        assert (off >= 0).all() and (off <= nonzero).all()
    assert flips["ID: switched off by S&I (%)"].max() > 0  # a large step (0.3) does switch entries off
    agree = si.rank_agreement({"tiny": rs})
    assert -1 <= agree.loc["tiny", "Spearman r"] <= 1 and agree.loc["tiny", "images"] == 3 * len(tiny_images)


def test_alike_verdicts_read_the_intervals():
    assert si.decide_alike([(-0.5, 0.5), (-0.2, 0.9)], margin=1.0, what="x")["verdict"] == "holds"
    assert si.decide_alike([(-0.5, 0.5), (1.2, 3.0)], margin=1.0, what="x")["verdict"] == "does not hold"
    out = si.decide_alike([(-0.5, 1.5)], margin=1.0, what="x")
    assert out["verdict"] == "not testable here" and "x" in out["why"]


def test_claims_on_a_tiny_run_can_go_either_way(tiny_resnet, tiny_images):
    rs = _run_scores(tiny_resnet, tiny_images)
    bb = {"tiny": "resnet34"}
    like = si.claim_si_like_gaia({"tiny": rs}, bb, n_boot=50, seed=0)
    assert like["verdict"] in report.VERDICTS and "tiny:" in like["ours"]
    d, lo, hi = si.difference({s: rs.values("s_and_i", s) for s in ("id", "bright", "noisy")},
                              {s: rs.values("s_and_i", s) for s in ("id", "bright", "noisy")}, n_boot=50, seed=0)
    assert d == lo == hi == 0.0  # a score against itself: paired replicates cancel
    beats = si.claim_beats_baselines({"tiny": rs}, bb, baselines=["msp"], n_boot=50, seed=0)
    assert beats["verdict"] in report.VERDICTS and "S&I vs MSP" in beats["ours"]
    assert si.claim_beats_baselines({"tiny": rs}, bb, baselines=["energy"], n_boot=50, seed=0)["verdict"] == "not testable here"
    no_si_a = si.claim_beats_baselines({"tiny": rs}, {"tiny": "bit"}, baselines=["msp"], n_boot=50, seed=0)
    assert no_si_a["verdict"] == "not testable here" and "'s_and_i_a'" in no_si_a["why"]  # was a KeyError
    # without a run on a Table 2 backbone the large-label-space claim cannot be decided; with one it reads the
    # A variants there
    assert si.claim_large_label_space({"tiny": rs}, bb, n_boot=50, seed=0)["verdict"] == "not testable here"
    assert si.claim_si_like_gaia({"tiny": rs}, {"tiny": "bit"}, n_boot=50, seed=0)["verdict"] == "not testable here"


def test_spread_layers_keeps_the_ends():
    layers = list("abcdefghi")
    assert si.spread_layers(layers, 1) == ["a"]
    assert si.spread_layers(layers, 3) == ["a", "e", "i"]
    assert si.spread_layers(layers, 20) == layers
    with pytest.raises(ValueError, match="at least one"):
        si.spread_layers(layers, 0)


def test_smoke_preset_runs(tmp_path):
    from xai_utils.run import execute

    out = execute("s_and_i", "smoke", out=tmp_path / "x.ipynb", progress=False)
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for key in ("si_like_gaia", "beats_baselines", "eta_insensitive", "large_label_space"):
        assert report.paper_claims("s_and_i")[key]["text"] in text
    assert "split point" in text and "AVG AUROC" in text


def test_ablation_shows_the_chapters_own_setting_on_every_knob(tiny_resnet):
    from xai_utils import data

    bench = data.offline_benchmark(size=16, n_train=0, n_val=4, n_test=6, n_ood_val=2, n_ood_test=4, seed=0)
    run = si.Run("tiny", "cifar10", bench, tiny_resnet.float(), "tiny")
    abl = si.ablation(run, si=SETTINGS, etas=[0.0, 1.0], steps=[1], split_counts=[2, 50], n_id=6, n_ood=3,
                      batch_size=4, seed=0, use_cache=False, progress=False)
    n = len(ood.gaia_layers(tiny_resnet))
    assert list(abl.table.xs("eta", level="knob").index) == ["0", "0.3", "1"]  # 0.3: the setting's eta
    assert list(abl.table.xs("T", level="knob").index) == ["1", "2"]
    assert list(abl.table.xs("split points", level="knob").index) == ["2", str(n)]  # 50 -> all of them
    assert abl.table["AVG AUROC"].between(0, 100).all()
    # eta = 0 leaves every iterate at the input: the product has GAIA-Z's non-zero set, as T = 1 does
    np.testing.assert_allclose(abl.scores[("eta", "0")]["id"], abl.scores[("T", "1")]["id"])
    assert {k: len(v) for k, v in abl.scores[("T", "2")].items()} == {"id": 6, **dict.fromkeys(bench.ood, 3)}


# ------------------------------------------------------------------------------------ full preset, GAIA layout
def _gaia_root(root: Path, rng: np.random.Generator) -> None:
    """Tiny files in the GAIA / S&I authors' data_dir layout and their two CIFAR-100 checkpoints (random
    weights): the checkpoints' file names name the architecture."""
    base = root / "gaia_ood"
    (base / "cifar-100-python").mkdir(parents=True)
    (base / "cifar-100-python" / "test").write_bytes(pickle.dumps(
        {b"data": rng.integers(0, 256, (12, 3072), dtype=np.uint8), b"fine_labels": [i % 3 for i in range(12)]}))
    savemat(base / "test_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, 6), dtype=np.uint8),
                                      "y": np.arange(1, 7, dtype=np.uint8)[:, None]})
    for folder, side in (("LSUN/test", 32), ("Imagenet/test", 32), ("Places/a", 48), ("textures/images/banded", 40)):
        (base / folder).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8)).save(base / folder / f"{i}.png")
    (base / "models").mkdir()
    for arch, file in (("gaia_resnet34", "cifar100_resnet34.pth"), ("wrn40_2", "cifar100_wrn_40_2.pth")):
        torch.save({"state_dict": models.build(arch, 100).state_dict()}, base / "models" / file)


def test_full_runs_read_the_gaia_layout_with_the_authors_backbones(tmp_path):
    _gaia_root(tmp_path, np.random.default_rng(0))
    ckpts = ["gaia_ood/models/cifar100_resnet34.pth", "gaia_ood/models/cifar100_wrn_40_2.pth"]
    runs = si.make_runs("full", device="cpu", seed=0, data_root=str(tmp_path), sizes=[32], archs=["small_resnet"],
                        widths=[4], n_train=[10], n_id_val=4, n_id_test=8, n_ood_val=2, n_ood_test=4, epochs=1,
                        checkpoints=ckpts, benchmarks=["gaia_cifar100"], model_seeds=[0], retrain=False)
    assert list(runs) == ["gaia_cifar100/gaia_resnet34", "gaia_cifar100/wrn40_2"]
    bench = runs["gaia_cifar100/wrn40_2"].bench
    assert list(bench.ood) == ["svhn", "lsun", "tin", "places", "textures"]  # the paper's Table 1 columns
    assert len(bench.id_val) == 4 and len(bench.id_test) == 6 and bench.num_classes == 100  # 12 = 6 val + 6 test
    assert all(len(v["val"]) == 2 and len(v["test"]) == 3 for v in bench.ood.values())  # halves of 6, then capped
    assert bench.ood["places"]["test"].x.shape[-2:] == (32, 32)  # a centre crop, not a resize (their CenterCrop)
    places = data.image_folder(tmp_path / "gaia_ood" / "Places", size=32, fit="crop")
    raw = np.asarray(Image.open(tmp_path / "gaia_ood" / "Places" / "a" / "0.png"))
    torch.testing.assert_close(places.x[0], torch.from_numpy(raw[8:40, 12:44].transpose(2, 0, 1).copy()).float() / 255)
    # the authors' split points: ResNet34's 36 BNs with the shortcut BNs; WRN-40-2's 37 BNs and its pooled feature
    # (cal_method_cifar100_wrn.py: 38); GAIA-A's inner layers (hook.py): ResNet34's layer3 + layer4 BNs, WRN's BNs
    assert [len(ood.gaia_layers(r.model)) for r in runs.values()] == [36, 38]
    assert [len(ood.gaia_a_layers(r.model)) for r in runs.values()] == [13 + 7, 37]
    with pytest.raises(ValueError, match="names no architecture"):
        si.make_runs("full", device="cpu", seed=0, data_root=str(tmp_path), sizes=[32], archs=["small_resnet"],
                     widths=[4], n_train=[10], n_id_val=4, n_id_test=8, n_ood_val=2, n_ood_test=4, epochs=1,
                     checkpoints=["gaia_ood/models/best.pth"], benchmarks=["gaia_cifar100"], model_seeds=[0],
                     retrain=False)


def test_full_runs_read_the_gaia_imagenet_layout_with_bit(tmp_path, save_bit_as_the_authors):
    """Table 2's setting: ImageNet-1k val (1000 class folders) and iNaturalist / SUN / Places / Textures, each image
    stretched to 480 x 480, with a BiT-S-R101x1 checkpoint in the authors' layout; the CIFAR checkpoints beside it
    go to the CIFAR benchmark only."""
    rng = np.random.default_rng(0)
    _gaia_root(tmp_path, rng)
    base = tmp_path / "gaia_ood"
    for k in range(1000):
        (base / "imagenet" / "val" / f"n{k:08d}").mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)).save(base / "imagenet" / "val" / f"n{k:08d}" / "a.png")
    for folder in ("iNaturalist/images", "SUN/images"):
        (base / folder).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(base / folder / f"{i}.jpg")
    save_bit_as_the_authors(models.build("bit_s_r101x1", 1000), base / "models" / "BiT-S-R101x1-flat-finetune.pth.tar")
    ckpts = ["gaia_ood/models/cifar100_resnet34.pth", "gaia_ood/models/BiT-S-R101x1-flat-finetune.pth.tar"]
    kw = dict(device="cpu", seed=0, data_root=str(tmp_path), sizes=[32], archs=["small_resnet"], widths=[4],
              n_train=[10], n_id_val=3, n_id_test=4, n_ood_val=2, n_ood_test=2, epochs=1, model_seeds=[0], retrain=False)
    runs = si.make_runs("full", checkpoints=ckpts, benchmarks=["gaia_cifar100", "gaia_imagenet"], **kw)
    assert list(runs) == ["gaia_cifar100/gaia_resnet34", "gaia_imagenet/bit_s_r101x1"]
    bench = runs["gaia_imagenet/bit_s_r101x1"].bench
    assert list(bench.ood) == list(si.tables.PAPER_SETS["table2"]) and bench.num_classes == 1000
    assert len(bench.id_val) == 3 and len(bench.id_test) == 4 and len(set(bench.id_test.y.tolist())) == 4
    assert all(len(v["val"]) == 2 and len(v["test"]) == 2 for v in bench.ood.values())
    assert bench.ood["sun"]["test"].x.shape[1:] == (3, 480, 480) and bench.mean == (0.5, 0.5, 0.5)
    stretched = data.image_folder(base / "SUN", size=480, fit="stretch").x[0]
    raw = Image.open(base / "SUN" / "images" / "0.jpg").convert("RGB").resize((480, 480), Image.BILINEAR)
    torch.testing.assert_close(stretched, torch.from_numpy(np.asarray(raw).transpose(2, 0, 1).copy()).float() / 255)
    with pytest.raises(ValueError, match="unknown fit 'squash'"):
        data.image_folder(base / "SUN", size=8, fit="squash")
    with pytest.raises(ValueError, match="hold no net for gaia_imagenet.*bit"):
        si.make_runs("full", checkpoints=ckpts[:1], benchmarks=["gaia_imagenet"], **kw)
    (base / "imagenet" / "val" / "n00000000" / "a.png").unlink()
    (base / "imagenet" / "val" / "n00000000").rmdir()
    with pytest.raises(ValueError, match="999 class folders"):
        data.gaia_imagenet_benchmark(tmp_path, max_id=4)
