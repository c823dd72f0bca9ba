"""The eight saliency methods of the thesis, with its settings, and their maps (cached per run and method).

Settings (thesis Sec. 4.3 / 5.1.2, captum; "ns" = not stated there): Occlusion with a sliding window and
baseline 0; Saliency with captum's default ``abs=True``; Integrated Gradients, 50 Gauss-Legendre steps from a
U[0, 1) baseline; GradientSHAP, 5 samples, ``stdevs`` 0, U[0, 1) baselines; Guided Backprop; Guided Grad-CAM
(captum's: the rectified CAM times GBP, no final ReLU) at the last convolutional block; DeepLift from the zero
image; LRP with the epsilon rule (1e-9) on every layer.  Target: the predicted class (ns).  A map is the
signed sum over colour channels at the input's resolution (the reduction is ns; ours); in ``full`` it is
area-averaged to the thesis's 128 x 128 (the resize is ns; ours).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import attribution, cache, config, parallel
from .runs import Run

#: The thesis's eight methods in its order (package names; display names: ``attribution.LABELS``).
METHODS = ("occlusion", "saliency", "integrated_gradients", "gradient_shap", "guided_backprop", "guided_gradcam",
           "deeplift", "lrp")


@dataclass(frozen=True)
class MapSettings:
    """The settings the chapter varies (the notebook's parameters of the same names)."""

    occlusion_window: int
    occlusion_stride: int
    ig_steps: int
    gs_samples: int
    lrp_epsilon: float
    batch_images: int


def method_params(settings: MapSettings, seed: int) -> dict[str, dict[str, Any]]:
    """Keyword arguments of every method of :data:`METHODS` (``attribution.attribute``)."""
    w, s = settings.occlusion_window, settings.occlusion_stride
    return {
        "occlusion": dict(sliding_window_shapes=(3, w, w), strides=(3, s, s), baseline=0.0),
        "saliency": dict(abs=True),
        "integrated_gradients": dict(baseline="uniform", n_steps=settings.ig_steps, method="gausslegendre",
                                     seed=seed),
        "gradient_shap": dict(baselines="uniform", n_samples=settings.gs_samples, stdevs=0.0, seed=seed),
        "guided_backprop": {},
        "guided_gradcam": {},
        "deeplift": dict(baseline="zero"),
        "lrp": dict(composite="epsilon", epsilon=settings.lrp_epsilon),
    }


def method_maps(run: Run, method: str, params: Mapping[str, Any], batch_images: int) -> np.ndarray:
    """(N, H, W) float32 maps of ``method`` on the run's inputs, predicted class as target, at the side of the
    task's images (area-averaged when the black box takes another side: ``full``'s 299 / 224 px to 128)."""
    shared = {"model": run.model, "method": method, "params": dict(params), "side": tuple(run.task.x.shape[-2:])}
    return parallel.map_chunks(maps_chunk, run.x, chunk_size=batch_images, shared=shared,
                               desc=f"{method} maps").numpy()


def maps_chunk(chunk: parallel.Chunk, *, model: nn.Module, method: str, params: Mapping[str, Any],
               side: tuple[int, int]) -> torch.Tensor:
    """:func:`method_maps` of one chunk of images (the chunk function of ``parallel.map_chunks``)."""
    with warnings.catch_warnings():
        # captum's DeepLift undoes max-pooling with max_unpool2d, which torch flags as not deterministic (on
        # GPUs, where overlapping windows race); the CPU kernel runs in order
        warnings.filterwarnings("ignore", message=r"(?s).*max_unpooling2d.*deterministic", category=UserWarning)
        x = chunk.x.to(next(model.parameters()).device)
        a = attribution.reduce_channels(attribution.attribute(method, model, x, None, **params).detach(), "sum")
    if tuple(a.shape[-2:]) != tuple(side):
        a = F.interpolate(a, size=tuple(side), mode="area")
    return a[:, 0].float()


def compute_maps(runs: Mapping[str, Run], *, methods: Sequence[str], settings: MapSettings, seed: int,
                 use_cache: bool, progress: bool) -> dict[str, dict[str, np.ndarray]]:
    """Run name -> method -> (N, H, W) maps; cached by model, images, method and settings."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; the thesis's are {list(METHODS)}")
    params = method_params(settings, seed)
    jobs = [(r, m) for r in runs for m in methods]
    out: dict[str, dict[str, np.ndarray]] = {r: {} for r in runs}
    for r, m in config.progress(jobs, desc="saliency maps", disable=not progress):
        run = runs[r]

        def build(run=run, m=m) -> torch.Tensor:  # a tensor: the cache loads weights_only
            return torch.from_numpy(method_maps(run, m, params[m], settings.batch_images))

        cfg = {"model": cache.digest(run.model.state_dict()), "x": cache.digest(run.x), "method": m,
               "params": {k: str(v) for k, v in params[m].items()}, "batch": settings.batch_images}
        got = cache.load_or_build("disagreement_maps", cfg, build, code=[method_maps]) if use_cache else build()
        out[r][m] = got.numpy()
    return out
