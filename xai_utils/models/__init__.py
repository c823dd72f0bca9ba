"""Classifiers following the package's model contract.

Contract: inputs ``(N, C, H, W)`` in [0, 1] (a :class:`Normalize` module comes first),
``model.features(x) -> (N, D)``, ``model.head: nn.Linear``, ``model(x) == model.head(model.features(x))``,
``model.cam_layer``: the module whose output is the last convolutional feature map.
``model.eval()`` is the caller's job.

* :mod:`.registry`: the one registry of architectures by name (``ARCHITECTURES``, ``build``).
* :mod:`.small`: small ResNet/VGG/AlexNet/Inception-style nets for the offline data.
* :mod:`.real`: architectures of the papers' pretrained nets, local checkpoints only
  (``real_classifier``, ``load_checkpoint``).
* :mod:`.train`: the one trainer (``fit``, ``train_classifier``; stopping rule ``RegularEvaluation``).
* :mod:`.cached`: the trainer through the shipped-model store and cache (``cached_classifier``,
  ``benchmark_classifier``, ``DEFAULT_OFFLINE``).
* :mod:`.safe`: ``captum_safe(model)``, a copy without reused / in-place / functional ReLUs.
* :mod:`.form`: the model in its fastest form (eager, channels_last, torch.compile), chosen by measurement
  (``fastest_form``, ``forced``).
"""

from .cached import DEFAULT_OFFLINE, benchmark_classifier, cached_classifier
from .checkpoints import resolve_cifar_checkpoint
from .form import FORMS, ModelForm, as_form, fastest_form, forced
from .real import (
    CifarResNet,
    OpenOODResNet18,
    ShortcutBlock,
    TorchvisionClassifier,
    cifar_resnet,
    load_checkpoint,
    openood_resnet18_32x32,
    real_classifier,
)
from .registry import ARCHITECTURES, PAPER_ARCHITECTURES, build, check_architecture
from .safe import captum_safe, relu_calls
from .small import Classifier, Normalize, SmallAlexNet, SmallResNet, SmallVGG
from .train import RegularEvaluation, TrainResult, accuracy, cpu_state, fit, train_classifier

__all__ = [
    "FORMS",
    "ModelForm",
    "as_form",
    "fastest_form",
    "forced",
    "ARCHITECTURES",
    "DEFAULT_OFFLINE",
    "PAPER_ARCHITECTURES",
    "Classifier",
    "CifarResNet",
    "Normalize",
    "OpenOODResNet18",
    "RegularEvaluation",
    "ShortcutBlock",
    "TorchvisionClassifier",
    "TrainResult",
    "accuracy",
    "benchmark_classifier",
    "build",
    "cached_classifier",
    "captum_safe",
    "check_architecture",
    "cifar_resnet",
    "cpu_state",
    "fit",
    "load_checkpoint",
    "openood_resnet18_32x32",
    "real_classifier",
    "relu_calls",
    "resolve_cifar_checkpoint",
    "SmallAlexNet",
    "SmallResNet",
    "SmallVGG",
    "train_classifier",
]
