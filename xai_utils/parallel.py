"""The one seam for per-image work: map a pure chunk function over image chunks, here or on a Ray cluster.

``map_chunks(fn, x, chunk_size=..., shared={...})`` cuts x (N, ...) into fixed chunks of ``chunk_size``
images and concatenates ``fn(chunk, **shared)`` along the first dimension (a tensor or a dict of
tensors).  The engine is one setting for the whole run, :func:`use` (``config.setup(engine=...)`` in the
notebooks):

- ``"local"`` (default): in this process, chunk after chunk (the package's behaviour before this seam);
- ``"ray"``: every chunk is a Ray task (`ray.io <https://docs.ray.io>`_; ``pip install -e .[cluster]``).
  ``address`` names a running cluster (``""``: start a local one); ``gpus_per_task`` is each task's GPU
  share.  The images and the shared objects (models, fits) go into the object store once per call, the
  images as one NumPy array that tasks slice without a copy; a task whose worker dies is retried by Ray.
  Each task runs with the driver's thread count (it asks Ray for as many CPUs) and determinism, so its
  numbers are the local ones.

Chunks are content-keyed: with ``cache=True`` (the default for ``"ray"``) each chunk's result is stored
under ``data/cache/chunks`` by the hash of the function's code, the chunk's pixels and position, and the
shared objects (a model by its weights), so a rerun after a failure computes only the missing chunks.  A
chunk that raises raises its own error (same type, also from a Ray worker) with a note naming the chunk and
its image ids.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import cache, config

__all__ = ["ENGINES", "Engine", "Chunk", "use", "using", "current", "describe", "map_chunks", "ray_module"]

ENGINES = ("local", "ray")
"""Names accepted by :func:`use` (and by every notebook's ``engine`` parameter)."""

#: How often Ray re-runs a task whose worker died (Ray's own task retry; not for exceptions in ``fn``).
TASK_RETRIES = 3

Result = Tensor | dict[str, Tensor]


@dataclass(frozen=True)
class Engine:
    """Where :func:`map_chunks` runs chunks: ``name`` in :data:`ENGINES`; for Ray the cluster ``address``
    (``""``: a local cluster) and the GPUs per task; ``cache``: store each chunk's result (None: for Ray)."""

    name: str = "local"
    address: str = ""
    gpus_per_task: float = 0.0
    cache: bool | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ValueError(f"unknown engine {self.name!r}; engines: {', '.join(ENGINES)}")
        if self.gpus_per_task < 0:
            raise ValueError(f"gpus_per_task must be >= 0, got {self.gpus_per_task}")
        if self.name == "local" and (self.address or self.gpus_per_task):
            raise ValueError("ray_address and ray_gpus_per_task need engine='ray'")

    @property
    def caches(self) -> bool:
        return self.name == "ray" if self.cache is None else self.cache


_ENGINE = Engine()


def use(name: str = "local", *, address: str = "", gpus_per_task: float = 0.0, cache: bool | None = None) -> Engine:
    """Set the engine of every later :func:`map_chunks` call; returns it.  Ray is imported (and a local
    cluster started, or ``address`` joined) on the first Ray call, not here; a missing Ray fails here."""
    global _ENGINE
    engine = Engine(name, address, float(gpus_per_task), cache)
    if engine.name == "ray":
        ray_module()
    _ENGINE = engine
    return engine


def current() -> Engine:
    """The engine :func:`use` set (``Engine()``, local, until then)."""
    return _ENGINE


def describe() -> str:
    """The current engine in words, for a run's provenance."""
    if _ENGINE.name == "local":
        return "local (in this process)"
    return (f"ray at {_ENGINE.address or 'a local cluster'}, {_ENGINE.gpus_per_task:g} GPU per task, "
            f"chunk cache {'on' if _ENGINE.caches else 'off'}")


@contextlib.contextmanager
def using(name: str, **kw: Any) -> Iterator[Engine]:
    """:func:`use` for a ``with`` block, the previous engine restored after it."""
    before = _ENGINE
    try:
        yield use(name, **kw)
    finally:
        globals()["_ENGINE"] = before


@dataclass(frozen=True)
class Chunk:
    """One chunk of images: ``x`` = the images ``start:stop`` of the call's x; ``index`` counts chunks."""

    index: int
    start: int
    stop: int
    x: Tensor


def ray_module():
    try:
        import ray
    except ImportError as err:
        raise ValueError("engine='ray' needs Ray: pip install -e '.[cluster]' (make venv installs it)") from err
    return ray


def _fingerprint(obj: Any) -> Any:
    """A JSON-able stand-in for a shared object in a chunk's cache key: modules by their weights, arrays by
    their bytes, containers element-wise, anything else by its repr."""
    if isinstance(obj, nn.Module):
        return {"module": type(obj).__qualname__, "weights": cache.digest(obj.state_dict())}
    if isinstance(obj, Tensor):
        return {"tensor": cache.digest(obj)}
    if isinstance(obj, np.ndarray):
        return {"array": cache.digest(torch.from_numpy(np.ascontiguousarray(obj)))}
    if isinstance(obj, Mapping):
        return {str(k): _fingerprint(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_fingerprint(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {type(obj).__qualname__: _fingerprint(dataclasses.asdict(obj))}
    return repr(obj)


def _image_ids(ids: Sequence[Any] | None, start: int, stop: int) -> list[Any]:
    return list(range(start, stop)) if ids is None else list(ids[start:stop])


def _call(fn: Callable[..., Result], chunk: Chunk, shared: Mapping[str, Any], ids: list[Any]) -> Result:
    """``fn(chunk, **shared)``, moved to the CPU; an exception gets a note naming the chunk and its images."""
    try:
        out = fn(chunk, **shared)
    except Exception as err:
        shown = ids if len(ids) <= 8 else [*ids[:4], "...", *ids[-2:]]
        _note(err, f"in {getattr(fn, '__qualname__', fn)} on chunk {chunk.index} (images {chunk.start}:{chunk.stop}, "
                   f"ids {shown})")
        raise
    return {k: v.detach().cpu() for k, v in out.items()} if isinstance(out, Mapping) else out.detach().cpu()


def _note(err: BaseException, text: str) -> None:
    if hasattr(err, "add_note"):  # Python >= 3.11; older versions show the error without it
        err.add_note(text)


def _concat(parts: list[Result]) -> Result:
    if isinstance(parts[0], Mapping):
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return torch.cat(parts)


def map_chunks(
    fn: Callable[..., Result],
    x: Tensor,
    *,
    chunk_size: int,
    shared: Mapping[str, Any] | None = None,
    ids: Sequence[Any] | None = None,
    desc: str = "chunks",
    progress: bool | None = None,
) -> Result:
    """``fn(chunk, **shared)`` for every :class:`Chunk` of ``chunk_size`` images of x, concatenated in order.

    ``fn`` is a module-level function (Ray ships it by reference) returning a tensor or a dict of tensors
    whose first dimension concatenates across chunks; it must be pure: the same chunk and shared objects
    give the same result (seed from ``chunk.index`` / ``chunk.start``, never from global state).  ``ids``:
    the images' ids for error messages (default: their positions); ``progress``: a bar over finished chunks
    (None: with Ray only).  The engine is :func:`current`.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if len(x) == 0:
        raise ValueError(f"{desc}: no images to process")
    shared = dict(shared or {})
    bounds = [(k, s, min(s + chunk_size, len(x))) for k, s in enumerate(range(0, len(x), chunk_size))]
    engine = current()
    done: dict[int, Result] = {}
    keys: dict[int, str] = {}
    if engine.caches:
        base = {"fn": f"{fn.__module__}.{fn.__qualname__}", "shared": _fingerprint(shared)}
        code = cache.code_version([fn])
        for k, s, e in bounds:
            keys[k] = cache.key({**base, "chunk": [k, s, e], "x": cache.digest(x[s:e])}, [code])
            found, payload = cache.read_entry(cache.entry_path("chunks", keys[k]), keys[k])
            if found:
                done[k] = payload

    def store(k: int, result: Result) -> None:
        done[k] = result
        if engine.caches:
            cache.atomic_save({"key": keys[k], "payload": result}, cache.entry_path("chunks", keys[k]))

    todo = [b for b in bounds if b[0] not in done]
    show = engine.name == "ray" if progress is None else progress
    bar = config.progress(total=len(bounds), initial=len(bounds) - len(todo), desc=desc, disable=not show)
    with bar:
        if engine.name == "ray" and todo:
            _ray_map(fn, x, shared, ids, todo, engine, store, bar)
        else:
            for k, s, e in todo:
                store(k, _call(fn, Chunk(k, s, e, x[s:e]), shared, _image_ids(ids, s, e)))
                bar.update()
    return _concat([done[k] for k, _, _ in bounds])


def _on_cuda(obj: Any) -> bool:
    if isinstance(obj, nn.Module):
        return any(t.is_cuda for t in (*obj.parameters(), *obj.buffers()))
    if isinstance(obj, Tensor):
        return obj.is_cuda
    return isinstance(obj, dict) and any(_on_cuda(v) for v in obj.values())


def _to(obj: Any, device: torch.device) -> Any:
    """Modules and tensors (also in dicts) moved to ``device``; a module moves in place."""
    if isinstance(obj, (nn.Module, Tensor)):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def _ray_task(fn, images: np.ndarray, start: int, stop: int, index: int, shared: dict, ids: list, settings: dict):
    """One chunk on a Ray worker, with the driver's threads, determinism, device kind and kept memory."""
    torch.set_num_threads(settings["threads"])
    config.keep_freed_memory()
    torch.use_deterministic_algorithms(settings["deterministic"], warn_only=True)
    device = torch.device("cuda" if settings["cuda"] and torch.cuda.is_available() else "cpu")
    x = torch.from_numpy(np.array(images[start:stop])).to(device)  # a copy: the store's array is read-only
    try:
        return _call(fn, Chunk(index, start, stop, x), _to(shared, device), ids)
    except Exception as err:  # noqa: BLE001 - returned, not raised: Ray's retries are for dead workers
        _note(err, "raised on a Ray worker:\n" + traceback.format_exc())
        return err


def _check_fits(ray, cpus: int, gpus: float) -> None:
    """A task that no node can hold would wait forever: refuse it with the numbers instead."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if cpus > most_cpus:
        raise ValueError(f"each Ray task asks for threads={cpus} CPUs, but the largest node of the cluster has "
                         f"{most_cpus:g}: lower the notebook's threads or add larger nodes")
    if gpus > most_gpus:
        raise ValueError(f"each Ray task asks for ray_gpus_per_task={gpus:g} GPUs, but the largest node of the "
                         f"cluster has {most_gpus:g}")


def _ray_map(fn, x: Tensor, shared: dict, ids, todo: list, engine: Engine, store, bar) -> None:
    ray = ray_module()
    if not ray.is_initialized():
        ray.init(address=engine.address or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    on_cuda = x.is_cuda or _on_cuda(shared)  # the store holds CPU copies; tasks with a GPU share move to it
    settings = {"threads": torch.get_num_threads(), "deterministic": torch.are_deterministic_algorithms_enabled(),
                "cuda": engine.gpus_per_task > 0}
    _check_fits(ray, settings["threads"], engine.gpus_per_task)
    images = ray.put(x.detach().cpu().numpy())  # once per call; tasks slice it from shared memory
    shared_ref = ray.put(_to(copy.deepcopy(shared), torch.device("cpu")) if on_cuda else shared)
    task = ray.remote(_ray_task).options(num_cpus=settings["threads"], num_gpus=engine.gpus_per_task,
                                         max_retries=TASK_RETRIES)
    pending = {task.remote(fn, images, s, e, k, shared_ref, _image_ids(ids, s, e), settings): k for k, s, e in todo}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            k = pending.pop(ready[0])
            result = ray.get(ready[0])
            if isinstance(result, BaseException):
                raise result
            store(k, result)
            bar.update()
    finally:
        for ref in pending:
            ray.cancel(ref)
