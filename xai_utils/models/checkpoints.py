"""Local checkpoint files: safe reading (tensors only, finite) and CIFAR ResNet name/path resolution.

Everything here runs before a model or any data is built, so a wrong file fails in seconds with
a message naming it.  Files are read with ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor

#: Depths of He et al.'s option-A CIFAR ResNet (arXiv:1512.03385) understood in checkpoint names.
CIFAR_RESNET_DEPTHS = (20, 32, 44, 56, 110)
#: Folder of the named CIFAR-10 ResNet checkpoints under the data root (akamaster's files).
CIFAR_CHECKPOINT_DIR = "cifar10_resnet_checkpoints"
_CIFAR_NAME = re.compile(r"(?:cifar_)?resnet(\d+)(?!\d)")
_SUFFIXES = (".th", ".pt", ".pth", ".ckpt", ".tar", ".bin")


def _strip_module(key: str) -> str:
    """``module.a.b`` -> ``a.b`` (DataParallel prefix, repeated); ``module`` -> ``""``."""
    while key == "module" or key.startswith("module."):
        key = key[len("module.") :]
    return key


def _unwrap(obj: object, path: Path) -> dict[str, Tensor]:
    while isinstance(obj, dict) and not any(isinstance(v, Tensor) for v in obj.values()):
        inner = next((obj[k] for k in ("state_dict", "model_state_dict", "model", "net") if k in obj), None)
        if inner is None:
            raise ValueError(f"{path} holds no state dict (top-level keys: {sorted(map(str, obj))[:8]})")
        obj = inner
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a state dict of tensors (found {type(obj).__name__})")
    out = OrderedDict((_strip_module(k), v) for k, v in obj.items())
    meta = getattr(obj, "_metadata", None)  # per-module versions (BatchNorm, MnasNet read them)
    if meta is not None:
        out._metadata = OrderedDict((_strip_module(k), v) for k, v in meta.items())  # type: ignore[attr-defined]
    return out


def _refusal(err: Exception) -> str:
    """torch's reason for refusing a file, without its advice to load it unsafely."""
    text = str(err)
    found = re.search(r"(Unsupported global: GLOBAL [\w.]+|unsupported GLOBAL [\w.]+[^\n]*)", text)
    if found:
        return f"it holds objects other than tensors ({found.group(1).rstrip('.')})"
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """The state dict of a checkpoint file (``state_dict``/``model``/``net`` unwrapped, no ``module.``).

    Read with ``torch.load(weights_only=True, map_location="cpu")``.  Raises ``FileNotFoundError``
    (naming ``path``), ``IsADirectoryError``, or ``ValueError`` for a file that is not
    a checkpoint of plain tensors or holds a NaN/inf tensor (naming the file and the tensor).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a directory; pass the checkpoint file in it")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; see data/README.md for where checkpoints go")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"{path} is not a readable torch checkpoint: {_refusal(err)}") from err
    state = _unwrap(raw, path)
    for key, value in state.items():
        if value.is_floating_point() or value.is_complex():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise ValueError(
                    f"checkpoint {path}: tensor {key!r} has {bad} NaN/inf values of {value.numel()}"
                )
    return state


def resolve_cifar_checkpoint(name_or_path: str | os.PathLike, root: str | os.PathLike) -> tuple[str, Path]:
    """``(architecture, file)`` of a CIFAR ResNet checkpoint given by name or by path (no loading).

    A name ``resnet20`` / ``32`` / ``44`` / ``56`` / ``110`` is the one file
    ``<root>/cifar10_resnet_checkpoints/<name>-*.th``; anything with a folder part or a suffix
    (``path/to/resnet32.th``) is a path (relative to the working directory), whose file name must
    start with such a name.  The architecture is ``cifar_resnet<depth>`` (``models.ARCHITECTURES``).
    Raises ``ValueError`` (unknown name, several matches), ``FileNotFoundError``, ``IsADirectoryError``.
    """
    text = os.fspath(name_or_path)
    known = ", ".join(f"resnet{d}" for d in CIFAR_RESNET_DEPTHS)
    as_path = Path(text).expanduser()
    is_path = isinstance(name_or_path, os.PathLike) or os.sep in text or "/" in text
    if is_path or as_path.suffix.lower() in _SUFFIXES:
        m = _CIFAR_NAME.match(as_path.name.lower())
        if not m or int(m.group(1)) not in CIFAR_RESNET_DEPTHS:
            raise ValueError(
                f"cannot tell the architecture of checkpoint {as_path} from its file name: it must start "
                f"with one of {known} (He et al.'s option-A CIFAR ResNet), e.g. resnet32.th"
            )
        if as_path.is_dir():
            raise IsADirectoryError(f"checkpoint {as_path} is a directory; pass the checkpoint file in it")
        if not as_path.is_file():
            raise FileNotFoundError(f"checkpoint {as_path} does not exist")
        return f"cifar_resnet{m.group(1)}", as_path
    if not re.fullmatch(r"resnet\d+", text) or int(text[6:]) not in CIFAR_RESNET_DEPTHS:
        raise ValueError(
            f"unknown checkpoint name {text!r}; names: {known} (looked up as "
            f"<data_root>/{CIFAR_CHECKPOINT_DIR}/<name>-*.th), or the path of a .th file"
        )
    folder = Path(root).expanduser() / CIFAR_CHECKPOINT_DIR
    found = sorted(folder.glob(f"{text}-*.th")) if folder.is_dir() else []
    if not found:
        raise FileNotFoundError(f"{folder}/{text}-*.th: expected by preset 'real'; see data/README.md")
    if len(found) > 1:
        raise ValueError(
            f"several checkpoints match {folder}/{text}-*.th: {[f.name for f in found]}; pass one's path"
        )
    return f"cifar_{text}", found[0]
