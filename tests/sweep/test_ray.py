"""The Ray executor: an embedded Ray runs a 4-cell sweep with the same cells, bit for bit, as in-process,
and a split call (a data-set run in chunks of samples) with the same merged result as the local pool."""

from __future__ import annotations

import numpy as np
import pytest
from sweep_helpers import same_aggregate, same_cells, tiny_spec

from workbench.core.result import Result
from workbench.sweep.engine import RunOptions, run_sweep

ray = pytest.importorskip("ray")


def _cells(out):
    return {p.name: Result.load(p) for p in (out / "cells").iterdir() if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def embedded_ray():
    """One embedded Ray for the module (its start takes ~10 s and ~640 MB), shut down afterwards."""
    assert not ray.is_initialized()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_embedded_ray_sweep_equals_in_process(tmp_path, monkeypatch, embedded_ray):
    from workbench.sweep import ray_backend

    spec = tiny_spec(seeds=(0,))
    local = run_sweep(spec, tmp_path / "local", RunOptions("local", 1))
    # an app rerun must never call ray.init a second time: the running instance is reused
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init called twice"))
    assert ray_backend.ensure_ray("", 2) == (ray, False)
    on_ray = run_sweep(spec, tmp_path / "ray", RunOptions("ray", 2))
    monkeypatch.undo()
    run = on_ray.info["run"]
    assert run["executor"] == "ray" and run["computed"] == 4 and run["gpus_per_task"] == 0.0
    assert run["threads_seen"] == [spec.threads]
    assert same_cells(_cells(tmp_path / "local"), _cells(tmp_path / "ray")) == []
    assert same_aggregate(local, on_ray) == []


def test_a_split_data_set_run_on_ray_equals_the_local_pool(tmp_path, embedded_ray):
    from workbench.sweep.split import SplitOptions, run_split

    args = ("attribution", "digits_vgg.sk", "digits:test:0-199", {"method": "saliency", "sanity_check": False}, 0)
    local = run_split(*args, SplitOptions(RunOptions("local", 2), out=tmp_path / "local"))
    on_ray = run_split(*args, SplitOptions(RunOptions("ray", 2), out=tmp_path / "ray"))
    assert on_ray.info["split"]["executor"] == "ray" and on_ray.info["split"]["computed"] == 2
    from workbench.sweep.result import is_timing

    untimed = [{k: v for k, v in r.metrics.items() if not is_timing(k)} for r in (local, on_ray)]
    assert sorted(local.arrays) == sorted(on_ray.arrays) and untimed[0] == untimed[1]
    assert all(np.array_equal(local.arrays[n], on_ray.arrays[n], equal_nan=True) for n in local.arrays)
