"""Per-image OOD scores of the chapter's runs on every test split: the baselines, GAIA-Z/A and S&I(-A).

GAIA-Z and S&I are computed through their per-split-point channel densities
(:func:`xai_utils.ood.gaia_z_densities`, :func:`xai_utils.ood.s_and_i_densities`), which are kept for
the mask analysis; their scores are :func:`xai_utils.ood.mean_square_score` of them.  Everything is
cached per (model weights, images, settings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ... import cache, config, ood, parallel
from ...checks import check_images
from ..ood_runs import Run

#: Scores computed through their densities (the rest through ``ood.SCORES``).
DENSITY_SCORES = {"gaia_z": "gaia", "s_and_i": "s_and_i"}
LABELS = ood.LABELS  # display names of the scores (one source, shared with salagg)


@dataclass(frozen=True)
class SISettings:
    """S&I's settings (:func:`xai_utils.ood.s_and_i_densities`): T, eta, accumulation, gradient."""

    steps: int
    step_size: float
    accumulate: str
    gradient: str

    def kw(self, variant: str = "z") -> dict:
        kw = asdict(self)
        if variant == "a":
            kw.pop("gradient")
        return kw


@dataclass(frozen=True, eq=False)
class RunScores:
    """One run's test scores.  table: one row per image with ``set`` ("id" or an OOD set) and one column
    per score (higher = ID); densities: set -> {"gaia" | "s_and_i": (N, K) channel densities};
    layer_sizes: channels per split point (K = their sum); groups: OOD set -> "near" / "far"."""

    name: str
    table: pd.DataFrame
    densities: dict[str, dict[str, np.ndarray]]
    layer_sizes: tuple[int, ...]
    groups: dict[str, str]
    scores: tuple[str, ...]

    def values(self, col: str, set_name: str) -> np.ndarray:
        v = self.table.loc[self.table["set"] == set_name, col].to_numpy(np.float64)
        if v.size == 0:
            raise ValueError(f"{self.name}: no rows for set {set_name!r}")
        return v

    @property
    def ood_sets(self) -> list[str]:
        return list(self.groups)


def score_images(
    model: nn.Module, x: Tensor, *, scores: Sequence[str], fits: Mapping[str, object], si: SISettings,
    batch_size: int,
) -> dict[str, Tensor]:
    """Every score in ``scores`` on x, in batches, plus the densities ``density/gaia`` and
    ``density/s_and_i`` (N, K) where GAIA-Z / S&I are among them."""
    check_images(x)
    return parallel.map_chunks(score_chunk, x, chunk_size=batch_size,
                               shared={"model": model, "scores": list(scores), "fits": dict(fits), "si": si},
                               desc="OOD scores")


def score_chunk(chunk: parallel.Chunk, *, model: nn.Module, scores: Sequence[str], fits: Mapping[str, object],
                si: SISettings) -> dict[str, Tensor]:
    """:func:`score_images` of one chunk of images (the chunk function of ``parallel.map_chunks``)."""
    out: dict[str, Tensor] = {}
    for name in scores:
        if name in DENSITY_SCORES:
            dens = (ood.gaia_z_densities(model, chunk.x) if name == "gaia_z"
                    else ood.s_and_i_densities(model, chunk.x, **si.kw()))
            out[f"density/{DENSITY_SCORES[name]}"] = torch.cat(dens, 1).double()
            value = ood.mean_square_score(dens)
        else:
            kw = {"fit": fits[name]} if name in fits else si.kw("a") if name == "s_and_i_a" else {}
            value = ood.score(name, model, chunk.x, **kw)
        out[name] = value.detach().double()
    return out


def compute_scores(
    runs: Mapping[str, Run], *, scores: Sequence[str], si: SISettings, batch_size: int, use_cache: bool,
    progress: bool,
) -> dict[str, RunScores]:
    """:func:`score_images` on the ID test split and every OOD test split of every run (ReAct fitted on the
    ID validation images), cached per (weights, images, settings) when ``use_cache``."""
    unknown = [s for s in scores if s not in ood.SCORES]
    if unknown:
        raise ValueError(f"unknown OOD scores {unknown}; known: {sorted(ood.SCORES)}")
    out = {}
    for name, run in runs.items():
        b, model = run.bench, run.model
        dev = next(model.parameters()).device
        fits = {n: ood.FITTED[n](model, b.id_val.x.to(dev)) for n in scores if n in ood.FITTED}
        parts = [("id", b.id_test), *[(k, v["test"]) for k, v in b.ood.items()]]
        frames, densities = [], {}
        for set_name, split in config.progress(parts, desc=f"scores {name}", disable=not progress, leave=False):
            x = split.x.to(dev)

            def build(x=x, model=model, fits=fits) -> dict[str, Tensor]:
                return score_images(model, x, scores=scores, fits=fits, si=si, batch_size=batch_size)

            cfg = {"model": cache.digest(model.state_dict()), "x": cache.digest(x), "scores": list(scores),
                   "si": asdict(si), "batch_size": batch_size}
            cols = cache.load_or_build("s_and_i_scores", cfg, build, code=[score_images]) if use_cache else build()
            densities[set_name] = {k.split("/", 1)[1]: cols.pop(k).numpy() for k in [k for k in cols if "/" in k]}
            frame = pd.DataFrame({k: v.numpy() for k, v in cols.items()})
            frame.insert(0, "set", set_name)
            frames.append(frame)
        sizes = ood.layer_widths(model, b.id_test.x.to(dev))
        out[name] = RunScores(name, pd.concat(frames, ignore_index=True), densities, sizes, dict(b.groups),
                              tuple(scores))
    return out
