"""Per-image scores of the chapter's runs: the classical OOD scores and the saliency aggregates (cached),
and the AUROCs (%) per OOD set and group that every table and figure is built from.

AUROCs are in percent (ID = positive, higher score = more ID), averaged over the OOD sets of a group
("near" / "far") as OpenOOD does; "all" is the mean of near and far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ... import attribution, cache, config, metrics, ood, parallel
from ...ood import saliency_aggregates, saliency_column
from ..ood_runs import Run

#: The paper's five methods (attribution registry names) and their parameters.  LIME and Occlusion use
#: the attribution package's default features: a 4 x 4 grid of equal rectangles.  Their baseline, and
#: IG's, is set per run by :data:`BASELINES`.
PAPER_PARAMS: dict[str, dict[str, Any]] = {
    "lime": {"n_samples": 100, "p": 0.5, "kernel_width": 0.25, "distance": "mask_cosine"},
    "occlusion": {},
    "gradcam": {},
    "integrated_gradients": {"n_steps": 50},
    "guided_backprop": {},
}
#: The "zero" that Occlusion and LIME put in and IG starts from, in the [0, 1] pixels our models take
#: (they normalise inside).  The paper's pipeline (OpenOOD) feeds normalised tensors, so its zero is
#: ``mean_colour``: the normalisation mean of the benchmark, a grey; ``black`` is zero in pixel space.
BASELINES: tuple[str, ...] = ("mean_colour", "black")

#: Display name (``attribution.LABELS``: "LIME", "Occlusion", "GradCAM", "IG", "GBP") -> (registry
#: name, the paper's parameters).  The display names label every column ("GBP-norm") and table.
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    attribution.LABELS[name]: (name, kw) for name, kw in PAPER_PARAMS.items()
}
AGGREGATES: tuple[str, ...] = tuple(ood.AGGREGATES)
CLASSICAL: tuple[str, ...] = ("msp", "mls", "energy", "odin", "react", "gradnorm")

Combos = Mapping[str, str] | Sequence[tuple[str, str]]


def pairs(combos: Combos) -> list[tuple[str, str]]:
    """(method, aggregate) pairs from a mapping ``{method: aggregate}`` or a sequence of pairs, deduplicated."""
    items = combos.items() if isinstance(combos, Mapping) else combos
    return list(dict.fromkeys((str(m), str(a)) for m, a in items))


def baseline_colour(baseline: str, mean: Sequence[float]) -> list[float]:
    """Per-channel colour in [0, 1] pixels of a :data:`BASELINES` name, for a benchmark normalised by ``mean``."""
    if baseline == "mean_colour":
        return [float(v) for v in mean]
    if baseline == "black":
        return [0.0] * len(mean)
    raise ValueError(f"unknown baseline {baseline!r}; known: {', '.join(BASELINES)}")


def method_specs(
    methods: Sequence[str], *, ig_steps: int, lime_samples: int, seed: int, colour: Sequence[float] | None = None
) -> dict[str, tuple[str, dict]]:
    """``METHODS`` restricted to ``methods`` with IG's steps, LIME's samples and LIME's mask seed set, and
    with ``colour`` (per channel, from :func:`baseline_colour`) as the baseline of LIME, Occlusion and IG."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown saliency methods {unknown}; known: {list(METHODS)}")
    specs = {m: (METHODS[m][0], dict(METHODS[m][1])) for m in methods}
    for name, kw in specs.values():
        if name == "integrated_gradients":
            kw["n_steps"] = int(ig_steps)
        if name == "lime":
            kw["n_samples"] = int(lime_samples)
            kw["seed"] = int(seed)
        if colour is not None and name in ("lime", "occlusion", "integrated_gradients"):
            kw["baseline"] = [float(c) for c in colour]
    return specs


def _as_tensors(specs: Mapping[str, tuple[str, Mapping[str, Any]]]) -> dict[str, tuple[str, dict]]:
    """Specs with each per-channel baseline list as a (C, 1, 1) tensor, as the attribution methods take it."""
    out = {}
    for label, (name, kw) in specs.items():
        kw = dict(kw)
        if isinstance(kw.get("baseline"), list):
            kw["baseline"] = torch.tensor(kw["baseline"], dtype=torch.float32)[:, None, None]
        out[label] = (name, kw)
    return out


@dataclass(frozen=True)
class SaliencySettings:
    """How the saliency aggregates of :func:`compute_scores` are computed: ``methods`` (names in
    :data:`METHODS`) x ``aggregates`` (names in ``ood.AGGREGATES``), IG's steps, LIME's samples, the
    ``baseline`` of LIME, Occlusion and IG (a :data:`BASELINES` name), ``batch_size`` images per
    attribution call, ``chunk_size`` perturbed images per forward pass, and the chapter ``seed``
    (LIME's masks)."""

    methods: tuple[str, ...]
    aggregates: tuple[str, ...]
    ig_steps: int
    lime_samples: int
    baseline: str
    batch_size: int
    chunk_size: int
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "aggregates", tuple(self.aggregates))
        unknown = [a for a in self.aggregates if a not in ood.AGGREGATES]
        if unknown:
            raise ValueError(f"unknown aggregates {unknown}; known: {sorted(ood.AGGREGATES)}")
        self.specs((0.0, 0.0, 0.0))  # unknown methods and baselines raise here

    def specs(self, mean: Sequence[float]) -> dict[str, tuple[str, dict]]:
        """Label -> (attribution method, parameters) for a benchmark normalised by ``mean`` (see
        :func:`method_specs`); baselines as per-channel lists."""
        return method_specs(
            self.methods,
            ig_steps=self.ig_steps,
            lime_samples=self.lime_samples,
            seed=self.seed,
            colour=baseline_colour(self.baseline, mean),
        )


def _split_saliency(
    model: nn.Module, x: Tensor, saliency: SaliencySettings, mean: Sequence[float], *, use_cache: bool
) -> dict[str, Tensor]:
    specs = saliency.specs(mean)
    if not specs:
        return {}

    def build() -> dict[str, Tensor]:
        return saliency_aggregates(
            model,
            x,
            _as_tensors(specs),
            saliency.aggregates,
            batch_size=saliency.batch_size,
            chunk_size=saliency.chunk_size,
        )

    if not use_cache:
        return build()
    cfg = {
        "model": cache.digest(model.state_dict()),
        "x": cache.digest(x),
        "specs": {k: list(v) for k, v in specs.items()},
        "aggregates": list(saliency.aggregates),
        "batch_size": saliency.batch_size,
        "chunk_size": saliency.chunk_size,
    }
    return cache.load_or_build("salagg_scores", cfg, build, code=[saliency_aggregates])  # its import closure


def classical_scores(
    model: nn.Module, x: Tensor, names: Sequence[str], fits: Mapping[str, Any], batch_size: int = 256
) -> dict[str, Tensor]:
    """``ood.SCORES`` on x in batches (``fits[name]`` passed as ``fit=``), plus ``pred`` and
    ``mls_minus_bias`` (the MLS without the predicted class's bias, for the appendix theorem)."""
    unknown = [n for n in names if n not in ood.SCORES]
    if unknown:
        raise ValueError(f"unknown OOD scores {unknown}; known: {sorted(ood.SCORES)}")
    return parallel.map_chunks(classical_chunk, x, chunk_size=batch_size,
                               shared={"model": model, "names": list(names), "fits": dict(fits)}, desc="OOD scores")


def classical_chunk(chunk: parallel.Chunk, *, model: nn.Module, names: Sequence[str],
                    fits: Mapping[str, Any]) -> dict[str, Tensor]:
    """:func:`classical_scores` of one chunk of images (the chunk function of ``parallel.map_chunks``)."""
    xb = chunk.x
    out = {}
    for n in names:
        kw = {"fit": fits[n]} if n in fits else {}
        out[n] = ood.SCORES[n](model, xb, **kw).detach().double()
    with torch.no_grad():
        logits = model(xb)
    pred = logits.argmax(1)
    out["pred"] = pred.double()
    bias = model.head.bias
    out["mls_minus_bias"] = (logits.amax(1) - (bias[pred] if bias is not None else 0.0)).detach().double()
    return out


@dataclass(frozen=True, eq=False)
class Scores:
    """Per-image scores of one run: ``table`` has one row per image with ``set`` ("id" or an OOD set
    name), ``part`` ("val"/"test"), and one column per score (higher = more ID for classical scores;
    saliency aggregates raw).  ``groups``: OOD set -> "near"/"far"."""

    name: str
    paper_key: str
    table: pd.DataFrame
    groups: dict[str, str]
    methods: tuple[str, ...]
    aggregates: tuple[str, ...]
    classical: tuple[str, ...]
    notes: dict[str, Any] = field(default_factory=dict)

    def values(self, col: str, set_name: str, part: str, *, defined: bool = True) -> np.ndarray:
        """The column's values on one set and part; ``defined``: without the NaNs of undefined aggregates."""
        t = self.table
        v = t.loc[(t["set"] == set_name) & (t["part"] == part), col].to_numpy(np.float64)
        if v.size == 0:
            raise ValueError(f"{self.name}: no rows for set {set_name!r}, part {part!r}")
        return v[~np.isnan(v)] if defined else v

    @property
    def saliency_columns(self) -> list[str]:
        return [saliency_column(m, a) for m in self.methods for a in self.aggregates]


def compute_scores(
    runs: Mapping[str, Run],
    *,
    classical: Sequence[str],
    saliency: SaliencySettings | None,
    use_cache: bool,
    progress: bool = False,
) -> dict[str, Scores]:
    """Per-image classical scores and saliency aggregates of every split of every run.

    ReAct (and any score in ``ood.FITTED``) is fitted on the ID validation images.  Saliency maps
    (:func:`~xai_utils.ood.saliency.saliency_aggregates` with ``saliency``'s settings; None: classical
    scores only) are cached per (model weights, images, settings) when ``use_cache``.  A scale-invariant
    aggregate that is undefined on an image (zero denominator) is NaN there and counted in
    ``notes["undefined"]``; every AUROC of it is then taken on the images where it is defined.  Returns
    run name -> :class:`Scores`.
    """
    classical = tuple(dict.fromkeys(("mls", "msp", *classical)))
    out = {}
    for name, run in runs.items():
        b, model = run.bench, run.model
        dev = next(model.parameters()).device
        fits = {n: ood.FITTED[n](model, b.id_val.x.to(dev)) for n in classical if n in ood.FITTED}
        parts = [("id", "val", b.id_val), ("id", "test", b.id_test)]
        parts += [(k, p, v[p]) for k, v in b.ood.items() for p in ("val", "test")]
        frames, undefined = [], {}
        for set_name, part, split in config.progress(parts, desc=f"scores {name}", disable=not progress, leave=False):
            x = split.x.to(dev)
            cols = classical_scores(model, x, classical, fits)
            if saliency is not None:
                cols.update(_split_saliency(model, x, saliency, b.mean, use_cache=use_cache))
            for k in [k for k in cols if k.startswith("undefined/")]:
                flags, col = cols.pop(k).bool(), k.split("/", 1)[1]
                cols[col] = cols[col].masked_fill(flags, float("nan"))  # no value, rather than a made-up 0
                undefined[col] = undefined.get(col, 0) + int(flags.sum())
            frame = pd.DataFrame({k: v.numpy() for k, v in cols.items()})
            frame.insert(0, "part", part)
            frame.insert(0, "set", set_name)
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        out[name] = Scores(
            name,
            run.paper_key,
            table,
            dict(b.groups),
            saliency.methods if saliency else (),
            saliency.aggregates if saliency else (),
            classical,
            notes={"undefined": {k: v for k, v in undefined.items() if v}, "images": len(table)},
        )
    return out


def undefined_table(scores: Mapping[str, Scores]) -> pd.DataFrame:
    """Per run: how many images had an undefined scale-invariant aggregate (left out of its AUROCs), per column."""
    rows = {
        n: {"images": s.notes.get("images", len(s.table)), **s.notes.get("undefined", {})}
        for n, s in scores.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)


def auroc_pct(id_v: np.ndarray, ood_v: np.ndarray) -> float:
    """AUROC (%) of ID vs OOD values on the defined (non-NaN) ones; NaN where a side has none."""
    id_v, ood_v = id_v[~np.isnan(id_v)], ood_v[~np.isnan(ood_v)]
    return 100.0 * metrics.auroc(id_v, ood_v) if id_v.size and ood_v.size else float("nan")


def set_aurocs(scores: Scores, columns: Sequence[str], part: str = "test") -> pd.DataFrame:
    """AUROC (%) of each column per OOD set and per group (mean over the group's sets), on the images
    where the column is defined.  Index: columns."""
    rows = {}
    for col in columns:
        id_v = scores.values(col, "id", part)
        row = {s: auroc_pct(id_v, scores.values(col, s, part)) for s in scores.groups}
        present = []
        for g in ("near", "far"):
            vals = [row[k] for k, gg in scores.groups.items() if gg == g]
            row[g] = float(np.mean(vals)) if vals else float("nan")  # a benchmark without this group
            present += [row[g]] if vals else []
        row["all"] = float(np.mean(present))
        rows[col] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def method_grid(values: Mapping[str, float], methods: Sequence[str], aggregates: Sequence[str]) -> pd.DataFrame:
    """Methods x aggregates frame of per-column ``values`` (keyed ``"<method>-<aggregate>"``)."""
    g = pd.DataFrame(
        [[values[saliency_column(m, a)] for a in aggregates] for m in methods],
        index=list(methods),
        columns=list(aggregates),
    )
    g.index.name, g.columns.name = "method", "aggregate"
    return g
