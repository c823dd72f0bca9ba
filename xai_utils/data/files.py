"""Checked readers of dataset files: every error names the file, nothing is silently reinterpreted.

* :func:`read_image`: one image as (H, W, 3) uint8, optionally resized (OpenOOD's test transform).
* :func:`class_folders`: the image files of ``root/<class>/`` by class *name*; hidden (dot-prefixed)
  folders and files are ignored, a missing, unexpected or empty class folder raises naming it.
* :func:`read_idx`: MNIST idx(.gz) arrays, checked against their header.
* :func:`svhn_arrays`: SVHN ``.mat`` arrays, checked for layout.
* :func:`cifar_batch`, :func:`cifar_meta`: CIFAR python pickles through :class:`CifarUnpickler`,
  which builds numpy arrays and plain containers only (a pickle naming any other global raises).
"""

from __future__ import annotations

import codecs
import gzip
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
#: How :func:`read_image` fits an image to a square side (see there).
FITS = ("cover", "crop", "stretch")


def read_image(path: Path, size: int | None, *, fit: str = "cover") -> np.ndarray:
    """(H, W, 3) uint8; with ``size`` the image is fitted to ``size`` x ``size`` by ``fit`` (:data:`FITS`):
    ``cover`` resizes the shorter side to ``size`` (bilinear, antialiased) and crops the centre; ``crop``
    crops the centre of the unresized image (zeros outside a smaller one; torchvision's ``CenterCrop``
    alone); ``stretch`` resizes both sides to ``size`` (torchvision's ``Resize((size, size))``).

    A file PIL cannot decode (truncated, not an image) raises ``ValueError`` naming ``path``.
    """
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; known: {list(FITS)}")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                if fit == "stretch":
                    return np.asarray(im.resize((size, size), Image.BILINEAR))
                w, h = im.size
                if fit == "cover":
                    scale = size / min(w, h)
                    w, h = max(size, round(w * scale)), max(size, round(h * scale))
                    if (w, h) != im.size:
                        im = im.resize((w, h), Image.BILINEAR)
                left, top = round((w - size) / 2), round((h - size) / 2)
                im = im.crop((left, top, left + size, top + size))
            return np.asarray(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"image {path} could not be read ({type(err).__name__}: {err})") from err


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def image_files(folder: Path) -> list[Path]:
    """Sorted visible image files (``IMAGE_EXTENSIONS``, any case) directly in ``folder``."""
    return sorted(
        p for p in folder.iterdir() if _visible(p) and p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def class_folders(root: Path, classes: Sequence[str] | None = None) -> list[tuple[str, list[Path]]]:
    """``[(class name, sorted image files)]`` of ``root/<class>/``, in label order.

    With ``classes`` the visible sub-folders must be exactly those names (label k = ``classes[k]``);
    without, the visible sub-folders in sorted order.  Hidden folders (``.ipynb_checkpoints``) are
    ignored; a missing, unexpected or empty class folder raises ``ValueError`` naming it.
    """
    found = sorted(p.name for p in root.iterdir() if _visible(p) and p.is_dir())
    if classes is None:
        names = found
        if not names:
            raise ValueError(f"no images: no class folders under {root}")
    else:
        names = list(classes)
        if len(set(names)) != len(names):
            raise ValueError(f"classes {names} name a class twice")
        missing, extra = [c for c in names if c not in found], [c for c in found if c not in names]
        if missing or extra:
            raise ValueError(
                f"class folders under {root} do not match the {len(names)} expected classes: "
                f"missing {missing}, unexpected {extra} (expected {names})"
            )
    out = [(c, image_files(root / c)) for c in names]
    empty = [str(root / c) for c, files in out if not files]
    if empty:
        raise ValueError(
            f"class folder {', '.join(empty)} has no images ({'/'.join(IMAGE_EXTENSIONS)}); "
            "remove it or add its images"
        )
    return out


def read_idx(path: Path) -> np.ndarray:
    """An idx(.gz) file of uint8 (MNIST) as an array of the shape in its header."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a cut gzip stream an EOFError
        raise ValueError(f"{path} could not be read ({type(err).__name__}: {err})") from err
    magic, ndim = int.from_bytes(raw[:4], "big"), raw[3] if len(raw) > 3 else 0
    if len(raw) < 4 or magic >> 8 != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{path} is not an idx file of uint8 (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = len(raw) - 4 - 4 * ndim
    if body != int(np.prod(dims)):
        raise ValueError(
            f"{path}: its header says shape {dims} ({int(np.prod(dims))} bytes), it holds {body}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


_ARRAY = np.zeros(1)
_RECONSTRUCT, _FROMBUFFER = _ARRAY.__reduce__()[0], _ARRAY.__reduce_ex__(5)[0]
_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED_GLOBALS = {
    **{(f"numpy.{c}.multiarray", "_reconstruct"): _RECONSTRUCT for c in ("core", "_core")},
    **{(f"numpy.{c}.numeric", "_frombuffer"): _FROMBUFFER for c in ("core", "_core")},
    **{(f"numpy.{c}.multiarray", "scalar"): _SCALAR for c in ("core", "_core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes in protocol-2 pickles
}


class CifarUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays, numbers, strings, bytes, lists and dicts only.

    ``find_class`` (which a pickle needs for anything else) only knows the numpy array and scalar
    constructors and ``_codecs.encode``; every other global, e.g. ``os.system``, raises.
    """

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[module, name]
        raise pickle.UnpicklingError(
            f"global {module}.{name} is not allowed: a CIFAR pickle holds only numpy arrays, lists, "
            "dicts, bytes and numbers"
        )


def _unpickle(path: Path) -> dict[str, object]:
    """A dict pickle read with :class:`CifarUnpickler` (``encoding="bytes"``), its keys as ``str``."""
    try:
        with open(path, "rb") as fh:
            obj = CifarUnpickler(fh, encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 - any unreadable or refused pickle is reported the same way
        raise ValueError(
            f"{path} is not a readable CIFAR pickle ({type(err).__name__}: {err})"[:600]
        ) from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a CIFAR pickle: it holds a {type(obj).__name__}, not a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"a {type(value).__name__}"


def cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR python batch file.

    ``data`` must be uint8 (N, 3072): rows of channel-first 3 x 32 x 32 pixels, as CIFAR stores
    them (a row's order cannot be checked; a float, 4-D or other-length array raises).  Labels
    must be N integers in [0, num_classes).  Every error names ``path``.
    """
    batch = _unpickle(path)
    missing = [k for k in ("data", label_key) if k not in batch]
    if missing:
        raise ValueError(f"{path}: CIFAR batch without {missing} (its keys: {sorted(batch)[:8]})")
    data = batch["data"]
    if not (
        isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072
    ):
        raise ValueError(
            f"{path}: 'data' must be a uint8 array (N, 3072) of channel-first 3 x 32 x 32 rows, as CIFAR "
            f"stores it; got {_describe(data)}"
        )
    labels = np.asarray(batch[label_key])
    if labels.shape != (len(data),) or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"{path}: '{label_key}' must be {len(data)} integers, got {_describe(labels)}")
    if labels.size and not (0 <= labels.min() and labels.max() < num_classes):
        raise ValueError(
            f"{path}: '{label_key}' must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def svhn_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, H, W) uint8 and labels (N,) int64 (10 read as 0) of an SVHN ``*_32x32.mat`` file."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"{path} is not a readable .mat file ({type(err).__name__}: {err})"[:600]) from err
    x, y = mat.get("X"), np.asarray(mat.get("y"))
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 4 and x.shape[2] == 3):
        raise ValueError(f"{path}: 'X' must be a uint8 array (H, W, 3, N), got {_describe(x)}")
    if y.size != x.shape[3] or y.dtype.kind not in "iuf" or not np.all(np.isin(y, np.arange(11))):
        raise ValueError(f"{path}: 'y' must hold {x.shape[3]} labels in 0..10, got {_describe(y)}")
    return x.transpose(3, 2, 0, 1), y.ravel().astype(np.int64) % 10


def cifar_meta(path: Path, names_key: str, num_classes: int) -> tuple[str, ...]:
    """The ``num_classes`` class names in a CIFAR meta pickle (``batches.meta`` / ``meta``)."""
    names = _unpickle(path).get(names_key)
    if not isinstance(names, list | tuple) or len(names) != num_classes:
        raise ValueError(f"{path}: '{names_key}' must list {num_classes} class names, got {_describe(names)}")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
