"""The Ray executor: an embedded Ray runs a 4-cell sweep with the same cells, bit for bit, as in-process,
and a split call (a data-set run in chunks of samples) with the same merged result as the local pool; the
embedded instance runs with its own settings, the cells on the workers Ray pre-started (no second pool), and
each cell's worker sees this process's variables as they are when the sweep starts."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from sweep_helpers import same_aggregate, same_cells, tiny_spec

from workbench.core.result import Result
from workbench.sweep.engine import RunOptions, run_sweep

ray = pytest.importorskip("ray")
PRESTARTED: list[int] = []  # the worker processes ray.init started, before any cell


def _cells(out):
    return {p.name: Result.load(p) for p in (out / "cells").iterdir() if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def embedded_ray():
    """One embedded Ray for the module, started the way a sweep starts it (its start takes ~10 s and
    ~640 MB), shut down afterwards."""
    from workbench.sweep import ray_backend

    assert not ray.is_initialized()
    assert ray_backend.ensure_ray("", 2) == (ray, True)
    deadline = time.monotonic() + 120  # ray.init pre-starts one worker per CPU in the background
    while len(_node_workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    PRESTARTED[:] = sorted(_node_workers())
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


def _node_workers() -> list:
    """Ray's worker processes on this node (children of the raylet named ray::IDLE / ray::<task>, not its agents)."""
    psutil = pytest.importorskip("psutil")
    raylets = [p for p in psutil.Process().children(recursive=True) if p.name() == "raylet"]
    out = []
    for p in (c for r in raylets for c in r.children()):
        try:
            title = (p.cmdline() or [""])[0]
        except psutil.Error:
            continue
        if title.startswith("ray::") and not title.endswith("Agent"):
            out.append(p.pid)
    return out


def test_embedded_ray_has_its_settings_and_runs_cells_on_the_prestarted_workers(tmp_path, embedded_ray):
    from workbench.sweep.ray_backend import EMBEDDED_SYSTEM_CONFIG

    config = ray._private.state.state.get_system_config()  # what the running GCS got, not what was asked
    assert {k: config.get(k) for k in EMBEDDED_SYSTEM_CONFIG} == EMBEDDED_SYSTEM_CONFIG
    run_sweep(tiny_spec(seeds=(0,)), tmp_path / "a", RunOptions("ray", 2))
    # with a runtime_env (a task's or a job's, seen with both) Ray would run the cells on 2 fresh workers in
    # place of the pre-started ones, here and in the tests before this one
    assert len(PRESTARTED) == 2 and sorted(_node_workers()) == PRESTARTED


def test_a_cells_worker_sees_the_variables_of_this_process_at_the_sweep(monkeypatch, embedded_ray):
    from workbench.sweep import ray_backend

    def probe(env):
        ray_backend._prepare(env, 1)
        return {k: os.environ.get(k) for k in env}

    task = ray.remote(probe).options(num_cpus=1)
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")  # set after Ray started: workers did not inherit it
    seen = ray.get([task.remote(ray_backend.worker_env()) for _ in range(2)])
    assert all(s["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] == "1" and s["OMP_WAIT_POLICY"] == "PASSIVE" for s in seen)
    monkeypatch.undo()
    seen = ray.get([task.remote(ray_backend.worker_env()) for _ in range(2)])
    assert all(s["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] == os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD") for s in seen)
