"""pytest plugin: nbval compares printed numbers to the precision they are printed at.

Loaded by ``make test`` (``-p tests.nbval_numbers``).  nbval compares text outputs character by
character; another CPU's float rounding can move a number printed as ``70.15`` to ``70.14``.  Here an
output still matches when its text, with every number replaced by a placeholder and runs of spaces
collapsed (table columns realign when a width changes), is identical, and every number differs by at
most one unit in its last printed digit (``70.15`` vs ``70.14`` matches; ``70.15`` vs ``70.13`` does
not; integers must be equal).  Everything else (words, verdicts, table structure, number of outputs)
is compared exactly by nbval itself.  ``tests/test_nbval_numbers.py`` shows it fails on a real change.
"""

from __future__ import annotations

import re
from typing import Any

from nbformat import NotebookNode
from nbval.plugin import IPyNbCell

#: A number not glued to a word (``resnet20``, ``fig1``, ``0xADDRESS`` are text, not numbers).
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.(?P<frac>\d+))?(?:[eE](?P<exp>[-+]?\d+))?(?![\w])")
SPACES = re.compile(r"[ \t]+")


def _ulp(token: re.Match[str]) -> float:
    """One unit in the last printed digit of a number."""
    decimals = len(token.group("frac") or "")
    return 10.0 ** (int(token.group("exp") or 0) - decimals)


def numbers_close(ref: str, test: str) -> bool:
    """Same text apart from numbers, and each number within one unit of its last printed digit."""
    if ref == test:
        return True
    if SPACES.sub(" ", NUMBER.sub("#", ref)) != SPACES.sub(" ", NUMBER.sub("#", test)):
        return False
    for a, b in zip(NUMBER.finditer(ref), NUMBER.finditer(test), strict=True):
        if a.group() == b.group():
            continue
        if abs(float(a.group()) - float(b.group())) > 1.0001 * max(_ulp(a), _ulp(b)):
            return False
        if not (a.group("frac") or b.group("frac") or a.group("exp") or b.group("exp")):
            return False  # integers (counts) are exact
    return True


def _values(output: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in output.items() if k not in ("data", "metadata", "execution_count")}
    values.update({f"data:{k}": v for k, v in output.get("data", {}).items()})
    return values


def align_numbers(cell: IPyNbCell, ref: list, test: list) -> list:
    """``ref`` with each text that matches its counterpart in ``test`` (:func:`numbers_close`, after
    nbval's sanitizing) replaced by that counterpart; the rest is left for nbval to report."""
    if len(ref) != len(test):
        return ref
    out = []
    for r, t in zip(ref, test, strict=True):
        r = NotebookNode({**r, "data": NotebookNode(r["data"])} if "data" in r else r)
        tv = _values(t)
        for key, value in _values(r).items():
            other = tv.get(key)
            if isinstance(value, str) and isinstance(other, str) \
                    and numbers_close(cell.sanitize(value), cell.sanitize(other)):
                if key.startswith("data:"):
                    r["data"] = {**r["data"], key[5:]: other}
                else:
                    r[key] = other
        out.append(r)
    return out


_compare_outputs = IPyNbCell.compare_outputs


def compare_outputs(self: IPyNbCell, test: list, ref: list, skip_compare: Any = None) -> bool:
    """nbval's comparison, after :func:`align_numbers` (both lists hold coalesced streams already)."""
    return _compare_outputs(self, test, align_numbers(self, ref, test), skip_compare)


def pytest_configure(config: Any) -> None:
    IPyNbCell.compare_outputs = compare_outputs
