"""Issue 13's bad-input table: one row per bad input, built tiny in tmp_path in the real layout.

Each row's builder returns an action; the row expects an error (type and a regex naming the
parameter, file or class), a warning, or ``None``: then the action itself asserts the correct
result.  Ids name the issue item (``13.<item>-<case>``).
"""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from xai_utils import config, ood, params
from xai_utils.data.real import (
    CIFAR10_CLASSES,
    cifar10_ood_benchmark,
    cifar_pickle,
    image_folder,
    mnist_idx,
    svhn_mat,
)
from xai_utils.experiments.salagg import make_runs
from xai_utils.metrics import fit_hermitry, hermitry_ratio
from xai_utils.models import real

Action = Callable[[], object]


# ------------------------------------------------------------------------------------ tiny files


def _save(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def _cifar_jpgs(folder: Path, classes=CIFAR10_CLASSES, per_class: int = 2) -> Path:
    """``folder/<class>/000i.jpg``, every image of class k (its CIFAR-10 label) the grey 20 k + 10."""
    for c in classes:
        k = CIFAR10_CLASSES.index(c) if c in CIFAR10_CLASSES else 12
        for i in range(per_class):
            _save(folder / c / f"{i:04d}.jpg", np.full((4, 4, 3), 20 * k + 10, np.uint8), quality=95)
    return folder


def _labels_from_pixels(x: torch.Tensor) -> list[int]:
    return ((x[:, 0, 0, 0] * 255 - 10) / 20).round().long().tolist()


def _pickle(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))
    return path


def _cifar_batch(tmp: Path, data, labels=(0, 1)) -> Path:
    _pickle(tmp / "cifar-10-batches-py" / "test_batch", {b"data": data, b"labels": list(labels)})
    return tmp


def _idx(path: Path, arr: np.ndarray, *, count: int | None = None) -> Path:
    dims = (count if count is not None else arr.shape[0], *arr.shape[1:])
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.tobytes())
    return path


def _checkpoint(path: Path, depth: int = 20, edit: Callable[[dict], None] | None = None) -> Path:
    sd = {"module." + k: v.clone() for k, v in real.cifar_resnet(depth).state_dict().items()}
    if edit:
        edit(sd)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"best_prec1": 91.0, "state_dict": sd}, path)
    return path


def _data_root(tmp: Path, *, cifar: bool = True) -> Path:
    """The shared data folder's layout, tiny: CIFAR-10 JPEGs, 1000 ImageNet samples, MNIST, DTD."""
    root = tmp / "data"
    if cifar:
        _cifar_jpgs(root / "cifar10_test_jpg")
    grey = np.full((4, 4, 3), 128, np.uint8)
    for k in range(1000):
        _save(root / "imagenet_samples_1000classes" / f"n{k:08d}_class{k}.png", grey)
    _idx(root / "mnist_test" / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    _idx(root / "mnist_test" / "t10k-labels-idx1-ubyte.gz", np.arange(4, dtype=np.uint8))
    for c in ("banded", "bumpy"):
        for i in range(2):
            _save(root / "dtd_textures_10classes" / c / f"{c}_{i}.jpg", grey)
    return root


class _Marker:
    """Unpickling this calls ``os.system("touch <path>")``: the marker exists iff the code ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _never_runs(marker: Path, act: Action) -> Action:
    def run():
        try:
            act()
        finally:
            assert not marker.exists(), "the pickle ran code"

    return run


# ------------------------------------------------------------------- 13.1 labels by class name


def hidden_folder(tmp, request) -> Action:
    folder = _cifar_jpgs(tmp / "cifar10_test_jpg")
    (folder / ".ipynb_checkpoints").mkdir()  # what Jupyter creates: empty, hidden
    _save(folder / "cat" / "._0000.jpg", np.zeros((4, 4, 3), np.uint8))  # macOS resource fork, hidden

    def act():
        for s in (image_folder(folder, classes=CIFAR10_CLASSES), image_folder(folder)):
            assert s.classes == CIFAR10_CLASSES and len(s) == 20
            assert s.y.tolist() == _labels_from_pixels(s.x) == [k for k in range(10) for _ in range(2)]

    return act


def hidden_folder_benchmark(tmp, request) -> Action:
    root = _data_root(tmp)
    (root / "cifar10_test_jpg" / ".ipynb_checkpoints").mkdir()

    def act():
        b = cifar10_ood_benchmark(root, size=8, n_val=10)
        assert b.class_names == CIFAR10_CLASSES and b.num_classes == 10
        for split in (b.id_val, b.id_test):
            assert split.y.tolist() == _labels_from_pixels(split.x)
        assert sorted(b.id_val.y.tolist()) == list(range(10))

    return act


def only_cat(tmp, request) -> Action:
    folder = _cifar_jpgs(tmp / "cifar10_test_jpg", classes=("cat",))
    return lambda: image_folder(folder, classes=CIFAR10_CLASSES)


def missing_class(tmp, request) -> Action:
    folder = _cifar_jpgs(tmp / "cifar10_test_jpg", classes=[c for c in CIFAR10_CLASSES if c != "bird"])
    return lambda: image_folder(folder, classes=CIFAR10_CLASSES)


def missing_class_benchmark(tmp, request) -> Action:
    root = _data_root(tmp, cifar=False)
    _cifar_jpgs(root / "cifar10_test_jpg", classes=[c for c in CIFAR10_CLASSES if c != "frog"])
    return lambda: cifar10_ood_benchmark(root, size=8)


def extra_class(tmp, request) -> Action:
    folder = _cifar_jpgs(tmp / "cifar10_test_jpg", classes=(*CIFAR10_CLASSES, "zebra"))
    return lambda: image_folder(folder, classes=CIFAR10_CLASSES)


def empty_class(tmp, request) -> Action:
    folder = _cifar_jpgs(tmp / "cifar10_test_jpg", classes=[c for c in CIFAR10_CLASSES if c != "dog"])
    (folder / "dog").mkdir()
    return lambda: image_folder(folder, classes=CIFAR10_CLASSES)


def empty_class_generic(tmp, request) -> Action:
    _save(tmp / "dtd" / "banded" / "a.jpg", np.zeros((4, 4, 3), np.uint8))
    (tmp / "dtd" / "bumpy").mkdir()
    return lambda: image_folder(tmp / "dtd")


# ------------------------------------------------------------------- 13.2 hermitry covariance


def _zero_feature(n: int, d: int, seed: int, value: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    x[:, 0] = value
    return x


def hermitry_default_sees_far_points(tmp, request) -> Action:
    def act():
        fit = fit_hermitry(_zero_feature(100, 256, 0), _zero_feature(100, 256, 1))
        assert fit.estimator == "ledoitwolf"
        assert hermitry_ratio(fit, _zero_feature(100, 256, 2, value=1000.0)) == 1.0

    return act


def hermitry_empirical_n_le_d(tmp, request) -> Action:
    return lambda: fit_hermitry(np.random.default_rng(0).normal(size=(100, 256)), estimator="empirical")


def hermitry_empirical_zero_variance(tmp, request) -> Action:
    return lambda: fit_hermitry(_zero_feature(500, 4, 0), estimator="empirical")


def hermitry_identical_encodings(tmp, request) -> Action:
    return lambda: fit_hermitry(np.ones((10, 3)))


# ------------------------------------------------------------------------- 13.3 ReAct percent


def react_percentile(value: float) -> Callable:
    def build(tmp, request) -> Action:
        model, x = request.getfixturevalue("tiny_cnn"), request.getfixturevalue("tiny_images")
        return lambda: ood.fit_react(model, x, percentile=value)

    return build


# ------------------------------------------------------------------- 13.4 layout, 13.5 pickles


def cifar_float_data(tmp, request) -> Action:
    root = _cifar_batch(tmp, np.random.default_rng(0).random((2, 3072)))  # floats in [0, 1]
    return lambda: cifar_pickle(root)


def cifar_hwc_4d(tmp, request) -> Action:
    return lambda: cifar_pickle(_cifar_batch(tmp, np.zeros((2, 32, 32, 3), np.uint8)))


def cifar_wrong_length(tmp, request) -> Action:
    return lambda: cifar_pickle(_cifar_batch(tmp, np.zeros((2, 1024), np.uint8)))


def cifar_label_count(tmp, request) -> Action:
    return lambda: cifar_pickle(_cifar_batch(tmp, np.zeros((2, 3072), np.uint8), labels=[1]))


def cifar_label_range(tmp, request) -> Action:
    return lambda: cifar_pickle(_cifar_batch(tmp, np.zeros((2, 3072), np.uint8), labels=[3, 10]))


def cifar_python3_protocol2(tmp, request) -> Action:
    data = np.random.default_rng(0).integers(0, 256, (2, 3072), dtype=np.uint8)
    path = tmp / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [4, 2]}, protocol=2))  # bytes via _codecs

    def act():
        s = cifar_pickle(tmp)
        assert s.y.tolist() == [4, 2]
        torch.testing.assert_close(s.x, torch.from_numpy(data).view(2, 3, 32, 32) / 255.0, rtol=0, atol=0)

    return act


def checkpoint_nan(tmp, request) -> Action:
    path = _checkpoint(
        tmp / "r20.th", edit=lambda sd: sd["module.layer2.1.conv1.weight"].view(-1)[3].fill_(np.nan)
    )
    return lambda: real.load_checkpoint(real.cifar_resnet(20), path)


def checkpoint_inf(tmp, request) -> Action:
    path = _checkpoint(tmp / "r20.th", edit=lambda sd: sd["module.bn1.running_var"].fill_(np.inf))
    return lambda: real.load_checkpoint(real.cifar_resnet(20), path)


def cifar_pickle_runs_code(tmp, request) -> Action:
    marker = tmp / "marker"
    _pickle(tmp / "cifar-10-batches-py" / "test_batch", {b"data": _Marker(marker), b"labels": [0]})
    return _never_runs(marker, lambda: cifar_pickle(tmp))


def cifar_meta_runs_code(tmp, request) -> Action:
    marker = tmp / "marker"
    _cifar_batch(tmp, np.zeros((2, 3072), np.uint8))
    _pickle(tmp / "cifar-10-batches-py" / "batches.meta", {b"label_names": _Marker(marker)})
    return _never_runs(marker, lambda: cifar_pickle(tmp))


def checkpoint_runs_code(tmp, request) -> Action:
    marker, path = tmp / "marker", tmp / "resnet20.th"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Marker(marker)}, path)

    def act():
        with pytest.raises(ValueError) as info:
            real.load_checkpoint(real.cifar_resnet(20), path)
        assert "resnet20.th" in str(info.value) and "False" not in str(info.value)  # no unsafe advice
        raise info.value

    return _never_runs(marker, act)


# ------------------------------------------------------------------------ 13.8 checkpoint paths


def checkpoint_by_path(tmp, request) -> Action:
    path = _checkpoint(tmp / "mine" / "resnet32.th", depth=32)

    def act():
        assert real.resolve_cifar_checkpoint(str(path), tmp / "data") == ("cifar_resnet32", path)
        assert real.resolve_cifar_checkpoint(path, tmp / "data") == ("cifar_resnet32", path)
        model = real.real_classifier(*real.resolve_cifar_checkpoint(path, tmp), num_classes=10)
        assert len(model.layer1) == 5  # ResNet-32: n = 5 blocks per stage

    return act


def checkpoint_by_name(tmp, request) -> Action:
    folder = tmp / "data" / "cifar10_resnet_checkpoints"
    a, b = _checkpoint(folder / "resnet20-12345678.th"), _checkpoint(folder / "resnet56-87654321.th", 56)
    (folder / "resnet110-aa.th").mkdir()  # a folder of the same pattern is not a checkpoint file

    def act():
        assert real.resolve_cifar_checkpoint("resnet20", tmp / "data") == ("cifar_resnet20", a)
        assert real.resolve_cifar_checkpoint("resnet56", tmp / "data") == ("cifar_resnet56", b)

    return act


def checkpoint_directory(tmp, request) -> Action:
    (tmp / "resnet32.th").mkdir()
    return lambda: real.resolve_cifar_checkpoint(tmp / "resnet32.th", tmp)


def checkpoint_directory_load(tmp, request) -> Action:
    (tmp / "ckpt").mkdir()
    return lambda: real.load_checkpoint(real.cifar_resnet(20), tmp / "ckpt")


def checkpoint_unknown_arch(tmp, request) -> Action:
    path = _checkpoint(tmp / "best.th")
    return lambda: real.resolve_cifar_checkpoint(path, tmp)


def checkpoint_unknown_depth(tmp, request) -> Action:
    path = _checkpoint(tmp / "resnet18.th")
    return lambda: real.resolve_cifar_checkpoint(str(path), tmp)


def checkpoint_unknown_name(tmp, request) -> Action:
    return lambda: real.resolve_cifar_checkpoint("resnet18", tmp)


def checkpoint_missing_name(tmp, request) -> Action:
    return lambda: real.resolve_cifar_checkpoint("resnet44", tmp)


def checkpoint_missing_path(tmp, request) -> Action:
    return lambda: real.resolve_cifar_checkpoint("ckpts/resnet44.th", tmp)


def checkpoint_two_matches(tmp, request) -> Action:
    folder = tmp / "cifar10_resnet_checkpoints"
    _checkpoint(folder / "resnet20-aaaa.th"), _checkpoint(folder / "resnet20-bbbb.th")
    return lambda: real.resolve_cifar_checkpoint("resnet20", tmp)


def _real_runs(root: Path, checkpoints) -> Action:
    p = params.defaults("salagg")  # the notebook's parameters cell: the one source of make_runs' keywords
    kw = {k: p[k] for k in ("seed", "sizes", "archs", "widths", "n_train", "epochs", "benchmarks", "model_seeds",
                            "retrain")}
    kw.update(device="cpu", n_id_val=4, n_id_test=4, n_ood_val=2, n_ood_test=2)
    return lambda: make_runs("real", data_root=str(root), checkpoints=checkpoints, **kw)


def runs_check_directory_before_data(tmp, request) -> Action:
    (tmp / "resnet20.th").mkdir()
    return _real_runs(tmp / "no_data_here", [str(tmp / "resnet20.th")])


def runs_check_keys_before_data(tmp, request) -> Action:
    path = _checkpoint(tmp / "resnet32.th", depth=20)  # a ResNet-20 under a ResNet-32 name
    return _real_runs(tmp / "no_data_here", [str(path)])


def runs_check_finite_before_data(tmp, request) -> Action:
    path = _checkpoint(tmp / "resnet20.th", edit=lambda sd: sd["module.linear.bias"].fill_(np.nan))
    return _real_runs(tmp / "no_data_here", [str(path)])


def runs_load_data_after_checks(tmp, request) -> Action:
    path = _checkpoint(tmp / "resnet20.th")
    return _real_runs(tmp / "no_data_here", [str(path)])  # fine checkpoint: now the data is missing


def runs_by_name_and_path(tmp, request) -> Action:
    root = _data_root(tmp)
    named = _checkpoint(root / "cifar10_resnet_checkpoints" / "resnet20-12345678.th")
    mine = _checkpoint(tmp / "mine" / "resnet32.th", depth=32)

    def act():
        runs = _real_runs(root, ["resnet20", str(mine)])()
        assert list(runs) == ["cifar10/resnet20", "cifar10/resnet32"]
        assert runs["cifar10/resnet20"].note == f"checkpoint {named.name}"
        assert (
            runs["cifar10/resnet32"].model_name == "resnet32"
            and len(runs["cifar10/resnet32"].model.layer1) == 5
        )

    return act


def runs_same_run_twice(tmp, request) -> Action:
    a, b = _checkpoint(tmp / "a" / "resnet20.th"), _checkpoint(tmp / "b" / "resnet20.th")
    return _real_runs(tmp / "no_data_here", [str(a), str(b)])


# ----------------------------------------------------------------------- 13.10 errors name files


def truncated_jpeg(tmp, request) -> Action:
    smooth = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path = _save(tmp / "cifar10_test_jpg" / "cat" / "0007.jpg", smooth, quality=75)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return lambda: image_folder(tmp / "cifar10_test_jpg")


def not_an_image(tmp, request) -> Action:
    path = tmp / "dtd" / "banded" / "banded_0001.jpg"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>not found</html>")
    return lambda: image_folder(tmp / "dtd")


def cifar_missing_key(tmp, request) -> Action:
    _pickle(tmp / "cifar-10-batches-py" / "test_batch", {b"data": np.zeros((1, 3072), np.uint8)})
    return lambda: cifar_pickle(tmp)


def cifar_not_a_dict(tmp, request) -> Action:
    _pickle(tmp / "cifar-10-batches-py" / "test_batch", [np.zeros((1, 3072), np.uint8)])
    return lambda: cifar_pickle(tmp)


def cifar_truncated_pickle(tmp, request) -> Action:
    path = _cifar_batch(tmp, np.zeros((2, 3072), np.uint8)) / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    return lambda: cifar_pickle(tmp)


def cifar_meta_wrong(tmp, request) -> Action:
    _cifar_batch(tmp, np.zeros((2, 3072), np.uint8))
    _pickle(tmp / "cifar-10-batches-py" / "batches.meta", {b"label_names": [b"cat", b"dog"]})
    return lambda: cifar_pickle(tmp)


def mnist_truncated_idx(tmp, request) -> Action:
    _idx(tmp / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8), count=5)
    _idx(tmp / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    return lambda: mnist_idx(tmp)


def mnist_truncated_gzip(tmp, request) -> Action:
    path = _idx(tmp / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    _idx(tmp / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    return lambda: mnist_idx(tmp)


def svhn_missing_labels(tmp, request) -> Action:
    savemat(tmp / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8)})
    return lambda: svhn_mat(tmp / "test_32x32.mat")


def svhn_float_images(tmp, request) -> Action:
    savemat(tmp / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2)), "y": np.array([[1], [2]])})
    return lambda: svhn_mat(tmp / "test_32x32.mat")


# ---------------------------------------------------------------------------------- the table

TABLE = [
    pytest.param(hidden_folder, None, None, id="13.1-hidden-folder"),
    pytest.param(hidden_folder_benchmark, None, None, id="13.1-hidden-folder-benchmark"),
    pytest.param(only_cat, ValueError, r"missing \['airplane', 'automobile', 'bird', 'deer'", id="13.1-only-cat"),
    pytest.param(missing_class, ValueError, r"cifar10_test_jpg.*missing \['bird'\]", id="13.1-missing-class"),
    pytest.param(missing_class_benchmark, ValueError, r"missing \['frog'\]", id="13.1-missing-class-benchmark"),
    pytest.param(extra_class, ValueError, r"missing \[\], unexpected \['zebra'\]", id="13.1-extra-class"),
    pytest.param(empty_class, ValueError, r"cifar10_test_jpg/dog has no images", id="13.1-empty-class"),
    pytest.param(empty_class_generic, ValueError, r"dtd/bumpy has no images", id="13.1-empty-class-generic"),
    pytest.param(hermitry_default_sees_far_points, None, None, id="13.2-ledoitwolf-default"),
    pytest.param(
        hermitry_empirical_n_le_d, RuntimeWarning, r"singular.*n = 100 <= D = 256.*ledoitwolf", id="13.2-empirical-n-le-d"
    ),
    pytest.param(
        hermitry_empirical_zero_variance,
        RuntimeWarning,
        r"empirical covariance.*1 zero-variance features, e\.g\. \[0\]",
        id="13.2-empirical-zero-variance",
    ),
    pytest.param(hermitry_identical_encodings, ValueError, r"train_features are identical", id="13.2-identical"),
    pytest.param(react_percentile(0.9), ValueError, r"percentile=0\.9 looks like a fraction.*percent.*90", id="13.3-react-fraction"),
    pytest.param(react_percentile(1.0), ValueError, r"percentile=1\.0 looks like a fraction", id="13.3-react-one-ambiguous"),
    pytest.param(react_percentile(0.0), ValueError, r"percentile must be percent", id="13.3-react-zero"),
    pytest.param(react_percentile(150.0), ValueError, r"percentile must be percent", id="13.3-react-above-100"),
    pytest.param(cifar_float_data, ValueError, r"test_batch: 'data' must be a uint8.*float64", id="13.4-cifar-float-data"),
    pytest.param(cifar_hwc_4d, ValueError, r"test_batch: 'data'.*shape \(2, 32, 32, 3\)", id="13.4-cifar-hwc-4d"),
    pytest.param(cifar_wrong_length, ValueError, r"test_batch: 'data'.*shape \(2, 1024\)", id="13.4-cifar-wrong-length"),
    pytest.param(cifar_label_count, ValueError, r"test_batch: 'labels' must be 2 integers", id="13.4-cifar-label-count"),
    pytest.param(cifar_label_range, ValueError, r"test_batch: 'labels' must lie in \[0, 10\)", id="13.4-cifar-label-range"),
    pytest.param(cifar_python3_protocol2, None, None, id="13.4-cifar-protocol2-still-loads"),
    pytest.param(checkpoint_nan, ValueError, r"r20\.th: tensor 'layer2\.1\.conv1\.weight' has 1 NaN/inf", id="13.4-checkpoint-nan"),
    pytest.param(checkpoint_inf, ValueError, r"r20\.th: tensor 'bn1\.running_var' has 16 NaN/inf", id="13.4-checkpoint-inf"),
    pytest.param(cifar_pickle_runs_code, ValueError, r"test_batch.*global posix\.system is not allowed", id="13.5-cifar-pickle-code"),
    pytest.param(cifar_meta_runs_code, ValueError, r"batches\.meta.*system is not allowed", id="13.5-cifar-meta-code"),
    pytest.param(checkpoint_runs_code, ValueError, r"resnet20\.th.*objects other than tensors.*system", id="13.5-checkpoint-code"),
    pytest.param(checkpoint_by_path, None, None, id="13.8-checkpoint-path"),
    pytest.param(checkpoint_by_name, None, None, id="13.8-checkpoint-name"),
    pytest.param(checkpoint_directory, IsADirectoryError, r"resnet32\.th is a directory", id="13.8-directory"),
    pytest.param(checkpoint_directory_load, IsADirectoryError, r"ckpt is a directory", id="13.8-directory-load"),
    pytest.param(checkpoint_unknown_arch, ValueError, r"best\.th from its file name.*resnet20, resnet32, resnet44, resnet56, resnet110", id="13.8-unknown-arch"),
    pytest.param(checkpoint_unknown_depth, ValueError, r"resnet18\.th from its file name", id="13.8-unknown-depth"),
    pytest.param(checkpoint_unknown_name, ValueError, r"unknown checkpoint name 'resnet18'.*path", id="13.8-unknown-name"),
    pytest.param(checkpoint_missing_name, FileNotFoundError, r"cifar10_resnet_checkpoints/resnet44-\*\.th", id="13.8-missing-name"),
    pytest.param(checkpoint_missing_path, FileNotFoundError, r"ckpts/resnet44\.th does not exist", id="13.8-missing-path"),
    pytest.param(checkpoint_two_matches, ValueError, r"several checkpoints.*resnet20-aaaa\.th", id="13.8-two-matches"),
    pytest.param(runs_check_directory_before_data, IsADirectoryError, r"is a directory", id="13.8-runs-directory-before-data"),
    pytest.param(runs_check_keys_before_data, ValueError, r"resnet32\.th does not fit CifarResNet", id="13.8-runs-keys-before-data"),
    pytest.param(runs_check_finite_before_data, ValueError, r"tensor 'linear\.bias' has 10 NaN", id="13.8-runs-finite-before-data"),
    pytest.param(runs_load_data_after_checks, FileNotFoundError, r"cifar10_test_jpg does not exist", id="13.8-runs-data-after-checks"),
    pytest.param(runs_by_name_and_path, None, None, id="13.8-runs-name-and-path"),
    pytest.param(runs_same_run_twice, ValueError, r"name the run 'resnet20' twice", id="13.8-runs-same-name"),
    pytest.param(truncated_jpeg, ValueError, r"cat/0007\.jpg could not be read", id="13.10-truncated-jpeg"),
    pytest.param(not_an_image, ValueError, r"banded_0001\.jpg could not be read", id="13.10-not-an-image"),
    pytest.param(cifar_missing_key, ValueError, r"test_batch: CIFAR batch without \['labels'\]", id="13.10-cifar-missing-key"),
    pytest.param(cifar_not_a_dict, ValueError, r"test_batch is not a CIFAR pickle: it holds a list", id="13.10-cifar-not-a-dict"),
    pytest.param(cifar_truncated_pickle, ValueError, r"test_batch is not a readable CIFAR pickle", id="13.10-cifar-truncated"),
    pytest.param(cifar_meta_wrong, ValueError, r"batches\.meta: 'label_names' must list 10", id="13.10-cifar-meta"),
    pytest.param(mnist_truncated_idx, ValueError, r"t10k-images-idx3-ubyte\.gz: its header says shape \[5, 28, 28\]", id="13.10-mnist-truncated-idx"),
    pytest.param(mnist_truncated_gzip, ValueError, r"t10k-images-idx3-ubyte\.gz could not be read", id="13.10-mnist-truncated-gzip"),
    pytest.param(svhn_missing_labels, ValueError, r"test_32x32\.mat: 'y' must hold 2 labels", id="13.10-svhn-missing-labels"),
    pytest.param(svhn_float_images, ValueError, r"test_32x32\.mat: 'X' must be a uint8", id="13.10-svhn-float"),
]  # fmt: skip


@pytest.mark.parametrize("build, expected, match", TABLE)
def test_bad_input(build, expected, match, tmp_path, request):
    act = build(tmp_path, request)
    if expected is None:
        act()
    elif issubclass(expected, Warning):
        with pytest.warns(expected, match=match):
            act()
    else:
        with pytest.raises(expected, match=match):
            act()


@pytest.mark.realdata
def test_default_checkpoint_names_resolve_to_the_shared_files():
    root = config.data_root()
    if not (root / "cifar10_resnet_checkpoints").is_dir():
        pytest.skip(f"real data folder {root} absent (set XAI_DATA_ROOT)")
    found = [real.resolve_cifar_checkpoint(n, root) for n in ("resnet20", "resnet56")]
    assert [(a, p.name) for a, p in found] == [
        ("cifar_resnet20", "resnet20-12fca82f.th"),
        ("cifar_resnet56", "resnet56-4bfd9763.th"),
    ]
