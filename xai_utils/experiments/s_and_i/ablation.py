"""Ablations of S&I on one run (ours; the eta values are the authors' rebuttal's): the attack step eta,
the number of iterations T and the number of split points, on a seeded subset of the test images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch

from ... import cache, config, metrics, ood
from ..ood_runs import Run, subsample
from .scores import SISettings


@dataclass(frozen=True, eq=False)
class Ablation:
    """table: one row per setting (knob, value, AVG FPR95 %, AVG AUROC %); scores: (knob, value) -> set ->
    per-image S&I scores (higher = ID), for intervals."""

    table: pd.DataFrame
    scores: dict[tuple[str, str], dict[str, np.ndarray]]


def spread_layers(layers: Sequence, k: int) -> list:
    """``k`` of ``layers`` evenly spread from the first to the last (all of them when k >= len)."""
    if k < 1:
        raise ValueError(f"need at least one split point, got {k}")
    idx = np.unique(np.round(np.linspace(0, len(layers) - 1, min(k, len(layers)))).astype(int))
    return [layers[i] for i in idx]


def _scores(model, x: torch.Tensor, si: SISettings, layers: list, batch_size: int) -> torch.Tensor:
    return torch.cat([ood.mean_square_score(ood.s_and_i_densities(model, xb, layers=layers, **si.kw()))
                      for xb in x.split(batch_size)]).double().cpu()


def ablation(
    run: Run, *, si: SISettings, etas: Sequence[float], steps: Sequence[int], split_counts: Sequence[int],
    n_id: int, n_ood: int, batch_size: int, seed: int, use_cache: bool, progress: bool,
) -> Ablation:
    """S&I's average FPR95 / AUROC over the OOD sets when one of eta, T or the number of split points
    (:func:`spread_layers`) changes from ``si`` (each knob's values include ``si``'s own, and all split
    points); on at most ``n_id`` ID and ``n_ood`` images per OOD set."""
    bench = subsample(run.bench, n_id_val=n_id, n_id_test=n_id, n_ood_val=n_ood, n_ood_test=n_ood, seed=seed)
    model = run.model
    dev = next(model.parameters()).device
    layers = ood.gaia_layers(model)
    n = len(layers)  # every knob also shows the chapter's own setting (one computation, cached)
    settings = [("eta", f"{e:g}", replace(si, step_size=e), n) for e in sorted({*map(float, etas), si.step_size})]
    settings += [("T", str(t), replace(si, steps=t), n) for t in sorted({*map(int, steps), si.steps})]
    settings += [("split points", str(k), si, k) for k in sorted({*(min(int(k), n) for k in split_counts), n})]
    sets = {"id": bench.id_test.x, **{k: v["test"].x for k, v in bench.ood.items()}}
    rows, kept = [], {}
    for knob, value, s, k in config.progress(settings, desc="ablation", disable=not progress, leave=False):
        chosen = spread_layers(layers, k)

        def build(s=s, chosen=chosen) -> dict[str, torch.Tensor]:
            return {name: _scores(model, x.to(dev), s, chosen, batch_size) for name, x in sets.items()}

        cfg = {"model": cache.digest(model.state_dict()), "x": cache.digest(*sets.values()), "si": asdict(s),
               "layers": len(chosen), "batch_size": batch_size}
        got = cache.load_or_build("s_and_i_ablation", cfg, build, code=[_scores]) if use_cache else build()
        got = {name: v.numpy() for name, v in got.items()}
        ms = [metrics.ood_metrics(got["id"], got[o]) for o in sets if o != "id"]
        rows.append({"knob": knob, "value": value, "AVG FPR95": 100 * np.mean([m.fpr_at_tpr for m in ms]),
                     "AVG AUROC": 100 * np.mean([m.auroc for m in ms])})
        kept[(knob, value)] = got
    table = pd.DataFrame(rows).set_index(["knob", "value"]).round(2)
    return Ablation(table, kept)
