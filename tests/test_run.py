"""The papermill runner: parameter validation happens before any cell runs; failures keep old outputs."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from xai_utils import params, run

NOTEBOOK = textwrap.dedent('''\
    # ---
    # jupyter:
    #   kernelspec:
    #     display_name: Python 3
    #     language: python
    #     name: python3
    # ---

    # %% tags=["parameters"]
    preset = "offline"
    n = 3  # >= 1
    scale = 0.5  # > 0; <= 1
    names = ["a", "b"]  # one of: a, b, c
    scores = ["mls"]  # names in xai_utils.ood.SCORES
    fail = False
    root = None

    # %%
    assert not fail, "asked to fail"
    print(n * scale)
    ''')


@pytest.fixture
def toy(tmp_path, monkeypatch):
    nb_dir = tmp_path / "notebooks"
    (nb_dir / "params").mkdir(parents=True)
    (nb_dir / "toy.py").write_text(NOTEBOOK)
    (nb_dir / "params" / "toy.smoke.yaml").write_text("n: 1\n")
    (nb_dir / "params" / "toy.real.yaml").write_text("nonsense: 1\n")
    monkeypatch.setattr(params, "NOTEBOOK_DIR", nb_dir)
    monkeypatch.setattr(params, "PARAMS_DIR", nb_dir / "params")
    return tmp_path


def test_defaults_are_read_without_running(toy):
    assert params.defaults("toy") == {"preset": "offline", "n": 3, "scale": 0.5, "names": ["a", "b"],
                                   "scores": ["mls"], "fail": False, "root": None}
    assert params.constraints("toy") == {"n": [">= 1"], "scale": ["> 0", "<= 1"], "names": ["one of: a, b, c"],
                                      "scores": ["names in xai_utils.ood.SCORES"]}


def test_preset_file_then_overrides(toy):
    got = params.resolve("toy", "smoke", {"scale": 1, "names": ["c"]})
    assert got["n"] == 1 and got["scale"] == 1 and got["names"] == ["c"] and got["preset"] == "smoke"


@pytest.mark.parametrize(("preset", "overrides", "message"), [
    ("offline", {"m": 1}, "unknown parameter 'm'"),
    ("offline", {"n": "three"}, "parameter 'n' .* must be int"),
    ("offline", {"n": 1.5}, "parameter 'n' .* must be int"),
    ("offline", {"fail": 1}, "parameter 'fail' .* must be bool"),
    ("offline", {"names": "a"}, "parameter 'names' .* must be list"),
    ("full", {}, "has no preset 'full'"),
    ("gpu", {}, "unknown preset 'gpu'"),
    ("real", {}, "unknown parameter 'nonsense' \\(from .*toy.real.yaml\\)"),
    pytest.param("offline", {"n": -5}, "parameter 'n' must be >= 1, got -5", id="13.6-range"),
    pytest.param("offline", {"scale": 2}, "parameter 'scale' must be <= 1, got 2", id="13.6-range-upper"),
    pytest.param("offline", {"names": ["a", "z"]}, r"\['z'\] not allowed; choose from a, b, c", id="13.6-choices"),
    pytest.param("offline", {"scores": ["mls", "nope"]}, r"unknown \['nope'\]; known: .*energy", id="13.6-registry"),
])
def test_bad_parameters_are_clear_errors(toy, preset, overrides, message):
    with pytest.raises(params.ParameterError, match=message):
        params.resolve("toy", preset, overrides)


def test_unknown_notebook_lists_known_ones(toy):
    with pytest.raises(params.ParameterError, match="known notebooks: toy"):
        params.defaults("nope")


def test_overrides_are_parsed_as_yaml():
    assert params.parse_overrides(["n=3", "x=0.5", "xs=[1, 2]", "s=cpu", "b=true"]) == {
        "n": 3, "x": 0.5, "xs": [1, 2], "s": "cpu", "b": True}
    with pytest.raises(params.ParameterError, match="key=value"):
        params.parse_overrides(["n"])


def test_cli_rejects_before_running(toy, capsys):
    assert run.main(["toy", "-p", "n=oops"]) == 2
    assert "must be int" in capsys.readouterr().err


def test_missing_real_data_names_the_preset_and_the_layout(toy, capsys):
    """The library names the missing path; the runner adds which preset expected it (no `preset` in library calls)."""
    (toy / "notebooks" / "params" / "toy.real.yaml").write_text("root: /nowhere/cifar\n")
    source = (toy / "notebooks" / "toy.py").read_text()
    (toy / "notebooks" / "toy.py").write_text(source.replace(
        'assert not fail, "asked to fail"', 'from xai_utils.data import image_folder\nif root: image_folder(root)'))
    assert run.main(["toy", "--preset", "real", "--out", str(toy / "o" / "toy.ipynb")]) == 1
    err = capsys.readouterr().err
    assert "FileNotFoundError: image folder /nowhere/cifar does not exist" in err
    assert "preset 'real' reads data and checkpoints under" in err and "data/README.md" in err


def test_execute_writes_atomically_and_keeps_old_output_on_failure(toy):
    out = toy / "book" / "toy.ipynb"
    old_mask = os.umask(0o022)
    try:
        run.execute("toy", "offline", {"n": 4}, out, progress=False)
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # the umask, not mkstemp's 0600 (13.14)
    first = json.loads(out.read_text())
    outputs = [o for c in first["cells"] for o in c.get("outputs", [])]
    assert any("2.0" in "".join(o.get("text", "")) for o in outputs)
    with pytest.raises(Exception, match="asked to fail"):
        run.execute("toy", "offline", {"fail": True}, out, progress=False)
    assert json.loads(out.read_text()) == first          # the previous result is untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["toy.ipynb"]  # no partial files left


def test_the_book_shows_code_folded_and_injects_only_what_differs(toy, caplog):
    """Issue 20: every code cell's source is folded by a runner-set tag (the source stays untagged), and the
    injected cell holds only the values that differ from the parameters cell, without papermill's
    "Passed unknown parameter" / "Unable to parse line" warnings about rule comments."""
    out = toy / "o" / "toy.ipynb"
    with caplog.at_level("WARNING"):
        run.execute("toy", "offline", {"n": 4, "scale": 0.5}, out, progress=False)
    assert not [r for r in caplog.records if "parameter" in r.getMessage() or "parse" in r.getMessage()]
    cells = json.loads(out.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert [c["metadata"]["tags"] for c in code] == [["parameters", "hide-input"], ["injected-parameters"],
                                                     ["hide-input"]]
    injected = "".join(code[1]["source"])
    assert "n = 4" in injected and "scale" not in injected and "names" not in injected
    assert "2.0" in "".join("".join(o.get("text", "")) for o in code[2]["outputs"])
    assert "hide-input" not in (toy / "notebooks" / "toy.py").read_text()
    run.execute("toy", "offline", {"n": 3}, out, progress=False)  # every default: nothing injected
    assert [c["metadata"]["tags"] for c in json.loads(out.read_text())["cells"]] == [["parameters", "hide-input"],
                                                                                   ["hide-input"]]


def test_plain_papermill_runs_the_paired_notebook(toy):
    """jupytext pairs the .py source with an .ipynb that plain papermill executes."""
    py = Path(sys.executable).parent
    src = toy / "notebooks" / "toy.py"
    subprocess.run([py / "jupytext", "--to", "ipynb", str(src)], check=True, capture_output=True)
    out = toy / "out.ipynb"
    subprocess.run([py / "papermill", str(src.with_suffix(".ipynb")), str(out), "-p", "n", "6"],
                   check=True, capture_output=True)
    text = out.read_text()
    assert '"3.0' in text or "3.0\\n" in text


# ------------------------------------------------------------------ bad input to the runner (issue 13)

@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["all", "--preset", "nope"], "unknown preset 'nope'", id="13.7-unknown-preset-all"),
    pytest.param(["toy", "-p", "preset=real"], "--preset real, not -p preset", id="13.7-preset-via-p"),
    pytest.param(["toy", "-p", "root=x", "-p", "n=null"], "parameter 'n' .* must be int", id="13.6-null"),
    pytest.param(["toy", "-p", "names=[1]"], "parameter 'names' .* must be list", id="13.6-list-elements"),
    pytest.param(["toy", "--out", "{tmp}"], "is a directory", id="13.7-out-directory"),
    pytest.param(["toy", "--out", "{tmp}/x.txt"], "must be a .ipynb", id="13.7-out-not-ipynb"),
    pytest.param(["toy", "--out", "{tmp}/a-file/x.ipynb"], "a-file is not a writable folder", id="13.7-out-unwritable"),
])
def test_runner_refuses_before_any_cell(toy, capsys, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    (tmp_path / "a-file").write_text("")
    assert run.main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not list(toy.rglob("*.ipynb"))  # nothing executed, nothing written


def test_device_is_checked_before_the_kernel_starts(toy, monkeypatch):
    monkeypatch.setattr(params, "defaults", lambda paper: {"preset": "offline", "device": "auto"})
    with pytest.raises(params.ParameterError, match="device.*not a torch device"):
        params.resolve("toy", "offline", {"device": "gpu0"})
    if not torch.cuda.is_available():
        with pytest.raises(params.ParameterError, match="CUDA is not available"):
            params.resolve("toy", "offline", {"device": "cuda"})


def test_relative_data_root_is_resolved_against_the_caller(toy, monkeypatch, tmp_path):
    monkeypatch.setattr(params, "defaults", lambda paper: {"preset": "offline", "data_root": ""})
    monkeypatch.chdir(tmp_path)
    assert params.resolve("toy", "offline", {"data_root": "data"})["data_root"] == str(tmp_path / "data")


def test_book_outputs_need_a_clean_tree(toy, monkeypatch):
    monkeypatch.setattr(run.config, "git_dirty", lambda: ["xai_utils/ood.py"])
    with pytest.raises(params.ParameterError, match=r"uncommitted changes \(xai_utils/ood.py\).*--allow-dirty"):
        run.check_output(run.BOOK_DIR / "toy.ipynb")
    run.check_output(run.BOOK_DIR / "toy.ipynb", allow_dirty=True)
    run.check_output(toy / "elsewhere" / "toy.ipynb")  # outside book/: no check


def test_the_kernel_gets_results_folder_and_absolute_data_root(toy, monkeypatch):
    """--out runs never touch book/results (XAI_RESULTS_DIR = the output's folder), and a relative
    XAI_DATA_ROOT means the caller's folder, not the kernel's (13.9)."""
    nb = (toy / "notebooks" / "toy.py").read_text()
    (toy / "notebooks" / "toy.py").write_text(
        nb + "\nimport os\nprint('results:', os.environ['XAI_RESULTS_DIR'])\nprint('data:', os.environ['XAI_DATA_ROOT'])\n")
    monkeypatch.chdir(toy)
    monkeypatch.setenv("XAI_DATA_ROOT", "mydata")
    out = toy / "scratch" / "toy.ipynb"
    run.execute("toy", "offline", {}, out, progress=False)
    text = out.read_text()
    assert f"results: {out.parent}" in text and f"data: {toy / 'mydata'}" in text


def test_failed_runs_keep_unique_copies_and_leave_nothing_beside_the_output(toy, capsys):
    out = toy / "o" / "toy.ipynb"
    for _ in range(2):
        with pytest.raises(Exception, match="asked to fail"):
            run.execute("toy", "offline", {"fail": True}, out, progress=False)
    paths = re.findall(r"the failed notebook is (\S+)", capsys.readouterr().err)
    assert len(set(paths)) == 2 and all(Path(p).exists() for p in paths)
    assert not out.parent.exists() or not list(out.parent.iterdir())
    for p in paths:
        Path(p).unlink()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["13.11-SIGINT", "13.11-SIGTERM"])
def test_a_signal_stops_the_run_and_keeps_the_old_output(toy, sig):
    """A signal to the runner alone stops the kernel; the output and its folder stay as they were."""
    (toy / "notebooks" / "slow.py").write_text(NOTEBOOK.replace('print(n * scale)', 'import time\ntime.sleep(60)'))
    out = toy / "o" / "slow.ipynb"
    out.parent.mkdir()
    out.write_text("old")
    code = (f"import sys; from pathlib import Path; from xai_utils import params, run; "
            f"params.NOTEBOOK_DIR = Path({str(toy / 'notebooks')!r}); params.PARAMS_DIR = params.NOTEBOOK_DIR / 'params'; "
            f"sys.exit(run.main(['slow', '--out', {str(out)!r}]))")
    tmp = toy / "tmp"  # the runner's temporary folders, apart from other test runs'
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.parent.glob(".slow.*.ipynb")):
        time.sleep(0.2)
    time.sleep(3)  # the kernel is running the slow cell
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"stopped by {sig.name}" in err
    assert [p.name for p in tmp.iterdir() if not p.name.endswith(".failed.ipynb")] == []  # no xai-run-* left
    assert out.read_text() == "old" and sorted(p.name for p in out.parent.iterdir()) == ["slow.ipynb"]


@pytest.mark.parametrize("paper", params.notebooks())
def test_every_preset_satisfies_the_declared_rules(paper):
    """The book's own parameters and preset files pass the checks users' values get."""
    for preset in params.presets(paper):
        params.resolve(paper, preset)


def test_run_all_gives_the_overview_only_the_overrides_it_declares():
    """`run all -p engine=ray` shards every chapter; the overview (parameter: preset) gets none of it."""
    assert run.overrides_for("overview", {"engine": "ray", "seed": 1}) == {}
    assert run.overrides_for("salagg", {"engine": "ray", "bogus": 1}) == {"engine": "ray", "bogus": 1}
    assert run.main(["all", "-p", "engine=dask"]) == 2  # a chapter still refuses a bad value before anything runs
