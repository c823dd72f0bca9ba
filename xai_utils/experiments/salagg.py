"""Experiments of the salagg chapter: Hanssen & Hammer, "XAI saliency maps can be used for OOD detection".

The chapter's loops live here so that the notebook only sets parameters, calls and displays:

* :func:`make_runs` builds the (benchmark, classifier) pairs of a preset: ``offline`` (cell benchmarks
  at 32 and 64 px with small ResNets trained here), ``real`` (the CIFAR-10 JPEG benchmark with the
  ResNet-20/56 checkpoints), ``full`` (OpenOOD v1.5 image lists and OpenOOD checkpoints), ``smoke``.
* :func:`compute_scores` computes, per image, the classical OOD scores and the 5 x 9 saliency
  aggregates (the maps are cached in :mod:`xai_utils.cache` keyed by model weights and images).
* The analysis functions turn those per-image scores into the paper's figures and tables: AUROC grids
  (Figs. 1, 3-6), correlation with the MLS (Fig. 2), SalAgg+MLS with validation selection and the
  bootstrap / Wilcoxon Table 1, the detector comparison of Table 2, and the appendix theorem.

AUROCs are in percent (ID = positive, higher score = more ID), averaged over the OOD sets of a group
("near" / "far") as OpenOOD does; "all" is the mean of near and far, averaged over runs (Fig. 1).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .. import cache, config, ood, report
from ..data.ood import Benchmark, Split, offline_benchmark, sub_seed
from ..metrics.ood import fpr_at_tpr
from ..metrics.stats import wilcoxon_vs_baseline
from ..models import accuracy

#: Display name -> (attribution registry name, the paper's parameters).  LIME and Occlusion use the
#: attribution package's default features: a 4 x 4 grid of equal rectangles, zero baseline.
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "LIME": ("lime", {"n_samples": 100, "p": 0.5, "kernel_width": 0.25, "distance": "mask_cosine"}),
    "Occlusion": ("occlusion", {"baseline": 0.0}),
    "GradCAM": ("gradcam", {}),
    "IG": ("integrated_gradients", {"baseline": "zero", "n_steps": 50}),
    "GBP": ("guided_backprop", {}),
}
AGGREGATES: tuple[str, ...] = tuple(ood.AGGREGATES)
SCALE_INVARIANT: tuple[str, ...] = ("cv", "rmd", "qcd")
#: Decimals of every AUROC (%) we show.  Our sets hold tens of OOD images, so one ID/OOD pair that swaps
#: order moves an AUROC by a few hundredths, and float rounding on another CPU can swap nearly tied
#: pairs (measured: 0.1-0.15 points on the real preset under ATEN_CPU_CAPABILITY=default); a second
#: decimal would only show that noise.  The paper's own numbers are shown as it printed them.
AUROC_DECIMALS = 1
#: The five example combinations of the paper's Table 1, and their ids in data/paper_numbers/salagg.yaml.
EXAMPLES: dict[str, str] = {
    "LIME": "norm",
    "Occlusion": "range",
    "GradCAM": "norm",
    "IG": "mean",
    "GBP": "norm",
}
PAPER_IDS: dict[str, str] = {
    "MLS": "mls",
    "LIME-norm": "lime_norm",
    "Occlusion-range": "occlusion_range",
    "GradCAM-norm": "gradcam_norm",
    "IG-mean": "ig_mean",
    "GBP-norm": "gbp_norm",
}
CLASSICAL: tuple[str, ...] = ("msp", "mls", "energy", "odin", "react", "gradnorm")
SCORE_NAMES: dict[str, str] = {
    "msp": "MSP",
    "mls": "MLS",
    "energy": "Energy",
    "odin": "ODIN",
    "react": "ReAct",
    "gradnorm": "GradNorm",
    "rankfeat": "RankFeat",
    "gaia_z": "GAIA-Z",
    "gaia_a": "GAIA-A",
    "s_and_i": "S&I",
    "s_and_i_a": "S&I-A",
}
#: OpenOOD v1.5 benchmarks (image lists under ``benchmark_imglist/<name>/``), for the ``full`` preset.
OPENOOD_V15: dict[str, dict[str, Any]] = {
    "cifar10": dict(
        num_classes=10,
        size=32,
        arch="openood_resnet18_32x32",
        norm="cifar10",
        ckpt="cifar10_resnet18_32x32_base_e100_lr0.1_default",
        near=("cifar100", "tin"),
        far=("mnist", "svhn", "texture", "places365"),
    ),
    "cifar100": dict(
        num_classes=100,
        size=32,
        arch="openood_resnet18_32x32",
        norm="cifar100",
        ckpt="cifar100_resnet18_32x32_base_e100_lr0.1_default",
        near=("cifar10", "tin"),
        far=("mnist", "svhn", "texture", "places365"),
    ),
    "imagenet200": dict(
        num_classes=200,
        size=224,
        arch="resnet18",
        norm="imagenet",
        ckpt="imagenet200_resnet18_224x224_base_e90_lr0.1_default",
        near=("ssb_hard", "ninco"),
        far=("inaturalist", "textures", "openimage_o"),
    ),
    "imagenet": dict(
        num_classes=1000,
        size=224,
        arch="resnet50",
        norm="imagenet",
        ckpt="imagenet_resnet50_tvsv1",
        near=("ssb_hard", "ninco"),
        far=("inaturalist", "textures", "openimage_o"),
    ),
}


Combos = Mapping[str, str] | Sequence[tuple[str, str]]


def pairs(combos: Combos) -> list[tuple[str, str]]:
    """(method, aggregate) pairs from a mapping ``{method: aggregate}`` or a sequence of pairs, deduplicated."""
    items = combos.items() if isinstance(combos, Mapping) else combos
    return list(dict.fromkeys((str(m), str(a)) for m, a in items))


def auroc(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """AUROC with ID positive via the Mann-Whitney U statistic (ties count 1/2); equals
    ``metrics.auroc`` (sklearn) without its per-call validation overhead, which dominates the
    thousands of small AUROCs of the bootstraps and grids.  (N_id,), (N_ood,) finite -> float."""
    from scipy.stats import rankdata

    a, b = np.asarray(id_scores, dtype=np.float64), np.asarray(ood_scores, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or not a.size or not b.size:
        raise ValueError(f"auroc needs two non-empty 1-D arrays, got shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("auroc: scores contain NaN/inf")
    ranks = rankdata(np.concatenate([a, b]))
    return float((ranks[: a.size].sum() - a.size * (a.size + 1) / 2) / (a.size * b.size))


def column(method: str, agg: str) -> str:
    """Name of the score column of one (saliency method, aggregate) pair, e.g. ``"GBP-norm"``."""
    return f"{method}-{agg}"


# ------------------------------------------------------------------------------------------ runs


@dataclass(frozen=True, eq=False)
class Run:
    """One benchmark with one classifier.  ``paper_key``: the paper's benchmark it stands in for."""

    name: str
    paper_key: str
    bench: Benchmark
    model: nn.Module
    model_name: str
    note: str = ""


def subsample(
    bench: Benchmark, *, n_id_val: int, n_id_test: int, n_ood_val: int, n_ood_test: int, seed: int = 0
) -> Benchmark:
    """Seeded random subsets of every split (at most the given sizes); the same seed, the same images."""

    def pick(split: Split, n: int, name: str) -> Split:
        if len(split) <= n:
            return split
        return split.subset(np.sort(np.random.default_rng(sub_seed(seed, name)).permutation(len(split))[:n]))

    ood_sets = {
        k: {"val": pick(v["val"], n_ood_val, f"{k}_val"), "test": pick(v["test"], n_ood_test, f"{k}_test")}
        for k, v in bench.ood.items()
    }
    return replace(
        bench,
        id_val=pick(bench.id_val, n_id_val, "id_val"),
        id_test=pick(bench.id_test, n_id_test, "id_test"),
        ood=ood_sets,
    )


def _offline_runs(
    *,
    sizes: Sequence[int],
    archs: Sequence[str],
    widths: Sequence[int],
    n_train: Sequence[int],
    n_val: int,
    n_test: int,
    n_ood_val: int,
    n_ood_test: int,
    epochs: int,
    seed: int,
    device: torch.device,
    progress: bool,
    retrain: bool,
) -> dict[str, Run]:
    from ..models import benchmark_classifier

    if not len(sizes) == len(archs) == len(widths) == len(n_train):
        raise ValueError(
            f"sizes {list(sizes)}, archs {list(archs)}, widths {list(widths)} and n_train "
            f"{list(n_train)} must have the same length"
        )
    runs = {}
    for size, arch, width, n_tr in zip(sizes, archs, widths, n_train, strict=True):
        bench = offline_benchmark(
            size=size,
            n_train=n_tr,
            n_val=n_val,
            n_test=n_test,
            n_ood_val=n_ood_val,
            n_ood_test=n_ood_test,
            seed=seed,
        )
        extra = dict(depth=8) if arch == "small_resnet" else dict(image_size=size) if arch == "small_vgg" else {}
        data_key = dict(generator="offline_benchmark", size=size, n_train=n_tr, n_val=n_val, seed=seed)
        res = benchmark_classifier(bench, data_key, arch=arch, width=width, epochs=epochs, seed=seed,
                                   device=device, progress=progress, retrain=retrain, **extra)
        key = "cifar10" if size <= 32 else "imagenet200"
        runs[bench.name] = Run(
            bench.name, key, bench, res.model.eval(), f"{arch} (width {width})", note=f"stand-in for {key}"
        )
    return runs


def _real_runs(
    *,
    data_root: str,
    checkpoints: Sequence[str],
    n_id_val: int,
    n_id_test: int,
    n_ood_val: int,
    n_ood_test: int,
    seed: int,
    device: torch.device,
) -> dict[str, Run]:
    """CIFAR-10 runs, one per checkpoint name or path; all are loaded and checked before the data."""
    from ..data.ood import NORMALISATION
    from ..data.real import cifar10_ood_benchmark
    from ..models.real import real_classifier, resolve_cifar_checkpoint

    root = config.data_root(data_root)
    mean, std = NORMALISATION["cifar10_akamaster"]  # the benchmark's normalisation, needed before it loads
    models: dict[str, tuple[Path, nn.Module]] = {}
    for ckpt in checkpoints:
        arch, path = resolve_cifar_checkpoint(ckpt, root)
        label = str(ckpt) if arch == f"cifar_{ckpt}" else path.stem  # a name, or the file's stem
        if label in models:
            raise ValueError(f"checkpoints {list(checkpoints)} name the run {label!r} twice")
        model = real_classifier(arch, path, num_classes=10, mean=mean, std=std, preset="real")
        models[label] = (path, model)
    bench = cifar10_ood_benchmark(root, seed=seed, preset="real")
    if (bench.mean, bench.std) != (mean, std):
        raise ValueError(f"models built with mean/std {mean}/{std}; the data has {bench.mean}/{bench.std}")
    bench = subsample(
        bench, n_id_val=n_id_val, n_id_test=n_id_test, n_ood_val=n_ood_val, n_ood_test=n_ood_test, seed=seed
    )
    return {
        f"cifar10/{label}": Run(
            f"cifar10/{label}", "cifar10", bench, m.to(device).eval(), label, note=f"checkpoint {path.name}"
        )
        for label, (path, m) in models.items()
    }


def openood_benchmark(
    root: str | Path, name: str, *, max_per_set: int | None = None, seed: int = 0, preset: str = "full"
) -> Benchmark:
    """An OpenOOD v1.5 benchmark from its image lists (``benchmark_imglist/<name>/{val,test}_*.txt``).

    ID val / test = ``val_<name>.txt`` / ``test_<name>.txt``; every OOD test list (``OPENOOD_V15``) is
    cut into seeded val / test halves, as the salagg paper splits the benchmarks.  Images are read
    relative to ``root`` (``images_classic/...`` or ``images_largescale/...`` as the lists say).
    """
    from ..data.ood import NORMALISATION
    from ..data.real import openood_imglist

    if name not in OPENOOD_V15:
        raise ValueError(f"unknown OpenOOD benchmark {name!r}; known: {sorted(OPENOOD_V15)}")
    spec, root = OPENOOD_V15[name], Path(root)
    lists = root / "benchmark_imglist" / name

    def load(stem: str) -> Split:
        return openood_imglist(
            lists / f"{stem}.txt", root, size=spec["size"], max_images=None, name=stem, preset=preset
        )

    id_val, id_test = load(f"val_{name}"), load(f"test_{name}")
    ood_sets: dict[str, dict[str, Split]] = {}
    groups: dict[str, str] = {}
    for group in ("near", "far"):
        for oname in spec[group]:
            split = load(f"test_{oname}")
            order = np.random.default_rng(sub_seed(seed, oname)).permutation(len(split))[:max_per_set]
            half = len(order) // 2
            neg = Split(split.x, torch.full((len(split),), -1, dtype=torch.int64), oname)
            ood_sets[oname] = {
                "val": neg.subset(np.sort(order[:half])),
                "test": neg.subset(np.sort(order[half:])),
            }
            groups[oname] = group
    mean, std = NORMALISATION[spec["norm"]]
    empty = Split(torch.zeros(0, *id_val.x.shape[1:]), torch.zeros(0, dtype=torch.int64), f"{name}_train")
    return Benchmark(
        name=name,
        id_train=empty,
        id_val=id_val,
        id_test=id_test,
        ood=ood_sets,
        groups=groups,
        num_classes=spec["num_classes"],
        mean=mean,
        std=std,
        image_size=spec["size"],
        class_names=tuple(str(k) for k in range(spec["num_classes"])),
    )


def _full_runs(
    *,
    data_root: str,
    benchmarks: Sequence[str],
    seeds: Sequence[int],
    n_id_val: int,
    n_id_test: int,
    n_ood_val: int,
    n_ood_test: int,
    seed: int,
    device: torch.device,
) -> dict[str, Run]:
    from ..models import real_classifier

    root = config.data_root(data_root)
    runs = {}
    for name in benchmarks:
        bench = subsample(
            openood_benchmark(root, name, seed=seed),
            n_id_val=n_id_val,
            n_id_test=n_id_test,
            n_ood_val=n_ood_val,
            n_ood_test=n_ood_test,
            seed=seed,
        )
        spec = OPENOOD_V15[name]
        for s in seeds:
            ckpt = root / "results" / spec["ckpt"] / f"s{s}" / "best.ckpt"
            model = (
                real_classifier(
                    spec["arch"],
                    ckpt,
                    num_classes=spec["num_classes"],
                    mean=bench.mean,
                    std=bench.std,
                    preset="full",
                )
                .to(device)
                .eval()
            )
            runs[f"{name}/s{s}"] = Run(f"{name}/s{s}", name, bench, model, spec["arch"], note=str(ckpt))
    return runs


def make_runs(
    preset: str,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    data_root: str = "",
    sizes: Sequence[int] = (32, 64),
    archs: Sequence[str] = ("small_resnet", "small_vgg"),
    widths: Sequence[int] = (16, 8),
    n_train: Sequence[int] = (2000, 1200),
    n_id_val: int = 200,
    n_id_test: int = 200,
    n_ood_val: int = 40,
    n_ood_test: int = 80,
    epochs: int = 8,
    checkpoints: Sequence[str] = ("resnet20", "resnet56"),
    benchmarks: Sequence[str] = ("cifar10",),
    model_seeds: Sequence[int] = (0, 1, 2),
    progress: bool = False,
    retrain: bool = False,
) -> dict[str, Run]:
    """The runs of a preset: ``offline``/``smoke`` (cell benchmarks of the given ``sizes``, classifiers
    ``archs``: shipped weights, or with ``retrain`` trained here and cached), ``real`` (CIFAR-10 JPEGs +
    the ResNet ``checkpoints``), ``full`` (OpenOOD v1.5 layout + OpenOOD checkpoints of ``model_seeds``).  Every evaluation split holds at most
    the given numbers of images.  Returns run name -> :class:`Run`."""
    device = config.resolve_device(device)
    sizes_kw = dict(
        n_id_val=n_id_val, n_id_test=n_id_test, n_ood_val=n_ood_val, n_ood_test=n_ood_test, seed=seed
    )
    if preset in ("offline", "smoke"):
        return _offline_runs(
            sizes=sizes,
            archs=archs,
            widths=widths,
            n_train=n_train,
            n_val=n_id_val,
            n_test=n_id_test,
            n_ood_val=n_ood_val,
            n_ood_test=n_ood_test,
            epochs=epochs,
            seed=seed,
            device=device,
            progress=progress,
            retrain=retrain,
        )
    if preset == "real":
        return _real_runs(data_root=data_root, checkpoints=checkpoints, device=device, **sizes_kw)
    if preset == "full":
        return _full_runs(
            data_root=data_root, benchmarks=benchmarks, seeds=model_seeds, device=device, **sizes_kw
        )
    raise ValueError(f"unknown preset {preset!r}; known: 'offline', 'smoke', 'real', 'full'")


def accuracy_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Per run: model, ID test accuracy (%), and the numbers of images in every split."""
    rows = []
    for name, run in runs.items():
        b = run.bench
        rows.append(
            {
                "run": name,
                "model": run.model_name,
                "ID test accuracy (%)": round(100 * accuracy(run.model, b.id_test.x, b.id_test.y), 2),
                "ID val": len(b.id_val),
                "ID test": len(b.id_test),
                **{
                    f"{k} ({b.groups[k]}) val/test": f"{len(v['val'])}/{len(v['test'])}"
                    for k, v in b.ood.items()
                },
            }
        )
    return pd.DataFrame(rows).set_index("run")


# ---------------------------------------------------------------------------------------- scores


def _digest(*items: Tensor | Mapping[str, Tensor]) -> str:
    h = hashlib.sha256()
    for item in items:
        tensors = [item[k] for k in sorted(item)] if isinstance(item, Mapping) else [item]
        for t in tensors:
            h.update(str((tuple(t.shape), t.dtype)).encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def method_specs(
    methods: Sequence[str], *, ig_steps: int = 50, lime_samples: int = 100
) -> dict[str, tuple[str, dict]]:
    """``METHODS`` restricted to ``methods`` with IG's steps and LIME's samples set."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown saliency methods {unknown}; known: {list(METHODS)}")
    specs = {m: (METHODS[m][0], dict(METHODS[m][1])) for m in methods}
    if "IG" in specs:
        specs["IG"][1]["n_steps"] = int(ig_steps)
    if "LIME" in specs:
        specs["LIME"][1]["n_samples"] = int(lime_samples)
    return specs


def saliency_aggregates(
    model: nn.Module,
    x: Tensor,
    specs: Mapping[str, tuple[str, dict]],
    aggregates: Sequence[str] = AGGREGATES,
    *,
    batch_size: int = 64,
    chunk_size: int | None = 64,
) -> dict[str, Tensor]:
    """Every aggregate of every method's map, for the predicted class.  x : (N, C, H, W).

    ``batch_size`` images per attribution call (and per IG internal batch); ``chunk_size`` perturbed
    images per forward pass of LIME / Occlusion (None: measured; ~64 is best on CPU, and a fixed value
    keeps timings stable on a busy machine).  Returns column name (``"GBP-norm"``) -> (N,) float64.
    """
    from ..attribution import attribute

    out: dict[str, list[Tensor]] = {column(m, a): [] for m in specs for a in aggregates}
    for xb in x.split(batch_size):
        with torch.no_grad():
            target = model(xb).argmax(1)
        for m, (name, params) in specs.items():
            extra = {"internal_batch_size": batch_size} if name == "integrated_gradients" else {}
            if name in ("lime", "occlusion", "kernel_shap"):
                extra = {"chunk_size": chunk_size}
            maps = attribute(name, model, xb, target=target, **params, **extra).detach().double()
            for a in aggregates:
                values, undefined = _aggregate(a, maps)
                out[column(m, a)].append(values.cpu())
                if a in SCALE_INVARIANT:
                    out.setdefault(f"undefined/{column(m, a)}", []).append(undefined.double().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def undefined_table(scores: Mapping[str, Scores]) -> pd.DataFrame:
    """Per run: how many images had an undefined scale-invariant aggregate (set to 0), per column."""
    rows = {
        n: {"images": s.notes.get("images", len(s.table)), **s.notes.get("undefined", {})}
        for n, s in scores.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)


def _aggregate(name: str, maps: Tensor) -> tuple[Tensor, Tensor]:
    """``ood.AGGREGATES[name](maps)`` -> ((N,), (N,) bool undefined).  A scale-invariant aggregate whose
    denominator is 0 for a sample (e.g. GBP maps with Q1 = Q3 = 0) gets 0 there, and the sample is flagged."""
    fn = ood.AGGREGATES[name]
    try:
        return fn(maps), torch.zeros(len(maps), dtype=torch.bool)
    except ValueError:
        if name not in SCALE_INVARIANT:
            raise
    values, undefined = torch.zeros(len(maps), dtype=torch.float64), torch.zeros(len(maps), dtype=torch.bool)
    for i in range(len(maps)):  # only on the rare failure path: find which samples are undefined
        try:
            values[i] = fn(maps[i : i + 1])[0]
        except ValueError:
            undefined[i] = True
    return values, undefined


def _split_saliency(
    model: nn.Module,
    x: Tensor,
    specs: Mapping[str, tuple[str, dict]],
    aggregates: Sequence[str],
    batch_size: int,
    use_cache: bool,
) -> dict[str, Tensor]:
    if not specs:
        return {}
    if not use_cache:
        return saliency_aggregates(model, x, specs, aggregates, batch_size=batch_size)

    cfg = {
        "model": _digest(model.state_dict()),
        "x": _digest(x),
        "specs": {k: list(v) for k, v in specs.items()},
        "aggregates": list(aggregates),
    }
    return cache.load_or_build(  # key: this module's import closure (attribution, ood, ... included)
        "salagg_scores",
        cfg,
        lambda: saliency_aggregates(model, x, specs, aggregates, batch_size=batch_size),
        code=[sys.modules[__name__]],
    )


def classical_scores(
    model: nn.Module, x: Tensor, names: Sequence[str], fits: Mapping[str, Any], batch_size: int = 256
) -> dict[str, Tensor]:
    """``ood.SCORES`` on x in batches (``fits[name]`` passed as ``fit=``), plus ``pred`` and
    ``mls_minus_bias`` (the MLS without the predicted class's bias, for the appendix theorem)."""
    unknown = [n for n in names if n not in ood.SCORES]
    if unknown:
        raise ValueError(f"unknown OOD scores {unknown}; known: {sorted(ood.SCORES)}")
    out: dict[str, list[Tensor]] = {n: [] for n in (*names, "pred", "mls_minus_bias")}
    bias = model.head.bias
    for xb in x.split(batch_size):
        for n in names:
            kw = {"fit": fits[n]} if n in fits else {}
            out[n].append(ood.SCORES[n](model, xb, **kw).detach().double().cpu())
        with torch.no_grad():
            logits = model(xb)
        pred = logits.argmax(1)
        out["pred"].append(pred.double().cpu())
        mls = logits.amax(1) - (bias[pred] if bias is not None else 0.0)
        out["mls_minus_bias"].append(mls.detach().double().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


@dataclass(frozen=True, eq=False)
class Scores:
    """Per-image scores of one run: ``table`` has one row per image with ``set`` ("id" or an OOD set
    name), ``part`` ("val"/"test"), and one column per score (higher = more ID for classical scores;
    saliency aggregates raw).  ``groups``: OOD set -> "near"/"far"."""

    name: str
    paper_key: str
    table: pd.DataFrame
    groups: dict[str, str]
    methods: tuple[str, ...]
    aggregates: tuple[str, ...]
    classical: tuple[str, ...]
    notes: dict[str, Any] = field(default_factory=dict)

    def values(self, col: str, set_name: str, part: str) -> np.ndarray:
        t = self.table
        v = t.loc[(t["set"] == set_name) & (t["part"] == part), col].to_numpy(np.float64)
        if v.size == 0:
            raise ValueError(f"{self.name}: no rows for set {set_name!r}, part {part!r}")
        return v

    @property
    def saliency_columns(self) -> list[str]:
        return [column(m, a) for m in self.methods for a in self.aggregates]


def compute_scores(
    runs: Mapping[str, Run],
    *,
    methods: Sequence[str] = tuple(METHODS),
    aggregates: Sequence[str] = AGGREGATES,
    classical: Sequence[str] = CLASSICAL,
    ig_steps: int = 50,
    lime_samples: int = 100,
    batch_size: int = 64,
    use_cache: bool = True,
    progress: bool = False,
) -> dict[str, Scores]:
    """Per-image classical scores and saliency aggregates of every split of every run.

    ReAct (and any score in ``ood.FITTED``) is fitted on the ID validation images.  Saliency maps are
    cached per (model weights, images, method parameters).  Returns run name -> :class:`Scores`.
    """
    classical = tuple(dict.fromkeys(("mls", "msp", *classical)))
    specs = method_specs(methods, ig_steps=ig_steps, lime_samples=lime_samples)
    out = {}
    for name, run in runs.items():
        b, model = run.bench, run.model
        dev = next(model.parameters()).device
        fits = {n: ood.FITTED[n](model, b.id_val.x.to(dev)) for n in classical if n in ood.FITTED}
        parts = [("id", "val", b.id_val), ("id", "test", b.id_test)]
        parts += [(k, p, v[p]) for k, v in b.ood.items() for p in ("val", "test")]
        frames, undefined = [], {}
        for set_name, part, split in config.progress(parts, desc=f"scores {name}", disable=not progress, leave=False):
            x = split.x.to(dev)
            cols = classical_scores(model, x, classical, fits)
            cols.update(_split_saliency(model, x, specs, aggregates, batch_size, use_cache))
            for k in [k for k in cols if k.startswith("undefined/")]:
                flags = cols.pop(k)
                undefined[k.split("/", 1)[1]] = undefined.get(k.split("/", 1)[1], 0) + int(flags.sum())
            frame = pd.DataFrame({k: v.numpy() for k, v in cols.items()})
            frame.insert(0, "part", part)
            frame.insert(0, "set", set_name)
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        out[name] = Scores(
            name,
            run.paper_key,
            table,
            dict(b.groups),
            tuple(methods),
            tuple(aggregates),
            classical,
            notes={"undefined": {k: v for k, v in undefined.items() if v}, "images": len(table)},
        )
    return out


# -------------------------------------------------------------------------------------- analyses


def set_aurocs(scores: Scores, columns: Sequence[str], part: str = "test") -> pd.DataFrame:
    """AUROC (%) of each column per OOD set and per group (mean over the group's sets).  Index: columns."""
    rows = {}
    for col in columns:
        id_v = scores.values(col, "id", part)
        row = {s: 100.0 * auroc(id_v, scores.values(col, s, part)) for s in scores.groups}
        present = []
        for g in ("near", "far"):
            vals = [row[k] for k, gg in scores.groups.items() if gg == g]
            row[g] = float(np.mean(vals)) if vals else float("nan")  # a benchmark without this group
            present += [row[g]] if vals else []
        row["all"] = float(np.mean(present))
        rows[col] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _grid(values: Mapping[str, float], methods: Sequence[str], aggregates: Sequence[str]) -> pd.DataFrame:
    g = pd.DataFrame(
        [[values[column(m, a)] for a in aggregates] for m in methods],
        index=list(methods),
        columns=list(aggregates),
    )
    g.index.name, g.columns.name = "method", "aggregate"
    return g


def auroc_grid(scores: Mapping[str, Scores], group: str = "all", part: str = "test") -> pd.DataFrame:
    """Methods x aggregates AUROC (%) of the aggregate alone, averaged over runs (Fig. 1: ``group="all"``;
    Figs. 3-6: one run, ``"near"`` or ``"far"``).  Raw aggregates: < 50 means larger on OOD."""
    if group not in ("near", "far", "all"):
        raise ValueError(f"group must be 'near', 'far' or 'all', got {group!r}")
    first = next(iter(scores.values()))
    tables = [set_aurocs(s, s.saliency_columns, part)[group] for s in scores.values()]
    return _grid(pd.concat(tables, axis=1).mean(axis=1), first.methods, first.aggregates)


def baseline_aurocs(
    scores: Mapping[str, Scores], names: Sequence[str] = ("mls", "msp"), part: str = "test"
) -> pd.DataFrame:
    """AUROC (%) of baseline scores per run and group (rows: run; columns: (score, group))."""
    rows = {n: set_aurocs(s, list(names), part)[["near", "far", "all"]].stack() for n, s in scores.items()}
    return pd.DataFrame(rows).T


def correlation_grid(
    scores: Mapping[str, Scores], part: str = "test", method: str = "pearson"
) -> pd.DataFrame:
    """Methods x aggregates correlation of each aggregate with the MLS over all images of ``part``
    (ID and OOD), averaged over runs (Fig. 2)."""
    first = next(iter(scores.values()))
    per_run = []
    for s in scores.values():
        t = s.table[s.table["part"] == part]
        per_run.append(t[s.saliency_columns].corrwith(t["mls"], method=method))
    return _grid(pd.concat(per_run, axis=1).mean(axis=1), first.methods, first.aggregates)


def fit_combination(scores: Scores, col: str, *, sign_rule: str = "mean") -> ood.SalAggFit:
    """SalAgg+MLS constants for one aggregate column: sigmas on ID val, sign from ID val vs all OOD val."""
    ood_val = np.concatenate([scores.values(col, s, "val") for s in scores.groups])
    return ood.fit_salagg(
        scores.values(col, "id", "val"), scores.values("mls", "id", "val"), ood_val, sign_rule=sign_rule
    )


def with_salagg(scores: Scores, combos: Combos) -> tuple[Scores, dict[str, ood.SalAggFit]]:
    """Add SalAgg+MLS columns ``"<method>-<agg>+MLS"`` for ``combos`` (method -> aggregate)."""
    table, fits = scores.table.copy(), {}
    for m, a in pairs(combos):
        col = column(m, a)
        fits[col] = fit_combination(scores, col)
        table[f"{col}+MLS"] = ood.salagg_mls(
            torch.tensor(table[col].to_numpy()), torch.tensor(table["mls"].to_numpy()), fits[col]
        ).numpy()
    return replace(scores, table=table), fits


def select_on_validation(scores: Mapping[str, Scores]) -> pd.DataFrame:
    """Validation AUROC (%) of SalAgg+MLS for every (method, aggregate), mean of near and far, averaged
    over runs; column ``selected`` names each method's best aggregate (the paper's sec. 5.3 selection)."""
    first = next(iter(scores.values()))
    per_run = []
    for s in scores.values():
        s2, _ = with_salagg(s, {})
        table = s2.table
        for c in s.saliency_columns:
            table[c] = ood.salagg_mls(
                torch.tensor(table[c].to_numpy()),
                torch.tensor(table["mls"].to_numpy()),
                fit_combination(s, c),
            ).numpy()
        per_run.append(set_aurocs(s2, s.saliency_columns, part="val")["all"])
    grid = _grid(pd.concat(per_run, axis=1).mean(axis=1), first.methods, first.aggregates)
    grid["selected"] = grid[list(first.aggregates)].idxmax(axis=1)
    return grid


def best_combination(selection: pd.DataFrame) -> list[tuple[str, str]]:
    """The single (method, aggregate) with the best validation AUROC of SalAgg+MLS, as a one-pair list."""
    grid = selection.drop(columns="selected").astype(float)
    m, a = grid.stack().idxmax()
    return [(str(m), str(a))]


def selected_combinations(selection: pd.DataFrame) -> dict[str, str]:
    """Method -> aggregate chosen on validation (from :func:`select_on_validation`)."""
    return dict(selection["selected"])


def _bootstrap_group(
    s: Scores, cols: Sequence[str], group: str, n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    sets = [k for k, g in s.groups.items() if g == group]
    id_all = {c: s.values(c, "id", "test") for c in cols}
    ood_all = {(c, k): s.values(c, k, "test") for c in cols for k in sets}
    rng = np.random.default_rng(sub_seed(seed, f"{s.name}/{group}"))
    out = {c: np.empty(n_boot) for c in cols}
    for b in range(n_boot):
        i_id = rng.integers(0, len(id_all[cols[0]]), len(id_all[cols[0]]))
        i_ood = {k: rng.integers(0, len(ood_all[(cols[0], k)]), len(ood_all[(cols[0], k)])) for k in sets}
        for c in cols:  # the same resample for every method: paired samples for the Wilcoxon test
            out[c][b] = 100.0 * np.mean([auroc(id_all[c][i_id], ood_all[(c, k)][i_ood[k]]) for k in sets])
    return out


def table1(
    scores: Mapping[str, Scores],
    combos: Combos = EXAMPLES,
    *,
    n_boot: int = 10,
    seed: int = 0,
    baseline: str = "MLS",
) -> pd.DataFrame:
    """Table 1: mean test AUROC (%) over ``n_boot`` paired bootstraps of SalAgg+MLS (``combos``) and the
    MLS, per run and group; one-sided Wilcoxon vs MLS, Bonferroni over the methods, stars.

    Returns a long frame indexed (run, group, method) with columns auroc, p, p_corrected, stars, paper_key.
    """
    rows = []
    for name, s in scores.items():
        s2, _ = with_salagg(s, combos)
        labels = {baseline: "mls", **{column(m, a): f"{column(m, a)}+MLS" for m, a in pairs(combos)}}
        for group in ("near", "far"):
            if group not in s.groups.values():  # e.g. a benchmark with far-OOD sets only
                continue
            boot = _bootstrap_group(s2, list(labels.values()), group, n_boot, seed)
            samples = {lab: boot[col] for lab, col in labels.items()}
            test = wilcoxon_vs_baseline(samples, baseline)
            rows.append(
                {
                    "run": name,
                    "group": group,
                    "method": baseline,
                    "auroc": samples[baseline].mean(),
                    "p": np.nan,
                    "p_corrected": np.nan,
                    "stars": "",
                    "paper_key": s.paper_key,
                }
            )
            for lab in test.index:
                rows.append(
                    {
                        "run": name,
                        "group": group,
                        "method": lab,
                        "auroc": samples[lab].mean(),
                        "p": test.loc[lab, "p"],
                        "p_corrected": test.loc[lab, "p_corrected"],
                        "stars": test.loc[lab, "stars"],
                        "paper_key": s.paper_key,
                    }
                )
    return pd.DataFrame(rows).set_index(["run", "group", "method"])


def table1_wide(t1: pd.DataFrame, decimals: int = AUROC_DECIMALS) -> pd.DataFrame:
    """Table 1 as the paper prints it: one row per (run, group), ``"87.80**"`` cells."""
    cells = t1["auroc"].round(decimals).map(lambda v: f"{v:.{decimals}f}") + t1["stars"]
    wide = cells.unstack("method")
    order = list(dict.fromkeys(t1.index.droplevel("method")))  # runs and groups in computed order
    return wide.reindex(pd.MultiIndex.from_tuples(order, names=["run", "group"]))[
        list(dict.fromkeys(t1.index.get_level_values("method")))
    ]


def paper_table1() -> pd.DataFrame:
    """The paper's Table 1 (all eight rows), cells ``"87.80**"``, from data/paper_numbers/salagg.yaml."""
    nums = report.paper_numbers("salagg")
    rows = {}
    for key in ("imagenet200", "imagenet1k", "cifar10", "cifar100"):
        for g in ("near", "far"):
            row = {}
            for label, pid in PAPER_IDS.items():
                ident = f"table1.{key}.{g}.{pid}"
                star = "**" if pid != "mls" and "Wilcoxon vs MLS: **" in nums.loc[ident, "what"] else ""
                row[label] = f"{nums.loc[ident, 'value']:.2f}{star}"
            rows[(key, g)] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = ["benchmark", "group"]
    return out


def compare_table1(t1: pd.DataFrame) -> pd.DataFrame:
    """``report.compare`` of our Table 1 (example combinations) with the paper's, per run."""
    frames = {}
    for run, t in t1.groupby(level="run", sort=False):
        key = t["paper_key"].iloc[0]
        ours = {}
        for (_, group, method), v in t["auroc"].items():
            pid = PAPER_IDS.get(method.replace("+MLS", ""))
            if pid is not None:
                ours[f"table1.{key}.{group}.{pid}"] = v
        for group in ("near", "far"):
            stars = t.xs(group, level="group")["stars"]
            ours[f"table1.{key}.{group}.n_significant"] = float((stars != "").sum())
        kinds = {k: "count" if k.endswith(".n_significant") else "auroc%" for k in ours}
        frames[run] = report.compare("salagg", ours, kind=kinds, decimals=AUROC_DECIMALS)
    return pd.concat(frames, names=["run"])


def compare_baselines(scores: Mapping[str, Scores], grid_all: pd.DataFrame) -> pd.DataFrame:
    """``report.compare`` of the MLS/MSP baselines (Figs. 1, 3-6) and GradCAM-norm alone (Fig. 1)."""
    figs = {
        ("cifar10", "near"): "fig3",
        ("cifar10", "far"): "fig4",
        ("imagenet200", "near"): "fig5",
        ("imagenet200", "far"): "fig6",
    }
    base = baseline_aurocs(scores)
    frames = {}
    for run, s in scores.items():
        ours = {
            f"{figs[(s.paper_key, g)]}.{s.paper_key}.{g}.{n}": base.loc[run, (n, g)]
            for g in ("near", "far")
            for n in ("mls", "msp")
            if (s.paper_key, g) in figs
        }
        if ours:
            frames[run] = report.compare("salagg", ours, kind="auroc%", decimals=AUROC_DECIMALS)
    overall = {"fig1.mls": base[("mls", "all")].mean(), "fig1.msp": base[("msp", "all")].mean()}
    if "GradCAM" in grid_all.index and "norm" in grid_all.columns:
        overall["fig1.best.gradcam_norm"] = grid_all.loc["GradCAM", "norm"]
    frames["all runs"] = report.compare("salagg", overall, kind="auroc%", decimals=AUROC_DECIMALS)
    return pd.concat(frames, names=["run"])


# -------------------------------------------------------------------------------------- figures


def plot_grid(
    grid: pd.DataFrame,
    *,
    title: str,
    center: float | None = 50.0,
    fmt: str = ".1f",
    ax=None,
    cbar: bool = True,
):
    """Annotated heatmap of a methods x aggregates frame; returns the Axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.2))
    sns.heatmap(
        grid.astype(float),
        annot=True,
        fmt=fmt,
        cmap="RdBu_r" if center is not None else "viridis",
        center=center,
        ax=ax,
        cbar=cbar,
        annot_kws={"size": 8},
    )
    ax.set_title(title)
    ax.set_xlabel("aggregate")
    ax.set_ylabel("saliency method")
    return ax


def plot_grids(scores: Mapping[str, Scores], part: str = "test"):
    """Figs. 3-6: one AUROC heatmap per run and group (rows: runs; columns: near, far); returns the Figure."""
    import matplotlib.pyplot as plt

    n = len(scores)
    fig, axes = plt.subplots(n, 2, figsize=(13, 3.0 * n), squeeze=False)
    base = baseline_aurocs(scores, part=part)
    for i, (name, s) in enumerate(scores.items()):
        for j, g in enumerate(("near", "far")):
            grid = auroc_grid({name: s}, group=g, part=part)
            plot_grid(
                grid,
                title=f"{name}, {g}-OOD (MLS {base.loc[name, ('mls', g)]:.1f}, "
                f"MSP {base.loc[name, ('msp', g)]:.1f})",
                ax=axes[i, j],
                cbar=False,
            )
            if j:
                axes[i, j].set_ylabel("")
    fig.tight_layout()
    return fig


# -------------------------------------------------------------------------------------- theorem


def theorem_check(runs: Mapping[str, Run], scores: Mapping[str, Scores], n_images: int = 64) -> pd.DataFrame:
    """Appendix Theorem 1: mean(unrectified GradCAM at the last conv layer) = (MLS - b_c) / (h w).

    Per run: the largest |h w mean(CAM) + b_c - MLS| on ``n_images`` test images (and relative to |MLS|),
    and the test AUROCs (%) of GradCAM-mean, of MLS - b_c and of MLS (mean over all OOD sets).
    """
    from ..attribution import gradcam_raw

    rows = {}
    for name, run in runs.items():
        dev = next(run.model.parameters()).device
        x = run.bench.id_test.x[:n_images].to(dev)
        with torch.no_grad():
            logits = run.model(x)
        pred = logits.argmax(1)
        cam = gradcam_raw(run.model, x, pred).detach()
        hw = cam.shape[-2] * cam.shape[-1]
        bias = (
            run.model.head.bias.detach()[pred]
            if run.model.head.bias is not None
            else torch.zeros_like(pred, dtype=x.dtype)
        )
        err = (hw * cam.mean(dim=(1, 2, 3)) + bias - logits.amax(1)).abs()
        s = scores[name]
        cols = ["mls", "mls_minus_bias"] + (["GradCAM-mean"] if "GradCAM-mean" in s.table else [])
        au = set_aurocs(s, cols)
        sets = list(s.groups)
        row = {
            "feature map h x w": hw,
            "max |hw mean(CAM) + b_c - MLS|": float(err.max()),
            "relative to |MLS|": float((err / logits.amax(1).abs().clamp_min(1e-12)).max()),
            "AUROC MLS": float(au.loc["mls", sets].mean()),
            "AUROC MLS - b_c": float(au.loc["mls_minus_bias", sets].mean()),
        }
        if "GradCAM-mean" in au.index:
            row["AUROC GradCAM-mean"] = float(au.loc["GradCAM-mean", sets].mean())
            row["GradCAM-mean - (MLS - b_c)"] = row["AUROC GradCAM-mean"] - row["AUROC MLS - b_c"]
            row["GradCAM-mean - MLS"] = row["AUROC GradCAM-mean"] - row["AUROC MLS"]
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


#: Residuals of the theorem's identity below these bounds are float rounding; they are shown as "< bound"
#: because their digits differ from one CPU to the next.
THEOREM_TOL = {"relative": 1e-4, "absolute": 1e-3, "auroc": 1e-6}


def _bound(value: float, tol: float) -> str:
    return f"< {tol:.0e}" if abs(value) < tol else f"{value:.2e}"


def theorem_table(check: pd.DataFrame) -> pd.DataFrame:
    """:func:`theorem_check` for display: residuals below :data:`THEOREM_TOL` as "< bound", AUROCs in %."""
    out = check.copy()
    out["max |hw mean(CAM) + b_c - MLS|"] = out["max |hw mean(CAM) + b_c - MLS|"].map(
        lambda v: _bound(v, THEOREM_TOL["absolute"]))
    out["relative to |MLS|"] = out["relative to |MLS|"].map(lambda v: _bound(v, THEOREM_TOL["relative"]))
    for col in ("GradCAM-mean - (MLS - b_c)",):
        if col in out:
            out[col] = out[col].map(lambda v: _bound(v, THEOREM_TOL["auroc"]))
    return out.round(AUROC_DECIMALS)


# ------------------------------------------------------------------------------- Table 2 and scores


def detector_table(scores: Mapping[str, Scores], combos: Combos, *, part: str = "test") -> pd.DataFrame:
    """Table 2, measured: test AUROC (%) per run and group of every classical score and of SalAgg+MLS
    for ``combos``.  Index (run, detector); columns near, far."""
    frames = {}
    for name, s in scores.items():
        s2, _ = with_salagg(s, combos)
        cols = list(s.classical) + [f"{column(m, a)}+MLS" for m, a in pairs(combos)]
        t = set_aurocs(s2, cols, part)[["near", "far"]]
        t.index = [SCORE_NAMES.get(c, c) for c in cols]
        frames[name] = t
    out = pd.concat(frames, names=["run", "detector"])
    out["source"] = "measured here"
    return out


def paper_table2(keys: Sequence[str]) -> pd.DataFrame:
    """The paper's Table 2 rows for the benchmarks ``keys`` (reported numbers, not measured here)."""
    nums = report.paper_numbers("salagg")
    names = {
        "rotpred": "RotPred",
        "combood": "CombOOD",
        "oe_msp": "OE+MSP",
        "adascale_l": "AdaScale-L",
        "gbp_norm": "GBP-norm+MLS",
    }
    rows = {}
    for key in dict.fromkeys(keys):
        for pid, label in names.items():
            rows[(f"{key} (paper)", label)] = {
                g: nums.loc[f"table2.{key}.{g}.{pid}", "value"] for g in ("near", "far")
            }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = ["run", "detector"]
    out["source"] = "paper (reported; OpenOOD v1.5 numbers for the others)"
    return out


def table2(scores: Mapping[str, Scores], combos: Combos) -> pd.DataFrame:
    """Ours (measured) followed by the paper's Table 2 rows for the same benchmarks, AUROC (%)."""
    ours = detector_table(scores, combos)
    return pd.concat([ours.round(AUROC_DECIMALS), paper_table2([s.paper_key for s in scores.values()])])


def classical_table(scores: Mapping[str, Scores], *, part: str = "test") -> pd.DataFrame:
    """AUROC and FPR@95TPR (%) of every classical score per run and OOD set (rows: (run, score))."""
    frames = {}
    for name, s in scores.items():
        rows = {}
        for c in s.classical:
            id_v = s.values(c, "id", part)
            row = {}
            for k, g in s.groups.items():
                o = s.values(c, k, part)
                row[(f"{k} ({g})", "AUROC")] = 100.0 * auroc(id_v, o)
                row[(f"{k} ({g})", "FPR95")] = 100.0 * fpr_at_tpr(id_v, o)
            rows[SCORE_NAMES.get(c, c)] = row
        frames[name] = pd.DataFrame.from_dict(rows, orient="index")
    return pd.concat(frames, names=["run", "score"]).round(AUROC_DECIMALS)


# ---------------------------------------------------------------------------------------- claims


def claim_magnitude(grid_all: pd.DataFrame) -> dict[str, Any]:
    """Sec. 5.1: magnitude aggregates separate ID/OOD better than the scale-invariant CV, RMD, QCD."""
    inv = [a for a in SCALE_INVARIANT if a in grid_all.columns]
    mag = [a for a in grid_all.columns if a not in inv]
    dist = (grid_all - 50).abs() + 50  # a sign flip (S) turns AUROC a into 100 - a
    m, i = float(dist[mag].to_numpy().mean()), float(dist[inv].to_numpy().mean())
    return dict(
        text="magnitude aggregates (mean ... Q3) detect OOD better than the scale-invariant CV, RMD, QCD",
        paper="magnitude aggregates high, CV/RMD/QCD 'very poorly'",
        ours=f"mean sign-corrected AUROC {m:.1f} vs {i:.1f}",
        holds=m > i,
        ref="Fig. 1",
    )


def claim_beats_mls(grid_all: pd.DataFrame, scores: Mapping[str, Scores]) -> dict[str, Any]:
    """Sec. 5.1: the best aggregate alone beats the MLS (88.68 vs 88.23)."""
    mls = float(baseline_aurocs(scores)[("mls", "all")].mean())
    best = grid_all.stack().astype(float)
    where = best.idxmax()
    return dict(
        text="the best saliency aggregate alone beats the MLS (combined near + far)",
        paper="GradCAM-norm 88.68 vs MLS 88.23",
        ours=f"{where[0]}-{where[1]} {best.max():.{AUROC_DECIMALS}f} vs MLS {mls:.{AUROC_DECIMALS}f}",
        holds=best.max() > mls,
        ref="Fig. 1",
    )


def claim_gradcam_correlation(corr: pd.DataFrame) -> dict[str, Any]:
    """Sec. 5.2: GradCAM is by far the method most correlated with the MLS."""
    per_method = corr.abs().mean(axis=1)
    top = per_method.idxmax()
    return dict(
        text="GradCAM aggregates are the most correlated with the MLS; the other methods less",
        paper="GradCAM very strongly correlated, others less",
        ours="mean |r|: " + ", ".join(f"{k} {v:.2f}" for k, v in per_method.items()),
        holds=top == "GradCAM",
        ref="Fig. 2",
    )


def claim_theorem(check: pd.DataFrame) -> dict[str, Any]:
    """Appendix: mean GradCAM = (MLS - b_c)/(hw) exactly; its AUROC equals that of MLS - b_c."""
    rel = float(check["relative to |MLS|"].max())
    gap = (
        float(check["GradCAM-mean - (MLS - b_c)"].abs().max())
        if "GradCAM-mean - (MLS - b_c)" in check
        else np.nan
    )
    holds = rel < THEOREM_TOL["relative"] and (np.isnan(gap) or gap < THEOREM_TOL["auroc"])
    gap_text = "not computed" if np.isnan(gap) else _bound(gap, THEOREM_TOL["auroc"])
    return dict(
        text="mean of unrectified GradCAM = MLS up to the bias and the factor 1/(hw), hence equal AUROC",
        paper="equal (up to numerical imprecision)",
        ours=f"max relative error {_bound(rel, THEOREM_TOL['relative'])}; AUROC gap to MLS - b_c {gap_text} points",
        holds=holds,
        ref="Appendix, Theorem 1",
    )


def claim_significant(t1: pd.DataFrame) -> dict[str, Any]:
    """Table 1: several SalAgg+MLS methods are significantly better than MLS in most benchmarks."""
    stars = t1[t1.index.get_level_values("method") != "MLS"]["stars"]
    n_sig = (stars != "").groupby(level=["run", "group"]).sum()
    rows_ok = int((n_sig >= 2).sum())
    return dict(
        text="several SalAgg+MLS methods improve significantly over the MLS in most benchmarks",
        paper="7 of 8 rows have >= 2 significant methods",
        ours=f"{rows_ok} of {len(n_sig)} rows have >= 2 significant methods",
        holds=rows_ok > len(n_sig) / 2,
        ref="Table 1",
    )


def claim_gbp_far(t1: pd.DataFrame) -> dict[str, Any]:
    """Table 1: GBP-norm+MLS beats the MLS significantly on far-OOD (and is the best method there)."""
    far = t1.xs("far", level="group")
    ok, best, parts = [], [], []
    for run, t in far.groupby(level="run", sort=False):
        t = t.droplevel("run")
        if "GBP-norm" not in t.index:
            continue
        ok.append(t.loc["GBP-norm", "auroc"] > t.loc["MLS", "auroc"] and t.loc["GBP-norm", "stars"] != "")
        best.append(t["auroc"].idxmax() == "GBP-norm")
        parts.append(
            f"{run}: {t.loc['GBP-norm', 'auroc']:.{AUROC_DECIMALS}f}{t.loc['GBP-norm', 'stars']} vs MLS "
            f"{t.loc['MLS', 'auroc']:.{AUROC_DECIMALS}f}"
        )
    return dict(
        text="GBP-norm + MLS is significantly better than the MLS on far-OOD",
        paper="in all 4 benchmarks (and the best method in each)",
        ours="; ".join(parts) or "GBP not run",
        holds=bool(ok) and all(ok) if ok else None,
        ref="Table 1",
    )


def claim_close_to_best(
    t2: pd.DataFrame, detector: str = "GBP-norm+MLS", margin: float = 3.0
) -> dict[str, Any]:
    """Table 2: the best SalAgg+MLS method is close to (within ``margin`` points of) the best detector."""
    ours = t2[t2["source"] == "measured here"]
    gaps = []
    for _run, t in ours.groupby(level="run", sort=False):
        t = t.droplevel("run")
        if detector in t.index:
            gaps += [float(t[g].max() - t.loc[detector, g]) for g in ("near", "far")]
    worst = max(gaps) if gaps else float("nan")
    return dict(
        text=f"{detector} is close to the best detector (within {margin:g} AUROC points)",
        paper="not the best anywhere, but close to SoTA on most benchmarks",
        ours=f"largest gap to the best of our detectors {worst:.{AUROC_DECIMALS}f} points",
        holds=None if not gaps else worst <= margin,
        ref="Table 2",
    )


def subsample_runs(runs: Mapping[str, Run], sizes: Sequence[int], *, seed: int = 0) -> dict[str, Run]:
    """The runs with their benchmarks subsampled to ``sizes`` = [ID val, ID test, OOD val, OOD test]
    images (per OOD set); an empty ``sizes`` returns the runs unchanged (saliency on every image)."""
    if not sizes:
        return dict(runs)
    if len(sizes) != 4:
        raise ValueError(
            f"sizes must be [n_id_val, n_id_test, n_ood_val, n_ood_test] or [], got {list(sizes)}"
        )
    a, b, c, d = (int(v) for v in sizes)
    return {
        k: replace(r, bench=subsample(r.bench, n_id_val=a, n_id_test=b, n_ood_val=c, n_ood_test=d, seed=seed))
        for k, r in runs.items()
    }


def links(preset: str):
    """Markdown links between the executed versions of this chapter (relative to where each one lives)."""
    from IPython.display import Markdown

    if preset == "offline":
        text = (
            "The same chapter on real data: [real CIFAR-10 version](real/salagg.ipynb) (CIFAR-10 JPEGs, "
            "ImageNet / MNIST / DTD as OOD, pretrained ResNet-20 and ResNet-56)."
        )
    elif preset in ("real", "full"):
        text = "This is the version on real images; the stand-in version with generated data: [offline](../salagg.ipynb)."
    else:
        text = f"Preset `{preset}`: a quick check of the code, not a result."
    return Markdown(text)


def summary(
    scores: Mapping[str, Scores], grid_all: pd.DataFrame, t1: pd.DataFrame, check: pd.DataFrame
) -> dict[str, float]:
    """A few headline numbers (recorded with ``report.record`` for the book's overview and tests)."""
    base = baseline_aurocs(scores)
    far = t1.xs("far", level="group")
    out = {
        "fig1.mls": float(base[("mls", "all")].mean()),
        "fig1.best": float(grid_all.to_numpy(dtype=float).max()),
        "theorem.max_relative_error": float(check["relative to |MLS|"].max()),
        "table1.far.mls": float(far.xs("MLS", level="method")["auroc"].mean()),
    }
    if "GBP-norm" in far.index.get_level_values("method"):
        out["table1.far.gbp_norm"] = float(far.xs("GBP-norm", level="method")["auroc"].mean())
    return {k: round(report.record(k, v, "float_error"), 6) if k.startswith("theorem.")
            else round(report.record(k, v, "auroc%"), AUROC_DECIMALS) for k, v in out.items()}
