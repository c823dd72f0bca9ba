"""Per-image scores of the chapter's runs: the classical OOD scores and the saliency aggregates (cached),
and the AUROCs (%) per OOD set and group that every table and figure is built from.

AUROCs are in percent (ID = positive, higher score = more ID), averaged over the OOD sets of a group
("near" / "far") as OpenOOD does; "all" is the mean of near and far.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ... import attribution, cache, config, metrics, ood
from ...ood import saliency_aggregates, saliency_column
from .runs import Run

#: The paper's five methods (attribution registry names) and their parameters.  LIME and Occlusion use
#: the attribution package's default features: a 4 x 4 grid of equal rectangles, zero baseline.
PAPER_PARAMS: dict[str, dict[str, Any]] = {
    "lime": {"n_samples": 100, "p": 0.5, "kernel_width": 0.25, "distance": "mask_cosine"},
    "occlusion": {"baseline": 0.0},
    "gradcam": {},
    "integrated_gradients": {"baseline": "zero", "n_steps": 50},
    "guided_backprop": {},
}
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


def method_specs(
    methods: Sequence[str], *, ig_steps: int, lime_samples: int, seed: int
) -> dict[str, tuple[str, dict]]:
    """``METHODS`` restricted to ``methods`` with IG's steps, LIME's samples and LIME's mask seed set."""
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
    return specs


@dataclass(frozen=True)
class SaliencySettings:
    """How the saliency aggregates of :func:`compute_scores` are computed: ``methods`` (names in
    :data:`METHODS`) x ``aggregates`` (names in ``ood.AGGREGATES``), IG's steps, LIME's samples,
    ``batch_size`` images per attribution call, ``chunk_size`` perturbed images per forward pass, and
    the chapter ``seed`` (LIME's masks)."""

    methods: tuple[str, ...]
    aggregates: tuple[str, ...]
    ig_steps: int
    lime_samples: int
    batch_size: int
    chunk_size: int
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "aggregates", tuple(self.aggregates))
        unknown = [a for a in self.aggregates if a not in ood.AGGREGATES]
        if unknown:
            raise ValueError(f"unknown aggregates {unknown}; known: {sorted(ood.AGGREGATES)}")
        self.specs()  # unknown methods raise here

    def specs(self) -> dict[str, tuple[str, dict]]:
        """Label -> (attribution method, parameters) of the methods (see :func:`method_specs`)."""
        return method_specs(self.methods, ig_steps=self.ig_steps, lime_samples=self.lime_samples, seed=self.seed)


def _digest(*items: Tensor | Mapping[str, Tensor]) -> str:
    h = hashlib.sha256()
    for item in items:
        tensors = [item[k] for k in sorted(item)] if isinstance(item, Mapping) else [item]
        for t in tensors:
            h.update(str((tuple(t.shape), t.dtype)).encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def _split_saliency(model: nn.Module, x: Tensor, saliency: SaliencySettings, *, use_cache: bool) -> dict[str, Tensor]:
    specs = saliency.specs()
    if not specs:
        return {}

    def build() -> dict[str, Tensor]:
        return saliency_aggregates(
            model, x, specs, saliency.aggregates, batch_size=saliency.batch_size, chunk_size=saliency.chunk_size
        )

    if not use_cache:
        return build()
    cfg = {
        "model": _digest(model.state_dict()),
        "x": _digest(x),
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
    out: dict[str, list[Tensor]] = {n: [] for n in (*names, "pred", "mls_minus_bias")}
    bias = model.head.bias
    for xb in x.split(batch_size):
        for n in names:
            kw = {"fit": fits[n]} if n in fits else {}
            out[n].append(ood.SCORES[n](model, xb, **kw).detach().double().cpu())
        with torch.no_grad():
            logits = model(xb)
        pred = logits.argmax(1)
        out["pred"].append(pred.double().cpu())
        mls = logits.amax(1) - (bias[pred] if bias is not None else 0.0)
        out["mls_minus_bias"].append(mls.detach().double().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


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

    def values(self, col: str, set_name: str, part: str) -> np.ndarray:
        t = self.table
        v = t.loc[(t["set"] == set_name) & (t["part"] == part), col].to_numpy(np.float64)
        if v.size == 0:
            raise ValueError(f"{self.name}: no rows for set {set_name!r}, part {part!r}")
        return v

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
    scores only) are cached per (model weights, images, settings) when ``use_cache``.  Returns run name
    -> :class:`Scores`.
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
                cols.update(_split_saliency(model, x, saliency, use_cache=use_cache))
            for k in [k for k in cols if k.startswith("undefined/")]:
                flags = cols.pop(k)
                undefined[k.split("/", 1)[1]] = undefined.get(k.split("/", 1)[1], 0) + int(flags.sum())
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
    """Per run: how many images had an undefined scale-invariant aggregate (set to 0), per column."""
    rows = {
        n: {"images": s.notes.get("images", len(s.table)), **s.notes.get("undefined", {})}
        for n, s in scores.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)


def set_aurocs(scores: Scores, columns: Sequence[str], part: str = "test") -> pd.DataFrame:
    """AUROC (%) of each column per OOD set and per group (mean over the group's sets).  Index: columns."""
    rows = {}
    for col in columns:
        id_v = scores.values(col, "id", part)
        row = {s: 100.0 * metrics.auroc(id_v, scores.values(col, s, part)) for s in scores.groups}
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


# ----------------------------------------------------------------------------- SalAgg+MLS and selection


def fit_combination(scores: Scores, col: str, *, sign_rule: str = "mean") -> ood.SalAggFit:
    """SalAgg+MLS constants for one aggregate column: sigmas on ID val, sign from ID val vs all OOD val."""
    ood_val = np.concatenate([scores.values(col, s, "val") for s in scores.groups])
    return ood.fit_salagg(
        scores.values(col, "id", "val"), scores.values("mls", "id", "val"), ood_val, sign_rule=sign_rule
    )


def with_salagg(scores: Scores, combos: Combos) -> tuple[Scores, dict[str, ood.SalAggFit]]:
    """Add SalAgg+MLS columns ``"<method>-<agg>+MLS"`` for ``combos`` (method -> aggregate)."""
    table, fits = scores.table.copy(), {}
    for m, a in pairs(combos):
        col = saliency_column(m, a)
        fits[col] = fit_combination(scores, col)
        table[f"{col}+MLS"] = ood.salagg_mls(
            torch.tensor(table[col].to_numpy()), torch.tensor(table["mls"].to_numpy()), fits[col]
        ).numpy()
    return replace(scores, table=table), fits


def select_on_validation(scores: Mapping[str, Scores]) -> pd.DataFrame:
    """Validation AUROC (%) of SalAgg+MLS for every (method, aggregate), mean of near and far, averaged
    over runs; column ``selected`` names each method's best aggregate (the paper's sec. 5.3 selection)."""
    first = next(iter(scores.values()))
    per_run = []
    for s in scores.values():
        s2, _ = with_salagg(s, {})
        table = s2.table
        for c in s.saliency_columns:
            table[c] = ood.salagg_mls(
                torch.tensor(table[c].to_numpy()),
                torch.tensor(table["mls"].to_numpy()),
                fit_combination(s, c),
            ).numpy()
        per_run.append(set_aurocs(s2, s.saliency_columns, part="val")["all"])
    grid = method_grid(pd.concat(per_run, axis=1).mean(axis=1), first.methods, first.aggregates)
    grid["selected"] = grid[list(first.aggregates)].idxmax(axis=1)
    return grid


def best_combination(selection: pd.DataFrame) -> list[tuple[str, str]]:
    """The single (method, aggregate) with the best validation AUROC of SalAgg+MLS, as a one-pair list."""
    grid = selection.drop(columns="selected").astype(float)
    m, a = grid.stack().idxmax()
    return [(str(m), str(a))]


def selected_combinations(selection: pd.DataFrame) -> dict[str, str]:
    """Method -> aggregate chosen on validation (from :func:`select_on_validation`)."""
    return dict(selection["selected"])


def bootstrap_group(s: Scores, cols: Sequence[str], group: str, *, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Test AUROC (%) of ``cols`` on ``n_boot`` bootstraps of the ID and ``group`` OOD test images, mean
    over the group's sets; every column gets the same resamples (paired, for the Wilcoxon test)."""
    sets = [k for k, g in s.groups.items() if g == group]
    id_all = {c: s.values(c, "id", "test") for c in cols}
    ood_all = {(c, k): s.values(c, k, "test") for c in cols for k in sets}
    rng = np.random.default_rng(config.sub_seed(seed, f"{s.name}/{group}"))
    out = {c: np.empty(n_boot) for c in cols}
    for b in range(n_boot):
        i_id = rng.integers(0, len(id_all[cols[0]]), len(id_all[cols[0]]))
        i_ood = {k: rng.integers(0, len(ood_all[(cols[0], k)]), len(ood_all[(cols[0], k)])) for k in sets}
        for c in cols:
            out[c][b] = 100.0 * np.mean(
                [metrics.auroc(id_all[c][i_id], ood_all[(c, k)][i_ood[k]]) for k in sets]
            )
    return out
