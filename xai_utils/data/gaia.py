"""The CIFAR OOD benchmark as the GAIA / S&I authors' code reads it (JGEthanChen/GAIA-OOD ``data/datasets.py``).

One folder (``<data_root>/gaia_ood``, their ``data_dir``) holds torchvision's CIFAR files and four image
folders, the layout of their README::

    cifar-10-batches-py/ or cifar-100-python/   the ID test set (python pickles)
    test_32x32.mat                              SVHN test (torchvision's file)
    LSUN/<folder>/, Imagenet/<folder>/          LSUN and TinyImageNet crops (their Dropbox archives)
    Places/<folder>/, textures/images/<class>/  Places (huangrui's ImageNet-OOD archive) and DTD

Every image is cut to its centre 32 x 32 without resizing, as their ``transforms.CenterCrop(32)`` does (the
32 px archives are unchanged; a large Places or DTD image gives a 32 px patch of its centre).  The
normalisation is theirs: ``NORMALISATION["cifar100"]`` / ``["cifar10_gaia"]``.
"""

from __future__ import annotations

import os

from .. import config
from .ood import NORMALISATION, Benchmark
from .real import cifar_pickle, id_ood_benchmark, image_folder, svhn_mat

GAIA_DIR = "gaia_ood"
#: Our set name -> (folder or file under :data:`GAIA_DIR`, OpenOOD-style group).  The names are the paper's
#: Table 1 columns (``s_and_i.PAPER_SETS``); TinyImageNet is near-OOD for CIFAR as in OpenOOD, the rest far.
GAIA_OOD_SETS = {"svhn": ("test_32x32.mat", "far"), "lsun": ("LSUN", "far"), "tin": ("Imagenet", "near"),
                 "places": ("Places", "far"), "textures": ("textures/images", "far")}
#: Benchmark name -> (CIFAR variant, normalisation key).
GAIA_BENCHMARKS = {"gaia_cifar10": (10, "cifar10_gaia"), "gaia_cifar100": (100, "cifar100")}
SIZE = 32


def gaia_cifar_benchmark(root: str | os.PathLike | None, name: str = "gaia_cifar100", *, n_val: int = 1000,
                         max_per_set: int | None = None, seed: int = 0) -> Benchmark:
    """The authors' CIFAR-10 / -100 benchmark (``name`` in :data:`GAIA_BENCHMARKS`) under
    ``config.data_root(root) / gaia_ood``: ID = the CIFAR test set, split into val (``n_val``, stratified, at
    most half) and test; OOD = :data:`GAIA_OOD_SETS` (at most ``max_per_set`` images each, seeded), cut into
    val / test halves.  A missing file or folder raises ``FileNotFoundError`` naming it."""
    if name not in GAIA_BENCHMARKS:
        raise ValueError(f"unknown GAIA benchmark {name!r}; known: {list(GAIA_BENCHMARKS)}")
    which, norm = GAIA_BENCHMARKS[name]
    base = config.data_root(root) / GAIA_DIR
    if not base.is_dir():
        raise FileNotFoundError(f"GAIA benchmark folder {base} does not exist; see data/README.md for the layout")
    cifar = cifar_pickle(base, which=which)
    sets = {}
    for key, (path, _) in GAIA_OOD_SETS.items():
        if key == "svhn":
            sets[key] = svhn_mat(base / path)
        else:
            sets[key] = image_folder(base / path, size=SIZE, crop_only=True, max_images=max_per_set, name=key)
    return id_ood_benchmark(name, f"cifar{which}", cifar, sets, {k: group for k, (_, group) in GAIA_OOD_SETS.items()},
                            stats=NORMALISATION[norm], num_classes=which, size=SIZE, n_val=n_val,
                            max_per_set=max_per_set, seed=seed)
