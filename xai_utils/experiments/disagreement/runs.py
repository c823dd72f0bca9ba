"""The disagreement chapter's runs: a black box and the test images whose predictions it explains.

The thesis explains two fine-tuned ImageNet classifiers (InceptionV3, ResNet-101) on two binary chest X-ray
tasks, one with ground-truth masks (Pneumothorax, SIIM-ACR) and one without (Pneumonia, Kermany).

* ``offline`` / ``smoke``: the masked task is cells (circle against circle crossed by a bar; the bar is the
  mask of a positive), the unmasked one scikit-learn digits 4 against 9 on cell backgrounds; the black boxes
  are a small ResNet and a small Inception-style net trained here (Adam, best validation epoch) and shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """One black box on one task; ``accuracy`` on the task's test images, ``val_acc`` the selected epoch's."""

    task: Task
    box: str
    model: nn.Module
    arch: str
    accuracy: float
    val_acc: float

    @property
    def name(self) -> str:
        return f"{self.task.name}/{self.box}"


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
    mean, std = data.NORMALISATION["cells"]
    runs = {}
    for name, (make, classes, masked, note) in _TASKS.items():
        splits = {part: make(n, size, seed, part) for part, n in (("train", n_train), ("val", n_val), ("test", n_test))}
        x, y, masks = splits["test"]
        task = Task(name, x, y, masks if masked else None, classes, note)
        for box, (arch, extra) in BOXES.items():
            res = models.cached_classifier(
                arch, dict(extra, width=width, num_classes=2, mean=list(mean), std=list(std)),
                dict(models.DEFAULT_OFFLINE["train_kwargs"], epochs=epochs, seed=seed),
                dict(generator=f"disagreement_{name}", size=size, n_train=n_train, n_val=n_val, seed=seed),
                *splits["train"][:2], *splits["val"][:2], device=device, progress=progress, retrain=retrain)
            model = res.model.to(device).eval()
            acc = models.accuracy(model, x, y, device=device)
            runs[f"{name}/{box}"] = Run(task, box, model, arch, acc, res.val_acc)
    return runs


def make_runs(preset: str, *, device: torch.device | str, seed: int, size: int, n_train: int, n_val: int,
              n_test: int, width: int, epochs: int, retrain: bool, progress: bool) -> dict[str, Run]:
    """The runs of a preset (name ``task/box`` -> :class:`Run`); the keywords are the notebook's parameters."""
    device = config.resolve_device(device)
    if preset in ("offline", "smoke"):
        return _offline_runs(size=size, n_train=n_train, n_val=n_val, n_test=n_test, width=width, epochs=epochs,
                             seed=seed, device=device, retrain=retrain, progress=progress)
    raise ValueError(f"unknown preset {preset!r} for the disagreement chapter; known: offline, smoke")


def run_table(runs: dict[str, Run]) -> pd.DataFrame:
    """Per run: task, black box, architecture, test images (positives), accuracy (ours: the thesis states none)."""
    rows = [{"task": r.task.name, "black box": r.box, "architecture": r.arch, "test images": len(r.task.y),
             "positives": int(r.task.positives.sum()), "masked": r.task.masks is not None,
             "val accuracy": round(r.val_acc, 3), "test accuracy": round(r.accuracy, 3)} for r in runs.values()]
    return pd.DataFrame(rows).set_index(["task", "black box"])
