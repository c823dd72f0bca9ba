"""The one conversion of metric inputs: numpy arrays, torch tensors (any device) or sequences -> numpy."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike


def as_numpy(values: ArrayLike, dtype: DTypeLike | None = None) -> np.ndarray:
    """``values`` as a numpy array (a tensor is detached and copied to the CPU first); ``dtype`` as numpy's."""
    if hasattr(values, "detach"):  # a torch tensor; metrics import no torch
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)
