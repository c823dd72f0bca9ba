"""xai_utils.parallel: the one seam for per-image work, in-process and on a local Ray cluster (2 CPUs).

Ray runs the same chunks with the driver's threads and determinism, so its results must *equal* the local
ones; a worker that dies is retried by Ray and loses nothing; a chunk that raises keeps its error's type and
gets a note naming its chunk and images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from xai_utils import cache, config, ood, parallel, params

ray = pytest.importorskip("ray", reason="engine='ray' tests need the cluster extra (make venv installs it)")


def _sums(chunk: parallel.Chunk, *, w: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"s": (chunk.x * w).flatten(1).sum(1), "where": torch.full((len(chunk.x),), chunk.index * 100 + chunk.start)}


def _logged(chunk: parallel.Chunk, *, log: str) -> torch.Tensor:
    """Records each call in ``log`` (a folder); raises on chunk 2 while ``log/fail`` exists."""
    Path(log, f"{chunk.index}-{uuid.uuid4().hex}").touch()
    if chunk.index == 2 and Path(log, "fail").exists():
        raise ValueError("a bad pixel")
    return chunk.x.flatten(1).sum(1)


def _dies_once(chunk: parallel.Chunk, *, marker: str) -> torch.Tensor:
    """Kills its worker process the first time it sees chunk 1 (Ray must retry the task)."""
    if chunk.index == 1 and not Path(marker).exists():
        Path(marker).touch()
        os._exit(1)
    return chunk.x.flatten(1).sum(1) * 2


def test_local_chunks_concatenate_in_order(tiny_images):
    x = torch.rand(11, 3, 4, 4, dtype=torch.float64)
    got = parallel.map_chunks(_sums, x, chunk_size=4, shared={"w": torch.tensor(2.0, dtype=torch.float64)})
    torch.testing.assert_close(got["s"], (2 * x).flatten(1).sum(1), rtol=0, atol=1e-12)
    assert got["where"].tolist() == [0] * 4 + [104] * 4 + [208] * 3  # chunk index and start of each image


def test_bad_arguments_are_named():
    x = torch.rand(4, 3, 2, 2)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        parallel.map_chunks(_sums, x, chunk_size=0, shared={"w": 1.0})
    with pytest.raises(ValueError, match="no images"):
        parallel.map_chunks(_sums, x[:0], chunk_size=2, shared={"w": 1.0})
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        parallel.use("spark")
    with pytest.raises(ValueError, match="need engine='ray'"):
        parallel.use("local", address="ray://head:10001")
    with pytest.raises(ValueError, match="gpus_per_task must be >= 0"):
        parallel.use("ray", gpus_per_task=-1)
    assert parallel.current() == parallel.Engine()  # a refused setting leaves the engine as it was


def test_notebook_engine_parameters_are_checked_before_the_kernel():
    with pytest.raises(params.ParameterError, match="unknown engine"):
        params.resolve("salagg", "smoke", {"engine": "dask"})
    with pytest.raises(params.ParameterError, match="need engine='ray'"):
        params.resolve("salagg", "smoke", {"ray_gpus_per_task": 1.0})
    assert params.resolve("salagg", "smoke", {"engine": "ray"})["engine"] == "ray"


def test_a_failing_chunk_names_itself_and_a_rerun_computes_only_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    log = tmp_path / "log"
    log.mkdir()
    (log / "fail").touch()
    x = torch.rand(10, 1, 2, 2)
    ids = [f"img{i}" for i in range(10)]
    with parallel.using("local", cache=True), pytest.raises(ValueError, match="a bad pixel") as err:
        parallel.map_chunks(_logged, x, chunk_size=2, shared={"log": str(log)}, ids=ids)
    assert "_logged on chunk 2 (images 4:6, ids ['img4', 'img5'])" in err.value.__notes__[0]
    assert sorted(p.name.split("-")[0] for p in log.glob("*-*")) == ["0", "1", "2"]
    (log / "fail").unlink()
    with parallel.using("local", cache=True):
        got = parallel.map_chunks(_logged, x, chunk_size=2, shared={"log": str(log)}, ids=ids)
    torch.testing.assert_close(got, x.flatten(1).sum(1))
    calls = sorted(p.name.split("-")[0] for p in log.glob("*-*"))
    assert calls == ["0", "1", "2", "2", "3", "4"]  # chunks 0 and 1 came from the cache
    assert len(list((tmp_path / "cache" / "chunks").glob("*.pt"))) == 5


def test_a_corrupt_chunk_entry_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    x = torch.rand(4, 1, 2, 2)
    with parallel.using("local", cache=True):
        first = parallel.map_chunks(_sums, x, chunk_size=2, shared={"w": 3.0})
        for entry in (tmp_path / "chunks").glob("*.pt"):
            entry.write_bytes(b"not a torch file")
        with pytest.warns(UserWarning, match="unreadable"):
            again = parallel.map_chunks(_sums, x, chunk_size=2, shared={"w": 3.0})
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert cache.safe_load(next((tmp_path / "chunks").glob("*.pt")))["key"]  # rewritten whole


@pytest.fixture(scope="module")
def local_cluster():
    """Two CPUs; the workers import this folder's modules (conftest's models, this file's chunk functions)."""
    path = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def test_ray_equals_local_on_saliency_aggregates(local_cluster, tiny_cnn, tiny_images):
    specs = {"Saliency": ("saliency", {}), "IG": ("integrated_gradients", {"n_steps": 4}), "LIME": ("lime", {"n_samples": 8})}
    args = dict(batch_size=2, chunk_size=16)
    local = ood.saliency_aggregates(tiny_cnn, tiny_images, specs, ["mean", "cv"], **args)
    with parallel.using("ray", cache=False):
        remote = ood.saliency_aggregates(tiny_cnn, tiny_images, specs, ["mean", "cv"], **args)
    assert list(remote) == list(local)
    assert all(torch.equal(local[k], remote[k]) for k in local), "Ray's chunks must give the local numbers"


def test_ray_retries_a_killed_worker_and_loses_nothing(local_cluster, tmp_path):
    x = torch.rand(6, 1, 2, 2)
    with parallel.using("ray", cache=False):
        got = parallel.map_chunks(_dies_once, x, chunk_size=2, shared={"marker": str(tmp_path / "died")})
    assert (tmp_path / "died").exists(), "the worker was not killed: the test tested nothing"
    assert torch.equal(got, x.flatten(1).sum(1) * 2)


def test_ray_reports_the_failing_chunk_and_its_images(local_cluster, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    (log / "fail").touch()
    with parallel.using("ray", cache=False), pytest.raises(ValueError, match="a bad pixel") as err:
        parallel.map_chunks(_logged, torch.rand(8, 1, 2, 2), chunk_size=2, shared={"log": str(log)})
    notes = "\n".join(err.value.__notes__)
    assert "on chunk 2 (images 4:6, ids [4, 5])" in notes and "raised on a Ray worker" in notes


def _smoke(tmp_path: Path, engine: str) -> dict:
    out = tmp_path / engine / "salagg.ipynb"
    subprocess.run([sys.executable, "-m", "xai_utils.run", "salagg", "--preset", "smoke", "-p", f"engine={engine}",
                    "--out", str(out), "--allow-dirty"], check=True, cwd=config.REPO_ROOT, capture_output=True)
    return json.loads((out.parent / "salagg.smoke.json").read_text())


def test_a_chapter_on_ray_gives_the_local_results(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CACHE_DIR", str(tmp_path / "cache"))  # Ray's chunk cache: never a stale hit
    local, remote = _smoke(tmp_path, "local"), _smoke(tmp_path, "ray")
    assert remote["params"]["engine"] == "ray" and local["params"]["engine"] == "local"
    assert local["numbers"] and remote["numbers"] == local["numbers"]
    assert remote["claims"] == local["claims"]
    assert any((tmp_path / "cache" / "chunks").glob("*.pt")), "the Ray run cached no chunk"


def test_a_task_no_node_can_hold_is_refused_not_left_waiting(local_cluster):
    x = torch.rand(2, 1, 2, 2)
    with parallel.using("ray", gpus_per_task=1.0), pytest.raises(ValueError, match="ray_gpus_per_task=1 GPUs"):
        parallel.map_chunks(_sums, x, chunk_size=1, shared={"w": 1.0})
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with parallel.using("ray"), pytest.raises(ValueError, match="threads=3 CPUs, but the largest node .* has 2"):
            parallel.map_chunks(_sums, x, chunk_size=1, shared={"w": 1.0})
    finally:
        torch.set_num_threads(threads)
