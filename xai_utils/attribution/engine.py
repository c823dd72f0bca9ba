"""The batched perturbation engine under Occlusion, LIME, KernelSHAP and Anchor (:mod:`.perturbation`).

:func:`evaluate_masks` turns binary masks over F features into perturbed images and evaluates them
in shared forward passes of ``chunk_size`` images (all images' perturbations mixed), so the cost is
(number of evaluations) x (per-image forward time at the best batch size), not one small forward
per sample as in captum's per-image loops.  A ``callback(batch, info)`` sees every perturbed batch
(the hermitry paper measures how out-of-distribution they are).

Masks are True where a feature keeps the image and False where it is replaced by the baseline.
Random masks come from a generator seeded with ``seed`` and are shared by all images, so each
image's result is what a per-image call with that seed gives, independent of batch grouping.
Features: integer label maps or boolean membership stacks (see :mod:`.segmentation`).  Outputs are
(N, C, H, W): a feature's value on all its pixels and channels (captum's ``feature_mask`` convention).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import check_images
from ..config import best_time
from ..models.form import fastest_form
from .postprocess import resolve_target
from .segmentation import grid

__all__ = ["evaluate_masks", "best_chunk_size", "lime_masks", "kernel_shap_masks", "weighted_least_squares"]

_CHUNK_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
KERNEL_SHAP_INF_WEIGHT = 1e6  # captum's weight of the empty and full coalitions


# ----------------------------------------------------------------------------------------- features
@dataclass
class Features:
    labels: Tensor | None  # (L, K) long, L = 1 (shared) or N
    members: Tensor | None  # (F, K) bool
    n: int  # number of features F
    per_channel: bool  # K = C*H*W (features cover (C, H, W)) rather than H*W (all channels)

    def valid(self, n_images: int) -> Tensor:
        """(N, F) bool: which features have at least one pixel in each image."""
        if self.labels is None:
            return self.members.any(1).expand(n_images, -1)
        v = torch.zeros(self.labels.shape[0], self.n, dtype=torch.bool, device=self.labels.device)
        v.scatter_(1, self.labels, True)
        return v.expand(n_images, -1)

    def to_pixels(self, values: Tensor, shape: torch.Size) -> Tensor:
        """(N, F) feature values -> (N, C, H, W) maps (labels: copy; members: mean over covering windows)."""
        n, c, h, w = shape
        if self.labels is not None:
            out = values.gather(1, self.labels.expand(n, -1)).view(n, c if self.per_channel else 1, h, w)
        else:
            mem = self.members.to(values.dtype)
            count = mem.sum(0)
            out = (values @ mem) / count.clamp_min(1)
            out = out.view(n, c if self.per_channel else 1, h, w)
        return out.expand(n, c, h, w).contiguous()


def as_features(features: Tensor | None, x: Tensor, default_grid: int = 4) -> Features:
    n, c, h, w = x.shape
    if features is None:
        features = grid(h, w, default_grid)
    if not isinstance(features, Tensor):
        raise ValueError("features must be a label map (H, W)/(N, H, W) or a bool membership (F, [C,] H, W)")
    features = features.to(x.device)
    if features.dtype == torch.bool:
        if (
            features.dim() not in (3, 4)
            or tuple(features.shape[-2:]) != (h, w)
            or (features.dim() == 4 and features.shape[1] != c)
        ):
            raise ValueError(
                f"membership must be (F, {h}, {w}) or (F, {c}, {h}, {w}), got {tuple(features.shape)}"
            )
        return Features(None, features.flatten(1), features.shape[0], features.dim() == 4)
    if features.is_floating_point() or features.is_complex():
        raise ValueError(f"label maps must be integer tensors, got dtype {features.dtype}")
    if features.dim() == 2:
        features = features.unsqueeze(0)
    per_value = features.dim() == 4 and features.shape[1] == c
    if (
        features.dim() not in (3, 4)
        or (features.dim() == 4 and not per_value)
        or tuple(features.shape[-2:]) != (h, w)
        or features.shape[0] not in (1, n)
    ):
        raise ValueError(
            f"label map must be ({h}, {w}), ({n}, {h}, {w}) or (1 or {n}, {c}, {h}, {w}), got {tuple(features.shape)}"
        )
    if int(features.min()) < 0:
        raise ValueError("label maps must hold feature ids >= 0")
    return Features(features.flatten(1).long(), None, int(features.max()) + 1, per_value)


def as_baseline(baseline: float | Tensor, x: Tensor) -> tuple[Tensor, bool]:
    """Baseline as a tensor broadcastable to one image, or (N, C, H, W) when per image (flag True)."""
    b = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if not torch.isfinite(b).all():
        raise ValueError("baseline contains NaN or infinite values")
    if b.dim() == 4 and b.shape[0] == x.shape[0] and x.shape[0] > 1:
        return b.expand_as(x), True
    if b.dim() == 4:
        b = b[0]
    try:
        torch.broadcast_shapes(b.shape, x.shape[1:])
    except RuntimeError as err:
        raise ValueError(
            f"baseline of shape {tuple(b.shape)} does not broadcast to {tuple(x.shape[1:])}"
        ) from err
    return b, False


_SCORES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "logit": lambda out, t: out.gather(1, t[:, None]).squeeze(1),
    "probability": lambda out, t: out.softmax(1).gather(1, t[:, None]).squeeze(1),
    "hit": lambda out, t: (out.argmax(1) == t).to(out.dtype),
}


# ------------------------------------------------------------------------------------------ engine
#: Chunk size used when deterministic algorithms are on (the best CPU batch of the small offline nets).
DETERMINISTIC_CHUNK = 64


@torch.no_grad()
def best_chunk_size(
    model: nn.Module,
    x: Tensor,
    device: torch.device | str | None = None,
    *,
    candidates: tuple[int, ...] | None = None,
    max_seconds: float = 2.0,
    backward: bool = False,
) -> int:
    """Images per forward pass with the lowest time per image, measured once and cached in memory.

    ``backward=True`` times a forward+backward pass (gradient w.r.t. the input) instead: gradient
    methods' best batch can differ (a backward pass keeps every activation alive).  The key is (model
    object, device, image shape, dtype, backward).  x : (N, C, H, W), only x[:1] is used.
    Candidates double from 8 (to 256 on CPU, 2048 on GPU) while one warm-up pass of each fits in
    ``max_seconds / 2``; then every size is timed three times, the sizes taken in turn.  Returns the
    largest size within 5% of the best time per image.  Under
    ``torch.use_deterministic_algorithms(True)`` (``config.setup``) it measures nothing and returns
    ``DETERMINISTIC_CHUNK``: a timing-dependent chunk could change results in the last float bits, and
    the executed notebooks must repeat exactly.
    """
    if torch.are_deterministic_algorithms_enabled():
        return DETERMINISTIC_CHUNK
    device = torch.device(device) if device is not None else x.device
    key = (str(device), tuple(x.shape[1:]), x.dtype, backward)
    per_model = _CHUNK_CACHE.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    if candidates is None:
        candidates = tuple(2**k for k in range(3, 9 if device.type == "cpu" else 12))
    one = x[:1].detach().to(device)

    def seconds(c: int) -> float:
        batch = one.expand(c, *one.shape[1:]).contiguous().requires_grad_(backward)

        def one_pass() -> None:
            with torch.set_grad_enabled(backward):
                out = model(batch)
                if backward:
                    torch.autograd.grad(out.sum(), batch)

        return best_time(one_pass, device)

    # Round one warms every size up (allocator, thread pool: the first passes on a CPU run up to 2x
    # slow) and drops sizes that run out of memory or exceed the time budget; then three rounds over
    # all sizes in turn (so that a drifting machine slows every size alike), best time per image.
    sizes, spent = [], 0.0
    for c in candidates:
        try:
            spent += seconds(c)
        except torch.cuda.OutOfMemoryError:
            break
        sizes.append(c)
        if spent > max_seconds / 2:
            break
    per: dict[int, float] = {}
    for _ in range(3):
        for c in sizes:
            t = seconds(c)
            spent += t
            per[c] = min(per.get(c, float("inf")), t / c)
        if spent > 2 * max_seconds:
            break
    # the largest size within 5% of the fastest: callers pay a per-pass overhead that a bare pass
    # does not show (captum's bookkeeping, one Python loop step per pass)
    fastest = min(per.values(), default=math.inf)
    best = max((c for c, t in per.items() if t <= 1.05 * fastest), default=candidates[0])
    per_model[key] = best
    return best


def evaluate_masks(
    model: nn.Module,
    x: Tensor,
    masks: Tensor,
    features: Tensor | None,
    target: int | Tensor | None = None,
    *,
    baseline: float | Tensor = 0.0,
    score: str | Callable[[Tensor, Tensor], Tensor] = "logit",
    image_index: Tensor | None = None,
    chunk_size: int | None = None,
    callback: Callable[[Tensor, dict], None] | None = None,
) -> Tensor:
    """Evaluate the model on masked copies of the images, many images per forward pass.

    x : (N, C, H, W); masks : (S, F) shared, (N, S, F) per image, or (R, F) rows with ``image_index``
    (R,) naming each row's image; True keeps a feature, False puts in the baseline (float, (C, H, W)
    or (N, C, H, W)).  features : label map or membership (see module doc; None = 4 x 4 grid).
    score : "logit" (target logit), "probability", "hit" (argmax == target) or f(out, target) -> (B,).
    callback(batch (B, C, H, W), {"image": (B,), "row": (B,)}) sees every perturbed batch.
    Returns (N, S) scores, or (R,) with ``image_index``.
    """
    check_images(x)
    target = resolve_target(model, x, target)
    return evaluate_unchecked(
        model,
        x,
        masks,
        as_features(features, x),
        target,
        baseline=baseline,
        score=score,
        image_index=image_index,
        chunk_size=chunk_size,
        callback=callback,
    )


@torch.no_grad()
def evaluate_unchecked(
    model: nn.Module,
    x: Tensor,
    masks: Tensor,
    feats: Features,
    target: Tensor,
    *,
    baseline: float | Tensor = 0.0,
    score: str | Callable[[Tensor, Tensor], Tensor] = "logit",
    image_index: Tensor | None = None,
    chunk_size: int | None = None,
    callback: Callable[[Tensor, dict], None] | None = None,
) -> Tensor:
    """:func:`evaluate_masks` on inputs its caller has checked: x, the (N,) target, the features."""
    n, c, h, w = x.shape
    masks = torch.as_tensor(masks, device=x.device).bool()
    if masks.shape[-1] != feats.n:
        raise ValueError(f"masks have {masks.shape[-1]} features, the feature map has {feats.n}")
    if image_index is not None:
        rows, img = masks.reshape(-1, feats.n), torch.as_tensor(image_index, device=x.device).long()
        if img.shape != (rows.shape[0],):
            raise ValueError("image_index must have one entry per mask row")
        out_shape: tuple[int, ...] = (rows.shape[0],)
    else:
        if masks.dim() == 2:
            masks = masks.unsqueeze(0).expand(n, -1, -1)
        if masks.dim() != 3 or masks.shape[0] != n:
            raise ValueError(f"masks must be (S, F) or ({n}, S, F), got {tuple(masks.shape)}")
        rows = masks.reshape(-1, feats.n)
        img = torch.arange(n, device=x.device).repeat_interleave(masks.shape[1])
        out_shape = (n, masks.shape[1])
    score_fn = _SCORES[score] if isinstance(score, str) and score in _SCORES else score
    if not callable(score_fn):
        raise ValueError(f"unknown score {score!r}; known: {sorted(_SCORES)} or a callable")
    base, per_image_base = as_baseline(baseline, x)
    chunk = int(chunk_size or best_chunk_size(model, x))
    net = fastest_form(model, x, batch=chunk, workload=rows.shape[0]).module  # eager in the notebooks
    members = feats.members.to(torch.float32) if feats.members is not None else None
    kc = c if feats.per_channel else 1
    scores = x.new_empty(rows.shape[0])
    for start in range(0, rows.shape[0], chunk):
        m, ii = rows[start : start + chunk], img[start : start + chunk]
        if feats.labels is not None:
            lab = feats.labels[ii] if feats.labels.shape[0] > 1 else feats.labels.expand(len(ii), -1)
            keep = m.gather(1, lab).view(-1, kc, h, w)
        else:
            keep = ((~m).to(torch.float32) @ members == 0).view(-1, kc, h, w)
        z = torch.where(keep, x[ii], base[ii] if per_image_base else base)
        if callback is not None:
            callback(z, {"image": ii, "row": torch.arange(start, start + len(ii), device=x.device)})
        scores[start : start + len(ii)] = score_fn(net(z), target[ii]).to(x.dtype)
    return scores.view(out_shape)


# ------------------------------------------------------------------------------------- sampling/fit
def lime_masks(n_samples: int, n_features: int, p: float = 0.5, seed: int = 0) -> Tensor:
    """(S, F) bool masks, each feature independently masked (False) with probability ``p`` (seeded)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"masking probability p must be in [0, 1], got {p}")
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n_samples, n_features, generator=gen, dtype=torch.float64) >= p


def kernel_shap_masks(n_samples: int, n_features: int, seed: int = 0) -> Tensor:
    """(S, F) bool coalitions sampled as captum's KernelShap: the full and the empty coalition, then
    k ~ p(k) = (F-1) / (k (F-k)), k = 1..F-1, and k features chosen uniformly (seeded)."""
    if n_features < 2 or n_samples < 2:
        raise ValueError("KernelSHAP needs at least 2 features and 2 samples")
    gen = torch.Generator().manual_seed(seed)
    k = torch.arange(1, n_features, dtype=torch.float64)
    sizes = (
        torch.multinomial(
            (n_features - 1) / (k * (n_features - k)), n_samples - 2, replacement=True, generator=gen
        )
        + 1
    )
    ranks = torch.rand(n_samples - 2, n_features, generator=gen).argsort(1).argsort(1)
    sampled = ranks < sizes[:, None]
    return torch.cat(
        [torch.ones(1, n_features, dtype=torch.bool), torch.zeros(1, n_features, dtype=torch.bool), sampled]
    )


def weighted_least_squares(X: Tensor, y: Tensor, w: Tensor, alpha: float = 0.0) -> tuple[Tensor, Tensor]:
    """Batched weighted linear regression with intercept, as sklearn's ``LinearRegression`` / ``Ridge``.

    X : (N, S, F), y : (N, S), w : (N, S) >= 0.  Minimises sum_s w (y - X b - c)^2 + alpha |b|^2
    (minimum-norm b when singular).  Returns coef (N, F) and intercept (N,), in float64.  ``y`` is taken
    relative to its first sample, so a constant ``y`` gives exactly zero ``coef`` on every CPU (a weighted
    mean of equal values need not equal them in floating point, and its residue became noise maps).
    """
    X, y, w = X.double(), y.double(), w.double()
    wsum = w.sum(1, keepdim=True)
    if (wsum <= 0).any():
        raise ValueError("all sample weights of an image are zero")
    y0 = y[:, :1]
    y = y - y0
    xm = (w.unsqueeze(-1) * X).sum(1) / wsum
    ym = (w * y).sum(1, keepdim=True) / wsum
    sw = w.sqrt()
    A = (X - xm.unsqueeze(1)) * sw.unsqueeze(-1)
    b = ((y - ym) * sw).unsqueeze(-1)
    if alpha > 0:
        eye = torch.eye(X.shape[-1], dtype=A.dtype, device=A.device)
        coef = torch.linalg.solve(A.mT @ A + alpha * eye, A.mT @ b)
    elif A.device.type == "cpu":
        coef = torch.linalg.lstsq(A, b, driver="gelsd").solution
    else:
        coef = torch.linalg.pinv(A) @ b
    coef = coef.squeeze(-1)
    return coef, (y0 + ym).squeeze(1) - (xm * coef).sum(1)
