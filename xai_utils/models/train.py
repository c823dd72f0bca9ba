"""Seeded classifier training with early stopping, and a cached variant keyed by a data description.

``train_classifier`` takes plain tensors (``x`` (N, C, H, W) float in [0, 1], ``y`` (N,) int64) so
that it does not depend on any dataset class.  ``cached_classifier`` returns the shipped weights of
``{arch, arch_kwargs, train_kwargs, data_key}`` (:mod:`.store`, ``data/models``) when there are any,
else trains through :mod:`xai_utils.cache` (key: that configuration plus the import closure of this
module); ``data_key`` is the caller's description of the data (generator parameters and seed), so a
hit never hashes images.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import config as _config
from ..config import progress as _progress
from . import real, small, store

#: Recommended offline classifier: small_resnet-8 (width 16) on cell classes 0-5 at 32x32, trained on
#: ``make_cells(3000, size=32, classes=range(6), seed=0)``, validated on 600 images (seed 1).
#: Measured: 99.3% accuracy on 1,200 test cells (seed 2); 12 epochs: 99.8%.  Cost: ~6.4 CPU-s per
#: epoch single-threaded, i.e. about 30-40 s for 8 epochs on 2 idle cores (the measuring machine was
#: shared, so wall times there were longer).  Checked by ``tests/test_models.py::test_default_offline_recipe``.
DEFAULT_OFFLINE: dict[str, Any] = dict(
    arch="small_resnet",
    arch_kwargs=dict(depth=8, width=16),
    data=dict(n_train=3000, n_val=600, size=32, classes=list(range(6))),
    train_kwargs=dict(
        epochs=8,
        batch_size=64,
        lr=3e-3,
        optimizer="adam",
        weight_decay=5e-4,
        patience=None,
        schedule="onecycle",
        seed=0,
        augment=False,
    ),
)


@dataclass
class TrainResult:
    """A trained classifier (eval mode, on its device) and how it got there.

    history : one dict per epoch (epoch, loss, train_acc, val_acc, lr, seconds).
    best_epoch : epoch (1-based) whose weights the model holds (highest validation accuracy).
    arch_kwargs : the builder's keyword arguments actually used (num_classes, mean, std filled in).
    """

    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    val_acc: float
    seconds: float
    arch: str = ""
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False


def _builder(arch: str) -> tuple[Callable[..., nn.Module], ModuleType]:
    if arch in small.ARCHITECTURES:
        return small.ARCHITECTURES[arch], small
    if arch in real.REAL_ARCHITECTURES:
        return real.REAL_ARCHITECTURES[arch], real
    raise ValueError(
        f"unknown architecture {arch!r}; known: {sorted(small.ARCHITECTURES) + sorted(real.REAL_ARCHITECTURES)}"
    )


def _build(arch: str, arch_kwargs: Mapping[str, Any]) -> nn.Module:
    kwargs = dict(arch_kwargs)
    return _builder(arch)[0](num_classes=kwargs.pop("num_classes"), **kwargs)


def _check_split(x: Tensor, y: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x_{name} must be a float tensor (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not isinstance(y, Tensor) or y.dim() != 1 or y.is_floating_point() or len(y) != len(x):
        raise ValueError(
            f"y_{name} must be an integer tensor (N,) with N = len(x_{name}) = {len(x)}, "
            f"got {getattr(y, 'shape', type(y))} {getattr(y, 'dtype', '')}"
        )
    if len(x) == 0:
        raise ValueError(f"x_{name} is empty")
    if not torch.isfinite(x).all():
        raise ValueError(f"x_{name} contains NaN or inf")
    lo, hi = x.min().item(), x.max().item()
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(
            f"x_{name} must be images in [0, 1] (models normalise inside), got range [{lo:.3g}, {hi:.3g}]"
        )
    if y.min() < 0:
        raise ValueError(f"y_{name} has negative labels")


def _resolve_arch_kwargs(arch_kwargs: Mapping[str, Any], x_train: Tensor, y_train: Tensor, y_val: Tensor):
    kw = dict(arch_kwargs)
    if kw.get("num_classes") is None:
        kw["num_classes"] = int(max(y_train.max(), y_val.max())) + 1
    for name, y in (("train", y_train), ("val", y_val)):
        if int(y.max()) >= kw["num_classes"]:
            raise ValueError(
                f"y_{name} has label {int(y.max())}, out of range for num_classes={kw['num_classes']}"
            )
    xd = x_train.double().transpose(0, 1).flatten(1)  # per-channel statistics of the training images
    if kw.get("mean") is None:
        kw["mean"] = [round(v, 6) for v in xd.mean(1).tolist()]
    if kw.get("std") is None:
        kw["std"] = [round(max(v, 1e-3), 6) for v in xd.std(1).tolist()]
    if kw.get("in_channels", x_train.shape[1]) != x_train.shape[1]:
        raise ValueError(f"in_channels={kw['in_channels']} but x_train has {x_train.shape[1]} channels")
    return kw


def _augment(x: Tensor, gen: torch.Generator, pad: int = 2) -> Tensor:
    """Random shifts of up to ``pad`` px (edge padding) and horizontal flips, per image, batched."""
    n, _, h, w = x.shape
    shift = torch.randint(0, 2 * pad + 1, (2, n), generator=gen).to(x.device)
    flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    rows = (shift[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (shift[1, :, None] + torch.arange(w, device=x.device))[:, None, None, :]
    out = padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(x.shape[1], device=x.device)[None, :, None, None],
        rows,
        cols,
    ]
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def _lr_factor(schedule: str, total: int, step: int) -> float:
    """Multiplier of the base lr at ``step``: constant; cosine to 0; "onecycle" = linear warm-up from
    1/25 over the first 25% of steps, then cosine to 0 (Smith's one-cycle, without momentum cycling)."""
    if schedule == "constant":
        return 1.0
    warm = max(1, round(0.25 * total)) if schedule == "onecycle" else 0
    if step < warm:
        return 0.04 + 0.96 * step / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, *, device: torch.device | None = None,
             chunk: int = 512) -> float:
    """Share of ``x`` (N, C, H, W) that ``model`` classifies as ``y`` (N,), in chunks; device default:
    the model's."""
    dev = device or next(model.parameters()).device
    correct = sum(
        (model(xc.to(dev)).argmax(1).cpu() == yc).sum().item()
        for xc, yc in zip(x.split(chunk), y.cpu().split(chunk), strict=True)
    )
    return correct / len(y)


def train_classifier(
    arch: str,
    arch_kwargs: Mapping[str, Any],
    x_train: Tensor,
    y_train: Tensor,
    x_val: Tensor,
    y_val: Tensor,
    *,
    epochs: int = 12,
    batch_size: int = 64,
    lr: float = 3e-3,
    optimizer: str = "adam",
    weight_decay: float = 5e-4,
    patience: int | None = None,
    schedule: str = "onecycle",
    seed: int = 0,
    device: str | torch.device = "auto",
    augment: bool = False,
    init_state: Mapping[str, Tensor] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``arch`` with cross-entropy, keep the weights of the best validation accuracy.

    Parameters
    ----------
    arch, arch_kwargs : builder name (``small.ARCHITECTURES`` or ``real.REAL_ARCHITECTURES``) and its
        keywords; ``num_classes`` defaults to max label + 1, ``mean``/``std`` to the training images'.
    x_train, x_val : (N, C, H, W) float in [0, 1];  y_train, y_val : (N,) int64.
    optimizer : "adam" (Adam, L2 decay), "adamw" or "sgd" (momentum 0.9, Nesterov).
    schedule : "onecycle" (warm-up + cosine), "cosine" or "constant" learning rate, stepped per batch.
    patience : stop after this many epochs without a better val accuracy (None: run all epochs).
    augment : random +-2 px shifts and horizontal flips of training batches.
    seed : seeds initialisation, dropout, shuffling and augmentation (same threads -> same weights).
    init_state : optional state dict to start from (fine-tuning).
    """
    for x, y, name in ((x_train, y_train, "train"), (x_val, y_val, "val")):
        _check_split(x, y, name)
    if epochs < 1 or batch_size < 2:
        raise ValueError(f"need epochs >= 1 and batch_size >= 2, got {epochs} and {batch_size}")
    if optimizer not in ("adam", "adamw", "sgd"):
        raise ValueError(f"unknown optimizer {optimizer!r}; known: ['adam', 'adamw', 'sgd']")
    if schedule not in ("onecycle", "cosine", "constant"):
        raise ValueError(f"unknown schedule {schedule!r}; known: ['constant', 'cosine', 'onecycle']")
    dev = _config.resolve_device(device)
    kw = _resolve_arch_kwargs(arch_kwargs, x_train, y_train, y_val)
    _config.seed_everything(seed)
    model = _build(arch, kw)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    else:
        opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW)(
            params, lr=lr, weight_decay=weight_decay
        )
    n = len(x_train)
    steps = (n // batch_size + (n % batch_size >= 2)) * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(_lr_factor, schedule, steps))
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    best_acc, best_epoch, best_state = -1.0, 0, None
    start = time.perf_counter()
    bar = _progress(range(1, epochs + 1), desc=f"train {arch}", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        tot_loss, tot_correct, seen = 0.0, 0, 0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            if len(idx) < 2:  # BatchNorm cannot train on one sample
                continue
            xb, yb = x_train[idx].to(dev), y_train[idx].to(dev)
            if augment:
                xb = _augment(xb, gen)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(idx)
            tot_correct += (logits.argmax(1) == yb).sum().item()
            seen += len(idx)
        model.eval()
        val_acc = accuracy(model, x_val, y_val, device=dev)
        history.append(
            dict(
                epoch=epoch,
                loss=tot_loss / seen,
                train_acc=tot_correct / seen,
                val_acc=val_acc,
                lr=opt.param_groups[0]["lr"],
                seconds=time.perf_counter() - t0,
            )
        )
        bar.set_postfix(loss=f"{tot_loss / seen:.3f}", val_acc=f"{val_acc:.3f}")
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif patience is not None and epoch - best_epoch >= patience:
            break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        val_acc=best_acc,
        seconds=time.perf_counter() - start,
        arch=arch,
        arch_kwargs=kw,
    )


def _state_digest(state: Mapping[str, Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def cached_classifier(
    arch: str,
    arch_kwargs: Mapping[str, Any],
    train_kwargs: Mapping[str, Any],
    data_key: Mapping[str, Any],
    x_train: Tensor,
    y_train: Tensor,
    x_val: Tensor,
    y_val: Tensor,
    *,
    code: Iterable[ModuleType | Callable | str] = (),
    device: str | torch.device = "auto",
    progress: bool = True,
    retrain: bool = False,
) -> TrainResult:
    """:func:`train_classifier` through :func:`.store.load_or_train` (kind ``"models"``).

    The configuration is ``{arch, arch_kwargs, train_kwargs, data_key}``; the cache key adds the import
    closure of this module and of ``code``.  ``data_key`` must describe the data completely (e.g.
    generator name, parameters and seed); the images themselves are not hashed.  ``device`` and
    ``progress`` are not part of the key.  ``retrain`` ignores shipped weights.  On a hit the model
    is rebuilt and its weights loaded.
    """
    train_kwargs = {k: v for k, v in train_kwargs.items() if k not in ("device", "progress")}
    key_kwargs = dict(train_kwargs)
    if key_kwargs.get("init_state") is not None:
        key_kwargs["init_state"] = "sha256:" + _state_digest(key_kwargs["init_state"])
    cfg = {
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs),
        "train_kwargs": key_kwargs,
        "data_key": dict(data_key),
    }
    _builder(arch)  # an unknown architecture fails before any lookup
    built: list[TrainResult] = []

    def build() -> dict[str, Any]:
        res = train_classifier(
            arch,
            arch_kwargs,
            x_train,
            y_train,
            x_val,
            y_val,
            device=device,
            progress=progress,
            **train_kwargs,
        )
        built.append(res)
        return {
            "state_dict": {k: v.detach().cpu() for k, v in res.model.state_dict().items()},
            "history": res.history,
            "best_epoch": res.best_epoch,
            "val_acc": res.val_acc,
            "seconds": res.seconds,
            "arch_kwargs": res.arch_kwargs,
        }

    payload = store.load_or_train("models", cfg, build, code=[sys.modules[__name__], *code], retrain=retrain)
    if built:
        return built[0]
    model = _build(arch, payload["arch_kwargs"])
    model.load_state_dict(payload["state_dict"])
    model.to(_config.resolve_device(device)).eval()
    return TrainResult(
        model=model,
        history=list(payload["history"]),
        best_epoch=int(payload["best_epoch"]),
        val_acc=float(payload["val_acc"]),
        seconds=float(payload["seconds"]),
        arch=arch,
        arch_kwargs=dict(payload["arch_kwargs"]),
        from_cache=True,
    )


def benchmark_classifier(
    bench: Any,
    data_key: Mapping[str, Any],
    *,
    arch: str = DEFAULT_OFFLINE["arch"],
    width: int = 16,
    epochs: int = DEFAULT_OFFLINE["train_kwargs"]["epochs"],
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    retrain: bool = False,
    **arch_kwargs: Any,
) -> TrainResult:
    """The offline recipe (``DEFAULT_OFFLINE`` training settings) on an OOD benchmark's ID splits, cached.

    bench : an ``xai_utils.data.Benchmark`` (its ``id_train``/``id_val``, classes and normalisation);
    data_key : how ``bench`` was generated (see :func:`cached_classifier`); ``arch_kwargs`` : extra
    builder keywords (e.g. ``depth`` or ``image_size``).  Chapters that train on the same benchmark
    with the same settings share one cache entry (and one shipped model); ``retrain`` ignores the latter.
    """
    kwargs = dict(arch_kwargs, width=width, num_classes=bench.num_classes, mean=list(bench.mean),
                  std=list(bench.std))
    train_kwargs = dict(DEFAULT_OFFLINE["train_kwargs"], epochs=epochs, seed=seed)
    return cached_classifier(arch, kwargs, train_kwargs, data_key, bench.id_train.x, bench.id_train.y,
                             bench.id_val.x, bench.id_val.y, device=device, progress=progress,
                             retrain=retrain)
