"""Reference implementations the bench compares with: captum's and zennit's own calls, and exact fits.

Occlusion, LIME and KernelSHAP against captum's default per-image call and its best batching (the fastest
``perturbations_per_eval`` of :data:`CAPTUM_PER_EVAL`: speed-ups against both) and captum on the same
perturbations (map differences), with a float64 scikit-learn fit on the same evaluations; Integrated
Gradients against captum's default single batch and its best ``internal_batch_size``; LRP against zennit's
attributor with the composite registered once.  Where a library's own work costs: zennit's rules
(:func:`zennit_rules`), captum's ReLU hooks (:func:`captum_relu_hooks`) and anchor-exp's search without the
model (:func:`anchor_library`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .settings import ImageSetting, row
from .timing import best_time

#: captum's ``perturbations_per_eval`` values tried for its best configuration (1 is its default).
CAPTUM_PER_EVAL = (16, 64, 256)
#: captum's ``internal_batch_size`` values tried for Integrated Gradients (its default: all inputs at once).
CAPTUM_IG_BATCH = (64, 256, 1024)


def captum_compare(
    name: str,
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    labels: Tensor,
    s: ImageSetting,
    block: int,
    ours: Tensor,
    t_ours: float,
    device: torch.device,
) -> dict[str, Any]:
    """Occlusion, LIME or KernelSHAP against captum: its default per-image call (time, speed-up) and,
    for LIME/KernelSHAP, captum and a float64 fit on our perturbations (map differences)."""
    from .. import attribution

    n = len(x)
    extra: dict[str, Any] = {}
    _captum_default(name, model, x[:1], target[:1], labels, s, block)  # warm-up
    t_captum = best_time(lambda: _captum_default(name, model, x, target, labels, s, block), device, 1)
    extra |= _best_columns({f"perturbations_per_eval={k}": best_time(
        lambda k=k: _captum_default(name, model, x, target, labels, s, block, per_eval=k), device, 1)
        for k in CAPTUM_PER_EVAL} | {"perturbations_per_eval=1": t_captum}, t_ours, n)
    if name == "occlusion":  # deterministic: captum's default call uses the same perturbations
        ref, same = _captum_default(name, model, x, target, labels, s, block), ours
    else:
        f = int(labels.max()) + 1
        if name == "lime":
            masks, width = attribution.lime_masks(s.n_samples, f, seed=0), 0.25
        else:
            masks, width = attribution.kernel_shap_masks(s.n_samples, f, seed=0), 0.0
        same = attribution.attribute(name, model, x, target, features=labels, masks=masks)
        ref = _captum_same(name, model, x, target, labels, masks, width)
        exact = _exact_fit(name, model, x, target, labels, masks, width)
        extra["exact_rel_diff"] = _max_diff(_per_feature(same, labels), exact)[1]
    library = f"captum {dict(occlusion='Occlusion', lime='Lime', kernel_shap='KernelShap')[name]}, per image"
    return {**_library_columns(library, t_captum, t_ours, n, same, ref), **extra}


def _best_columns(times: dict[str, float], t_ours: float, n: int) -> dict[str, Any]:
    """The best-configuration columns from library times per configuration: which, its time per image, speed-up."""
    best = min(times, key=times.__getitem__)
    return {"library_best": best, "library_best_ms_per_image": 1e3 * times[best] / n,
            "speedup_best": times[best] / t_ours}


def _captum_default(
    name: str, model: nn.Module, x: Tensor, target: Tensor, labels: Tensor, s: ImageSetting, block: int,
    per_eval: int = 1,
) -> Tensor:
    """captum's per-image call with our parameters (one example per call, as captum advises), batching
    ``per_eval`` perturbations per forward (captum's default 1)."""
    from captum.attr import KernelShap, Lime, Occlusion

    fm = labels.view(1, 1, *labels.shape)
    out = []
    for i in range(len(x)):
        xi, ti = x[i : i + 1], int(target[i])
        if name == "occlusion":
            c = x.shape[1]
            a = Occlusion(model).attribute(
                xi,
                sliding_window_shapes=(c, block, block),
                strides=(c, block, block),
                baselines=0.0,
                target=ti,
                perturbations_per_eval=per_eval,
            )
        elif name == "lime":
            a = Lime(model).attribute(xi, target=ti, feature_mask=fm, baselines=0.0, n_samples=s.n_samples,
                                      perturbations_per_eval=per_eval)
        else:
            a = KernelShap(model).attribute(
                xi, target=ti, feature_mask=fm, baselines=0.0, n_samples=s.n_samples, perturbations_per_eval=per_eval
            )
        out.append(a)
    return torch.cat(out)


def captum_ig(
    model: nn.Module, x: Tensor, target: Tensor, ours: Tensor, t_ours: float, device: torch.device, repeats: int
) -> dict[str, Any]:
    """captum's ``IntegratedGradients`` default call (all N x n_steps inputs in one batch; our wrapper
    passes the measured chunk as ``internal_batch_size``) and its best ``internal_batch_size`` of
    :data:`CAPTUM_IG_BATCH`, same baseline and steps."""
    from captum.attr import IntegratedGradients

    def call(batch: int | None = None) -> Tensor:
        xg = x.detach().requires_grad_()
        return IntegratedGradients(model).attribute(xg, torch.zeros_like(xg), target=target,
                                                    internal_batch_size=batch).detach()

    ref = call()
    t = best_time(call, device, repeats)
    times = {f"internal_batch_size={b}": best_time(lambda b=b: call(b), device, repeats) for b in CAPTUM_IG_BATCH}
    return {**_library_columns("captum IntegratedGradients, one batch", t, t_ours, len(x), ours, ref),
            **_best_columns(times | {"one batch": t}, t_ours, len(x))}


def zennit_lrp(
    model: nn.Module, x: Tensor, target: Tensor, ours: Tensor, t_ours: float, device: torch.device, repeats: int
) -> dict[str, Any]:
    """zennit's attributor with our composite registered once, outside the timing: what our
    per-call registration (canonizers, rule hooks) adds to the rules' own cost."""
    from zennit.attribution import Gradient

    from ..attribution.lrp import logit_relevance, make_composite

    xg = x.detach().requires_grad_()
    with Gradient(model=model, composite=make_composite(model)) as attributor:
        ref = attributor(xg, logit_relevance(target))[1].detach()
        t = best_time(lambda: attributor(xg, logit_relevance(target)), device, repeats)
    return _library_columns("zennit Gradient, composite registered once", t, t_ours, len(x), ours, ref)


def zennit_rules(model: nn.Module, x: Tensor, target: Tensor, device: torch.device, repeats: int, cfg: str,
                 floor_ms: float) -> list[dict[str, Any]]:
    """Rows ("rules") timing zennit's attributor on x with no rules (its plain gradient), the epsilon rule on
    every conv/linear layer, and our default composite (epsilon_plus_flat with canonizers), each registered
    once, outside the timing, against LRP's floor ``floor_ms`` (one forward+backward): where LRP's time goes."""
    from zennit.attribution import Gradient

    from ..attribution.lrp import logit_relevance, make_composite

    xg = x.detach().requires_grad_()
    out = []
    for label, composite in (("no rules", None), ("epsilon rule", "epsilon"),
                             ("epsilon_plus_flat (ours)", "epsilon_plus_flat")):
        comp = make_composite(model, composite) if composite else None
        with Gradient(model=model, composite=comp) as attributor:
            attributor(xg, logit_relevance(target))  # warm-up
            ms = 1e3 * best_time(lambda a=attributor: a(xg, logit_relevance(target)), device, repeats) / len(x)
        out.append(row(device, "rules", f"lrp: zennit, {label}", config=cfg, n_images=len(x), ms_per_image=ms,
                       floor_ms_per_image=floor_ms, ratio=ms / floor_ms))
    return out


def captum_relu_hooks(model: nn.Module, x: Tensor, target: Tensor, device: torch.device, repeats: int, cfg: str,
                      floor_ms: float) -> list[dict[str, Any]]:
    """Rows ("rules") timing captum's Saliency (a plain gradient) on the model, on its captum-safe copy (no
    in-place ReLU: what GuidedBackprop and Deconvolution run on) and on that copy with a no-op full backward
    hook on every ReLU (where those two put their rule), against the floor ``floor_ms`` (one eager
    forward+backward): where Guided Backprop's and Deconvolution's time goes."""
    from captum.attr import Saliency

    from ..models import captum_safe

    safe = captum_safe(model)
    relus = [m for m in safe.modules() if isinstance(m, nn.ReLU)]

    def ms(net: nn.Module) -> float:
        saliency = Saliency(net)
        saliency.attribute(x, target=target, abs=False)  # warm-up
        t = best_time(lambda: saliency.attribute(x, target=target, abs=False), device, repeats)
        return 1e3 * t / len(x)

    times = {"the model": ms(model), "its captum-safe copy": ms(safe)}
    hooks = [m.register_full_backward_hook(lambda module, grad_in, grad_out: None) for m in relus]
    try:
        times[f"the copy, a no-op hook on each of its {len(relus)} ReLUs"] = ms(safe)
    finally:
        for h in hooks:
            h.remove()
    return [row(device, "rules", f"guided_backprop: captum Saliency on {where}", config=cfg, n_images=len(x),
                ms_per_image=t, floor_ms_per_image=floor_ms, ratio=t / floor_ms) for where, t in times.items()]


class _Recorder(nn.Module):
    """The model, keeping every output it gives, in order."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.outputs = model, []

    def forward(self, x: Tensor) -> Tensor:
        self.outputs.append(self.model(x).detach())
        return self.outputs[-1]


class _Replay(nn.Module):
    """Answers each call with the next recorded output, computing nothing."""

    def __init__(self, outputs: list[Tensor]):
        super().__init__()
        self.outputs, self.calls = outputs, 0

    def forward(self, x: Tensor) -> Tensor:
        out = self.outputs[self.calls]
        if out.shape[0] != x.shape[0]:
            raise RuntimeError("anchor-exp asked for another batch than in the recorded run")
        self.calls += 1
        return out


def anchor_library(model: nn.Module, x: Tensor, target: Tensor, params: dict[str, Any], device: torch.device,
                   repeats: int, cfg: str, floor_ms: float) -> list[dict[str, Any]]:
    """Rows ("rules") timing anchor-exp's search on x with the eager model, and with the model's answers of
    that run replayed (the same seeded search, no model computing): the library's own work (quickshift
    segmentation, building the perturbed images, KL-LUCB bookkeeping) against the method's floor."""
    from ..attribution import attribute
    from ..models.form import forced

    recorder = _Recorder(model)
    with forced("eager"):
        ref = attribute("anchor_beam", recorder, x, target, **params)
        t_all = best_time(lambda: attribute("anchor_beam", model, x, target, **params), device, repeats)

        def replayed() -> Tensor:
            replay = _Replay(recorder.outputs)
            out = attribute("anchor_beam", replay, x, target, **params)
            if replay.calls != len(recorder.outputs) or not torch.equal(out, ref):
                raise RuntimeError("anchor-exp's replayed search took another path than the recorded one")
            return out

        t_alone = best_time(replayed, device, repeats)
    return [row(device, "rules", f"anchor_beam: anchor-exp, {label}", config=cfg, n_images=len(x),
                ms_per_image=1e3 * t / len(x), floor_ms_per_image=floor_ms, ratio=1e3 * t / len(x) / floor_ms)
            for label, t in (("with the model (eager)", t_all), ("alone (the model's answers replayed)", t_alone))]


def captum_deeplift(
    model: nn.Module, x: Tensor, target: Tensor, ours: Tensor, t_ours: float, device: torch.device, repeats: int
) -> dict[str, Any]:
    """captum's ``DeepLift`` called once on the whole batch with the zero baseline (our method splits the
    batch into memory-sized groups on a captum-safe copy of the model): what captum's rules cost by themselves."""
    from captum.attr import DeepLift

    from ..models import captum_safe

    dl = DeepLift(captum_safe(model))

    def call() -> Tensor:
        return dl.attribute(x.detach().requires_grad_(), torch.zeros_like(x), target=target).detach()

    ref = call()
    t = best_time(call, device, repeats)
    return _library_columns("captum DeepLift, one call", t, t_ours, len(x), ours, ref)


def _library_columns(library: str, t: float, t_ours: float, n: int, ours: Tensor, ref: Tensor) -> dict[str, Any]:
    """The library columns of a method's row: its call, time per image, speed-up, map differences."""
    d_abs, d_rel = _max_diff(ours, ref)
    return {
        "library": library,
        "library_ms_per_image": 1e3 * t / n,
        "speedup": t / t_ours,
        "max_abs_diff": d_abs,
        "max_rel_diff": d_rel,
    }


def _captum_same(
    name: str, model: nn.Module, x: Tensor, target: Tensor, labels: Tensor, masks: Tensor, kernel_width: float
) -> Tensor:
    """captum on exactly our perturbations: our masks fed in order, our kernel, plain linear regression."""
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from captum.attr import KernelShap, Lime

    fm = labels.view(1, 1, *labels.shape)
    f = masks.shape[-1]
    out = []
    for i in range(len(x)):
        rows = masks.to(x.device).long()

        def perturb(original_inp, rows=rows, **kw):  # generator: captum draws one sample per call
            yield from (r[None] for r in rows)

        if name == "lime":

            def kernel(_orig, _pert, interp, **kw):
                on = interp.double().sum()
                d = 1 - on / (on.sqrt() * math.sqrt(f)) if on > 0 else torch.tensor(1.0, dtype=torch.float64)
                return torch.exp(-(d**2) / (2 * kernel_width**2))

            explainer = Lime(
                model,
                interpretable_model=SkLearnLinearRegression(),
                similarity_func=kernel,
                perturb_func=perturb,
            )
        else:
            explainer = KernelShap(model)
            explainer.perturb_func = perturb
        out.append(
            explainer.attribute(
                x[i : i + 1], target=int(target[i]), feature_mask=fm, baselines=0.0, n_samples=len(rows)
            )
        )
    return torch.cat(out)


def _exact_fit(
    name: str, model: nn.Module, x: Tensor, target: Tensor, labels: Tensor, masks: Tensor, kernel_width: float
) -> Tensor:
    """Feature values (N, F) of a float64 scikit-learn weighted linear fit on the same evaluations."""
    from sklearn.linear_model import LinearRegression

    from .. import attribution

    y = attribution.evaluate_masks(model, x, masks, labels, target).double().cpu().numpy()
    m = masks.double().cpu().numpy()
    f = m.shape[1]
    on = m.sum(1)
    if name == "lime":
        d = np.where(on > 0, 1 - on / np.sqrt(np.maximum(on, 1e-300) * f), 1.0)
        w = np.exp(-(d**2) / (2 * kernel_width**2))
    else:
        w = np.where((on == 0) | (on == f), 1e6, 1.0)
    return torch.tensor(np.stack([LinearRegression().fit(m, yi, sample_weight=w).coef_ for yi in y]))


def _per_feature(maps: Tensor, labels: Tensor) -> Tensor:
    """(N, C, H, W) maps constant on each feature -> (N, F) values (first pixel of each feature)."""
    flat = labels.flatten().cpu()
    first = torch.full((int(flat.max()) + 1,), flat.numel(), dtype=torch.long).scatter_reduce(
        0, flat, torch.arange(flat.numel()), "amin"
    )
    return maps[:, 0].flatten(1).cpu().double()[:, first]


def _max_diff(ours: Tensor, ref: Tensor) -> tuple[float, float]:
    """Largest absolute difference, and that over the largest absolute reference value."""
    d = (ours.double() - ref.double()).abs().max().item()
    return d, d / max(ref.double().abs().max().item(), 1e-12)
