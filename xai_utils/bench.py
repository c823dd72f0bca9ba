"""Performance bench: ``python -m xai_utils.bench [--quick] [--device auto] [--out CSV] [--write-page]``.

Measures, side by side in one run and on one device:

* every registered attribution method (``attribution.METHODS``) on a batch of images: time per image
  and its ratio to a floor (:class:`Floors`): its forward+backward image passes at the best
  per-image forward+backward time, plus its forward-only images (model evaluations) at the best
  per-image forward time, over the batch sizes it could use; the reference passes are timed beside
  each method.  Passes and evaluations are counted by a hook on the model, not assumed;
* Occlusion, LIME and KernelSHAP against captum's default per-image call with the same parameters
  (speed-up), and against captum on the same perturbations (maximum difference of the maps);
  Integrated Gradients against captum's default single batch, LRP against zennit with the
  composite registered once;
* every OOD score (``ood.SCORES``) against its forward / backward floor; cell generation (images/s);
  offline training time and test accuracy; peak memory (RSS; CUDA max allocated on a GPU).

Results go to ``book/results/bench_<device>.csv`` (tidy rows, machine description included);
``--write-page`` renders every ``bench_*.csv`` into ``book/performance.md``.  Timings are best-of-r
wall times after a warm-up; nothing here is asserted in tests except that the numbers exist.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from . import config

COLUMNS = [
    "device",
    "section",
    "name",
    "config",
    "n_images",
    "ms_per_image",
    "floor_ms_per_image",
    "ratio",
    "passes_per_image",
    "library",
    "library_ms_per_image",
    "speedup",
    "max_abs_diff",
    "max_rel_diff",
    "exact_rel_diff",
    "peak_rss_mb",
    "cuda_peak_mb",
    "value",
    "unit",
    "note",
]
PERTURBATION = ("occlusion", "lime", "kernel_shap", "anchor")
CAPTUM_EQUIVALENT = ("occlusion", "lime", "kernel_shap")  # captum has no Anchor
TARGETS = {"gradient": 1.2, "perturbation": 1.3, "speedup.lime": 5.0, "speedup.kernel_shap": 3.0}
PAGE = config.BOOK_DIR / "performance.md"


# ------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class ImageSetting:
    """One model input size: ``n_grad`` images for gradient methods and OOD scores, ``n_pert`` for
    perturbation methods, features = ``blocks`` x ``blocks`` grid, ``n_samples`` for LIME/KernelSHAP."""

    size: int = 32
    n_grad: int = 32
    n_pert: int = 16
    blocks: int = 8
    n_samples: int = 100
    anchor_blocks: int = 4
    anchor_max_size: int = 4
    n_anchor: int = 4


@dataclass(frozen=True)
class BenchSettings:
    """What one bench run measures (``full()`` / ``quick()``; tests shrink it further with ``replace``)."""

    images: tuple[ImageSetting, ...] = (ImageSetting(32, 32, 16), ImageSetting(64, 16, 8))
    repeats: int = 3
    forward_batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 800)
    cells_n: int = 3000
    train_n: tuple[int, int, int] = (3000, 600, 1200)
    train_overrides: dict[str, Any] = field(default_factory=dict)
    arch_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. a narrower net for tests
    train: bool = True
    captum: bool = True
    methods: tuple[str, ...] | None = None  # None: every registered method
    scores: tuple[str, ...] | None = None  # None: every registered OOD score

    @classmethod
    def full(cls) -> BenchSettings:
        return cls()

    @classmethod
    def quick(cls) -> BenchSettings:
        return cls(
            images=(ImageSetting(32, 16, 8),),
            repeats=2,
            forward_batches=(1, 8, 32, 64, 128, 256),
            cells_n=1000,
            train_n=(1200, 300, 600),
            train_overrides={"epochs": 3},
        )


# --------------------------------------------------------------------------------------- machinery
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Best wall time (s) of ``repeats`` calls of ``fn`` (the caller has warmed it up)."""
    best = math.inf
    for _ in range(max(1, repeats)):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """Context manager: peak resident memory (MB) sampled every ``interval`` s, and CUDA max allocated."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval = device, interval
        self.rss_mb, self.cuda_mb = float("nan"), float("nan")
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.rss_mb = max(self.rss_mb, _rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.rss_mb = _rss_mb() if os.path.exists("/proc/self/statm") else float("nan")
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        if not math.isnan(self.rss_mb):
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if hasattr(self, "_thread"):
            self._thread.join()
            self.rss_mb = max(self.rss_mb, _rss_mb())
        if self.device.type == "cuda":
            self.cuda_mb = torch.cuda.max_memory_allocated(self.device) / 2**20


class PassCounter:
    """Counts images through the model's head (full forward passes) and images back-propagated.

    A forward hook on ``model.head`` (or the model itself when it has no head) adds the batch size
    to ``forward``; when the output takes part in autograd, a tensor hook adds it to ``backward``
    each time a gradient reaches it.  The hooks are plain closures, so ``deepcopy`` (captum-safe
    copies) shares them and the copies count too.  Counting happens only inside :meth:`count`.
    """

    def __init__(self, model: nn.Module):
        self.forward = self.backward = 0
        self.active = False
        counter = self

        def add_backward(n: int) -> None:
            if counter.active:
                counter.backward += n

        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            if not counter.active or not isinstance(output, Tensor):
                return
            n = output.shape[0]
            counter.forward += n
            if output.requires_grad:
                output.register_hook(lambda g: add_backward(n))

        head = getattr(model, "head", None)
        self._handle = (head if isinstance(head, nn.Module) else model).register_forward_hook(hook)

    @contextmanager
    def count(self):
        self.forward = self.backward = 0
        self.active = True
        try:
            yield self
        finally:
            self.active = False

    def remove(self) -> None:
        self._handle.remove()


def _load() -> str:
    """1/5/15-minute load averages (other processes competing for the cores make timings noisy)."""
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "unknown"


def _row(device: torch.device, section: str, name: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS, float("nan"))
    row.update(device=device.type, section=section, name=name, config="", unit="", note="")
    row.update(values)
    return row


def machine_info(device: torch.device) -> dict[str, str]:
    """CPU model (from /proc/cpuinfo), cores, memory, GPU name, torch version and threads."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
        mem_s = f"{mem:.1f} GiB"
    except (OSError, ValueError, IndexError):
        mem_s = "unknown"
    info = {
        "cpu": cpu,
        "cores": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "memory": mem_s,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "none",
        "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    try:
        from importlib import metadata

        info["captum"] = metadata.version("captum")
    except Exception:  # pragma: no cover - captum is a dependency
        info["captum"] = "absent"
    return info


# ----------------------------------------------------------------------------------- data and model
def _cells(n: int, size: int, seed: int) -> tuple[Tensor, Tensor]:
    from .data.cells import make_cells

    c = make_cells(n, size=size, classes=range(6), seed=seed)
    return c.x, c.y


def bench_cells(settings: BenchSettings, device: torch.device) -> list[dict[str, Any]]:
    """Cell generation throughput (images/s) at 32 and 64 px (numpy, CPU)."""
    rows = []
    for size in sorted({s.size for s in settings.images} | {32, 64}):
        n = settings.cells_n if size <= 32 else max(settings.cells_n // 4, 16)
        _cells(16, size, seed=99)  # warm-up
        with PeakMemory(torch.device("cpu")) as mem:
            t0 = time.perf_counter()
            _cells(n, size, seed=1)
            dt = time.perf_counter() - t0
        rows.append(
            _row(
                device,
                "cells",
                f"make_cells {size}px",
                config=f"n={n}",
                n_images=n,
                ms_per_image=1e3 * dt / n,
                value=n / dt,
                unit="images/s",
                peak_rss_mb=mem.rss_mb,
            )
        )
    return rows


def bench_training(settings: BenchSettings, device: torch.device) -> tuple[list[dict[str, Any]], nn.Module]:
    """Train the default offline classifier (no cache) and measure seconds and test accuracy."""
    from .models import DEFAULT_OFFLINE, accuracy, build, train_classifier

    arch = DEFAULT_OFFLINE["arch"]
    arch_kwargs = {**DEFAULT_OFFLINE["arch_kwargs"], **settings.arch_overrides}
    if not settings.train:
        torch.manual_seed(0)
        model = build(arch, 6, **arch_kwargs).to(device).eval()
        return [], model
    n_tr, n_va, n_te = settings.train_n
    x, y = _cells(n_tr + n_va + n_te, 32, seed=0)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    xtr, ytr, xva, yva = x[:n_tr], y[:n_tr], x[n_tr : n_tr + n_va], y[n_tr : n_tr + n_va]
    xte, yte = x[n_tr + n_va :], y[n_tr + n_va :]
    kw = {**DEFAULT_OFFLINE["train_kwargs"], **settings.train_overrides}
    with PeakMemory(device) as mem:
        res = train_classifier(arch, arch_kwargs, xtr, ytr, xva, yva, device=device, progress=False, **kw)
    model = res.model.eval()
    acc = accuracy(model, xte, yte, device=device, chunk=256)
    cfg = f"{arch} {arch_kwargs}, {kw['epochs']} epochs, batch {kw['batch_size']}, train/val/test {n_tr}/{n_va}/{n_te}"
    row = _row(
        device,
        "training",
        f"train {arch}",
        config=cfg,
        n_images=n_tr,
        value=acc,
        unit="test accuracy",
        ms_per_image=1e3 * res.seconds / (n_tr * len(res.history)),
        peak_rss_mb=mem.rss_mb,
        cuda_peak_mb=mem.cuda_mb,
        note=f"{res.seconds:.1f} s for {len(res.history)} epochs",
    )
    return [row], model


# ---------------------------------------------------------------------------------------- floors
@torch.no_grad()
def forward_times(model: nn.Module, x: Tensor, batches: Sequence[int], repeats: int) -> dict[int, float]:
    """Per-image forward time (s) at each batch size (copies of x's images, cycled)."""
    out = {}
    for b in batches:
        xb = x[torch.arange(b) % len(x)].contiguous()
        model(xb)
        out[b] = _best_time(lambda xb=xb: model(xb), x.device, repeats + 1) / b
    return out


def forward_step(model: nn.Module, x: Tensor) -> Callable[[], None]:
    """One forward pass of the whole batch, without autograd."""

    @torch.no_grad()
    def step() -> None:
        model(x)

    return step


def forward_backward_step(model: nn.Module, x: Tensor, target: Tensor) -> Callable[[], None]:
    """One forward + backward pass (gradient of the target logits w.r.t. x) on the whole batch."""

    def step() -> None:
        xg = x.detach().requires_grad_()
        torch.autograd.grad(model(xg).gather(1, target[:, None]).sum(), xg)

    return step


@dataclass
class Floors:
    """The reference passes behind every floor, timed *beside* each method (interleaved, best of r),
    so that a shared machine's drift slows the method and its floor alike.

    forward / backward : batch size -> a forward (forward+backward) pass of that many images: the
    method batches, the engine chunk and (forward) the best batch size measured.
    """

    forward: dict[int, Callable[[], Any]]
    backward: dict[int, Callable[[], Any]]

    def time_beside(
        self, fn: Callable[[], Any], device: torch.device, repeats: int, forwards: int, backwards: int
    ) -> tuple[float, float]:
        """Best time (s) of ``fn`` and its floor (s): the least time for ``backwards``
        forward+backward image passes plus the remaining forward-only images, each at the best
        per-image time of a batch size no larger than the number of such images (a method that
        scores 16 images cannot use a batch of 64).  Only those batch sizes are timed, between the
        calls of ``fn``."""
        parts = [(self.backward, backwards), (self.forward, max(forwards - backwards, 0))]
        probes = [(images, _fitting(steps, images)) for steps, images in parts if images]
        t_fn = math.inf
        best = [dict.fromkeys(steps, math.inf) for _, steps in probes]
        for _ in range(max(1, repeats)):
            t_fn = min(t_fn, _best_time(fn, device, 1))
            for per, (_, steps) in zip(best, probes, strict=True):
                for b, step in steps.items():
                    per[b] = min(per[b], _best_time(step, device, 1) / b)
        floor = sum(images * min(per.values()) for per, (images, _) in zip(best, probes, strict=True))
        return t_fn, floor


def _fitting(steps: dict[int, Callable[[], Any]], images: int) -> dict[int, Callable[[], Any]]:
    """The passes of at most ``images`` images (the smallest one if none is that small)."""
    return {b: f for b, f in steps.items() if b <= images} or {min(steps): steps[min(steps)]}


# ----------------------------------------------------------------------------------------- captum
def _captum_default(
    name: str, model: nn.Module, x: Tensor, target: Tensor, labels: Tensor, s: ImageSetting, block: int
) -> Tensor:
    """captum's default per-image call with our parameters (one example per call, as captum advises)."""
    from captum.attr import KernelShap, Lime, Occlusion

    fm = labels.view(1, 1, *labels.shape)
    out = []
    for i in range(len(x)):
        xi, ti = x[i : i + 1], int(target[i])
        if name == "occlusion":
            c = x.shape[1]
            a = Occlusion(model).attribute(
                xi,
                sliding_window_shapes=(c, block, block),
                strides=(c, block, block),
                baselines=0.0,
                target=ti,
            )
        elif name == "lime":
            a = Lime(model).attribute(xi, target=ti, feature_mask=fm, baselines=0.0, n_samples=s.n_samples)
        else:
            a = KernelShap(model).attribute(
                xi, target=ti, feature_mask=fm, baselines=0.0, n_samples=s.n_samples
            )
        out.append(a)
    return torch.cat(out)


def _captum_ig(
    model: nn.Module, x: Tensor, target: Tensor, ours: Tensor, t_ours: float, device: torch.device, repeats: int
) -> dict[str, Any]:
    """captum's ``IntegratedGradients`` default call (all N x n_steps inputs in one batch; our wrapper
    passes the measured chunk as ``internal_batch_size``), same baseline and steps."""
    from captum.attr import IntegratedGradients

    def call() -> Tensor:
        xg = x.detach().requires_grad_()
        return IntegratedGradients(model).attribute(xg, torch.zeros_like(xg), target=target).detach()

    ref = call()
    t = _best_time(call, device, repeats)
    return _library_columns("captum IntegratedGradients, one batch", t, t_ours, len(x), ours, ref)


def _zennit_lrp(
    model: nn.Module, x: Tensor, target: Tensor, ours: Tensor, t_ours: float, device: torch.device, repeats: int
) -> dict[str, Any]:
    """zennit's attributor with our composite registered once, outside the timing: what our
    per-call registration (canonizers, rule hooks) adds to the rules' own cost."""
    from zennit.attribution import Gradient

    from .attribution.lrp import logit_relevance, make_composite

    xg = x.detach().requires_grad_()
    with Gradient(model=model, composite=make_composite(model)) as attributor:
        ref = attributor(xg, logit_relevance(target))[1].detach()
        t = _best_time(lambda: attributor(xg, logit_relevance(target)), device, repeats)
    return _library_columns("zennit Gradient, composite registered once", t, t_ours, len(x), ours, ref)


def _library_columns(library: str, t: float, t_ours: float, n: int, ours: Tensor, ref: Tensor) -> dict[str, Any]:
    """The library columns of a method's row: its call, time per image, speed-up, map differences."""
    d_abs, d_rel = _max_diff(ours, ref)
    return {
        "library": library,
        "library_ms_per_image": 1e3 * t / n,
        "speedup": t / t_ours,
        "max_abs_diff": d_abs,
        "max_rel_diff": d_rel,
    }


def _captum_same(
    name: str, model: nn.Module, x: Tensor, target: Tensor, labels: Tensor, masks: Tensor, kernel_width: float
) -> Tensor:
    """captum on exactly our perturbations: our masks fed in order, our kernel, plain linear regression."""
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from captum.attr import KernelShap, Lime

    fm = labels.view(1, 1, *labels.shape)
    f = masks.shape[-1]
    out = []
    for i in range(len(x)):
        rows = masks.to(x.device).long()

        def perturb(original_inp, rows=rows, **kw):  # generator: captum draws one sample per call
            yield from (r[None] for r in rows)

        if name == "lime":

            def kernel(_orig, _pert, interp, **kw):
                on = interp.double().sum()
                d = 1 - on / (on.sqrt() * math.sqrt(f)) if on > 0 else torch.tensor(1.0, dtype=torch.float64)
                return torch.exp(-(d**2) / (2 * kernel_width**2))

            explainer = Lime(
                model,
                interpretable_model=SkLearnLinearRegression(),
                similarity_func=kernel,
                perturb_func=perturb,
            )
        else:
            explainer = KernelShap(model)
            explainer.perturb_func = perturb
        out.append(
            explainer.attribute(
                x[i : i + 1], target=int(target[i]), feature_mask=fm, baselines=0.0, n_samples=len(rows)
            )
        )
    return torch.cat(out)


def _exact_fit(
    name: str, model: nn.Module, x: Tensor, target: Tensor, labels: Tensor, masks: Tensor, kernel_width: float
) -> Tensor:
    """Feature values (N, F) of a float64 scikit-learn weighted linear fit on the same evaluations."""
    from sklearn.linear_model import LinearRegression

    from . import attribution as A

    y = A.evaluate_masks(model, x, masks, labels, target).double().cpu().numpy()
    m = masks.double().cpu().numpy()
    f = m.shape[1]
    on = m.sum(1)
    if name == "lime":
        d = np.where(on > 0, 1 - on / np.sqrt(np.maximum(on, 1e-300) * f), 1.0)
        w = np.exp(-(d**2) / (2 * kernel_width**2))
    else:
        w = np.where((on == 0) | (on == f), 1e6, 1.0)
    return torch.tensor(np.stack([LinearRegression().fit(m, yi, sample_weight=w).coef_ for yi in y]))


def _per_feature(maps: Tensor, labels: Tensor) -> Tensor:
    """(N, C, H, W) maps constant on each feature -> (N, F) values (first pixel of each feature)."""
    flat = labels.flatten().cpu()
    first = torch.full((int(flat.max()) + 1,), flat.numel(), dtype=torch.long).scatter_reduce(
        0, flat, torch.arange(flat.numel()), "amin"
    )
    return maps[:, 0].flatten(1).cpu().double()[:, first]


def _max_diff(ours: Tensor, ref: Tensor) -> tuple[float, float]:
    d = (ours.double() - ref.double()).abs().max().item()
    return d, d / max(ref.double().abs().max().item(), 1e-12)


# -------------------------------------------------------------------------------------- attribution
def _params(name: str, s: ImageSetting, labels: Tensor, block: int, c: int) -> dict[str, Any]:
    if name == "occlusion":
        return {"sliding_window_shapes": (c, block, block), "strides": (c, block, block)}
    if name in ("lime", "kernel_shap"):
        return {"features": labels, "n_samples": s.n_samples}
    if name == "anchor":  # a greedy search: F steps x F candidates x samples, so a coarser grid
        h, w = labels.shape
        return {"features": _grid(h, w, s.anchor_blocks, labels.device), "max_size": s.anchor_max_size}
    return {}


def _grid(h: int, w: int, g: int, device: torch.device) -> Tensor:
    from .attribution import grid

    return grid(h, w, g).to(device)


def bench_methods(
    model: nn.Module,
    x: Tensor,
    s: ImageSetting,
    settings: BenchSettings,
    floors: Floors,
    counter: PassCounter,
    device: torch.device,
) -> list[dict[str, Any]]:
    """One row per attribution method, each timed beside its floor's reference passes."""
    from . import attribution as A

    names = settings.methods or tuple(A.METHODS)
    unknown = sorted(set(names) - set(A.METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {sorted(A.METHODS)}")
    rows = []
    c, h = x.shape[1], x.shape[2]
    block = h // s.blocks
    labels = A.grid(h, x.shape[3], s.blocks).to(device)
    cfg_base = f"{h}x{h}"
    for name in names:
        pert = name in PERTURBATION
        xs = x[: min(s.n_pert, s.n_anchor)] if name == "anchor" else x[: s.n_pert] if pert else x[: s.n_grad]
        n = len(xs)
        with torch.no_grad():
            target = model(xs).argmax(1)
        params = _params(name, s, labels, block, c)

        def call(name=name, xs=xs, target=target, params=params):
            return A.attribute(name, model, xs, target, **params)

        call()  # warm-up: safe copies, chunk size, captum setup
        with PeakMemory(device) as mem, counter.count():
            ours = call()
        fwd_imgs, bwd_imgs = counter.forward, counter.backward
        t, floor = floors.time_beside(call, device, settings.repeats, fwd_imgs, bwd_imgs)
        if pert:
            passes = fwd_imgs / n
            if name == "anchor":
                cfg = (
                    f"{cfg_base}, {s.anchor_blocks}x{s.anchor_blocks} blocks of {h // s.anchor_blocks}px, "
                    f"max_size={s.anchor_max_size}, 64 samples per candidate"
                )
            else:
                cfg = f"{cfg_base}, {s.blocks}x{s.blocks} blocks of {block}px" + (
                    f", n_samples={s.n_samples}" if name in ("lime", "kernel_shap") else ""
                )
        else:
            passes = bwd_imgs / n
            cfg = f"{cfg_base}, defaults"
        row = _row(
            device,
            "perturbation" if pert else "gradient",
            name,
            config=cfg,
            n_images=n,
            ms_per_image=1e3 * t / n,
            floor_ms_per_image=1e3 * floor / n,
            ratio=t / floor if floor else math.nan,
            passes_per_image=passes,
            peak_rss_mb=mem.rss_mb,
            cuda_peak_mb=mem.cuda_mb,
            unit="evaluations/image" if pert else "f+b passes/image",
            note=f"{fwd_imgs / n:.0f} forwards, {bwd_imgs / n:.0f} backwards per image",
        )
        if name == "integrated_gradients" and settings.captum:
            row.update(_captum_ig(model, xs, target, ours, t, device, settings.repeats))
        if name == "lrp":
            row.update(_zennit_lrp(model, xs, target, ours, t, device, settings.repeats))
        if pert and name in CAPTUM_EQUIVALENT and settings.captum:
            row.update(_captum_compare(name, model, xs, target, labels, s, block, ours, t, device))
        rows.append(row)
    return rows


def _captum_compare(
    name: str,
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    labels: Tensor,
    s: ImageSetting,
    block: int,
    ours: Tensor,
    t_ours: float,
    device: torch.device,
) -> dict[str, Any]:
    from . import attribution as A

    n = len(x)
    extra: dict[str, float] = {}
    _captum_default(name, model, x[:1], target[:1], labels, s, block)  # warm-up
    t_captum = _best_time(lambda: _captum_default(name, model, x, target, labels, s, block), device, 1)
    if name == "occlusion":  # deterministic: captum's default call uses the same perturbations
        ref, same = _captum_default(name, model, x, target, labels, s, block), ours
    else:
        f = int(labels.max()) + 1
        if name == "lime":
            masks, width = A.lime_masks(s.n_samples, f, seed=0), 0.25
        else:
            masks, width = A.kernel_shap_masks(s.n_samples, f, seed=0), 0.0
        same = A.attribute(name, model, x, target, features=labels, masks=masks)
        ref = _captum_same(name, model, x, target, labels, masks, width)
        exact = _exact_fit(name, model, x, target, labels, masks, width)
        extra["exact_rel_diff"] = _max_diff(_per_feature(same, labels), exact)[1]
    library = f"captum {dict(occlusion='Occlusion', lime='Lime', kernel_shap='KernelShap')[name]}, per image"
    return {**_library_columns(library, t_captum, t_ours, n, same, ref), **extra}


# ---------------------------------------------------------------------------------------------- OOD
def bench_scores(
    model: nn.Module,
    x: Tensor,
    id_x: Tensor,
    s: ImageSetting,
    settings: BenchSettings,
    floors: Floors,
    counter: PassCounter,
    device: torch.device,
) -> list[dict[str, Any]]:
    """One row per OOD score: time per image against (forward floor + backward floor), side by side."""
    from . import ood

    names = settings.scores or tuple(ood.SCORES)
    fitted = getattr(ood, "FITTED", {})
    rows = []
    xs = x[: s.n_grad]
    n = len(xs)
    for name in names:
        kw = {"fit": fitted[name](model, id_x)} if name in fitted else {}

        def call(name=name, kw=kw):
            return ood.SCORES[name](model, xs, **kw)

        call()
        with PeakMemory(device) as mem, counter.count():
            call()
        fwd_imgs, bwd_imgs = counter.forward, counter.backward
        t, floor = floors.time_beside(call, device, settings.repeats, fwd_imgs, bwd_imgs)
        rows.append(
            _row(
                device,
                "ood",
                name,
                config=f"{xs.shape[2]}x{xs.shape[3]}",
                n_images=n,
                ms_per_image=1e3 * t / n,
                floor_ms_per_image=1e3 * floor / n,
                ratio=t / floor if floor else math.nan,
                passes_per_image=bwd_imgs / n,
                peak_rss_mb=mem.rss_mb,
                cuda_peak_mb=mem.cuda_mb,
                unit="f+b passes/image",
                note=f"{fwd_imgs / n:.0f} forwards, {bwd_imgs / n:.0f} backwards per image",
            )
        )
    return rows


# ------------------------------------------------------------------------------------------ driver
def run(
    *,
    quick: bool = False,
    device: str = "auto",
    settings: BenchSettings | None = None,
    out: str | os.PathLike | None = None,
    threads: int | None = 2,
    progress: bool = True,
) -> pd.DataFrame:
    """Run the bench and return its rows (``COLUMNS``); write them to ``out`` (CSV) if given.

    settings : what to measure (default ``BenchSettings.quick()`` or ``.full()``).  threads : torch
    CPU threads (2, as the book's notebooks; None leaves torch's default).
    """
    from . import attribution as A

    settings = settings or (BenchSettings.quick() if quick else BenchSettings.full())
    dev = config.setup(0, device=device, threads=threads, deterministic=False)
    start = time.perf_counter()

    def say(msg: str) -> None:
        if progress:
            print(f"[bench {time.perf_counter() - start:6.1f} s] {msg}", flush=True)

    rows = [_row(dev, "machine", k, note=v) for k, v in machine_info(dev).items()]
    rows.append(_row(dev, "machine", "load average at start", note=_load()))
    say("cell generation")
    rows += bench_cells(settings, dev)
    say("training the default offline classifier" if settings.train else "untrained model (train=False)")
    train_rows, model = bench_training(settings, dev)
    rows += train_rows
    model = model.to(dev).eval()
    counter = PassCounter(model)
    try:
        for s in settings.images:
            n_max = max(s.n_grad, s.n_pert)
            x, _ = _cells(max(n_max, 64), s.size, seed=7)
            x = x.to(dev)
            say(f"{s.size}x{s.size}: forward times over batch sizes")
            fwd = forward_times(model, x, settings.forward_batches, settings.repeats)
            best_b = min(fwd, key=fwd.get)
            fwd_best = fwd[best_b]
            for b, t in fwd.items():
                rows.append(
                    _row(
                        dev,
                        "forward",
                        f"forward batch {b}",
                        config=f"{s.size}x{s.size}",
                        n_images=b,
                        ms_per_image=1e3 * t,
                        ratio=t / fwd_best,
                        note="best" if b == best_b else "",
                    )
                )
            chunk = A.best_chunk_size(model, x, dev)
            t_chunk = forward_times(model, x, [chunk], settings.repeats)[chunk]
            rows.append(
                _row(
                    dev,
                    "forward",
                    "engine chunk size",
                    config=f"{s.size}x{s.size}",
                    n_images=chunk,
                    ms_per_image=1e3 * t_chunk,
                    floor_ms_per_image=1e3 * fwd_best,
                    ratio=t_chunk / fwd_best,
                    value=chunk,
                    unit="images/forward",
                    note=f"best_chunk_size picked {chunk}; best measured batch {best_b}",
                )
            )
            # floors: the method batches, the engine chunks and (forward) the best batch
            chunk_fb = A.best_chunk_size(model, x, dev, backward=True)
            fb_sizes = sorted({s.n_grad, s.n_pert, chunk, chunk_fb})
            xb = {n: x[torch.arange(n) % len(x)] for n in sorted({*fb_sizes, best_b})}
            with torch.no_grad():
                tx = {n: model(v).argmax(1) for n, v in xb.items()}
            steps = {n: forward_backward_step(model, xb[n], tx[n]) for n in fb_sizes}
            floors = Floors({n: forward_step(model, v) for n, v in xb.items()}, steps)
            for n, step in steps.items():
                step()  # warm-up
                t = _best_time(step, dev, settings.repeats + 2)
                rows.append(
                    _row(
                        dev,
                        "forward",
                        f"forward+backward batch {n}",
                        config=f"{s.size}x{s.size}",
                        n_images=n,
                        ms_per_image=1e3 * t / n,
                        value=chunk_fb if n == chunk_fb else math.nan,
                        unit="images/pass" if n == chunk_fb else "",
                        note="best_chunk_size(backward=True) picked it" if n == chunk_fb else "",
                    )
                )
            say(f"{s.size}x{s.size}: attribution methods")
            rows += bench_methods(model, x, s, settings, floors, counter, dev)
            say(f"{s.size}x{s.size}: OOD scores")
            id_x, _ = _cells(64, s.size, seed=3)
            rows += bench_scores(model, x, id_x.to(dev), s, settings, floors, counter, dev)
    finally:
        counter.remove()
    total = time.perf_counter() - start
    rows.append(_row(dev, "machine", "load average at end", note=_load()))
    rows.append(
        _row(
            dev,
            "machine",
            "bench wall time",
            value=total,
            unit="s",
            note=f"{total:.0f} s ({'quick' if quick else 'full'})",
        )
    )
    say(f"done in {total:.0f} s")
    table = pd.DataFrame(rows, columns=COLUMNS)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False, float_format="%.6g")
    return table


# -------------------------------------------------------------------------------------------- page
def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v == 0:
            return "0"
        if abs(v) >= 1000 or abs(v) < 1e-3:
            return f"{v:.{digits - 1}e}" if abs(v) < 1e-3 else f"{v:,.0f}"
        return f"{v:.{max(digits - 1 - int(math.floor(math.log10(abs(v)))), 0)}f}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub/MyST pipe table of ``df`` (numbers to 3 significant digits, NaN blank)."""
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = [
        "| " + " | ".join(_fmt(v).replace("|", "/") for v in row) + " |" for row in df.itertuples(index=False)
    ]
    return "\n".join([head, sep, *body])


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def target_table(t: pd.DataFrame) -> pd.DataFrame:
    """One row per target of the issue: what was asked, what we measured (worst case), met or missed."""
    out = []
    for section, key in (("gradient", "gradient"), ("perturbation", "perturbation")):
        part = t[t.section == section]
        if len(part):
            worst = part.loc[part.ratio.idxmax()]
            above = part[part.ratio > TARGETS[key]]
            sizes = above.groupby("name", sort=False).config.agg(lambda c: "/".join(c.str.split(",").str[0]))
            listed = "; above it: " + ", ".join(f"{m} ({z})" for m, z in sizes.items()) if len(above) else ""
            out.append(
                {
                    "target": f"{section} methods <= {TARGETS[key]}x their floor",
                    "measured": f"worst {worst.ratio:.2f}x ({worst['name']}, {worst.config.split(',')[0]})"
                    + listed,
                    "verdict": _verdict(bool((part.ratio <= TARGETS[key]).all())),
                }
            )
    for name in ("lime", "kernel_shap"):
        part = t[(t.section == "perturbation") & (t.name == name)].dropna(subset=["speedup"])
        if len(part):
            goal = TARGETS[f"speedup.{name}"]
            out.append(
                {
                    "target": f"{name} >= {goal:g}x faster than captum's default per-image call",
                    "measured": ", ".join(
                        f"{v:.1f}x ({c.split(',')[0]})" for v, c in zip(part.speedup, part.config, strict=True)
                    ),
                    "verdict": _verdict(bool((part.speedup >= goal).all())),
                }
            )
    part = t[(t.section == "perturbation")].dropna(subset=["max_rel_diff"])
    if len(part):
        exact = part.exact_rel_diff.max()
        ok = bool((part.max_rel_diff <= 2e-3).all()) and not (exact > 1e-5)
        out.append(
            {
                "target": "equal results on the same perturbations (relative to the largest attribution)",
                "measured": f"vs captum {part.max_rel_diff.max():.1e} (captum fits in float32); "
                f"vs a float64 fit on the same evaluations {exact:.1e}",
                "verdict": _verdict(ok),
            }
        )
    return pd.DataFrame(out, columns=["target", "measured", "verdict"])


def device_section(t: pd.DataFrame, csv_name: str) -> str:
    """The page's part for one CSV (one device)."""
    dev = t.device.iloc[0]
    m = t[t.section == "machine"].set_index("name")
    info = {k: v for k, v in m.note.items() if k != "bench wall time"}
    wall = m.note.get("bench wall time", "")
    parts = [
        f"## {dev.upper()}: {info.get('gpu') if dev == 'cuda' else info.get('cpu', '')}",
        "",
        f"Measured by `python -m xai_utils.bench` ({wall}); raw rows: `book/results/{csv_name}`.",
        "",
        markdown_table(pd.DataFrame({"machine": list(info), "": list(info.values())})),
        "",
    ]
    loads = [m.note.get(k, "") for k in ("load average at start", "load average at end")]
    try:
        worst = max(float(v.split(" / ")[0]) for v in loads if v)
    except ValueError:
        worst = 0.0
    if worst > 1.5 * float(info.get("cores", 1) or 1):
        parts += [
            f"```{{warning}}\nThe machine was shared while this ran (1-minute load average up to {worst:.1f} "
            f"on {info.get('cores')} cores): times are inflated and noisy, most of all with 2 torch "
            "threads, which spin while waiting for a core.  Ratios measured side by side suffer less, "
            "but re-run `make bench` on an idle machine before trusting a single number.\n```",
            "",
        ]
    parts += ["### Targets", "", markdown_table(target_table(t)), ""]
    cuda = dev == "cuda"
    mem_cols = ["peak RSS MB"] + (["CUDA peak MB"] if cuda else [])
    for cfg in dict.fromkeys(t[t.section.isin(["gradient", "perturbation"])].config.str.split(",").str[0]):
        sub = t[t.section.isin(["gradient", "perturbation"]) & t.config.str.startswith(cfg)]
        table = pd.DataFrame(
            {
                "method": sub.name,
                "kind": sub.section,
                "N": sub.n_images.astype(int),
                "ms/image": sub.ms_per_image,
                "floor ms/image": sub.floor_ms_per_image,
                "ratio": sub.ratio,
                "passes/image": sub.passes_per_image,
                "library call": sub.library,
                "library ms/image": sub.library_ms_per_image,
                "speed-up": sub.speedup,
                "max rel. diff": sub.max_rel_diff,
                "peak RSS MB": sub.peak_rss_mb,
                **({"CUDA peak MB": sub.cuda_peak_mb} if cuda else {}),
            }
        )
        settings = sorted(set(sub[sub.section == "perturbation"].config.str.split(", ", n=1).str[1]))
        parts += [
            f"### Attribution methods, {cfg} images",
            "",
            "Perturbation settings: " + "; ".join(settings) + "." if settings else "",
            "",
            markdown_table(table[[c for c in table.columns if c not in mem_cols] + mem_cols]),
            "",
        ]
    ood = t[t.section == "ood"]
    if len(ood):
        parts += [
            "### OOD scores",
            "",
            markdown_table(
                pd.DataFrame(
                    {
                        "score": ood.name,
                        "images": ood.config,
                        "N": ood.n_images.astype(int),
                        "ms/image": ood.ms_per_image,
                        "floor ms/image": ood.floor_ms_per_image,
                        "ratio": ood.ratio,
                        "backward passes/image": ood.passes_per_image,
                        "peak RSS MB": ood.peak_rss_mb,
                        **({"CUDA peak MB": ood.cuda_peak_mb} if cuda else {}),
                    }
                )
            ),
            "",
        ]
    fwd = t[t.section == "forward"]
    if len(fwd):
        parts += [
            "### Forward time per image over batch sizes",
            "",
            markdown_table(
                pd.DataFrame(
                    {
                        "what": fwd.name,
                        "images": fwd.config,
                        "batch": fwd.n_images.astype(int),
                        "ms/image": fwd.ms_per_image,
                        "vs best batch": fwd.ratio,
                        "note": fwd.note,
                    }
                )
            ),
            "",
        ]
    other = t[t.section.isin(["cells", "training"])]
    if len(other):
        parts += [
            "### Data generation and training",
            "",
            markdown_table(
                pd.DataFrame(
                    {
                        "what": other.name,
                        "setting": other.config,
                        "value": other.value,
                        "unit": other.unit,
                        "ms/image": other.ms_per_image,
                        "peak RSS MB": other.peak_rss_mb,
                        "note": other.note,
                    }
                )
            ),
            "",
        ]
    return "\n".join(parts)


PAGE_INTRO = """# Performance

How fast the package's attribution methods and OOD scores are, against the least they could cost
on the same machine.  Everything on this page is generated by `make bench`
(`python -m xai_utils.bench`, then `--write-page`) from the CSV files in `book/results/`; the
tables and the CSV agree by construction.  `make bench QUICK=1` runs a CI-sized subset.

**Floors.**  A method's floor is the least its passes could cost: its forward+backward image passes
(counted by a hook on the model, not assumed: integrated gradients `n_steps` per image, DeepLift
input and baseline, ...) at the best per-image forward+backward time, plus its forward-only images
(perturbation methods' model evaluations, OOD scores' extra forwards) at the best per-image forward
time.  "Best" is over the measured batch sizes no larger than the images the method runs (Saliency on
16 images cannot use a batch of 64; LIME's 1,600 evaluations can).  The reference passes are timed
*beside* each method, interleaved with its repeats, so that a drifting machine slows both alike;
ratios are time / floor.  Methods that back-propagate only part of the network (Grad-CAM, S&I's
split layers) come out below 1.

**Library columns.**  For Occlusion, LIME and KernelSHAP, "library" is captum's default call, one
image per call as captum's documentation advises (`perturbations_per_eval=1`, captum's default
interpretable model and kernel for LIME), with the same features, samples and baseline; "speed-up"
is that time over ours.  "max rel. diff" compares our maps with captum's on *the same
perturbations* (our masks fed to captum in order, the same kernel, plain weighted linear
regression): max |ours - captum| / max |captum|.  captum has no Anchor.  For Integrated Gradients
the library is captum's `IntegratedGradients` with its default batching (all N x n_steps inputs in
one pass), for LRP zennit's attributor with our composite registered once, outside the timing.
"""


def write_page(
    csvs: Sequence[str | os.PathLike] | None = None,
    page: str | os.PathLike | None = None,
    notes: str = "",
    results_dir: str | os.PathLike | None = None,
) -> str:
    """Render bench CSVs into ``book/performance.md`` (or ``page``) and return the text.

    csvs : the files (default every ``bench_*.csv`` in ``results_dir``, default ``book/results``;
    quick runs' ``bench_*_quick.csv`` are left out when a full run of the same device exists).
    notes : Markdown appended after the tables (discussion, profile).
    """
    if csvs:
        paths = [Path(p) for p in csvs]
    else:
        found = sorted(Path(results_dir or config.RESULTS_DIR).glob("bench_*.csv"))
        full = {p.stem for p in found if not p.stem.endswith("_quick")}
        paths = [p for p in found if not (p.stem.endswith("_quick") and p.stem[: -len("_quick")] in full)]
    if not paths:
        raise FileNotFoundError(
            f"no bench CSV in {results_dir or config.RESULTS_DIR}: run `python -m xai_utils.bench` first"
        )
    csvs = paths
    sections = [PAGE_INTRO]
    devices = set()
    for p in csvs:
        t = pd.read_csv(p, keep_default_na=True)
        for col in ("config", "note", "unit", "name"):
            t[col] = t[col].fillna("").astype(str)
        devices.add(t.device.iloc[0])
        sections.append(device_section(t, p.name))
    if "cuda" not in devices:
        sections.append(
            "## GPU\n\nNo GPU was available where these tables were measured. The bench runs on one "
            "with `make bench DEVICE=cuda` (writes `book/results/bench_cuda.csv`; CUDA peak memory "
            "is then reported too); `--write-page` adds its tables here.\n"
        )
    if notes:
        sections.append(notes)
    text = "\n".join(sections).rstrip() + "\n"
    Path(page or PAGE).write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xai_utils.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run (a few minutes)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", default=None, help="CSV path (default book/results/bench_<device>.csv)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--write-page",
        action="store_true",
        help="only render book/results/bench_*.csv into book/performance.md (no measuring)",
    )
    args = parser.parse_args(argv)
    if args.write_page:
        write_page(notes=PAGE_NOTES)
        print(f"wrote {PAGE}")
        return 0
    dev = config.resolve_device(args.device)
    out = (
        Path(args.out)
        if args.out
        else config.RESULTS_DIR / f"bench_{dev.type}{'_quick' if args.quick else ''}.csv"
    )
    table = run(quick=args.quick, device=args.device, out=out, threads=args.threads)
    print(
        markdown_table(
            table[table.section.isin(["gradient", "perturbation", "ood"])][
                [
                    "section",
                    "name",
                    "config",
                    "ms_per_image",
                    "floor_ms_per_image",
                    "ratio",
                    "speedup",
                    "max_rel_diff",
                ]
            ]
        )
    )
    print(f"wrote {out}")
    return 0


PAGE_NOTES = """## Reading the tables, and why targets are missed where they are

- **Why captum's default call is slow.**  captum evaluates one perturbed image per forward pass by
  default (`perturbations_per_eval=1`) and explains one image per call; on 2 CPU cores a batch of one
  costs 5-7x more per image than the best batch at 32x32 (2.5x at 64x64), and every sample also pays
  captum's Python bookkeeping (similarity function, signature inspection, the interpretable-model fit:
  a scikit-learn Lasso for LIME).  Our engine evaluates the perturbations of all images in shared
  forward passes of the size `best_chunk_size` measured once per model, device and input shape (the
  "engine chunk size" rows: the size it picked against the best batch the bench measured), and fits
  every image's surrogate in one batched weighted least-squares solve.
- **LIME at 64x64 misses "5x faster than captum".**  Our LIME runs at 1.1-1.3x its floor at both
  sizes, so its speed-up over captum is bounded by what captum loses per evaluation.  At 32x32 that
  is a lot (a batch of one costs 5-7x the best per-image time): 6-8x speed-up over five runs.  At
  64x64 a batch of one costs only 2.5x the best, and captum's per-sample overhead is a smaller share
  of a larger forward pass: 3.0-4.4x.  The issue's 5x was stated for 32x32 images, where it holds.
- **Perturbation methods at 1.3x.**  Over five full runs on the idle machine the worst perturbation
  ratio was 1.18-1.37 (KernelSHAP or Occlusion at 32x32), the others 1.0-1.25.  What is left above
  the floor is the engine's chunk (`best_chunk_size` times single passes, and the sizes it can pick
  differ by 10-30% per image between runs on this machine: see "engine chunk size"), building the
  masked images and, for KernelSHAP, its weighted least-squares solve.
- **Equality.**  "max rel. diff" is against captum on the same masks.  LIME and Occlusion agree to
  float32 rounding.  KernelSHAP differs by about 1e-3 of the largest attribution: captum fits its
  linear model in float32, and the end-point coalitions' weight of 1e6 costs it three digits; the
  column `exact_rel_diff` of the CSV compares ours with a float64 scikit-learn fit on the same model
  evaluations instead, and agrees to 1e-6 or better.  Integrated Gradients in our passes agrees with
  captum's single batch to 2e-7; LRP with zennit's attributor exactly.
- **Anchor** has no captum counterpart.  Its cost is a greedy search (features x candidates x 64
  samples per step), so the bench runs it on a 4 x 4 grid with at most 4 features per anchor; its
  floor uses the evaluations it actually made.
- **Integrated Gradients, GradientSHAP, DeepLift(Shap)** stack N x n_steps (N x baselines) images:
  captum hands all of them to the model in one pass, where 800 images at 32x32 cost 3x the best
  per-image time.  `integrated_gradients` passes `best_chunk_size(..., backward=True)` as captum's
  `internal_batch_size` and splits the images into groups of that size; the other three run on groups
  of images whose stacked batch is about one chunk (`attribution.gradient.in_groups`).  That took IG
  from 1.5x to about 1.1x its floor at 32x32 (1.2-1.3x at 64x64: not profiled further) and makes it
  ~3x faster than captum's default call (the library column), with the same maps.  GradientSHAP (ours, batched) sits at 1.0-1.15x.
- **DeepLift and DeepLiftShap stay at 1.4-1.8x.**  The rescale rule is not a plain backward pass:
  captum's hooks compute every nonlinearity's multiplier (y - y_ref) / (x - x_ref) with a guard for
  x = x_ref, several element-wise operations per activation.  On this narrow network (16 channels)
  element-wise work is a large share of the pass; on wider networks the convolutions dominate and the
  ratio falls.  Guided Backprop and Deconvolution (ReLU hooks that clamp the gradient) sit at
  1.0-1.3x, at or just above the target depending on the run.
- **LRP stays at 4-5x one forward+backward pass, and that is zennit's rules, not our wrapper.**
  The library column times zennit's attributor with the same composite registered once, outside the
  timing: it takes the same time as our call (speed-up 0.9-1.2, equal maps), so registering the
  canonizers and rule hooks on every call costs nothing measurable.  The cost is the rules: for every
  convolution the z+ rule re-runs the layer with the positive weights and takes a gradient through it
  (the flat rule on the first layer likewise), on top of the forward pass and the backward pass.
- **OOD scores.**  RankFeat's extra cost (2.4-3x) is the singular value decomposition of the feature
  map, not a pass.  GAIA-Z/A take one gradient of the feature maps (1.1-1.3x).  S&I back-propagates
  from the split layers only, cheaper than the full pass of the floor, so it comes out below 1.
- **Threads.**  The tables state the torch thread count of the run.  On a machine shared with other
  jobs, 2 threads on 2 cores spin-wait for each other (the 3-epoch training took 135 s with 2 threads
  against 20 s with 1 during one such run), so a loaded run is better taken with `--threads 1`; the
  tables above come from an idle machine (load averages in the machine table).
- **Noise.**  Repeated runs on the same idle machine move single ratios by up to about 15% (quick
  bench: best of 2).  The floors are timed beside each method to keep drift out of the ratios, but a
  ratio of 1.25 against a target of 1.3 is within that noise.

## Profile of the slowest notebook

The synthetic_cells chapter was the slowest offline notebook.  Profiled with `cProfile` on an empty
cache and an idle machine (2 threads): 120 s in all, of which training 50 s (three base models 29 s,
fifteen branch models 22 s), evaluation 50 s (attribution maps 28 s, DeepLiftShap alone 12 s; the
five-band scores 21 s) and imports 9 s.  What followed from it:

| where the time went | fix | effect |
| --- | --- | --- |
| five-band scores: a label array of N x 56 thresholds x H x W and six boolean arrays per call | count each pixel's rank among the distinct thresholds once (binary search, bincount, cumulative sums: `metrics.fiveband.band_counts`); identical counts, tested pixel by pixel with values on every threshold | 4-5x faster per call |
| DeepLiftShap / GradientSHAP: N x baselines images in one pass | groups of images sized by the measured chunk | DeepLiftShap 13.3 to 7-8 ms/image, GradientSHAP 9-10 to 4-6 ms/image on the chapter's 64x64 networks |
| training (base models and branches) | none: the protocol (early stopping on validation shards, five branches per family) is the paper's; the models are cached | about 50 s on an empty cache, 0 s after |

The chapter run as a script on an empty cache, same idle machine, before and after: 106.7 s and
88.3 s.  Its wall time per section is printed in its provenance cell, as are the other chapters'.

## The whole offline book

`make book` on a fresh clone (install from the package index's cache, empty model cache, every
offline chapter, the `real` salagg chapter from `../shared/data`, the site with `-W`): 9 min 44 s on
this 2-core machine, against the issue's 25 minutes.  synthetic_cells 103 s, salagg 101 s, methods
43 s, overview 6 s, real salagg 192 s.  It is timed by running it, not by the bench.
"""

if __name__ == "__main__":
    raise SystemExit(main())
