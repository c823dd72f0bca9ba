"""Paper numbers schema, the paper-vs-ours table, verdicts, provenance and the results file."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from xai_utils import config, report
from xai_utils.experiments import overview

PAPER_FILES = sorted(config.PAPER_NUMBERS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", PAPER_FILES, ids=[p.stem for p in PAPER_FILES])
def test_every_paper_numbers_file_follows_the_schema(path):
    assert path.stem in report.PAPERS
    frame = report.paper_numbers(path.stem)
    assert len(frame) > 0 and frame["ref"].str.len().min() > 0


def test_paper_numbers_files_exist_for_every_chapter():
    chapters = {p.stem for p in (config.REPO_ROOT / "notebooks").glob("*.py")} & set(report.PAPERS)
    assert chapters <= {p.stem for p in PAPER_FILES}


GOOD = {"paper": "salagg", "title": "t", "source": "000.txt",
        "numbers": {"t1.mls": {"value": 0.9, "ref": "Table 1", "what": "MLS AUROC"}}}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.pop("title"), "missing top-level keys"),
    (lambda d: d.update(paper="other"), "file says paper"),
    (lambda d: d["numbers"]["t1.mls"].pop("ref"), "needs value, ref, what"),
    (lambda d: d["numbers"]["t1.mls"].update(value="high"), "finite number or null"),
    (lambda d: d["numbers"]["t1.mls"].update(value=float("nan")), "finite number or null"),
    (lambda d: d["numbers"]["t1.mls"].update(value=None), "null value needs a note"),
    (lambda d: d["numbers"]["t1.mls"].update(extra=1), "unexpected"),
    (lambda d: d.update(numbers={}), "non-empty"),
    (lambda d: d.update(claims={"c": {"text": "x", "ref": "Fig. 1"}}), "claim 'c' needs exactly text, ref, paper"),
    (lambda d: d.update(claims={"c": {"text": "x", "ref": "Fig. 1", "paper": " "}}), "non-empty strings"),
])
def test_schema_violations_are_named(edit, message):
    doc = json.loads(json.dumps(GOOD))
    edit(doc)
    with pytest.raises(ValueError, match=message):
        report.validate_paper_numbers(doc, "salagg")


def _write(tmp_path, monkeypatch, text):
    monkeypatch.setattr(config, "PAPER_NUMBERS_DIR", tmp_path)
    (tmp_path / "salagg.yaml").write_text(text)


def test_duplicate_ids_are_refused(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "paper: salagg\ntitle: t\nsource: s\nnumbers:\n"
           "  a: {value: 1, ref: T1, what: x}\n  a: {value: 2, ref: T1, what: x}\n")
    with pytest.raises(ValueError, match="duplicate keys"):
        report.paper_numbers("salagg")


def test_compare_puts_paper_and_ours_side_by_side(tmp_path, monkeypatch):
    doc = json.loads(json.dumps(GOOD))
    doc["numbers"]["t1.gbp"] = {"value": None, "ref": "Table 1", "what": "GBP AUROC", "note": "unreadable"}
    _write(tmp_path, monkeypatch, yaml.safe_dump(doc))
    table = report.compare("salagg", {"t1.mls": 0.8, "t1.gbp": 0.7}, kind="auroc%")
    assert list(table.columns) == ["reference", "quantity", "paper", "ours", "ours - paper"]
    assert table.loc["t1.mls", "ours - paper"] == pytest.approx(-0.1)
    assert table.loc["t1.gbp", "paper"] != table.loc["t1.gbp", "paper"]  # NaN, with the note shown
    assert "unreadable" in table.loc["t1.gbp", "quantity"]
    with pytest.raises(KeyError, match="t1.nope"):
        report.compare("salagg", {"t1.nope": 1.0}, kind="auroc%")


@pytest.fixture
def chapter_params(monkeypatch):
    """The chapter's parameter names, as its notebook's parameters cell would declare them."""
    monkeypatch.setattr(report, "defaults", lambda paper: {"preset": "offline", "seed": 0, "device": "auto"})
    claims = {"gbp_far": {"text": "GBP-Norm beats MLS on far-OOD", "ref": "Table 1", "paper": "91.0 vs 88.0"}}
    monkeypatch.setattr(report, "paper_claims", lambda paper: claims)


def test_verdicts_and_results_file(tmp_path, monkeypatch, capsys, chapter_params):
    monkeypatch.setenv(report.RESULTS_ENV, str(tmp_path))
    report.start("salagg", {"preset": "offline", "seed": 0, "unrelated": 1} | {"device": "cpu"})
    report.section("one")
    v = report.claim("gbp_far", ours=0.85, verdict=report.decide(0.85 > 0.88))
    assert v.verdict == "does not hold" and "0.850" in repr(v) and "91.0 vs 88.0" in repr(v)
    assert v._repr_html_().startswith('<div class="xai-claim" id="claim-gbp_far"><p><span class="xai-verdict '
                                      'xai-does-not-hold">does not hold here</span> GBP-Norm beats MLS on far-OOD '
                                      "<em>(Table 1)</em>")
    with pytest.raises(ValueError, match="unknown verdict 'yes'"):
        report.claim("gbp_far", ours=1, verdict="yes")
    with pytest.raises(ValueError, match="needs a why"):
        report.claim("gbp_far", ours=1, verdict="holds by construction")
    with pytest.raises(KeyError, match="claim 'nope' not in"):
        report.claim("nope", ours=1, verdict="holds")
    untestable = report.claim("gbp_far", ours="16 images", verdict="not testable here", why="needs 300 OOD images")
    assert repr(untestable).endswith("-> not testable here")  # "here" once
    report.record("auroc", 0.5, "auroc%")
    report.record("fig1.mls", 60.0, "auroc%", paper_id="fig1.mls")
    with pytest.raises(ValueError, match="unknown kind 'percent'"):
        report.record("x", 1.0, "percent")
    report.finish()
    printed = capsys.readouterr().out
    assert "git commit:" in printed and "wall time:" in printed and "one " in printed
    assert "engine: local (in this process)" in printed
    assert "model form: eager" in printed if torch.are_deterministic_algorithms_enabled() else "fastest measured" in printed
    doc = json.loads((tmp_path / "salagg.json").read_text())
    assert doc["numbers"] == {"auroc": {"value": 0.5, "kind": "auroc%"},
                              "fig1.mls": {"value": 60.0, "kind": "auroc%", "paper_id": "fig1.mls"}}
    assert doc["claims"][0]["verdict"] == "does not hold"
    assert doc["params"] == {"preset": "offline", "seed": 0, "device": "cpu"}  # only declared parameters
    table = overview.claims(tmp_path)
    assert table.loc[0, "verdict"] == "does not hold" and table.loc[0, "paper"] == "salagg"
    summary = overview.summary(table)
    assert summary.loc[("salagg", "offline"), "does not hold"] == 1
    assert list(summary.columns) == ["does not hold", "not testable here"]  # in the order of VERDICTS
    html = overview.claims_html(table)
    assert '<a href="salagg.html#claim-gbp_far">GBP-Norm beats MLS on far-OOD</a>' in html
    assert html.count('class="xai-verdict') == 2
    assert '<a href="salagg.html">salagg</a>' in overview.summary_html(table)
    assert overview.chapter_href("salagg", "real", "claim-x") == "real/salagg.html#claim-x"
    numbers = overview.numbers(tmp_path)  # only the number recorded beside the paper's, with the paper's value
    printed = report.paper_numbers("salagg").loc["fig1.mls", "value"]
    assert numbers[["id", "paper value", "ours"]].values.tolist() == [["fig1.mls", printed, 60.0]]


def test_smoke_runs_write_no_results_into_the_book(tmp_path, monkeypatch, chapter_params):
    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path)
    monkeypatch.setenv(report.RESULTS_ENV, str(tmp_path))
    report.start("salagg", {"preset": "smoke"})
    report.finish()
    assert not list(tmp_path.iterdir())
    assert overview.summary(overview.claims(tmp_path)) == overview.NO_RESULTS
    assert overview.numbers(tmp_path).empty
    elsewhere = tmp_path / "elsewhere"  # a smoke run with --out elsewhere (the Ray equality test compares them)
    monkeypatch.setenv(report.RESULTS_ENV, str(elsewhere))
    report.start("salagg", {"preset": "smoke"})
    report.finish()
    assert [p.name for p in elsewhere.iterdir()] == ["salagg.smoke.json"]


def test_without_a_results_folder_nothing_is_written(tmp_path, monkeypatch, chapter_params):
    """A bare nbval or papermill run (no XAI_RESULTS_DIR) leaves the committed book/results alone."""
    monkeypatch.delenv(report.RESULTS_ENV, raising=False)
    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path)
    report.start("salagg", {"preset": "offline"})
    report.record("auroc", 0.5, "auroc%")
    report.finish()
    assert not list(tmp_path.iterdir())


def test_decide_interval_needs_the_whole_interval_on_one_side():
    assert report.decide_interval(0.5, 2.0, above=0.0, what="d") == {"verdict": "holds", "why": ""}
    assert report.decide_interval(-2.0, -0.1, above=0.0, what="d")["verdict"] == "does not hold"
    open_ = report.decide_interval(-0.5, 2.0, above=0.0, what="the gap")
    assert open_["verdict"] == "not testable here" and "the gap" in open_["why"] and "[-0.5, 2.0]" in open_["why"]
    assert report.decide_interval(2.5, 4.0, above=3.0, what="d")["verdict"] == "not testable here"


def test_figure_shows_once_with_its_caption(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    _, ax = plt.subplots()
    report.start("overview", {})
    report.figure(ax, "What to compare.", regenerates="Fig. 1")
    assert shown[0] is ax.figure and shown[1].data == "**Figure 1** (the paper's Fig. 1, regenerated). What to compare."
    assert ax.figure.number not in plt.get_fignums()  # closed: the inline backend will not draw it again
    report.figure(plt.subplots()[0], "Ours.", regenerates=None)
    assert shown[3].data == "**Figure 2** (ours, not in the paper). Ours."
    report.start("overview", {})  # numbering starts again with each chapter
    report.figure(plt.subplots()[0], "Again.", regenerates=None)
    assert shown[5].data.startswith("**Figure 1** ")
