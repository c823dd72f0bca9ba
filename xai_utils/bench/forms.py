"""The model's forms in the bench: each timed forward and forward+backward, and the floors of the fastest."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..models import FORMS, fastest_form
from .settings import BenchSettings, ImageSetting, row
from .timing import Floors, forward_backward_step, forward_step


def best_form_floors(
    model: nn.Module, xb: dict[int, Tensor], tx: dict[int, Tensor], best_b: int, chunk_fb: int, s: ImageSetting,
    settings: BenchSettings, device: torch.device,
) -> tuple[list[dict[str, Any]], Floors]:
    """The model's forms (:mod:`xai_utils.models.form`) timed forward at the best batch and forward+backward
    at the engine's chunk: one row per form, and the floors of the fastest (every form is tried: the bench's
    workload is given as unbounded, so compiling is worth it unless ``settings.compile`` is off)."""
    candidates = [f for f in FORMS if settings.compile or "compile" not in f]
    rows = []
    chosen = {}
    for what, n, backward in (("forward", best_b, False), ("forward+backward", chunk_fb, True)):
        form = fastest_form(model, xb[n], batch=n, backward=backward, workload=2**62, candidates=candidates)
        chosen[backward] = form
        if not form.seconds_per_image:
            rows.append(row(device, "forward", f"{what} forms", config=f"{s.size}x{s.size}", n_images=n,
                            note="not measured: deterministic algorithms or hooks on the model keep it eager"))
            continue
        eager = form.seconds_per_image["eager"]
        for name, sec in form.seconds_per_image.items():
            rows.append(row(device, "forward", f"{what} form {name}", config=f"{s.size}x{s.size}", n_images=n,
                            ms_per_image=1e3 * sec, ratio=sec / eager,
                            note="fastest" if name == form.form else ""))
        rows += [row(device, "forward", f"{what} form {name}", config=f"{s.size}x{s.size}", n_images=n,
                     note=f"left out: {why}") for name, why in form.left_out.items()]
    fwd, bwd = chosen[False].module, chosen[True].module
    best = Floors({best_b: forward_step(fwd, xb[best_b])},
                  {chunk_fb: forward_backward_step(bwd, xb[chunk_fb], tx[chunk_fb])})
    return rows, best
