"""The nbval plugin of tests/nbval_numbers.py: float noise passes, a real change of a number fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.nbval_numbers import numbers_close


@pytest.mark.parametrize(("ref", "test", "close"), [
    ("AUROC 70.15 (ours)", "AUROC 70.15 (ours)", True),
    ("AUROC 70.15 (ours)", "AUROC 70.14 (ours)", True),     # rounding of another CPU
    ("AUROC 70.15 (ours)", "AUROC 70.13 (ours)", False),    # a real change
    ("AUROC 70.15 (ours)", "AUROC 70.15 (theirs)", False),  # text is exact
    ("holds here", "does not hold here", False),
    ("accuracy  9.99 |", "accuracy 10.00 |", True),         # a column realigned
    ("n = 97", "n = 98", False),                             # integers are exact
    ("p = 1.5e-05", "p = 1.6e-05", True),
    ("p = 1.5e-05", "p = 1.8e-05", False),
    ("resnet20: 0.5", "resnet56: 0.5", False),               # digits inside names are text
    ("a 1.0 b", "a 1.0 b 2.0", False),
])
def test_numbers_close(ref, test, close):
    assert numbers_close(ref, test) is close


def _notebook(path, printed: str) -> None:
    """A notebook whose cell computes an AUROC and whose stored output says ``printed``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(
        "from sklearn.metrics import roc_auc_score\n"
        "scores = [0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.9, 0.55]\n"
        "labels = [0, 0, 1, 1, 1, 0, 1, 0]\n"
        "print(f'AUROC {100 * roc_auc_score(labels, scores):.2f}')")
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed + "\n")]
    nb.cells = [cell]
    nbformat.write(nb, path)


@pytest.mark.parametrize(("printed", "passes"), [
    pytest.param("AUROC 87.50", True, id="identical"),
    pytest.param("AUROC 87.51", True, id="last-digit-noise"),
    pytest.param("AUROC 75.00", False, id="perturbed-score"),  # the 0.35 positive moved to 0.05
    pytest.param("AUROC: 87.50", False, id="changed-text"),
])
def test_nbval_with_the_plugin_fails_on_real_changes_only(tmp_path, printed, passes):
    path = tmp_path / "nb.ipynb"
    _notebook(path, printed)
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.nbval_numbers", "--nbval",
                          "-p", "no:cacheprovider", str(path)], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent)
    assert (res.returncode == 0) is passes, res.stdout[-2000:]
