"""Attribution methods behind one registry, ``METHODS``: name -> ``method(model, x, target, **params)``.

Every method takes images x (N, C, H, W) in [0, 1] and returns a raw, signed map on x's device:

* (N, 1, H, W) for the CAM methods ``gradcam`` and ``gradcam_relu`` (one map per image);
* (N, C, H, W) for all others (perturbation methods repeat a feature's value over its pixels
  and channels).

Post-processing is explicit: :func:`reduce_channels`, :func:`normalize`, :func:`upsample`.
Perturbation methods share the batched engine :func:`evaluate_masks` and the segmentations
:func:`grid`, :func:`patches`, :func:`sliding_windows`, :func:`slic`.
"""

from __future__ import annotations

from torch import Tensor, nn

from .anchor_beam import ANCHOR_DEFAULTS, anchor_beam
from .cam import gradcam, gradcam_raw, gradcam_relu, guided_gradcam
from .capture import EncodingCapture
from .engine import best_chunk_size, evaluate_masks, kernel_shap_masks, lime_masks, weighted_least_squares
from .gradient import (
    deconvolution,
    deeplift,
    deeplift_shap,
    gradient_shap,
    guided_backprop,
    input_x_gradient,
    integrated_gradients,
    safe_model,
    saliency,
)
from .lrp import composite_names, lrp
from .perturbation import anchor, kernel_shap, lime, occlusion
from .postprocess import Normalized, normalize, reduce_channels, resolve_target, upsample
from .segmentation import grid, patches, per_value, slic, sliding_windows

CAM_METHODS = frozenset({"gradcam", "gradcam_relu"})
#: Methods that evaluate perturbed images in chunks of ``chunk_size`` images per forward pass.
PERTURBATION_METHODS = frozenset({"occlusion", "lime", "kernel_shap", "anchor", "anchor_beam"})


def attribute(name: str, model: nn.Module, x: Tensor, target: int | Tensor | None = None, **params) -> Tensor:
    """Run the registered method ``name`` on images x (N, C, H, W); ``target`` None = predicted class.

    ``target`` may be an int or an (N,) integer tensor.  Raises ``ValueError`` for an unknown name,
    wrong shapes, NaN inputs or targets out of range (the method checks x and target, once).
    Returns (N, 1, H, W) for ``CAM_METHODS``, (N, C, H, W) otherwise; ``params`` are the method's
    keyword arguments.
    """
    if name not in METHODS:
        raise ValueError(f"unknown attribution method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name](model, x, target, **params)


METHODS = {
    "saliency": saliency,
    "input_x_gradient": input_x_gradient,
    "integrated_gradients": integrated_gradients,
    "gradient_shap": gradient_shap,
    "deeplift": deeplift,
    "deeplift_shap": deeplift_shap,
    "guided_backprop": guided_backprop,
    "deconvolution": deconvolution,
    "guided_gradcam": guided_gradcam,
    "gradcam": gradcam,
    "gradcam_relu": gradcam_relu,
    "lrp": lrp,
    "occlusion": occlusion,
    "lime": lime,
    "kernel_shap": kernel_shap,
    "anchor": anchor,
    "anchor_beam": anchor_beam,
}

#: The one display name of every method, for every chapter's tables and figures (the short names the
#: papers use: salagg's GBP, IG, GradCAM; captum's class names for the rest).
LABELS = {
    "saliency": "Saliency",
    "input_x_gradient": "Input*Gradient",
    "integrated_gradients": "IG",
    "gradient_shap": "GradientShap",
    "deeplift": "DeepLift",
    "deeplift_shap": "DeepLiftShap",
    "guided_backprop": "GBP",
    "deconvolution": "Deconvolution",
    "guided_gradcam": "GuidedGradCam",
    "gradcam": "GradCAM",
    "gradcam_relu": "GradCAM+ReLU",
    "lrp": "LRP",
    "occlusion": "Occlusion",
    "lime": "LIME",
    "kernel_shap": "KernelSHAP",
    "anchor": "Anchor",
    "anchor_beam": "Anchor LIME",
}

__all__ = [
    "METHODS",
    "CAM_METHODS",
    "PERTURBATION_METHODS",
    "LABELS",
    "attribute",
    *METHODS,
    "gradcam_raw",
    "ANCHOR_DEFAULTS",
    "EncodingCapture",
    "per_value",
    "safe_model",
    "composite_names",
    "evaluate_masks",
    "best_chunk_size",
    "lime_masks",
    "kernel_shap_masks",
    "weighted_least_squares",
    "reduce_channels",
    "normalize",
    "Normalized",
    "upsample",
    "resolve_target",
    "grid",
    "patches",
    "sliding_windows",
    "slic",
]
