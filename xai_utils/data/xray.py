"""The chest X-ray datasets of the disagreement thesis, read from their public layouts (no download).

* SIIM-ACR Pneumothorax (stage 1) in the PNG layout of the Kaggle copy whose counts the thesis quotes
  (vbookshelf, "Pneumothorax chest X-ray images and masks": 10,675 train + 1,372 test images)::

      siim-acr-pneumothorax/png_images/<new_filename>   1024 x 1024 grey PNGs
      siim-acr-pneumothorax/png_masks/<new_filename>    0 / 255, the same names
      siim-acr-pneumothorax/stage_1_{train,test}_images.csv   columns new_filename, has_pneumo (0 / 1)

* Kermany et al.'s pneumonia images (5,216 train, 624 test), ``chest_xray/{train,test}/{NORMAL,PNEUMONIA}/``.

:func:`siim_pneumothorax` and :func:`kermany_pneumonia` list the files (cheap, checked); :meth:`XrayFiles.load` /
:meth:`XrayFiles.load_masks` read a subset at one image side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .files import class_folders
from .ood import Split
from .real import load_images

SIIM_DIR = "siim-acr-pneumothorax"
KERMANY_DIR = "chest_xray"
SPLITS = ("train", "test")
_SIIM_COLUMNS = ("new_filename", "has_pneumo")


@dataclass(frozen=True)
class XrayFiles:
    """Image files with binary labels (1 = the finding) and, for a masked dataset, one mask file per image."""

    name: str
    images: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    masks: tuple[Path, ...] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray | list[int]) -> XrayFiles:
        """The files at ``index`` (positions into this list), in that order."""
        pick = [int(i) for i in index]
        masks = None if self.masks is None else tuple(self.masks[i] for i in pick)
        return XrayFiles(self.name, tuple(self.images[i] for i in pick), tuple(self.labels[i] for i in pick),
                         self.classes, masks)

    def load(self, size: int) -> Split:
        """Images at ``size`` x ``size`` (shorter side resized, centre crop; grey becomes three equal channels)."""
        return Split(load_images(self.images, size), torch.tensor(self.labels, dtype=torch.int64), self.name,
                     self.classes)

    def load_masks(self, size: int) -> torch.Tensor:
        """Masks resized as :meth:`load` resizes the images, (N, size, size) bool (above half); ValueError on a
        dataset without masks."""
        if self.masks is None:
            raise ValueError(f"{self.name} has no masks")
        return load_images(self.masks, size)[:, 0] > 0.5  # uint8 above 127


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a folder; see data/README.md for the layout")
    return path


def siim_pneumothorax(root: str | os.PathLike, *, split: str = "test") -> XrayFiles:
    """The SIIM-ACR Pneumothorax PNGs of ``split`` under ``root/siim-acr-pneumothorax`` (the CSV's order).

    Raises FileNotFoundError naming a missing folder, CSV, image or mask; ValueError for a CSV without the
    columns ``new_filename`` and ``has_pneumo`` or with labels other than 0 / 1.
    """
    base = _folder(Path(root).expanduser() / SIIM_DIR, "SIIM-ACR folder")
    csv = base / f"stage_1_{_split(split)}_images.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"SIIM-ACR list {csv} does not exist; see data/README.md for the layout")
    table = pd.read_csv(csv)
    missing = [c for c in _SIIM_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{csv} lacks the columns {missing} (has {list(table.columns)})")
    labels = table["has_pneumo"]
    if not labels.isin([0, 1]).all():
        raise ValueError(f"{csv}: has_pneumo must be 0 or 1, got {sorted(set(labels) - {0, 1})[:5]}")
    images, masks = _folder(base / "png_images", "image folder"), _folder(base / "png_masks", "mask folder")
    names = table["new_filename"].astype(str).tolist()
    for folder in (images, masks):
        absent = [n for n in names if not (folder / n).is_file()]
        if absent:
            raise FileNotFoundError(f"{len(absent)} files listed in {csv} are not in {folder}, e.g. {absent[:3]}")
    return XrayFiles(f"siim_pneumothorax_{split}", tuple(images / n for n in names),
                     tuple(int(v) for v in labels), ("no pneumothorax", "pneumothorax"),
                     tuple(masks / n for n in names))


def kermany_pneumonia(root: str | os.PathLike, *, split: str = "test") -> XrayFiles:
    """Kermany et al.'s chest X-rays of ``split`` under ``root/chest_xray/<split>/{NORMAL,PNEUMONIA}/`` (label 1 =
    pneumonia; sorted file names within a class).  Missing or unexpected class folders raise, naming them."""
    folder = _folder(Path(root).expanduser() / KERMANY_DIR / _split(split), "Kermany folder")
    files = class_folders(folder, ["NORMAL", "PNEUMONIA"])
    return XrayFiles(f"kermany_pneumonia_{split}", tuple(p for _, ps in files for p in ps),
                     tuple(k for k, (_, ps) in enumerate(files) for _ in ps), ("normal", "pneumonia"))
