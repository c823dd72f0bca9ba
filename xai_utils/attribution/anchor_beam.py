"""Anchor explanations of images (Ribeiro et al., AAAI 2018) by the authors' library, ``anchor-exp``.

The hermitry paper runs "the open source implementation by Ribeiro et al." with its defaults: quickshift
superpixels (kernel_size 4, max_dist 200, ratio 0.2), each non-anchor superpixel replaced by its mean
colour with probability 0.5, and the KL-LUCB beam search (threshold 0.95, delta 0.1, tau 0.15, batch 100,
beam 1, epsilon_stop 0.05) that draws as many samples as it needs.  This module calls that code
(``anchor.anchor_image.AnchorImage.get_sample_fn`` and ``anchor.anchor_base.AnchorBaseBeam.anchor_beam``,
i.e. ``explain_instance`` without its explanation formatting, which fails on numpy >= 1.24), feeds it the
model in batches, seeds its global numpy draws, and silences its prints.  ``anchor-exp`` 0.0.2.0 pulls
text-only dependencies (spacy, lime): install it with ``pip install --no-deps anchor-exp==0.0.2.0``
(``make`` does).  The package's own ``anchor`` (:mod:`.perturbation`: greedy, fixed samples, constant
baseline) is a different, faster method.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_images
from ..models.form import fastest_form
from .postprocess import resolve_target

__all__ = ["anchor_beam", "ANCHOR_DEFAULTS"]

#: The library's defaults (``AnchorImage.explain_instance`` and ``AnchorBaseBeam.anchor_beam``).
ANCHOR_DEFAULTS = dict(threshold=0.95, delta=0.1, tau=0.15, batch_size=100, beam_size=1, epsilon_stop=0.05)


def _library():
    try:
        from anchor import anchor_base, anchor_image
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "anchor_beam needs Ribeiro et al.'s library: pip install --no-deps anchor-exp==0.0.2.0"
        ) from err
    return anchor_base, anchor_image


def anchor_beam(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    *,
    threshold: float = ANCHOR_DEFAULTS["threshold"],
    delta: float = ANCHOR_DEFAULTS["delta"],
    tau: float = ANCHOR_DEFAULTS["tau"],
    batch_size: int = ANCHOR_DEFAULTS["batch_size"],
    beam_size: int = ANCHOR_DEFAULTS["beam_size"],
    epsilon_stop: float = ANCHOR_DEFAULTS["epsilon_stop"],
    segmentation: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
    chunk_size: int = 256,
    callback: Callable[[Tensor, dict], None] | None = None,
) -> Tensor:
    """Anchor of each image's predicted class, by ``anchor-exp``; x : (N, 3, H, W) in [0, 1].

    ``target`` must be None or the predicted class (the library explains the prediction).  The map
    gives the k-th anchor superpixel the value 1/k, others 0: (N, 3, H, W).  ``segmentation`` maps an
    (H, W, 3) float image to labels (default: the library's quickshift).  ``callback(batch, info)`` sees
    every perturbed batch the library evaluates ({"image": (B,), "row": (B,)}, rows counted per image),
    not the one clean forward per image that picks the label.  Image i's draws use numpy seed
    ``seed + i``; the global numpy state is restored afterwards.
    """
    check_images(x)
    if x.shape[1] != 3:
        raise ValueError(f"anchor_beam segments RGB images (quickshift), got {x.shape[1]} channels")
    pred = resolve_target(model, x, None)
    if target is not None and not torch.equal(resolve_target(model, x, target), pred):
        raise ValueError("anchor_beam explains the predicted class: target must be None or the prediction")
    anchor_base, anchor_image = _library()
    explainer = anchor_image.AnchorImage(segmentation_fn=segmentation)
    out = torch.zeros(x.shape[0], *x.shape[2:], dtype=x.dtype)
    # anchor-exp's adaptive search evaluates 147-529 samples per image in `make bench`: ~100 at least
    net = fastest_form(model, x, batch=chunk_size, workload=100 * x.shape[0]).module  # eager in the notebooks
    state = np.random.get_state()
    try:
        for i in range(x.shape[0]):
            seen = {"rows": 0, "clean": True}

            @torch.no_grad()
            def classify(imgs: np.ndarray, i: int = i, seen: dict = seen) -> np.ndarray:
                z = torch.from_numpy(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))).to(x.device, x.dtype)
                probs = []
                for start in range(0, len(z), chunk_size):
                    part = z[start : start + chunk_size]
                    if callback is not None and not seen["clean"]:
                        rows = torch.arange(seen["rows"], seen["rows"] + len(part))
                        callback(part, {"image": torch.full((len(part),), i), "row": rows})
                        seen["rows"] += len(part)
                    probs.append(net(part).softmax(1).double().cpu())
                seen["clean"] = False
                return torch.cat(probs).numpy()

            np.random.seed(seed + i)
            img = x[i].detach().permute(1, 2, 0).double().cpu().numpy()
            with contextlib.redirect_stdout(io.StringIO()):
                segments, sample = explainer.get_sample_fn(img, classify)
                exp = anchor_base.AnchorBaseBeam.anchor_beam(
                    sample, delta=delta, epsilon=tau, batch_size=batch_size, desired_confidence=threshold,
                    beam_size=beam_size, epsilon_stop=epsilon_stop,
                )
            seg = torch.from_numpy(np.asarray(segments))
            for rank, f in enumerate(exp["feature"], 1):
                out[i][seg == f] = 1.0 / rank
    finally:
        np.random.set_state(state)
    return out.unsqueeze(1).expand(-1, x.shape[1], -1, -1).contiguous().to(x.device)
