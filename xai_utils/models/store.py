"""Trained offline models shipped with the repository, so that every CPU computes from the same weights.

Training is not bit-reproducible across CPUs (the vector ISA changes float rounding, and with it every
weight), so the small models that the offline chapters train are committed: ``data/models/<kind>/<key>.pt``,
where ``key`` hashes the training configuration only (architecture, data description, settings, seed),
and ``data/models/MANIFEST.json`` lists each file's sha256, its configuration, the version of the code
that trained it (:func:`xai_utils.cache.code_version`) and the commit it was made from.

:func:`load_or_train` returns the shipped payload for a configuration when there is one, else trains
through :mod:`xai_utils.cache`.  ``retrain=True`` (the chapters' ``-p retrain=true``) ignores the shipped
files; with ``XAI_SHIP_MODELS=1`` in the environment (``make models``) every payload is also written here.
A shipped file whose checksum does not match the manifest (truncated, a Git LFS pointer) is an error,
never a silent retraining: results would then depend on the machine again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from .. import cache
from .. import config as settings

STORE_DIR = settings.REPO_ROOT / "data" / "models"
MANIFEST = "MANIFEST.json"
SHIP_ENV = "XAI_SHIP_MODELS"


def store_key(kind: str, config: Mapping[str, Any]) -> str:
    """Hex key of a training configuration (no code version: shipped weights outlive code edits)."""
    blob = json.dumps({"kind": kind, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{relative file name: {sha256, kind, config, code_version, commit, torch, machine}}``."""
    path = Path(root or STORE_DIR) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def load(kind: str, config: Mapping[str, Any], *, root: Path | None = None) -> Any | None:
    """The shipped payload for ``(kind, config)``, or None when none is shipped.

    Raises ValueError when the file is missing, altered or does not carry the expected key.
    """
    root = Path(root or STORE_DIR)
    name = f"{kind}/{store_key(kind, config)}.pt"
    entry = manifest(root).get(name)
    if entry is None:
        return None
    path = root / name
    hint = "restore it (git checkout -- data/models) or train anew with -p retrain=true"
    if not path.is_file():
        raise ValueError(f"shipped model {path} is listed in {MANIFEST} but is not a file; {hint}")
    digest = _sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(f"shipped model {path} has sha256 {digest[:12]}..., {MANIFEST} says "
                         f"{entry['sha256'][:12]}...: the file is damaged (or a Git LFS pointer); {hint}")
    stored = cache.safe_load(path)
    if not isinstance(stored, dict) or stored.get("key") != store_key(kind, config):
        raise ValueError(f"shipped model {path} does not carry the key of its configuration; {hint}")
    return stored["payload"]


def save(kind: str, config: Mapping[str, Any], payload: Any, *, code: Iterable[ModuleType | Callable | str] = (),
         root: Path | None = None) -> Path:
    """Write ``payload`` as the shipped model of ``(kind, config)`` and list it in the manifest."""
    root = Path(root or STORE_DIR)
    key = store_key(kind, config)
    path = root / kind / f"{key}.pt"
    cache.atomic_save({"key": key, "kind": kind, "payload": payload}, path)
    entries = manifest(root)
    entries[f"{kind}/{key}.pt"] = {
        "sha256": _sha256(path),
        "kind": kind,
        "config": json.loads(json.dumps(dict(config), sort_keys=True, default=str)),
        "code_version": cache.code_version(code),
        "commit": settings.git_commit(ignore=("data/models/**",)),  # make models rewrites data/models itself
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    text = json.dumps(entries, indent=1, sort_keys=True) + "\n"
    cache.atomic_write(root / MANIFEST, lambda f: f.write(text.encode()))
    return path


def load_or_train(kind: str, config: Mapping[str, Any], build: Callable[[], Any], *,
                  code: Iterable[ModuleType | Callable | str] = (), retrain: bool = False) -> Any:
    """Shipped payload for ``(kind, config)`` unless ``retrain``; else ``cache.load_or_build``.

    With ``XAI_SHIP_MODELS=1`` the payload is (re)written to the shipped store as well.
    """
    code = list(code)
    if not retrain:
        shipped = load(kind, config)
        if shipped is not None:
            return shipped
    payload = cache.load_or_build(kind, config, build, code=code)
    if os.environ.get(SHIP_ENV) == "1":
        save(kind, config, payload, code=code)
    return payload
