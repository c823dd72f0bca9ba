"""The dataset types (``Split``, ``Benchmark``) and the offline OOD benchmark built from cells.

Offline benchmark (stand-in for OpenOOD's CIFAR/ImageNet benchmarks, arXiv:2306.09301):

- ID: cell classes 0-5 (labels 0..5), train / val / test drawn with different seeds.
- near-OOD ``tailed_cells``: cell classes 6-8 on the same backgrounds.
- far-OOD ``blank_cells`` (class 9: background only), ``digits`` (scikit-learn's 8x8 digits,
  upsampled, randomly coloured, scaled and placed on the cell backgrounds), ``textures`` (random
  crops of the texture images scikit-image ships: brick, grass, gravel, moon, hubble_deep_field,
  immunohistochemistry; grey ones tinted) and ``noise`` (i.i.d. U(0, 1) pixels).

Every OOD set has a "val" and a "test" split (different seeds; digits from disjoint halves of the
digit images, texture crops from the top / bottom halves of each texture image). OOD labels are -1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import config
from .cells import CLASS_NAMES, make_backgrounds, make_cells

Stats = tuple[float, float, float]

#: (mean, std) per dataset: the input normalisation the models of that dataset use (inside the model).
#: ``cells`` was measured on 6000 ID cells (classes 0-5, all backgrounds; mean (0.290, 0.290, 0.285),
#: std (0.246, 0.246, 0.234) at 32 and 64 px) and rounded; it is fixed so models do not depend on a sample.
#: ``cifar10_akamaster`` = ImageNet constants: the shared CIFAR-10 ResNet checkpoints were trained with them.
NORMALISATION: dict[str, tuple[Stats, Stats]] = {
    "cells": ((0.29, 0.29, 0.285), (0.245, 0.245, 0.235)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),  # as OpenOOD
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),  # as OpenOOD and the GAIA / S&I code
    "cifar10_gaia": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),  # the GAIA / S&I code's CIFAR-10
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10_akamaster": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "mnist": ((0.1307, 0.1307, 0.1307), (0.3081, 0.3081, 0.3081)),  # grey replicated to RGB
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "bit": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # BiT, as the GAIA / S&I ImageNet code
}

TEXTURE_IMAGES: tuple[str, ...] = (
    "brick",
    "grass",
    "gravel",
    "moon",
    "hubble_deep_field",
    "immunohistochemistry",
)


@dataclass(frozen=True, eq=False)
class Split:
    """Images with labels.

    Attributes
    ----------
    x : (N, C, H, W) float32 in [0, 1].
    y : (N,) int64 labels; -1 for OOD samples.
    name : what the images are (e.g. ``"cifar10_test"``, ``"textures"``).
    classes : optional class names, ``classes[k]`` is the name of label ``k``.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or self.x.ndim != 4:
            raise ValueError(f"Split {self.name!r}: x must be a (N, C, H, W) tensor, got {_shape(self.x)}")
        if not self.x.is_floating_point():
            raise ValueError(f"Split {self.name!r}: x must be float in [0, 1], got dtype {self.x.dtype}")
        if not isinstance(self.y, torch.Tensor) or self.y.shape != (len(self.x),):
            raise ValueError(f"Split {self.name!r}: y must have shape ({len(self.x)},), got {_shape(self.y)}")
        if self.x.numel() and not bool(((self.x >= 0) & (self.x <= 1)).all()):
            raise ValueError(f"Split {self.name!r}: x has values outside [0, 1] (or NaN)")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> Split:
        """The rows ``idx`` (indices, boolean mask or slice) as a new Split with the same name."""
        if not isinstance(idx, slice):
            idx = torch.as_tensor(np.asarray(idx))
            if idx.dtype != torch.bool:
                idx = idx.long()
        return Split(self.x[idx], self.y[idx], self.name, self.classes)

    def to(self, device: str | torch.device) -> Split:
        """A copy on ``device``."""
        return Split(self.x.to(device), self.y.to(device), self.name, self.classes)


@dataclass(frozen=True, eq=False)
class Benchmark:
    """An OOD benchmark: ID splits, named OOD sets with val/test splits, and the models' normalisation.

    ``ood[name]["val" | "test"]`` is a Split; ``groups[name]`` is ``"near"`` or ``"far"``;
    ``mean``/``std`` are the per-channel constants the models normalise with.
    """

    name: str
    id_train: Split
    id_val: Split
    id_test: Split
    ood: dict[str, dict[str, Split]]
    groups: dict[str, str]
    num_classes: int
    mean: Stats
    std: Stats
    image_size: int
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if set(self.ood) != set(self.groups):
            raise ValueError(
                f"Benchmark {self.name!r}: ood sets {sorted(self.ood)} != groups {sorted(self.groups)}"
            )
        bad = {k: v for k, v in self.groups.items() if v not in ("near", "far")}
        if bad:
            raise ValueError(f"Benchmark {self.name!r}: groups must be 'near' or 'far', got {bad}")
        for k, v in self.ood.items():
            if set(v) != {"val", "test"}:
                raise ValueError(
                    f"Benchmark {self.name!r}: ood[{k!r}] needs keys 'val' and 'test', got {sorted(v)}"
                )

    def ood_names(self, group: str | None = None) -> list[str]:
        """OOD set names, optionally only those of ``group`` ("near" or "far")."""
        if group not in (None, "near", "far"):
            raise ValueError(f"group must be None, 'near' or 'far', got {group!r}")
        return [k for k in self.ood if group is None or self.groups[k] == group]


def _shape(t) -> str:
    return str(tuple(t.shape)) if hasattr(t, "shape") else type(t).__name__


def _ood(x: torch.Tensor, name: str) -> Split:
    return Split(x, torch.full((len(x),), -1, dtype=torch.int64), name)


def _digit_images() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """scikit-learn's digits in [0, 1], their labels and the index pools of :func:`digits` (a fixed shuffle
    split in halves: "val" / "test", and "all")."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    order = np.random.default_rng(0).permutation(len(images))
    half = len(images) // 2
    return images, bunch.target, {"all": order, "val": order[:half], "test": order[half:]}


def _place_digits(images: np.ndarray, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Upsample, scale, shift, rotate and colour 8x8 digit images onto cell backgrounds.

    Returns the images (n, 3, size, size) and the digits' coverage alpha (n, size, size) in [0, 1]."""
    n = len(images)
    scale = rng.uniform(0.5, 0.9, n)
    shift = rng.uniform(-0.15, 0.15, (n, 2))
    angle = np.deg2rad(rng.uniform(-20, 20, n))
    colour = rng.uniform(0.5, 1.0, (n, 3))
    # affine_grid maps output coordinates to input coordinates: in = R(angle) (out - shift) / scale
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    theta = np.stack([np.stack([cos, -sin], 1), np.stack([sin, cos], 1)], 1)  # (n, 2, 2)
    theta = np.concatenate([theta, -(theta @ shift[:, :, None])], 2)
    src = torch.from_numpy(images[:, None])
    grid = F.affine_grid(torch.from_numpy(theta).float(), [n, 1, size, size], align_corners=False)
    alpha = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)
    bg = make_backgrounds(n, size=size, seed=int(rng.integers(2**31)))
    return bg * (1 - alpha) + torch.from_numpy(colour).float()[:, :, None, None] * alpha, alpha[:, 0]


def _pool(pools: dict[str, np.ndarray], part: str) -> np.ndarray:
    if part not in pools:
        raise ValueError(f"part must be one of {sorted(pools)}, got {part!r}")
    return pools[part]


def digits(n: int, *, size: int = 32, seed: int = 0, part: str = "all") -> torch.Tensor:
    """scikit-learn's 8x8 digits, upsampled, coloured and placed on cell backgrounds.

    Each digit covers U(0.5, 0.9) of the image side, is shifted by U(-0.15, 0.15) and rotated by
    U(-20, 20) degrees, in a colour U(0.5, 1) per channel. ``part`` = "val" / "test" draws from
    disjoint halves of the 1797 digit images ("all": every image). Returns (n, 3, size, size).
    """
    images, _, pools = _digit_images()
    pool = _pool(pools, part)
    rng = np.random.default_rng(seed)
    pick = rng.choice(pool, size=n, replace=n > len(pool))
    return _place_digits(images[pick], rng, size)[0]


def digit_task(
    n: int, *, classes: Sequence[int] = (4, 9), size: int = 32, seed: int = 0, part: str = "all"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A labelled digit classification task: the digits ``classes`` placed as in :func:`digits`.

    ``part`` as in :func:`digits` (disjoint halves of the digit images: train on "val", test on "test").
    Returns images (n, 3, size, size), labels (n,) int64 = the index of the digit in ``classes``, and the
    stroke masks (n, size, size) bool (coverage > 0.5: where the digit is drawn, not where the evidence is).
    """
    classes = [int(c) for c in classes]
    if len(set(classes)) < 2 or not all(0 <= c <= 9 for c in classes):
        raise ValueError(f"classes must be >= 2 distinct digits in 0..9, got {classes}")
    images, target, pools = _digit_images()
    pool = _pool(pools, part)
    pool = pool[np.isin(target[pool], classes)]
    rng = np.random.default_rng(seed)
    pick = rng.choice(pool, size=n, replace=n > len(pool))
    x, alpha = _place_digits(images[pick], rng, size)
    y = torch.as_tensor([classes.index(int(t)) for t in target[pick]], dtype=torch.int64)
    return x, y, alpha > 0.5


def _texture_sources() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in TEXTURE_IMAGES:
        img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
        out.append(img[..., :3] if img.ndim == 3 else img[..., None])
    return out


def textures(n: int, *, size: int = 32, seed: int = 0, part: str = "all") -> torch.Tensor:
    """Random square crops of scikit-image's texture images, resized to ``size`` (antialiased).

    Crop side U(0.15, 0.5) of the source's shorter side; grey sources are tinted with a colour
    U(0.4, 1) per channel. ``part`` = "val" / "test" crops from the top / bottom half of each
    source (disjoint pixels; "all": anywhere). Sources round-robin. Returns (n, 3, size, size).
    """
    halves = {"all": (0.0, 1.0), "val": (0.0, 0.5), "test": (0.5, 1.0)}
    if part not in halves:
        raise ValueError(f"part must be one of {sorted(halves)}, got {part!r}")
    rng = np.random.default_rng(seed)
    sources = _texture_sources()
    out = torch.empty(n, 3, size, size)
    for i in range(n):  # each crop has its own size: one resize call per image
        img = sources[i % len(sources)]
        h0, h1 = (int(f * img.shape[0]) for f in halves[part])
        side = int(rng.uniform(0.15, 0.5) * min(img.shape[:2]))
        side = max(2, min(side, h1 - h0, img.shape[1]))
        top, left = rng.integers(h0, h1 - side + 1), rng.integers(0, img.shape[1] - side + 1)
        crop = torch.from_numpy(np.ascontiguousarray(img[top : top + side, left : left + side]))
        crop = crop.permute(2, 0, 1)[None]
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        tint = torch.from_numpy(rng.uniform(0.4, 1.0, 3)).float() if crop.shape[1] == 1 else torch.ones(3)
        out[i] = (crop[0] * tint[:, None, None]).clamp(0, 1)
    return out


def offline_benchmark(
    *,
    size: int = 32,
    n_train: int = 6000,
    n_val: int = 1200,
    n_test: int = 1200,
    n_ood_val: int = 300,
    n_ood_test: int = 600,
    seed: int = 0,
) -> Benchmark:
    """The offline OOD benchmark from cells (stand-in for CIFAR-10 at 32 px, ImageNet-like at 64 px).

    ID = cell classes 0-5; near-OOD ``tailed_cells`` (6-8); far-OOD ``blank_cells``, ``digits``,
    ``textures``, ``noise`` (see the module docstring). Each split has its own seed derived from
    ``seed``; deterministic for a seed. Normalisation: ``NORMALISATION["cells"]``.
    """
    for k, v in dict(
        n_train=n_train, n_val=n_val, n_test=n_test, n_ood_val=n_ood_val, n_ood_test=n_ood_test
    ).items():
        if int(v) != v or v < 0:
            raise ValueError(f"{k} must be a non-negative integer, got {v!r}")
    names = CLASS_NAMES[:6]

    def id_split(n: int, part: str) -> Split:
        c = make_cells(n, size=size, classes=range(6), seed=config.sub_seed(seed, f"id_{part}"))
        return Split(c.x, c.y, f"cells_{part}", names)

    def ood_set(name: str, n: int, part: str) -> Split:
        s = config.sub_seed(seed, f"{name}_{part}")
        if name == "tailed_cells":
            x = make_cells(n, size=size, classes=(6, 7, 8), seed=s).x
        elif name == "blank_cells":
            x = make_cells(n, size=size, classes=(9,), seed=s).x
        elif name == "digits":
            x = digits(n, size=size, seed=s, part=part)
        elif name == "textures":
            x = textures(n, size=size, seed=s, part=part)
        else:
            x = torch.from_numpy(np.random.default_rng(s).random((n, 3, size, size), dtype=np.float32))
        return _ood(x, name)

    groups = {
        "tailed_cells": "near",
        "blank_cells": "far",
        "digits": "far",
        "textures": "far",
        "noise": "far",
    }
    ood = {g: {"val": ood_set(g, n_ood_val, "val"), "test": ood_set(g, n_ood_test, "test")} for g in groups}
    mean, std = NORMALISATION["cells"]
    return Benchmark(
        name=f"cells{size}",
        id_train=id_split(n_train, "train"),
        id_val=id_split(n_val, "val"),
        id_test=id_split(n_test, "test"),
        ood=ood,
        groups=groups,
        num_classes=6,
        mean=mean,
        std=std,
        image_size=size,
        class_names=names,
    )


def stratified_split(
    y: Sequence[int] | torch.Tensor, n_first: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of indices into (first, rest) with ``n_first`` items spread evenly over the labels.

    Each label gets ``n_first // K`` items (the remainder goes to the first labels in sorted order);
    returns two sorted index arrays.
    """
    y = np.asarray(y)
    labels = np.unique(y)
    if not 0 <= n_first <= len(y):
        raise ValueError(f"n_first={n_first} must lie in [0, {len(y)}]")
    rng = np.random.default_rng(seed)
    quota = np.full(len(labels), n_first // max(len(labels), 1))
    quota[: n_first - quota.sum()] += 1
    first = []
    for lab, q in zip(labels, quota, strict=True):
        idx = np.flatnonzero(y == lab)
        if q > len(idx):
            raise ValueError(
                f"label {lab} has {len(idx)} items, fewer than its share {q} of n_first={n_first}"
            )
        first.append(rng.permutation(idx)[:q])
    first = np.sort(np.concatenate(first)) if first else np.zeros(0, np.int64)
    return first, np.setdiff1d(np.arange(len(y)), first)
