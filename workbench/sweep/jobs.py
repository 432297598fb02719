"""A sweep as a background job for the app: a :class:`workbench.runtime.jobs.Job` whose work is the grid
(state, fraction, message, cancel, queueing, ``ctx.live``, result, error all as for one run), so the pages' job
panel shows its progress and its live aggregate (``ctx.live["sweep"]``, a SweepResult of the cells finished so
far). Cells go to ``options.cache`` (resumable)."""

from __future__ import annotations

from workbench.runtime.jobs import Job
from workbench.sweep.engine import RunOptions, run_sweep
from workbench.sweep.grid import SweepSpec


class SweepJob(Job):
    def __init__(self, spec: SweepSpec, options: RunOptions) -> None:
        self.options = options
        super().__init__(spec)

    @property
    def label(self) -> str:
        return f"sweep of {self.spec.analyzer.replace('_', ' ')}"

    def _compute(self):
        return run_sweep(self.spec, None, self.options, self.ctx)
