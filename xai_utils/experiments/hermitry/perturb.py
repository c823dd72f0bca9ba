"""The perturbed inputs of Occlusion, LIME, KernelSHAP and Anchor on a run's Y images, as encodings.

Each method runs as the hermitry paper configured it (App. A; the settings are the chapter's parameters)
and :class:`xai_utils.attribution.EncodingCapture` keeps the encoding of every perturbed input it
evaluates, without extra forward passes and without the clean forwards (occlusion's reference row, the
prediction).  KernelSHAP's full coalition is a sample it evaluates and is kept, as its empty one.
Results are cached per (weights, images, method, settings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ... import attribution as A
from ... import cache, config, parallel
from .runs import HermitryRun

#: Method name (the chapter's ``methods`` parameter) -> display name (the paper's).
METHODS = {"occlusion": "Occlusion", "lime": "LIME", "kernel_shap": "KernelSHAP", "anchor": "Anchor"}
#: The image side the paper's occlusion window and stride refer to (ImageNet crops).
PAPER_SIZE = 224


@dataclass(frozen=True)
class PerturbSettings:
    """occlusion_window / occlusion_stride: in pixels at 224 px, scaled to the image size; n_samples and
    kernel_width: LIME and KernelSHAP (captum's per-value features, exponential kernel on the euclidean
    distance); anchor_images: Y images per class Anchor runs on (its sample count is adaptive);
    chunk_images: images per method call (bounds the memory of the per-value surrogate fits)."""

    occlusion_window: int
    occlusion_stride: int
    n_samples: int
    kernel_width: float
    anchor_images: int
    chunk_images: int

    def window(self, size: int) -> tuple[int, int]:
        """Occlusion window and stride (pixels) at image side ``size``: the paper's, scaled, at least 1."""
        scale = size / PAPER_SIZE
        return max(1, round(self.occlusion_window * scale)), max(1, round(self.occlusion_stride * scale))


def _run_method(model: nn.Module, method: str, x: Tensor, mean: Tensor, s: PerturbSettings, seed: int,
                callback) -> None:
    n, c, h, w = x.shape
    if method == "occlusion":
        win, stride = s.window(w)
        A.occlusion(model, x, sliding_window_shapes=(c, win, win), strides=(c, stride, stride), baseline=mean,
                    callback=callback)
    elif method == "lime":
        A.lime(model, x, features=A.per_value(c, h, w), n_samples=s.n_samples, p=0.5, distance="euclidean",
               kernel_width=s.kernel_width, baseline=mean, seed=seed, callback=callback)
    elif method == "kernel_shap":
        A.kernel_shap(model, x, features=A.per_value(c, h, w), n_samples=s.n_samples, baseline=mean, seed=seed,
                      callback=callback)
    elif method == "anchor":
        A.anchor_beam(model, x, seed=seed, callback=callback)
    else:
        raise ValueError(f"unknown perturbation method {method!r}; known: {sorted(METHODS)}")


def perturbed_encodings(model: nn.Module, method: str, x: Tensor, *, mean: Sequence[float], settings: PerturbSettings,
                        seed: int) -> dict[str, np.ndarray]:
    """Encodings of every perturbed input ``method`` evaluates on x (N, 3, H, W): {"encodings": (M, D),
    "image": (M,) index into x}.  Images go through the method ``settings.chunk_images`` at a time; the
    random draws of chunk k use ``sub_seed(seed, f"{method}_{k}")``."""
    got = parallel.map_chunks(capture_chunk, x, chunk_size=settings.chunk_images, desc=f"{method} captures",
                              shared={"model": model, "method": method, "mean": list(mean), "settings": settings,
                                      "seed": seed})
    return {k: v.numpy() for k, v in got.items()}


def capture_chunk(chunk: parallel.Chunk, *, model: nn.Module, method: str, mean: Sequence[float],
                  settings: PerturbSettings, seed: int) -> dict[str, Tensor]:
    """:func:`perturbed_encodings` of one chunk of images (the chunk function of ``parallel.map_chunks``)."""
    base = torch.tensor(mean, dtype=chunk.x.dtype, device=chunk.x.device).view(-1, 1, 1)
    with A.EncodingCapture(model) as cap:
        _run_method(model, method, chunk.x, base, settings, config.sub_seed(seed, f"{method}_{chunk.index}"),
                    cap.callback)
    keep = np.ones(len(cap.rows), dtype=bool)
    if method == "occlusion":  # row 0 of each image is the unoccluded reference
        keep = cap.rows % (len(cap.rows) // len(chunk.x)) != 0
    return {"encodings": torch.from_numpy(cap.encodings[keep]),
            "image": torch.from_numpy(cap.images[keep] + chunk.start)}


def encode(model: nn.Module, x: Tensor, batch_size: int = 256) -> np.ndarray:
    """model.features(x) (N, D) as float64, in batches."""
    dev = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model.features(b.to(dev)).double().cpu() for b in x.split(batch_size)]).numpy()


def capture_all(runs: Mapping[str, HermitryRun], *, methods: Sequence[str], settings: PerturbSettings, seed: int,
                use_cache: bool, progress: bool) -> dict[tuple[str, str, str], dict[str, np.ndarray]]:
    """:func:`perturbed_encodings` for every (run, class, method); Anchor on the first
    ``settings.anchor_images`` Y images of a class.  Keyed (run, class, method)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown perturbation methods {unknown}; known: {sorted(METHODS)}")
    jobs = [(r, c, m) for r in runs for c in runs[r].classes for m in methods]
    out = {}
    for r, c, m in config.progress(jobs, desc="perturbations", disable=not progress):
        run = runs[r]
        dev = next(run.model.parameters()).device
        x = run.val[c][: settings.anchor_images] if m == "anchor" else run.val[c]
        x = x.to(dev)

        def build(run=run, m=m, x=x, c=c) -> dict[str, Tensor]:  # tensors: the cache loads weights_only
            got = perturbed_encodings(run.model, m, x, mean=run.mean, settings=settings,
                                      seed=config.sub_seed(seed, f"{c}"))
            return {k: torch.from_numpy(v) for k, v in got.items()}

        cfg = {"model": cache.digest(run.model.state_dict()), "x": cache.digest(x), "method": m,
               "settings": asdict(settings), "mean": list(run.mean), "seed": seed, "class": c}
        got = cache.load_or_build("hermitry_captures", cfg, build, code=[perturbed_encodings]) if use_cache else build()
        out[(r, c, m)] = {k: v.numpy() for k, v in got.items()}
    return out


def examples(run: HermitryRun, cls: str, *, methods: Sequence[str], settings: PerturbSettings, seed: int,
             k: int = 3) -> dict[str, Tensor]:
    """Table 2: the first ``k`` perturbed inputs each method evaluates on the class's first Y image
    (method -> (k, 3, H, W) on the CPU), from the same calls as :func:`capture_all` but on one image."""
    dev = next(run.model.parameters()).device
    x = run.val[cls][:1].to(dev)
    base = torch.tensor(run.mean, dtype=x.dtype, device=dev).view(-1, 1, 1)
    out = {}
    for m in methods:
        seen: list[Tensor] = []

        def keep(batch: Tensor, info: dict, seen: list = seen) -> None:
            if len(seen) < k:
                seen.extend(batch[: k - len(seen)].detach().cpu())

        _run_method(run.model, m, x, base, settings, config.sub_seed(config.sub_seed(seed, cls), f"{m}_0"), keep)
        out[m] = torch.stack(seen)
    return out
