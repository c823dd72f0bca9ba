"""Saliency aggregates of many images and methods in batches (salagg paper): the package's one batched
saliency entry point.

A method is given as ``label -> (attribution registry name, its parameters)``; its map is computed
once per image for the predicted class and every aggregate is taken on it (raw, unnormalised values).
A scale-invariant aggregate (:data:`SCALE_INVARIANT`) is undefined where its denominator is 0 (e.g. a
Guided Backprop map with Q1 = Q3 = 0): it gets 0 there and the image is flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .. import parallel

__all__ = ["SCALE_INVARIANT", "saliency_column", "flagged_aggregate", "saliency_aggregates", "aggregates_chunk"]

#: Aggregates that divide by a statistic of the map (CV, RMD, QCD), so a zero denominator leaves them undefined.
SCALE_INVARIANT: tuple[str, ...] = ("cv", "rmd", "qcd")

Aggregate = Callable[[Tensor], Tensor]


def saliency_column(method: str, aggregate: str) -> str:
    """Name of the scores of one (method label, aggregate) pair, e.g. ``"GBP-norm"``."""
    return f"{method}-{aggregate}"


def flagged_aggregate(fn: Aggregate, maps: Tensor, *, scale_invariant: bool) -> tuple[Tensor, Tensor]:
    """``fn(maps)`` -> ((N,), (N,) bool undefined).  maps : (N, ...).

    Where a ``scale_invariant`` aggregate is undefined for a sample it gets 0 there and the sample is
    flagged; any other failure (and any failure of another aggregate) raises.
    """
    try:
        return fn(maps), torch.zeros(len(maps), dtype=torch.bool)
    except ValueError:
        if not scale_invariant:
            raise
    values, undefined = torch.zeros(len(maps), dtype=torch.float64), torch.zeros(len(maps), dtype=torch.bool)
    for i in range(len(maps)):  # only on the rare failure path: find which samples are undefined
        try:
            values[i] = fn(maps[i : i + 1])[0]
        except ValueError:
            undefined[i] = True
    return values, undefined


def saliency_aggregates(
    model: nn.Module,
    x: Tensor,
    specs: Mapping[str, tuple[str, Mapping[str, Any]]],
    aggregates: Sequence[str],
    *,
    batch_size: int,
    chunk_size: int | None,
) -> dict[str, Tensor]:
    """Every aggregate of every method's map, for the predicted class.  x : (N, C, H, W).

    ``specs``: label -> (``attribution.METHODS`` name, parameters).  ``batch_size`` images per
    attribution call (and per IG internal batch); ``chunk_size`` perturbed images per forward pass of
    ``attribution.PERTURBATION_METHODS`` (None: measured; ~64 is best on CPU).  Returns
    ``saliency_column(label, agg)`` -> (N,) float64, and for the :data:`SCALE_INVARIANT` aggregates
    ``"undefined/" + column`` -> (N,) 0/1 flags.  Chunks of ``batch_size`` images go through
    ``parallel.map_chunks`` (the run's engine: here or on a Ray cluster).
    """
    from . import AGGREGATES  # at call time: the package's __init__ imports this module

    unknown = [a for a in aggregates if a not in AGGREGATES]
    if unknown:
        raise ValueError(f"unknown aggregates {unknown}; known: {sorted(AGGREGATES)}")
    shared = {"model": model, "specs": dict(specs), "aggregates": list(aggregates), "batch_size": batch_size,
              "chunk_size": chunk_size}
    return parallel.map_chunks(aggregates_chunk, x, chunk_size=batch_size, shared=shared, desc="saliency aggregates")


def aggregates_chunk(
    chunk: parallel.Chunk,
    *,
    model: nn.Module,
    specs: Mapping[str, tuple[str, Mapping[str, Any]]],
    aggregates: Sequence[str],
    batch_size: int,
    chunk_size: int | None,
) -> dict[str, Tensor]:
    """:func:`saliency_aggregates` of one chunk of images (the chunk function of ``parallel.map_chunks``)."""
    from .. import attribution  # lazy: attribution pulls in captum/zennit
    from . import AGGREGATES

    xb = chunk.x
    with torch.no_grad():
        target = model(xb).argmax(1)
    out: dict[str, Tensor] = {}
    flags: dict[str, Tensor] = {}
    for m, (name, params) in specs.items():
        extra = {"internal_batch_size": batch_size} if name == "integrated_gradients" else {}
        if name in attribution.PERTURBATION_METHODS:
            extra = {"chunk_size": chunk_size}
        maps = attribution.attribute(name, model, xb, target=target, **params, **extra).detach().double()
        for a in aggregates:
            values, undefined = flagged_aggregate(AGGREGATES[a], maps, scale_invariant=a in SCALE_INVARIANT)
            out[saliency_column(m, a)] = values.cpu()
            if a in SCALE_INVARIANT:
                flags[f"undefined/{saliency_column(m, a)}"] = undefined.double().cpu()
    return out | flags
