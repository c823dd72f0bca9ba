"""The import rules and module sizes that ARCHITECTURE.md states, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xai_utils"
MAX_LINES = 400
#: Modules that may draw figures: the book's one style, and each chapter's plots.
PLOTTING = ("figures.py", "experiments/*/plots.py", "experiments/methods.py")
#: Subpackages each subpackage must not import (the layering of ARCHITECTURE.md).
FORBIDDEN = {
    "metrics": ("data", "models", "attribution", "ood", "report", "experiments", "run", "params", "bench"),
    "data": ("models", "attribution", "ood", "report", "experiments"),
    "attribution": ("ood", "data", "report", "experiments"),
    "models": ("attribution", "ood", "report", "experiments"),
    "ood": ("report", "experiments", "data"),
}


def _name(path: Path, root: Path) -> list[str]:
    parts = ["xai_utils", *path.relative_to(root).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path, root: Path) -> list[tuple[list[str], str, str | None, int]]:
    """(absolute module as parts, imported name, alias, line) for every imported name of ``path``."""
    package = _name(path, root) if path.name == "__init__.py" else _name(path, root)[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            out += [(module, a.name, a.asname, node.lineno) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name.split("."), "", a.asname, node.lineno) for a in node.names]
    return out


def problems(path: Path, root: Path = PACKAGE) -> list[str]:
    """Every rule ``path`` breaks, one line each."""
    here = _name(path, root)
    where = str(path.relative_to(root))
    out = []
    lines = len(path.read_text().splitlines())
    if lines > MAX_LINES:
        out.append(f"{where} has {lines} lines (at most ~{MAX_LINES}): split it by concern")
    for module, name, alias, line in _imports(path, root):
        if module[0] in ("matplotlib", "seaborn") and not any(path.relative_to(root).match(p) for p in PLOTTING):
            out.append(f"{where}:{line}: plotting outside {PLOTTING}")
        if module[0] != "xai_utils":
            continue
        target = module[1] if len(module) > 1 else name  # `from .. import ood` imports the subpackage ood
        if len(here) > 1 and target in FORBIDDEN.get(here[1], ()):
            out.append(f"{where}:{line}: {here[1]} must not import {target}")
        if module[:2] != here[:2] and (name.startswith("_") or (alias or "").startswith("_")):
            out.append(f"{where}:{line}: private name or alias across subpackages ({name} as {alias})")
    return out


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_keeps_the_rules(path):
    assert not problems(path)


def test_each_rule_can_fail(tmp_path):
    (tmp_path / "metrics").mkdir()
    bad = tmp_path / "metrics" / "bad.py"
    bad.write_text("import seaborn\nfrom ..models import train as _train\nfrom .. import ood\n"
                   + "x = 1\n" * MAX_LINES)
    found = "\n".join(problems(bad, tmp_path))
    for rule in ("lines", "plotting outside", "metrics must not import models", "private name or alias",
                 "metrics must not import ood"):
        assert rule in found, (rule, found)
