"""The OOD benchmarks as the GAIA / S&I authors' code reads them (JGEthanChen/GAIA-OOD ``data/datasets.py``).

One folder (``<data_root>/gaia_ood``, their ``data_dir``) holds torchvision's CIFAR files and four image
folders, the layout of their README::

    cifar-10-batches-py/ or cifar-100-python/   the ID test set (python pickles)
    test_32x32.mat                              SVHN test (torchvision's file)
    LSUN/<folder>/, Imagenet/<folder>/          LSUN and TinyImageNet crops (their Dropbox archives)
    Places/<folder>/, textures/images/<class>/  Places (huangrui's ImageNet-OOD archive) and DTD

Every image is cut to its centre 32 x 32 without resizing, as their ``transforms.CenterCrop(32)`` does (the
32 px archives are unchanged; a large Places or DTD image gives a 32 px patch of its centre).  The
normalisation is theirs: ``NORMALISATION["cifar100"]`` / ``["cifar10_gaia"]``.

Their ImageNet benchmark (Table 2 of the S&I paper; GradNorm's sets, their README) lives in the same folder::

    imagenet/val/<wnid>/                        the ImageNet-1k validation images (1000 class folders)
    iNaturalist/<folder>/, SUN/<folder>/        MOS's OOD subsets (Huang & Li, arXiv:2105.01879)
    Places/<folder>/, textures/images/<class>/  (the same Places and DTD folders as above)

where every image is resized to 480 x 480 without keeping its aspect (their ``Resize((480, 480))``),
normalised with 0.5 / 0.5 (``NORMALISATION["bit"]``).  At 2.8 MB per decoded image only a class-balanced subset
is decoded: ``max_id`` ID images and ``max_per_set`` per OOD set, the first files of each class in turn.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import config
from .ood import NORMALISATION, Benchmark
from .real import cifar_pickle, id_ood_benchmark, image_folder, svhn_mat

GAIA_DIR = "gaia_ood"
#: Our set name -> (folder or file under :data:`GAIA_DIR`, OpenOOD-style group).  The names are the paper's
#: Table 1 columns (``s_and_i.PAPER_SETS``); TinyImageNet is near-OOD for CIFAR as in OpenOOD, the rest far.
GAIA_OOD_SETS = {"svhn": ("test_32x32.mat", "far"), "lsun": ("LSUN", "far"), "tin": ("Imagenet", "near"),
                 "places": ("Places", "far"), "textures": ("textures/images", "far")}
#: The ImageNet benchmark's OOD sets (the paper's Table 2 columns) -> (folder under :data:`GAIA_DIR`, group).
GAIA_IMAGENET_SETS = {"inaturalist": ("iNaturalist", "far"), "textures": ("textures/images", "far"),
                      "sun": ("SUN", "far"), "places": ("Places", "far")}
#: Benchmark name -> (number of classes, normalisation key).
GAIA_BENCHMARKS = {"gaia_cifar10": (10, "cifar10_gaia"), "gaia_cifar100": (100, "cifar100"),
                   "gaia_imagenet": (1000, "bit")}
SIZE, IMAGENET_SIZE = 32, 480


def _base(root: str | os.PathLike | None) -> Path:
    base = config.data_root(root) / GAIA_DIR
    if not base.is_dir():
        raise FileNotFoundError(f"GAIA benchmark folder {base} does not exist; see data/README.md for the layout")
    return base


def gaia_cifar_benchmark(root: str | os.PathLike | None, name: str = "gaia_cifar100", *, n_val: int = 1000,
                         max_per_set: int | None = None, seed: int = 0) -> Benchmark:
    """The authors' CIFAR-10 / -100 benchmark (``name`` in :data:`GAIA_BENCHMARKS`) under
    ``config.data_root(root) / gaia_ood``: ID = the CIFAR test set, split into val (``n_val``, stratified, at
    most half) and test; OOD = :data:`GAIA_OOD_SETS` (at most ``max_per_set`` images each, seeded), cut into
    val / test halves.  A missing file or folder raises ``FileNotFoundError`` naming it."""
    if name not in GAIA_BENCHMARKS or name == "gaia_imagenet":
        raise ValueError(f"unknown GAIA CIFAR benchmark {name!r}; known: {[k for k in GAIA_BENCHMARKS if 'cifar' in k]}")
    which, norm = GAIA_BENCHMARKS[name]
    base = _base(root)
    cifar = cifar_pickle(base, which=which)
    sets = {}
    for key, (path, _) in GAIA_OOD_SETS.items():
        if key == "svhn":
            sets[key] = svhn_mat(base / path)
        else:
            sets[key] = image_folder(base / path, size=SIZE, fit="crop", max_images=max_per_set, name=key)
    return id_ood_benchmark(name, f"cifar{which}", cifar, sets, {k: group for k, (_, group) in GAIA_OOD_SETS.items()},
                            stats=NORMALISATION[norm], num_classes=which, size=SIZE, n_val=n_val,
                            max_per_set=max_per_set, seed=seed)


def gaia_imagenet_benchmark(root: str | os.PathLike | None, *, n_val: int = 1000, max_id: int | None = None,
                            max_per_set: int | None = None, seed: int = 0) -> Benchmark:
    """The authors' ImageNet-1k benchmark under ``config.data_root(root) / gaia_ood`` (module docstring): ID = at
    most ``max_id`` validation images taken round-robin over the 1000 classes, split into val (``n_val``,
    stratified, at most half) and test; OOD = :data:`GAIA_IMAGENET_SETS` (at most ``max_per_set`` images each,
    taken round-robin over its sub-folders in file-name order, cut into seeded val / test halves).  Images
    480 x 480 (stretched).  A missing folder or an ID folder without 1000 classes raises naming it."""
    base = _base(root)
    val = image_folder(base / "imagenet" / "val", size=IMAGENET_SIZE, fit="stretch", max_images=max_id,
                       name="imagenet_val")
    if len(val.classes) != 1000:
        raise ValueError(f"{base / 'imagenet' / 'val'} has {len(val.classes)} class folders; ImageNet-1k needs 1000")
    sets = {key: image_folder(base / path, size=IMAGENET_SIZE, fit="stretch", max_images=max_per_set, name=key)
            for key, (path, _) in GAIA_IMAGENET_SETS.items()}
    return id_ood_benchmark("gaia_imagenet", "imagenet", val, sets, {k: g for k, (_, g) in GAIA_IMAGENET_SETS.items()},
                            stats=NORMALISATION["bit"], num_classes=1000, size=IMAGENET_SIZE, n_val=n_val,
                            max_per_set=max_per_set, seed=seed)
