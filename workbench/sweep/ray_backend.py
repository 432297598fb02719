"""The Ray executor: one Ray core task (``ray.remote``) per cell.

``ray.init()`` is embedded (a local instance sized to ``workers x threads`` CPUs, no dashboard) when no
address is given, else it joins the cluster at ``ray:ADDRESS`` / ``WORKBENCH_RAY_ADDRESS``. It is called
only when ``ray.is_initialized()`` is false, so an app rerun or a second sweep reuses the running
instance. Each task asks for ``num_cpus = threads`` (Ray would otherwise give it OMP_NUM_THREADS=1
silently) and sets torch's threads to that count, and for ``num_gpus`` (default 0.25: four cells share a
GPU) when the cluster has GPUs and the device is not ``cpu``. Ray reuses its worker processes, so the
runner's per-process model cache loads each model once per worker. No intra-cell progress: a cell
reports when it finishes.
"""

from __future__ import annotations

import os

from workbench.core.errors import Cancelled, ConfigError
from workbench.sweep import worker
from workbench.sweep.base import Executor, _one_line

DEFAULT_GPU_SHARE = 0.25
_ENV_PASSED = ("OMP_WAIT_POLICY", "WORKBENCH_USER_MODELS", "WORKBENCH_USER_WEIGHTS", "TORCH_FORCE_WEIGHTS_ONLY_LOAD")


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs Ray, which is not installed",
                          "pip install 'cnn-workbench[ray]' (or use --executor local)") from None
    return ray


def ensure_ray(address: str = "", num_cpus: int | None = None) -> tuple[object, bool]:
    """Ray, initialised once per process; returns (ray, started_here)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})
    return ray, True


def _ray_cell(payload: dict) -> dict:
    """A cell inside a Ray worker process (module-level: Ray pickles it by reference)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    worker.set_threads(int(payload["threads"]))
    worker.limit_blas(int(payload["threads"]))
    return worker.run_cell(payload)


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, workers: int, threads: int, address: str = "", gpus_per_task: float | None = None) -> None:
        super().__init__(workers, threads)
        self.address, self.gpus_per_task = address, gpus_per_task

    def describe(self) -> dict:
        return {**super().describe(), "address": self.address or "embedded", "gpus_per_task": self.gpus_per_task}

    def _options(self, ray, device: str) -> dict:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        share = self.gpus_per_task if self.gpus_per_task is not None else DEFAULT_GPU_SHARE
        use_gpu = gpus > 0 and device != "cpu"
        self.gpus_per_task = share if use_gpu else 0.0
        env = {k: os.environ[k] for k in _ENV_PASSED if k in os.environ}
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return {"num_cpus": self.threads, "num_gpus": self.gpus_per_task, "max_retries": 0,
                "runtime_env": {"env_vars": env}}

    def map(self, payloads: list[dict], cancel, progress=None):
        ray, _ = ensure_ray(self.address, self.workers * self.threads)
        if not payloads:
            return
        task = ray.remote(_ray_cell).options(**self._options(ray, payloads[0]["device"]))
        refs = {task.remote(p): p["key"] for p in payloads}
        pending, finished = list(refs), False
        try:
            while pending:
                if cancel.cancelled:
                    raise Cancelled("the sweep was cancelled", "run the same sweep again to resume")
                done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                for ref in done:
                    yield self._outcome(ray, ref, refs[ref])
            finished = True
        finally:
            if not finished:
                for ref in pending:
                    ray.cancel(ref, force=True)

    @staticmethod
    def _outcome(ray, ref, key: str) -> tuple:
        try:
            return "done", key, ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the cell's own exception, re-raised by Ray
            cause = getattr(e, "cause", None)
            return "failed", key, _one_line(cause if isinstance(cause, BaseException) else e)
        except ray.exceptions.RayError as e:  # a worker died, a task was cancelled, ...
            return "failed", key, f"compute_error: ray: {type(e).__name__}"


def shutdown_if_started(started: bool) -> None:
    if started:
        import_ray().shutdown()
