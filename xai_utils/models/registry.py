"""The one registry of architectures by name, and :func:`build`.

``small_*``: small nets for the offline data (:mod:`.small`).  Every other entry is the architecture of a
paper's pretrained net (:mod:`.real`, :mod:`.gaia_nets`, :mod:`.bit`): He et al.'s CIFAR ResNets, OpenOOD's ResNet18_32x32,
the GAIA / S&I authors' CIFAR ResNet34 and WideResNet-40-2, BiT-S-R101x1 (:mod:`.bit`), and
torchvision classifiers (built with ``weights=None``; checkpoints load through :func:`.real.load_checkpoint`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torchvision

from . import bit, gaia_nets, real, small

_tv = torchvision.models
#: name -> builder ``(num_classes=..., **kwargs) -> Classifier``.
ARCHITECTURES: dict[str, Callable[..., small.Classifier]] = {
    "small_resnet": small.SmallResNet,
    "small_vgg": small.SmallVGG,
    "small_alexnet": small.SmallAlexNet,
    "small_inception": small.SmallInception,
    "cifar_resnet20": functools.partial(real.cifar_resnet, 20),
    "cifar_resnet32": functools.partial(real.cifar_resnet, 32),
    "cifar_resnet44": functools.partial(real.cifar_resnet, 44),
    "cifar_resnet56": functools.partial(real.cifar_resnet, 56),
    "cifar_resnet110": functools.partial(real.cifar_resnet, 110),
    "openood_resnet18_32x32": real.openood_resnet18_32x32,
    "gaia_resnet34": gaia_nets.gaia_resnet34,
    "wrn40_2": gaia_nets.wrn40_2,
    "bit_s_r101x1": bit.bit_s_r101x1,
    "resnet18": functools.partial(real.torchvision_classifier, _tv.resnet18, real.TorchvisionResNet),
    "resnet34": functools.partial(real.torchvision_classifier, _tv.resnet34, real.TorchvisionResNet),
    "resnet50": functools.partial(real.torchvision_classifier, _tv.resnet50, real.TorchvisionResNet),
    "resnet101": functools.partial(real.torchvision_classifier, _tv.resnet101, real.TorchvisionResNet),
    "densenet121": functools.partial(real.torchvision_classifier, _tv.densenet121, real.TorchvisionDenseNet),
    "mnasnet1_0": functools.partial(real.torchvision_classifier, _tv.mnasnet1_0, real.TorchvisionMnasNet),
    "inception_v3": functools.partial(
        real.torchvision_classifier, _tv.inception_v3, real.TorchvisionInception, aux_logits=True,
        init_weights=True,
    ),
    "alexnet": functools.partial(real.torchvision_classifier, _tv.alexnet, real.TorchvisionSequential),
    "vgg16": functools.partial(real.torchvision_classifier, _tv.vgg16, real.TorchvisionSequential),
}
#: The papers' architectures (every entry but the ``small_*`` nets); their checkpoints expect fixed input
#: statistics (ImageNet's for torchvision nets), not those of our training images.
PAPER_ARCHITECTURES = frozenset(name for name in ARCHITECTURES if not name.startswith("small_"))


def check_architecture(name: str) -> None:
    """Raise ValueError when ``name`` is not in :data:`ARCHITECTURES`, listing the known names."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")


def build(name: str, num_classes: int, **kwargs) -> small.Classifier:
    """A randomly initialised ``name`` (see :data:`ARCHITECTURES`) with ``num_classes`` outputs.

    ``kwargs`` go to the builder (e.g. ``width``, ``depth``, ``image_size``, ``mean``, ``std``).
    Raises ValueError for an unknown name (:func:`check_architecture`).
    """
    check_architecture(name)
    return ARCHITECTURES[name](num_classes=num_classes, **kwargs)
