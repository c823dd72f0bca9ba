"""Datasets: synthetic cells, the offline OOD benchmark, loaders for real image datasets, OpenOOD v1.5, the GAIA / S&I
authors' CIFAR benchmark, chest X-rays.

All images are float32 tensors ``(N, C, H, W)`` in [0, 1]; labels are int64 ``(N,)`` (-1 = OOD).
"""

from .cells import BACKGROUND_NAMES, CLASS_NAMES, Cells, make_backgrounds, make_cells
from .gaia import (
    GAIA_BENCHMARKS,
    GAIA_IMAGENET_SETS,
    GAIA_OOD_SETS,
    gaia_cifar_benchmark,
    gaia_imagenet_benchmark,
)
from .ood import (
    NORMALISATION,
    TEXTURE_IMAGES,
    Benchmark,
    Split,
    digit_task,
    digits,
    offline_benchmark,
    stratified_split,
    textures,
)
from .openood import OPENOOD_V15, openood_benchmark
from .real import (
    IMAGENET_CIFAR10_OVERLAP,
    cifar10_ood_benchmark,
    cifar_pickle,
    class_images,
    image_folder,
    imagenet_cifar10_overlap,
    mnist_idx,
    openood_imglist,
    svhn_mat,
    wnid_folder,
)
from .xray import XrayFiles, kermany_pneumonia, siim_pneumothorax

__all__ = [
    "BACKGROUND_NAMES",
    "GAIA_BENCHMARKS",
    "GAIA_IMAGENET_SETS",
    "GAIA_OOD_SETS",
    "CLASS_NAMES",
    "IMAGENET_CIFAR10_OVERLAP",
    "NORMALISATION",
    "OPENOOD_V15",
    "TEXTURE_IMAGES",
    "Benchmark",
    "Cells",
    "Split",
    "XrayFiles",
    "cifar10_ood_benchmark",
    "cifar_pickle",
    "digit_task",
    "digits",
    "gaia_cifar_benchmark",
    "gaia_imagenet_benchmark",
    "image_folder",
    "kermany_pneumonia",
    "imagenet_cifar10_overlap",
    "make_backgrounds",
    "make_cells",
    "mnist_idx",
    "offline_benchmark",
    "openood_benchmark",
    "openood_imglist",
    "siim_pneumothorax",
    "stratified_split",
    "svhn_mat",
    "textures",
    "wnid_folder",
    "class_images",
]
