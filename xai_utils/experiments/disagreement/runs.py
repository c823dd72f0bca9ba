"""The disagreement chapter's runs: a black box and the test images whose predictions it explains.

The thesis explains two fine-tuned ImageNet classifiers (InceptionV3, ResNet-101) on two binary chest X-ray
tasks, one with ground-truth masks (Pneumothorax, SIIM-ACR) and one without (Pneumonia, Kermany).

* ``offline`` / ``smoke``: the masked task is cells (circle against circle crossed by a bar; the bar is the
  mask of a positive), the unmasked one scikit-learn digits 4 against 9 on cell backgrounds; the black boxes
  are a small ResNet and a small Inception-style net trained here (Adam, best validation epoch) and shipped.
* ``real``: the masked task is MNIST 4 against 9 (the stroke is the mask: where the digit is, not where the
  evidence is) with the same two small nets trained on part of the MNIST test set (the only MNIST split
  here); the unmasked one is the CIFAR-10 test JPEGs with the pretrained ResNet-20 and ResNet-56 checkpoints
  (ten classes; the two boxes differ in depth, not family).
* ``full``: the thesis's setting from local files (a GPU's work): the SIIM-ACR Pneumothorax and Kermany
  Pneumonia test images (``data.siim_pneumothorax``, ``data.kermany_pneumonia``) with the user's fine-tuned
  InceptionV3 (299 px) and ResNet-101 (224 px) checkpoints; maps are area-averaged to 128 x 128 (:data:`XRAY_MAP_SIZE`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ... import config, data, models

#: The offline tasks: name -> (what stands in, classes).  Cells 0 = circle, 1 = circle_minus (a bar).
CELL_CLASSES = (0, 1)
DIGIT_CLASSES = (4, 9)


@dataclass(frozen=True, eq=False)
class Task:
    """Test images x (N, 3, H, W) in [0, 1] with labels y (N,); masks (N, H, W) bool of the positives
    (label 1) or None when the task has no ground truth."""

    name: str
    x: Tensor
    y: Tensor
    masks: Tensor | None
    class_names: tuple[str, ...]
    note: str

    @property
    def positives(self) -> Tensor:
        return self.y == 1


@dataclass(frozen=True, eq=False)
class Run:
    """One black box on one task; ``accuracy`` on the task's test images, ``val_acc`` the selected epoch's.
    ``inputs``: the task's images at the box's own input side where that differs from the task's (the maps are
    then resized to the task's side), else None."""

    task: Task
    box: str
    model: nn.Module
    arch: str
    accuracy: float
    val_acc: float
    inputs: Tensor | None = None

    @property
    def name(self) -> str:
        return f"{self.task.name}/{self.box}"

    @property
    def x(self) -> Tensor:
        """What the black box is given: ``inputs``, or the task's images."""
        return self.task.x if self.inputs is None else self.inputs


def _cells(n: int, size: int, seed: int, part: str) -> tuple[Tensor, Tensor, Tensor]:
    c = data.make_cells(n, size=size, classes=CELL_CLASSES, seed=config.sub_seed(seed, f"disagreement_cells_{part}"))
    return c.x, c.y, (c.heatmap >= data.cells.HEAT_DISCRIMINATIVE) & (c.y == 1)[:, None, None]


def _digits(n: int, size: int, seed: int, part: str) -> tuple[Tensor, Tensor, Tensor]:
    x, y, strokes = data.digit_task(n, classes=DIGIT_CLASSES, size=size, part="test" if part == "test" else "val",
                                    seed=config.sub_seed(seed, f"disagreement_digits_{part}"))
    return x, y, strokes


_TASKS = {
    "cells": (_cells, ("circle", "circle with bar"), True,
              "masked task (Pneumothorax stand-in): the bar is the mask of a positive"),
    "digits": (_digits, (f"digit {DIGIT_CLASSES[0]}", f"digit {DIGIT_CLASSES[1]}"), False,
               "unmasked task (Pneumonia stand-in); train / test digits from disjoint halves of the 1,797"),
}
#: Black boxes of the offline presets: label -> (architecture, extra builder keywords).
BOXES = {"ResNet": ("small_resnet", dict(depth=8)), "Inception": ("small_inception", {})}


def _offline_runs(*, size: int, n_train: int, n_val: int, n_test: int, width: int, epochs: int, seed: int,
                  device: torch.device, retrain: bool, progress: bool) -> dict[str, Run]:
    runs = {}
    for name, (make, classes, masked, note) in _TASKS.items():
        splits = {part: make(n, size, seed, part) for part, n in (("train", n_train), ("val", n_val), ("test", n_test))}
        x, y, masks = splits["test"]
        task = Task(name, x, y, masks if masked else None, classes, note)
        runs |= _train_boxes(task, splits["train"][:2], splits["val"][:2],
                             dict(generator=f"disagreement_{name}", size=size, n_train=n_train, n_val=n_val, seed=seed),
                             stats=data.NORMALISATION["cells"], width=width, epochs=epochs, seed=seed, device=device,
                             retrain=retrain, progress=progress)
    return runs


def _train_boxes(task: Task, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor], data_key: dict, *,
                 stats: tuple, width: int, epochs: int, seed: int, device: torch.device, retrain: bool,
                 progress: bool) -> dict[str, Run]:
    """The two small black boxes (:data:`BOXES`) trained on one task (shipped weights where they exist)."""
    runs = {}
    for box, (arch, extra) in BOXES.items():
        res = models.cached_classifier(
            arch, dict(extra, width=width, num_classes=2, mean=list(stats[0]), std=list(stats[1])),
            dict(models.DEFAULT_OFFLINE["train_kwargs"], epochs=epochs, seed=seed), data_key,
            *train, *val, device=device, progress=progress, retrain=retrain)
        model = res.model.to(device).eval()
        runs[f"{task.name}/{box}"] = Run(task, box, model, arch, models.accuracy(model, task.x, task.y, device=device),
                                         res.val_acc)
    return runs


def _real_runs(*, data_root: str, checkpoints: Sequence[str], n_train: int, n_val: int, n_test: int, width: int,
               epochs: int, seed: int, device: torch.device, retrain: bool, progress: bool) -> dict[str, Run]:
    root = config.data_root(data_root)
    mean, std = data.NORMALISATION["cifar10_akamaster"]
    loaded = {}
    for ckpt in checkpoints:  # every checkpoint before any data: fail early
        arch, path = models.resolve_cifar_checkpoint(ckpt, root)
        loaded[path.stem.split("-")[0].replace("resnet", "ResNet-")] = (arch, models.real_classifier(
            arch, path, num_classes=10, mean=mean, std=std).to(device).eval())
    mnist = data.mnist_idx(root / "mnist_test")
    keep = torch.isin(mnist.y, torch.tensor(DIGIT_CLASSES))
    x, y = mnist.x[keep], (mnist.y[keep] == DIGIT_CLASSES[1]).long()
    if len(y) < n_train + n_val + n_test:
        raise ValueError(f"MNIST has {len(y)} test images of {DIGIT_CLASSES}, fewer than n_train + n_val + n_test")
    order = torch.from_numpy(np.random.default_rng(config.sub_seed(seed, "disagreement_mnist")).permutation(len(y)))
    tr, va, te = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:n_train + n_val + n_test]
    task = Task("mnist", x[te], y[te], x[te].mean(1) > 0.5, (f"digit {DIGIT_CLASSES[0]}", f"digit {DIGIT_CLASSES[1]}"),
                "masked task: the stroke is the mask; train / val / test are disjoint parts of MNIST's test set")
    runs = _train_boxes(task, (x[tr], y[tr]), (x[va], y[va]),
                        dict(generator="disagreement_mnist", n_train=n_train, n_val=n_val, seed=seed),
                        stats=data.NORMALISATION["mnist"], width=width, epochs=epochs, seed=seed, device=device,
                        retrain=retrain, progress=progress)
    cifar = data.image_folder(root / "cifar10_test_jpg")
    pick = torch.from_numpy(np.sort(np.random.default_rng(config.sub_seed(seed, "disagreement_cifar")).choice(
        len(cifar.y), n_test, replace=False)))
    task = Task("cifar10", cifar.x[pick], cifar.y[pick], None, tuple(cifar.classes),
                "unmasked task: CIFAR-10 test JPEGs, ten classes, pretrained checkpoints")
    for box, (arch, model) in loaded.items():
        runs[f"cifar10/{box}"] = Run(task, box, model, arch, models.accuracy(model, task.x, task.y, device=device),
                                     float("nan"))
    return runs


#: The thesis's tasks (``full``): name -> (file listing in ``data``, note).
XRAY_TASKS = {
    "pneumothorax": (data.siim_pneumothorax, "masked task: SIIM-ACR stage 1 test images with the radiologists' masks"),
    "pneumonia": (data.kermany_pneumonia, "unmasked task: Kermany et al.'s test images"),
}
#: The thesis's black boxes (``full``): label -> (architecture, input side).  It writes "244" px for ResNet101:
#: read as torchvision's 224.
XRAY_BOXES = {"Inception": ("inception_v3", 299), "ResNet": ("resnet101", 224)}
#: The thesis's map side: its k = 820 (5%) and 1,638 (10%) pixels are shares of 128 x 128 = 16,384.
XRAY_MAP_SIZE = 128


def xray_checkpoints(checkpoints: Sequence[str], root: str | os.PathLike) -> dict[tuple[str, str], Path]:
    """(task, box) -> checkpoint file, for every task of :data:`XRAY_TASKS` and box of :data:`XRAY_BOXES`.

    Each entry (absolute, or relative to ``root``) must name one task and one architecture in its file name,
    e.g. ``xray/pneumothorax_inception_v3.pth``; ValueError for an entry naming none or several, a pair named
    twice, or a pair without a checkpoint."""
    found: dict[tuple[str, str], Path] = {}
    for entry in checkpoints:
        path = config.data_path(entry, root)
        name = path.name.lower()
        keys = [(t, box) for t in XRAY_TASKS for box, (arch, _) in XRAY_BOXES.items() if t in name and arch in name]
        if len(keys) != 1:
            raise ValueError(f"checkpoint {path}: its file name must name one task of {list(XRAY_TASKS)} and one "
                             f"architecture of {[a for a, _ in XRAY_BOXES.values()]}, e.g. pneumothorax_inception_v3.pth")
        if keys[0] in found:
            raise ValueError(f"checkpoints {found[keys[0]]} and {path} are both for {keys[0]}")
        found[keys[0]] = path
    missing = [(t, box) for t in XRAY_TASKS for box in XRAY_BOXES if (t, box) not in found]
    if missing:
        raise ValueError(f"no checkpoint for (task, black box) {missing}; the full preset needs one per pair "
                         "(data/README.md, section disagreement)")
    return found


def _full_runs(*, data_root: str, checkpoints: Sequence[str], n_test: int, seed: int,
               device: torch.device) -> dict[str, Run]:
    root = config.data_root(data_root)
    paths = xray_checkpoints(checkpoints, root)
    loaded = {key: models.real_classifier(XRAY_BOXES[key[1]][0], path, num_classes=2).to(device).eval()
              for key, path in paths.items()}  # every checkpoint before any image: fail early
    files = {t: listing(root, split="test") for t, (listing, _) in XRAY_TASKS.items()}
    runs = {}
    for t, (_, note) in XRAY_TASKS.items():
        rng = np.random.default_rng(config.sub_seed(seed, f"disagreement_{t}"))
        test = files[t].subset(np.sort(rng.choice(len(files[t]), min(n_test, len(files[t])), replace=False)))
        shown = test.load(XRAY_MAP_SIZE)
        task = Task(t, shown.x, shown.y, test.load_masks(XRAY_MAP_SIZE) if test.masks is not None else None,
                    shown.classes, note)
        for box, (arch, side) in XRAY_BOXES.items():
            x = test.load(side).x
            model = loaded[t, box]
            runs[f"{t}/{box}"] = Run(task, box, model, arch, models.accuracy(model, x, task.y, device=device),
                                     float("nan"), inputs=x)
    return runs


def make_runs(preset: str, *, device: torch.device | str, seed: int, data_root: str, checkpoints: Sequence[str],
              size: int, n_train: int, n_val: int, n_test: int, width: int, epochs: int, retrain: bool,
              progress: bool) -> dict[str, Run]:
    """The runs of a preset (name ``task/box`` -> :class:`Run`); the keywords are the notebook's parameters
    (``size`` is the offline image side; ``data_root`` and ``checkpoints`` serve ``real`` and ``full``; ``full``
    explains at most ``n_test`` test images per task)."""
    device = config.resolve_device(device)
    if preset in ("offline", "smoke"):
        return _offline_runs(size=size, n_train=n_train, n_val=n_val, n_test=n_test, width=width, epochs=epochs,
                             seed=seed, device=device, retrain=retrain, progress=progress)
    if preset == "real":
        return _real_runs(data_root=data_root, checkpoints=checkpoints, n_train=n_train, n_val=n_val, n_test=n_test,
                          width=width, epochs=epochs, seed=seed, device=device, retrain=retrain, progress=progress)
    if preset == "full":
        return _full_runs(data_root=data_root, checkpoints=checkpoints, n_test=n_test, seed=seed, device=device)
    raise ValueError(f"unknown preset {preset!r} for the disagreement chapter; known: offline, smoke, real, full")


def run_table(runs: dict[str, Run]) -> pd.DataFrame:
    """Per run: task, black box, architecture, test images (and the positives that RC uses, on masked tasks),
    accuracy (ours: the thesis states none)."""
    rows = [{"task": r.task.name, "black box": r.box, "architecture": r.arch, "test images": len(r.task.y),
             "positives (masked tasks)": int(r.task.positives.sum()) if r.task.masks is not None else pd.NA,
             "val accuracy": round(r.val_acc, 3), "test accuracy": round(r.accuracy, 3)} for r in runs.values()]
    return pd.DataFrame(rows).set_index(["task", "black box"])
