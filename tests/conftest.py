"""Shared tiny fixtures: analytic models that follow the project's model contract, tiny images.

Model contract (see xai_utils.models): input in [0, 1] (normalisation inside the model),
``model.features(x) -> (N, D)``, ``model.head: nn.Linear``, ``model(x) == model.head(model.features(x))``,
``model.cam_layer``: the module whose output is the last convolutional feature map.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from xai_utils.models import form


class TinyCNN(nn.Module):
    """conv -> ReLU -> conv -> ReLU -> global average pool -> linear (float64 for exact checks)."""

    def __init__(self, channels: int = 3, width: int = 6, classes: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, classes)

    @property
    def cam_layer(self) -> nn.Module:
        return self.body

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TinyResNet(nn.Module):
    """stem -> two torchvision BasicBlocks (one downsampling) -> GAP -> linear."""

    def __init__(self, width: int = 8, classes: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        down = nn.Sequential(nn.Conv2d(width, 2 * width, 1, stride=2, bias=False), nn.BatchNorm2d(2 * width))
        self.layers = nn.Sequential(BasicBlock(width, width), BasicBlock(width, 2 * width, stride=2, downsample=down))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2 * width, classes)

    @property
    def cam_layer(self) -> nn.Module:
        return self.layers

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(self.stem(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))


@pytest.fixture(autouse=True)
def _eager_unless_asked(request, monkeypatch):
    """Outside tests marked ``model_forms``, the model keeps its eager form: a form picked by a timing after
    some calls could move a later call's results in the last bits and make exact comparisons flaky."""
    if "model_forms" not in request.keywords:
        monkeypatch.setattr(form, "MEASURE_WORTH_BATCHES", math.inf)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: one thread is fastest, and two threads on a busy 2-core machine can be ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return TinyCNN().double().eval()


@pytest.fixture
def tiny_resnet() -> nn.Module:
    torch.manual_seed(0)
    model = TinyResNet()
    _randomise_bn(model, torch.Generator().manual_seed(1))
    return model.double().eval()


@pytest.fixture
def tiny_images() -> torch.Tensor:
    """(7, 3, 8, 8) float64 images in [0, 1]."""
    return torch.rand(7, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _save_bit_as_the_authors(model: nn.Module, path, **extra) -> dict[str, torch.Tensor]:
    """Write ``model``'s state as the GAIA / S&I authors' BiT checkpoint (``{"model": {"module.*"}}``, the head a 1x1
    conv ``head.conv``) to ``path``, with ``extra`` top-level entries; returns the state in their key layout."""
    theirs = {("head.conv." + k[5:] if k.startswith("head.") else k): v for k, v in model.state_dict().items()}
    theirs["head.conv.weight"] = theirs["head.conv.weight"][:, :, None, None]
    torch.save({"model": {f"module.{k}": v for k, v in theirs.items()}, **extra}, path)
    return theirs


@pytest.fixture
def save_bit_as_the_authors():
    """:func:`_save_bit_as_the_authors`: a BiT model written in the layout of the authors' checkpoint."""
    return _save_bit_as_the_authors
