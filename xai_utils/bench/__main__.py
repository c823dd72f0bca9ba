"""``python -m xai_utils.bench``: see :mod:`xai_utils.bench.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
