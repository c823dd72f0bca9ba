"""The model cache: content-addressed keys, atomic writes, safe loads, corrupt entries rebuilt."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from xai_utils import cache


def _payload():
    return {"state": {"w": torch.arange(4.0)}, "acc": 0.5, "history": [{"epoch": 1}]}


def test_build_once_then_hit(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return _payload()

    a = cache.load_or_build("m", {"lr": 0.1}, build, root=tmp_path)
    b = cache.load_or_build("m", {"lr": 0.1}, build, root=tmp_path)
    assert len(calls) == 1
    torch.testing.assert_close(a["state"]["w"], b["state"]["w"])
    assert b["acc"] == 0.5 and b["history"] == [{"epoch": 1}]


def test_key_depends_on_config_and_code():
    assert cache.key({"a": 1}) == cache.key({"a": 1})
    assert cache.key({"a": 1}) != cache.key({"a": 2})
    assert cache.key({"a": 1}, ["def f(): return 1"]) != cache.key({"a": 1}, ["def f(): return 2"])
    assert cache.key({"a": 1}, [cache.key]) != cache.key({"a": 1})  # functions hash their source


@pytest.mark.parametrize("garbage", [b"", b"not a torch file", b"PK\x03\x04truncated zip"])
def test_corrupt_entry_is_rebuilt_not_crashed_on(tmp_path, garbage):
    cache.load_or_build("m", {"x": 1}, _payload, root=tmp_path)
    path = cache.entry_path("m", cache.key({"x": 1}), tmp_path)
    path.write_bytes(garbage)
    with pytest.warns(UserWarning, match="unreadable"):
        out = cache.load_or_build("m", {"x": 1}, lambda: {"acc": 0.9}, root=tmp_path)
    assert out == {"acc": 0.9}
    assert cache.load_or_build("m", {"x": 1}, _payload, root=tmp_path) == {"acc": 0.9}  # stored again


def test_entry_with_foreign_key_is_rebuilt(tmp_path):
    path = cache.entry_path("m", cache.key({"x": 1}), tmp_path)
    cache.atomic_save({"key": "other", "payload": 1}, path)
    with pytest.warns(UserWarning, match="expected key"):
        assert cache.load_or_build("m", {"x": 1}, lambda: 2, root=tmp_path) == 2


def test_unsafe_pickles_are_refused(tmp_path):
    """weights_only loading refuses arbitrary objects, so a planted pickle cannot run code."""
    path = tmp_path / "evil.pt"
    torch.save({"f": print}, path)
    with pytest.raises(Exception, match="(?i)weights.only|unsupported"):
        cache.safe_load(path)


def test_failed_build_leaves_no_entry_and_atomic_save_cleans_up(tmp_path):
    def boom():
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        cache.load_or_build("m", {"y": 1}, boom, root=tmp_path)
    assert not list(tmp_path.rglob("*.pt"))

    class Unpicklable:
        def __reduce__(self):
            raise TypeError("cannot pickle")

    with pytest.raises(TypeError):
        cache.atomic_save(Unpicklable(), tmp_path / "m" / "z.pt")
    assert list((tmp_path / "m").iterdir()) == []


def test_code_version_covers_the_import_closure():
    """The modules the old hand-kept list of the salagg map cache missed are in its key now."""
    from xai_utils.experiments import salagg

    modules = cache.code_modules([salagg])
    for missed in ("xai_utils.attribution.segmentation", "xai_utils.attribution.postprocess",
                   "xai_utils.models.safe"):
        assert missed in modules
    assert "xai_utils.bench" not in modules  # not imported by the chapter: its edits keep the cache
    assert cache.code_modules([salagg.compute_scores]) == modules  # a function counts as its module


@pytest.mark.parametrize("dependency", ["xai_utils.attribution.segmentation", "xai_utils.models.safe",
                                        "xai_utils.metrics.stats"])
def test_editing_a_dependency_is_a_cache_miss(tmp_path, monkeypatch, dependency):
    from xai_utils.experiments import salagg

    calls = []

    def build():
        calls.append(1)
        return len(calls)

    assert cache.load_or_build("m", {"x": 1}, build, code=[salagg], root=tmp_path) == 1
    assert cache.load_or_build("m", {"x": 1}, build, code=[salagg], root=tmp_path) == 1
    source = cache.inspect.getsource

    def edited(obj):
        text = source(obj)
        return text + "\n# edited\n" if getattr(obj, "__name__", "") == dependency else text

    monkeypatch.setattr(cache.inspect, "getsource", edited)
    assert cache.load_or_build("m", {"x": 1}, build, code=[salagg], root=tmp_path) == 2


def test_a_directory_in_place_of_an_entry_is_rebuilt(tmp_path):
    path = cache.entry_path("m", cache.key({"d": 1}), tmp_path)
    (path / "inner").mkdir(parents=True)
    with pytest.warns(UserWarning, match="unreadable"):
        assert cache.load_or_build("m", {"d": 1}, lambda: 5, root=tmp_path) == 5
    assert path.is_file() and cache.load_or_build("m", {"d": 1}, lambda: 6, root=tmp_path) == 5


def test_entries_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        cache.load_or_build("m", {"u": 1}, lambda: 1, root=tmp_path)
    finally:
        os.umask(old)
    path = cache.entry_path("m", cache.key({"u": 1}), tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
