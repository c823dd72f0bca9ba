"""What a notebook accepts: its parameters, their defaults, value rules and presets.

Each notebook is a jupytext percent-format file ``notebooks/<paper>.py`` with one cell tagged
``parameters``.  Its parameters are, in order of precedence: ``-p key=value`` overrides, then
``notebooks/params/<paper>.<preset>.yaml``, then the defaults in the ``parameters`` cell.  Names, types
and the value rules declared beside the defaults are validated here *before* any cell runs (papermill
itself only warns on an unknown name and injects it anyway).  Both the runner (:mod:`xai_utils.run`)
and the chapters' provenance (:mod:`xai_utils.report`) read notebooks through this module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import yaml

from . import config
from .config import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = NOTEBOOK_DIR / "params"
PRESETS = ("offline", "smoke", "full", "real")
LAST = ("overview",)  # executed after the chapters whose results they summarise


class ParameterError(ValueError):
    """A parameter name, value, type or preset that the notebook does not accept."""


def notebooks() -> list[str]:
    """Names of the runnable notebooks (``notebooks/*.py``), chapters first and the overview last."""
    names = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.py"))
    return [n for n in names if n not in LAST] + [n for n in LAST if n in names]


def notebook_path(paper: str) -> Path:
    path = NOTEBOOK_DIR / f"{paper}.py"
    if not path.exists():
        raise ParameterError(f"no notebook {path}; known notebooks: {', '.join(notebooks())}")
    return path


def defaults(paper: str) -> dict[str, Any]:
    """The literal assignments of the notebook's ``parameters`` cell, evaluated without running it."""
    import jupytext

    nb = jupytext.read(notebook_path(paper))
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{paper}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    out: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParameterError(f"{paper}: the parameters cell may only hold `name = literal` lines")
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def constraints(paper: str) -> dict[str, list[str]]:
    """Value rules declared beside the parameters, as trailing comments of the ``parameters`` cell.

    ``n = 100  # >= 1`` (also ``>``, ``<=``, ``<``); ``names = ["a"]  # one of: a, b, c``;
    ``scores = ["mls"]  # names in xai_utils.ood.SCORES`` (the keys of a registry, imported, so the list
    has one source); several rules are joined with ``;``.  A list's rules apply to each element.
    """
    import io
    import tokenize

    import jupytext

    nb = jupytext.read(notebook_path(paper))
    source = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    out: dict[str, list[str]] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        target = re.match(r"\s*(\w+)\s*=", tok.line)
        if tok.type == tokenize.COMMENT and target:
            out[target.group(1)] = [r.strip() for r in tok.string.lstrip("#").split(";") if r.strip()]
    return out


def _check_rule(paper: str, name: str, value: Any, rule: str) -> None:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    where = f"{paper}: parameter {name!r}"
    if m := re.fullmatch(r"(>=|>|<=|<)\s*(-?[\d.]+)", rule):
        op, bound = m.group(1), float(m.group(2))
        ok = {">=": float.__ge__, ">": float.__gt__, "<=": float.__le__, "<": float.__lt__}[op]
        bad = [v for v in values if not ok(float(v), bound)]
        if bad:
            raise ParameterError(f"{where} must be {op} {m.group(2)}, got {value!r}")
    elif m := re.fullmatch(r"one of:\s*(.+)", rule):
        allowed = [a.strip() for a in m.group(1).split(",")]
        bad = [v for v in values if str(v) not in allowed]
        if bad:
            raise ParameterError(f"{where}: {bad} not allowed; choose from {', '.join(allowed)}")
    elif m := re.fullmatch(r"names in ([\w.]+)\.(\w+)", rule):
        import importlib

        allowed = list(getattr(importlib.import_module(m.group(1)), m.group(2)))
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ParameterError(f"{where}: unknown {bad}; known: {', '.join(map(str, allowed))}")
    else:
        raise ParameterError(f"{paper}: parameter {name!r} declares an unknown rule {rule!r}")


def presets(paper: str) -> list[str]:
    """Presets that have a ``params/<paper>.<preset>.yaml`` file (``offline`` always exists)."""
    found = {p.name.split(".")[1] for p in PARAMS_DIR.glob(f"{paper}.*.yaml")}
    return sorted(found | {"offline"})


def _type_ok(default: Any, value: Any) -> bool:
    """``value`` has the type of ``default``; None only where the default is None; list elements
    have the type of the default's elements (an empty default list accepts any list)."""
    if default is None:
        return True
    if value is None:
        return False
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple)) and (not default or all(_type_ok(default[0], v) for v in value))
    return isinstance(value, type(default))


def _check_device(value: Any) -> None:
    """``device`` must name a device this machine has (``"cuda"`` without a GPU fails here, not in the kernel)."""
    try:
        config.resolve_device(value)
    except ValueError as err:
        raise ParameterError(f"parameter 'device': {err}") from None


def _check_engine(params: dict[str, Any]) -> None:
    """``engine``, ``ray_address`` and ``ray_gpus_per_task`` must make an engine this machine can run
    (``engine="ray"`` without Ray installed fails here, not in the kernel)."""
    from . import parallel

    try:
        parallel.Engine(params["engine"], params.get("ray_address", ""), float(params.get("ray_gpus_per_task", 0)))
        if params["engine"] == "ray":
            parallel.ray_module()
    except ValueError as err:
        raise ParameterError(f"parameter 'engine': {err}") from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict, each value read as YAML (``n=3`` is an int, ``xs=[a, b]`` a list)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"-p expects key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def resolve(paper: str, preset: str = "offline", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validated parameters for one run: defaults <- preset file <- overrides."""
    if preset not in PRESETS:
        raise ParameterError(f"unknown preset {preset!r}; presets are {', '.join(PRESETS)}")
    params = defaults(paper)
    preset_file = PARAMS_DIR / f"{paper}.{preset}.yaml"
    if preset_file.exists():
        from_file = yaml.safe_load(preset_file.read_text()) or {}
        if not isinstance(from_file, dict):
            raise ParameterError(f"{preset_file} must hold a mapping of parameter names to values")
    elif preset == "offline":
        from_file = {}
    else:
        raise ParameterError(f"{paper} has no preset {preset!r} (no file {preset_file}); "
                             f"its presets: {', '.join(presets(paper))}")
    if "preset" in (overrides or {}):
        raise ParameterError(f"{paper}: set the preset with --preset {overrides['preset']}, not -p preset=...")
    for source, values in ((str(preset_file), from_file), ("-p", overrides or {}), ("preset", {"preset": preset})):
        for key, value in values.items():
            if key not in params:
                raise ParameterError(f"{paper}: unknown parameter {key!r} (from {source}); "
                                     f"known: {', '.join(sorted(params))}")
            if not _type_ok(params[key], value):
                raise ParameterError(f"{paper}: parameter {key!r} (from {source}) must be "
                                     f"{type(params[key]).__name__} like its default {params[key]!r}, "
                                     f"got {type(value).__name__} {value!r}")
            params[key] = value
    rules = constraints(paper)
    if "device" in params:
        _check_device(params["device"])
    if "engine" in params:
        _check_engine(params)
    for key, value in params.items():
        for rule in rules.get(key, []):
            if value is not None:
                _check_rule(paper, key, value, rule)
    if params.get("data_root"):  # relative to the caller, not to the kernel's folder
        params["data_root"] = str(Path(params["data_root"]).expanduser().resolve())
    return params
