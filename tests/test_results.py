"""Results regression: every chapter's recomputed ``book/results/<paper>.json`` against the committed one.

``make test`` executes the book's notebooks under nbval with ``XAI_RESULTS_DIR`` set to a scratch
folder and then runs this file with ``XAI_FRESH_RESULTS`` naming that folder.  Each committed number
must come back within the tolerance of its kind (``xai_utils.report.TOLERANCES``) and each claim with
the same verdict; a failure names the number or claim, the committed and the new value.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from xai_utils import config, report

COMMITTED = sorted(config.RESULTS_DIR.glob("*.json"))
FRESH = os.environ.get("XAI_FRESH_RESULTS")


@pytest.mark.skipif(not FRESH, reason="set XAI_FRESH_RESULTS to the folder of a fresh run (make test does)")
@pytest.mark.parametrize("committed", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_recomputed_results_match_the_committed_ones(committed):
    fresh = Path(FRESH) / committed.name
    if not fresh.exists():
        if ".real" in committed.name and not config.data_root().exists():
            pytest.skip(f"{committed.name}: real data folder {config.data_root()} absent, not recomputed")
        pytest.fail(f"{committed.name} was not recomputed: no {fresh} (did its notebook run under nbval?)")
    problems = report.results_diff(json.loads(committed.read_text()), json.loads(fresh.read_text()))
    assert not problems, f"{committed.name}:\n  " + "\n  ".join(problems)


def test_committed_results_declare_a_known_kind_for_every_number():
    assert COMMITTED
    for path in COMMITTED:
        for name, entry in json.loads(path.read_text())["numbers"].items():
            assert entry["kind"] in report.TOLERANCES, f"{path.name}: {name}"


DOC = {"numbers": {"auroc": {"value": 70.0, "kind": "auroc%"}, "n": {"value": 3.0, "kind": "count"}},
       "claims": [{"key": "a_beats_b", "claim": "A beats B", "verdict": "holds", "ours": "70.0"}]}


def _changed(path: str, value):
    doc = copy.deepcopy(DOC)
    *keys, last = path.split("/")
    target = doc
    for k in keys:
        target = target[int(k)] if isinstance(target, list) else target[k]
    target[last] = value
    return doc


@pytest.mark.parametrize(("fresh", "message"), [
    pytest.param(_changed("numbers/auroc/value", 70.4), None, id="within-tolerance"),
    pytest.param(_changed("numbers/auroc/value", 70.6), r"'auroc' \(auroc%, tolerance 0.5\): committed 70.0, now 70.6",
                 id="auroc-moved"),
    pytest.param(_changed("numbers/n/value", 4.0), "'n' .*committed 3.0, now 4.0", id="count-changed"),
    pytest.param(_changed("numbers/auroc/value", float("nan")), "'auroc'.*now nan", id="nan"),
    pytest.param(_changed("claims/0/verdict", "does not hold"), "'a_beats_b': verdict changed from 'holds'",
                 id="verdict-flipped"),
    pytest.param({"numbers": {}, "claims": []}, "not recomputed", id="missing"),
])
def test_results_diff_names_what_changed(fresh, message):
    problems = report.results_diff(DOC, fresh)
    if message is None:
        assert problems == []
    else:
        assert any(re.search(message, p) for p in problems), problems
