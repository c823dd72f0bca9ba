"""The chapter's cells: training, validation (in shards) and evaluation splits, and Fig. 2's cells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xai_utils import config, data


@dataclass(frozen=True, eq=False)
class CellSplits:
    """Training, validation (in shards) and evaluation cells of one image size.

    train, val, test : :class:`~xai_utils.data.Cells`; ``val`` is cut into ``n_shards`` equal,
    class-balanced shards (:meth:`shard`).  ``key`` describes the generator call (cache keys).
    """

    train: data.Cells
    val: data.Cells
    test: data.Cells
    n_shards: int
    key: dict[str, Any]

    def shard(self, i: int) -> data.Cells:
        """Validation shard ``i`` (0-based)."""
        if not 0 <= i < self.n_shards:
            raise ValueError(f"shard {i} out of range 0..{self.n_shards - 1}")
        size = len(self.val) // self.n_shards
        return self.val.subset(slice(i * size, (i + 1) * size))


def make_splits(
    *, size: int, n_train: int, n_val_shards: int, shard_size: int, n_test: int, seed: int
) -> CellSplits:
    """Generate the three splits with disjoint seeds (the paper: 32 / 8 / 8 shards of 200 images).

    Shards are class-balanced when ``shard_size`` is a multiple of 10 (classes are round-robin).
    """
    for name, value in (
        ("n_train", n_train),
        ("n_val_shards", n_val_shards),
        ("shard_size", shard_size),
        ("n_test", n_test),
    ):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    seeds = {part: config.sub_seed(seed, f"cells/{part}") for part in ("train", "val", "test")}
    key = {
        "generator": "make_cells",
        "size": size,
        "n_train": n_train,
        "n_val": n_val_shards * shard_size,
        "n_test": n_test,
        "seeds": seeds,
    }
    return CellSplits(
        train=data.make_cells(n_train, size=size, seed=seeds["train"]),
        val=data.make_cells(n_val_shards * shard_size, size=size, seed=seeds["val"]),
        test=data.make_cells(n_test, size=size, seed=seeds["test"]),
        n_shards=n_val_shards,
        key=key,
    )


def figure2_cells(*, size: int, seed: int) -> data.Cells:
    """One image of every class (columns) on every background (rows): 30 cells, ordered row-major."""
    return data.make_cells(30, size=size, seed=seed)
