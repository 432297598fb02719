"""The Ray executor: an embedded Ray runs a 4-cell sweep with the same cells, bit for bit, as in-process."""

from __future__ import annotations

import pytest
from sweep_helpers import same_aggregate, same_cells, tiny_spec

from workbench.core.result import Result
from workbench.sweep.engine import RunOptions, run_sweep

ray = pytest.importorskip("ray")


def _cells(out):
    return {p.name: Result.load(p) for p in (out / "cells").iterdir() if not p.name.startswith(".")}


def test_embedded_ray_sweep_equals_in_process(tmp_path, monkeypatch):
    from workbench.sweep import ray_backend

    spec = tiny_spec(seeds=(0,))
    local = run_sweep(spec, tmp_path / "local", RunOptions("local", 1))
    assert not ray.is_initialized()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # an app rerun must never call ray.init a second time: the running instance is reused
        monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init called twice"))
        assert ray_backend.ensure_ray("", 2) == (ray, False)
        on_ray = run_sweep(spec, tmp_path / "ray", RunOptions("ray", 2))
    finally:
        monkeypatch.undo()
        ray.shutdown()
    run = on_ray.info["run"]
    assert run["executor"] == "ray" and run["computed"] == 4 and run["gpus_per_task"] == 0.0
    assert same_cells(_cells(tmp_path / "local"), _cells(tmp_path / "ray")) == []
    assert same_aggregate(local, on_ray) == []
