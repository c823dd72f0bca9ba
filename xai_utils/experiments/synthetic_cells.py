"""The synthetic_cells chapter's experiment (Tjoa & Guan, arXiv:2009.02899): data splits in shards,
base + branch training, heatmaps of 8 captum methods scored with the five-band score, galleries.

Protocol (paper sec. III-B): a *base model* per architecture family is trained continuously
(:func:`xai_utils.models.cached_classifier`); then ``n_branches`` *branch models* are trained on
from it in "regular evaluation mode": every ``val_every`` iterations the accuracy on one randomly
drawn validation shard is computed; training stops when it exceeds ``target_acc``, or when an
early-stopping counter reaches ``n_limit`` (no improvement: counter + 1; improvement: counter times
the refresh fraction ``refresh``), or when ``epochs`` are used up.  Branches differ by their seed
(batch order, shard draws, dropout).  Everything is cached in :mod:`xai_utils.cache`.

Evaluation (sec. III-C): heatmaps of the predicted class for every method, branch and test image,
scored with :func:`xai_utils.metrics.fiveband.five_band_scores` in the ``soft`` and ``clamped``
variants, plus an ``abs`` variant (|h| after channel adjustment, the paper's Fig. 6 suggestion).
"""

from __future__ import annotations

import inspect
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import cache
from .. import config as _config
from ..data.cells import BACKGROUND_NAMES, CLASS_NAMES, Cells, make_cells
from ..metrics import fiveband
from ..models import real as _real
from ..models import small as _small
from ..models import store as _store
from ..models import train as _train

PAPER = "synthetic_cells"
#: The paper's 8 captum methods (Integrated Gradients was left out there), in its order.
METHODS: tuple[str, ...] = (
    "saliency",
    "input_x_gradient",
    "deeplift",
    "guided_backprop",
    "guided_gradcam",
    "deconvolution",
    "gradient_shap",
    "deeplift_shap",
)
METHOD_LABELS: dict[str, str] = {
    "saliency": "Saliency",
    "input_x_gradient": "Input*Gradient",
    "deeplift": "DeepLift",
    "guided_backprop": "GuidedBackprop",
    "guided_gradcam": "GuidedGradCam",
    "deconvolution": "Deconvolution",
    "gradient_shap": "GradientShap",
    "deeplift_shap": "DeepLiftShap",
}
FAMILY_LABELS: dict[str, str] = {"resnet": "ResNet", "alexnet": "AlexNet", "vgg": "VGG"}
VARIANTS: tuple[str, ...] = ("soft", "clamped", "abs")
STATS: tuple[str, ...] = ("precision", "recall", "fpr", "accuracy")
FAMILY_KEYS = (
    "arch",
    "arch_kwargs",
    "image_size",
    "batch_size",
    "base_epochs",
    "base_schedule",
    "branch_epochs",
    "lr",
    "branch_lr",
    "n_limit",
    "refresh",
    "init_weights",
)
#: Pixels whose channel-adjusted |h| exceeds this count as "marked" in the density measure (t_0's inner band).
DENSITY_LEVEL = 0.3


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class CellSplits:
    """Training, validation (in shards) and evaluation cells of one image size.

    train, val, test : :class:`~xai_utils.data.cells.Cells`; ``val`` is cut into ``n_shards`` equal,
    class-balanced shards (:meth:`shard`).  ``key`` describes the generator call (cache keys).
    """

    train: Cells
    val: Cells
    test: Cells
    n_shards: int
    key: dict[str, Any]

    def shard(self, i: int) -> Cells:
        """Validation shard ``i`` (0-based)."""
        if not 0 <= i < self.n_shards:
            raise ValueError(f"shard {i} out of range 0..{self.n_shards - 1}")
        size = len(self.val) // self.n_shards
        return self.val.subset(slice(i * size, (i + 1) * size))


def make_splits(
    *, size: int, n_train: int, n_val_shards: int, shard_size: int, n_test: int, seed: int = 0
) -> CellSplits:
    """Generate the three splits with disjoint seeds (the paper: 32 / 8 / 8 shards of 200 images).

    Shards are class-balanced when ``shard_size`` is a multiple of 10 (classes are round-robin).
    """
    for name, value in (
        ("n_train", n_train),
        ("n_val_shards", n_val_shards),
        ("shard_size", shard_size),
        ("n_test", n_test),
    ):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    seeds = {"train": 1000 * seed + 11, "val": 1000 * seed + 22, "test": 1000 * seed + 33}
    key = {
        "generator": "make_cells",
        "size": size,
        "n_train": n_train,
        "n_val": n_val_shards * shard_size,
        "n_test": n_test,
        "seeds": seeds,
    }
    return CellSplits(
        train=make_cells(n_train, size=size, seed=seeds["train"]),
        val=make_cells(n_val_shards * shard_size, size=size, seed=seeds["val"]),
        test=make_cells(n_test, size=size, seed=seeds["test"]),
        n_shards=n_val_shards,
        key=key,
    )


def figure2_cells(size: int = 64, seed: int = 0) -> Cells:
    """One image of every class (columns) on every background (rows): 30 cells, ordered row-major."""
    return make_cells(30, size=size, seed=seed)


# ---------------------------------------------------------------------------- training


@dataclass
class Branch:
    """One branch model and how its regular-evaluation training went.

    history : one dict per validation (iteration, shard, shard_acc, n_early).
    stop : "target" (a shard beat target_acc), "early" (counter reached n_limit) or "epochs".
    val_acc : accuracy on all validation shards at the stop.
    """

    model: nn.Module
    history: list[dict[str, float]]
    stop: str
    iterations: int
    epochs: float
    val_acc: float


@dataclass
class Family:
    """Base model and branches of one architecture family, with the settings that made them."""

    name: str
    settings: dict[str, Any]
    base: Any  # xai_utils.models.TrainResult
    branches: list[Branch]
    key: str  # cache key of the branches (identifies the trained models)
    seconds: float = 0.0
    from_cache: bool = False


def check_family(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one entry of the ``families`` parameter; returns it as a plain dict."""
    missing = [k for k in FAMILY_KEYS if k not in spec]
    extra = sorted(set(spec) - set(FAMILY_KEYS))
    if missing or extra:
        raise ValueError(
            f"family {name!r}: missing keys {missing}, unknown keys {extra}; expected {list(FAMILY_KEYS)}"
        )
    known = sorted(_small.ARCHITECTURES) + sorted(_real.REAL_ARCHITECTURES)
    if spec["arch"] not in known:
        raise ValueError(f"family {name!r}: unknown arch {spec['arch']!r}; known: {known}")
    if not 0 < spec["refresh"] < 1:
        raise ValueError(f"family {name!r}: refresh fraction must lie in (0, 1), got {spec['refresh']}")
    for k in ("image_size", "batch_size", "branch_epochs", "n_limit"):
        if int(spec[k]) != spec[k] or spec[k] < 1:
            raise ValueError(f"family {name!r}: {k} must be a positive integer, got {spec[k]!r}")
    if int(spec["base_epochs"]) != spec["base_epochs"] or spec["base_epochs"] < 0:
        raise ValueError(f"family {name!r}: base_epochs must be an integer >= 0, got {spec['base_epochs']!r}")
    return dict(spec)


def early_stopping_step(
    n_early: float, best: float, acc: float, *, target_acc: float, refresh: float, n_limit: float
) -> tuple[float, float, str]:
    """One validation of the paper's regular evaluation mode: returns (n_early, best, stop).

    acc > target_acc -> stop "target"; else an improvement over ``best`` multiplies the counter by
    ``refresh`` and no improvement adds one; the counter reaching ``n_limit`` -> stop "early"; else "".
    """
    if acc > target_acc:
        return n_early, max(best, acc), "target"
    n_early = n_early * refresh if acc > best else n_early + 1
    return n_early, max(best, acc), "early" if n_early >= n_limit else ""


def train_branch(
    model: nn.Module,
    x_train: Tensor,
    y_train: Tensor,
    val_shards: Sequence[tuple[Tensor, Tensor]],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    val_every: int = 4,
    target_acc: float = 0.96,
    n_limit: int = 24,
    refresh: float = 0.4,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Train ``model`` in place in the paper's regular evaluation mode (sec. III-B); returns a record.

    model : classifier holding the base weights; x_train : (N, C, H, W) in [0, 1]; y_train : (N,);
    val_shards : list of (x, y) shards.  Adam(lr, weight_decay).  Every ``val_every`` iterations one
    shard (seeded draw) is evaluated: accuracy > ``target_acc`` stops training; otherwise the counter
    n_early grows by one without improvement over the best shard accuracy so far, and is multiplied by
    ``refresh`` on improvement; n_early >= ``n_limit`` stops.  The final weights are kept.
    Returns {"history", "stop", "iterations", "epochs", "val_acc"}.
    """
    if not val_shards:
        raise ValueError("need at least one validation shard")
    if not 0 < refresh < 1 or n_limit < 1 or val_every < 1 or epochs < 1:
        raise ValueError(
            f"need 0 < refresh < 1, n_limit >= 1, val_every >= 1, epochs >= 1; got "
            f"{refresh}, {n_limit}, {val_every}, {epochs}"
        )
    dev = _config.resolve_device(device)
    _config.seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(dev)
    opt = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
    )
    n = len(x_train)
    history: list[dict[str, float]] = []
    best, n_early, it, stop = -1.0, 0.0, 0, "epochs"
    bar = _config.progress(total=epochs * -(-n // batch_size), desc="branch", disable=not progress, leave=False)
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            if len(idx) < 2:  # BatchNorm cannot train on a single image
                continue
            model.train()
            loss = F.cross_entropy(model(x_train[idx].to(dev)), y_train[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            bar.update()
            if it % val_every:
                continue
            model.eval()
            s = int(torch.randint(len(val_shards), (1,), generator=gen))
            acc = _train.accuracy(model, *val_shards[s], device=dev)
            n_early, best, verdict = early_stopping_step(
                n_early, best, acc, target_acc=target_acc, refresh=refresh, n_limit=n_limit
            )
            history.append({"iteration": it, "shard": s, "shard_acc": acc, "n_early": n_early})
            if verdict:
                stop = verdict
                break
        if stop != "epochs":
            break
    bar.close()
    model.eval()
    x_val = torch.cat([x for x, _ in val_shards])
    y_val = torch.cat([y for _, y in val_shards])
    return {
        "history": history,
        "stop": stop,
        "iterations": it,
        "epochs": it * batch_size / n,
        "val_acc": _train.accuracy(model, x_val, y_val, device=dev),
    }


def _build(arch: str, arch_kwargs: Mapping[str, Any]) -> nn.Module:
    """A model of ``xai_utils.models`` (small or real registry) from keyword arguments incl. num_classes."""
    builders = {**_small.ARCHITECTURES, **_real.REAL_ARCHITECTURES}
    if arch not in builders:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(builders)}")
    return builders[arch](**arch_kwargs)


def _pretrained_state(arch: str, arch_kwargs: Mapping[str, Any], path: str, seed: int) -> dict[str, Tensor]:
    """A ``num_classes``-way state dict: local (e.g. ImageNet) weights for every tensor whose name and
    shape fit, fresh seeded weights elsewhere (the new head).  A relative ``path`` is relative to
    :func:`xai_utils.config.data_root`."""
    source = _build(arch, {**arch_kwargs, "num_classes": 1000})
    full = Path(path).expanduser()
    _real.load_checkpoint(source, full if full.is_absolute() else _config.data_root() / full, preset="full")
    _config.seed_everything(seed)
    state = _build(arch, arch_kwargs).state_dict()
    loaded = source.state_dict()
    return {k: (loaded[k] if k in loaded and loaded[k].shape == v.shape else v) for k, v in state.items()}


def _state_of(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_family(
    name: str,
    spec: Mapping[str, Any],
    splits: CellSplits,
    *,
    n_branches: int = 5,
    target_acc: float = 0.96,
    val_every: int = 4,
    weight_decay: float = 1e-5,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    retrain: bool = False,
) -> Family:
    """Base model (continuous training) and ``n_branches`` branches (regular evaluation mode): the
    shipped weights (``data/models``) unless ``retrain``, else trained and cached.

    spec : one entry of the chapter's ``families`` parameter (see :data:`FAMILY_KEYS`):
    arch / arch_kwargs (a builder of ``xai_utils.models``), image_size, batch_size, base_epochs,
    base_schedule ("constant" as the paper's Adam, or "onecycle" / "cosine"), branch_epochs, lr (base),
    branch_lr (the paper uses lr for both), n_limit, refresh, init_weights (local checkpoint path or ""
    for random init).
    """
    spec = check_family(name, spec)
    if splits.train.x.shape[-1] != spec["image_size"]:
        raise ValueError(
            f"family {name!r} wants {spec['image_size']} px images, splits have {splits.train.x.shape[-1]} px"
        )
    if n_branches < 1:
        raise ValueError(f"n_branches must be >= 1, got {n_branches}")
    start = time.perf_counter()
    dev = _config.resolve_device(device)
    arch_kwargs = {"num_classes": len(CLASS_NAMES), **spec["arch_kwargs"]}
    if (
        spec["arch"] in _small.ARCHITECTURES
        and "image_size" in inspect.signature(_small.ARCHITECTURES[spec["arch"]]).parameters
    ):
        arch_kwargs.setdefault("image_size", spec["image_size"])
    if spec["arch"] in _real.REAL_ARCHITECTURES:  # pretrained torchvision nets keep their ImageNet statistics
        arch_kwargs.setdefault("mean", list(_real.IMAGENET_MEAN))
        arch_kwargs.setdefault("std", list(_real.IMAGENET_STD))
    init_state = (
        _pretrained_state(spec["arch"], arch_kwargs, spec["init_weights"], seed)
        if spec["init_weights"]
        else None
    )
    train_kwargs = {
        "epochs": max(1, spec["base_epochs"]),
        "batch_size": spec["batch_size"],
        "lr": spec["lr"],
        "optimizer": "adam",
        "weight_decay": weight_decay,
        "patience": None,
        "schedule": spec["base_schedule"],
        "seed": seed,
        "augment": False,
        "init_state": init_state,
    }
    if spec["base_epochs"] == 0:  # no continuous phase: the base is the initial model
        train_kwargs["lr"] = 0.0
    shards = [(splits.shard(i).x, splits.shard(i).y) for i in range(splits.n_shards)]
    base = _train.cached_classifier(
        spec["arch"],
        arch_kwargs,
        train_kwargs,
        splits.key,
        splits.train.x,
        splits.train.y,
        splits.val.x,
        splits.val.y,
        device=dev,
        progress=progress,
        retrain=retrain,
    )
    branch_kwargs = {
        "epochs": spec["branch_epochs"],
        "batch_size": spec["batch_size"],
        "lr": spec["branch_lr"],
        "weight_decay": weight_decay,
        "val_every": val_every,
        "target_acc": target_acc,
        "n_limit": spec["n_limit"],
        "refresh": spec["refresh"],
    }
    cfg = {
        "family": name,
        "arch": spec["arch"],
        "arch_kwargs": arch_kwargs,
        "base_train": {k: v for k, v in train_kwargs.items() if k != "init_state"},
        "init_weights": spec["init_weights"],
        "data": splits.key,
        "n_shards": splits.n_shards,
        "branch": branch_kwargs,
        "n_branches": n_branches,
        "seed": seed,
    }
    base_state = _state_of(base.model)
    built = []

    def build() -> dict[str, Any]:
        out = []
        for b in _config.progress(range(n_branches), desc=f"{name} branches", disable=not progress, leave=False):
            model = _build(base.arch, base.arch_kwargs)
            model.load_state_dict(base_state)
            record = train_branch(
                model,
                splits.train.x,
                splits.train.y,
                shards,
                seed=seed * 100 + b + 1,
                device=dev,
                **branch_kwargs,
            )
            built.append(model)
            out.append({"state_dict": _state_of(model), **record})
        return {"branches": out}

    code = [sys.modules[__name__]]
    payload = _store.load_or_train("synthetic_cells_branches", cfg, build, code=code, retrain=retrain)
    branches = []
    for b, rec in enumerate(payload["branches"]):
        if built:
            model = built[b]
        else:
            model = _build(base.arch, base.arch_kwargs)
            model.load_state_dict(rec["state_dict"])
        model.to(dev).eval()
        branches.append(
            Branch(
                model=model,
                history=list(rec["history"]),
                stop=str(rec["stop"]),
                iterations=int(rec["iterations"]),
                epochs=float(rec["epochs"]),
                val_acc=float(rec["val_acc"]),
            )
        )
    return Family(
        name=name,
        settings=spec,
        base=base,
        branches=branches,
        key=cache.key(cfg, code),
        seconds=time.perf_counter() - start,
        from_cache=not built,
    )


def splits_for(
    families: Mapping[str, Mapping[str, Any]],
    *,
    n_train: int,
    n_val_shards: int,
    shard_size: int,
    n_test: int,
    seed: int = 0,
) -> dict[str, CellSplits]:
    """:func:`make_splits` for every family's ``image_size`` (families of one size share the images)."""
    by_size: dict[int, CellSplits] = {}
    out = {}
    for name, spec in families.items():
        size = int(check_family(name, spec)["image_size"])
        if size not in by_size:
            by_size[size] = make_splits(
                size=size,
                n_train=n_train,
                n_val_shards=n_val_shards,
                shard_size=shard_size,
                n_test=n_test,
                seed=seed,
            )
        out[name] = by_size[size]
    return out


def train_families(
    families: Mapping[str, Mapping[str, Any]],
    splits: Mapping[str, CellSplits],
    *,
    n_branches: int = 5,
    target_acc: float = 0.96,
    val_every: int = 4,
    weight_decay: float = 1e-5,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
    retrain: bool = False,
) -> dict[str, Family]:
    """:func:`train_family` for every entry of ``families`` (name -> spec), on ``splits[name]``."""
    return {
        name: train_family(
            name,
            spec,
            splits[name],
            n_branches=n_branches,
            target_acc=target_acc,
            val_every=val_every,
            weight_decay=weight_decay,
            seed=seed,
            device=device,
            progress=progress,
            retrain=retrain,
        )
        for name, spec in families.items()
    }


# ---------------------------------------------------------------------------- evaluation


def _predict(model: nn.Module, x: Tensor, device: torch.device, chunk: int) -> Tensor:
    with torch.no_grad():
        return torch.cat([model(xc.to(device)).argmax(1).cpu() for xc in x.split(chunk)])


def resolve_params(
    method: str, params: Mapping[str, Any] | None, x: Tensor, *, seed: int = 0
) -> dict[str, Any]:
    """Keyword arguments for ``attribute(method, ...)``; ``baselines="near_zero"`` becomes the authors'
    SHAP baselines: ``n_baselines`` images of N(0, ``baseline_std``^2) noise (their code: 4 images,
    std 0.001), seeded and shared by all inputs.  x : (N, C, H, W) gives shape, device and dtype."""
    kw = dict(params or {})
    if kw.get("baselines") == "near_zero":
        n, std = int(kw.pop("n_baselines", 4)), float(kw.pop("baseline_std", 1e-3))
        gen = torch.Generator().manual_seed(seed)
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
    params: Mapping[str, Any] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """Raw signed heatmaps of ``method`` for ``target``, computed in batches.

    x : (N, C, H, W) in [0, 1]; target : (N,); params : keyword arguments of the method (see
    :func:`resolve_params`).  Returns float64 (N, C, H, W) numpy (CAM methods: C = 1).
    """
    from ..attribution import attribute

    dev = _config.resolve_device(device)
    kw = resolve_params(method, params, x[:1].to(dev))
    out = []
    with warnings.catch_warnings():  # captum's max-unpooling is not deterministic on CUDA; CPU results repeat
        warnings.filterwarnings("ignore", message=".*does not have a deterministic implementation.*")
        for xc, tc in zip(x.split(batch_size), target.split(batch_size), strict=True):
            out.append(attribute(method, model, xc.to(dev), tc.to(dev), **kw).detach().cpu().double())
    return torch.cat(out).numpy()


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample Pearson correlation of (N, H, W) maps; NaN where a map is constant (e.g. DeepLift of an
    all-black image, which equals its baseline), left out of the means."""
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), np.nan)


def score_heatmaps(h: np.ndarray, ground_truth: Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """Five-band scores of raw heatmaps h (N, C, H, W) in the three variants.

    Returns arrays: ``{variant}_{stat}_{avg|best}`` (N,) for variant in :data:`VARIANTS` and stat in
    :data:`STATS`, ``{soft|clamped}_roc_fpr`` / ``_roc_recall`` (M,) (Fig. 4 points) and ``density`` (N,),
    the share of pixels with adjusted |h| > :data:`DENSITY_LEVEL`.
    """
    out: dict[str, np.ndarray] = {}
    adjusted = fiveband.channel_adjust(h)
    runs = {
        "soft": fiveband.five_band_scores(adjusted, ground_truth),
        "clamped": fiveband.five_band_scores(h, ground_truth, variant="clamped"),
        "abs": fiveband.five_band_scores(np.abs(adjusted), ground_truth),
    }
    for variant, s in runs.items():
        for stat in STATS:
            out[f"{variant}_{stat}_avg"] = s.avg(stat)
            out[f"{variant}_{stat}_best"] = s.best(stat)
        if variant != "abs":
            out[f"{variant}_roc_fpr"], out[f"{variant}_roc_recall"] = s.roc_points()
    out["density"] = (np.abs(adjusted) > DENSITY_LEVEL).mean(axis=(1, 2))
    return out


#: Method pairs whose per-sample map correlation is reported (the paper's Fig. 6 comparison).
PAIRS: tuple[tuple[str, str], ...] = (
    ("deeplift", "deeplift_shap"),
    ("saliency", "deeplift"),
    ("input_x_gradient", "deeplift"),
)


@dataclass
class Evaluation:
    """Per-sample five-band scores and the curves of Fig. 4 for every family, branch and method.

    samples : one row per (family, branch, method, variant, sample) with y, pred, correct and the
    ``{stat}_avg`` / ``{stat}_best`` columns.  roc : (family, branch, method, variant, m, fpr, recall).
    accuracy : (family, branch, val_acc, test_acc, stop, iterations, epochs).  similarity : mean
    per-sample Pearson correlation of adjusted maps for :data:`PAIRS`.  density : mean marked share.
    """

    samples: pd.DataFrame
    roc: pd.DataFrame
    accuracy: pd.DataFrame
    similarity: pd.DataFrame
    density: pd.DataFrame
    n_test: int
    seconds: float = 0.0
    from_cache: bool = False


def _evaluate_family(
    fam: Family,
    cells: Cells,
    methods: Sequence[str],
    method_params: Mapping[str, Any],
    batch_size: int,
    dev: torch.device,
    progress: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {"branches": []}
    bar = _config.progress(
        total=len(fam.branches) * len(methods), desc=f"heatmaps {fam.name}", disable=not progress, leave=False
    )
    for br in fam.branches:
        pred = _predict(br.model, cells.x, dev, batch_size)
        rec: dict[str, Any] = {"pred": pred, "methods": {}, "pairs": {}}
        adjusted = {}
        for m in methods:
            h = heatmaps(
                br.model, cells.x, m, pred, params=method_params.get(m), batch_size=batch_size, device=dev
            )
            rec["methods"][m] = {
                k: torch.from_numpy(np.asarray(v, dtype=np.float64))
                for k, v in score_heatmaps(h, cells.heatmap).items()
            }
            if any(m in p for p in PAIRS):
                adjusted[m] = fiveband.channel_adjust(h)
            bar.update()
        for a, b in PAIRS:
            if a in adjusted and b in adjusted:
                rec["pairs"][f"{a}|{b}"] = torch.from_numpy(_pearson(adjusted[a], adjusted[b]))
        out["branches"].append(rec)
    bar.close()
    return out


def evaluate(
    families: Mapping[str, Family],
    splits: Mapping[str, CellSplits],
    *,
    methods: Sequence[str] = METHODS,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 64,
    use_cache: bool = True,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> Evaluation:
    """Heatmaps of every method x branch x test image (target = predicted class), five-band scored.

    families : name -> :class:`Family`; splits : name -> :class:`CellSplits` (its ``test`` cells are
    used); method_params : per-method keyword arguments (see :func:`resolve_params`).  Results are
    cached per family (key: the trained models, the test cells' description, methods, parameters).
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; the paper's methods are {list(METHODS)}")
    method_params = {k: dict(v) for k, v in (method_params or {}).items()}
    bad = sorted(set(method_params) - set(methods))
    if bad:
        raise ValueError(f"method_params for methods not evaluated: {bad}")
    missing = sorted(set(families) - set(splits))
    if missing:
        raise ValueError(f"no splits for families {missing}")
    dev = _config.resolve_device(device)
    start = time.perf_counter()
    results, hits = {}, 0
    for name, fam in families.items():

        def build(fam=fam, name=name) -> dict[str, Any]:
            return _evaluate_family(fam, splits[name].test, methods, method_params, batch_size, dev, progress)

        if not use_cache:
            results[name] = build()
            continue
        cfg = {
            "models": fam.key,
            "test": splits[name].key,
            "methods": list(methods),
            "method_params": method_params,
            "variants": list(VARIANTS),
            "pairs": [list(p) for p in PAIRS],
        }
        hits += cache.entry_path("synthetic_cells_eval", cache.key(cfg, EVAL_CODE)).exists()
        results[name] = cache.load_or_build("synthetic_cells_eval", cfg, build, code=EVAL_CODE)
    ev = _tabulate(families, {k: splits[k].test for k in families}, results, methods)
    ev.seconds = time.perf_counter() - start
    ev.from_cache = use_cache and hits == len(families)
    return ev


#: Code whose source is part of the evaluation cache key: this module's import closure (attribution,
#: metrics, models and data modules included).
EVAL_CODE = [sys.modules[__name__]]


def _tabulate(
    families: Mapping[str, Family],
    tests: Mapping[str, Cells],
    results: Mapping[str, Any],
    methods: Sequence[str],
) -> Evaluation:
    rows, roc, acc, sim, dens = [], [], [], [], []
    for name, res in results.items():
        y = tests[name].y.numpy()
        for b, rec in enumerate(res["branches"]):
            pred = np.asarray(rec["pred"])
            br = families[name].branches[b]
            acc.append(
                {
                    "family": name,
                    "branch": b + 1,
                    "val_acc": br.val_acc,
                    "test_acc": float((pred == y).mean()),
                    "stop": br.stop,
                    "iterations": br.iterations,
                    "epochs": br.epochs,
                }
            )
            for m in methods:
                arr = {k: np.asarray(v) for k, v in rec["methods"][m].items()}
                for variant in VARIANTS:
                    frame = pd.DataFrame(
                        {f"{s}_{k}": arr[f"{variant}_{s}_{k}"] for s in STATS for k in ("avg", "best")}
                    )
                    frame.insert(0, "correct", pred == y)
                    frame.insert(0, "pred", pred)
                    frame.insert(0, "y", y)
                    frame.insert(0, "sample", np.arange(len(y)))
                    frame.insert(0, "variant", variant)
                    frame.insert(0, "method", m)
                    frame.insert(0, "branch", b + 1)
                    frame.insert(0, "family", name)
                    rows.append(frame)
                for variant in ("soft", "clamped"):
                    fpr, rec_ = arr[f"{variant}_roc_fpr"], arr[f"{variant}_roc_recall"]
                    roc.append(
                        pd.DataFrame(
                            {
                                "family": name,
                                "branch": b + 1,
                                "method": m,
                                "variant": variant,
                                "m": np.arange(len(fpr)),
                                "fpr": fpr,
                                "recall": rec_,
                            }
                        )
                    )
                dens.append(
                    {"family": name, "branch": b + 1, "method": m, "density": float(arr["density"].mean())}
                )
            for pair, r in rec["pairs"].items():
                a, c = pair.split("|")
                sim.append(
                    {
                        "family": name,
                        "branch": b + 1,
                        "pair": f"{METHOD_LABELS[a]} vs {METHOD_LABELS[c]}",
                        "correlation": float(np.nanmean(np.asarray(r)))
                        if np.isfinite(np.asarray(r)).any()
                        else float("nan"),
                    }
                )
    n_test = min(len(t) for t in tests.values())
    return Evaluation(
        samples=pd.concat(rows, ignore_index=True),
        roc=pd.concat(roc, ignore_index=True),
        accuracy=pd.DataFrame(acc),
        similarity=pd.DataFrame(sim),
        density=pd.DataFrame(dens),
        n_test=n_test,
    )


# ---------------------------------------------------------------------------- summaries


def points(samples: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3 points: per (variant, family, method, branch) mean and std over samples of P/R avg/best."""
    cols = ["precision_avg", "recall_avg", "precision_best", "recall_best", "fpr_avg"]
    g = samples.groupby(["variant", "family", "method", "branch"], sort=False)[cols]
    out = g.mean().join(g.std(ddof=0), rsuffix="_std")
    return out.reset_index()


def method_table(samples: pd.DataFrame, variant: str = "soft", decimals: int = 3) -> pd.DataFrame:
    """Mean over samples and branches of R/P (avg and best) and FPR per method (rows) and family (columns)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
    sel = samples[samples["variant"] == variant]
    cols = {
        "recall_avg": "R avg",
        "precision_avg": "P avg",
        "recall_best": "R best",
        "precision_best": "P best",
        "fpr_avg": "FPR avg",
    }
    t = sel.groupby(["method", "family"], sort=False)[list(cols)].mean().rename(columns=cols)
    t = t.unstack("family").swaplevel(0, 1, axis=1)
    fams = list(dict.fromkeys(sel["family"]))
    t = t.reindex(columns=pd.MultiIndex.from_product([fams, list(cols.values())]))
    t.index = [METHOD_LABELS[m] for m in t.index]
    t.columns = pd.MultiIndex.from_tuples([(FAMILY_LABELS.get(f, f), c) for f, c in t.columns])
    return t.round(decimals)


def abs_gain(samples: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Recall (avg over thresholds) of signed vs |h| adjusted maps, per method and family, and the gain."""
    sel = samples[samples["variant"].isin(["soft", "abs"])]
    t = sel.groupby(["method", "family", "variant"], sort=False)["recall_avg"].mean().unstack("variant")
    t["gain"] = t["abs"] - t["soft"]
    t = t.rename(columns={"soft": "R avg signed", "abs": "R avg |h|"})[["R avg signed", "R avg |h|", "gain"]]
    t = t.unstack("family").swaplevel(0, 1, axis=1)
    fams = list(dict.fromkeys(sel["family"]))
    t = t.reindex(columns=pd.MultiIndex.from_product([fams, ["R avg signed", "R avg |h|", "gain"]]))
    t.index = [METHOD_LABELS[m] for m in t.index]
    t.columns = pd.MultiIndex.from_tuples([(FAMILY_LABELS.get(f, f), c) for f, c in t.columns])
    return t.round(decimals)


def similarity_table(ev: Evaluation, decimals: int = 3) -> pd.DataFrame:
    """Mean per-sample Pearson correlation of channel-adjusted maps for :data:`PAIRS` (rows: families)."""
    t = ev.similarity.groupby(["family", "pair"], sort=False)["correlation"].mean().unstack("pair")
    t.index = [FAMILY_LABELS.get(f, f) for f in t.index]
    return t.round(decimals)


def sample_spread(samples: pd.DataFrame, variant: str = "soft", decimals: int = 3) -> pd.DataFrame:
    """Spread of the per-sample scores and the standard error of the Fig. 3 means, per family.

    Columns: n samples per point, median over points of the per-sample std of R avg / P avg, and the
    largest standard error (std / sqrt(n)) of any Fig. 3 point.
    """
    sel = samples[samples["variant"] == variant]
    g = sel.groupby(["family", "method", "branch"])[["recall_avg", "precision_avg"]]
    std, n = g.std(ddof=0), g.size()
    se = std.div(np.sqrt(n), axis=0)
    t = pd.DataFrame(
        {
            "samples per point": n.groupby("family").min(),
            "median std R avg": std["recall_avg"].groupby("family").median(),
            "median std P avg": std["precision_avg"].groupby("family").median(),
            "max s.e. of a mean": se.max(axis=1).groupby("family").max(),
        }
    )
    t.index = [FAMILY_LABELS.get(f, f) for f in t.index]
    return t.round(decimals)


def table1(
    families: Mapping[str, Family], accuracy: pd.DataFrame, numbers: pd.DataFrame, decimals: int = 3
) -> pd.DataFrame:
    """The paper's Table I beside ours: H=W, n_batch, epochs (TC, TR), n_l, r_f, mean accuracy of 5 branches.

    numbers : :func:`xai_utils.report.paper_numbers` of this paper (ids ``table1.<family>.<column>``).
    """
    cols = {
        "hw": "H,W",
        "batch": "n_batch",
        "tc_epochs": "TC n_ep",
        "tr_epochs": "TR n_ep",
        "n_l": "n_l",
        "r_f": "r_f",
        "acc": "<Acc.>",
    }
    rows = []
    for name, fam in families.items():
        s = fam.settings
        mean_acc = accuracy.loc[accuracy["family"] == name, "test_acc"].mean()
        ours = {
            "hw": s["image_size"],
            "batch": s["batch_size"],
            "tc_epochs": s["base_epochs"],
            "tr_epochs": s["branch_epochs"],
            "n_l": s["n_limit"],
            "r_f": s["refresh"],
            "acc": mean_acc,
        }
        for who, get in (
            ("paper", lambda c, name=name: numbers["value"].get(f"table1.{name}.{c}", np.nan)),
            ("ours", lambda c, ours=ours: ours[c]),
        ):
            rows.append(
                {
                    "family": FAMILY_LABELS.get(name, name),
                    "": who,
                    **{label: get(c) for c, label in cols.items()},
                }
            )
    return pd.DataFrame(rows).set_index(["family", ""]).astype(float).round(decimals)


def branch_table(accuracy: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Per family and branch: how the regular-evaluation phase stopped and the accuracies reached."""
    t = accuracy.copy()
    t["family"] = t["family"].map(lambda f: FAMILY_LABELS.get(f, f))
    return t.set_index(["family", "branch"]).round(decimals)


def roc_summary(roc: pd.DataFrame, variant: str = "soft") -> pd.DataFrame:
    """Per family and method (branches pooled): best Youden index max_m (recall - FPR) and where it lies."""
    sel = roc[roc["variant"] == variant].copy()
    sel["youden"] = sel["recall"] - sel["fpr"]
    g = sel.groupby(["family", "method"], sort=False)
    best = sel.loc[g["youden"].idxmax()]
    out = pd.DataFrame(
        {
            "family": best["family"].to_numpy(),
            "method": best["method"].to_numpy(),
            "max recall - FPR": best["youden"].to_numpy(),
            "recall there": best["recall"].to_numpy(),
            "FPR there": best["fpr"].to_numpy(),
            "mean FPR": g["fpr"].mean().to_numpy(),
            "mean recall": g["recall"].mean().to_numpy(),
        }
    )
    out["family"] = out["family"].map(lambda f: FAMILY_LABELS.get(f, f))
    out["method"] = out["method"].map(METHOD_LABELS)
    return out.set_index(["family", "method"]).round(3)


# ---------------------------------------------------------------------------- galleries


@dataclass
class GalleryData:
    """A few test images of one family (branch 1) with every method's raw heatmap.

    x (K, 3, H, W), heatmap (K, H, W), y / pred (K,) numpy, maps : method -> (K, C, H, W) float64.
    """

    family: str
    x: np.ndarray
    heatmap: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    maps: dict[str, np.ndarray] = field(default_factory=dict)


def gallery_data(
    fam: Family,
    cells: Cells,
    *,
    classes: Sequence[int] = (3, 1, 8),
    n_wrong: int = 2,
    methods: Sequence[str] = METHODS,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    device: str | torch.device = "auto",
) -> GalleryData:
    """Pick, for branch 1 of ``fam``, the first correctly predicted test image of each class in
    ``classes`` and the first ``n_wrong`` wrong predictions, and compute every method's heatmap."""
    dev = _config.resolve_device(device)
    model = fam.branches[0].model
    pred = _predict(model, cells.x, dev, 128)
    ok = (pred == cells.y).numpy()
    idx = [
        int(np.flatnonzero(ok & (cells.y.numpy() == c))[0])
        for c in classes
        if (ok & (cells.y.numpy() == c)).any()
    ]
    idx += [int(i) for i in np.flatnonzero(~ok)[:n_wrong]]
    sel = cells.subset(idx)
    target = pred[idx]
    params = method_params or {}
    maps = {m: heatmaps(model, sel.x, m, target, params=params.get(m), device=dev) for m in methods}
    return GalleryData(
        family=fam.name,
        x=sel.x.numpy(),
        heatmap=sel.heatmap.numpy(),
        y=sel.y.numpy(),
        pred=target.numpy(),
        maps=maps,
    )


def galleries(
    families: Mapping[str, Family],
    splits: Mapping[str, CellSplits],
    *,
    classes: Sequence[int] = (3, 1, 8),
    n_wrong: int = 2,
    methods: Sequence[str] = METHODS,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    device: str | torch.device = "auto",
) -> dict[str, GalleryData]:
    """:func:`gallery_data` for every family on its test cells."""
    return {
        name: gallery_data(
            fam,
            splits[name].test,
            classes=classes,
            n_wrong=n_wrong,
            methods=methods,
            method_params=method_params,
            device=device,
        )
        for name, fam in families.items()
    }


# ---------------------------------------------------------------------------- the paper's claims, checked

#: A Fig. 3 point counts as "low recall" below this average recall.
LOW_RECALL = 0.5
#: A Fig. 4 curve lies in the "poor ROC region" when max over thresholds of (recall - FPR) stays below this.
POOR_YOUDEN = 0.3
#: Maps "look alike" when their mean per-sample Pearson correlation reaches this.
ALIKE = 0.8
#: Clamping "changes" a score when the mean absolute change of a family's points exceeds this.
CHANGE = 0.01
#: Accuracy that counts as "very high" for the branch models (paper: 0.951-0.986).
HIGH_ACC = 0.9


@dataclass(frozen=True)
class Check:
    """Our side of one of the paper's claims: a sentence with our numbers and whether the claim holds."""

    ours: str
    holds: bool


_NOT_EVALUATED = "not evaluated in this run"


def _fam(f: str) -> str:
    return FAMILY_LABELS.get(f, f)


def checks(ev: Evaluation) -> dict[str, Check]:
    """Every claim the chapter tests, computed from the evaluation (thresholds are the constants above).

    Keys: accuracy, recall_low, top_recall, saliency_fpr, deconvolution, poor_roc, dl_dls_alike,
    abs_recall, clamping, sparsity, recall_order.  ``holds`` is None when the methods or families a
    claim is about were not evaluated.
    """
    out: dict[str, Check] = {}
    acc = ev.accuracy.groupby("family", sort=False)["test_acc"].mean()
    out["accuracy"] = Check(
        ", ".join(f"{_fam(f)} {v:.3f}" for f, v in acc.items()), bool((acc >= HIGH_ACC).all())
    )

    soft = ev.samples[ev.samples["variant"] == "soft"]
    cols = ["recall_avg", "precision_avg", "fpr_avg"]
    pts = soft.groupby(["family", "method", "branch"], sort=False)[cols].mean()
    low = (pts["recall_avg"] < LOW_RECALL).mean()
    out["recall_low"] = Check(
        f"{low:.0%} of the {len(pts)} points have R_avg < {LOW_RECALL}; median R_avg "
        f"{pts['recall_avg'].median():.3f}",
        bool(low >= 0.5),
    )

    fm = soft.groupby(["family", "method"], sort=False)[cols].mean()
    f_top, m_top = fm["recall_avg"].idxmax()
    testable = "alexnet" in acc.index and "saliency" in set(soft["method"])
    out["top_recall"] = Check(
        f"highest R_avg: {METHOD_LABELS[m_top]} on {_fam(f_top)} ({fm['recall_avg'].max():.3f})",
        (f_top, m_top) == ("alexnet", "saliency") if testable else None,
    )

    per_fam = {f: g.droplevel(0) for f, g in fm.groupby(level=0, sort=False)}
    sal = {
        f: (g.loc["saliency", "fpr_avg"], g["fpr_avg"].median())
        for f, g in per_fam.items()
        if "saliency" in g.index and len(g) > 2
    }
    out["saliency_fpr"] = Check(
        "; ".join(f"{_fam(f)}: Saliency FPR {a:.3f} vs median {b:.3f}" for f, (a, b) in sal.items())
        or _NOT_EVALUATED,
        all(a > b for a, b in sal.values()) if sal else None,
    )

    dec = {f: g for f, g in per_fam.items() if "deconvolution" in g.index and len(g) > 2}
    ok = [
        bool(
            g.loc["deconvolution", "recall_avg"] >= g["recall_avg"].median()
            and g.loc["deconvolution", "precision_avg"] <= g["precision_avg"].median()
        )
        for g in dec.values()
    ]
    out["deconvolution"] = Check(
        "; ".join(
            f"{_fam(f)}: Deconvolution R {g.loc['deconvolution', 'recall_avg']:.3f} (median "
            f"{g['recall_avg'].median():.3f}), P {g.loc['deconvolution', 'precision_avg']:.3f} (median "
            f"{g['precision_avg'].median():.3f})"
            for f, g in dec.items()
        )
        or _NOT_EVALUATED,
        all(ok) if ok else None,
    )

    roc = (
        ev.roc[ev.roc["variant"] == "soft"]
        .groupby(["family", "method", "m"], sort=False)[["fpr", "recall"]]
        .mean()
    )
    youden = (roc["recall"] - roc["fpr"]).groupby(level=[0, 1], sort=False).max()
    poor = (youden < POOR_YOUDEN).mean()
    f_best, m_best = youden.idxmax()
    out["poor_roc"] = Check(
        f"{poor:.0%} of the {len(youden)} curves have max(recall - FPR) < {POOR_YOUDEN}; "
        f"best: {METHOD_LABELS[m_best]} on {_fam(f_best)} ({youden.max():.3f})",
        bool(poor > 0.5),
    )

    sim = (
        ev.similarity.groupby(["family", "pair"], sort=False)["correlation"].mean()
        if len(ev.similarity)
        else None
    )
    dl = "DeepLift vs DeepLiftShap"
    fams = [] if sim is None else [f for f in dict.fromkeys(ev.similarity["family"]) if (f, dl) in sim.index]
    text, ok = [], []
    for f in fams:
        others = {p: v for (ff, p), v in sim.items() if ff == f and p != dl}
        text.append(
            f"{_fam(f)}: r(DL, DLS) {sim[(f, dl)]:.3f}"
            + "".join(f", r({p.replace(' vs ', ', ')}) {v:.3f}" for p, v in others.items())
        )
        ok.append(bool(sim[(f, dl)] >= ALIKE and all(sim[(f, dl)] > v for v in others.values())))
    out["dl_dls_alike"] = Check("; ".join(text) or _NOT_EVALUATED, all(ok) if ok else None)

    both = ev.samples[
        ev.samples["variant"].isin(["soft", "abs"]) & ev.samples["method"].isin(["deeplift", "deeplift_shap"])
    ]
    r = both.groupby(["family", "method", "variant"], sort=False)["recall_avg"].mean().unstack("variant")
    out["abs_recall"] = Check(
        "; ".join(
            f"{_fam(f)} {METHOD_LABELS[m]}: R_avg {row['soft']:.3f} -> {row['abs']:.3f}"
            for (f, m), row in r.iterrows()
        )
        or _NOT_EVALUATED,
        bool((r["abs"] > r["soft"]).all()) if len(r) else None,
    )

    best = (
        ev.samples[ev.samples["variant"].isin(["soft", "clamped"])]
        .groupby(["family", "method", "branch", "variant"], sort=False)[["recall_best", "precision_best"]]
        .mean()
    )
    diff = best.xs("clamped", level="variant") - best.xs("soft", level="variant")
    change = diff.abs().mean(axis=1).groupby(level=0, sort=False).mean()
    better = (diff.sum(axis=1) > 0).groupby(level=0, sort=False).mean()
    out["clamping"] = Check(
        "; ".join(
            f"{_fam(f)}: mean |change| {change[f]:.3f}, {better[f]:.0%} of points better"
            for f in change.index
        ),
        bool((change > CHANGE).any()),
    )

    dens = ev.density.groupby("family", sort=False)["density"].mean()
    order = list(dens.sort_values().index)
    full = {"resnet", "vgg", "alexnet"} <= set(dens.index)
    out["sparsity"] = Check(
        "share of marked pixels: " + ", ".join(f"{_fam(f)} {dens[f]:.3f}" for f in order),
        order[:3] == ["resnet", "vgg", "alexnet"] if full and len(order) == 3 else None,
    )

    rec = soft.groupby("family", sort=False)["recall_avg"].mean()
    out["recall_order"] = Check(
        "mean R_avg: " + ", ".join(f"{_fam(f)} {v:.3f}" for f, v in rec.items()),
        bool(rec["alexnet"] > rec["vgg"] and rec.idxmin() == "resnet")
        if {"resnet", "vgg", "alexnet"} <= set(rec.index)
        else None,
    )
    return out


def headline(ev: Evaluation) -> pd.DataFrame:
    """A few named numbers of ours (also for :func:`xai_utils.report.record`): per family the mean
    test accuracy and the mean R_avg / P_avg / FPR_avg over methods, branches and samples (soft)."""
    soft = ev.samples[ev.samples["variant"] == "soft"]
    t = soft.groupby("family", sort=False)[["recall_avg", "precision_avg", "fpr_avg"]].mean()
    t.insert(0, "test_acc", ev.accuracy.groupby("family", sort=False)["test_acc"].mean())
    return t.round(4)


def protocol_numbers(
    splits: Mapping[str, CellSplits],
    *,
    n_branches: int,
    target_acc: float,
    val_every: int,
    weight_decay: float,
) -> dict[str, float]:
    """Our values of the paper's protocol numbers (ids of ``data/paper_numbers/synthetic_cells.yaml``)."""
    sp = next(iter(splits.values()))
    t, tc = fiveband.soft_thresholds(), fiveband.clamped_thresholds()
    return {
        "data.n_train": len(sp.train),
        "data.n_val": len(sp.val),
        "data.n_test": len(sp.test),
        "train.target_acc": target_acc,
        "train.val_every": val_every,
        "train.weight_decay": weight_decay,
        "train.n_branches": n_branches,
        "fiveband.d": float(t[1, 1] - t[0, 1]),
        "fiveband.n_soft": len(t) - 1,
        "fiveband.t55_outer": float(t[-1, 3]),
        "fiveband.t55_inner": float(t[-1, 2]),
        "fiveband.clamp": fiveband.CLAMP[1],
        "fiveband.clamped_d": float(tc[1, 1] - tc[0, 1]),
        "fiveband.clamped_n_soft": len(tc) - 1,
    }


def accuracy_numbers(ev: Evaluation) -> dict[str, float]:
    """``table1.<family>.acc`` -> our mean test accuracy of the branches (families the paper has)."""
    acc = ev.accuracy.groupby("family", sort=False)["test_acc"].mean()
    return {f"table1.{f}.acc": float(v) for f, v in acc.items() if f in FAMILY_LABELS}


# ---------------------------------------------------------------------------- plots


def _hide(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _show_map(ax, m: np.ndarray, title: str = "") -> None:
    ax.imshow(m, cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
    _hide(ax)
    if title:
        ax.set_title(title, fontsize=8)


def plot_cells(cells: Cells):
    """Fig. 2: the 10 cell types (columns) on the 3 backgrounds (rows 1-3) and their ground truth (rows 4-6)."""
    import matplotlib.pyplot as plt

    n_bg = len(BACKGROUND_NAMES)
    n_cls = len(CLASS_NAMES)
    fig, axes = plt.subplots(2 * n_bg, n_cls, figsize=(1.0 * n_cls, 1.05 * 2 * n_bg))
    for i in range(len(cells)):
        c, bg = int(cells.y[i]), int(cells.background[i])
        axes[bg, c].imshow(cells.x[i].permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[n_bg + bg, c].imshow(
            cells.heatmap[i].numpy(), cmap="Reds", vmin=0, vmax=1, interpolation="nearest"
        )
    for ax in axes.flat:
        _hide(ax)
    for c in range(n_cls):
        axes[0, c].set_title(f"{c}: {CLASS_NAMES[c]}", fontsize=7)
    for bg in range(n_bg):
        axes[bg, 0].set_ylabel(f"bg {bg}\n{BACKGROUND_NAMES[bg]}", fontsize=7)
        axes[n_bg + bg, 0].set_ylabel(f"$h_0$, bg {bg}", fontsize=7)
    fig.suptitle("Fig. 2: cell types on three backgrounds (top) and ground-truth heatmaps (bottom)")
    fig.tight_layout()
    return fig


def plot_precision_recall(pts: pd.DataFrame, *, errorbars: bool = True):
    """Fig. 3: precision vs recall per method (colour) and branch (one point each), std over samples as bars.

    Rows: (A) average over thresholds, (B) best, (C) best after clamping; columns: families.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    fams = list(dict.fromkeys(pts["family"]))
    panels = [
        ("soft", "avg", "(A) average"),
        ("soft", "best", "(B) best"),
        ("clamped", "best", "(C) best, clamped"),
    ]
    colors = dict(zip(METHODS, sns.color_palette("tab10", len(METHODS)), strict=True))
    fig, axes = plt.subplots(3, len(fams), figsize=(3.6 * len(fams), 9.6), squeeze=False)
    for r, (variant, stat, label) in enumerate(panels):
        for c, fam in enumerate(fams):
            ax = axes[r, c]
            sel = pts[(pts["variant"] == variant) & (pts["family"] == fam)]
            for m, grp in sel.groupby("method", sort=False):
                xr, yp = grp[f"recall_{stat}"], grp[f"precision_{stat}"]
                if errorbars:
                    ax.errorbar(
                        xr,
                        yp,
                        xerr=grp[f"recall_{stat}_std"],
                        yerr=grp[f"precision_{stat}_std"],
                        fmt="none",
                        ecolor=colors[m],
                        alpha=0.25,
                        lw=0.8,
                    )
                ax.scatter(xr, yp, s=14, color=colors[m], label=METHOD_LABELS[m], zorder=3)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel(f"recall ({stat})")
            ax.set_ylabel(f"precision ({stat})")
            ax.set_title(f"{label}: {FAMILY_LABELS.get(fam, fam)}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def plot_roc(roc: pd.DataFrame, variant: str = "soft"):
    """Fig. 4: mean FPR vs mean recall over the soft thresholds, per method (colour) and branch (one line each)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sel = roc[roc["variant"] == variant]
    fams = list(dict.fromkeys(sel["family"]))
    colors = dict(zip(METHODS, sns.color_palette("tab10", len(METHODS)), strict=True))
    fig, axes = plt.subplots(1, len(fams), figsize=(3.6 * len(fams), 3.9), squeeze=False)
    for c, fam in enumerate(fams):
        ax = axes[0, c]
        for (m, _b), grp in sel[sel["family"] == fam].groupby(["method", "branch"], sort=False):
            ax.plot(
                grp["fpr"],
                grp["recall"],
                color=colors[m],
                lw=1,
                alpha=0.8,
                marker=".",
                ms=2,
                label=METHOD_LABELS[m] if _b == 1 else None,
            )
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("FPR (mean over samples)")
        ax.set_ylabel("recall (mean over samples)")
        ax.set_title(FAMILY_LABELS.get(fam, fam))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def _title(g: GalleryData, k: int) -> str:
    return f"y={g.pred[k]}, y0={g.y[k]}"


def plot_channels(
    g: GalleryData, methods: Sequence[str] = ("saliency", "guided_gradcam", "deconvolution"), n: int = 2
):
    """Fig. 5: image, ground truth and the R, G, B channels of each method's heatmap (h / max|h|).

    Shows the first ``n`` correct predictions (any predictions if there is none)."""
    import matplotlib.pyplot as plt

    correct = ([k for k in range(len(g.y)) if g.y[k] == g.pred[k]] or list(range(len(g.y))))[:n]
    rows = [(m, k) for m in methods if m in g.maps for k in correct]
    fig, axes = plt.subplots(len(rows), 5, figsize=(6.2, 1.35 * len(rows)), squeeze=False)
    for r, (m, k) in enumerate(rows):
        h = g.maps[m][k]
        h = h / max(np.abs(h).max(), 1e-12)
        axes[r, 0].imshow(g.x[k].transpose(1, 2, 0), interpolation="nearest")
        _hide(axes[r, 0])
        axes[r, 0].set_ylabel(METHOD_LABELS[m], fontsize=7)
        axes[r, 0].set_title(_title(g, k), fontsize=7)
        _show_map(axes[r, 1], g.heatmap[k], "$h_0$" if r == 0 else "")
        for ch, name in enumerate("RGB"):
            _show_map(axes[r, 2 + ch], h[min(ch, len(h) - 1)], name if r == 0 else "")
    fig.suptitle(
        f"Fig. 5: channel responses, {FAMILY_LABELS.get(g.family, g.family)} (correct predictions)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def plot_bands(
    galleries: Sequence[GalleryData],
    methods: Sequence[str] = ("saliency", "deeplift", "deeplift_shap"),
):
    """Fig. 6: per family and method: image, h0, summed map h, five-band maps at t_0 and t_55 (soft).

    Uses each gallery's first correct prediction (its first image if there is none)."""
    import matplotlib.pyplot as plt

    t = fiveband.soft_thresholds()
    rows = [(g, m) for g in galleries for m in methods if m in g.maps]
    fig, axes = plt.subplots(len(rows), 5, figsize=(6.2, 1.3 * len(rows)), squeeze=False)
    for r, (g, m) in enumerate(rows):
        k = next((i for i in range(len(g.y)) if g.y[i] == g.pred[i]), 0)
        h = fiveband.channel_adjust(g.maps[m][k : k + 1])
        axes[r, 0].imshow(g.x[k].transpose(1, 2, 0), interpolation="nearest")
        _hide(axes[r, 0])
        axes[r, 0].set_ylabel(f"{FAMILY_LABELS.get(g.family, g.family)}\n{METHOD_LABELS[m]}", fontsize=7)
        _show_map(axes[r, 1], g.heatmap[k], "$h_0$" if r == 0 else "")
        _show_map(axes[r, 2], h[0], "h" if r == 0 else "")
        _show_map(axes[r, 3], fiveband.stratify(h, t[0])[0, 0] / 2, "$S_{t_0}(h)$" if r == 0 else "")
        _show_map(
            axes[r, 4],
            fiveband.stratify(h, t[-1])[0, 0] / 2,
            f"$S_{{t_{{{len(t) - 1}}}}}(h)$" if r == 0 else "",
        )
    fig.suptitle(
        "Fig. 6: summed heatmaps and five-band maps at the first and last soft threshold", fontsize=9
    )
    fig.tight_layout()
    return fig


def plot_predictions(
    galleries: Sequence[GalleryData], methods: Sequence[str] = METHODS, n_correct: int = 1, n_wrong: int = 1
):
    """Appendix, compact: per family a correct and a wrong prediction; rows = methods (summed maps h)."""
    import matplotlib.pyplot as plt

    methods = [m for m in methods if all(m in g.maps for g in galleries)]
    cols = []
    for g in galleries:
        ok = [k for k in range(len(g.y)) if g.y[k] == g.pred[k]][:n_correct]
        bad = [k for k in range(len(g.y)) if g.y[k] != g.pred[k]][:n_wrong]
        cols += [(g, k) for k in ok + bad]
    fig, axes = plt.subplots(
        len(methods) + 1, len(cols), figsize=(1.15 * len(cols) + 0.6, 1.1 * (len(methods) + 1)), squeeze=False
    )
    for c, (g, k) in enumerate(cols):
        axes[0, c].imshow(g.x[k].transpose(1, 2, 0), interpolation="nearest")
        _hide(axes[0, c])
        ok = "correct" if g.y[k] == g.pred[k] else "wrong"
        axes[0, c].set_title(f"{FAMILY_LABELS.get(g.family, g.family)} {ok}\n{_title(g, k)}", fontsize=7)
        for r, m in enumerate(methods, start=1):
            _show_map(axes[r, c], fiveband.channel_adjust(g.maps[m][k : k + 1])[0])
            if c == 0:
                axes[r, c].set_ylabel(METHOD_LABELS[m], fontsize=7)
    fig.suptitle("Appendix (compact): summed heatmaps h of correct and wrong predictions", fontsize=9)
    fig.tight_layout()
    return fig
