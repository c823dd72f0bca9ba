"""Tables 1-2: FPR95 and AUROC (%) per OOD set and their average, ours beside the paper's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ... import metrics, report
from .scores import LABELS, RunScores

#: The paper's OOD sets per table, in its column order, and its methods in its row order.
PAPER_SETS = {"table1": ("svhn", "lsun", "tin", "places", "textures"),
              "table2": ("inaturalist", "textures", "sun", "places")}
PAPER_METHODS = ("msp", "odin", "energy", "gradnorm", "rankfeat", "react", "gaia", "s_and_i")
SET_LABELS = {"svhn": "SVHN", "lsun": "LSUN", "tin": "TinyImageNet", "places": "Places", "textures": "Textures",
              "inaturalist": "iNaturalist", "sun": "SUN"}
#: The paper's table of each backbone (the notebook's ``paper_backbones``).
BACKBONE_TABLE = {"resnet34": "table1", "wrn40": "table1", "bit": "table2"}
#: Our score per paper row: on CIFAR-100 (Table 1) "gaia" / "s_and_i" are GAIA-Z / S&I (eqs. 10-11); on
#: ImageNet (Table 2) GAIA-A / S&I-A (eqs. 12-13), the variants the GAIA and S&I papers use for 1000 classes.
OURS_FOR = {"msp": "msp", "odin": "odin", "energy": "energy", "gradnorm": "gradnorm", "rankfeat": "rankfeat",
            "react": "react", "gaia": "gaia_z", "s_and_i": "s_and_i"}
OURS_FOR_TABLE = {"table1": OURS_FOR, "table2": OURS_FOR | {"gaia": "gaia_a", "s_and_i": "s_and_i_a"}}


def set_metrics(rs: RunScores, col: str) -> dict[str, tuple[float, float]]:
    """Per OOD set (and ``AVG``, the mean over sets as the paper): (FPR95 %, AUROC %) of one score."""
    id_v = rs.values(col, "id")
    out = {}
    for s in rs.ood_sets:
        m = metrics.ood_metrics(id_v, rs.values(col, s))
        out[s] = (100 * m.fpr_at_tpr, 100 * m.auroc)
    out["AVG"] = tuple(float(np.mean([v[i] for v in out.values()])) for i in (0, 1))
    return out


def metrics_table(rs: RunScores, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows: scores; columns (set, FPR95 | AUROC) for every OOD set and AVG, as the paper's tables."""
    rows = {}
    for col in columns or rs.scores:
        rows[LABELS.get(col, col)] = {(s, k): v[i] for s, v in set_metrics(rs, col).items()
                                     for i, k in enumerate(("FPR95", "AUROC"))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table.round(2)


def _table(backbone: str) -> str:
    if backbone not in BACKBONE_TABLE:
        raise ValueError(f"unknown paper backbone {backbone!r}; known: {list(BACKBONE_TABLE)}")
    return BACKBONE_TABLE[backbone]


def paper_table(backbone: str) -> pd.DataFrame:
    """The paper's table of ``backbone`` (Table 1: resnet34 / wrn40; Table 2: bit) in :func:`metrics_table`'s
    shape, rows as the paper names them."""
    table = _table(backbone)
    numbers = report.paper_numbers("s_and_i")["value"]
    rows = {}
    for m in PAPER_METHODS:
        rows["GAIA" if m == "gaia" else LABELS[OURS_FOR[m]]] = {
            (SET_LABELS.get(s, "AVG"), k.upper() if k == "auroc" else "FPR95"): numbers[f"{table}.{backbone}.{m}.{s}.{k}"]
            for s in (*PAPER_SETS[table], "avg") for k in ("fpr95", "auroc")
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def average_table(scores: Mapping[str, RunScores], paper_backbones: Mapping[str, str]) -> pd.DataFrame:
    """Average FPR95 / AUROC per method: the paper's (the row of each run's backbone in Table 1 or 2) beside
    ours.  ``paper_backbones``: run name -> "resnet34" | "wrn40" | "bit"."""
    numbers = report.paper_numbers("s_and_i")["value"]
    rows = []
    for run, rs in scores.items():
        bb = paper_backbones[run]
        table = _table(bb)
        for m in PAPER_METHODS:
            col = OURS_FOR_TABLE[table][m]
            if col not in rs.scores:
                continue
            fpr, auc = set_metrics(rs, col)["AVG"]
            rows.append({"run": run, "method": LABELS[col],
                         "paper FPR95": numbers[f"{table}.{bb}.{m}.avg.fpr95"], "ours FPR95": round(fpr, 2),
                         "paper AUROC": numbers[f"{table}.{bb}.{m}.avg.auroc"], "ours AUROC": round(auc, 2)})
    return pd.DataFrame(rows).set_index(["run", "method"])


def record_averages(scores: Mapping[str, RunScores], paper_backbones: Mapping[str, str]) -> None:
    """Record every score's average FPR95 and AUROC per run for the results regression, each with the id of
    the paper's number it stands beside in :func:`average_table` where the paper has one (for the overview)."""
    for run, rs in scores.items():
        table = _table(paper_backbones[run])
        paper_method = {OURS_FOR_TABLE[table][m]: m for m in PAPER_METHODS}
        for col in rs.scores:
            fpr, auc = set_metrics(rs, col)["AVG"]
            for metric, value in (("fpr95", fpr), ("auroc", auc)):
                paper_id = (f"{table}.{paper_backbones[run]}.{paper_method[col]}.avg.{metric}"
                            if col in paper_method else None)
                report.record(f"{run}.{col}.avg.{metric}", value, "auroc%", paper_id=paper_id)


def paper_inconsistencies() -> pd.DataFrame:
    """The paper's numbers that its own tables do not give back (yaml notes), with the recomputed value."""
    t = report.paper_numbers("s_and_i")
    noted = t[t["note"].notna()]
    return noted[["ref", "what", "value", "note"]].rename(columns={"value": "printed"})
