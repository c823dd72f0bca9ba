"""Evaluation (paper sec. III-C): heatmaps of every method, branch and test image, five-band scored.

As in the authors' code (github.com/ericotjo001/explainable_ai, ``xai_basic/legacy/srcV1/pipeline/eval/``,
``evaluation_xai_implementation.py``: ``aggregate_evaluation``; ``evaluation_xai_utils.py``:
``compute_single_data_attribution``), every evaluation image is scored, right or wrong: the heatmap of
the predicted class against the image's own ground truth (blank type-9 cells included), and each row
keeps ``correct`` so that tables can also show the correct predictions only.  Scores come from
:func:`xai_utils.metrics.five_band_scores` in the ``soft`` and ``clamped`` variants, an ``abs`` variant
(|h| after channel adjustment, the paper's Fig. 6 suggestion) and ``other_fp`` (the soft variant under
the FP rule the chapter does not use: a sensitivity view).  Results are cached per family in
:mod:`xai_utils.cache`.
"""

from __future__ import annotations

import inspect
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from xai_utils import attribution, cache, config, data, metrics, parallel

from .families import Family
from .labels import METHODS
from .splits import CellSplits

VARIANTS: tuple[str, ...] = ("soft", "clamped", "abs", "other_fp")
#: ``layer=`` value that :func:`resolve_params` turns into the model's first convolution, the authors' Guided
#: Grad-CAM layer (``GuidedGradCam(net, net.select_first_layer())`` in evaluation_xai_implementation.py;
#: ``select_first_layer`` of model/adjusted_{alexnet,vgg,resnet34}.py: ``features[0]`` or ``conv1``).
FIRST_CONV = "first_conv"
STATS: tuple[str, ...] = ("precision", "recall", "fpr", "accuracy")
#: Pixels whose channel-adjusted |h| exceeds this count as "marked" in the density measure (t_0's inner band).
DENSITY_LEVEL = 0.3
#: Method pairs whose per-sample map correlation is reported (the paper's Fig. 6 comparison).
PAIRS: tuple[tuple[str, str], ...] = (
    ("deeplift", "deeplift_shap"),
    ("saliency", "deeplift"),
    ("input_x_gradient", "deeplift"),
)


def predict(model: nn.Module, x: Tensor, device: torch.device, chunk: int) -> Tensor:
    """Predicted classes (N,) of ``x`` (N, C, H, W), in chunks, on the CPU."""
    with torch.no_grad():
        return torch.cat([model(xc.to(device)).argmax(1).cpu() for xc in x.split(chunk)])


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of ``model`` in module order (the input convolution of every family here)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer")
    return conv


def resolve_params(
    method: str, params: Mapping[str, Any] | None, model: nn.Module, x: Tensor, *, seed: int
) -> dict[str, Any]:
    """Keyword arguments for ``attribute(method, model, ...)``.

    ``layer=``:data:`FIRST_CONV` becomes :func:`first_conv` of ``model``.  ``baselines="near_zero"``
    becomes the authors' SHAP baselines: ``n_baselines`` images of N(0, ``baseline_std``^2) noise (their
    code: 4 images, std 0.001), seeded and shared by all inputs.  Every random draw derives from ``seed``
    (:func:`xai_utils.config.sub_seed`): the baselines, and the method's own draws (e.g. GradientShap's
    noise) where it takes a ``seed``.  x : (N, C, H, W) gives shape, device and dtype."""
    kw = dict(params or {})
    if kw.get("layer") == FIRST_CONV:
        kw["layer"] = first_conv(model)
    if "seed" in inspect.signature(attribution.METHODS[method]).parameters:
        kw.setdefault("seed", config.sub_seed(seed, method))
    if kw.get("baselines") == "near_zero":
        n, std = int(kw.pop("n_baselines", 4)), float(kw.pop("baseline_std", 1e-3))
        gen = torch.Generator().manual_seed(config.sub_seed(seed, f"{method}/baselines"))
        kw["baselines"] = (std * torch.randn((n, *x.shape[1:]), generator=gen, dtype=torch.float64)).to(
            x.device, x.dtype
        )
    return kw


def heatmaps(
    model: nn.Module,
    x: Tensor,
    method: str,
    target: Tensor,
    *,
    params: Mapping[str, Any] | None,
    batch_size: int,
    seed: int,
    device: str | torch.device,
) -> np.ndarray:
    """Raw signed heatmaps of ``method`` for ``target``, computed in batches.

    x : (N, C, H, W) in [0, 1]; target : (N,); params : keyword arguments of the method (see
    :func:`resolve_params`, which ``seed`` seeds).  Returns float64 (N, C, H, W) numpy (CAM methods: C = 1).
    """
    dev = config.resolve_device(device)
    kw = resolve_params(method, params, model, x[:1].to(dev), seed=seed)
    shared = {"model": model, "method": method, "target": target, "kw": kw}
    return parallel.map_chunks(heatmaps_chunk, x, chunk_size=batch_size, shared=shared,
                               desc=f"{method} heatmaps").numpy()


def heatmaps_chunk(chunk: parallel.Chunk, *, model: nn.Module, method: str, target: Tensor,
                   kw: Mapping[str, Any]) -> Tensor:
    """:func:`heatmaps` of one chunk of images (the chunk function of ``parallel.map_chunks``)."""
    dev = next(model.parameters()).device
    with warnings.catch_warnings():  # captum's max-unpooling is not deterministic on CUDA; CPU results repeat
        warnings.filterwarnings("ignore", message=".*does not have a deterministic implementation.*")
        maps = attribution.attribute(method, model, chunk.x.to(dev), target[chunk.start : chunk.stop].to(dev), **kw)
    return maps.detach().double()


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample Pearson correlation of (N, H, W) maps; NaN where a map is constant (e.g. DeepLift of an
    all-black image, which equals its baseline), left out of the means."""
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), np.nan)


def other_fp_rule(fp_rule: str) -> str:
    """The FP rule of :data:`xai_utils.metrics.fiveband.FP_RULES` that is not ``fp_rule``."""
    rules = metrics.fiveband.FP_RULES
    if fp_rule not in rules:
        raise ValueError(f"unknown fp rule {fp_rule!r}; known: {list(rules)}")
    return next(r for r in rules if r != fp_rule)


def score_heatmaps(
    h: np.ndarray, ground_truth: Tensor | np.ndarray, *, fp_rule: str
) -> dict[str, np.ndarray]:
    """Five-band scores of raw heatmaps h (N, C, H, W) in the :data:`VARIANTS`; fp_rule : the FP rule
    of ``soft``, ``clamped`` and ``abs`` (``other_fp`` uses the other one).

    Returns arrays: ``{variant}_{stat}_{avg|best}`` (N,) for variant in :data:`VARIANTS` and stat in
    :data:`STATS`, ``{soft|clamped}_roc_fpr`` / ``_roc_recall`` (M,) (Fig. 4 points) and ``density`` (N,),
    the share of pixels with adjusted |h| > :data:`DENSITY_LEVEL`.
    """
    out: dict[str, np.ndarray] = {}
    adjusted = metrics.channel_adjust(h)
    runs = {
        "soft": metrics.five_band_scores(adjusted, ground_truth, fp=fp_rule),
        "clamped": metrics.five_band_scores(h, ground_truth, variant="clamped", fp=fp_rule),
        "abs": metrics.five_band_scores(np.abs(adjusted), ground_truth, fp=fp_rule),
        "other_fp": metrics.five_band_scores(adjusted, ground_truth, fp=other_fp_rule(fp_rule)),
    }
    for variant, s in runs.items():
        for stat in STATS:
            out[f"{variant}_{stat}_avg"] = s.avg(stat)
            out[f"{variant}_{stat}_best"] = s.best(stat)
        if variant in ("soft", "clamped"):
            out[f"{variant}_roc_fpr"], out[f"{variant}_roc_recall"] = s.roc_points()
    out["density"] = (np.abs(adjusted) > DENSITY_LEVEL).mean(axis=(1, 2))
    return out


@dataclass
class Evaluation:
    """Per-sample five-band scores and the curves of Fig. 4 for every family, branch and method.

    samples : one row per (family, branch, method, variant, sample) with y, pred, correct and the
    ``{stat}_avg`` / ``{stat}_best`` columns.  roc : (family, branch, method, variant, m, fpr, recall).
    accuracy : (family, branch, val_acc, test_acc, stop, iterations, epochs).  similarity : mean
    per-sample Pearson correlation of adjusted maps for :data:`PAIRS`.  density : mean marked share.
    fp_rule : the FP rule of the ``soft``, ``clamped`` and ``abs`` variants.
    """

    samples: pd.DataFrame
    roc: pd.DataFrame
    accuracy: pd.DataFrame
    similarity: pd.DataFrame
    density: pd.DataFrame
    n_test: int
    fp_rule: str
    seconds: float = 0.0
    from_cache: bool = False


def _evaluate_family(
    fam: Family,
    cells: data.Cells,
    methods: Sequence[str],
    method_params: Mapping[str, Any],
    batch_size: int,
    seed: int,
    dev: torch.device,
    progress: bool,
    fp_rule: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {"branches": []}
    bar = config.progress(
        total=len(fam.branches) * len(methods), desc=f"heatmaps {fam.name}", disable=not progress, leave=False
    )
    for br in fam.branches:
        pred = predict(br.model, cells.x, dev, batch_size)
        rec: dict[str, Any] = {"pred": pred, "methods": {}, "pairs": {}}
        adjusted = {}
        for m in methods:
            h = heatmaps(br.model, cells.x, m, pred, params=method_params.get(m), batch_size=batch_size,
                         seed=seed, device=dev)
            rec["methods"][m] = {
                k: torch.from_numpy(np.asarray(v, dtype=np.float64))
                for k, v in score_heatmaps(h, cells.heatmap, fp_rule=fp_rule).items()
            }
            if any(m in p for p in PAIRS):
                adjusted[m] = metrics.channel_adjust(h)
            bar.update()
        for a, b in PAIRS:
            if a in adjusted and b in adjusted:
                rec["pairs"][f"{a}|{b}"] = torch.from_numpy(pearson(adjusted[a], adjusted[b]))
        out["branches"].append(rec)
    bar.close()
    return out


def evaluate(
    families: Mapping[str, Family],
    splits: Mapping[str, CellSplits],
    *,
    methods: Sequence[str],
    method_params: Mapping[str, Mapping[str, Any]],
    batch_size: int,
    seed: int,
    device: str | torch.device,
    progress: bool,
    fp_rule: str,
    use_cache: bool = True,
) -> Evaluation:
    """Heatmaps of every method x branch x test image (target = predicted class), five-band scored.

    families : name -> :class:`Family`; splits : name -> :class:`CellSplits` (all its ``test`` cells are
    scored); method_params : per-method keyword arguments (see :func:`resolve_params`, which ``seed``
    seeds); fp_rule : FP rule of the five-band score (:func:`score_heatmaps`).  Results are cached per
    family (key: the trained models, the test cells' description, methods, parameters, seed, FP rule).
    """
    other_fp_rule(fp_rule)  # an unknown rule fails before any heatmap is computed
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; the paper's methods are {list(METHODS)}")
    method_params = {k: dict(v) for k, v in method_params.items()}
    bad = sorted(set(method_params) - set(methods))
    if bad:
        raise ValueError(f"method_params for methods not evaluated: {bad}")
    missing = sorted(set(families) - set(splits))
    if missing:
        raise ValueError(f"no splits for families {missing}")
    dev = config.resolve_device(device)
    start = time.perf_counter()
    results, hits = {}, 0
    for name, fam in families.items():

        def build(fam=fam, name=name) -> dict[str, Any]:
            return _evaluate_family(fam, splits[name].test, methods, method_params, batch_size, seed, dev,
                                    progress, fp_rule)

        if not use_cache:
            results[name] = build()
            continue
        cfg = {
            "models": fam.key,
            "test": splits[name].key,
            "methods": list(methods),
            "method_params": method_params,
            "seed": seed,
            "variants": list(VARIANTS),
            "fp_rule": fp_rule,
            "pairs": [list(p) for p in PAIRS],
        }
        hits += cache.entry_path("synthetic_cells_eval", cache.key(cfg, EVAL_CODE)).exists()
        results[name] = cache.load_or_build("synthetic_cells_eval", cfg, build, code=EVAL_CODE)
    ev = _tabulate(families, {k: splits[k].test for k in families}, results, methods, fp_rule)
    ev.seconds = time.perf_counter() - start
    ev.from_cache = use_cache and hits == len(families)
    return ev


#: Code whose source is part of the evaluation cache key: this module's import closure (attribution,
#: metrics, models and data modules included).
EVAL_CODE = [sys.modules[__name__]]


def _score_frames(name: str, branch: int, method: str, arr: Mapping[str, np.ndarray], y: np.ndarray,
                  pred: np.ndarray) -> list[pd.DataFrame]:
    """One frame of per-sample scores per variant for one (family, branch, method)."""
    frames = []
    for variant in VARIANTS:
        frame = pd.DataFrame({f"{s}_{k}": arr[f"{variant}_{s}_{k}"] for s in STATS for k in ("avg", "best")})
        frame.insert(0, "correct", pred == y)
        frame.insert(0, "pred", pred)
        frame.insert(0, "y", y)
        frame.insert(0, "sample", np.arange(len(y)))
        frame.insert(0, "variant", variant)
        frame.insert(0, "method", method)
        frame.insert(0, "branch", branch)
        frame.insert(0, "family", name)
        frames.append(frame)
    return frames


def _roc_frames(name: str, branch: int, method: str, arr: Mapping[str, np.ndarray]) -> list[pd.DataFrame]:
    """The Fig. 4 points (soft and clamped thresholds) of one (family, branch, method)."""
    return [
        pd.DataFrame({"family": name, "branch": branch, "method": method, "variant": variant,
                      "m": np.arange(len(arr[f"{variant}_roc_fpr"])), "fpr": arr[f"{variant}_roc_fpr"],
                      "recall": arr[f"{variant}_roc_recall"]})
        for variant in ("soft", "clamped")
    ]


def _tabulate(
    families: Mapping[str, Family],
    tests: Mapping[str, data.Cells],
    results: Mapping[str, Any],
    methods: Sequence[str],
    fp_rule: str,
) -> Evaluation:
    rows, roc, acc, sim, dens = [], [], [], [], []
    for name, res in results.items():
        y = tests[name].y.numpy()
        for b, rec in enumerate(res["branches"]):
            pred = np.asarray(rec["pred"])
            br = families[name].branches[b]
            acc.append({"family": name, "branch": b + 1, "val_acc": br.val_acc,
                        "test_acc": float((pred == y).mean()), "stop": br.stop, "iterations": br.iterations,
                        "epochs": br.epochs})
            for m in methods:
                arr = {k: np.asarray(v) for k, v in rec["methods"][m].items()}
                rows += _score_frames(name, b + 1, m, arr, y, pred)
                roc += _roc_frames(name, b + 1, m, arr)
                dens.append({"family": name, "branch": b + 1, "method": m,
                             "density": float(arr["density"].mean())})
            for pair, r in rec["pairs"].items():
                a, c = pair.split("|")
                r = np.asarray(r)
                sim.append({"family": name, "branch": b + 1,
                            "pair": f"{attribution.LABELS[a]} vs {attribution.LABELS[c]}",
                            "correlation": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")})
    return Evaluation(
        samples=pd.concat(rows, ignore_index=True),
        roc=pd.concat(roc, ignore_index=True),
        accuracy=pd.DataFrame(acc),
        similarity=pd.DataFrame(sim),
        density=pd.DataFrame(dens),
        n_test=min(len(t) for t in tests.values()),
        fp_rule=fp_rule,
    )
