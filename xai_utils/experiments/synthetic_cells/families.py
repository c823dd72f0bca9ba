"""Training (paper sec. III-B): per architecture family a base model and branch models.

A *base model* is trained continuously (:func:`xai_utils.models.cached_classifier`); then ``n_branches``
*branch models* are trained on from it in the paper's "regular evaluation mode"
(:class:`xai_utils.models.RegularEvaluation`, an option of the one trainer :func:`xai_utils.models.fit`).
Branches differ by their seed (``config.sub_seed(seed, "branch/<b>")``: batch order, shard draws,
dropout).  The trained weights are the shipped ones (``data/models``) unless ``retrain``; else trained
and cached.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from xai_utils import cache, config, data, models
from xai_utils.models import store

from .splits import CellSplits, make_splits

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
    base: models.TrainResult
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
    if spec["arch"] not in models.ARCHITECTURES:
        known = sorted(models.ARCHITECTURES)
        raise ValueError(f"family {name!r}: unknown arch {spec['arch']!r}; known: {known}")
    if not 0 < spec["refresh"] < 1:
        raise ValueError(f"family {name!r}: refresh fraction must lie in (0, 1), got {spec['refresh']}")
    for k in ("image_size", "batch_size", "branch_epochs", "n_limit"):
        if int(spec[k]) != spec[k] or spec[k] < 1:
            raise ValueError(f"family {name!r}: {k} must be a positive integer, got {spec[k]!r}")
    if int(spec["base_epochs"]) != spec["base_epochs"] or spec["base_epochs"] < 0:
        raise ValueError(f"family {name!r}: base_epochs must be an integer >= 0, got {spec['base_epochs']!r}")
    return dict(spec)


def splits_for(
    families: Mapping[str, Mapping[str, Any]],
    *,
    n_train: int,
    n_val_shards: int,
    shard_size: int,
    n_test: int,
    seed: int,
) -> dict[str, CellSplits]:
    """:func:`make_splits` for every family's ``image_size`` (families of one size share the images)."""
    by_size: dict[int, CellSplits] = {}
    out = {}
    for name, spec in families.items():
        size = int(check_family(name, spec)["image_size"])
        if size not in by_size:
            by_size[size] = make_splits(
                size=size, n_train=n_train, n_val_shards=n_val_shards, shard_size=shard_size, n_test=n_test,
                seed=seed,
            )
        out[name] = by_size[size]
    return out


def pretrained_state(arch: str, arch_kwargs: Mapping[str, Any], path: str, seed: int) -> dict[str, Tensor]:
    """A ``num_classes``-way state dict: local (e.g. ImageNet) weights for every tensor whose name and
    shape fit, fresh seeded weights elsewhere (the new head).  A relative ``path`` is relative to
    :func:`xai_utils.config.data_root`."""
    source = models.build(arch, **{**arch_kwargs, "num_classes": 1000})
    models.load_checkpoint(source, config.data_path(path))
    config.seed_everything(seed)
    state = models.build(arch, **arch_kwargs).state_dict()
    loaded = source.state_dict()
    return {k: (loaded[k] if k in loaded and loaded[k].shape == v.shape else v) for k, v in state.items()}


def _arch_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The builder's keywords of a family: 10 classes, the image size where the builder takes one, and
    the ImageNet statistics for the papers' architectures (their pretrained weights expect them)."""
    kw = {"num_classes": len(data.CLASS_NAMES), **spec["arch_kwargs"]}
    if "image_size" in inspect.signature(models.ARCHITECTURES[spec["arch"]]).parameters:
        kw.setdefault("image_size", spec["image_size"])
    if spec["arch"] in models.PAPER_ARCHITECTURES:
        kw.setdefault("mean", list(data.NORMALISATION["imagenet"][0]))
        kw.setdefault("std", list(data.NORMALISATION["imagenet"][1]))
    return kw


def _branch(base: models.TrainResult, state: Mapping[str, Tensor], splits: CellSplits, seed: int,
            settings: Mapping[str, Any], dev: torch.device) -> dict[str, Any]:
    """Train one branch from the base weights ``state``; returns its payload record."""
    model = models.build(base.arch, **base.arch_kwargs)
    model.load_state_dict(state)
    config.seed_everything(seed)  # after building: the branch's dropout draws start from its seed
    stopping = models.RegularEvaluation(
        splits.n_shards, every=settings["val_every"], target_acc=settings["target_acc"],
        n_limit=settings["n_limit"], refresh=settings["refresh"],
    )
    res = models.fit(
        model, splits.train.x, splits.train.y, splits.val.x, splits.val.y, epochs=settings["epochs"],
        batch_size=settings["batch_size"], lr=settings["lr"], weight_decay=settings["weight_decay"],
        optimizer="adam", schedule="constant", stopping=stopping, seed=seed, device=dev, progress=False,
    )
    return {"state_dict": models.cpu_state(res.model), "history": res.history, "stop": res.stop,
            "iterations": res.iterations, "epochs": res.epochs, "val_acc": res.val_acc}


def train_family(
    name: str,
    spec: Mapping[str, Any],
    splits: CellSplits,
    *,
    n_branches: int,
    target_acc: float,
    val_every: int,
    weight_decay: float,
    seed: int,
    device: str | torch.device,
    progress: bool,
    retrain: bool,
) -> Family:
    """Base model (continuous training) and ``n_branches`` branches (regular evaluation mode).

    spec : one entry of the chapter's ``families`` parameter (see :data:`FAMILY_KEYS`):
    arch / arch_kwargs (:data:`xai_utils.models.ARCHITECTURES`), image_size, batch_size, base_epochs,
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
    dev = config.resolve_device(device)
    arch_kwargs = _arch_kwargs(spec)
    init_state = None
    if spec["init_weights"]:
        init_state = pretrained_state(spec["arch"], arch_kwargs, spec["init_weights"], seed)
    train_kwargs = {
        "epochs": max(1, spec["base_epochs"]),
        "batch_size": spec["batch_size"],
        "lr": spec["lr"] if spec["base_epochs"] else 0.0,  # no continuous phase: the base is the initial net
        "optimizer": "adam",
        "weight_decay": weight_decay,
        "patience": None,
        "schedule": spec["base_schedule"],
        "seed": seed,
        "augment": False,
        "init_state": init_state,
    }
    base = models.cached_classifier(
        spec["arch"], arch_kwargs, train_kwargs, splits.key, splits.train.x, splits.train.y, splits.val.x,
        splits.val.y, device=dev, progress=progress, retrain=retrain,
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
        "branch_seeds": [config.sub_seed(seed, f"branch/{b}") for b in range(n_branches)],
    }
    base_state = models.cpu_state(base.model)
    trained = []

    def train_branches() -> dict[str, Any]:
        bar = config.progress(range(n_branches), desc=f"{name} branches", disable=not progress, leave=False)
        trained.extend(_branch(base, base_state, splits, cfg["branch_seeds"][b], branch_kwargs, dev) for b in bar)
        return {"branches": trained}

    code = [sys.modules[__name__]]
    payload = store.load_or_train("synthetic_cells_branches", cfg, train_branches, code=code, retrain=retrain)
    branches = []
    for rec in payload["branches"]:
        model = models.build(base.arch, **base.arch_kwargs)
        model.load_state_dict(rec["state_dict"])
        model.to(dev).eval()
        branches.append(Branch(model=model, history=list(rec["history"]), stop=str(rec["stop"]),
                               iterations=int(rec["iterations"]), epochs=float(rec["epochs"]),
                               val_acc=float(rec["val_acc"])))
    return Family(name=name, settings=spec, base=base, branches=branches, key=cache.key(cfg, code),
                  seconds=time.perf_counter() - start, from_cache=not trained)


def train_families(
    families: Mapping[str, Mapping[str, Any]],
    splits: Mapping[str, CellSplits],
    **kwargs: Any,
) -> dict[str, Family]:
    """:func:`train_family` for every entry of ``families`` (name -> spec), on ``splits[name]``; ``kwargs``
    are :func:`train_family`'s keywords (all required)."""
    return {name: train_family(name, spec, splits[name], **kwargs) for name, spec in families.items()}
