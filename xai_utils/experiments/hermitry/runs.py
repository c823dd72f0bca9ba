"""The hermitry chapter's runs: one classifier with, per class, training images X (the class's encoding
distribution), 50 validation images Y (threshold and perturbed images) and reference sets (baselines).

* ``offline`` / ``smoke``: the cell benchmark's shipped classifiers (:func:`..ood_runs.make_runs`); X =
  the class's training cells, Y = fresh cells of the class, references = noise, digits, textures.
* ``real``: CIFAR-10 test JPEGs with the CIFAR ResNet checkpoints; the test set is all there is, so X and
  Y are disjoint seeded parts of a class's 1,000 test images; references = noise and the real benchmark's
  ImageNet samples, MNIST and DTD textures.
* ``full``: the paper's setting from local files: ImageNet ``imagenet/train/<wnid>/`` (X, the first
  ``n_train`` files) and ``imagenet/val/<wnid>/`` (Y, the first ``n_val``) at 224 px, the label's wnid being
  the label-th of the 1,000 sorted train folders; torchvision classifiers ``archs`` with weights
  ``checkpoints`` (paths, relative to the data root); references = noise and DTD textures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ... import config, data, models
from ..ood_runs import make_runs as ood_make_runs
from ..ood_runs import subsample

#: ID validation images of the offline cell benchmark: part of the data key of the shipped classifiers
#: (salagg's and s_and_i's), so fixed here; the chapter's Y images are drawn separately.
SHIPPED_N_VAL = 80


@dataclass(frozen=True, eq=False)
class HermitryRun:
    """One classifier and its images.  train / val: class name -> X / Y images (N, 3, H, W) in [0, 1];
    references: baseline set -> images; labels: class name -> the model's label; mean: the model's input mean (the "gray" of occlusion and the
    baseline of LIME / KernelSHAP, i.e. 0 after normalisation)."""

    name: str
    model: nn.Module
    model_name: str
    train: dict[str, Tensor]
    val: dict[str, Tensor]
    references: dict[str, Tensor]
    mean: tuple[float, float, float]
    labels: dict[str, int]
    note: str = ""

    @property
    def classes(self) -> list[str]:
        return list(self.val)

    @property
    def image_size(self) -> int:
        return int(next(iter(self.val.values())).shape[-1])


def _noise(n: int, size: int, seed: int) -> Tensor:
    return torch.from_numpy(np.random.default_rng(config.sub_seed(seed, "noise")).random((n, 3, size, size),
                                                                                         dtype=np.float32))


def _offline_runs(*, classes: Sequence[int], n_val: int, n_reference: int, seed: int, **kw) -> dict[str, HermitryRun]:
    runs = {}
    for name, run in ood_make_runs("offline", seed=seed, n_id_test=2, n_ood_val=2, n_ood_test=2, **kw).items():
        b, size = run.bench, run.bench.image_size
        names = [b.class_names[c] for c in classes]
        train = {names[i]: b.id_train.x[b.id_train.y == c] for i, c in enumerate(classes)}
        val = {
            names[i]: data.make_cells(n_val, size=size, classes=(c,), seed=config.sub_seed(seed, f"hermitry_y_{c}")).x
            for i, c in enumerate(classes)
        }
        refs = {
            "noise": _noise(n_reference, size, seed),
            "digits": data.digits(n_reference, size=size, seed=config.sub_seed(seed, "hermitry_digits")),
            "textures": data.textures(n_reference, size=size, seed=config.sub_seed(seed, "hermitry_textures")),
        }
        runs[f"{name}/{run.model_name.split()[0]}"] = HermitryRun(
            f"{name}/{run.model_name.split()[0]}", run.model, run.model_name, train, val, refs, b.mean,
            dict(zip(names, classes, strict=True)), note=f"X = the class's training cells; Y = {n_val} fresh cells of the class",
        )
    return runs


def _real_runs(*, data_root: str, checkpoints: Sequence[str], classes: Sequence[int], n_val: int, n_train: int,
               n_reference: int, device: torch.device, seed: int) -> dict[str, HermitryRun]:
    runs = ood_make_runs("real", data_root=data_root, checkpoints=checkpoints, n_id_val=1000, n_id_test=10000,
                         n_ood_val=1, n_ood_test=10000, seed=seed, device=device, sizes=[], archs=[], widths=[],
                         n_train=[], epochs=1, benchmarks=[], model_seeds=[], retrain=False)
    first = next(iter(runs.values())).bench
    x = torch.cat([first.id_val.x, first.id_test.x])
    y = torch.cat([first.id_val.y, first.id_test.y])
    train, val = {}, {}
    for c in classes:
        idx = np.flatnonzero(y.numpy() == c)
        if len(idx) < n_val + n_train:
            raise ValueError(f"class {c} has {len(idx)} CIFAR-10 test images, fewer than n_val + n_train = "
                             f"{n_val + n_train}")
        idx = np.random.default_rng(config.sub_seed(seed, f"hermitry_split_{c}")).permutation(idx)
        name = first.class_names[c]
        val[name], train[name] = x[idx[:n_val]], x[idx[n_val : n_val + n_train]]
    refs_bench = subsample(first, n_id_val=1, n_id_test=1, n_ood_val=1, n_ood_test=n_reference, seed=seed)
    refs = {"noise": _noise(n_reference, first.image_size, seed),
            **{k: v["test"].x for k, v in refs_bench.ood.items()}}
    return {
        name: HermitryRun(name, run.model, run.model_name, train, val, refs, first.mean,
                          {first.class_names[c]: c for c in classes}, note=f"{run.note}; X = {n_train} and Y = {n_val} test images per class (no training set)")
        for name, run in runs.items()
    }


#: Image side of the ``full`` preset (torchvision's ImageNet evaluation crop).
FULL_SIZE = 224


def _full_runs(*, data_root: str, archs: Sequence[str], checkpoints: Sequence[str], classes: Sequence[int],
               n_val: int, n_train: int, n_reference: int, device: torch.device, seed: int) -> dict[str, HermitryRun]:
    root = config.data_root(data_root)
    if len(archs) != len(checkpoints):
        raise ValueError(f"archs {list(archs)} and checkpoints {list(checkpoints)} must have the same length")
    mean = data.NORMALISATION["imagenet"][0]
    loaded = {}
    for arch, ckpt in zip(archs, checkpoints, strict=True):  # every model before the data: fail early
        loaded[arch] = models.real_classifier(arch, config.data_path(ckpt, root), num_classes=1000).to(device).eval()
    train_root = root / "imagenet" / "train"
    wnids = sorted(p.name for p in train_root.iterdir() if p.is_dir() and not p.name.startswith(".")) if (
        train_root.is_dir()) else []
    if len(wnids) != 1000:
        raise ValueError(f"{train_root} must hold the 1000 ImageNet class folders (the label is the index of the "
                         f"sorted wnid); found {len(wnids)}")
    train, val, labels = {}, {}, {}
    for c in classes:
        wnid = wnids[c]
        train[wnid] = data.class_images(train_root / wnid, size=FULL_SIZE, max_images=n_train)
        val[wnid] = data.class_images(root / "imagenet" / "val" / wnid, size=FULL_SIZE, max_images=n_val)
        labels[wnid] = c
    refs = {"noise": _noise(n_reference, FULL_SIZE, seed),
            "textures": data.image_folder(root / "dtd_textures_10classes", size=FULL_SIZE, max_images=n_reference).x}
    return {arch: HermitryRun(arch, m, arch, train, val, refs, mean, labels, note=f"torchvision {arch}, ImageNet")
            for arch, m in loaded.items()}


def make_runs(
    preset: str,
    *,
    device: torch.device | str,
    seed: int,
    data_root: str,
    classes: Sequence[int],
    n_val: int,
    n_train: int,
    n_reference: int,
    sizes: Sequence[int],
    archs: Sequence[str],
    widths: Sequence[int],
    train_images: Sequence[int],
    epochs: int,
    checkpoints: Sequence[str],
    retrain: bool,
    progress: bool,
) -> dict[str, HermitryRun]:
    """The runs of a preset (see the module docstring); the keywords are the notebook's parameters.
    ``train_images``: training-set sizes of the offline classifiers (part of the shipped weights' key);
    ``n_train``: X per class on ``real`` and ``full``; ``archs``: offline / full architectures;
    ``checkpoints``: CIFAR ResNet names (real) or weight files (full)."""
    device = config.resolve_device(device)
    if len(set(classes)) != len(classes) or len(classes) == 0:
        raise ValueError(f"classes must be distinct labels, got {list(classes)}")
    if preset in ("offline", "smoke"):
        return _offline_runs(classes=classes, n_val=n_val, n_reference=n_reference, seed=seed, device=device,
                             data_root=data_root, sizes=sizes, archs=archs, widths=widths, n_train=train_images,
                             n_id_val=SHIPPED_N_VAL, epochs=epochs, checkpoints=[], benchmarks=[], model_seeds=[],
                             retrain=retrain, progress=progress)
    if preset == "real":
        return _real_runs(data_root=data_root, checkpoints=checkpoints, classes=classes, n_val=n_val,
                          n_train=n_train, n_reference=n_reference, device=device, seed=seed)
    if preset == "full":
        return _full_runs(data_root=data_root, archs=archs, checkpoints=checkpoints, classes=classes, n_val=n_val,
                          n_train=n_train, n_reference=n_reference, device=device, seed=seed)
    raise ValueError(f"unknown preset {preset!r}; known: 'offline', 'smoke', 'real', 'full'")


def image_counts(runs: Mapping[str, HermitryRun]) -> pd.DataFrame:
    """Per run: the model, its accuracy on the Y images, and the images in X and Y per class and in each
    reference set."""
    rows = {}
    for name, r in runs.items():
        xs = torch.cat([r.val[c] for c in r.classes])
        ys = torch.cat([torch.full((len(r.val[c]),), r.labels[c]) for c in r.classes])
        hit = models.accuracy(r.model, xs, ys)
        rows[name] = {"model": r.model_name, "Y accuracy (%)": round(100 * hit, 1),
                      **{f"X {c}": len(r.train[c]) for c in r.classes}, **{f"Y {c}": len(r.val[c]) for c in r.classes},
                      **{k: len(v) for k, v in r.references.items()}}
    return pd.DataFrame.from_dict(rows, orient="index")
