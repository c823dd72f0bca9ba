"""Split / Benchmark types, the offline OOD benchmark, digits/textures far-OOD sets, stratified splits,
and the OpenOOD v1.5 loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from xai_utils.data import openood_benchmark
from xai_utils.data.cells import make_cells
from xai_utils.data.ood import (
    NORMALISATION,
    Benchmark,
    Split,
    digits,
    offline_benchmark,
    stratified_split,
    textures,
)

SMALL = dict(size=16, n_train=60, n_val=24, n_test=24, n_ood_val=10, n_ood_test=14)


@pytest.fixture(scope="module")
def bench() -> Benchmark:
    return offline_benchmark(**SMALL, seed=0)


def _split(n: int = 5) -> Split:
    return Split(torch.rand(n, 3, 4, 4), torch.arange(n), "toy", ("a", "b"))


def test_split_basics():
    s = _split()
    assert len(s) == 5
    sub = s.subset([4, 0])
    assert torch.equal(sub.y, torch.tensor([4, 0])) and torch.equal(sub.x[0], s.x[4])
    assert sub.name == "toy" and sub.classes == ("a", "b")
    assert len(s.subset(np.array([True, False, True, False, False]))) == 2
    assert len(s.subset(slice(1, 3))) == 2 and len(s.subset(np.array([], dtype=int))) == 0
    moved = s.to("cpu")
    assert moved.x.device.type == "cpu" and torch.equal(moved.x, s.x)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.rand(3, 4, 4), torch.zeros(3, dtype=torch.long), "N, C, H, W"),
        (torch.rand(3, 3, 4, 4), torch.zeros(2, dtype=torch.long), "y must have shape"),
        (torch.rand(3, 3, 4, 4) + 1, torch.zeros(3, dtype=torch.long), "outside"),
        (torch.full((3, 3, 4, 4), float("nan")), torch.zeros(3, dtype=torch.long), "NaN"),
        (torch.zeros(3, 3, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), "float"),
    ],
)
def test_split_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        Split(x, y, "bad")


def test_offline_benchmark_structure(bench):
    assert bench.image_size == 16 and bench.num_classes == 6 and len(bench.class_names) == 6
    assert (bench.mean, bench.std) == NORMALISATION["cells"]
    assert [len(bench.id_train), len(bench.id_val), len(bench.id_test)] == [60, 24, 24]
    for s in (bench.id_train, bench.id_val, bench.id_test):
        assert s.x.shape[1:] == (3, 16, 16) and s.x.dtype == torch.float32
        assert set(s.y.tolist()) == set(range(6))
    assert bench.ood_names("near") == ["tailed_cells"]
    assert set(bench.ood_names("far")) == {"blank_cells", "digits", "textures", "noise"}
    for name, parts in bench.ood.items():
        for part, n in (("val", 10), ("test", 14)):
            s = parts[part]
            assert s.name == name and len(s) == n and (s.y == -1).all()
            assert s.x.shape == (n, 3, 16, 16) and 0 <= s.x.min() and s.x.max() <= 1


def test_offline_benchmark_is_deterministic_and_seeded(bench):
    again = offline_benchmark(**SMALL, seed=0)
    other = offline_benchmark(**SMALL, seed=1)
    for get in (
        lambda b: b.id_train.x,
        lambda b: b.ood["digits"]["test"].x,
        lambda b: b.ood["textures"]["val"].x,
    ):
        assert torch.equal(get(bench), get(again)) and not torch.equal(get(bench), get(other))


def test_splits_are_disjoint(bench):
    """No ID image appears in two ID splits; near-OOD val and test share no image."""

    def rows(x: torch.Tensor) -> set[bytes]:
        return {r.numpy().tobytes() for r in x}

    train, val, test = rows(bench.id_train.x), rows(bench.id_val.x), rows(bench.id_test.x)
    assert not (train & val) and not (train & test) and not (val & test)
    assert not rows(bench.ood["tailed_cells"]["val"].x) & rows(bench.ood["tailed_cells"]["test"].x)


def test_ood_sets_are_what_they_claim(bench):
    noise = bench.ood["noise"]["test"].x
    assert abs(noise.mean().item() - 0.5) < 0.05 and noise.std() > 0.25  # i.i.d. U(0, 1)
    assert (bench.ood["blank_cells"]["test"].x.amax((1, 2, 3)) <= 0.7).all()  # backgrounds only


def test_digits_and_textures():
    d = digits(12, size=20, seed=3, part="val")
    assert d.shape == (12, 3, 20, 20) and 0 <= d.min() and d.max() <= 1
    assert torch.equal(d, digits(12, size=20, seed=3, part="val"))
    assert not torch.equal(d, digits(12, size=20, seed=3, part="test"))
    t = textures(8, size=20, seed=3, part="test")
    assert t.shape == (8, 3, 20, 20) and 0 <= t.min() and t.max() <= 1 and t.std() > 0.01
    with pytest.raises(ValueError, match="part"):
        digits(2, part="train")
    with pytest.raises(ValueError, match="part"):
        textures(2, part="train")


def test_benchmark_size_64_is_the_imagenet_like_variant():
    b = offline_benchmark(size=64, n_train=6, n_val=6, n_test=6, n_ood_val=2, n_ood_test=2)
    assert b.id_test.x.shape == (6, 3, 64, 64) and b.name == "cells64"
    assert b.ood["textures"]["test"].x.shape == (2, 3, 64, 64)


def test_benchmark_validates(bench):
    with pytest.raises(ValueError, match="groups"):
        Benchmark(**{**bench.__dict__, "groups": {"tailed_cells": "near"}})
    with pytest.raises(ValueError, match="near"):
        Benchmark(**{**bench.__dict__, "groups": {k: "middle" for k in bench.groups}})
    with pytest.raises(ValueError, match="group"):
        bench.ood_names("middle")
    with pytest.raises(ValueError, match="n_val"):
        offline_benchmark(n_val=-1)


def test_normalisation_constants():
    assert NORMALISATION["cifar10_akamaster"] == NORMALISATION["imagenet"]
    for mean, std in NORMALISATION.values():
        assert len(mean) == len(std) == 3 and all(0 < s < 1 for s in std)
    x = make_cells(600, size=32, classes=range(6), seed=11).x
    mean, std = NORMALISATION["cells"]
    np.testing.assert_allclose(x.mean((0, 2, 3)), mean, atol=0.02)
    np.testing.assert_allclose(x.std((0, 2, 3)), std, atol=0.02)


def test_stratified_split():
    y = np.repeat(np.arange(4), [10, 10, 10, 7])
    first, rest = stratified_split(y, 10, seed=0)
    assert np.bincount(y[first]).tolist() == [3, 3, 2, 2]
    assert len(np.intersect1d(first, rest)) == 0 and len(first) + len(rest) == len(y)
    again, _ = stratified_split(y, 10, seed=0)
    other, _ = stratified_split(y, 10, seed=1)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    with pytest.raises(ValueError, match="n_first"):
        stratified_split(y, 38)
    with pytest.raises(ValueError, match="fewer"):
        stratified_split(y, 36)


def test_openood_benchmark_reads_a_fake_v15_tree(tmp_path):
    rng = np.random.default_rng(0)
    lists = tmp_path / "benchmark_imglist" / "cifar10"
    lists.mkdir(parents=True)
    names = ["cifar10", "cifar100", "tin", "mnist", "svhn", "texture", "places365"]
    for name in names:
        folder = tmp_path / "images_classic" / name
        folder.mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        label = (lambda i: i % 2) if name == "cifar10" else (lambda i: -1)
        lines = "".join(f"images_classic/{name}/{i}.png {label(i)}\n" for i in range(4))
        (lists / f"test_{name}.txt").write_text(lines)
        if name == "cifar10":
            (lists / "val_cifar10.txt").write_text(lines)
    b = openood_benchmark(tmp_path, "cifar10", seed=0)
    assert b.groups == {
        "cifar100": "near",
        "tin": "near",
        "mnist": "far",
        "svhn": "far",
        "texture": "far",
        "places365": "far",
    }
    assert len(b.id_test) == 4 and len(b.ood["mnist"]["val"]) == 2 and len(b.ood["mnist"]["test"]) == 2
    assert b.id_test.x.shape[1:] == (3, 32, 32) and int(b.ood["tin"]["test"].y.max()) == -1
    with pytest.raises(FileNotFoundError):
        openood_benchmark(tmp_path, "cifar100")
    with pytest.raises(ValueError, match="unknown OpenOOD"):
        openood_benchmark(tmp_path, "svhn")
