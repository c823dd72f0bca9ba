"""Several bench runs and their ranges: ``python -m xai_utils.bench --runs N``.

Each run is its own process (fresh caches and model forms, its own peak memory) and writes its own CSV;
:func:`run_many` stacks their rows into one CSV with a ``run`` column (1..N).  :func:`summarize` turns
such a table into one row per measurement: the median of every number, the range over the runs of the
numbers in :data:`RANGED` (``<column>_lo``, ``<column>_hi``), and the runs' machine notes side by side;
:mod:`.page` renders it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

#: The columns whose range over the runs the page shows beside their median.
RANGED = ("ms_per_image", "ratio", "ratio_best_form", "speedup", "speedup_best", "peak_rss_mb", "cuda_peak_mb")
#: What identifies one measurement across runs.
KEYS = ["device", "section", "name", "config"]


def run_many(runs: int, out: str | os.PathLike, args: Sequence[str] = ()) -> pd.DataFrame:
    """Run ``python -m xai_utils.bench *args`` ``runs`` times, one after the other, and write their rows,
    with a ``run`` column, to ``out`` (atomically: a failed run leaves the previous file as it was)."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    out = Path(out)
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(1, runs + 1):
            path = Path(tmp) / f"run{i}.csv"
            print(f"[bench] run {i} of {runs}", flush=True)
            subprocess.run([sys.executable, "-m", "xai_utils.bench", *args, "--out", str(path)], check=True)
            tables.append(pd.read_csv(path, keep_default_na=True).assign(run=i))
    table = pd.concat(tables, ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    table.to_csv(partial, index=False, float_format="%.6g")
    os.replace(partial, out)
    return table


def _common(values: pd.Series) -> str:
    """A text column over the runs: its value when they agree, else each non-empty value with how many of
    the runs gave it (most common first)."""
    counts = values.fillna("").astype(str).value_counts(sort=True)
    if len(counts) == 1:
        return counts.index[0]
    return ", ".join(f"{v} ({n} of {len(values)} runs)" for v, n in counts.items() if v)


def _side_by_side(values: pd.Series) -> str:
    """The runs' values of a text column in run order, joined by "; " (a machine's load averages), or the
    one value they share (its cores)."""
    values = values.fillna("").astype(str)
    return values.iloc[0] if values.nunique() == 1 else "; ".join(values)


def summarize(t: pd.DataFrame) -> pd.DataFrame:
    """One row per measurement of a several-run table (see the module doc); a one-run table unchanged."""
    if "run" not in t or t.run.nunique() < 2:
        return t
    groups = t.groupby(KEYS, sort=False, dropna=False)
    numeric = [c for c in t.columns if c not in ("run", "n_images") and pd.api.types.is_numeric_dtype(t[c])]
    text = [c for c in t.columns if c not in (*KEYS, "run", "n_images", *numeric)]
    out = groups[numeric].median()
    out["n_images"] = groups.n_images.agg(lambda v: v.mode().max())  # a batch size: the most common one
    for col in text:  # by majority, but the machine's notes side by side
        out[col] = groups[col].agg(_common)
    notes = t[t.section == "machine"].groupby(KEYS, sort=False, dropna=False).note.agg(_side_by_side)
    out.loc[notes.index, "note"] = notes
    for col in (c for c in RANGED if c in numeric):
        out[f"{col}_lo"], out[f"{col}_hi"] = groups[col].min(), groups[col].max()
    out["runs"] = groups.run.nunique()
    ranges = [c for c in out.columns if c.endswith(("_lo", "_hi"))]
    return out.reset_index()[[*KEYS, *[c for c in t.columns if c not in KEYS and c != "run"], *ranges, "runs"]]

