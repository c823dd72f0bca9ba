"""The bench's sections (cells, training, forward, methods, OOD scores) and :func:`run`, which runs them all."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from .. import config
from ..models.form import steady_state
from . import reference
from .forms import best_form_floors
from .machine import load_average, machine_info
from .settings import CAPTUM_EQUIVALENT, COLUMNS, BenchSettings, ImageSetting, row
from .timing import (
    Floors,
    PassCounter,
    PeakMemory,
    best_time,
    forward_backward_step,
    forward_step,
    forward_times,
    measure,
)


def _cells(n: int, size: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` synthetic cells of classes 0-5 (images, labels) at ``size`` px."""
    from ..data.cells import make_cells

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
            row(
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
    from ..models import DEFAULT_OFFLINE, accuracy, build, train_classifier

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
    entry = row(
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
    return [entry], model


def _params(name: str, s: ImageSetting, labels: Tensor, block: int, c: int) -> dict[str, Any]:
    """The keyword arguments of method ``name`` on a ``blocks`` x ``blocks`` feature grid."""
    if name == "occlusion":
        return {"sliding_window_shapes": (c, block, block), "strides": (c, block, block)}
    if name in ("lime", "kernel_shap"):
        return {"features": labels, "n_samples": s.n_samples}
    if name == "anchor":  # a greedy search: F steps x F candidates x samples, so a coarser grid
        h, w = labels.shape
        return {"features": _grid(h, w, s.anchor_blocks, labels.device), "max_size": s.anchor_max_size}
    return {}


def _grid(h: int, w: int, g: int, device: torch.device) -> Tensor:
    from ..attribution import grid

    return grid(h, w, g).to(device)


def bench_forward(
    model: nn.Module, x: Tensor, s: ImageSetting, settings: BenchSettings, device: torch.device
) -> tuple[list[dict[str, Any]], Floors, Floors]:
    """Forward time per image over batch sizes, the engine's chunk sizes, the model's forms, the :class:`Floors`
    (reference passes: the method batches, the engine chunks and, forward only, the best batch) and the
    floors of the model's fastest form."""
    from .. import attribution

    rows = []
    fwd = forward_times(model, x, settings.forward_batches, settings.repeats)
    best_b = min(fwd, key=fwd.get)
    fwd_best = fwd[best_b]
    for b, t in fwd.items():
        rows.append(row(device, "forward", f"forward batch {b}", config=f"{s.size}x{s.size}", n_images=b,
                        ms_per_image=1e3 * t, ratio=t / fwd_best, note="best" if b == best_b else ""))
    chunk = attribution.best_chunk_size(model, x, device)
    t_chunk = forward_times(model, x, [chunk], settings.repeats)[chunk]
    rows.append(
        row(
            device,
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
    chunk_fb = attribution.best_chunk_size(model, x, device, backward=True)
    fb_sizes = sorted({s.n_grad, s.n_pert, chunk, chunk_fb})
    xb = {n: x[torch.arange(n) % len(x)] for n in sorted({*fb_sizes, best_b})}
    with torch.no_grad():
        tx = {n: model(v).argmax(1) for n, v in xb.items()}
    steps = {n: forward_backward_step(model, xb[n], tx[n]) for n in fb_sizes}
    floors = Floors({n: forward_step(model, v) for n, v in xb.items()}, steps)
    for n, step in steps.items():
        step()  # warm-up
        t = best_time(step, device, settings.repeats + 2)
        rows.append(
            row(
                device,
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
    form_rows, best_floors = best_form_floors(model, xb, tx, best_b, chunk_fb, s, settings, device)
    return rows + form_rows, floors, best_floors


def bench_methods(
    model: nn.Module,
    x: Tensor,
    s: ImageSetting,
    settings: BenchSettings,
    floors: Floors,
    counter: PassCounter,
    device: torch.device,
    best_floors: Floors | None = None,
) -> list[dict[str, Any]]:
    """One row per attribution method, each timed beside its floor's reference passes (and the same passes
    in the model's fastest form: ``best_floors``)."""
    from .. import attribution

    names = settings.methods or tuple(attribution.METHODS)
    unknown = sorted(set(names) - set(attribution.METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {sorted(attribution.METHODS)}")
    rows = []
    c, h = x.shape[1], x.shape[2]
    block = h // s.blocks
    labels = attribution.grid(h, x.shape[3], s.blocks).to(device)
    cfg_base = f"{h}x{h}"
    for name in names:
        pert = name in attribution.PERTURBATION_METHODS
        xs = x[: min(s.n_pert, s.n_anchor)] if name == "anchor" else x[: s.n_pert] if pert else x[: s.n_grad]
        n = len(xs)
        with torch.no_grad():
            target = model(xs).argmax(1)
        params = _params(name, s, labels, block, c)

        def call(name=name, xs=xs, target=target, params=params):
            return attribution.attribute(name, model, xs, target, **params)

        m = measure(call, floors, counter, device, settings.repeats, best_floors)
        if pert:
            passes = m.forwards / n
            if name == "anchor_beam":
                cfg = f"{cfg_base}, anchor-exp defaults (quickshift superpixels, adaptive samples)"
            elif name == "anchor":
                cfg = (
                    f"{cfg_base}, {s.anchor_blocks}x{s.anchor_blocks} blocks of {h // s.anchor_blocks}px, "
                    f"max_size={s.anchor_max_size}, 64 samples per candidate"
                )
            else:
                cfg = f"{cfg_base}, {s.blocks}x{s.blocks} blocks of {block}px" + (
                    f", n_samples={s.n_samples}" if name in ("lime", "kernel_shap") else ""
                )
        else:
            passes = m.backwards / n
            cfg = f"{cfg_base}, defaults"
        entry = row(device, "perturbation" if pert else "gradient", name, config=cfg, passes_per_image=passes,
                    unit="evaluations/image" if pert else "f+b passes/image", **m.columns(n))
        ours, t = m.output, m.seconds
        if name == "integrated_gradients" and settings.captum:
            entry.update(reference.captum_ig(model, xs, target, ours, t, device, settings.repeats))
        floor_ms, parts = entry["floor_ms_per_image"], []  # parts: where a library's own work costs
        if name == "lrp":
            entry.update(reference.zennit_lrp(model, xs, target, ours, t, device, settings.repeats))
            parts = reference.zennit_rules(model, xs, target, device, settings.repeats, cfg, floor_ms)
        if name == "guided_backprop" and settings.captum:
            parts = reference.captum_relu_hooks(model, xs, target, device, settings.repeats, cfg, floor_ms)
        if name == "anchor_beam":
            parts = reference.anchor_library(model, xs, target, params, device, settings.repeats, cfg, floor_ms)
        if name == "deeplift" and settings.captum:
            entry.update(reference.captum_deeplift(model, xs, target, ours, t, device, settings.repeats))
        if pert and name in CAPTUM_EQUIVALENT and settings.captum:
            entry.update(reference.captum_compare(name, model, xs, target, labels, s, block, ours, t, device))
        rows += [entry, *parts]
    return rows


def bench_capture(
    model: nn.Module, x: Tensor, s: ImageSetting, settings: BenchSettings, device: torch.device
) -> list[dict[str, Any]]:
    """The hermitry chapter's capture of perturbed encodings (``attribution.EncodingCapture``): each engine
    method timed with and without it, the two calls taken in turn (best of ``settings.repeats`` each), both
    on the eager model (the capture's hook keeps a model eager, so this is the capture's own cost)."""
    from .. import attribution
    from ..models import forced

    rows = []
    xs = x[: s.n_pert]
    h, c = xs.shape[2], xs.shape[1]
    labels = attribution.grid(h, xs.shape[3], s.blocks).to(device)
    with torch.no_grad():
        target = model(xs).argmax(1)
    for name in ("occlusion", "lime", "kernel_shap"):
        params = _params(name, s, labels, h // s.blocks, c)

        def plain(name=name, params=params) -> None:
            with forced("eager"):
                attribution.attribute(name, model, xs, target, **params)

        def captured(name=name, params=params) -> None:
            with attribution.EncodingCapture(model) as cap, forced("eager"):
                attribution.attribute(name, model, xs, target, callback=cap.callback, **params)

        plain(), captured()
        t_plain = t_cap = float("inf")
        for _ in range(max(1, settings.repeats)):
            t_plain = min(t_plain, best_time(plain, device, 1))
            t_cap = min(t_cap, best_time(captured, device, 1))
        rows.append(row(device, "capture", name, config=f"{h}x{h}, {s.blocks}x{s.blocks} blocks",
                        n_images=len(xs), ms_per_image=1e3 * t_cap / len(xs),
                        floor_ms_per_image=1e3 * t_plain / len(xs), ratio=t_cap / t_plain))
    return rows


def bench_scores(
    model: nn.Module,
    x: Tensor,
    id_x: Tensor,
    s: ImageSetting,
    settings: BenchSettings,
    floors: Floors,
    counter: PassCounter,
    device: torch.device,
    best_floors: Floors | None = None,
) -> list[dict[str, Any]]:
    """One row per OOD score: time per image against (forward floor + backward floor), side by side, and
    against the same passes in the model's fastest form (``best_floors``)."""
    from .. import ood

    names = settings.scores or tuple(ood.SCORES)
    rows = []
    xs = x[: s.n_grad]
    n = len(xs)
    for name in names:
        kw = {"fit": ood.FITTED[name](model, id_x)} if name in ood.FITTED else {}

        def call(name=name, kw=kw):
            return ood.SCORES[name](model, xs, **kw)

        m = measure(call, floors, counter, device, settings.repeats, best_floors)
        rows.append(
            row(
                device,
                "ood",
                name,
                config=f"{xs.shape[2]}x{xs.shape[3]}",
                passes_per_image=m.backwards / n,
                unit="f+b passes/image",
                **m.columns(n),
            )
        )
    return rows


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
    settings = settings or (BenchSettings.quick() if quick else BenchSettings.full())
    dev = config.setup(0, device=device, threads=threads, deterministic=False)
    start = time.perf_counter()

    def say(msg: str) -> None:
        if progress:
            print(f"[bench {time.perf_counter() - start:6.1f} s] {msg}", flush=True)

    rows = [row(dev, "machine", k, note=v) for k, v in machine_info(dev).items()]
    rows.append(row(dev, "machine", "load average at start", note=load_average()))
    say("cell generation")
    rows += bench_cells(settings, dev)
    say("training the default offline classifier" if settings.train else "untrained model (train=False)")
    train_rows, model = bench_training(settings, dev)
    rows += train_rows
    model = model.to(dev).eval()
    counter = PassCounter(model)
    try:
        with steady_state():  # timed as a long job runs: each call's first use chooses the form
            for s in settings.images:
                n_max = max(s.n_grad, s.n_pert)
                x, _ = _cells(max(n_max, 64), s.size, seed=7)
                x = x.to(dev)
                say(f"{s.size}x{s.size}: forward times over batch sizes")
                forward_rows, floors, best_floors = bench_forward(model, x, s, settings, dev)
                rows += forward_rows
                say(f"{s.size}x{s.size}: attribution methods")
                rows += bench_methods(model, x, s, settings, floors, counter, dev, best_floors)
                rows += bench_capture(model, x, s, settings, dev)
                say(f"{s.size}x{s.size}: OOD scores")
                id_x, _ = _cells(64, s.size, seed=3)
                rows += bench_scores(model, x, id_x.to(dev), s, settings, floors, counter, dev, best_floors)
    finally:
        counter.remove()
    total = time.perf_counter() - start
    rows.append(row(dev, "machine", "load average at end", note=load_average()))
    rows.append(
        row(
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
