"""Loaders for real image datasets (same ``Split`` interface) and the real CIFAR-10 OOD benchmark.

Layouts read: OpenOOD image lists (``relpath label`` per line), class folders (ImageFolder: the
CIFAR-10 JPEG test set, DTD), CIFAR python pickles, SVHN ``.mat``, MNIST idx(.gz), and a flat
folder of ``<wnid>_<name>.jpg`` (one ImageNet image per class).

Resizing (``size=``) follows OpenOOD's test transform: resize the shorter side to ``size``
(bilinear, antialiased: PIL's filter, as torchvision's ``Resize`` on PIL images), then centre-crop
to ``size x size``. Grey images become 3 identical channels. A missing path raises
``FileNotFoundError`` naming it (the runner adds which preset expected it); a file in the
wrong format or layout raises ``ValueError`` naming it (the checked readers are in :mod:`.files`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import config
from .files import (
    IMAGE_EXTENSIONS,  # noqa: F401 - re-exported
    cifar_batch,
    cifar_meta,
    class_folders,
    image_files,
    read_idx,
    read_image,
    svhn_arrays,
)
from .ood import NORMALISATION, Benchmark, Split, stratified_split

PathLike = str | os.PathLike

#: CIFAR-10's class names in label order (airplane = 0 ... truck = 9), as in its ``batches.meta``.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

#: ImageNet-1k classes left out of the CIFAR-10 near-OOD set, as inclusive ranges of the standard
#: class index (= position of the wnid in sorted order). Chosen by reading the 1000 class names:
#: every class that is, or at 32x32 looks like, one of the ten CIFAR-10 classes.
IMAGENET_CIFAR10_OVERLAP: dict[str, tuple[tuple[int, int], ...]] = {
    "airplane": ((404, 404), (895, 895), (908, 908)),  # airliner, warplane, wing
    "automobile": (
        (407, 407), (436, 436), (468, 468), (511, 511), (609, 609), (627, 627),
        (654, 654), (656, 656), (661, 661), (717, 717), (751, 751), (817, 817),
    ),  # ambulance, beach wagon, cab, convertible, jeep, limousine, minibus, minivan, Model T, pickup,
    # racer, sports car
    "bird": ((7, 24), (80, 100), (127, 146)),  # cock ... great grey owl, black grouse ... black swan, white stork ... albatross
    "cat": ((281, 293),),  # tabby ... Egyptian cat (domestic), cougar ... cheetah (big cats)
    "deer": ((351, 353),),  # no deer in ImageNet-1k; the deer-like hartebeest, impala, gazelle
    "dog": ((151, 280), (537, 537)),  # Chihuahua ... Mexican hairless, timber wolf ... grey fox, dogsled
    "frog": ((30, 32),),  # bullfrog, tree frog, tailed frog
    "horse": ((339, 339), (603, 603)),  # sorrel, horse cart
    "ship": (
        (403, 403), (472, 472), (484, 484), (510, 510), (554, 554), (576, 576), (625, 625),
        (628, 628), (724, 724), (780, 780), (814, 814), (833, 833), (871, 871), (914, 914),
    ),  # aircraft carrier, canoe, catamaran, container ship, fireboat, gondola, lifeboat, liner,
    # pirate ship, schooner, speedboat, submarine, trimaran, yawl
    "truck": ((555, 555), (569, 569), (675, 675), (734, 734), (864, 864), (867, 867)),
    # fire engine, garbage truck, moving van, police van, tow truck, trailer truck
}  # fmt: skip


def imagenet_cifar10_overlap() -> list[int]:
    """Sorted ImageNet-1k class indices of ``IMAGENET_CIFAR10_OVERLAP`` (all CIFAR-10 classes)."""
    return sorted(
        {i for ranges in IMAGENET_CIFAR10_OVERLAP.values() for lo, hi in ranges for i in range(lo, hi + 1)}
    )


def _require(path: PathLike, what: str = "path") -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist; see data/README.md for the layout")
    return path


def load_images(paths: Sequence[Path], size: int | None, *, fit: str = "cover") -> torch.Tensor:
    """(N, 3, H, W) float32 in [0, 1] from image files (``fit``: see :func:`~.files.read_image`)."""
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"image {p} does not exist")
    arrays = [read_image(p, size, fit=fit) for p in paths]
    if not arrays:
        return torch.zeros(0, 3, size or 0, size or 0)
    first = {}  # (H, W) -> first file of that size
    for a, p in zip(arrays, paths, strict=True):
        first.setdefault(a.shape[:2], p)
    if len(first) > 1:
        shown = ", ".join(f"{h}x{w} ({p})" for (h, w), p in list(first.items())[:4])
        raise ValueError(f"images have different sizes: {shown}{'...' if len(first) > 4 else ''}; pass size=")
    return _to_float(np.stack(arrays).transpose(0, 3, 1, 2))


def _to_float(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1]."""
    return torch.from_numpy(np.require(x, np.uint8, ["C", "W"])).float().div_(255.0)


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize a float batch (N, C, H, W): shorter side to ``size`` (bilinear, antialias), centre crop."""
    if size is None or x.shape[-2:] == (size, size):
        return x
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    h2, w2 = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(x, size=(h2, w2), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    top, left = round((h2 - size) / 2), round((w2 - size) / 2)
    return x[..., top : top + size, left : left + size].contiguous()


def _check_size(size: int | None) -> int | None:
    if size is not None and (int(size) != size or size < 1):
        raise ValueError(f"size must be a positive integer or None, got {size!r}")
    return None if size is None else int(size)


def openood_imglist(
    list_file: PathLike,
    root: PathLike,
    *,
    size: int | None = None,
    max_images: int | None = None,
    name: str | None = None,
) -> Split:
    """Images of an OpenOOD image list: one ``relpath label`` per line, paths relative to ``root``.

    Returns a Split with x (N, 3, H, W) and the listed labels (OOD lists use -1);
    ``max_images`` keeps the first lines; ``name`` defaults to the list file's stem.
    """
    size = _check_size(size)
    list_file, root = _require(list_file, "image list"), _require(root, "image root")
    paths, labels = [], []
    for no, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[1]):
            raise ValueError(f"{list_file}:{no}: expected 'relpath label', got {line!r}")
        paths.append(root / parts[0])
        labels.append(int(parts[1]))
    paths, labels = paths[:max_images], labels[:max_images]
    x = load_images(paths, size)
    return Split(x, torch.tensor(labels, dtype=torch.int64), name or list_file.stem)


def image_folder(
    root: PathLike,
    *,
    size: int | None = None,
    max_images: int | None = None,
    per_class: int | None = None,
    name: str | None = None,
    classes: Sequence[str] | None = None,
    fit: str = "cover",
) -> Split:
    """Class folders ``root/<class>/<image>`` (ImageFolder layout: CIFAR-10 JPEGs, DTD).

    Labels by class name (``Split.classes``): label k = ``classes[k]``, and the visible sub-folders
    must be exactly ``classes``; without ``classes``, the visible sub-folders in sorted order.
    Hidden (dot-prefixed) folders and files are ignored; a missing, unexpected or empty class
    folder raises naming it.  ``per_class`` keeps the first files of each class (sorted names);
    ``max_images`` then keeps that many taken round-robin over the classes (balanced).  ``fit``: how an image
    becomes ``size`` x ``size`` (:func:`~.files.read_image`; default: shorter side resized, centre crop).
    Returns x (N, 3, H, W), y (N,) sorted by class, file.
    """
    size = _check_size(size)
    root = _require(root, "image folder")
    folders = class_folders(root, classes)
    classes = [c for c, _ in folders]
    files = [fs[:per_class] for _, fs in folders]
    items = [(k, j, f) for k, fs in enumerate(files) for j, f in enumerate(fs)]
    if max_images is not None:
        items = sorted(sorted(items, key=lambda t: (t[1], t[0]))[:max_images])  # round-robin, back in order
    x = load_images([f for _, _, f in items], size, fit=fit)
    y = torch.tensor([k for k, _, _ in items], dtype=torch.int64)
    return Split(x, y, name or root.name, tuple(classes))


def cifar_pickle(
    root: PathLike,
    *,
    train: bool = False,
    which: int = 10,
    size: int | None = None,
) -> Split:
    """CIFAR-10/100 from the official python pickles (``cifar-10-batches-py`` / ``cifar-100-python``).

    ``root`` is that folder or its parent. CIFAR-100 uses the fine labels. Read with
    :class:`~.files.CifarUnpickler` (numpy arrays and plain containers only, so a pickle cannot run
    code); ``data`` must be uint8 (N, 3072), labels in range. Returns x (N, 3, 32, 32) (or ``size``), y (N,).
    """
    if which not in (10, 100):
        raise ValueError(f"which must be 10 or 100, got {which!r}")
    root = _require(root, f"CIFAR-{which} folder")
    sub = {10: "cifar-10-batches-py", 100: "cifar-100-python"}[which]
    if (root / sub).is_dir():
        root = root / sub
    if which == 10:
        files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        label_key, meta_file, names_key = "labels", "batches.meta", "label_names"
    else:
        files = ["train" if train else "test"]
        label_key, meta_file, names_key = "fine_labels", "meta", "fine_label_names"
    batches = [
        cifar_batch(_require(root / f, f"CIFAR-{which} batch"), label_key, which) for f in files
    ]
    classes: tuple[str, ...] = ()
    if (root / meta_file).is_file():
        classes = cifar_meta(root / meta_file, names_key, which)
    x = _resize(_to_float(np.concatenate([d for d, _ in batches])), _check_size(size))
    name = f"cifar{which}_{'train' if train else 'test'}"
    return Split(x, torch.from_numpy(np.concatenate([y for _, y in batches])), name, classes)


def svhn_mat(path: PathLike, *, size: int | None = None) -> Split:
    """SVHN cropped digits from ``*_32x32.mat`` (``X`` (32, 32, 3, N) uint8, ``y`` (N, 1), 10 means 0)."""
    images, labels = svhn_arrays(_require(path, "SVHN .mat file"))
    x = _resize(_to_float(images), _check_size(size))
    return Split(x, torch.from_numpy(labels), Path(path).stem)


def mnist_idx(
    folder: PathLike,
    *,
    size: int | None = None,
    rgb: bool = True,
    train: bool = False,
    max_images: int | None = None,
) -> Split:
    """MNIST from the original idx files (``t10k-images-idx3-ubyte[.gz]`` + labels; ``train-*`` if ``train``).

    Returns x (N, 3 or 1, 28, 28) (or ``size``), grey replicated to 3 channels when ``rgb``; y (N,).
    ``max_images`` keeps the first images.
    """
    folder = _require(folder, "MNIST folder")
    prefix = "train" if train else "t10k"

    def find(stem: str) -> Path:
        for cand in (folder / f"{stem}.gz", folder / stem):
            if cand.is_file():
                return cand
        return _require(folder / f"{stem}.gz", "MNIST idx file")

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"))[:max_images]
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"))[:max_images]
    if len(images) != len(labels):
        raise ValueError(f"MNIST in {folder}: {len(images)} images but {len(labels)} labels")
    x = _resize(_to_float(images[:, None]), _check_size(size))
    if rgb:
        x = x.expand(-1, 3, -1, -1).contiguous()
    return Split(
        x, torch.from_numpy(labels.astype(np.int64)), f"mnist_{prefix}", tuple(str(d) for d in range(10))
    )


def class_images(folder: PathLike, *, size: int | None = None, max_images: int | None = None) -> torch.Tensor:
    """The images of one class folder (e.g. ``imagenet/train/n04409515``), sorted by file name, the first
    ``max_images``: (N, 3, size, size) float32 in [0, 1] (shorter side resized, centre crop)."""
    folder = _require(folder, "class folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"no images in the class folder {folder}")
    return load_images(files[:max_images], _check_size(size))


_WNID_FILE = re.compile(r"(n\d{8})_(.+)")


def wnid_folder(
    root: PathLike,
    *,
    size: int | None = None,
    exclude: Iterable[int | str] = (),
    max_images: int | None = None,
    name: str | None = None,
) -> tuple[Split, tuple[str, ...]]:
    """A flat folder of ``<wnid>_<name>.<ext>`` images (e.g. one ImageNet image per class).

    Label = index of the wnid among the folder's sorted wnids (the standard ImageNet-1k index
    when all 1000 classes are present). ``exclude``: wnids or label indices to leave out (unknown
    wnids are ignored, so one list can serve folders holding different subsets).
    Returns ``(split, wnids)``: ``wnids[k]`` is the wnid of label k, ``split.classes[k]`` its name.
    """
    size = _check_size(size)
    root = _require(root, "wnid folder")
    files = [(m.group(1), m.group(2), p) for p in image_files(root) if (m := _WNID_FILE.fullmatch(p.stem))]
    if not files:
        raise ValueError(f"no <wnid>_<name> images under {root}")
    wnids = tuple(sorted({w for w, _, _ in files}))
    names = dict((w, n) for w, n, _ in files)
    index = {w: k for k, w in enumerate(wnids)}
    drop = {index.get(e, -1) if isinstance(e, str) else int(e) for e in exclude}
    keep = [(index[w], p) for w, _, p in files if index[w] not in drop][:max_images]
    x = load_images([p for _, p in keep], size)
    y = torch.tensor([k for k, _ in keep], dtype=torch.int64)
    return Split(x, y, name or root.name, tuple(names[w] for w in wnids)), wnids


def ood_halves(split: Split, name: str, seed: int, max_n: int | None) -> dict[str, Split]:
    """Seeded subset of at most ``max_n`` images, cut into val / test halves; labels set to -1."""
    order = np.random.default_rng(seed).permutation(len(split))[:max_n]
    half = len(order) // 2
    ood = Split(split.x, torch.full((len(split),), -1, dtype=torch.int64), name)
    return {"val": ood.subset(np.sort(order[:half])), "test": ood.subset(np.sort(order[half:]))}


def id_ood_benchmark(
    name: str,
    stem: str,
    ids: Split,
    sets: Mapping[str, Split],
    groups: Mapping[str, str],
    *,
    stats: tuple,
    num_classes: int,
    size: int,
    n_val: int,
    max_per_set: int | None,
    seed: int,
) -> Benchmark:
    """A benchmark of test images only: the ID set ``ids`` split into val (``n_val``, stratified, at most half)
    and test (the rest), named ``<stem>_val`` / ``<stem>_test`` (``id_train`` empty); every OOD set of ``sets``
    (at most ``max_per_set`` images, seeded) cut into val / test halves; ``stats`` = (mean, std)."""
    val_idx, test_idx = stratified_split(ids.y, min(n_val, len(ids) // 2), seed=config.sub_seed(seed, f"{stem}_val"))
    empty = Split(torch.zeros(0, 3, size, size), torch.zeros(0, dtype=torch.int64), f"{stem}_train", ids.classes)
    return Benchmark(
        name=name,
        id_train=empty,
        id_val=Split(ids.x[val_idx], ids.y[val_idx], f"{stem}_val", ids.classes),
        id_test=Split(ids.x[test_idx], ids.y[test_idx], f"{stem}_test", ids.classes),
        ood={k: ood_halves(v, k, config.sub_seed(seed, k), max_per_set) for k, v in sets.items()},
        groups=dict(groups),
        num_classes=num_classes,
        mean=stats[0],
        std=stats[1],
        image_size=size,
        class_names=ids.classes,
    )


def cifar10_ood_benchmark(
    root: PathLike | None = None,
    *,
    size: int = 32,
    n_val: int = 1000,
    max_per_set: int | None = None,
    seed: int = 0,
) -> Benchmark:
    """The real CIFAR-10 OOD benchmark from the shared data folder (``config.data_root(root)``).

    ID: ``cifar10_test_jpg`` (JPEG q75; labels by folder name, ``CIFAR10_CLASSES``), split into
    val (``n_val``, stratified, capped at half the ID images) and test (the rest); ``id_train`` is
    empty. near-OOD ``imagenet_samples``: the
    ImageNet samples minus ``IMAGENET_CIFAR10_OVERLAP``; far-OOD ``mnist`` and ``textures`` (DTD).
    Every image is resized to ``size`` as OpenOOD does; OOD sets (at most ``max_per_set`` images,
    seeded) are cut into val/test halves. Normalisation: ``NORMALISATION["cifar10_akamaster"]``.
    """
    root = config.data_root(root)
    cifar = image_folder(
        root / "cifar10_test_jpg",
        size=size,
        max_images=max_per_set,
        name="cifar10_test",
        classes=CIFAR10_CLASSES,
    )
    inet, wnids = wnid_folder(root / "imagenet_samples_1000classes", size=size)
    if len(wnids) != 1000:
        raise ValueError(
            f"the CIFAR-10 overlap rule needs all 1000 ImageNet classes; found {len(wnids)} in {root}"
        )
    inet = inet.subset(~torch.isin(inet.y, torch.tensor(imagenet_cifar10_overlap())))
    mnist = mnist_idx(root / "mnist_test", size=size)
    dtd = image_folder(root / "dtd_textures_10classes", size=size)
    sets = {"imagenet_samples": inet, "mnist": mnist, "textures": dtd}
    return id_ood_benchmark("cifar10_real", "cifar10", cifar, sets,
                            {"imagenet_samples": "near", "mnist": "far", "textures": "far"},
                            stats=NORMALISATION["cifar10_akamaster"], num_classes=10, size=size, n_val=n_val,
                            max_per_set=max_per_set, seed=seed)
