"""Real-data loaders on tiny fake trees written here (always run), plus checks on ../shared/data (skipped if absent)."""

from __future__ import annotations

import gzip
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from xai_utils import config
from xai_utils.data.ood import NORMALISATION
from xai_utils.data.real import (
    cifar10_ood_benchmark,
    cifar_pickle,
    image_folder,
    imagenet_cifar10_overlap,
    mnist_idx,
    openood_imglist,
    svhn_mat,
    wnid_folder,
)


def _img(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
    return rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)


def _save(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def _chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255


# --- OpenOOD image lists, resizing -------------------------------------------------------------


def test_openood_imglist_reads_pixels_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    a, b = _img(rng, 6, 6), _img(rng, 6, 6, c=1)
    _save(tmp_path / "imgs" / "a.png", a)
    _save(tmp_path / "imgs" / "dir with space" / "b.png", b)
    lst = tmp_path / "test_ood.txt"
    lst.write_text("imgs/a.png 3\n\nimgs/dir with space/b.png -1\n")
    s = openood_imglist(lst, tmp_path)
    assert s.name == "test_ood" and s.y.tolist() == [3, -1] and s.x.shape == (2, 3, 6, 6)
    torch.testing.assert_close(s.x[0], _chw(a), rtol=0, atol=0)
    torch.testing.assert_close(s.x[1], _chw(np.repeat(b[..., None], 3, 2)), rtol=0, atol=0)  # grey -> RGB
    assert len(openood_imglist(lst, tmp_path, max_images=1, name="x")) == 1


def test_resize_is_shorter_side_then_centre_crop(tmp_path):
    bands = np.zeros((8, 16, 3), np.uint8)
    bands[:, :4, 0], bands[:, 4:12, 1], bands[:, 12:, 2] = 255, 255, 255  # red | green | blue
    const = np.full((20, 12, 3), 77, np.uint8)
    tiny = np.full((4, 4, 3), 200, np.uint8)
    for name, arr in (("bands", bands), ("const", const), ("tiny", tiny)):
        _save(tmp_path / f"{name}.png", arr)
    lst = tmp_path / "l.txt"
    lst.write_text("bands.png 0\nconst.png 0\ntiny.png 0\n")
    s = openood_imglist(lst, tmp_path, size=8)
    assert s.x.shape == (3, 3, 8, 8)
    torch.testing.assert_close(
        s.x[0], _chw(np.broadcast_to(bands[:, 4:12], (8, 8, 3)).copy()), rtol=0, atol=0
    )
    torch.testing.assert_close(s.x[1], torch.full((3, 8, 8), 77 / 255), rtol=0, atol=1.5 / 255)
    torch.testing.assert_close(s.x[2], torch.full((3, 8, 8), 200 / 255), rtol=0, atol=1.5 / 255)  # upsampled
    with pytest.raises(ValueError, match="size="):
        openood_imglist(lst, tmp_path)  # different sizes need size=


def test_imglist_errors(tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("a.png\n")
    with pytest.raises(ValueError, match=r"l.txt:1"):
        openood_imglist(lst, tmp_path)
    lst.write_text("missing.png 0\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        openood_imglist(lst, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nowhere.txt does not exist; see data/README.md"):
        openood_imglist(tmp_path / "nowhere.txt", tmp_path)
    with pytest.raises(ValueError, match="size"):
        openood_imglist(lst, tmp_path, size=0)


# --- class folders -----------------------------------------------------------------------------


def test_image_folder_labels_sorted_classes_and_limits(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {}
    for cls in ("zebra", "ant", "mole"):
        for i in range(4):
            arrays[cls, i] = _img(rng, 5, 5)
            _save(tmp_path / "root" / cls / f"{i:04d}.png", arrays[cls, i])
    (tmp_path / "root" / "ant" / "notes.txt").write_text("not an image")
    s = image_folder(tmp_path / "root")
    assert s.classes == ("ant", "mole", "zebra") and s.name == "root"
    assert s.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    torch.testing.assert_close(s.x[5], _chw(arrays["mole", 1]), rtol=0, atol=0)
    assert torch.bincount(image_folder(tmp_path / "root", per_class=2).y).tolist() == [2, 2, 2]
    assert torch.bincount(image_folder(tmp_path / "root", max_images=5).y).tolist() == [2, 2, 1]
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        image_folder(tmp_path / "empty")


def test_image_folder_reads_jpeg(tmp_path):
    smooth = np.linspace(0, 255, 16 * 16 * 3).reshape(16, 16, 3).astype(np.uint8)
    _save(tmp_path / "r" / "c" / "x.jpg", smooth, quality=95)
    s = image_folder(tmp_path / "r", size=8)
    assert s.x.shape == (1, 3, 8, 8)
    ref = torch.nn.functional.interpolate(_chw(smooth)[None], size=(8, 8), mode="bilinear", antialias=True)
    torch.testing.assert_close(s.x, ref, rtol=0, atol=0.05)  # lossy JPEG, same picture


# --- CIFAR pickles, SVHN, MNIST ----------------------------------------------------------------


def _pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def test_cifar10_pickle(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-py"
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    _pickle(folder / "test_batch", {b"data": data, b"labels": [3, 1, 0, 9]})
    for i in range(1, 6):
        _pickle(folder / f"data_batch_{i}", {b"data": data[:2], b"labels": [i, i]})
    _pickle(folder / "batches.meta", {b"label_names": [f"c{k}".encode() for k in range(10)]})
    for root in (tmp_path, folder):  # the folder or its parent
        s = cifar_pickle(root)
        assert s.y.tolist() == [3, 1, 0, 9] and s.classes[9] == "c9" and s.name == "cifar10_test"
        torch.testing.assert_close(
            s.x, torch.from_numpy(data).view(4, 3, 32, 32).float() / 255, rtol=0, atol=0
        )
    train = cifar_pickle(tmp_path, train=True)
    assert train.y.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert cifar_pickle(tmp_path, size=16).x.shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match="which"):
        cifar_pickle(tmp_path, which=50)
    with pytest.raises(FileNotFoundError, match="CIFAR-100 batch .*train does not exist"):
        cifar_pickle(tmp_path, which=100, train=True)


def test_cifar100_pickle_uses_fine_labels(tmp_path):
    data = np.zeros((2, 3072), np.uint8)
    _pickle(
        tmp_path / "cifar-100-python" / "test",
        {b"data": data, b"fine_labels": [42, 99], b"coarse_labels": [1, 2]},
    )
    s = cifar_pickle(tmp_path, which=100)
    assert s.y.tolist() == [42, 99] and s.name == "cifar100_test" and s.classes == ()


def test_svhn_mat(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": X, "y": np.array([[10], [1], [2], [10], [9]], np.uint8)})
    s = svhn_mat(tmp_path / "test_32x32.mat")
    assert s.y.tolist() == [0, 1, 2, 0, 9] and s.x.shape == (5, 3, 32, 32)
    assert s.x[2, 1, 7, 4] == X[7, 4, 1, 2] / 255  # x[n, c, h, w] = X[h, w, c, n]
    with pytest.raises(FileNotFoundError, match="nope.mat"):
        svhn_mat(tmp_path / "nope.mat")


def _idx(path: Path, arr: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    (gzip.open if compress else open)(path, "wb").write(header + arr.tobytes())


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx(tmp_path, compress):
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    suffix = ".gz" if compress else ""
    _idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    _idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", np.array([7, 2, 1, 0, 4], np.uint8), compress)
    s = mnist_idx(tmp_path)
    assert s.x.shape == (5, 3, 28, 28) and s.y.tolist() == [7, 2, 1, 0, 4]
    torch.testing.assert_close(s.x[:, 1], torch.from_numpy(images).float() / 255, rtol=0, atol=0)
    assert torch.equal(s.x[:, 0], s.x[:, 2])
    assert mnist_idx(tmp_path, rgb=False, max_images=2).x.shape == (2, 1, 28, 28)
    assert mnist_idx(tmp_path, size=32).x.shape == (5, 3, 32, 32)
    with pytest.raises(FileNotFoundError, match="train-images"):
        mnist_idx(tmp_path, train=True)


def test_mnist_idx_rejects_other_files(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match="not an idx file"):
        mnist_idx(tmp_path)


# --- flat wnid folder ----------------------------------------------------------------------------


def test_wnid_folder_labels_exclusion_and_names(tmp_path):
    rng = np.random.default_rng(5)
    for wnid, name in (("n00000003", "cab"), ("n00000001", "tench"), ("n00000002", "great_white_shark")):
        _save(tmp_path / f"{wnid}_{name}.png", _img(rng, 6, 9))
    (tmp_path / "README.txt").write_text("ignored")
    s, wnids = wnid_folder(tmp_path, size=6)
    assert wnids == ("n00000001", "n00000002", "n00000003")
    assert s.y.tolist() == [0, 1, 2] and s.classes == ("tench", "great_white_shark", "cab")
    assert s.x.shape == (3, 3, 6, 6)
    kept, _ = wnid_folder(tmp_path, size=6, exclude=["n00000002", 2])
    assert kept.y.tolist() == [0]


def test_imagenet_cifar10_overlap_indices():
    idx = imagenet_cifar10_overlap()
    assert idx == sorted(set(idx)) and 0 <= idx[0] and idx[-1] < 1000
    for k in (7, 24, 30, 151, 268, 281, 339, 404, 510, 817, 867, 895):  # cock, owl, bullfrog, Chihuahua, ...
        assert k in idx
    for k in (0, 1, 340, 345, 950):  # tench, goldfish, zebra, ox, orange
        assert k not in idx


# --- the real folder (skipped when absent) -------------------------------------------------------


def _real_root() -> Path:
    root = config.data_root()
    if not (root / "cifar10_test_jpg").is_dir():
        pytest.skip(f"real data folder {root} absent (set XAI_DATA_ROOT)")
    return root


@pytest.mark.realdata
def test_real_cifar10_folder_has_10000_images_in_10_classes():
    s = image_folder(_real_root() / "cifar10_test_jpg")
    assert s.x.shape == (10_000, 3, 32, 32) and len(s.classes) == 10
    assert s.classes[0] == "airplane" and s.classes[9] == "truck"
    assert torch.bincount(s.y).tolist() == [1000] * 10


@pytest.mark.realdata
def test_real_imagenet_exclusion_matches_the_class_names():
    split, wnids = wnid_folder(_real_root() / "imagenet_samples_1000classes", size=8)
    assert len(wnids) == 1000
    excluded = set(imagenet_cifar10_overlap())
    dogs_cats = re.compile(r"terrier|retriever|spaniel|hound|poodle|setter|collie|sheepdog|tabby|Persian_cat")
    for k, name in enumerate(split.classes):
        if dogs_cats.search(name):
            assert k in excluded, name
    for k, name in [(7, "cock"), (281, "tabby"), (404, "airliner"), (339, "sorrel"), (510, "container_ship")]:
        assert split.classes[k] == name and k in excluded


@pytest.mark.realdata
def test_real_cifar10_benchmark_small():
    b = cifar10_ood_benchmark(_real_root(), max_per_set=200, n_val=60, seed=0)
    assert len(b.id_val) == 60 and len(b.id_test) == 140 and len(b.id_train) == 0
    assert torch.bincount(b.id_val.y, minlength=10).tolist() == [6] * 10
    assert b.groups == {"imagenet_samples": "near", "mnist": "far", "textures": "far"}
    assert (b.mean, b.std) == NORMALISATION["cifar10_akamaster"] and b.num_classes == 10
    for parts in b.ood.values():
        assert len(parts["val"]) == len(parts["test"]) == 100
        assert parts["test"].x.shape[1:] == (3, 32, 32) and (parts["test"].y == -1).all()
