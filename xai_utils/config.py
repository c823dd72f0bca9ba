"""Run-time settings shared by every notebook: device, seeds, determinism, threads, memory, paths.

Every device choice in the project goes through :func:`resolve_device`, so ``device="auto"``
means the same thing everywhere (CUDA when available, else CPU).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import random
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("XAI_CACHE_DIR", REPO_ROOT / "data" / "cache"))
PAPER_NUMBERS_DIR = REPO_ROOT / "data" / "paper_numbers"
BOOK_DIR = REPO_ROOT / "book"
RESULTS_DIR = BOOK_DIR / "results"
DATA_ROOT_ENV = "XAI_DATA_ROOT"
#: What the book's runs write (executed notebooks, their results): changes there do not make a tree dirty.
GENERATED = ("book/*.ipynb", "book/*/*.ipynb", "book/results")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, text=True, capture_output=True, check=True).stdout


def git_dirty(ignore: tuple[str, ...] = ()) -> list[str]:
    """Tracked files with uncommitted changes, outside the generated outputs (:data:`GENERATED`) and the
    glob patterns ``ignore``."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  *(f":(exclude,glob){p}" for p in (*GENERATED, *ignore)))
    return [line[3:] for line in status.splitlines() if line.strip()]


def sub_seed(seed: int, name: str) -> int:
    """A deterministic seed for the part ``name`` of an experiment seeded with ``seed``: every random draw
    of a chapter (data subsets, training, perturbation masks, bootstraps) derives its seed here."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(1)[0])


def git_commit(ignore: tuple[str, ...] = ()) -> str:
    """Short commit of the repository, with ``-dirty`` when :func:`git_dirty` (``ignore``: globs whose
    changes do not count, e.g. the outputs being written); "unknown" outside git."""
    try:
        return _git("rev-parse", "--short=12", "HEAD").strip() + ("-dirty" if git_dirty(ignore) else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def data_root(path: str | os.PathLike | None = None) -> Path:
    """Root of the real datasets: ``path`` if given, else ``$XAI_DATA_ROOT``, else ``../shared/data``."""
    if path:
        return Path(path).expanduser().resolve()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "data").resolve()


def data_path(entry: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A file named by a preset parameter (a checkpoint, a weight file): ``entry`` itself when absolute
    (``~`` expanded), else ``entry`` under :func:`data_root` (of ``root``)."""
    path = Path(entry).expanduser()
    return path if path.is_absolute() else data_root(root) / path


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda if available, else cpu; any other value is checked and returned as a device."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:i]'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


def best_time(fn: Callable[[], Any], device: torch.device, repeats: int = 1) -> float:
    """Best wall time (s) of ``repeats`` calls of ``fn`` (at least one), with CUDA synchronised around each
    call on a GPU ``device``; the caller has warmed ``fn`` up."""
    best = math.inf
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


@functools.cache
def _glibc() -> Any | None:
    """The process's C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None; looked
    up once per process (every bench measurement and Ray task asks)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the system.

    By default glibc serves large blocks with ``mmap`` and unmaps them when freed (and trims the heap's
    free top), so every forward pass faults its activations in again, page by page, at a cost that grows
    with the batch: on 2 CPU cores at 64x64 px the offline classifier's forward took 0.60 ms/image at 64
    images and 1.33 at 128 (115k page faults per pass), 0.60 and 0.63 with this setting.  The cost: the
    process keeps its high-water mark until :func:`release_freed_memory`, and aligned allocations leave
    fragments (peak RSS over a mix of attribution methods 14-18% higher here).  Returns False, changing
    nothing, where the C library is not glibc."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def release_freed_memory() -> None:
    """Hand the memory that malloc keeps (see :func:`keep_freed_memory`) back to the system (glibc only)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(
    seed: int = 0,
    *,
    device: str = "auto",
    threads: int | None = 2,
    deterministic: bool = True,
    engine: str = "local",
    ray_address: str = "",
    ray_gpus_per_task: float = 0.0,
) -> torch.device:
    """Seed everything, fix the thread count, pick deterministic kernels, keep freed memory for reuse
    (:func:`keep_freed_memory`) and choose the engine of the per-image work (``xai_utils.parallel.use``:
    ``"local"`` or ``"ray"`` at ``ray_address``); return the device.

    The thread count is fixed because trained weights differ at the 4th decimal between thread
    counts, and nbval compares printed numbers (Ray tasks run with the same count).
    """
    from . import parallel  # lazy: parallel imports this module

    parallel.use(engine, address=ray_address, gpus_per_task=ray_gpus_per_task)
    if threads is not None:
        torch.set_num_threads(int(threads))
    keep_freed_memory()
    seed_everything(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return resolve_device(device)


def progress(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm progress bar for long loops (plain tqdm, so no ipywidgets are needed in notebooks).

    Outside a terminal (papermill, nbval, CI logs) it redraws at most every 10 s, which keeps the
    executed notebooks short; nbval masks the remaining timings (tests/nbval_sanitize.cfg).
    """
    from tqdm.std import tqdm

    kwargs.setdefault("mininterval", 0.1 if sys.stderr.isatty() else 10.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
