"""Gradient-based attributions through captum: one function per method, raw signed maps (N, C, H, W).

DeepLift, DeepLiftShap, GuidedBackprop and Deconvolution run on ``models.captum_safe(model)`` (no
reused / in-place ReLU), built once per model object and rebuilt when its weights change.
Random baselines ("uniform") are drawn once from a seeded generator and shared by every image,
so results do not depend on how images are grouped into batches.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable

import torch
from captum.attr import (
    Deconvolution,
    DeepLift,
    DeepLiftShap,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    Saliency,
)
from torch import Tensor, nn

from ..checks import check_images
from ..models import captum_safe, fastest_form
from .engine import best_chunk_size
from .postprocess import resolve_target

__all__ = [
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "gradient_shap",
    "deeplift",
    "deeplift_shap",
    "guided_backprop",
    "deconvolution",
    "safe_model",
    "make_baselines",
]

_SAFE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def safe_model(model: nn.Module) -> nn.Module:
    """``models.captum_safe(model)``, cached per model object (rebuilt if parameters change)."""
    state = tuple(
        (t.data_ptr(), t._version, t.dtype) for t in list(model.parameters()) + list(model.buffers())
    )
    hit = _SAFE.get(model)
    if hit is None or hit[0] != state:
        hit = (state, captum_safe(model))
        _SAFE[model] = hit
    safe = hit[1]
    safe.train(model.training)
    return safe


def make_baselines(x: Tensor, baseline: str | float | Tensor, n: int = 1, seed: int = 0) -> Tensor:
    """Baselines for ``x`` (N, C, H, W): ``"zero"``, ``"uniform"`` (n images ~ U[0, 1), seeded,
    shared by all images), a float (constant image) or a tensor.  Returns (n, C, H, W) for strings
    and floats (n = 1 unless asked), the tensor itself otherwise (on x's device and dtype)."""
    shape = (n, *x.shape[1:])
    if isinstance(baseline, Tensor):
        if not torch.isfinite(baseline).all():
            raise ValueError("baseline contains NaN or infinite values")
        return baseline.to(device=x.device, dtype=x.dtype)
    if baseline == "zero":
        return x.new_zeros(shape)
    if baseline == "uniform":
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(shape, generator=gen, dtype=torch.float64).to(device=x.device, dtype=x.dtype)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return x.new_full(shape, float(baseline))
    raise ValueError(f"baseline must be 'zero', 'uniform', a float or a tensor, got {baseline!r}")


def _prepare(model: nn.Module, x: Tensor, target) -> tuple[Tensor, Tensor]:
    """The one input check of a gradient method: x checked, a fresh leaf copy of it that requires grad
    (the caller's tensor is untouched), and the resolved (N,) target."""
    check_images(x)
    return x.detach().requires_grad_(), resolve_target(model, x, target)


def fast(model: nn.Module, x: Tensor, passes: int) -> nn.Module:
    """The model's fastest form (:func:`~xai_utils.models.form.fastest_form`) for a method that runs a
    forward+backward pass of ``passes`` images per input image; the eager model itself in the notebooks."""
    return fastest_form(model, x, backward=True, workload=len(x) * passes).module


def in_groups(x: Tensor, size: int, fn: Callable[[slice], Tensor]) -> Tensor:
    """``fn(images)`` over consecutive slices of at most ``size`` of x's images, concatenated.

    captum's IG and DeepLift family (and our GradientSHAP) stack every image x step (x baseline,
    x sample) into one batch; on a CPU a batch of hundreds of images is up to 3x slower per image than
    the best size (:func:`group_size`).  Only for methods whose maps do not depend on the other
    images of the batch.  x : (N, ...).
    """
    return torch.cat([fn(slice(i, i + size)) for i in range(0, len(x), size)])


def group_size(model: nn.Module, x: Tensor, passes: int) -> int:
    """Images per group for a method that runs ``passes`` images per input image: about one
    :func:`best_chunk_size` (forward+backward) at once."""
    return max(1, best_chunk_size(model, x, backward=True) // max(1, passes))


def detached(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run an attribution method with captum's hook notices silenced and return a detached map."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r"(?s).*(hooks|required_grads has been set)", category=UserWarning
            )
            return fn(*args, **kwargs).detach()

    return wrapper


@detached
def saliency(model: nn.Module, x: Tensor, target: int | Tensor | None = None, *, abs: bool = False) -> Tensor:
    """Input gradient of the target logit (Simonyan et al., arXiv:1312.6034), signed unless ``abs``.

    x : (N, C, H, W); target : (N,) classes (None = predicted); abs : |gradient| (captum's own default,
    the paper's original definition).  Returns (N, C, H, W).
    """
    x, target = _prepare(model, x, target)
    return Saliency(fast(model, x, 1)).attribute(x, target=target, abs=abs)


@detached
def input_x_gradient(model: nn.Module, x: Tensor, target: int | Tensor | None = None) -> Tensor:
    """Input times gradient (Shrikumar et al., arXiv:1605.01713).  x : (N, C, H, W) -> (N, C, H, W)."""
    x, target = _prepare(model, x, target)
    return InputXGradient(fast(model, x, 1)).attribute(x, target=target)


@detached
def integrated_gradients(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    baseline: str | float | Tensor = "zero",
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int | None = None,
    seed: int = 0,
) -> Tensor:
    """Integrated Gradients (Sundararajan et al., arXiv:1703.01365), captum.

    x : (N, C, H, W).  ``baseline``: "zero" (salagg), "uniform" (one seeded U[0,1) image shared by
    all inputs, disagreement), a float or a tensor broadcastable to x.  ``internal_batch_size``
    bounds the images per pass (default: :func:`best_chunk_size` of a forward+backward pass, measured
    once per model; captum's default, all N * n_steps inputs in one pass, is 1.7-3.4x slower on 2 CPU
    cores and runs out of memory on a GPU at ImageNet scale).  Images are split into groups of at
    most that size, and each group's steps into passes of that size.  Returns (N, C, H, W).
    """
    x, target = _prepare(model, x, target)
    base = make_baselines(x, baseline, seed=seed).expand_as(x)
    chunk = best_chunk_size(model, x, backward=True) if internal_batch_size is None else internal_batch_size
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"internal_batch_size must be a positive int, got {internal_batch_size!r}")
    ig = IntegratedGradients(fast(model, x, n_steps))
    return in_groups(
        x,
        chunk,
        lambda i: ig.attribute(
            x[i], base[i], target=target[i], n_steps=n_steps, method=method, internal_batch_size=chunk
        ),
    )


@detached
def gradient_shap(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    baselines: str | Tensor = "uniform",
    n_baselines: int = 8,
    n_samples: int = 5,
    stdevs: float = 0.0,
    seed: int = 0,
) -> Tensor:
    """GradientSHAP / expected gradients (Lundberg & Lee, arXiv:1705.07874), batched.

    The estimator of captum's ``GradientShap``: mean over ``n_samples`` draws of (baseline b,
    alpha ~ U(0,1), noise ~ N(0, stdevs^2) on x) of (x' - b) * grad f(b + alpha (x' - b)).  The draws
    come from a generator seeded with ``seed`` and are shared by all images (captum draws them per
    batch, so its result depends on the batch).  ``baselines``: "uniform" (n_baselines seeded U[0,1)
    images), "zero" or a tensor (B, C, H, W).  x : (N, C, H, W) -> (N, C, H, W).
    """
    x, target = _prepare(model, x, target)
    x = x.detach()
    nb = n_baselines if isinstance(baselines, str) and baselines == "uniform" else 1
    base = make_baselines(x, baselines, n=nb, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    idx = torch.randint(len(base), (n_samples,), generator=gen)
    alpha = (
        torch.rand(n_samples, generator=gen, dtype=torch.float64).to(x.device, x.dtype).view(1, -1, 1, 1, 1)
    )
    noise = torch.randn((n_samples, *x.shape[1:]), generator=gen, dtype=torch.float64).to(x.device, x.dtype)
    b = base[idx.to(base.device)].unsqueeze(0)  # (1, S, C, H, W)
    net = fast(model, x, n_samples)

    def group(images: slice) -> Tensor:
        xn = x[images].unsqueeze(1) + stdevs * noise.unsqueeze(0)  # (n, S, C, H, W)
        point = (b + alpha * (xn - b)).flatten(0, 1).requires_grad_()
        out = net(point).gather(1, target[images].repeat_interleave(n_samples).unsqueeze(1)).sum()
        (grad,) = torch.autograd.grad(out, point)
        return (grad.view_as(xn) * (xn - b)).mean(dim=1)

    return in_groups(x, group_size(model, x, n_samples), group)


@detached
def deeplift(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    baseline: str | float | Tensor = "zero",
    seed: int = 0,
) -> Tensor:
    """DeepLift, rescale rule (Shrikumar et al., arXiv:1704.02685), captum on ``captum_safe(model)``.

    x : (N, C, H, W); baseline as in :func:`integrated_gradients`.  Returns (N, C, H, W); the sum of
    each map equals f(x) - f(baseline) for the target class (summation to delta).
    """
    x, target = _prepare(model, x, target)
    base = make_baselines(x, baseline, seed=seed).expand_as(x)
    dl = DeepLift(safe_model(model))
    return in_groups(x, group_size(model, x, 2), lambda i: dl.attribute(x[i], base[i], target=target[i]))


@detached
def deeplift_shap(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    baselines: str | Tensor = "uniform",
    n_baselines: int = 8,
    seed: int = 0,
) -> Tensor:
    """DeepLiftShap (Lundberg & Lee, arXiv:1705.07874): DeepLift averaged over a baseline set, captum.

    ``baselines``: "uniform" (n_baselines seeded U[0,1) images shared by all inputs), "zero" (the zero
    image, given twice because captum wants B >= 2: equals DeepLift) or a tensor (B, C, H, W).
    x : (N, C, H, W) -> (N, C, H, W).  Deterministic; memory grows with N * B.
    """
    x, target = _prepare(model, x, target)
    nb = n_baselines if isinstance(baselines, str) and baselines == "uniform" else 2
    base = make_baselines(x, baselines, n=nb, seed=seed)
    if base.shape[0] < 2:
        base = base.expand(2, *base.shape[1:])
    base = base.contiguous()
    dls = DeepLiftShap(safe_model(model))
    size = group_size(model, x, 2 * len(base))
    return in_groups(x, size, lambda i: dls.attribute(x[i], base, target=target[i]))


@detached
def guided_backprop(model: nn.Module, x: Tensor, target: int | Tensor | None = None) -> Tensor:
    """Guided backpropagation (Springenberg et al., arXiv:1412.6806), captum on ``captum_safe(model)``.

    x : (N, C, H, W) -> (N, C, H, W).
    """
    x, target = _prepare(model, x, target)
    return GuidedBackprop(safe_model(model)).attribute(x, target=target)


@detached
def deconvolution(model: nn.Module, x: Tensor, target: int | Tensor | None = None) -> Tensor:
    """Deconvolution (Zeiler & Fergus, arXiv:1311.2901), captum on ``captum_safe(model)``.

    x : (N, C, H, W) -> (N, C, H, W).
    """
    x, target = _prepare(model, x, target)
    return Deconvolution(safe_model(model)).attribute(x, target=target)
