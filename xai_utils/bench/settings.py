"""What a bench run measures (:class:`BenchSettings`) and the rows it returns (``COLUMNS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

COLUMNS = [
    "device",
    "section",
    "name",
    "config",
    "n_images",
    "ms_per_image",
    "floor_ms_per_image",
    "ratio",
    "best_form_floor_ms_per_image",
    "ratio_best_form",
    "passes_per_image",
    "library",
    "library_ms_per_image",
    "speedup",
    "library_best",
    "library_best_ms_per_image",
    "speedup_best",
    "max_abs_diff",
    "max_rel_diff",
    "exact_rel_diff",
    "peak_rss_mb",
    "cuda_peak_mb",
    "value",
    "unit",
    "note",
]
CAPTUM_EQUIVALENT = ("occlusion", "lime", "kernel_shap")  # captum has no Anchor


@dataclass(frozen=True)
class ImageSetting:
    """One model input size: ``n_grad`` images for gradient methods and OOD scores, ``n_pert`` for
    perturbation methods, features = ``blocks`` x ``blocks`` grid, ``n_samples`` for LIME/KernelSHAP."""

    size: int = 32
    n_grad: int = 32
    n_pert: int = 16
    blocks: int = 8
    n_samples: int = 100
    anchor_blocks: int = 4
    anchor_max_size: int = 4
    n_anchor: int = 4


@dataclass(frozen=True)
class BenchSettings:
    """What one bench run measures (``full()`` / ``quick()``; tests shrink it further with ``replace``)."""

    images: tuple[ImageSetting, ...] = (ImageSetting(32, 32, 16), ImageSetting(64, 16, 8))
    repeats: int = 3
    forward_batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 800)
    cells_n: int = 3000
    train_n: tuple[int, int, int] = (3000, 600, 1200)
    train_overrides: dict[str, Any] = field(default_factory=dict)
    arch_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. a narrower net for tests
    train: bool = True
    captum: bool = True
    compile: bool = True  # try torch.compile among the model's forms (compiling costs ~10-60 s per form)
    methods: tuple[str, ...] | None = None  # None: every registered method
    scores: tuple[str, ...] | None = None  # None: every registered OOD score

    @classmethod
    def full(cls) -> BenchSettings:
        """The book's run: 32 and 64 px inputs, best of 3, trained model, captum comparisons."""
        return cls()

    @classmethod
    def quick(cls) -> BenchSettings:
        """A CI-sized run (``--quick``): 32 px only, best of 2, a 3-epoch training, no torch.compile."""
        return cls(
            images=(ImageSetting(32, 16, 8),),
            repeats=2,
            forward_batches=(1, 8, 32, 64, 128, 256),
            cells_n=1000,
            train_n=(1200, 300, 600),
            train_overrides={"epochs": 3},
            compile=False,
        )


def row(device: torch.device, section: str, name: str, **values: Any) -> dict[str, Any]:
    """One result row: every column of ``COLUMNS``, NaN (numbers) or "" (text) unless given."""
    out = dict.fromkeys(COLUMNS, float("nan"))
    out.update(device=device.type, section=section, name=name, config="", unit="", note="")
    out.update(values)
    return out
