"""Content-addressed cache under ``data/cache``: key = hash(config, source code of the code it depends on).

The code part of a key is the source of every ``xai_utils`` module in the import closure of the
modules or functions named (imports read from the source, so imports inside functions count): an
edit to any module a result depends on is a cache miss, with no hand-kept list to forget one.
Entries are written atomically (temporary file + ``os.replace``, permissions from the umask) and
read with ``torch.load(weights_only=True)``; an unreadable or mismatching entry (a directory in
its place included) is reported, removed and rebuilt instead of crashing the notebook.  Payloads
are what ``weights_only`` accepts: tensors, numbers, strings and nested dicts/lists of them.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from . import config as settings

FORMAT = 2
PACKAGE = __name__.rpartition(".")[0]


def _imported(module: ModuleType) -> set[str]:
    """Names of the package's modules that ``module``'s source imports (anywhere in the file)."""
    out: set[str] = set()
    tree = ast.parse(inspect.getsource(module))
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module or ""
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # ``from . import cache`` names a module
    return {n for n in out if n == PACKAGE or n.startswith(PACKAGE + ".")}


@functools.cache
def _closure(name: str) -> frozenset[str]:
    """``name`` and every package module reachable from it by imports (parents included)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        try:
            module = importlib.import_module(current)
        except ModuleNotFoundError:  # ``from .pkg import function``: not a module
            continue
        seen.add(current)
        parts = current.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_imported(module) - seen)
    return frozenset(seen)


def code_modules(code: Iterable[ModuleType | Callable | str]) -> list[str]:
    """Sorted names of the package modules whose source a result computed by ``code`` depends on."""
    names: set[str] = set()
    for item in code:
        if not isinstance(item, str):
            module = item if isinstance(item, ModuleType) else inspect.getmodule(item)
            names |= _closure(module.__name__)
    return sorted(names)


def code_version(code: Iterable[ModuleType | Callable | str]) -> str:
    """sha256 over the source of the import closure of the modules/functions in ``code`` (a function
    counts as its whole module), plus any literal strings."""
    code = list(code)
    h = hashlib.sha256()
    for name in code_modules(code):
        h.update(name.encode() + b"\0" + inspect.getsource(importlib.import_module(name)).encode())
    for item in code:
        if isinstance(item, str):
            h.update(item.encode())
    return h.hexdigest()


def key(config: Mapping[str, Any], code: Iterable[ModuleType | Callable | str] = ()) -> str:
    """Hex key of a JSON-serialisable config together with the code version."""
    blob = json.dumps({"format": FORMAT, "config": config, "code": code_version(code)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def digest(*items: torch.Tensor | Mapping[str, torch.Tensor]) -> str:
    """Content hash (24 hex digits) of tensors and of mappings of tensors (values in key order, e.g. a
    ``state_dict``): shapes, dtypes and bytes, for the ``config`` of :func:`load_or_build`."""
    h = hashlib.sha256()
    for item in items:
        tensors = [item[k] for k in sorted(item)] if isinstance(item, Mapping) else [item]
        for t in tensors:
            h.update(str((tuple(t.shape), t.dtype)).encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def entry_path(kind: str, k: str, root: Path | None = None) -> Path:
    return Path(root or settings.CACHE_DIR) / kind / f"{k}.pt"


def umask() -> int:
    """The process's umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    Readers never see half a file; a failed write leaves ``path`` as it was.  The file gets the
    permissions a plain ``open`` would give (0666 less the umask), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def safe_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")``."""
    return torch.load(path, map_location="cpu", weights_only=True)


def read_entry(path: Path, k: str) -> tuple[bool, Any]:
    """``(True, payload)`` of the entry at ``path`` written under key ``k``; ``(False, None)`` when it is absent,
    or unreadable or mismatching (reported with a warning and removed, a directory in its place included)."""
    if not (path.exists() or path.is_symlink()):
        return False, None
    try:
        stored = safe_load(path)
        if not isinstance(stored, dict) or stored.get("key") != k:
            raise ValueError("entry does not carry the expected key")
        return True, stored["payload"]
    except Exception as err:  # noqa: BLE001 - any unreadable entry is rebuilt
        warnings.warn(f"cache entry {path} is unreadable ({type(err).__name__}: {err}); rebuilding it", stacklevel=3)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return False, None


def load_or_build(
    kind: str,
    config: Mapping[str, Any],
    build: Callable[[], Any],
    *,
    code: Iterable[ModuleType | Callable | str] = (),
    root: Path | None = None,
) -> Any:
    """Return the cached payload for ``(kind, config, code)``, building and storing it when absent.

    A corrupt entry (truncated file, foreign pickle, wrong key inside) gives a warning and is rebuilt.
    """
    code = list(code)
    k = key(config, code)
    path = entry_path(kind, k, root)
    found, payload = read_entry(path, k)
    if found:
        return payload
    payload = build()
    atomic_save({"key": k, "kind": kind, "config": json.dumps(dict(config), sort_keys=True, default=str),
                 "payload": payload}, path)
    return payload
