"""Performance bench: ``python -m xai_utils.bench [--quick] [--runs N] [--device auto] [--out CSV] [--write-page]
[--scaling]``.

Measures and writes ``book/results/bench_<device>.csv`` (``_quick`` with ``--quick``), then prints
the methods' and scores' rows; ``--runs N`` runs it N times, each in its own process, into one CSV whose
page shows medians and ranges; ``--write-page`` only renders every ``bench_*.csv`` into
``book/performance.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .. import config
from . import runs, scaling
from .page import PAGE, PAGE_NOTES, markdown_table, write_page
from .sections import run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench (or, with ``--write-page``, only render the page); return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m xai_utils.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run (a few minutes)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", default=None, help="CSV path (default book/results/bench_<device>.csv)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--runs", type=int, default=1,
                        help="independent runs, one after the other, each in its own process (default 1)")
    parser.add_argument(
        "--write-page",
        action="store_true",
        help="only render book/results/bench_*.csv into book/performance.md (no measuring)",
    )
    parser.add_argument("--scaling", action="store_true",
                        help="the scale-out measurements (book/results/scaling_<device>.csv); with --write-page "
                             "only render book/scaling.md")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    if args.scaling:
        if not args.write_page:
            table = scaling.run(quick=args.quick, device=args.device)
            print(scaling.render([table]))
        else:
            scaling.write_page()
            print(f"wrote {scaling.PAGE}")
        return 0
    if args.write_page:
        write_page(notes=PAGE_NOTES)
        print(f"wrote {PAGE}")
        return 0
    dev = config.resolve_device(args.device)
    out = (
        Path(args.out)
        if args.out
        else config.RESULTS_DIR / f"bench_{dev.type}{'_quick' if args.quick else ''}.csv"
    )
    if args.runs != 1:
        passed = ["--device", args.device, "--threads", str(args.threads), *(["--quick"] if args.quick else [])]
        table = runs.summarize(runs.run_many(args.runs, out, passed))
    else:
        table = run(quick=args.quick, device=args.device, out=out, threads=args.threads)
    print(
        markdown_table(
            table[table.section.isin(["gradient", "perturbation", "ood"])][
                [
                    "section",
                    "name",
                    "config",
                    "ms_per_image",
                    "floor_ms_per_image",
                    "ratio",
                    "speedup",
                    "max_rel_diff",
                ]
            ]
        )
    )
    print(f"wrote {out}")
    return 0
