"""Timing machinery: best-of-r wall times, peak memory, pass counting and the floors' reference passes."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..config import best_time, release_freed_memory


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """Context manager: peak resident memory (MB) sampled every ``interval`` s, from the live memory on entry
    (what malloc kept is handed back first), and CUDA max allocated."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval = device, interval
        self.rss_mb, self.cuda_mb = float("nan"), float("nan")
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.rss_mb = max(self.rss_mb, _rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        release_freed_memory()  # else the memory kept from earlier work counts as this block's
        self.rss_mb = _rss_mb() if os.path.exists("/proc/self/statm") else float("nan")
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        if not math.isnan(self.rss_mb):
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if hasattr(self, "_thread"):
            self._thread.join()
            self.rss_mb = max(self.rss_mb, _rss_mb())
        if self.device.type == "cuda":
            self.cuda_mb = torch.cuda.max_memory_allocated(self.device) / 2**20


class PassCounter:
    """Counts images through the model's head (full forward passes) and images back-propagated.

    A forward hook on ``model.head`` (or the model itself when it has no head) adds the batch size
    to ``forward``; when the output takes part in autograd, a tensor hook adds it to ``backward``
    each time a gradient reaches it.  The hooks are plain closures, so ``deepcopy`` (captum-safe
    copies) shares them and the copies count too.  Counting happens only inside :meth:`count`.
    """

    def __init__(self, model: nn.Module):
        self.forward = self.backward = 0
        self.active = False
        counter = self

        def add_backward(n: int) -> None:
            if counter.active:
                counter.backward += n

        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            if not counter.active or not isinstance(output, Tensor):
                return
            n = output.shape[0]
            counter.forward += n
            if output.requires_grad:
                output.register_hook(lambda g: add_backward(n))

        hook.form_safe = True  # a copy of the model (its channels_last form) shares the closure and counts too
        head = getattr(model, "head", None)
        self._handle = (head if isinstance(head, nn.Module) else model).register_forward_hook(hook)

    @contextmanager
    def count(self) -> Iterator[PassCounter]:
        """Count the passes made inside the ``with`` block (from zero)."""
        self.forward = self.backward = 0
        self.active = True
        try:
            yield self
        finally:
            self.active = False

    def remove(self) -> None:
        """Remove the hook from the model."""
        self._handle.remove()


@torch.no_grad()
def forward_times(model: nn.Module, x: Tensor, batches: Sequence[int], repeats: int) -> dict[int, float]:
    """Per-image forward time (s) at each batch size (copies of x's images, cycled)."""
    out = {}
    for b in batches:
        xb = x[torch.arange(b) % len(x)].contiguous()
        model(xb)
        out[b] = best_time(lambda xb=xb: model(xb), x.device, repeats + 1) / b
    return out


def forward_step(model: nn.Module, x: Tensor) -> Callable[[], None]:
    """One forward pass of the whole batch, without autograd."""

    @torch.no_grad()
    def step() -> None:
        model(x)

    return step


def forward_backward_step(model: nn.Module, x: Tensor, target: Tensor) -> Callable[[], None]:
    """One forward + backward pass (gradient of the target logits w.r.t. x) on the whole batch."""

    def step() -> None:
        xg = x.detach().requires_grad_()
        torch.autograd.grad(model(xg).gather(1, target[:, None]).sum(), xg)

    return step


@dataclass
class Floors:
    """The reference passes behind every floor, timed *beside* each method (interleaved, best of r),
    so that a shared machine's drift slows the method and its floor alike.

    forward / backward : batch size -> a forward (forward+backward) pass of that many images: the
    method batches, the engine chunk and (forward) the best batch size measured.
    """

    forward: dict[int, Callable[[], Any]]
    backward: dict[int, Callable[[], Any]]

    def time_beside(
        self, fn: Callable[[], Any], device: torch.device, repeats: int, forwards: int, backwards: int
    ) -> tuple[float, float]:
        """Best time (s) of ``fn`` and its floor (s): the least time for ``backwards``
        forward+backward image passes plus the remaining forward-only images, each at the best
        per-image time of a batch size no larger than the number of such images (a method that
        scores 16 images cannot use a batch of 64).  Only those batch sizes are timed, between the
        calls of ``fn``."""
        parts = [(self.backward, backwards), (self.forward, max(forwards - backwards, 0))]
        probes = [(images, _fitting(steps, images)) for steps, images in parts if images]
        t_fn = math.inf
        best = [dict.fromkeys(steps, math.inf) for _, steps in probes]
        for _ in range(max(1, repeats)):
            t_fn = min(t_fn, best_time(fn, device, 1))
            for per, (_, steps) in zip(best, probes, strict=True):
                for b, step in steps.items():
                    per[b] = min(per[b], best_time(step, device, 1) / b)
        floor = sum(images * min(per.values()) for per, (images, _) in zip(best, probes, strict=True))
        return t_fn, floor


@dataclass(frozen=True)
class Measurement:
    """A call timed beside its floor: its output, best time and floor (s), the images it passed
    forward and back, and its peak memory (MB)."""

    output: Any
    seconds: float
    floor: float
    forwards: int
    backwards: int
    rss_mb: float
    cuda_mb: float
    floor_best: float = math.nan  # the same passes in the model's fastest form

    def columns(self, n: int) -> dict[str, Any]:
        """The result-row columns for a call on ``n`` images: times per image, ratio, memory, passes."""
        return {
            "n_images": n,
            "ms_per_image": 1e3 * self.seconds / n,
            "floor_ms_per_image": 1e3 * self.floor / n,
            "ratio": self.seconds / self.floor if self.floor else math.nan,
            "best_form_floor_ms_per_image": 1e3 * self.floor_best / n,
            "ratio_best_form": self.seconds / self.floor_best if self.floor_best else math.nan,
            "peak_rss_mb": self.rss_mb,
            "cuda_peak_mb": self.cuda_mb,
            "note": f"{self.forwards / n:.0f} forwards, {self.backwards / n:.0f} backwards per image",
        }


def measure(
    call: Callable[[], Any], floors: Floors, counter: PassCounter, device: torch.device, repeats: int,
    best_floors: Floors | None = None,
) -> Measurement:
    """Warm ``call`` up (safe copies, chunk sizes, model forms, captum setup), run it once counting its
    passes and peak memory, then time it beside its floor (:meth:`Floors.time_beside`, best of ``repeats``)
    and, given ``best_floors``, the same passes in the model's fastest form.

    Timed is a long job's steady state: within :func:`~xai_utils.models.form.steady_state` (the bench's
    :func:`~xai_utils.bench.sections.run`) the warm-up call chooses the model's form, so neither the
    counted nor the timed calls measure forms."""
    call()
    with PeakMemory(device) as mem, counter.count():
        output = call()
    forwards, backwards = counter.forward, counter.backward
    t, floor = floors.time_beside(call, device, repeats, forwards, backwards)
    floor_best = math.nan
    if best_floors is not None:
        _, floor_best = best_floors.time_beside(lambda: None, device, repeats, forwards, backwards)
    return Measurement(output, t, floor, forwards, backwards, mem.rss_mb, mem.cuda_mb, floor_best)


def _fitting(steps: dict[int, Callable[[], Any]], images: int) -> dict[int, Callable[[], Any]]:
    """The passes of at most ``images`` images (the smallest one if none is that small)."""
    return {b: f for b, f in steps.items() if b <= images} or {min(steps): steps[min(steps)]}
