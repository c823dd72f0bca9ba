"""Scale-out measurements and ``book/scaling.md``: ``python -m xai_utils.bench --scaling [--quick]``.

Two measurements, written to ``book/results/scaling_<device>.csv`` and rendered into the page:

- **speed-up**: salagg's saliency aggregates at its offline parameters on 1 and 2 local Ray workers (one
  torch thread each) against the local engine with one thread, on the same chunks (results compared);
- **projected cost**: every chapter's per-image workload at its ``full`` preset
  (:mod:`xai_utils.experiments.workloads`): model passes per image counted by the bench's pass counter
  (on the real architecture at 32-64 px; at larger sides on a narrow stand-in network, since a method's
  pass count does not depend on the network), priced with the real architecture's measured forward and
  forward+backward time per image (random weights, one thread).
"""

from __future__ import annotations

import time
from importlib import resources
from string import Template
from typing import Any

import pandas as pd
import torch

from .. import config, models, ood, parallel, params
from ..cache import atomic_write
from ..experiments import workloads
from .machine import load_average, machine_info
from .page import markdown_table
from .timing import PassCounter

PAGE = config.BOOK_DIR / "scaling.md"
#: Input sides up to this count passes on the real architecture; larger ones on the stand-in.
REAL_COUNT_SIDE = 64
STAND_IN = ("small_resnet", {"width": 4})


def _salagg_job(n_images: int) -> tuple[torch.nn.Module, torch.Tensor, dict[str, Any]]:
    """salagg's offline classifier architecture (untrained), random 32 px images and its saliency settings."""
    from ..experiments.salagg.scores import method_specs

    p = params.resolve("salagg", "offline")
    torch.manual_seed(0)
    model = models.build(p["archs"][0], 10, width=p["widths"][0]).eval()
    x = torch.rand(n_images, 3, p["sizes"][0], p["sizes"][0], generator=torch.Generator().manual_seed(0))
    specs = method_specs(p["methods"], ig_steps=p["ig_steps"], lime_samples=p["lime_samples"], seed=p["seed"])
    return model, x, {"specs": specs, "aggregates": p["aggregates"], "chunk_size": p["chunk_size"]}


def speedup_rows(n_images: int, chunk: int, workers: tuple[int, ...] = (1, 2)) -> list[dict[str, Any]]:
    """Wall time of salagg's saliency aggregates on ``n_images`` in chunks of ``chunk``: local, then Ray with
    each count of ``workers`` (a fresh local cluster of that many CPUs; workers warmed up first)."""
    ray = parallel.ray_module()
    model, x, kw = _salagg_job(n_images)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        def timed() -> tuple[float, dict[str, torch.Tensor]]:
            ood.saliency_aggregates(model, x[: chunk * max(workers)], batch_size=chunk, **kw)  # warm-up
            start = time.perf_counter()
            got = ood.saliency_aggregates(model, x, batch_size=chunk, **kw)
            return time.perf_counter() - start, got

        with parallel.using("local", cache=False):
            local_s, local = timed()
        rows = [{"kind": "speedup", "engine": "local", "workers": 1, "seconds": local_s, "equal": True}]
        for w in workers:
            ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                with parallel.using("ray", cache=False):
                    s, got = timed()
            finally:
                ray.shutdown()
            rows.append({"kind": "speedup", "engine": "ray", "workers": w, "seconds": s,
                         "equal": all(torch.equal(local[k], got[k]) for k in local)})
    finally:
        torch.set_num_threads(threads)
    one = next(r["seconds"] for r in rows if r["engine"] == "ray" and r["workers"] == min(workers))
    for r in rows:
        r.update(images=n_images, chunk=chunk, images_per_s=n_images / r["seconds"], speedup=one / r["seconds"])
    return rows


def pass_time(arch: str, side: int, classes: int, device: torch.device, batch: int) -> dict[str, float]:
    """ms per image of a forward and of a forward+backward (w.r.t. the input) of ``arch`` at ``side``."""
    torch.manual_seed(0)
    model = models.build(arch, classes).to(device).eval()
    x = torch.rand(batch, 3, side, side, device=device)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def backward() -> None:
        xg = x.clone().requires_grad_()
        model(xg).amax(1).sum().backward()

    out = {}
    for name, fn in (("forward_ms", forward), ("backward_ms", backward)):
        fn()
        out[name] = 1000 * config.best_time(fn, device, repeats=2) / batch
    return out


def count_passes(work: workloads.Workload, arch: str, side: int, classes: int, n_images: int) -> dict[str, float]:
    """Forward and backward passes per image of ``work`` on ``n_images`` random images (see module doc)."""
    name, kw = (arch, {}) if side <= REAL_COUNT_SIDE else STAND_IN
    torch.manual_seed(0)
    model = models.build(name, classes, **kw).eval()
    x = torch.rand(n_images, 3, side, side, generator=torch.Generator().manual_seed(1))
    counter = PassCounter(model)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)  # as the chapters run: eager, no chunk-size timing
    try:
        with counter.count(), parallel.using("local", cache=False):
            parallel.map_chunks(work.fn, x, chunk_size=n_images, shared=work.shared(model, side))
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        counter.remove()
    return {"forward": counter.forward / n_images, "backward": counter.backward / n_images,
            "counted_on": name if name == arch else f"{name} (stand-in)"}


def projection_rows(device: torch.device, *, quick: bool, progress: bool = True) -> list[dict[str, Any]]:
    """Passes per image and projected time per image of every chapter workload at ``full`` on each model."""
    works = workloads.workloads("full", ("salagg", "hermitry") if quick else workloads.CHAPTERS)
    times: dict[tuple[str, int, int], dict[str, float]] = {}
    rows = []
    for work in config.progress(works, desc="workloads", disable=not progress):
        for arch, side, classes in work.models:
            if (arch, side, classes) not in times:
                times[arch, side, classes] = pass_time(arch, side, classes, device, 16 if side <= 64 else 2)
            t = times[arch, side, classes]
            passes = count_passes(work, arch, side, classes, 1 if side > REAL_COUNT_SIDE else 2)
            seconds = (passes["forward"] * t["forward_ms"]
                       + passes["backward"] * (t["backward_ms"] - t["forward_ms"])) / 1000
            rows.append({"kind": "projection", "chapter": work.chapter, "workload": work.label, "model": arch,
                         "side": side, "classes": classes, **passes, **t, "seconds_per_image": seconds,
                         "hours_per_10k": seconds * 10_000 / 3600, "images": work.images})
    return rows


def run(*, quick: bool, device: str = "auto", progress: bool = True) -> pd.DataFrame:
    """Both measurements (smaller with ``quick``), with the machine's rows; written to the device's CSV."""
    dev = config.setup(0, device=device, threads=1)  # deterministic, as the chapters run (and so eager)
    info = {**machine_info(dev), "load average at start": load_average()}
    rows = speedup_rows(16 if quick else 64, 4 if quick else 8)
    rows += projection_rows(dev, quick=quick, progress=progress)
    info["load average at end"] = load_average()
    rows += [{"kind": "machine", "workload": k, "images": v} for k, v in info.items()]
    table = pd.DataFrame(rows)
    out = config.RESULTS_DIR / f"scaling_{dev.type}{'_quick' if quick else ''}.csv"
    table.to_csv(out, index=False)
    return table


def _section(table: pd.DataFrame) -> str:
    """One device's measurements: the machine, the speed-up and the projection tables."""
    info = dict(zip(table[table.kind == "machine"].workload, table[table.kind == "machine"].images, strict=True))
    machine = pd.DataFrame({"machine": list(info), "": list(info.values())})
    speed = table[table.kind == "speedup"][["engine", "workers", "images", "chunk", "seconds", "images_per_s",
                                            "speedup", "equal"]].copy()
    speed[["workers", "images", "chunk"]] = speed[["workers", "images", "chunk"]].astype(int)
    speed["equal"] = speed.equal.map(lambda v: "yes" if bool(v) else "**no**")
    speed = speed.set_axis(["engine", "workers", "images", "images per chunk", "wall s", "images/s",
                            "speed-up vs 1 Ray worker", "maps equal to local"], axis=1)
    proj = table[table.kind == "projection"].copy()
    proj["model"] = (proj.model + " @ " + proj.side.astype(int).astype(str) + " px, "
                     + proj.classes.astype(int).astype(str) + " classes")
    proj = proj[["chapter", "workload", "model", "forward", "backward", "counted_on", "forward_ms", "backward_ms",
                 "seconds_per_image", "hours_per_10k", "images"]]
    proj["counted_on"] = proj.counted_on.map(lambda c: "stand-in" if "stand-in" in str(c) else "real")
    proj = proj.set_axis(["chapter", "work", "model", "forwards/image", "backwards/image", "counted on",
                          "forward ms/image", "f+b ms/image", "core-s/image", "core-h per 10k images",
                          "images at full"], axis=1)
    name = info["gpu"] if info.get("gpu", "none") != "none" else info["cpu"]
    return "\n\n".join([f"### {'GPU' if info.get('gpu', 'none') != 'none' else 'CPU'}: {name}", markdown_table(machine),
                         "**1 vs 2 local workers.**", markdown_table(speed),
                         "**Projected cost of the full presets.**", markdown_table(proj)])


def render(tables: list[pd.DataFrame]) -> str:
    """``book/scaling.md``: the prose template with one section per device's run."""
    text = resources.files(__package__).joinpath("scaling_page.md").read_text(encoding="utf-8")
    return Template(text).substitute(measured="\n\n".join(_section(t) for t in tables))


def write_page() -> None:
    """Render ``book/scaling.md`` from the full runs' CSVs (``scaling_cpu.csv``, ``scaling_cuda.csv``)."""
    paths = [p for p in (config.RESULTS_DIR / f"scaling_{d}.csv" for d in ("cpu", "cuda")) if p.exists()]
    if not paths:
        raise FileNotFoundError(f"no scaling CSV in {config.RESULTS_DIR}: run python -m xai_utils.bench --scaling")
    text = render([pd.read_csv(p) for p in paths])
    atomic_write(PAGE, lambda f: f.write(text.encode()))
