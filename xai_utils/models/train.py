"""The one trainer: seeded cross-entropy training with one of two stopping rules.

:func:`fit` trains a model in place from its current weights; :func:`train_classifier` builds one by name
(:func:`.registry.build`) and fits it.  Inputs are plain tensors (``x`` (N, C, H, W) float in [0, 1],
``y`` (N,) int64), so nothing here depends on a dataset class.  Stopping: by default the weights of the best
epoch on the validation images are kept (optionally with ``patience``); ``stopping=RegularEvaluation(...)``
is Tjoa & Guan's regular evaluation mode (validation on random shards every few iterations, final weights).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import config
from .registry import build


@dataclass
class TrainResult:
    """A trained classifier (eval mode, on its device) and how it got there.

    history : one dict per validation: per epoch (epoch, loss, train_acc, val_acc, lr, seconds), or in
        regular evaluation mode per shard validation (iteration, shard, shard_acc, n_early).
    best_epoch : epoch (1-based) whose weights the model holds (highest validation accuracy; in regular
        evaluation mode the last one).
    val_acc : validation accuracy of the weights held (regular evaluation mode: on all shards).
    arch_kwargs : the builder's keyword arguments actually used (num_classes, mean, std filled in).
    stop, iterations, epochs : why training stopped ("epochs", "patience"; "target", "early"), the number
        of optimiser steps and the epochs they make (iterations x batch_size / N); not kept by the store.
    """

    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    val_acc: float
    seconds: float
    arch: str = ""
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False
    stop: str = ""
    iterations: int = 0
    epochs: float = 0.0


@dataclass(frozen=True)
class RegularEvaluation:
    """Tjoa & Guan's "regular evaluation mode" (arXiv:2009.02899, sec. III-B), a stopping rule of :func:`fit`.

    The validation images are cut into ``n_shards`` equal consecutive shards.  Every ``every`` iterations
    the accuracy on one shard (a seeded draw) is computed: above ``target_acc`` training stops ("target");
    otherwise a counter grows by one without improvement over the best shard accuracy so far and is
    multiplied by ``refresh`` on improvement; reaching ``n_limit`` stops training ("early").  The final
    weights are kept.
    """

    n_shards: int
    every: int = 4
    target_acc: float = 0.96
    n_limit: float = 24
    refresh: float = 0.4

    def __post_init__(self):
        if not 0 < self.refresh < 1 or self.n_limit < 1 or self.every < 1 or self.n_shards < 1:
            raise ValueError(
                f"need 0 < refresh < 1, n_limit >= 1, every >= 1, n_shards >= 1; got {self.refresh}, "
                f"{self.n_limit}, {self.every}, {self.n_shards}"
            )

    def update(self, n_early: float, best: float, acc: float) -> tuple[float, float, str]:
        """One validation with shard accuracy ``acc``: returns (n_early, best, stop), stop "" to go on."""
        if acc > self.target_acc:
            return n_early, max(best, acc), "target"
        n_early = n_early * self.refresh if acc > best else n_early + 1
        return n_early, max(best, acc), "early" if n_early >= self.n_limit else ""


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


def cpu_state(model: nn.Module) -> dict[str, Tensor]:
    """A detached CPU copy of ``model.state_dict()``."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _check_data(x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor, epochs: int, batch_size: int,
                optimizer: str, schedule: str) -> None:
    for x, y, name in ((x_train, y_train, "train"), (x_val, y_val, "val")):
        _check_split(x, y, name)
    if epochs < 1 or batch_size < 2:
        raise ValueError(f"need epochs >= 1 and batch_size >= 2, got {epochs} and {batch_size}")
    if optimizer not in ("adam", "adamw", "sgd"):
        raise ValueError(f"unknown optimizer {optimizer!r}; known: ['adam', 'adamw', 'sgd']")
    if schedule not in ("onecycle", "cosine", "constant"):
        raise ValueError(f"unknown schedule {schedule!r}; known: ['constant', 'cosine', 'onecycle']")


def _optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    adam = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return adam(params, lr=lr, weight_decay=weight_decay)


def fit(
    model: nn.Module,
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
    stopping: RegularEvaluation | None = None,
    schedule: str = "onecycle",
    seed: int = 0,
    device: str | torch.device = "auto",
    augment: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place from its current weights with cross-entropy; returns it in eval mode.

    Parameters
    ----------
    x_train, x_val : (N, C, H, W) float in [0, 1];  y_train, y_val : (N,) int64.
    optimizer : "adam" (Adam, L2 decay), "adamw" or "sgd" (momentum 0.9, Nesterov).
    schedule : "onecycle" (warm-up + cosine), "cosine" or "constant" learning rate, stepped per batch.
    stopping : None: validate on all of ``x_val`` after each epoch and keep the best epoch's weights, and
        with ``patience`` stop after that many epochs without a better accuracy;
        :class:`RegularEvaluation`: the paper's shard validations, final weights kept.
    augment : random +-2 px shifts and horizontal flips of training batches.
    seed : seeds the generator of batch order, shard draws and augmentation.  The global RNG (dropout) is
        the caller's: seed it (:func:`xai_utils.config.seed_everything`) first for repeatable weights.
    """
    _check_data(x_train, y_train, x_val, y_val, epochs, batch_size, optimizer, schedule)
    dev = config.resolve_device(device)
    model.to(dev)
    opt = _optimizer(model, optimizer, lr, weight_decay)
    n = len(x_train)
    steps = (n // batch_size + (n % batch_size >= 2)) * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(_lr_factor, schedule, steps))
    gen = torch.Generator().manual_seed(seed)
    if stopping is not None:
        size = len(x_val) // stopping.n_shards
        x_val, y_val = x_val[: stopping.n_shards * size], y_val[: stopping.n_shards * size]
        shards = list(zip(x_val.split(size), y_val.split(size), strict=True))
    history: list[dict[str, float]] = []
    best_acc, best_epoch, best_state, n_early, it, stop = -1.0, 0, None, 0.0, 0, ""
    start = time.perf_counter()
    bar = config.progress(range(1, epochs + 1), desc="train", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        tot_loss, tot_correct, seen = 0.0, 0, 0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            if len(idx) < 2:  # BatchNorm cannot train on one sample
                continue
            model.train()
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
            it += 1
            if stopping is None or it % stopping.every:
                continue
            model.eval()
            s = int(torch.randint(len(shards), (1,), generator=gen))
            acc = accuracy(model, *shards[s], device=dev)
            n_early, best_acc, stop = stopping.update(n_early, best_acc, acc)
            history.append({"iteration": it, "shard": s, "shard_acc": acc, "n_early": n_early})
            if stop:
                break
        model.eval()
        if stopping is not None:
            best_epoch = epoch  # the final weights are kept
            if stop:
                break
            continue
        val_acc = accuracy(model, x_val, y_val, device=dev)
        history.append(dict(epoch=epoch, loss=tot_loss / seen, train_acc=tot_correct / seen, val_acc=val_acc,
                            lr=opt.param_groups[0]["lr"], seconds=time.perf_counter() - t0))
        bar.set_postfix(loss=f"{tot_loss / seen:.3f}", val_acc=f"{val_acc:.3f}")
        if val_acc > best_acc:
            best_acc, best_epoch, best_state = val_acc, epoch, copy.deepcopy(model.state_dict())
        elif patience is not None and epoch - best_epoch >= patience:
            stop = "patience"
            break
    bar.close()
    if stopping is None:
        model.load_state_dict(best_state)
    else:
        best_acc = accuracy(model, x_val, y_val, device=dev)
    return TrainResult(model=model, history=history, best_epoch=best_epoch, val_acc=best_acc,
                       seconds=time.perf_counter() - start, stop=stop or "epochs", iterations=it,
                       epochs=it * batch_size / n)


def train_classifier(
    arch: str,
    arch_kwargs: Mapping[str, Any],
    x_train: Tensor,
    y_train: Tensor,
    x_val: Tensor,
    y_val: Tensor,
    *,
    seed: int = 0,
    init_state: Mapping[str, Tensor] | None = None,
    **settings: Any,
) -> TrainResult:
    """Build ``arch`` (:func:`.registry.build`) seeded with ``seed``, then :func:`fit` it.

    arch_kwargs : the builder's keywords; ``num_classes`` defaults to max label + 1, ``mean``/``std`` to
        the training images' statistics.
    init_state : optional state dict to start from (fine-tuning).
    settings : keywords of :func:`fit` (epochs, batch_size, lr, optimizer, ..., device, progress).
    Same seed and thread count -> same weights.
    """
    for x, y, name in ((x_train, y_train, "train"), (x_val, y_val, "val")):
        _check_split(x, y, name)
    kw = _resolve_arch_kwargs(arch_kwargs, x_train, y_train, y_val)
    config.seed_everything(seed)
    model = build(arch, **kw)
    if init_state is not None:
        model.load_state_dict(init_state)
    res = fit(model, x_train, y_train, x_val, y_val, seed=seed, **settings)
    res.arch, res.arch_kwargs = arch, kw
    return res
