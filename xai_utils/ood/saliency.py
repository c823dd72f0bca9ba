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

__all__ = ["SCALE_INVARIANT", "saliency_column", "flagged_aggregate", "saliency_aggregates"]

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
    ``"undefined/" + column`` -> (N,) 0/1 flags.
    """
    from .. import attribution  # lazy: attribution pulls in captum/zennit
    from . import AGGREGATES  # at call time: the package's __init__ imports this module

    unknown = [a for a in aggregates if a not in AGGREGATES]
    if unknown:
        raise ValueError(f"unknown aggregates {unknown}; known: {sorted(AGGREGATES)}")
    out: dict[str, list[Tensor]] = {saliency_column(m, a): [] for m in specs for a in aggregates}
    for xb in x.split(batch_size):
        with torch.no_grad():
            target = model(xb).argmax(1)
        for m, (name, params) in specs.items():
            extra = {"internal_batch_size": batch_size} if name == "integrated_gradients" else {}
            if name in attribution.PERTURBATION_METHODS:
                extra = {"chunk_size": chunk_size}
            maps = attribution.attribute(name, model, xb, target=target, **params, **extra).detach().double()
            for a in aggregates:
                values, undefined = flagged_aggregate(AGGREGATES[a], maps, scale_invariant=a in SCALE_INVARIANT)
                out[saliency_column(m, a)].append(values.cpu())
                if a in SCALE_INVARIANT:
                    out.setdefault(f"undefined/{saliency_column(m, a)}", []).append(undefined.double().cpu())
    return {k: torch.cat(v) for k, v in out.items()}
