"""The model in its fastest form: eager, ``channels_last``, ``torch.compile``, or both, chosen by measurement.

:func:`fastest_form` times a model's forward (or forward+backward) pass in each form on the caller's batch
shape and device, keeps only forms whose outputs (and input gradients) equal the eager model's within
:data:`RTOL`, and caches the choice per model, device, shape, dtype, direction and method.  The attribution
engine, the gradient methods and the OOD scores call it, so they run the fastest form without being told.

It returns the eager model unchanged, measuring nothing, when

* torch's deterministic algorithms are on (``config.setup``, i.e. in every notebook): a form that a timing
  picks could move results in the last float bits, and the executed notebooks must repeat exactly;
* a module of the model has hooks: a form is a copy (``channels_last``) or a traced graph (``compile``) in
  which the caller's hooks would not fire (e.g. the hermitry chapter's encoding capture);
* the calls so far are small (their ``workload`` adds up to fewer than :data:`MEASURE_WORTH_BATCHES`
  batches): measuring would cost more than a faster form could save (once they add up, it measures; within
  :func:`steady_state` it measures at once);
* :func:`forced` says which form to use (the bench and the equality tests).

``torch.compile`` costs seconds to minutes once per model and shape, so it is a candidate only when the
call's work at the eager speed (``workload`` passes) would take longer than :data:`COMPILE_WORTH_SECONDS`.
"""

from __future__ import annotations

import contextlib
import copy
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from ..config import best_time

FORMS = ("eager", "channels_last", "compile", "channels_last+compile")
#: Largest relative difference (max |a - b| / max |a|) from the eager model's outputs and input gradients.
RTOL = 1e-5
#: A compiled form is tried only when the passes asked for so far, at the eager speed, took longer than this.
COMPILE_WORTH_SECONDS = 120.0
#: Forms are measured only for calls of at least this many probe batches (measuring costs about eight).
MEASURE_WORTH_BATCHES = 16

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FORCED: list[str] = []
_STEADY: list[bool] = []


class ChannelsLast(nn.Module):
    """A ``channels_last`` copy of a model that takes and returns ordinary tensors (the original is untouched)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


class Method(nn.Module):
    """One method of a model as a module, e.g. ``Method(model, "features")`` (OOD scores that read the
    penultimate features), so that its forms are built and timed like the model's own forward."""

    def __init__(self, model: nn.Module, name: str):
        super().__init__()
        if not callable(getattr(model, name, None)):
            raise ValueError(f"{type(model).__name__} has no method {name!r}")
        self.model, self.name = model, name

    def forward(self, x: Tensor) -> Tensor:
        return getattr(self.model, self.name)(x)


def as_form(model: nn.Module, form: str) -> nn.Module:
    """``model`` in ``form`` (one of :data:`FORMS`); "eager" is the model itself, every other form works on a
    copy (so a cached form holds no reference to the model, and the model is never changed)."""
    if form not in FORMS:
        raise ValueError(f"unknown model form {form!r}; known: {', '.join(FORMS)}")
    if form == "eager":
        return model
    out = ChannelsLast(model) if "channels_last" in form else copy.deepcopy(model)
    return torch.compile(out, dynamic=False) if "compile" in form else out


@dataclass
class ModelForm:
    """The chosen form and what was measured: seconds per image of each tried form, and why others were left."""

    form: str
    module: nn.Module | None
    seconds_per_image: dict[str, float] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def forced(form: str) -> Iterator[None]:
    """Within the block :func:`fastest_form` returns ``form`` (uncached, unmeasured), also under determinism."""
    if form not in FORMS:
        raise ValueError(f"unknown model form {form!r}; known: {', '.join(FORMS)}")
    _FORCED.append(form)
    try:
        yield
    finally:
        _FORCED.pop()


@contextlib.contextmanager
def steady_state() -> Iterator[None]:
    """Within the block the forms are measured at a call's first use, whatever its workload: the bench times
    a method as a long job runs it, after its first calls have chosen the form."""
    _STEADY.append(True)
    try:
        yield
    finally:
        _STEADY.pop()


def _has_hooks(model: nn.Module) -> bool:
    """Whether a module has a hook that a form might not run; hooks marked ``form_safe`` (plain closures
    that count or observe, e.g. the bench's pass counter, which a copy shares) do not count."""
    return any(not getattr(hook, "form_safe", False)
               for m in model.modules()
               for hooks in (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks, m._backward_pre_hooks)
               for hook in hooks.values())


def _pass(module: nn.Module, batch: Tensor, backward: bool) -> tuple[Tensor, Tensor | None]:
    batch = batch.detach().requires_grad_(backward)
    with torch.set_grad_enabled(backward):
        out = module(batch)
        grad = torch.autograd.grad(out.sum(), batch)[0] if backward else None
    return out.detach(), grad


def _close(a: Tensor, b: Tensor) -> bool:
    return bool((a - b).abs().max() <= RTOL * a.abs().max().clamp_min(1e-12))


def fastest_form(model: nn.Module, x: Tensor, *, batch: int = 64, backward: bool = False,
                 workload: int = 0, candidates: Sequence[str] = FORMS, method: str = "forward") -> ModelForm:
    """The fastest of :data:`FORMS` for ``model`` on images shaped like ``x`` (only ``x[:1]`` is used), timed
    at ``batch`` images per pass (forward+backward w.r.t. the input with ``backward=True``), among the forms
    whose outputs equal the eager model's within :data:`RTOL`.  ``workload``: images the caller will pass,
    added up over the calls until they are worth measuring (compiled forms are tried only when they could
    repay their compile time).  ``candidates``: the forms to try besides eager.  See the module doc for when
    the eager model is returned without measuring.  A compiled form recompiles for each new batch size
    (``dynamic=False``), e.g. a call's smaller last chunk.  ``method``: the model's method that the
    returned module runs (``"features"``: a :class:`Method` module, in the chosen form)."""
    target = model if method == "forward" else Method(model, method)
    if _FORCED:
        return ModelForm(_FORCED[-1], as_form(target, _FORCED[-1]))
    if torch.are_deterministic_algorithms_enabled() or _has_hooks(model):
        return ModelForm("eager", target)
    key = (str(x.device), tuple(x.shape[1:]), x.dtype, backward, batch, tuple(candidates), method)
    per_model = _CACHE.setdefault(model, {})
    if isinstance(per_model.get(key), ModelForm):
        cached = per_model[key]
        return replace(cached, module=target) if cached.form == "eager" else cached
    workload += per_model.get(key, 0)  # images asked for so far: many small calls add up
    if workload < MEASURE_WORTH_BATCHES * batch and not _STEADY:
        per_model[key] = workload
        return ModelForm("eager", target)
    one = x[:1].detach()
    probe = one.expand(batch, *one.shape[1:]).contiguous()
    reference = _pass(target, probe, backward)
    eager = best_time(lambda: _pass(target, probe, backward), probe.device, 3) / batch
    chosen = ModelForm("eager", target, {"eager": eager})
    for form in [f for f in FORMS[1:] if f in candidates]:
        if "compile" in form and eager * workload < COMPILE_WORTH_SECONDS:
            chosen.left_out[form] = f"{workload} images take ~{eager * workload:.0f} s eager: not worth compiling"
            continue
        try:
            module = as_form(target, form)
            out = _pass(module, probe, backward)
        except Exception as err:  # noqa: BLE001 - a form the platform cannot build is simply not a candidate
            chosen.left_out[form] = f"{type(err).__name__}: {str(err)[:200]}"
            continue
        if not all(_close(a, b) for a, b in zip(reference, out, strict=True) if a is not None):
            chosen.left_out[form] = f"outputs differ from the eager model's by more than {RTOL:g} (relative)"
            continue
        chosen.seconds_per_image[form] = best_time(lambda module=module: _pass(module, probe, backward), probe.device, 3) / batch
        if chosen.seconds_per_image[form] < chosen.seconds_per_image[chosen.form]:
            chosen.form, chosen.module = form, module
    per_model[key] = replace(chosen, module=None) if chosen.form == "eager" else chosen  # no cycle to the key
    return chosen
