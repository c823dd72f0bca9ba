"""Each chapter's per-image work at a preset, as the chunk functions that ``parallel.map_chunks`` runs.

A :class:`Workload` names the chapter's chunk function, the shared objects it gets for a model (built from
the preset's parameters exactly as the chapter's notebook builds its settings), and the preset's models
(architecture, input side, classes).  ``python -m xai_utils.bench --scaling`` counts each workload's model
passes per image on a small stand-in network at the real input side and prices them with the real
architecture's measured pass times (``book/scaling.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import data, ood, params
from . import disagreement, hermitry, s_and_i, salagg, synthetic_cells
from .disagreement.maps import maps_chunk
from .hermitry.perturb import capture_chunk
from .s_and_i.scores import score_chunk
from .salagg.scores import classical_chunk
from .synthetic_cells.evaluation import heatmaps_chunk

__all__ = ["Workload", "workloads", "CHAPTERS"]

#: The chapters whose per-image work goes through ``parallel.map_chunks`` (the methods gallery has none).
CHAPTERS = ("salagg", "s_and_i", "hermitry", "disagreement", "synthetic_cells")


@dataclass(frozen=True)
class Workload:
    """One chunk function of a chapter with its shared objects (``shared(model, side)``), on ``models``:
    (architecture in ``models.ARCHITECTURES``, input side, classes) of the preset."""

    chapter: str
    label: str
    fn: Callable[..., Any]
    shared: Callable[[nn.Module, int], dict[str, Any]]
    models: tuple[tuple[str, int, int], ...]
    images: str


def _fits(names: list[str]) -> dict[str, Any]:
    """A stand-in ReAct fit (its threshold moves no pass count)."""
    return {"react": ood.ReActFit(threshold=1.0, percentile=90.0)} if "react" in names else {}


def _salagg(p: dict[str, Any]) -> list[Workload]:
    models = tuple(("openood_resnet18_32x32", 32, 100 if b == "cifar100" else 10) for b in p["benchmarks"])
    specs = salagg.scores.method_specs(p["methods"], ig_steps=p["ig_steps"], lime_samples=p["lime_samples"],
                                       seed=p["seed"])
    images = "ID + OOD images, x benchmarks x seeds"

    def saliency(model: nn.Module, side: int) -> dict[str, Any]:
        return {"model": model, "specs": specs, "aggregates": list(p["aggregates"]), "batch_size": p["batch_size"],
                "chunk_size": p["chunk_size"]}

    def scores(model: nn.Module, side: int) -> dict[str, Any]:
        return {"model": model, "names": list(p["classical"]), "fits": _fits(p["classical"])}

    return [Workload("salagg", f"saliency aggregates ({', '.join(specs)})", ood.aggregates_chunk, saliency, models,
                     images),
            Workload("salagg", f"OOD scores ({', '.join(p['classical'])})", classical_chunk, scores, models, images)]


def _s_and_i(p: dict[str, Any]) -> list[Workload]:
    arch = {"resnet34": "gaia_resnet34", "wrn40": "wrn40_2"}
    models = tuple((arch[b], 32, 100) for b in p["paper_backbones"] if b in arch)
    settings = s_and_i.SISettings(steps=p["steps"], step_size=p["step_size"], accumulate=p["accumulate"],
                                  gradient=p["gradient"])

    def shared(model: nn.Module, side: int) -> dict[str, Any]:
        return {"model": model, "scores": list(p["scores"]), "fits": _fits(p["scores"]), "si": settings}

    return [Workload("s_and_i", f"OOD scores ({', '.join(p['scores'])})", score_chunk, shared, models,
                     "ID + OOD images")]


def _hermitry(p: dict[str, Any]) -> list[Workload]:
    models = tuple((a, 224, 1000) for a in p["archs"])
    settings = hermitry.PerturbSettings(occlusion_window=p["occlusion_window"], occlusion_stride=p["occlusion_stride"],
                                        n_samples=p["n_samples"], kernel_width=p["kernel_width"],
                                        anchor_images=p["anchor_images"], chunk_images=p["chunk_images"])
    out = []
    for method in p["methods"]:
        def shared(model: nn.Module, side: int, method: str = method) -> dict[str, Any]:
            return {"model": model, "method": method, "mean": list(data.NORMALISATION["imagenet"][0]),
                    "settings": settings, "seed": p["seed"]}

        count = p["anchor_images"] if method == "anchor" else p["n_val"]
        out.append(Workload("hermitry", f"{hermitry.METHODS[method]} captures", capture_chunk, shared, models,
                            f"{count * len(p['classes'])} ({count} x {len(p['classes'])} classes)"))
    return out


def _disagreement(p: dict[str, Any]) -> list[Workload]:
    models = tuple(sorted({("inception_v3" if "inception" in c else "resnet101",
                            299 if "inception" in c else 224, 2) for c in p["checkpoints"]}))
    settings = disagreement.MapSettings(occlusion_window=p["occlusion_window"], occlusion_stride=p["occlusion_stride"],
                                        ig_steps=p["ig_steps"], gs_samples=p["gs_samples"],
                                        lrp_epsilon=p["lrp_epsilon"], batch_images=p["batch_images"])
    kw = disagreement.maps.method_params(settings, p["seed"])
    out = []
    for method in p["methods"]:
        def shared(model: nn.Module, side: int, method: str = method) -> dict[str, Any]:
            return {"model": model, "method": method, "params": kw[method], "side": (128, 128)}

        out.append(Workload("disagreement", f"{method} maps", maps_chunk, shared, models,
                            f"<= {p['n_test']} per task"))
    return out


def _synthetic_cells(p: dict[str, Any]) -> list[Workload]:
    models = tuple((f["arch"], f["image_size"], 10) for f in p["families"].values())
    out = []
    for method in p["methods"]:
        def shared(model: nn.Module, side: int, method: str = method) -> dict[str, Any]:
            kw = synthetic_cells.evaluation.resolve_params(method, p["method_params"].get(method), model,
                                                           torch.zeros(1, 3, side, side), seed=p["seed"])
            return {"model": model, "method": method, "target": torch.zeros(1 << 16, dtype=torch.long), "kw": kw}

        out.append(Workload("synthetic_cells", f"{method} heatmaps", heatmaps_chunk, shared, models,
                            f"{p['n_test']} per family"))
    return out


_BUILDERS = {"salagg": _salagg, "s_and_i": _s_and_i, "hermitry": _hermitry, "disagreement": _disagreement,
             "synthetic_cells": _synthetic_cells}


def workloads(preset: str = "full", chapters: tuple[str, ...] = CHAPTERS) -> list[Workload]:
    """The per-image workloads of ``chapters`` at ``preset`` (parameters from ``notebooks/params``)."""
    return [w for c in chapters for w in _BUILDERS[c](params.resolve(c, preset))]
