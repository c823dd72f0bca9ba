"""The OpenOOD v1.5 benchmarks (arXiv:2306.09301) from their image lists, as the salagg paper splits them.

Layout under a data root: ``benchmark_imglist/<name>/{val,test}_<set>.txt`` (one ``relpath label``
per line, read by :func:`~.real.openood_imglist`) and the images they name, relative to the root
(``images_classic/...``, ``images_largescale/...``).  The checkpoints that go with each benchmark
are the models' business, not this module's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import config
from .ood import NORMALISATION, Benchmark, Split
from .real import PathLike, ood_halves, openood_imglist

#: OpenOOD v1.5 benchmarks: classes, image size, normalisation (key of ``NORMALISATION``), OOD sets.
OPENOOD_V15: dict[str, dict[str, Any]] = {
    "cifar10": dict(
        num_classes=10,
        size=32,
        norm="cifar10",
        near=("cifar100", "tin"),
        far=("mnist", "svhn", "texture", "places365"),
    ),
    "cifar100": dict(
        num_classes=100,
        size=32,
        norm="cifar100",
        near=("cifar10", "tin"),
        far=("mnist", "svhn", "texture", "places365"),
    ),
    "imagenet200": dict(
        num_classes=200,
        size=224,
        norm="imagenet",
        near=("ssb_hard", "ninco"),
        far=("inaturalist", "textures", "openimage_o"),
    ),
    "imagenet": dict(
        num_classes=1000,
        size=224,
        norm="imagenet",
        near=("ssb_hard", "ninco"),
        far=("inaturalist", "textures", "openimage_o"),
    ),
}


def openood_benchmark(root: PathLike, name: str, *, max_per_set: int | None = None, seed: int = 0) -> Benchmark:
    """An OpenOOD v1.5 benchmark from its image lists (``benchmark_imglist/<name>/{val,test}_*.txt``).

    ID val / test = ``val_<name>.txt`` / ``test_<name>.txt``; every OOD test list (``OPENOOD_V15``) is
    cut into seeded val / test halves (at most ``max_per_set`` images), as the salagg paper splits the
    benchmarks; ``id_train`` is empty.  Images are read relative to ``root``.
    """
    if name not in OPENOOD_V15:
        raise ValueError(f"unknown OpenOOD benchmark {name!r}; known: {sorted(OPENOOD_V15)}")
    spec, root = OPENOOD_V15[name], Path(root)
    lists = root / "benchmark_imglist" / name

    def load(stem: str) -> Split:
        return openood_imglist(lists / f"{stem}.txt", root, size=spec["size"], name=stem)

    id_val, id_test = load(f"val_{name}"), load(f"test_{name}")
    ood_sets: dict[str, dict[str, Split]] = {}
    groups: dict[str, str] = {}
    for group in ("near", "far"):
        for oname in spec[group]:
            ood_sets[oname] = ood_halves(load(f"test_{oname}"), oname, config.sub_seed(seed, oname), max_per_set)
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
