"""The performance bench runs end to end on a tiny subset and produces real, finite content.

Timings are never asserted (they belong to ``make bench``); the tests check that every registered
method and score has a row, that floors, ratios and pass counts are finite and positive, and that
our perturbation maps equal captum's on the same perturbations.
"""

from __future__ import annotations

import math
import re
import runpy
from dataclasses import replace

import pandas as pd
import pytest
import torch
from torch import nn

from xai_utils import attribution, bench, config, ood
from xai_utils.bench.timing import PeakMemory

pytestmark = pytest.mark.model_forms  # the bench measures the model's forms


def _tiny() -> bench.BenchSettings:
    return replace(
        bench.BenchSettings.quick(),
        images=(bench.ImageSetting(size=16, n_grad=2, n_pert=2, blocks=4, n_samples=24),),
        repeats=1,
        forward_batches=(1, 4),
        cells_n=32,
        train=False,
        arch_overrides={"width": 4},
    )


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory) -> tuple[pd.DataFrame, object]:
    out = tmp_path_factory.mktemp("bench") / "bench_cpu.csv"
    table = bench.run(device="cpu", settings=_tiny(), out=out, threads=1, progress=False)
    return table, out


def test_quick_cli_runs_the_quick_settings(tmp_path, monkeypatch, capsys):
    """``make bench QUICK=1`` = ``python -m xai_utils.bench --quick``: the CLI takes the quick settings
    (shrunk here to a tiny subset) and writes the CSV it names; a bad option is refused."""
    calls, tiny = [], _tiny()

    def quick() -> bench.BenchSettings:
        calls.append("quick")
        return tiny

    monkeypatch.setattr(bench.BenchSettings, "quick", staticmethod(quick))
    out = tmp_path / "b.csv"
    assert bench.main(["--quick", "--device", "cpu", "--threads", "1", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert calls == ["quick"] and "(quick)" in table.set_index("name").note["bench wall time"]
    assert "| gradient | saliency |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--quik"])


def test_module_entry_point_runs_the_cli(monkeypatch, capsys):
    """``python -m xai_utils.bench`` (the Makefile's ``bench`` target) reaches the same CLI."""
    monkeypatch.setattr("sys.argv", ["xai_utils.bench", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("xai_utils.bench", run_name="__main__")
    assert exit_.value.code == 0 and "--write-page" in capsys.readouterr().out


def test_every_registered_method_and_score_has_a_finite_positive_ratio(tiny_bench):
    table, _ = tiny_bench
    methods = table[table.section.isin(["gradient", "perturbation"])]
    assert sorted(methods.name) == sorted(attribution.METHODS)
    assert set(methods[methods.section == "perturbation"].name) == set(attribution.PERTURBATION_METHODS)
    scores = table[table.section == "ood"]
    assert sorted(scores.name) == sorted(ood.SCORES)
    capture = table[table.section == "capture"]
    assert sorted(capture.name) == ["kernel_shap", "lime", "occlusion"]
    for part in (methods, scores, capture):
        for col in ("ms_per_image", "floor_ms_per_image", "ratio"):
            assert (part[col].apply(math.isfinite) & (part[col] > 0)).all(), (col, part[["name", col]])
    for part in (methods, scores):  # the same passes in the model's fastest form (issue 22)
        for col in ("best_form_floor_ms_per_image", "ratio_best_form"):
            assert (part[col].apply(math.isfinite) & (part[col] > 0)).all(), (col, part[["name", col]])
    forms = table[table.name.str.contains(" form ")].set_index("name")
    assert {"forward form eager", "forward+backward form eager", "forward form channels_last"} <= set(forms.index)
    assert forms.note.eq("fastest").sum() == 2 * table.config[table.name == "forward form eager"].nunique()
    # pass counting: one backward per image for saliency, n_steps for IG, F+1 evaluations for occlusion
    by = methods.set_index("name")
    assert by.loc["saliency", "passes_per_image"] == 1
    assert by.loc["integrated_gradients", "passes_per_image"] >= 2
    assert by.loc["occlusion", "passes_per_image"] == 4 * 4 + 1
    assert (by.loc[["lime", "kernel_shap"], "passes_per_image"] >= 24).all()


def test_captum_comparison_is_present_and_equal_on_the_same_perturbations(tiny_bench):
    table, _ = tiny_bench
    pert = table[table.section == "perturbation"].set_index("name")
    for name in bench.CAPTUM_EQUIVALENT:
        row = pert.loc[name]
        assert row.library_ms_per_image > 0 and row.speedup > 0 and row.library.startswith("captum")
        # captum fits in float32 (KernelSHAP's 1e6 end-point weights cost it ~1e-3); ours is float64
        assert row.max_rel_diff < 5e-3, (name, row.max_rel_diff)
        # captum's best batching is among the tried ones, its default included, so never slower than the default
        assert row.library_best.startswith("perturbations_per_eval=") and 0 < row.speedup_best <= row.speedup
    for name in ("lime", "kernel_shap"):  # against a float64 scikit-learn fit on the same evaluations
        assert pert.loc[name, "exact_rel_diff"] < 1e-5
    assert math.isnan(pert.loc["anchor", "speedup"])  # captum has no Anchor
    # IG: our chunked passes against captum's default single batch, same steps and baseline
    ig = table[table.section == "gradient"].set_index("name").loc["integrated_gradients"]
    assert ig.library_ms_per_image > 0 and ig.speedup > 0 and ig.max_rel_diff < 1e-4
    assert ig.library_best in {"one batch", *(f"internal_batch_size={b}" for b in bench.reference.CAPTUM_IG_BATCH)}
    assert 0 < ig.speedup_best <= ig.speedup
    # LRP: zennit with the same composite registered once gives the same relevance
    lrp = table[table.section == "gradient"].set_index("name").loc["lrp"]
    assert lrp.library_ms_per_image > 0 and lrp.max_rel_diff < 1e-6
    # where LRP's time goes: zennit without rules, with epsilon, with our composite, against LRP's floor
    parts = table[table.section == "rules"].set_index("name")
    rules = parts[parts.index.str.startswith("lrp")]
    assert list(rules.index) == [f"lrp: zennit, {c}" for c in ("no rules", "epsilon rule", "epsilon_plus_flat (ours)")]
    assert (rules.floor_ms_per_image == lrp.floor_ms_per_image).all() and (rules.ratio > 0).all()
    # where Anchor's time goes: anchor-exp with the model, and alone (the same search, the answers replayed,
    # checked inside to give the same maps in the same number of calls)
    anchor = parts[parts.index.str.startswith("anchor_beam")]
    assert list(anchor.index) == [f"anchor_beam: anchor-exp, {c}" for c in
                                  ("with the model (eager)", "alone (the model's answers replayed)")]
    assert (anchor.floor_ms_per_image == pert.loc["anchor_beam", "floor_ms_per_image"]).all()
    assert (anchor.ratio > 0).all()
    # where Guided Backprop's time goes: a plain gradient on the model, on the captum-safe copy, with ReLU hooks
    gbp = parts[parts.index.str.startswith("guided_backprop")]
    assert list(gbp.index[:2]) == [f"guided_backprop: captum Saliency on {c}" for c in
                                   ("the model", "its captum-safe copy")]
    assert len(gbp) == 3 and re.fullmatch(r"guided_backprop: .* a no-op hook on each of its [1-9]\d* ReLUs", gbp.index[2])
    assert (gbp.floor_ms_per_image == table.set_index("name").loc["guided_backprop", "floor_ms_per_image"]).all()
    assert (gbp.ratio > 0).all()
    # DeepLift: captum's own call on the whole batch gives our maps
    dl = table[table.section == "gradient"].set_index("name").loc["deeplift"]
    assert dl.library.startswith("captum DeepLift") and dl.speedup > 0 and dl.max_rel_diff < 1e-5


def test_machine_memory_and_forward_rows(tiny_bench):
    table, _ = tiny_bench
    machine = table[table.section == "machine"].set_index("name").note
    assert machine["torch"] == torch.__version__ and int(machine["cores"]) >= 1 and machine["cpu"]
    fwd = table[table.section == "forward"]
    assert (fwd[fwd.name.str.startswith("forward batch")].ratio >= 1).all()
    assert (fwd.name == "engine chunk size").any()
    assert (table[table.section == "cells"].value > 0).all()
    assert (table[table.section.isin(["gradient", "perturbation"])].peak_rss_mb > 0).all()


def test_page_is_generated_from_the_csv(tiny_bench, tmp_path):
    _, csv = tiny_bench
    page = tmp_path / "performance.md"
    text = bench.write_page([csv], page, notes="## Notes\n\nhand-written part\n")
    assert page.read_text() == text
    assert "# Performance" in text and "hand-written part" in text and "No GPU" in text
    for name in list(attribution.METHODS) + list(ood.SCORES):
        assert f"| {name} |" in text
    assert "| lime >= 5x faster than captum's default per-image call |" in text
    assert "| perturbation methods >= 1.5x faster than captum's best configuration |" in text
    assert "| speed-up vs best |" in text
    assert "### Where the libraries' time goes" in text and "| lrp: zennit, no rules |" in text
    assert "| anchor_beam: anchor-exp, alone (the model's answers replayed) |" in text
    with pytest.raises(FileNotFoundError, match="no bench CSV"):
        bench.write_page(None, tmp_path / "x.md", results_dir=tmp_path / "empty")


def test_pass_counter_counts_forward_and_backward_images():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(12, 3)

        def forward(self, x):
            return self.head(x.flatten(1))

    model = Net()
    counter = bench.PassCounter(model)
    x = torch.rand(5, 3, 2, 2)
    with counter.count():
        with torch.no_grad():
            model(x)
        xg = x.clone().requires_grad_()
        model(xg).sum().backward()
    assert (counter.forward, counter.backward) == (10, 5)
    model(x).sum().backward()  # outside count(): ignored
    assert (counter.forward, counter.backward) == (10, 5)
    counter.remove()


def test_markdown_table_formats_numbers():
    df = pd.DataFrame({"a": ["x", "y"], "b": [1.23456, float("nan")], "c": [12345.0, 2e-5]})
    lines = bench.markdown_table(df).splitlines()
    assert (
        lines[0] == "| a | b | c |"
        and lines[2] == "| x | 1.23 | 12,345 |"
        and lines[3] == "| y |  | 2.00e-05 |"
    )


def test_target_table_judges_s_and_i_and_the_capture():
    from xai_utils.bench import page
    from xai_utils.bench.settings import row

    cpu = torch.device("cpu")
    rows = pd.DataFrame([
        row(cpu, "ood", "s_and_i", ratio=0.8, config="32x32"),
        row(cpu, "ood", "s_and_i_a", ratio=1.4, config="64x64"),
        row(cpu, "ood", "msp", ratio=9.0, config="32x32"),
        row(cpu, "capture", "lime", ratio=1.02, config="32x32, 8x8 blocks"),
    ])
    t = page.target_table(rows).set_index("target")
    si = t.loc[[k for k in t.index if k.startswith("S&I")][0]]
    assert si.verdict == "**missed**" and "1.40x (s_and_i_a, 64x64)" in si.measured
    cap = t.loc[[k for k in t.index if k.startswith("capturing")][0]]
    assert cap.verdict == "met" and "1.02x (lime, 32x32)" in cap.measured


def test_a_method_is_timed_in_the_form_a_long_job_runs(tiny_resnet, tiny_images, monkeypatch):
    from xai_utils.bench.timing import Floors, PassCounter, measure
    from xai_utils.models import form

    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    measured = []
    real = form.best_time
    monkeypatch.setattr(form, "best_time", lambda *a, **k: measured.append(1) or real(*a, **k))

    def call():
        return attribution.attribute("saliency", tiny_resnet, tiny_images)

    counter = PassCounter(tiny_resnet)
    try:
        assert call() is not None and not measured  # 7 images: a short job keeps the eager model
        with form.steady_state():
            m = measure(call, Floors({1: lambda: None}, {1: lambda: None}), counter, torch.device("cpu"), 1)
    finally:
        counter.remove()
    assert measured  # the warm-up call measured the forms ...
    assert (m.forwards, m.backwards) == (14, 7)  # ... and the counted call did not (one forward: the targets)
    chosen = [v for v in form._CACHE[tiny_resnet].values() if isinstance(v, form.ModelForm)]
    assert chosen and "channels_last" in chosen[0].seconds_per_image


def _two_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The tiny run twice: the second 20% slower with another captum best for LIME and other load averages."""
    second = table.copy()
    timed = second.section.isin(["gradient", "perturbation", "ood"])
    second.loc[timed, "ms_per_image"] *= 1.2
    second.loc[timed, "ratio"] *= 1.2
    second.loc[second.name == "lime", "library_best"] = "perturbations_per_eval=1"
    second.loc[second.name == "load average at start", "note"] = "9.00 / 1.00 / 1.00"
    return pd.concat([table.assign(run=1), second.assign(run=2)], ignore_index=True)


def test_several_runs_are_summarised_by_medians_and_ranges(tiny_bench, tmp_path):
    from xai_utils.bench.runs import summarize

    table, _ = tiny_bench
    both = _two_runs(table)
    summary = summarize(both)
    assert len(summary) == len(table) and (summary.runs == 2).all()
    sal = summary[(summary.name == "saliency")].iloc[0]
    first = table[table.name == "saliency"].iloc[0]
    assert math.isclose(sal.ms_per_image, 1.1 * first.ms_per_image, rel_tol=1e-9)  # the median of two
    assert (sal.ms_per_image_lo, sal.ms_per_image_hi) == pytest.approx((first.ms_per_image, 1.2 * first.ms_per_image))
    lime = summary[summary.name == "lime"].iloc[0].library_best
    assert "(1 of 2 runs)" in lime and "perturbations_per_eval=1 " in lime  # the runs disagree: both named
    assert summary[summary.name == "cores"].iloc[0].note == table[table.name == "cores"].iloc[0].note
    load = summary[summary.name == "load average at start"].iloc[0].note
    assert load.endswith("; 9.00 / 1.00 / 1.00")  # side by side
    assert summarize(table) is table  # one run: unchanged

    csv = tmp_path / "bench_cpu.csv"
    both.to_csv(csv, index=False)
    text = bench.write_page([csv], tmp_path / "performance.md")
    assert "`python -m xai_utils.bench --runs 2`" in text and "median of 2 runs" in text
    f = bench.page._fmt
    ms = f"{f(sal.ms_per_image)} ({f(sal.ms_per_image_lo)}-{f(sal.ms_per_image_hi)})"
    assert f"| saliency | gradient | {int(first.n_images)} | {ms} |" in text
    assert "The machine was shared" in text  # a load of 9 on the second run's start


def test_runs_are_separate_processes_written_atomically(tiny_bench, tmp_path, monkeypatch):
    import subprocess

    from xai_utils.bench import runs

    table, _ = tiny_bench
    seen = []

    def fake(cmd, check):
        seen.append(cmd)
        if len(seen) == 3:
            raise subprocess.CalledProcessError(1, cmd)
        table.to_csv(cmd[cmd.index("--out") + 1], index=False)

    monkeypatch.setattr(runs.subprocess, "run", fake)
    out = tmp_path / "bench_cpu.csv"
    got = runs.run_many(2, out, ["--quick"])
    assert list(got.run.unique()) == [1, 2] and len(got) == 2 * len(table)
    assert seen[0][1:4] == ["-m", "xai_utils.bench", "--quick"] and seen[0][-2] == "--out"
    assert pd.read_csv(out).run.tolist() == got.run.tolist()
    with pytest.raises(subprocess.CalledProcessError):
        runs.run_many(2, out, [])  # the third process fails: the file of the first two stays
    assert len(pd.read_csv(out)) == 2 * len(table)
    with pytest.raises(ValueError, match="runs must be >= 1"):
        runs.run_many(0, out)


def test_a_replay_that_leaves_the_recorded_search_is_refused():
    from xai_utils.bench.reference import _Replay

    replay = _Replay([torch.zeros(2, 3)])
    assert replay(torch.zeros(2, 1)).shape == (2, 3) and replay.calls == 1
    with pytest.raises(RuntimeError, match="another batch"):
        _Replay([torch.zeros(2, 3)])(torch.zeros(3, 1))


@pytest.mark.skipif(config._glibc() is None, reason="malloc settings are glibc's")
def test_peak_memory_counts_from_the_live_memory():
    """Memory that malloc kept from earlier work is handed back on entry, so it does not count as a block's."""
    config.keep_freed_memory()
    with PeakMemory(torch.device("cpu")) as before:
        pass
    torch.ones(2**26)  # 256 MB, freed at once and kept
    with PeakMemory(torch.device("cpu")) as after:
        pass
    assert after.rss_mb - before.rss_mb < 100
