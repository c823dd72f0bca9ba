"""What the overview reads: every chapter's verdicts and its numbers beside the paper's, from the results JSON
that each chapter writes at its end (:func:`xai_utils.report.finish`), as tables and linked HTML."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from ... import config
from ...report import VERDICTS, badge, paper_numbers

NO_RESULTS = "No chapter has written results yet: run `make book` (or `python -m xai_utils.run all`)."


def _documents(results_dir: Path | None) -> Iterator[dict[str, Any]]:
    for path in sorted(Path(results_dir or config.RESULTS_DIR).glob("*.json")):
        yield json.loads(path.read_text())


def chapter_href(paper: str, preset: str, anchor: str = "") -> str:
    """The link from the overview page (``book/overview.html``) to a chapter's page, or to an anchor on it."""
    page = f"{paper}.html" if preset == "offline" else f"{preset}/{paper}.html"
    return f"{page}#{anchor}" if anchor else page


def claims(results_dir: Path | None = None) -> pd.DataFrame:
    """One row per recorded claim of every chapter: paper, preset, key, claim, ref, paper's number, ours, verdict."""
    columns = ["paper", "preset", "key", "claim", "ref", "paper's number", "ours", "verdict"]
    rows = [{"paper": doc["paper"], "preset": doc["preset"], "key": v["key"], "claim": v["claim"], "ref": v["ref"],
             "paper's number": v["paper"], "ours": v["ours"], "verdict": v["verdict"]}
            for doc in _documents(results_dir) for v in doc.get("claims", [])]
    return pd.DataFrame(rows, columns=columns)


def summary(table: pd.DataFrame) -> pd.DataFrame | str:
    """Claims per chapter and preset counted by verdict (in the order of :data:`VERDICTS`), or a note when no
    chapter has results yet."""
    if table.empty:
        return NO_RESULTS
    counts = table.groupby(["paper", "preset"])["verdict"].value_counts().unstack(fill_value=0)
    return counts.reindex(columns=[v for v in VERDICTS if v in counts.columns])


def summary_html(table: pd.DataFrame) -> str:
    """:func:`summary` as the dashboard's first table: each chapter linked, each verdict kind a badge."""
    counts = summary(table)
    if isinstance(counts, str):
        return counts
    body = "".join(
        f'<tr><td><a href="{chapter_href(paper, preset)}">{escape(paper)}</a></td><td>{escape(preset)}</td>'
        + "".join(f"<td>{n}</td>" for n in row) + f"<td>{sum(row)}</td></tr>"
        for (paper, preset), row in zip(counts.index, counts.to_numpy().tolist(), strict=True))
    head = "".join(f"<th>{badge(v)}</th>" for v in counts.columns)
    return (f'<table class="dataframe xai-summary"><thead><tr><th>chapter</th><th>preset</th>{head}'
            f"<th>claims</th></tr></thead><tbody>{body}</tbody></table>")


def claims_html(table: pd.DataFrame) -> str:
    """Every claim as one row of a table that fits the page: the claim linked to where its chapter decides it
    (with chapter, preset and the paper's reference below it), the paper's side, ours, the verdict as a badge."""
    if table.empty:
        return NO_RESULTS
    rows = []
    for r in table.to_dict("records"):
        link = chapter_href(r["paper"], r["preset"], f"claim-{r['key']}")
        where = escape(" · ".join(x for x in (r["paper"], r["preset"], r["ref"]) if x))
        cells = [f'<a href="{link}">{escape(r["claim"])}</a><br><small>{where}</small>',
                 escape(r["paper's number"]), escape(r["ours"]), badge(r["verdict"])]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ('<table class="dataframe xai-claims"><thead><tr><th>claim</th><th>paper</th><th>ours</th>'
            f"<th>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def numbers(results_dir: Path | None = None) -> pd.DataFrame:
    """Every number of ours recorded beside one of the paper's (its ``paper_id``) where the paper's is known:
    paper, preset, id, paper_id, kind, ref, paper value, ours."""
    rows = []
    for doc in _documents(results_dir):
        printed = None
        for name, entry in doc.get("numbers", {}).items():
            if "paper_id" not in entry:
                continue
            printed = paper_numbers(doc["paper"]) if printed is None else printed
            paper_value = printed["value"].get(entry["paper_id"])
            if paper_value is None or pd.isna(paper_value):
                continue
            rows.append({"paper": doc["paper"], "preset": doc["preset"], "id": name, "paper_id": entry["paper_id"],
                         "kind": entry["kind"], "ref": printed.loc[entry["paper_id"], "ref"],
                         "paper value": float(paper_value), "ours": entry["value"]})
    return pd.DataFrame(rows, columns=["paper", "preset", "id", "paper_id", "kind", "ref", "paper value", "ours"])
