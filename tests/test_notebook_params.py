"""One default per parameter, and every parameter used: the notebooks' parameters cells against their code
and their preset files (issue 14: a `chunk_size` that reached no code went unnoticed)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect

import jupytext
import pytest
import yaml

from xai_utils import params


def _loaded_names(paper: str) -> set[str]:
    """Names the notebook's code cells (all but the parameters cell) read."""
    nb = jupytext.read(params.notebook_path(paper))
    code = [c.source for c in nb.cells
            if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    lines = [ln for src in code for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    tree = ast.parse("\n".join(lines))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


#: Read by ``report.start(paper, globals())`` / ``report.finish()`` (provenance, the results file's name).
READ_BY_REPORT = {"preset"}


@pytest.mark.parametrize("paper", params.notebooks())
def test_every_parameter_reaches_the_code(paper):
    unused = sorted(set(params.defaults(paper)) - _loaded_names(paper) - READ_BY_REPORT)
    assert not unused, f"{paper}: parameters that no code cell reads: {unused}"


@pytest.mark.parametrize("path", sorted(params.PARAMS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_sets_only_declared_parameters(path):
    paper, preset = path.name.split(".")[:2]
    assert preset in params.PRESETS, f"{path.name}: unknown preset {preset!r}"
    declared = params.defaults(paper)
    unknown = sorted(set(yaml.safe_load(path.read_text()) or {}) - set(declared))
    assert not unknown, f"{path.name}: sets {unknown}, which notebooks/{paper}.py does not declare"
    params.resolve(paper, preset)  # types and value rules too


def test_a_parameter_no_cell_reads_is_caught(tmp_path, monkeypatch):
    (tmp_path / "toy.py").write_text('# %% tags=["parameters"]\nn = 1\nunused = 2\n\n# %%\nprint(n)\n')
    monkeypatch.setattr(params, "NOTEBOOK_DIR", tmp_path)
    assert "unused" not in _loaded_names("toy") and "n" in _loaded_names("toy")


def _chapter_functions(paper: str):
    module = importlib.import_module(f"xai_utils.experiments.{paper}")
    for name in sorted(dir(module)):
        fn = getattr(module, name)
        if name.startswith("_") or not inspect.isfunction(fn) or not fn.__module__.startswith(module.__name__):
            continue
        yield name, inspect.signature(fn)


@pytest.mark.parametrize("paper", [p for p in params.notebooks()
                                   if importlib.util.find_spec(f"xai_utils.experiments.{p}") is not None])
def test_chapter_functions_repeat_no_default(paper):
    """A chapter function that takes a notebook parameter takes it without a default: the parameters cell is
    the one place a default is written (a second default drifts, as LIME's 100 samples did in 5 places)."""
    declared = set(params.defaults(paper))
    repeated = {name: [p.name for p in sig.parameters.values()
                       if p.name in declared and p.default is not inspect.Parameter.empty]
                for name, sig in _chapter_functions(paper)}
    repeated = {k: v for k, v in repeated.items() if v}
    assert not repeated, f"{paper}: defaults that repeat the parameters cell: {repeated}"
