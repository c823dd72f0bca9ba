"""The CIFAR backbones of the GAIA / S&I authors' code, key for key with their checkpoints; local files only.

* ``gaia_resnet34``: the CIFAR ResNet34 of JGEthanChen/GAIA-OOD and LMBTough/S-I (``networks/resnet.py``):
  3x3 stem without max-pool, four stages (64..512) of 3, 4, 6, 3 basic blocks ``conv1, bn1, conv2, bn2,
  shortcut`` (1x1 conv + BN where the shape changes), global average pool, ``linear``.
* ``wrn40_2``: their WideResNet-40-2 (``networks/wresnet.py``, after Zagoruyko & Komodakis, arXiv:1605.07146):
  3x3 stem, three ``blockK.layer`` stages of 6 pre-activation blocks ``bn1, relu1, conv1, bn2, relu2, conv2``
  (+ ``convShortcut`` where the width or stride changes), final ``bn1`` + ReLU, global average pool, ``fc``;
  37 BatchNorms.  Dropout (0 in their builders) is left out.

The layers of the authors' GAIA / S&I code are declared on the models (read by :mod:`xai_utils.ood.gaia`):
ResNet34's GAIA-A layers are the BatchNorms of ``layer3`` and ``layer4``; WRN's split points add the pooled
feature to its BatchNorms, and that pooled feature is its GAIA-A last layer.

Both take images in [0, 1] and normalise inside (:class:`~.small.Normalize`); the authors normalise CIFAR-100
with ``NORMALISATION["cifar100"]`` (their ``data/datasets.py``), the default here.  Every ReLU is its own
non-in-place module (captum-safe).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..data.ood import NORMALISATION
from .real import OpenOODResNet18, or_default
from .small import Classifier, Normalize


class GaiaResNet34(OpenOODResNet18):
    """The authors' CIFAR ResNet34 (kuangliu layout): OpenOOD's ResNet18_32x32 with 3, 4, 6, 3 blocks and the
    head named ``linear``."""

    def __init__(self, num_classes: int = 100, *, mean: Sequence[float] = NORMALISATION["cifar100"][0],
                 std: Sequence[float] = NORMALISATION["cifar100"][1]):
        super().__init__(num_classes, mean=mean, std=std, blocks=(3, 4, 6, 3))
        self.linear = self.fc  # their avg_pool2d(out, 4) on 4 x 4 maps is the base's global average pool
        del self.fc

    head = property(lambda self: self.linear)
    #: GAIA-A's inner layers in the authors' code (``hook.py``): the BatchNorms of ``layer3`` and ``layer4``.
    gaia_a_layers = property(lambda self: [m for part in (self.layer3, self.layer4) for m in part.modules()
                                           if isinstance(m, nn.BatchNorm2d)])


class WideBlock(nn.Module):
    """Pre-activation wide basic block; the shortcut takes the activated input where the shape changes."""

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, padding=1, bias=False)
        # the authors' rule: a 1x1 shortcut where the width changes (in their nets every stride-2 block widens)
        self.convShortcut = (None if in_planes == out_planes
                             else nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        act = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(act))))
        return out + (x if self.convShortcut is None else self.convShortcut(act))


class WideStage(nn.Module):
    """``n`` wide blocks as ``.layer`` (the authors' ``NetworkBlock``)."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[WideBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
                                     for i in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(Classifier):
    """WideResNet-``depth``-``widen`` (depth = 6n + 4) in the authors' layout."""

    def __init__(self, depth: int = 40, widen: int = 2, num_classes: int = 100, *,
                 mean: Sequence[float] = NORMALISATION["cifar100"][0],
                 std: Sequence[float] = NORMALISATION["cifar100"][1]):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n+4 (16, 28, 40), got {depth}")
        n, widths = (depth - 4) // 6, (16, 16 * widen, 32 * widen, 64 * widen)
        self.normalize = Normalize(mean, std, persistent=False)
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.block1 = WideStage(n, widths[0], widths[1], 1)
        self.block2 = WideStage(n, widths[1], widths[2], 2)
        self.block3 = WideStage(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)

    head = property(lambda self: self.fc)
    cam_layer = property(lambda self: self.block3)
    #: The authors' GAIA-A inner layers are the 37 BatchNorms, their S&I split points (``cal_method_cifar100_wrn.py``:
    #: 38) those and the pooled feature, which is also GAIA-A's last layer (their ``AdaptAvgPool`` hook).
    gaia_a_layers = property(lambda self: [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)])
    split_points = property(lambda self: [*self.gaia_a_layers, self.pool])
    gaia_last = property(lambda self: self.pool)

    def features(self, x: Tensor) -> Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(self.normalize(x)))))
        return self.pool(self.relu(self.bn1(out))).flatten(1)


def gaia_resnet34(num_classes: int = 100, *, mean: Sequence[float] | None = None,
                  std: Sequence[float] | None = None) -> GaiaResNet34:
    """The authors' CIFAR ResNet34; mean/std default to their CIFAR-100 constants."""
    m, s = NORMALISATION["cifar100"]
    return GaiaResNet34(num_classes, mean=or_default(mean, m), std=or_default(std, s))


def wrn40_2(num_classes: int = 100, *, mean: Sequence[float] | None = None,
            std: Sequence[float] | None = None) -> WideResNet:
    """The authors' WideResNet-40-2; mean/std default to their CIFAR-100 constants."""
    m, s = NORMALISATION["cifar100"]
    return WideResNet(40, 2, num_classes, mean=or_default(mean, m), std=or_default(std, s))
