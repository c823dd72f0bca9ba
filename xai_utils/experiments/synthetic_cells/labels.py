"""The chapter's method list and family names (Tjoa & Guan, arXiv:2009.02899); methods' display names are
:data:`xai_utils.attribution.LABELS`."""

from __future__ import annotations

#: The paper's 8 captum methods (Integrated Gradients was left out there), in its order.
METHODS: tuple[str, ...] = (
    "saliency",
    "input_x_gradient",
    "deeplift",
    "guided_backprop",
    "guided_gradcam",
    "deconvolution",
    "gradient_shap",
    "deeplift_shap",
)
FAMILY_LABELS: dict[str, str] = {"resnet": "ResNet", "alexnet": "AlexNet", "vgg": "VGG"}


def family_label(name: str) -> str:
    """The paper's name of an architecture family (``resnet`` -> ``ResNet``); other names unchanged."""
    return FAMILY_LABELS.get(name, name)
