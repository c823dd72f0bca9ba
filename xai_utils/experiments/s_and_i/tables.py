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
#: Our score per paper row ("gaia" is GAIA-Z on CIFAR-100, the paper's eq. 11 setting).
OURS_FOR = {"msp": "msp", "odin": "odin", "energy": "energy", "gradnorm": "gradnorm", "rankfeat": "rankfeat",
            "react": "react", "gaia": "gaia_z", "s_and_i": "s_and_i"}


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


def paper_table(table: str, backbone: str) -> pd.DataFrame:
    """The paper's Table 1 (``backbone`` resnet34 / wrn40) or Table 2 (bit) in :func:`metrics_table`'s shape."""
    numbers = report.paper_numbers("s_and_i")["value"]
    rows = {}
    for m in PAPER_METHODS:
        rows[LABELS[OURS_FOR[m]] if m != "gaia" else "GAIA"] = {
            (SET_LABELS.get(s, "AVG"), k.upper() if k == "auroc" else "FPR95"): numbers[f"{table}.{backbone}.{m}.{s}.{k}"]
            for s in (*PAPER_SETS[table], "avg") for k in ("fpr95", "auroc")
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def average_table(scores: Mapping[str, RunScores], paper_backbones: Mapping[str, str]) -> pd.DataFrame:
    """Average FPR95 / AUROC per method: the paper's (Table 1 row of each run's stand-in backbone) beside
    ours.  ``paper_backbones``: run name -> "resnet34" | "wrn40"."""
    numbers = report.paper_numbers("s_and_i")["value"]
    rows = []
    for run, rs in scores.items():
        bb = paper_backbones[run]
        for m in PAPER_METHODS:
            col = OURS_FOR[m]
            if col not in rs.scores:
                continue
            fpr, auc = set_metrics(rs, col)["AVG"]
            rows.append({"run": run, "method": LABELS[col],
                         "paper FPR95": numbers[f"table1.{bb}.{m}.avg.fpr95"], "ours FPR95": round(fpr, 2),
                         "paper AUROC": numbers[f"table1.{bb}.{m}.avg.auroc"], "ours AUROC": round(auc, 2)})
    return pd.DataFrame(rows).set_index(["run", "method"])


def record_averages(scores: Mapping[str, RunScores]) -> None:
    """Record every score's average FPR95 and AUROC per run for the results regression."""
    for run, rs in scores.items():
        for col in rs.scores:
            fpr, auc = set_metrics(rs, col)["AVG"]
            report.record(f"{run}.{col}.avg.fpr95", fpr, "auroc%")
            report.record(f"{run}.{col}.avg.auroc", auc, "auroc%")


def paper_inconsistencies() -> pd.DataFrame:
    """The paper's numbers that its own tables do not give back (yaml notes), with the recomputed value."""
    t = report.paper_numbers("s_and_i")
    noted = t[t["note"].notna()]
    return noted[["ref", "what", "value", "note"]].rename(columns={"value": "printed"})
