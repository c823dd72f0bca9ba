"""Device resolution, seeding, kept memory and the data root."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from xai_utils import config


def test_auto_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.resolve_device("auto") == torch.device("cuda")


def test_explicit_devices(monkeypatch):
    assert config.resolve_device("cpu") == torch.device("cpu")
    assert config.resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        config.resolve_device("cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        config.resolve_device("gpu0")


def test_setup_seeds_and_fixes_threads():
    before = torch.get_num_threads()
    try:
        assert config.setup(3, device="cpu", threads=1) == torch.device("cpu")
        a = torch.rand(3)
        config.setup(3, device="cpu", threads=1)
        assert torch.equal(a, torch.rand(3)) and torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(False)


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(tmp_path / "env"))
    assert config.data_root() == (tmp_path / "env").resolve()
    assert config.data_root(tmp_path / "arg") == (tmp_path / "arg").resolve()
    monkeypatch.delenv(config.DATA_ROOT_ENV)
    assert config.data_root().name == "data" and config.data_root().parent.name == "shared"


def test_data_path_is_absolute_or_under_the_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(tmp_path / "env"))
    assert config.data_path("w/a.pth") == (tmp_path / "env").resolve() / "w" / "a.pth"
    assert config.data_path("w/a.pth", tmp_path / "arg") == (tmp_path / "arg").resolve() / "w" / "a.pth"
    assert config.data_path(tmp_path / "abs.pth", tmp_path / "arg") == tmp_path / "abs.pth"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.data_path("~/b.pth") == tmp_path / "home" / "b.pth"


_FAULTS = """
import resource, statistics, sys, torch
from xai_utils import config
kept = config.keep_freed_memory() if sys.argv[1] == "keep" else None
conv, x = torch.nn.Conv2d(16, 16, 3, padding=1), torch.rand(128, 16, 64, 64)  # 32 MB per activation
faults = []
with torch.no_grad():
    for _ in range(9):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        conv(conv(x))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(kept, int(statistics.median(faults[1:])))
"""


@pytest.mark.skipif(config._glibc() is None, reason="malloc settings are glibc's")
def test_kept_memory_is_reused_without_page_faults():
    """Two convolutions on a 128 x 16 x 64 x 64 batch: glibc unmaps their 32 MB outputs when freed and
    faults their pages in again on every pass (8k per output), unless the memory is kept.  The median pass
    after the first: a kept heap still re-faults one block now and then while it settles (8k faults in
    about one pass of ten)."""

    def faults(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True)
        kept, n = out.stdout.split()
        return kept, int(n)

    assert faults("default")[1] > 8000
    kept, n = faults("keep")
    assert kept == "True" and n < 500
