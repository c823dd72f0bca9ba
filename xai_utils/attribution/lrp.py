"""Layer-wise relevance propagation (Bach et al., PLOS ONE 2015; Montavon et al., arXiv:1512.02479) via zennit.

Composites come by name from ``zennit.composites.COMPOSITES`` (plus ``"epsilon"``: the epsilon rule on
every conv/linear layer).  Canonizers are picked automatically: ``SequentialMergeBatchNorm`` when the model
has batch norms, plus (as zennit's ``ResNetCanonizer``) the Basic/Bottleneck canonizers for torchvision
blocks, plus :class:`ShortcutBlockCanonizer` for our CIFAR/OpenOOD blocks.  The models' input ``Normalize`` module passes relevance unchanged (zennit's ``Pass`` rule), so
relevance in [0, 1] pixel space sums like relevance at the first layer.

Conservation (tests): relevance starts as the target logit; with ``zero_params="bias"`` the
``"epsilon"`` composite conserves it up to epsilon (sum of the map == logit); composites with z+ /
flat rules conserve it except where a layer's positive pre-activations all vanish.  With biases
kept, each bias absorbs its share and the sum is smaller than the logit.  On deep nets
``zero_params="bias"`` is numerically fragile (a bias-free pre-activation near zero under a positive
biased activation gives huge, cancelling relevances); the clean check there is a bias-free model.
The residual blocks of ``xai_utils.models.real`` (``ShortcutBlock``: CIFAR option-A / OpenOOD ResNets)
are not torchvision blocks; :class:`ShortcutBlockCanonizer` gives their residual sum a ``Sum`` module
(test: conservation on ``cifar_resnet``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from zennit.attribution import Gradient
from zennit.canonizers import AttributeCanonizer, SequentialMergeBatchNorm
from zennit.composites import COMPOSITES, LayerMapComposite, layer_map_base
from zennit.layer import Sum
from zennit.rules import Epsilon, Pass
from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer
from zennit.types import BatchNorm, Convolution

from ..models.real import ShortcutBlock
from .gradient import _prepare, detached

__all__ = ["lrp", "make_composite", "logit_relevance", "composite_names", "ShortcutBlockCanonizer"]

_NORMALIZE_NAMES = {"Normalize", "Normalise", "Normalization", "InputNormalize"}


def _epsilon_composite(
    *, epsilon: float = 1e-6, stabilizer: float = 1e-6, layer_map=None, zero_params=None, canonizers=None
) -> LayerMapComposite:
    rule = Epsilon(epsilon=epsilon, zero_params=zero_params)
    lm = (layer_map or []) + layer_map_base(stabilizer) + [(Convolution, rule), (nn.Linear, rule)]
    return LayerMapComposite(layer_map=lm, canonizers=canonizers)


def composite_names() -> list[str]:
    """Known composite names: zennit's registry plus ``"epsilon"``."""
    return sorted({*COMPOSITES, "epsilon"})


class ShortcutBlockCanonizer(AttributeCanonizer):
    """zennit canonizer for ``models.real.ShortcutBlock``: the residual sum goes through a ``Sum`` module.

    Same forward as the block, ``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``; removed on exit.
    """

    def __init__(self):
        super().__init__(self._attribute_map)

    @classmethod
    def _attribute_map(cls, name: str, module: nn.Module) -> dict | None:
        if isinstance(module, ShortcutBlock):
            return {"forward": cls.forward.__get__(module), "canonizer_sum": Sum()}
        return None

    @staticmethod
    def forward(self, x: Tensor) -> Tensor:  # bound to the block by the canonizer
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(self.canonizer_sum(torch.stack([self.shortcut(x), out], dim=-1)))


def _canonizers(model: nn.Module) -> list:
    """BN merging, then Sum modules for torchvision Basic/Bottleneck blocks and our ShortcutBlocks."""
    mods = list(model.modules())
    out = [SequentialMergeBatchNorm()] if any(isinstance(m, BatchNorm) for m in mods) else []
    if any(isinstance(m, (BasicBlock, Bottleneck)) for m in mods):
        out += [ResNetBottleneckCanonizer(), ResNetBasicBlockCanonizer()]
    if any(isinstance(m, ShortcutBlock) for m in mods):
        out.append(ShortcutBlockCanonizer())
    return out


def make_composite(
    model: nn.Module, composite: str = "epsilon_plus_flat", canonizers: list | None = None, **composite_kwargs
):
    """The zennit composite :func:`lrp` registers: ``composite`` by name (see :func:`composite_names`),
    canonizers chosen from the model unless given, input ``Normalize`` modules passed through."""
    known = composite_names()
    if composite not in known:
        raise ValueError(f"unknown LRP composite {composite!r}; known: {known}")
    norm_types = tuple({type(m) for m in model.modules() if type(m).__name__ in _NORMALIZE_NAMES})
    kwargs = dict(composite_kwargs)
    if norm_types:
        kwargs["layer_map"] = [(norm_types, Pass())] + list(kwargs.get("layer_map") or [])
    cls = _epsilon_composite if composite == "epsilon" else COMPOSITES[composite]
    return cls(canonizers=_canonizers(model) if canonizers is None else canonizers, **kwargs)


def logit_relevance(target: Tensor):
    """zennit output modifier: relevance starts as the target logit (one-hot times the output)."""

    def start(out: Tensor) -> Tensor:
        return out * torch.nn.functional.one_hot(target, out.shape[1]).to(out.dtype)

    return start


@detached
def lrp(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    composite: str = "epsilon_plus_flat",
    canonizers: list | None = None,
    **composite_kwargs,
) -> Tensor:
    """LRP relevance of the target logit, zennit ``Gradient`` attributor inside a ``with`` block.

    x : (N, C, H, W); composite : a name from :func:`composite_names`; canonizers : zennit canonizers
    (default: chosen from the model, see module doc); composite_kwargs : e.g. ``epsilon``,
    ``zero_params="bias"``, ``low``/``high`` for ``epsilon_gamma_box``.  Returns (N, C, H, W).
    The composite is registered and removed on every call (a few % of the time: the bench's zennit
    column times the same attributor registered once).
    """
    x, target = _prepare(model, x, target)
    comp = make_composite(model, composite, canonizers, **composite_kwargs)
    with Gradient(model=model, composite=comp) as attributor:
        _, relevance = attributor(x, logit_relevance(target))
    return relevance
