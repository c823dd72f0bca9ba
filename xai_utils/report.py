"""What a chapter shows besides its experiments: the paper's numbers beside ours, verdicts on the
paper's claims, one figure style, and provenance.

A notebook calls :func:`start` first, :func:`section` before each experiment, :func:`compare` /
:func:`claim` after it, and :func:`finish` last (which prints provenance and writes
``book/results/<paper>.json`` for the book's overview page).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from . import config, parallel
from .cache import atomic_write
from .figures import set_style, show
from .params import defaults

PAPERS = ("salagg", "s_and_i", "hermitry", "disagreement", "synthetic_cells")
PACKAGES = ("torch", "torchvision", "captum", "zennit", "numpy", "scipy", "scikit-learn", "scikit-image",
            "pandas", "seaborn", "matplotlib")


# ---------------------------------------------------------------------------- paper numbers

class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain YAML keeps the last one silently)."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate keys {dupes} at line {node.start_mark.line + 1}")
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def validate_paper_numbers(doc: Any, paper: str) -> None:
    """Schema: ``{paper, title, source, numbers: {id: {value, ref, what[, note]}}[, claims: {key: {text, ref,
    paper}}]}``.

    ``value`` is a number, or null with a ``note`` saying why (e.g. unreadable in the text copy).
    ``ref`` names the table or figure (or section) the number comes from.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"{paper}: paper numbers must be a mapping")
    missing = {"paper", "title", "source", "numbers"} - set(doc)
    if missing:
        raise ValueError(f"{paper}: missing top-level keys {sorted(missing)}")
    for key, entry in (doc.get("claims") or {}).items():
        if not isinstance(entry, dict) or set(entry) != {"text", "ref", "paper"}:
            raise ValueError(f"{paper}: claim {key!r} needs exactly text, ref, paper")
        if not all(isinstance(v, str) and v.strip() for v in entry.values()):
            raise ValueError(f"{paper}: claim {key!r}: text, ref and paper must be non-empty strings")
    if doc["paper"] != paper:
        raise ValueError(f"{paper}: file says paper={doc['paper']!r}")
    if not isinstance(doc["numbers"], dict) or not doc["numbers"]:
        raise ValueError(f"{paper}: 'numbers' must be a non-empty mapping of id -> entry")
    for key, entry in doc["numbers"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"{paper}.{key}: entry must be a mapping")
        extra = set(entry) - {"value", "ref", "what", "note"}
        if extra or not {"value", "ref", "what"} <= set(entry):
            raise ValueError(f"{paper}.{key}: needs value, ref, what (optional note); unexpected {sorted(extra)}")
        value = entry["value"]
        if value is None:
            if not entry.get("note"):
                raise ValueError(f"{paper}.{key}: a null value needs a note saying why")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{paper}.{key}: value must be a finite number or null, got {value!r}")
        if not str(entry["ref"]).strip() or not str(entry["what"]).strip():
            raise ValueError(f"{paper}.{key}: ref and what must be non-empty")


def _paper_doc(paper: str) -> dict[str, Any]:
    path = config.PAPER_NUMBERS_DIR / f"{paper}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no paper numbers for {paper!r}: {path} does not exist")
    doc = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    validate_paper_numbers(doc, paper)
    return doc


def paper_claims(paper: str) -> dict[str, dict[str, str]]:
    """The paper's claims a chapter checks: key -> {text, ref, paper} (the paper's wording and side)."""
    return dict(_paper_doc(paper).get("claims") or {})


def paper_numbers(paper: str) -> pd.DataFrame:
    """The numbers a paper prints, indexed by id, with columns value, ref, what, note."""
    doc = _paper_doc(paper)
    frame = pd.DataFrame.from_dict(doc["numbers"], orient="index")
    frame.index.name = "id"
    return frame.reindex(columns=["value", "ref", "what", "note"])


def compare(paper: str, ours: Mapping[str, float], *, kind: str | Mapping[str, str],
            decimals: int = 3) -> pd.DataFrame:
    """Paper-vs-ours table for the ids in ``ours`` (each must exist in the paper's numbers).

    Columns: reference, quantity, paper, ours, ours - paper.  A paper number that is null (unreadable)
    shows as NaN with its note in the quantity column.  Ours and the difference are rounded to
    ``decimals``; the paper's numbers are shown as printed.  Each of ours is also recorded (:func:`record`)
    under its id with ``kind`` (one of :data:`TOLERANCES`, or a mapping id -> kind).
    """
    numbers = paper_numbers(paper)
    unknown = sorted(set(ours) - set(numbers.index))
    if unknown:
        raise KeyError(f"{paper}: ids not in data/paper_numbers/{paper}.yaml: {unknown}")
    rows = []
    for key, value in ours.items():
        record(key, value, kind if isinstance(kind, str) else kind[key], paper_id=key)
        entry = numbers.loc[key]
        what = entry["what"] if pd.isna(entry["note"]) else f"{entry['what']} ({entry['note']})"
        paper_value = float("nan") if pd.isna(entry["value"]) else float(entry["value"])
        rows.append({"id": key, "reference": entry["ref"], "quantity": what, "paper": paper_value,
                     "ours": float(value), "ours - paper": float(value) - paper_value})
    table = pd.DataFrame(rows).set_index("id")
    table[["ours", "ours - paper"]] = table[["ours", "ours - paper"]].round(decimals)  # the paper's as printed
    return table


# ---------------------------------------------------------------------------- verdicts and results

#: The four verdicts a claim can get.  "holds by construction": the check cannot fail on this setup (say
#: why); "not testable here": the data or budget of this run cannot decide it (say what would be needed).
VERDICTS = ("holds", "does not hold", "holds by construction", "not testable here")
_NEEDS_WHY = ("holds by construction", "not testable here")


@dataclass(frozen=True)
class Verdict:
    """Our verdict on one of the paper's claims; recorded for the overview page."""

    key: str
    claim: str
    verdict: str
    paper: str
    ours: str
    ref: str = ""
    why: str = ""

    @property
    def phrase(self) -> str:
        """The verdict with "here" once: "holds here", "not testable here"."""
        return phrase(self.verdict)

    def __repr__(self) -> str:
        ref = f" [{self.ref}]" if self.ref else ""
        why = f"\n  why:   {self.why}" if self.why else ""
        return f"Claim{ref}: {self.claim}\n  paper: {self.paper}\n  ours:  {self.ours}{why}\n  -> {self.phrase}"

    def _repr_html_(self) -> str:
        ref = f" <em>({escape(self.ref)})</em>" if self.ref else ""
        why = f"<br>why: {escape(self.why)}" if self.why else ""
        return (f'<div class="xai-claim" id="claim-{escape(self.key)}"><p>{badge(self.verdict)} {escape(self.claim)}'
                f"{ref}</p><p>paper: {escape(self.paper)}; ours: {escape(self.ours)}{why}</p></div>")


def phrase(verdict: str) -> str:
    """A verdict with "here" once: "holds here", "not testable here"."""
    return verdict if verdict.endswith(" here") else f"{verdict} here"


def badge(verdict: str) -> str:
    """A verdict as a styled text badge (``book/_static/xai.css``; class ``xai-<verdict>``)."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; known: {', '.join(VERDICTS)}")
    return f'<span class="xai-verdict xai-{verdict.replace(" ", "-")}">{phrase(verdict)}</span>'


def decide(ok: bool) -> str:
    """``"holds"`` or ``"does not hold"`` from a check that could have gone either way."""
    return "holds" if bool(ok) else "does not hold"


def decide_interval(low: float, high: float, *, above: float, what: str) -> dict[str, str]:
    """Verdict on "``what`` is above ``above``" from its 95% interval [low, high]: ``holds`` when the whole
    interval is above, ``does not hold`` when it is below (or touches from below), and ``not testable
    here`` when it straddles ``above``.  Returns ``dict(verdict=..., why=...)`` for :func:`claim`."""
    if low > above:
        return dict(verdict="holds", why="")
    if high <= above:
        return dict(verdict="does not hold", why="")
    why = (f"the 95% interval of {what}, [{low:.1f}, {high:.1f}], contains {above:g}: more images are "
           "needed to decide")
    return dict(verdict="not testable here", why=why)


@dataclass
class _Run:
    paper: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    sections: list[tuple[str, float]] = field(default_factory=list)
    claims: list[Verdict] = field(default_factory=list)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    wording: dict[str, dict[str, str]] | None = None  # the paper's claims, read once per chapter run
    figures: int = 0  # figures shown so far: the next one's number


_RUN = _Run()


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def claim(key: str, *, ours: Any, verdict: str, why: str = "", paper: str = "") -> Verdict:
    """Record and return our verdict on the claim ``key`` of the running chapter's paper.

    The claim's wording, reference and the paper's side come from ``claims:`` in
    ``data/paper_numbers/<paper>.yaml``; ``ours`` is our side in numbers, ``verdict`` one of
    :data:`VERDICTS` (computed from the numbers), and ``why`` says, for "holds by construction", why the
    check cannot fail and, for "not testable here", what would be needed.  ``paper`` overrides the
    file's wording of the paper's side where it depends on the run (e.g. a preset's table).
    """
    if verdict not in VERDICTS:
        raise ValueError(f"claim {key!r}: unknown verdict {verdict!r}; known: {', '.join(VERDICTS)}")
    if verdict in _NEEDS_WHY and not why:
        raise ValueError(f"claim {key!r}: the verdict {verdict!r} needs a why")
    if _RUN.wording is None:
        _RUN.wording = paper_claims(_RUN.paper)
    claims = _RUN.wording
    if key not in claims:
        raise KeyError(f"{_RUN.paper}: claim {key!r} not in data/paper_numbers/{_RUN.paper}.yaml; "
                       f"known: {', '.join(sorted(claims))}")
    entry = claims[key]
    result = Verdict(key, entry["text"], verdict, paper or entry["paper"], _fmt(ours), entry["ref"], why)
    _RUN.claims.append(result)
    return result


#: How far a recomputed number may lie from the committed one (absolute, in the number's unit) before
#: the results regression (``tests/test_results.py``) fails.  With the shipped weights a number moves
#: only by the float rounding of another CPU (about 1e-6 relative); these bounds are what a reader
#: could not tell apart at the claim's precision, so anything beyond them is a real change.
TOLERANCES: dict[str, float] = {
    "auroc%": 0.5,         # AUROC, FPR and other rates in percent points
    "accuracy%": 1.0,      # classification accuracy in percent points
    "fraction": 0.01,      # accuracies, precision, recall, FPR as fractions in [0, 1]
    "correlation": 0.02,   # Pearson / Spearman coefficients, SSIM
    "count": 0.0,          # counts of images, methods, significant tests: exact
    "setting": 1e-9,       # protocol constants and thresholds computed from them: exact up to rounding
    "float_error": 1e-5,   # quantities that are zero up to float rounding (an identity's residual)
}


def record(name: str, value: float, kind: str, *, paper_id: str | None = None) -> float:
    """Record one named number of ours for ``book/results/<paper>.json`` with its kind (a key of
    :data:`TOLERANCES`, which says how much it may move before the results regression fails) and, where it
    stands beside one of the paper's numbers, that number's id (the overview plots the pairs); returns it."""
    if kind not in TOLERANCES:
        raise ValueError(f"record({name!r}): unknown kind {kind!r}; known: {sorted(TOLERANCES)}")
    _RUN.numbers[name] = {"value": float(value), "kind": kind} | ({"paper_id": paper_id} if paper_id else {})
    return float(value)


# ---------------------------------------------------------------------------- provenance

def start(paper: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Begin a chapter: reset the record, set the figure style, return the chapter's parameters.

    ``namespace`` is the notebook's ``globals()``; the parameter names are those of the notebook's
    ``parameters`` cell, so provenance lists exactly what the run was given.
    """
    global _RUN
    params = {k: namespace[k] for k in defaults(paper) if k in namespace}
    _RUN = _Run(paper=paper, params=params)
    set_style()
    return params


def section(name: str) -> None:
    """Mark the start of a section; its wall time runs until the next section or :func:`finish`."""
    _RUN.sections.append((name, time.perf_counter()))


def figure(fig: Any, caption: str, *, regenerates: str | None) -> None:
    """Show a numbered, captioned figure of the running chapter (numbered from 1 by :func:`start`).

    ``regenerates`` names the paper's figure or table that it regenerates ("Fig. 5.2", "Table 3"), or is
    None for a figure of ours that the paper does not have; the caption says which.
    """
    _RUN.figures += 1
    source = f"the paper's {regenerates}, regenerated" if regenerates else "ours, not in the paper"
    show(fig, f"**Figure {_RUN.figures}** ({source}). {caption}")


def _versions(names: Iterable[str]) -> str:
    out = []
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (absent)")
    return ", ".join(out)


#: Folder a run writes its results JSON to; set by the runner (``book/results`` for the book's own
#: notebooks, the output's folder for ``--out``) and by ``make test`` (a scratch folder).  Unset (plain
#: papermill, Jupyter, a bare nbval run): no results file is written, so the committed ones stay as they are.
RESULTS_ENV = "XAI_RESULTS_DIR"


def results_path(paper: str, preset: str, results_dir: Path | None = None) -> Path:
    suffix = "" if preset == "offline" else f".{preset}"
    return Path(results_dir or config.RESULTS_DIR) / f"{paper}{suffix}.json"


def finish() -> None:
    """Print provenance (versions, device, parameters, commit, wall times) and write the results JSON
    to ``$XAI_RESULTS_DIR`` (see :data:`RESULTS_ENV`).

    Only the five papers' chapters write results; smoke runs (for tests) write theirs only outside
    ``book/results``.
    """
    import torch

    end = time.perf_counter()
    params = _RUN.params
    preset = str(params.get("preset", "offline"))
    device = config.resolve_device(params.get("device", "auto"))
    bounds = [t for _, t in _RUN.sections] + [end]
    times = [f"{name} {bounds[i + 1] - t:.1f} s" for i, (name, t) in enumerate(_RUN.sections)]
    lines = [
        f"paper: {_RUN.paper}    preset: {preset}",
        f"parameters: {json.dumps(params, default=str)}",
        f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f"    torch threads: {torch.get_num_threads()}",
        "model form: " + ("eager (torch's deterministic algorithms are on, so xai_utils.models.form measures nothing)"
                          if torch.are_deterministic_algorithms_enabled()
                          else "the fastest measured per model and input shape (xai_utils.models.form)"),
        f"engine: {parallel.describe()}",
        f"python {platform.python_version()} on {platform.machine()}",
        f"packages: {_versions(PACKAGES)}",
        f"git commit: {config.git_commit()}",
        f"wall time: {end - _RUN.started:.1f} s in all; " + "; ".join(times),
    ]
    print("Provenance\n  " + "\n  ".join(lines))
    results_dir = os.environ.get(RESULTS_ENV)
    if _RUN.paper not in PAPERS or not results_dir or (
            preset == "smoke" and Path(results_dir).resolve() == config.RESULTS_DIR.resolve()):
        return
    doc = {"paper": _RUN.paper, "preset": preset, "params": params, "numbers": _RUN.numbers,
           "claims": [asdict(v) for v in _RUN.claims]}
    text = json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n"
    atomic_write(results_path(_RUN.paper, preset, Path(results_dir)), lambda f: f.write(text.encode()))


def results_diff(committed: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    """What a recomputed results document changes against the committed one, one line per problem.

    Every committed number must be recomputed within the tolerance of its kind (:data:`TOLERANCES`,
    read from this code, so a tolerance has one source) and every claim must get the same verdict.
    """
    problems = []
    old_numbers, new_numbers = committed.get("numbers", {}), fresh.get("numbers", {})
    for name, old in old_numbers.items():
        new = new_numbers.get(name)
        if new is None:
            problems.append(f"number {name!r}: committed {old['value']!r}, not recomputed")
            continue
        tol = TOLERANCES[old["kind"]]
        if new["kind"] != old["kind"] or not abs(new["value"] - old["value"]) <= tol:
            problems.append(f"number {name!r} ({old['kind']}, tolerance {tol:g}): committed {old['value']!r}, "
                            f"now {new['value']!r} ({new['kind']})")
    problems += [f"number {name!r}: new, not in the committed results" for name in sorted(set(new_numbers) - set(old_numbers))]
    old_claims = {c["key"]: c for c in committed.get("claims", [])}
    new_claims = {c["key"]: c for c in fresh.get("claims", [])}
    for text, old in old_claims.items():
        new = new_claims.get(text)
        if new is None:
            problems.append(f"claim {text!r}: committed verdict {old['verdict']!r}, not checked now")
        elif new["verdict"] != old["verdict"]:
            problems.append(f"claim {text!r}: verdict changed from {old['verdict']!r} (ours {old['ours']}) "
                            f"to {new['verdict']!r} (ours {new['ours']})")
    problems += [f"claim {text!r}: new, not in the committed results" for text in new_claims if text not in old_claims]
    return problems
