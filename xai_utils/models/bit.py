"""BiT-S ResNet-v2 (Kolesnikov et al., arXiv:1912.11370), key for key with the checkpoints of the GAIA / S&I
authors' ImageNet runs; local files only.

The layout is that of ``networks/resnetv2.py`` in JGEthanChen/GAIA-OOD and LMBTough/S-I (after
google-research/big_transfer): ``root`` (weight-standardised 7x7 conv, zero pad, 3x3 max-pool), ``body`` of four
``blockK`` stages of pre-activation bottleneck ``unitNN`` (``gn1, conv1, gn2, conv2, gn3, conv3`` and a
``downsample`` 1x1 conv on the activated input where the shape changes), ``before_head`` (GroupNorm, ReLU,
global average pool) and a 1x1 conv ``head``.  Their BiT-S-R101x1 file (GradNorm's
``BiT-S-R101x1-flat-finetune.pth.tar``: ``{"model": {"module.root.conv.weight", ...}}``) loads through
:func:`.real.load_checkpoint`; the head's 1x1 conv weight becomes this model's ``nn.Linear`` head on loading,
so the model keeps the package's contract (``head: nn.Linear``).  Images in [0, 1], normalised inside with
the authors' 0.5 / 0.5 (``NORMALISATION["bit"]``); they feed 480 x 480 resized images.

The authors' GAIA / S&I layers are declared on the model (read by :mod:`xai_utils.ood.gaia`):
``split_points`` = the GroupNorms of ``block4`` and ``before_head`` (their 10 splits), ``gaia_a_layers`` =
the GroupNorms of ``block4``, ``gaia_last`` = ``before_head`` (their ``hook.py`` and
``cal_method_imagenet_bit.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.ood import NORMALISATION
from .real import or_default
from .small import Classifier, Normalize

#: Blocks per stage of the BiT models used by the papers.
BIT_DEPTHS = {"r50": (3, 4, 6, 3), "r101": (3, 4, 23, 3)}
_GROUPS = 32


class StdConv2d(nn.Conv2d):
    """Conv2d with weight standardisation: each output filter shifted to mean 0 and scaled to variance 1
    (population variance, eps 1e-10) before the convolution, as BiT."""

    def forward(self, x: Tensor) -> Tensor:
        v, m = torch.var_mean(self.weight, dim=(1, 2, 3), keepdim=True, unbiased=False)
        w = (self.weight - m) / torch.sqrt(v + 1e-10)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck; the stride sits on the 3x3 conv, the projection takes the activated input."""

    def __init__(self, cin: int, cout: int, cmid: int, stride: int = 1):
        super().__init__()
        self.gn1 = nn.GroupNorm(_GROUPS, cin)
        self.relu1 = nn.ReLU()
        self.conv1 = StdConv2d(cin, cmid, 1, bias=False)
        self.gn2 = nn.GroupNorm(_GROUPS, cmid)
        self.relu2 = nn.ReLU()
        self.conv2 = StdConv2d(cmid, cmid, 3, stride=stride, padding=1, bias=False)
        self.gn3 = nn.GroupNorm(_GROUPS, cmid)
        self.relu3 = nn.ReLU()
        self.conv3 = StdConv2d(cmid, cout, 1, bias=False)
        self.downsample = StdConv2d(cin, cout, 1, stride=stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        act = self.relu1(self.gn1(x))
        shortcut = x if self.downsample is None else self.downsample(act)
        out = self.conv2(self.relu2(self.gn2(self.conv1(act))))
        return self.conv3(self.relu3(self.gn3(out))) + shortcut


def _stage(n: int, cin: int, cout: int, cmid: int, stride: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        (f"unit{i:02d}", PreActBottleneck(cin if i == 1 else cout, cout, cmid, stride if i == 1 else 1))
        for i in range(1, n + 1)))


def _head_from_conv(state: dict, prefix: str, *args) -> None:
    """Load-time hook: the authors' ``head.conv`` (1x1 conv) weights -> this model's linear ``head``."""
    for name in ("weight", "bias"):
        key = f"{prefix}head.conv.{name}"
        if key in state:
            value = state.pop(key)
            state[f"{prefix}head.{name}"] = value.flatten(1) if name == "weight" else value


class BiTResNetV2(Classifier):
    """BiT ResNet-v2 with ``blocks`` per stage and width factor ``width`` (BiT-S-R101x1: (3, 4, 23, 3), 1)."""

    def __init__(self, blocks: Sequence[int] = BIT_DEPTHS["r101"], width: int = 1, num_classes: int = 1000, *,
                 mean: Sequence[float] = NORMALISATION["bit"][0], std: Sequence[float] = NORMALISATION["bit"][1]):
        super().__init__()
        wf = width
        self.normalize = Normalize(mean, std, persistent=False)
        self.root = nn.Sequential(OrderedDict([
            ("conv", StdConv2d(3, 64 * wf, 7, stride=2, padding=3, bias=False)),
            ("pad", nn.ConstantPad2d(1, 0.0)),
            ("pool", nn.MaxPool2d(3, stride=2)),
        ]))
        self.body = nn.Sequential(OrderedDict([
            ("block1", _stage(blocks[0], 64 * wf, 256 * wf, 64 * wf, 1)),
            ("block2", _stage(blocks[1], 256 * wf, 512 * wf, 128 * wf, 2)),
            ("block3", _stage(blocks[2], 512 * wf, 1024 * wf, 256 * wf, 2)),
            ("block4", _stage(blocks[3], 1024 * wf, 2048 * wf, 512 * wf, 2)),
        ]))
        self.before_head = nn.Sequential(OrderedDict([
            ("gn", nn.GroupNorm(_GROUPS, 2048 * wf)),
            ("relu", nn.ReLU()),
            ("avg", nn.AdaptiveAvgPool2d(1)),
        ]))
        self.head = nn.Linear(2048 * wf, num_classes)
        self._register_load_state_dict_pre_hook(_head_from_conv)

    cam_layer = property(lambda self: self.body.block4)
    gaia_a_layers = property(lambda self: [m for m in self.body.block4.modules() if isinstance(m, nn.GroupNorm)])
    split_points = property(lambda self: [*self.gaia_a_layers, self.before_head])
    gaia_last = property(lambda self: self.before_head)

    def features(self, x: Tensor) -> Tensor:
        return self.before_head(self.body(self.root(self.normalize(x)))).flatten(1)


def bit_s_r101x1(num_classes: int = 1000, *, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> BiTResNetV2:
    """BiT-S-R101x1 (the papers' ImageNet backbone); mean/std default to BiT's 0.5 / 0.5."""
    m, s = NORMALISATION["bit"]
    return BiTResNetV2(BIT_DEPTHS["r101"], 1, num_classes, mean=or_default(mean, m), std=or_default(std, s))
