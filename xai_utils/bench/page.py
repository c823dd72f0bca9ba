"""The bench's page, ``book/performance.md``: tables and verdicts rendered from bench CSVs.

The prose around the tables lives in Markdown files beside this module (``page_intro.md``,
``page_notes.md``, ``page_no_gpu.md``), shipped as package data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import config
from .runs import summarize

TARGETS = {"gradient": 1.2, "perturbation": 1.3, "speedup.lime": 5.0, "speedup.kernel_shap": 3.0, "capture": 1.1,
           "s_and_i": 1.3, "speedup_best": 1.5}
PAGE = config.BOOK_DIR / "performance.md"


def _template(name: str) -> str:
    """The text of the Markdown file ``name`` shipped beside this module."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


PAGE_INTRO = _template("page_intro.md")
PAGE_NOTES = _template("page_notes.md")
PAGE_NO_GPU = _template("page_no_gpu.md")


def _fmt(v: Any, digits: int = 3) -> str:
    """``v`` to ``digits`` significant digits (thousands separated, tiny values in e-notation, NaN blank)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v == 0:
            return "0"
        if abs(v) >= 1000 or abs(v) < 1e-3:
            return f"{v:.{digits - 1}e}" if abs(v) < 1e-3 else f"{v:,.0f}"
        return f"{v:.{max(digits - 1 - int(math.floor(math.log10(abs(v)))), 0)}f}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub/MyST pipe table of ``df`` (numbers to 3 significant digits, NaN blank)."""
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = [
        "| " + " | ".join(_fmt(v).replace("|", "/") for v in row) + " |" for row in df.itertuples(index=False)
    ]
    return "\n".join([head, sep, *body])


def _verdict(ok: bool) -> str:
    """A target's verdict, "met" or a bold "missed"."""
    return "met" if ok else "**missed**"


def _worst_ratio(part: pd.DataFrame, bound: float, target: str) -> dict[str, str]:
    """A target "every ratio of ``part`` <= ``bound``": its worst row, met or missed (nothing when empty)."""
    if not len(part):
        return {}
    worst = part.loc[part.ratio.idxmax()]
    return {
        "target": target,
        "measured": f"worst {worst.ratio:.2f}x ({worst['name']}, {worst.config.split(',')[0]})",
        "verdict": _verdict(bool((part.ratio <= bound).all())),
    }


def target_table(t: pd.DataFrame) -> pd.DataFrame:
    """One row per target of the issue: what was asked, what we measured (worst case), met or missed."""
    out = []
    floors = (("ratio", "their floor"), ("ratio_best_form", "the floor of the model's fastest form"))
    for col, floor in [(c, f) for c, f in floors if c in t]:
        for section in ("gradient", "perturbation"):
            part = t[t.section == section]
            if len(part):
                worst = part.loc[part[col].idxmax()]
                above = part[part[col] > TARGETS[section]]
                sizes = above.groupby("name", sort=False).config.agg(lambda c: "/".join(c.str.split(",").str[0]))
                listed = "; above it: " + ", ".join(f"{m} ({z})" for m, z in sizes.items()) if len(above) else ""
                out.append(
                    {
                        "target": f"{section} methods <= {TARGETS[section]}x {floor}",
                        "measured": f"worst {worst[col]:.2f}x ({worst['name']}, {worst.config.split(',')[0]})"
                        + listed,
                        "verdict": _verdict(bool((part[col] <= TARGETS[section]).all())),
                    }
                )
    for name in ("lime", "kernel_shap"):
        part = t[(t.section == "perturbation") & (t.name == name)].dropna(subset=["speedup"])
        if len(part):
            goal = TARGETS[f"speedup.{name}"]
            out.append(
                {
                    "target": f"{name} >= {goal:g}x faster than captum's default per-image call",
                    "measured": ", ".join(
                        f"{v:.1f}x ({c.split(',')[0]})" for v, c in zip(part.speedup, part.config, strict=True)
                    ),
                    "verdict": _verdict(bool((part.speedup >= goal).all())),
                }
            )
    if "speedup_best" in t:
        part = t[(t.section == "perturbation")].dropna(subset=["speedup_best"])
        if len(part):
            goal = TARGETS["speedup_best"]
            out.append(
                {
                    "target": f"perturbation methods >= {goal:g}x faster than captum's best configuration",
                    "measured": ", ".join(f"{m} {v:.2f}x ({c.split(',')[0]}, captum at {b})" for m, v, c, b in
                                          zip(part.name, part.speedup_best, part.config, part.library_best, strict=True)),
                    "verdict": _verdict(bool((part.speedup_best >= goal).all())),
                }
            )
    part = t[(t.section == "perturbation")].dropna(subset=["max_rel_diff"])
    if len(part):
        exact = part.exact_rel_diff.max()
        ok = bool((part.max_rel_diff <= 2e-3).all()) and not (exact > 1e-5)
        out.append(
            {
                "target": "equal results on the same perturbations (relative to the largest attribution)",
                "measured": f"vs captum {part.max_rel_diff.max():.1e} (captum fits in float32); "
                f"vs a float64 fit on the same evaluations {exact:.1e}",
                "verdict": _verdict(ok),
            }
        )
    out += [
        _worst_ratio(t[(t.section == "ood") & t.name.isin(["s_and_i", "s_and_i_a"])], TARGETS["s_and_i"],
                     f"S&I <= {TARGETS['s_and_i']}x its floor (split points x T forward+backward passes)"),
        _worst_ratio(t[t.section == "capture"], TARGETS["capture"],
                     f"capturing the perturbed encodings (hermitry) adds <= {TARGETS['capture'] - 1:.0%}"),
    ]
    return pd.DataFrame([o for o in out if o], columns=["target", "measured", "verdict"])


#: A table's columns: page header -> CSV column.
_METHOD_COLUMNS = {
    "method": "name",
    "kind": "section",
    "N": "n_images",
    "ms/image": "ms_per_image",
    "floor ms/image": "floor_ms_per_image",
    "ratio": "ratio",
    "best-form floor ms/image": "best_form_floor_ms_per_image",
    "vs best form": "ratio_best_form",
    "passes/image": "passes_per_image",
    "library call": "library",
    "library ms/image": "library_ms_per_image",
    "speed-up": "speedup",
    "captum best": "library_best",
    "best ms/image": "library_best_ms_per_image",
    "speed-up vs best": "speedup_best",
    "max rel. diff": "max_rel_diff",
    "peak RSS MB": "peak_rss_mb",
    "CUDA peak MB": "cuda_peak_mb",
}
#: The tables after the attribution methods': heading, CSV sections, columns.
_TABLES = (
    (
        "Where the libraries' time goes (LRP: zennit's attributor, composite registered once; Guided Backprop: "
        "captum's Saliency without and with no-op ReLU hooks; Anchor: anchor-exp)",
        ("rules",),
        {
            "call": "name",
            "images": "config",
            "N": "n_images",
            "ms/image": "ms_per_image",
            "floor ms/image": "floor_ms_per_image",
            "ratio": "ratio",
        },
    ),
    (
        "OOD scores",
        ("ood",),
        {
            "score": "name",
            "images": "config",
            "N": "n_images",
            "ms/image": "ms_per_image",
            "floor ms/image": "floor_ms_per_image",
            "ratio": "ratio",
            "best-form floor ms/image": "best_form_floor_ms_per_image",
            "vs best form": "ratio_best_form",
            "backward passes/image": "passes_per_image",
            "peak RSS MB": "peak_rss_mb",
            "CUDA peak MB": "cuda_peak_mb",
        },
    ),
    (
        "Capturing perturbed encodings (hermitry chapter)",
        ("capture",),
        {
            "method": "name",
            "images": "config",
            "N": "n_images",
            "ms/image with capture": "ms_per_image",
            "ms/image without": "floor_ms_per_image",
            "ratio": "ratio",
        },
    ),
    (
        "Forward time per image over batch sizes",
        ("forward",),
        {
            "what": "name",
            "images": "config",
            "batch": "n_images",
            "ms/image": "ms_per_image",
            "vs best batch": "ratio",
            "note": "note",
        },
    ),
    (
        "Data generation and training",
        ("cells", "training"),
        {
            "what": "name",
            "setting": "config",
            "value": "value",
            "unit": "unit",
            "ms/image": "ms_per_image",
            "peak RSS MB": "peak_rss_mb",
            "note": "note",
        },
    ),
)


def _with_range(rows: pd.DataFrame, col: str) -> pd.Series:
    """``col`` as the page shows it: the median, and its range over the runs in parentheses where it has one
    (:func:`~xai_utils.bench.runs.summarize`)."""
    if f"{col}_lo" not in rows:
        return rows[col]
    return pd.Series(
        [
            "" if pd.isna(v) else _fmt(v) if _fmt(lo) == _fmt(hi) else f"{_fmt(v)} ({_fmt(lo)}-{_fmt(hi)})"
            for v, lo, hi in zip(rows[col], rows[f"{col}_lo"], rows[f"{col}_hi"], strict=True)
        ],
        index=rows.index,
    )


def _columns(rows: pd.DataFrame, spec: dict[str, str], cuda: bool) -> pd.DataFrame:
    """``rows``' columns under the page's headers (``spec``): image counts as integers, several runs' medians
    with their ranges, CUDA memory only for a GPU, columns an older CSV lacks left out."""
    return pd.DataFrame(
        {
            header: rows[col].astype(int) if col == "n_images" else _with_range(rows, col)
            for header, col in spec.items()
            if (cuda or col != "cuda_peak_mb") and col in rows
        }
    )


def device_section(t: pd.DataFrame, csv_name: str) -> str:
    """The page's part for one CSV (one device; several runs summarised by their medians and ranges)."""
    dev = t.device.iloc[0]
    runs = int(t.run.nunique()) if "run" in t else 1
    t = summarize(t)
    m = t[t.section == "machine"].set_index("name")
    info = {k: v for k, v in m.note.items() if k != "bench wall time"}
    wall = m.note.get("bench wall time", "")
    command = "python -m xai_utils.bench" + (f" --runs {runs}" if runs > 1 else "")
    parts = [
        f"## {dev.upper()}: {info.get('gpu') if dev == 'cuda' else info.get('cpu', '')}",
        "",
        f"Measured by `{command}` ({wall}); raw rows: `book/results/{csv_name}`.",
        "",
        markdown_table(pd.DataFrame({"machine": list(info), "": list(info.values())})),
        "",
    ]
    if runs > 1:
        parts += [f"Every number below is the median of {runs} runs, one after the other, each in its own "
                  "process; where the runs differ, their range follows in parentheses (min-max).  The "
                  "targets are judged on the medians.", ""]
    loads = [v for k in ("load average at start", "load average at end") for v in m.note.get(k, "").split("; ")]
    try:
        worst = max(float(v.split(" / ")[0]) for v in loads if v)
    except ValueError:
        worst = 0.0
    if worst > 1.5 * float(info.get("cores", 1) or 1):
        parts += [
            f"```{{warning}}\nThe machine was shared while this ran (1-minute load average up to {worst:.1f} "
            f"on {info.get('cores')} cores): times are inflated and noisy, most of all with 2 torch "
            "threads, which spin while waiting for a core.  Ratios measured side by side suffer less, "
            "but re-run `make bench` on an idle machine before trusting a single number.\n```",
            "",
        ]
    parts += ["### Targets", "", markdown_table(target_table(t)), ""]
    cuda = dev == "cuda"
    methods = t[t.section.isin(["gradient", "perturbation"])]
    for cfg in dict.fromkeys(methods.config.str.split(",").str[0]):
        sub = methods[methods.config.str.startswith(cfg)]
        settings = sorted(set(sub[sub.section == "perturbation"].config.str.split(", ", n=1).str[1]))
        parts += [
            f"### Attribution methods, {cfg} images",
            "",
            "Perturbation settings: " + "; ".join(settings) + "." if settings else "",
            "",
            markdown_table(_columns(sub, _METHOD_COLUMNS, cuda)),
            "",
        ]
    for title, sections, spec in _TABLES:
        sub = t[t.section.isin(sections)]
        if len(sub):
            parts += [f"### {title}", "", markdown_table(_columns(sub, spec, cuda)), ""]
    return "\n".join(parts)


def write_page(
    csvs: Sequence[str | os.PathLike] | None = None,
    page: str | os.PathLike | None = None,
    notes: str = "",
    results_dir: str | os.PathLike | None = None,
) -> str:
    """Render bench CSVs into ``book/performance.md`` (or ``page``) and return the text.

    csvs : the files (default every ``bench_*.csv`` in ``results_dir``, default ``book/results``;
    quick runs' ``bench_*_quick.csv`` are left out when a full run of the same device exists).
    notes : Markdown appended after the tables (discussion, profile).
    """
    if csvs:
        paths = [Path(p) for p in csvs]
    else:
        found = sorted(Path(results_dir or config.RESULTS_DIR).glob("bench_*.csv"))
        full = {p.stem for p in found if not p.stem.endswith("_quick")}
        paths = [p for p in found if not (p.stem.endswith("_quick") and p.stem[: -len("_quick")] in full)]
    if not paths:
        raise FileNotFoundError(
            f"no bench CSV in {results_dir or config.RESULTS_DIR}: run `python -m xai_utils.bench` first"
        )
    sections = [PAGE_INTRO]
    devices = set()
    for p in paths:
        t = pd.read_csv(p, keep_default_na=True)
        for col in ("config", "note", "unit", "name"):
            t[col] = t[col].fillna("").astype(str)
        devices.add(t.device.iloc[0])
        sections.append(device_section(t, p.name))
    if "cuda" not in devices:
        sections.append(PAGE_NO_GPU)
    if notes:
        sections.append(notes)
    text = "\n".join(sections).rstrip() + "\n"
    Path(page or PAGE).write_text(text)
    return text
