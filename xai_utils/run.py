"""Execute the book's notebooks with papermill: ``python -m xai_utils.run <paper|all> --preset offline``.

Each notebook is a jupytext percent-format file ``notebooks/<paper>.py`` with one cell tagged
``parameters``.  Its parameters are, in order of precedence: ``-p key=value`` overrides, then
``notebooks/params/<paper>.<preset>.yaml``, then the defaults in the ``parameters`` cell.  Names and
types are validated against those defaults *before* any cell runs (papermill itself only warns on an
unknown name and injects it anyway).  The executed notebook is written to a temporary file and renamed
over ``book/<paper>.ipynb`` (``book/<preset>/<paper>.ipynb`` for presets other than offline) only
when every cell succeeded, so a failing run never destroys the previous result.  The run's results JSON
(:func:`xai_utils.report.finish`) goes to ``book/results/`` for the book's own notebooks and beside the
output for ``--out``.  Writing into ``book/`` needs a clean tree (``--allow-dirty`` overrides), so the
committed notebooks name the commit that made them.  SIGINT and SIGTERM stop the kernel and the run,
leaving the previous output and no partial files.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from . import config
from .cache import umask
from .config import BOOK_DIR, REPO_ROOT

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
    for key, value in params.items():
        for rule in rules.get(key, []):
            if value is not None:
                _check_rule(paper, key, value, rule)
    if params.get("data_root"):  # relative to the caller, not to the kernel's folder
        params["data_root"] = str(Path(params["data_root"]).expanduser().resolve())
    return params


def output_path(paper: str, preset: str) -> Path:
    return BOOK_DIR / f"{paper}.ipynb" if preset == "offline" else BOOK_DIR / preset / f"{paper}.ipynb"


def check_output(out: Path, *, allow_dirty: bool = False) -> None:
    """Refuse an output that cannot be written, and ``book/`` outputs from a tree with uncommitted changes."""
    if out.is_dir():
        raise ParameterError(f"--out {out} is a directory; name the notebook file, e.g. {out / 'x.ipynb'}")
    if out.suffix != ".ipynb":
        raise ParameterError(f"--out {out}: the output must be a .ipynb file")
    folder = next((p for p in (out.parent, *out.parent.parents) if p.exists()), Path("/"))
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ParameterError(f"cannot write {out}: {folder} is not a writable folder")
    if out.resolve().is_relative_to(BOOK_DIR.resolve()) and not allow_dirty:
        dirty = config.git_dirty()
        if dirty:
            raise ParameterError(f"the tree has uncommitted changes ({', '.join(dirty[:5])}"
                                 f"{', ...' if len(dirty) > 5 else ''}): commit them so that {out.name}'s "
                                 "provenance names the code that made it, or pass --allow-dirty")


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived during a run."""


def _interrupt(signum: int, _frame: Any) -> None:
    raise Interrupted(f"stopped by {signal.Signals(signum).name}")


def execute(paper: str, preset: str = "offline", overrides: dict[str, Any] | None = None,
            out: Path | None = None, *, progress: bool = True, allow_dirty: bool = False) -> Path:
    """Validate, convert the jupytext source, execute with papermill, and atomically replace ``out``.

    The kernel gets ``XAI_RESULTS_DIR`` (``book/results`` for the book's notebooks, else ``out``'s folder)
    and an absolute ``XAI_DATA_ROOT``.  On any failure or signal, ``out`` is unchanged, the partial
    notebook is kept under a unique name in the temp folder (its path is printed) and nothing is
    left beside ``out``.
    """
    import jupytext
    import papermill

    from .report import RESULTS_ENV

    params = resolve(paper, preset, overrides)
    default_out = output_path(paper, preset)
    out = Path(out).expanduser().absolute() if out else default_out
    check_output(out, allow_dirty=allow_dirty)
    out.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(notebook_path(paper))
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    env = {RESULTS_ENV: str(config.RESULTS_DIR if out == default_out else out.parent),
           config.DATA_ROOT_ENV: str(config.data_root())}
    saved = {k: os.environ.get(k) for k in env}
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    partial = None
    try:
        for sig in handlers:
            signal.signal(sig, _interrupt)
        os.environ.update(env)  # the kernel inherits the runner's environment
        with tempfile.TemporaryDirectory(prefix=f"xai-run-{paper}-") as tmp:
            source = Path(tmp) / f"{paper}.ipynb"
            jupytext.write(nb, source)
            fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".ipynb")
            os.close(fd)
            papermill.execute_notebook(str(source), partial, parameters=params, kernel_name="python3",
                                       progress_bar=progress, cwd=str(out.parent))
            os.chmod(partial, 0o666 & ~umask())
            os.replace(partial, out)
            partial = None
    except BaseException:
        if partial and Path(partial).exists():
            fd, failed = tempfile.mkstemp(prefix=f"{paper}.{preset}.", suffix=".failed.ipynb")
            os.close(fd)
            shutil.move(partial, failed)
            print(f"{paper}: execution failed or was stopped; {out} is unchanged, the failed notebook is "
                  f"{failed}", file=sys.stderr)
        raise
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xai_utils.run", description=__doc__.split("\n")[0])
    parser.add_argument("paper", help="notebook name (notebooks/<paper>.py) or 'all'")
    parser.add_argument("--preset", default="offline", help=f"one of {', '.join(PRESETS)} (default offline)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter (value read as YAML); repeatable")
    parser.add_argument("--out", type=Path, help="output notebook (single paper only)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="write into book/ although tracked files have uncommitted changes")
    args = parser.parse_args(argv)
    names = notebooks() if args.paper == "all" else [args.paper]
    if args.out and len(names) != 1:
        parser.error("--out needs a single paper")
    try:
        if args.preset not in PRESETS:
            raise ParameterError(f"unknown preset {args.preset!r}; presets are {', '.join(PRESETS)}")
        overrides = parse_overrides(args.param)
        if args.paper == "all":
            names = [n for n in names if args.preset in presets(n)]
        for name in names:  # validate every notebook and output before running any
            resolve(name, args.preset, overrides)
            check_output(args.out.absolute() if args.out else output_path(name, args.preset),
                         allow_dirty=args.allow_dirty)
        for name in names:
            start = time.perf_counter()
            print(f"== {name} ({args.preset})", flush=True)
            path = execute(name, args.preset, overrides, args.out, allow_dirty=args.allow_dirty)
            print(f"== {name}: wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path} "
                  f"in {time.perf_counter() - start:.0f} s", flush=True)
    except ParameterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Interrupted as err:
        print(f"error: {err}; outputs written so far are kept, the current one is unchanged", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
