"""Each local pool worker runs its cells on the sweep's torch thread count (workers x threads <= cores),
not torch's default of one thread per core; the run info says what the cells saw."""

from __future__ import annotations

from sweep_helpers import tiny_spec

from workbench.sweep.base import cores, default_workers
from workbench.sweep.engine import RunOptions, run_sweep


def test_pool_workers_run_on_the_sweeps_thread_count(tmp_path):
    spec = tiny_spec(seeds=(0,), criteria=("weight",))
    spec.threads = 2  # not what torch would pick by itself under OMP_NUM_THREADS=1 (the test command's)
    run = run_sweep(spec, tmp_path, RunOptions("local", 2)).info["run"]
    assert run["executor"] == "local" and run["workers"] == 2 and run["threads_seen"] == [spec.threads]
    assert default_workers(1) == cores() and default_workers(2) * 2 <= max(cores(), 2)
    run = run_sweep(spec, tmp_path / "again", RunOptions("local", 1)).info["run"]  # in-process: the same count
    assert run["executor"] == "sequential" and run["threads_seen"] == [spec.threads]
