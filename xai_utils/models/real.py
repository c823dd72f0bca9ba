"""Architectures of the papers' pretrained networks, wrapped to the model contract; local checkpoints only.

* ``cifar_resnet{20,32,44,56,110}``: He et al.'s CIFAR ResNet (arXiv:1512.03385, section 4.2) with
  option-A shortcuts, key for key compatible with akamaster/pytorch_resnet_cifar10 checkpoints
  (``{"best_prec1", "state_dict"}``, ``module.`` prefixes).  Trained on inputs normalised with the
  ImageNet constants, which are its default here.
* ``openood_resnet18_32x32``: OpenOOD's ResNet18_32x32 (``openood/networks/resnet18_32x32.py``):
  ``conv1, bn1, layer1-4`` of blocks ``conv1, bn1, conv2, bn2, shortcut`` (Sequential conv1x1 + BN
  where the shape changes), ``fc``.  Default normalisation: OpenOOD's CIFAR-10 constants.
* torchvision ``resnet18/34/50/101, densenet121, mnasnet1_0, inception_v3, alexnet, vgg16``, built
  with ``weights=None`` inside :class:`TorchvisionClassifier` (the torchvision net is ``.net``;
  torchvision state dicts load into it unchanged).

Their names are entries of the one registry, :data:`.registry.ARCHITECTURES`.

Checkpoint files are read by :mod:`.checkpoints` (tensors only, finite); its
``resolve_cifar_checkpoint`` (name or path -> architecture and file) is re-exported here.

LRP note: the two CIFAR ResNets use :class:`ShortcutBlock`, not torchvision's ``BasicBlock``, so
zennit's ``ResNetCanonizer`` does not see their residual sum ``out + shortcut(x)``; a canonizer for
``ShortcutBlock`` is needed (its forward is spelled out in the class docstring).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from ..data.ood import NORMALISATION
from .checkpoints import read_state_dict, resolve_cifar_checkpoint  # noqa: F401 - re-exported
from .small import Classifier, Normalize


def or_default(value: Sequence[float] | None, default: Sequence[float]) -> Sequence[float]:
    """``value``, or ``default`` when it is None (a builder's mean / std)."""
    return default if value is None else value


class OptionAShortcut(nn.Module):
    """He et al.'s option A: ``x[:, :, ::2, ::2]`` zero-padded with ``pad`` channels on each side."""

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class ShortcutBlock(nn.Module):
    """Residual basic block with a ``shortcut`` module (akamaster / OpenOOD naming).

    ``forward(x) = relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``; every ReLU is its own
    non-in-place module, so captum's DeepLift works without :func:`captum_safe`.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, *, option: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == "A":
                self.shortcut = OptionAShortcut(planes // 4)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


def _stage(in_planes: int, planes: int, n: int, stride: int, option: str) -> nn.Sequential:
    return nn.Sequential(
        *[
            ShortcutBlock(in_planes if i == 0 else planes, planes, stride if i == 0 else 1, option=option)
            for i in range(n)
        ]
    )


class CifarResNet(Classifier):
    """He et al.'s CIFAR ResNet-(6n+2) (arXiv:1512.03385): conv-BN-ReLU, 3 stages (16, 32, 64), GAP, linear."""

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        *,
        mean: Sequence[float] = NORMALISATION["imagenet"][0],
        std: Sequence[float] = NORMALISATION["imagenet"][1],
    ):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"cifar_resnet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        self.normalize = Normalize(mean, std, persistent=False)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = _stage(16, 16, n, 1, "A")
        self.layer2 = _stage(16, 32, n, 2, "A")
        self.layer3 = _stage(32, 64, n, 2, "A")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():  # akamaster's initialisation
            if isinstance(m, nn.Linear | nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    @property
    def head(self) -> nn.Linear:
        return self.linear

    @property
    def cam_layer(self) -> nn.Module:
        return self.layer3

    def features(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(self.normalize(x))))
        return self.pool(self.layer3(self.layer2(self.layer1(out)))).flatten(1)


class OpenOODResNet18(Classifier):
    """OpenOOD's ResNet18_32x32: 3x3 stem (no max-pool), 4 stages (64..512) of ``blocks`` (2 each), GAP, ``fc``."""

    def __init__(
        self,
        num_classes: int = 10,
        *,
        mean: Sequence[float] = NORMALISATION["cifar10"][0],
        std: Sequence[float] = NORMALISATION["cifar10"][1],
        blocks: Sequence[int] = (2, 2, 2, 2),
    ):
        super().__init__()
        self.normalize = Normalize(mean, std, persistent=False)
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.layer1 = _stage(64, 64, blocks[0], 1, "B")
        self.layer2 = _stage(64, 128, blocks[1], 2, "B")
        self.layer3 = _stage(128, 256, blocks[2], 2, "B")
        self.layer4 = _stage(256, 512, blocks[3], 2, "B")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    @property
    def head(self) -> nn.Linear:
        return self.fc

    @property
    def cam_layer(self) -> nn.Module:
        return self.layer4

    def features(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(self.normalize(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.avgpool(out).flatten(1)


def cifar_resnet(
    depth: int = 20,
    num_classes: int = 10,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> CifarResNet:
    """He et al.'s CIFAR ResNet-``depth`` with option-A shortcuts (arXiv:1512.03385).

    Module names match akamaster/pytorch_resnet_cifar10 (``conv1, bn1, layer1..3, linear``).
    mean/std default to the ImageNet constants that those checkpoints were trained with.
    """
    imagenet_mean, imagenet_std = NORMALISATION["imagenet"]
    return CifarResNet(depth, num_classes, mean=or_default(mean, imagenet_mean), std=or_default(std, imagenet_std))


def openood_resnet18_32x32(
    num_classes: int = 10, *, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> OpenOODResNet18:
    """OpenOOD's ResNet18_32x32, state-dict compatible with OpenOOD v1.5 checkpoints.

    mean/std default to OpenOOD's CIFAR-10 constants (use ``data.NORMALISATION["cifar100"]`` for its
    CIFAR-100 checkpoints).
    """
    return OpenOODResNet18(
        num_classes, mean=or_default(mean, NORMALISATION["cifar10"][0]), std=or_default(std, NORMALISATION["cifar10"][1])
    )


class TorchvisionClassifier(Classifier):
    """A torchvision classifier ``net`` behind :class:`Normalize`; subclasses say where features end."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.normalize = Normalize(mean, std, persistent=False)
        self.net = net


class TorchvisionResNet(TorchvisionClassifier):
    head = property(lambda self: self.net.fc)
    cam_layer = property(lambda self: self.net.layer4)

    def features(self, x: Tensor) -> Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(self.normalize(x)))))
        return n.avgpool(n.layer4(n.layer3(n.layer2(n.layer1(x))))).flatten(1)


class TorchvisionDenseNet(TorchvisionClassifier):
    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__(net, mean, std)
        self.relu = nn.ReLU()  # torchvision uses F.relu(inplace=True) here: a module keeps captum's hooks
        self.pool = nn.AdaptiveAvgPool2d(1)

    head = property(lambda self: self.net.classifier)
    cam_layer = property(lambda self: self.net.features)

    def features(self, x: Tensor) -> Tensor:
        return self.pool(self.relu(self.net.features(self.normalize(x)))).flatten(1)


class TorchvisionMnasNet(TorchvisionClassifier):
    head = property(lambda self: self.net.classifier[1])
    cam_layer = property(lambda self: self.net.layers)

    def features(self, x: Tensor) -> Tensor:  # classifier = Sequential(Dropout, Linear)
        return self.net.classifier[0](self.net.layers(self.normalize(x)).mean((2, 3)))


class TorchvisionInception(TorchvisionClassifier):
    head = property(lambda self: self.net.fc)
    cam_layer = property(lambda self: self.net.Mixed_7c)
    _BODY = (
        "Conv2d_1a_3x3",
        "Conv2d_2a_3x3",
        "Conv2d_2b_3x3",
        "maxpool1",
        "Conv2d_3b_1x1",
        "Conv2d_4a_3x3",
        "maxpool2",
        "Mixed_5b",
        "Mixed_5c",
        "Mixed_5d",
        "Mixed_6a",
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
        "Mixed_7a",
        "Mixed_7b",
        "Mixed_7c",
        "avgpool",
        "dropout",
    )

    def features(self, x: Tensor) -> Tensor:  # the auxiliary classifier is kept (checkpoint keys) but unused
        x = self.normalize(x)
        for name in self._BODY:
            x = getattr(self.net, name)(x)
        return x.flatten(1)


class TorchvisionSequential(TorchvisionClassifier):
    """AlexNet / VGG: ``features`` -> ``avgpool`` -> ``classifier``; our features = classifier[:-1]."""

    head = property(lambda self: self.net.classifier[-1])
    cam_layer = property(lambda self: self.net.features)

    def features(self, x: Tensor) -> Tensor:
        x = self.net.avgpool(self.net.features(self.normalize(x))).flatten(1)
        return self.net.classifier[:-1](x)


def torchvision_classifier(
    make: Callable[..., nn.Module],
    wrapper: type[TorchvisionClassifier],
    num_classes: int = 1000,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **kwargs,
) -> TorchvisionClassifier:
    """``wrapper(make(weights=None, num_classes=...))``; mean/std default to the ImageNet constants."""
    net = make(weights=None, num_classes=num_classes, **kwargs)
    return wrapper(net, or_default(mean, NORMALISATION["imagenet"][0]), or_default(std, NORMALISATION["imagenet"][1]))


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a local checkpoint into ``model`` strictly (in place) and return the model.

    Reads with :func:`~.checkpoints.read_state_dict` (``torch.load(weights_only=True)``, unwraps
    ``state_dict`` / ``model`` / ``net`` entries, strips ``module.`` prefixes).  For a
    :class:`TorchvisionClassifier`, a plain torchvision state dict goes into ``model.net``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        ``path`` does not exist (the message names it) or is a folder.
    ValueError
        Not a checkpoint of plain tensors, a NaN/inf tensor (named), or keys/shapes that do not
        match (first keys and counts).
    """
    path = Path(path).expanduser()
    state = read_state_dict(path)
    target = model
    if isinstance(model, TorchvisionClassifier) and not any(k.startswith("net.") for k in state):
        target = model.net
    try:
        result = target.load_state_dict(state, strict=False)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"checkpoint {path} does not fit {type(model).__name__}: {err}"[:2000]) from err
    if result.missing_keys or result.unexpected_keys:
        miss, extra = result.missing_keys, result.unexpected_keys
        raise ValueError(
            f"checkpoint {path} does not fit {type(model).__name__}: {len(miss)} missing keys "
            f"{miss[:5]}, {len(extra)} unexpected keys {extra[:5]}"
        )
    return model


def real_classifier(
    name: str,
    checkpoint: str | os.PathLike,
    *,
    num_classes: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Classifier:
    """Build ``name`` (:data:`.registry.ARCHITECTURES`) and load its weights from the local file
    ``checkpoint`` (no download).

    mean/std default to the architecture's training constants (ImageNet for cifar_resnet* and
    torchvision nets, CIFAR-10 for openood_resnet18_32x32); for torchvision's own Inception-v3
    weights pass mean = std = (0.5, 0.5, 0.5) (what its ``transform_input`` does).
    """
    from .registry import build  # the registry imports this module

    return load_checkpoint(build(name, num_classes, mean=mean, std=std), checkpoint)
