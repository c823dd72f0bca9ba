"""What a perturbation method shows the model: the encodings of every perturbed input it evaluates.

:class:`EncodingCapture` hooks the input of a model's classification layer (``model.head``: the
encoding, ``model.features(x)``) and keeps it for the batches that a method announces through its
``callback`` (the engine's and :func:`.anchor_beam.anchor_beam`'s), so clean forwards (the prediction
that picks the target) are not kept and no forward pass is added: the hermitry paper (sec. 3.2) measures
how far these encodings lie from a class's training encodings.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["EncodingCapture"]


class EncodingCapture:
    """Context manager: ``with EncodingCapture(model) as cap: method(..., callback=cap.callback)``.

    layer : the module whose *input* is the encoding (default ``model.head``).  After the block,
    :attr:`encodings` (M, D) float64, :attr:`images` (M,) image index and :attr:`rows` (M,) the
    engine's row index of every captured perturbed input, in evaluation order.
    """

    def __init__(self, model: nn.Module, layer: nn.Module | None = None):
        self.layer = layer if layer is not None else model.head
        self._parts: list[tuple[Tensor, Tensor, Tensor]] = []
        self._armed: tuple[Tensor, Tensor] | None = None
        self._handle = None

    def __enter__(self) -> EncodingCapture:
        self._handle = self.layer.register_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
        self._armed = None

    def callback(self, batch: Tensor, info: dict) -> None:
        """The methods' ``callback``: the next forward of ``layer`` is this perturbed batch."""
        self._armed = (info["image"].detach().cpu(), info["row"].detach().cpu())

    def _hook(self, module: nn.Module, args: tuple) -> None:
        if self._armed is None:
            return
        images, rows = self._armed
        enc = args[0].detach().flatten(1)
        if enc.shape[0] != len(images):
            raise RuntimeError(f"captured {enc.shape[0]} encodings for a batch of {len(images)} inputs")
        self._parts.append((enc.double().cpu(), images, rows))
        self._armed = None

    def _cat(self, i: int) -> np.ndarray:
        if not self._parts:
            return np.zeros((0, 0) if i == 0 else 0)
        return torch.cat([p[i] for p in self._parts]).numpy()

    @property
    def encodings(self) -> np.ndarray:
        return self._cat(0)

    @property
    def images(self) -> np.ndarray:
        return self._cat(1).astype(np.int64)

    @property
    def rows(self) -> np.ndarray:
        return self._cat(2).astype(np.int64)
