"""OOD runs shared by the OOD chapters (salagg, s_and_i): one benchmark with one classifier each, per preset,
and their subsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import config, data, models
from ..data import Benchmark, Split

#: The GAIA / S&I authors' checkpoint files: a part of the file name -> (architecture, the benchmarks it is for)
#: (``full`` preset).
GAIA_ARCHS = {"wrn": ("wrn40_2", ("gaia_cifar10", "gaia_cifar100")),
              "resnet34": ("gaia_resnet34", ("gaia_cifar10", "gaia_cifar100")),
              "bit": ("bit_s_r101x1", ("gaia_imagenet",))}
#: OpenOOD v1.5 benchmark -> (architecture, checkpoint folder under ``results/``), for the ``full`` preset.
OPENOOD_CHECKPOINTS: dict[str, tuple[str, str]] = {
    "cifar10": ("openood_resnet18_32x32", "cifar10_resnet18_32x32_base_e100_lr0.1_default"),
    "cifar100": ("openood_resnet18_32x32", "cifar100_resnet18_32x32_base_e100_lr0.1_default"),
    "imagenet200": ("resnet18", "imagenet200_resnet18_224x224_base_e90_lr0.1_default"),
    "imagenet": ("resnet50", "imagenet_resnet50_tvsv1"),
}


#: The benchmarks of the ``full`` preset: OpenOOD v1.5's and the GAIA / S&I authors' CIFAR ones.
FULL_BENCHMARKS = (*OPENOOD_CHECKPOINTS, *data.GAIA_BENCHMARKS)


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
    bench: Benchmark, *, n_id_val: int, n_id_test: int, n_ood_val: int, n_ood_test: int, seed: int
) -> Benchmark:
    """Seeded random subsets of every split (at most the given sizes); the same seed, the same images."""

    def pick(split: Split, n: int, name: str) -> Split:
        if len(split) <= n:
            return split
        return split.subset(np.sort(np.random.default_rng(config.sub_seed(seed, name)).permutation(len(split))[:n]))

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
    if not len(sizes) == len(archs) == len(widths) == len(n_train):
        raise ValueError(
            f"sizes {list(sizes)}, archs {list(archs)}, widths {list(widths)} and n_train "
            f"{list(n_train)} must have the same length"
        )
    runs = {}
    for size, arch, width, n_tr in zip(sizes, archs, widths, n_train, strict=True):
        bench = data.offline_benchmark(
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
        res = models.benchmark_classifier(bench, data_key, arch=arch, width=width, epochs=epochs, seed=seed,
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
    root = config.data_root(data_root)
    mean, std = data.NORMALISATION["cifar10_akamaster"]  # the benchmark's normalisation, needed before it loads
    loaded: dict[str, tuple[Path, nn.Module]] = {}
    for ckpt in checkpoints:
        arch, path = models.resolve_cifar_checkpoint(ckpt, root)
        label = str(ckpt) if arch == f"cifar_{ckpt}" else path.stem  # a name, or the file's stem
        if label in loaded:
            raise ValueError(f"checkpoints {list(checkpoints)} name the run {label!r} twice")
        loaded[label] = (path, models.real_classifier(arch, path, num_classes=10, mean=mean, std=std))
    bench = data.cifar10_ood_benchmark(root, seed=seed)
    if (bench.mean, bench.std) != (mean, std):
        raise ValueError(f"models built with mean/std {mean}/{std}; the data has {bench.mean}/{bench.std}")
    bench = subsample(
        bench, n_id_val=n_id_val, n_id_test=n_id_test, n_ood_val=n_ood_val, n_ood_test=n_ood_test, seed=seed
    )
    return {
        f"cifar10/{label}": Run(
            f"cifar10/{label}", "cifar10", bench, m.to(device).eval(), label, note=f"checkpoint {path.name}"
        )
        for label, (path, m) in loaded.items()
    }


def gaia_arch(path: Path) -> tuple[str, tuple[str, ...]]:
    """The architecture of one of the GAIA / S&I authors' checkpoints and the benchmarks it is for, from its file
    name (:data:`GAIA_ARCHS`)."""
    found = [spec for part, spec in GAIA_ARCHS.items() if part in path.name.lower()]
    if len(found) != 1:
        raise ValueError(f"checkpoint {path} names no architecture (or several): its file name must contain one "
                         f"of {list(GAIA_ARCHS)}, e.g. cifar100_wrn_40_2.pth, cifar100_resnet34.pth or "
                         "BiT-S-R101x1-flat-finetune.pth.tar")
    return found[0]


def _gaia_benchmark(name: str, root: Path, sizes_kw: dict) -> Benchmark:
    """The authors' benchmark ``name``, subsampled; ImageNet's images are decoded only as far as the sizes need."""
    if name != "gaia_imagenet":
        return subsample(data.gaia_cifar_benchmark(root, name, seed=sizes_kw["seed"]), **sizes_kw)
    n_ood = 2 * max(sizes_kw["n_ood_val"], sizes_kw["n_ood_test"])  # the OOD sets are cut into halves
    bench = data.gaia_imagenet_benchmark(root, n_val=sizes_kw["n_id_val"], seed=sizes_kw["seed"], max_per_set=n_ood,
                                         max_id=sizes_kw["n_id_val"] + sizes_kw["n_id_test"])
    return subsample(bench, **sizes_kw)


def _gaia_runs(name: str, root: Path, checkpoints: Sequence[str], sizes_kw: dict, device: torch.device) -> dict[str, Run]:
    """One run per checkpoint of the authors' (``checkpoints``: paths, relative to the data root unless absolute)
    whose architecture belongs to their benchmark ``name``; every checkpoint is loaded before the data."""
    num_classes, norm = data.GAIA_BENCHMARKS[name]
    mean, std = data.NORMALISATION[norm]
    loaded = {}
    for entry in checkpoints:
        path = config.data_path(entry, root)
        arch, for_benchmarks = gaia_arch(path)
        if name not in for_benchmarks:
            continue
        if f"{name}/{arch}" in loaded:
            raise ValueError(f"checkpoints {list(checkpoints)} name two {arch} nets for {name}")
        loaded[f"{name}/{arch}"] = (arch, path, models.real_classifier(arch, path, num_classes=num_classes, mean=mean,
                                                                        std=std))
    if not loaded:
        raise ValueError(f"checkpoints {list(checkpoints)} hold no net for {name}: its file names must contain one of "
                         f"{[part for part, (_, b) in GAIA_ARCHS.items() if name in b]}")
    bench = _gaia_benchmark(name, root, sizes_kw)
    return {run: Run(run, name, bench, m.to(device).eval(), arch, note=str(path))
            for run, (arch, path, m) in loaded.items()}


def _full_runs(
    *,
    data_root: str,
    benchmarks: Sequence[str],
    seeds: Sequence[int],
    checkpoints: Sequence[str],
    n_id_val: int,
    n_id_test: int,
    n_ood_val: int,
    n_ood_test: int,
    seed: int,
    device: torch.device,
) -> dict[str, Run]:
    root = config.data_root(data_root)
    sizes_kw = dict(n_id_val=n_id_val, n_id_test=n_id_test, n_ood_val=n_ood_val, n_ood_test=n_ood_test, seed=seed)
    runs = {}
    for name in benchmarks:
        if name in data.GAIA_BENCHMARKS:
            runs |= _gaia_runs(name, root, checkpoints, sizes_kw, device)
            continue
        bench = subsample(data.openood_benchmark(root, name, seed=seed), **sizes_kw)
        arch, folder = OPENOOD_CHECKPOINTS[name]
        for s in seeds:
            ckpt = root / "results" / folder / f"s{s}" / "best.ckpt"
            model = models.real_classifier(arch, ckpt, num_classes=bench.num_classes, mean=bench.mean, std=bench.std)
            runs[f"{name}/s{s}"] = Run(f"{name}/s{s}", name, bench, model.to(device).eval(), arch, note=str(ckpt))
    return runs


def make_runs(
    preset: str,
    *,
    device: torch.device | str,
    seed: int,
    data_root: str,
    sizes: Sequence[int],
    archs: Sequence[str],
    widths: Sequence[int],
    n_train: Sequence[int],
    n_id_val: int,
    n_id_test: int,
    n_ood_val: int,
    n_ood_test: int,
    epochs: int,
    checkpoints: Sequence[str],
    benchmarks: Sequence[str],
    model_seeds: Sequence[int],
    retrain: bool,
    progress: bool = False,
) -> dict[str, Run]:
    """The runs of a preset: ``offline``/``smoke`` (cell benchmarks of the given ``sizes``, classifiers
    ``archs``: shipped weights, or with ``retrain`` trained here and cached), ``real`` (CIFAR-10 JPEGs +
    the ResNet ``checkpoints``), ``full`` (OpenOOD v1.5 layout + OpenOOD checkpoints of ``model_seeds``; for the
    GAIA / S&I authors' benchmarks ``gaia_cifar10`` / ``gaia_cifar100``, one run per file of ``checkpoints``).
    Every evaluation split holds at most the given numbers of images.  The keywords are the notebook's
    parameters of the same names (their one default is its parameters cell); a preset ignores those of
    the others.  Returns run name -> :class:`Run`."""
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
        return _full_runs(data_root=data_root, benchmarks=benchmarks, seeds=model_seeds, checkpoints=checkpoints,
                          device=device, **sizes_kw)
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
                "ID test accuracy (%)": round(100 * models.accuracy(run.model, b.id_test.x, b.id_test.y), 2),
                "ID val": len(b.id_val),
                "ID test": len(b.id_test),
                **{
                    f"{k} ({b.groups[k]}) val/test": f"{len(v['val'])}/{len(v['test'])}"
                    for k, v in b.ood.items()
                },
            }
        )
    return pd.DataFrame(rows).set_index("run")
