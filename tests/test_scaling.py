"""The scale-out page's measurements (xai_utils.bench.scaling) and the chapters' workloads behind them."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest
import torch

from xai_utils import config, models, parallel, params
from xai_utils.bench import scaling
from xai_utils.experiments import workloads


def test_every_full_workload_binds_its_chunk_function_on_each_model():
    found = workloads.workloads("full")
    assert {w.chapter for w in found} == set(workloads.CHAPTERS)
    for w in found:
        for arch, side, classes in w.models:
            assert arch in models.ARCHITECTURES and side >= 32 and classes >= 2, (w.label, arch)
        model = models.build("small_resnet", w.models[0][2], width=4)
        chunk = parallel.Chunk(0, 0, 1, torch.zeros(1, 3, 8, 8))
        inspect.signature(w.fn).bind(chunk, **w.shared(model, w.models[0][1]))  # raises on a wrong keyword


def test_passes_are_counted_on_the_chapters_own_chunk_function():
    """hermitry's LIME: one prediction plus n_samples evaluations per image, no backward pass."""
    p = params.resolve("hermitry", "full")
    lime = next(w for w in workloads.workloads("full", ("hermitry",)) if w.label.startswith("LIME"))
    got = scaling.count_passes(lime, "resnet50", 48, 1000, 1)  # <= 64 px: counted on the real architecture
    assert (got["forward"], got["backward"]) == (p["n_samples"] + 1, 0)
    assert got["counted_on"] == "resnet50"
    assert scaling.count_passes(lime, "resnet50", 96, 1000, 1)["counted_on"] == "small_resnet (stand-in)"


def test_pass_time_is_per_image_and_backward_costs_more():
    t = scaling.pass_time("small_resnet", 32, 10, torch.device("cpu"), batch=4)
    assert 0 < t["forward_ms"] < t["backward_ms"]


def _table(equal: bool) -> pd.DataFrame:
    rows = [{"kind": "machine", "workload": "cpu", "images": "Test CPU"},
            {"kind": "machine", "workload": "gpu", "images": "none"}]
    for engine, workers, seconds in (("local", 1, 10.0), ("ray", 1, 11.0), ("ray", 2, 6.0)):
        rows.append({"kind": "speedup", "engine": engine, "workers": workers, "seconds": seconds, "images": 64,
                     "chunk": 8, "images_per_s": 64 / seconds, "speedup": 11.0 / seconds,
                     "equal": equal or engine == "local"})
    rows.append({"kind": "projection", "chapter": "salagg", "workload": "OOD scores", "model": "openood_resnet18_32x32",
                 "side": 32, "classes": 10, "forward": 11.0, "backward": 3.0, "counted_on": "openood_resnet18_32x32",
                 "forward_ms": 8.0, "backward_ms": 26.0, "seconds_per_image": 0.142, "hours_per_10k": 0.394,
                 "images": "ID and OOD images"})
    return pd.DataFrame(rows)


def test_page_renders_every_table_and_flags_unequal_maps(tmp_path):
    text = scaling.render([_table(equal=True)])
    assert "$" not in text.replace("$(", "")  # every placeholder filled
    assert "### CPU: Test CPU" in text and "| ray | 2 | 64 | 8 | 6.00 | 10.7 | 1.83 | yes |" in text
    assert "openood_resnet18_32x32 @ 32 px, 10 classes | 11.0 | 3.00 | real |" in text
    assert "**no**" in scaling.render([_table(equal=False)])


def test_committed_page_is_rendered_from_the_committed_csv():
    csv = config.RESULTS_DIR / "scaling_cpu.csv"
    assert scaling.PAGE.read_text() == scaling.render([pd.read_csv(csv)]), "run make scaling (or --write-page)"


def test_write_page_names_the_missing_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="--scaling"):
        scaling.write_page()
