"""Execute the book's notebooks with papermill: ``python -m xai_utils.run <paper|all> --preset offline``.

Parameters are resolved and validated by :mod:`xai_utils.params` before any cell runs.  The executed notebook is written to a temporary file and renamed
over ``book/<paper>.ipynb`` (``book/<preset>/<paper>.ipynb`` for presets other than offline) only
when every cell succeeded, so a failing run never destroys the previous result.  The run's results JSON
(:func:`xai_utils.report.finish`) goes to ``book/results/`` for the book's own notebooks and beside the
output for ``--out``.  Writing into ``book/`` needs a clean tree (``--allow-dirty`` overrides), so the
committed notebooks name the commit that made them.  SIGINT and SIGTERM stop the kernel and the run,
leaving the previous output and no partial files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from papermill.exceptions import PapermillExecutionError

from . import config
from .cache import umask
from .config import BOOK_DIR, REPO_ROOT
from .params import (
    LAST,
    PRESETS,
    ParameterError,
    defaults,
    notebook_path,
    notebooks,
    parse_overrides,
    presets,
    resolve,
)


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


def injected(paper: str, params: dict[str, Any]) -> dict[str, Any]:
    """The resolved parameters that differ from the notebook's ``parameters`` cell: what the run injects."""
    default = defaults(paper)
    return {k: v for k, v in params.items() if k not in default or v != default[k]}


def present(nb: Any, params: dict[str, Any]) -> Any:
    """The notebook as the book shows it: every code cell's source folded (``hide-input``: results and prose
    visible, code one click away) and, after the ``parameters`` cell, papermill's ``injected-parameters``
    cell holding only ``params`` (nothing is injected when the run keeps every default).

    The tags are set here, not in ``notebooks/``, so the sources stay plain scripts.  The cell is injected
    here rather than by ``papermill.execute_notebook(parameters=...)``, whose own parameter inference
    warns about every line with a rule comment (``# >= 0``); the values were validated by :func:`resolve`.
    """
    from papermill.parameterize import parameterize_notebook

    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata.setdefault("papermill", {})
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if cell.cell_type == "code" and "hide-input" not in tags:
            tags.append("hide-input")
    return parameterize_notebook(nb, params, kernel_name="python3", language="python") if params else nb


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
    nb = present(jupytext.read(notebook_path(paper)), injected(paper, params))
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
            papermill.execute_notebook(str(source), partial, kernel_name="python3",
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


def _hint(err: PapermillExecutionError, preset: str) -> str:
    """What a failure means for a preset: the library names missing paths, the runner says who expected them."""
    if err.ename in ("FileNotFoundError", "IsADirectoryError") and preset != "offline":
        return (f"\n  preset {preset!r} reads data and checkpoints under {config.data_root()} "
                f"(parameter data_root or ${config.DATA_ROOT_ENV}); data/README.md gives the expected layout")
    return ""


def overrides_for(paper: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The ``-p`` overrides a notebook gets in a run of ``all``: every one for a chapter (an unknown name is an
    error there), only those it declares for the summaries run last (the overview), so that
    ``all -p engine=ray`` runs; a notebook run by name gets every override."""
    if paper not in LAST:
        return overrides
    own = defaults(paper)
    return {k: v for k, v in overrides.items() if k in own}


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
        own = {n: overrides_for(n, overrides) if args.paper == "all" else overrides for n in names}
        for name in names:  # validate every notebook and output before running any
            resolve(name, args.preset, own[name])
            check_output(args.out.absolute() if args.out else output_path(name, args.preset),
                         allow_dirty=args.allow_dirty)
        for name in names:
            start = time.perf_counter()
            print(f"== {name} ({args.preset})", flush=True)
            path = execute(name, args.preset, own[name], args.out, allow_dirty=args.allow_dirty)
            print(f"== {name}: wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path} "
                  f"in {time.perf_counter() - start:.0f} s", flush=True)
    except ParameterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PapermillExecutionError as err:  # the traceback is in the failed notebook; name the cause here
        print(f"error: {name} ({args.preset}): {err.ename}: {err.evalue}{_hint(err, args.preset)}", file=sys.stderr)
        return 1
    except Interrupted as err:
        print(f"error: {err}; outputs written so far are kept, the current one is unchanged", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
