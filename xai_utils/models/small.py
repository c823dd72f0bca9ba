"""Small image classifiers for the offline (generated) data, all following the model contract.

Model contract (shared with :mod:`xai_utils.models.real`): inputs are ``(N, C, H, W)`` images in
[0, 1]; the first module is :class:`Normalize`; ``model.features(x) -> (N, D)``,
``model.head: nn.Linear`` and ``model(x) == model.head(model.features(x))``; ``model.cam_layer`` is
the module whose output is the last convolutional feature map (Grad-CAM's default layer).
``model.eval()`` is the caller's job.

The ResNet uses torchvision's ``BasicBlock`` (downsample = 1x1 conv + BN), so zennit's
``ResNetCanonizer`` applies unchanged.  ``BasicBlock`` reuses one in-place ReLU module twice; use
:func:`xai_utils.models.safe.captum_safe` before captum's DeepLift/GuidedBackprop/Deconvolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` on ``(N, C, H, W)`` inputs; mean/std are buffers.

    Parameters
    ----------
    mean, std : sequence of C floats (std > 0).
    persistent : bool
        Whether the buffers go into ``state_dict`` (False for models that must load foreign
        checkpoints key for key).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], *, persistent: bool = True):
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.numel() != std_t.numel() or mean_t.numel() == 0:
            raise ValueError(
                f"mean and std need the same number (>0) of channels, got {len(mean_t)} and {len(std_t)}"
            )
        if not torch.isfinite(mean_t).all() or not (std_t > 0).all():
            raise ValueError(
                f"Normalize needs finite mean and std > 0, got mean={mean_t.tolist()}, std={std_t.tolist()}"
            )
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1), persistent=persistent)
        self.register_buffer("std", std_t.view(1, -1, 1, 1), persistent=persistent)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"expected images (N, {self.mean.shape[1]}, H, W), got shape {tuple(x.shape)}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class Classifier(nn.Module):
    """Base of every model in the package: ``forward(x) = head(features(x))``.

    Subclasses define ``normalize`` (first module), ``features``, ``head`` and ``cam_layer``.
    """

    head: nn.Linear

    def features(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def cam_layer(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _channel_stats(in_channels: int, mean: Sequence[float] | None, std: Sequence[float] | None):
    """Defaults: mean 0.5 and std 0.25 per channel (roughly [0, 1] -> [-2, 2])."""
    mean = [0.5] * in_channels if mean is None else list(mean)
    std = [0.25] * in_channels if std is None else list(std)
    if len(mean) != in_channels or len(std) != in_channels:
        raise ValueError(f"mean/std need in_channels={in_channels} values, got {len(mean)} and {len(std)}")
    return mean, std


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SmallResNet(Classifier):
    """CIFAR-style ResNet-``depth`` (He et al., arXiv:1512.03385): stem, 3 stages of torchvision BasicBlocks
    with widths (w, 2w, 4w), GAP + linear.

    Parameters
    ----------
    num_classes : int
    depth : int
        8, 14, 20, ... (n = (depth - 2) / 6 blocks per stage).
    width : int
        Channels of the first stage.
    in_channels : int
    mean, std : per-channel input statistics for :class:`Normalize` (default 0.5 / 0.25).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        depth: int = 8,
        width: int = 16,
        in_channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"small_resnet depth must be 6n+2 with n >= 1 (8, 14, 20, ...), got {depth}")
        n = (depth - 2) // 6
        self.normalize = Normalize(*_channel_stats(in_channels, mean, std))
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, planes = [], width
        for i, out in enumerate((width, 2 * width, 4 * width)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                down = None
                if j == 0 and (stride != 1 or planes != out):
                    down = nn.Sequential(
                        nn.Conv2d(planes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
                    )
                blocks.append(BasicBlock(planes, out, stride=stride if j == 0 else 1, downsample=down))
                planes = out
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4 * width, num_classes)
        _init_weights(self)

    @property
    def cam_layer(self) -> nn.Module:
        return self.layers

    def features(self, x: Tensor) -> Tensor:
        return self.pool(self.layers(self.stem(self.normalize(x)))).flatten(1)


class SmallVGG(Classifier):
    """VGG-style net (Simonyan & Zisserman, arXiv:1409.1556) with BN: log2(image_size/8)+1 stages of two 3x3
    convs (max-pool between), GAP + linear.  The last stage's map is about 8x8 (32 px -> 3 stages, 64 px ->
    4); widths w, 2w, 4w, 8w."""

    def __init__(
        self,
        num_classes: int,
        *,
        width: int = 16,
        image_size: int = 32,
        in_channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if image_size < 8:
            raise ValueError(f"small_vgg needs image_size >= 8, got {image_size}")
        n_stages = int(math.log2(image_size // 8)) + 1  # 32 px -> 3 stages (last map 8x8), 64 px -> 4
        self.normalize = Normalize(*_channel_stats(in_channels, mean, std))
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(n_stages):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            c_out = width * 2 ** min(i, 3)
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
                c_in = c_out
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_in, num_classes)
        _init_weights(self)

    @property
    def cam_layer(self) -> nn.Module:
        return self.body

    def features(self, x: Tensor) -> Tensor:
        return self.pool(self.body(self.normalize(x))).flatten(1)


class SmallAlexNet(Classifier):
    """AlexNet-style net (Krizhevsky et al. 2012): 5 convs, no BN, flatten + 2-layer MLP, linear head.

    ``features`` are the MLP's penultimate activations (N, hidden); dropout acts only in train mode.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        width: int = 16,
        hidden: int = 128,
        dropout: float = 0.3,
        in_channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        c = [width, 3 * width, 6 * width, 4 * width, 4 * width]
        self.normalize = Normalize(*_channel_stats(in_channels, mean, std))
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c[0], c[1], 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c[1], c[2], 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c[2], c[3], 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c[3], c[4], 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.AdaptiveAvgPool2d(4))
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(16 * c[4], hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, num_classes)
        _init_weights(self)

    @property
    def cam_layer(self) -> nn.Module:
        return self.body

    def features(self, x: Tensor) -> Tensor:
        return self.mlp(self.pool(self.body(self.normalize(x))))


def _conv_bn_relu(c_in: int, c_out: int, k: int) -> nn.Sequential:
    """Conv (same padding, no bias), BN, its own ReLU: one Sequential, so zennit merges the BN."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class InceptionBlock(nn.Module):
    """Inception block (Szegedy et al., arXiv:1512.00567): four branches concatenated, ``c`` channels each --
    1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3 (the factorised 5x5 of InceptionV3); 3x3 max-pool -> 1x1."""

    def __init__(self, c_in: int, c: int):
        super().__init__()
        self.b1 = _conv_bn_relu(c_in, c, 1)
        self.b3 = nn.Sequential(_conv_bn_relu(c_in, c, 1), _conv_bn_relu(c, c, 3))
        self.b5 = nn.Sequential(_conv_bn_relu(c_in, c, 1), _conv_bn_relu(c, c, 3), _conv_bn_relu(c, c, 3))
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv_bn_relu(c_in, c, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class SmallInception(Classifier):
    """A small Inception-style net, the disagreement chapter's stand-in for InceptionV3: 3x3 stem, max-pool,
    an Inception block (4 x w/2 channels), max-pool, an Inception block (4 x w channels), GAP + linear.
    Every ReLU is its own, not in-place, module (captum-safe as built)."""

    def __init__(
        self,
        num_classes: int,
        *,
        width: int = 16,
        in_channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        if width < 2 or width % 2:
            raise ValueError(f"small_inception width must be an even number >= 2, got {width}")
        self.normalize = Normalize(*_channel_stats(in_channels, mean, std))
        self.body = nn.Sequential(
            _conv_bn_relu(in_channels, width, 3),
            nn.MaxPool2d(2),
            InceptionBlock(width, width // 2),
            nn.MaxPool2d(2),
            InceptionBlock(2 * width, width),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4 * width, num_classes)
        _init_weights(self)

    @property
    def cam_layer(self) -> nn.Module:
        return self.body

    def features(self, x: Tensor) -> Tensor:
        return self.pool(self.body(self.normalize(x))).flatten(1)
