"""Floor 3: device choice, RunContext, batching with OOM back-off, the runner and jobs."""

from workbench.runtime.context import CancelToken, RunContext
from workbench.runtime.device import pick_device
from workbench.runtime.jobs import Job, start_job
from workbench.runtime.runner import RunSpec, load_model, make_batch, run

__all__ = ["CancelToken", "Job", "RunContext", "RunSpec", "load_model", "make_batch", "pick_device",
           "run", "start_job"]
