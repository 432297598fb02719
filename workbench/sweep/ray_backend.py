"""The Ray executor: one Ray core task (``ray.remote``) per cell.

``ray.init()`` is embedded (a local instance sized to ``workers x threads`` CPUs, no dashboard) when no
address is given, else it joins the cluster at ``ray:ADDRESS`` / ``WORKBENCH_RAY_ADDRESS``. It is called
only when ``ray.is_initialized()`` is false, so an app rerun or a second sweep reuses the running
instance. Each task asks for ``num_cpus = threads`` (Ray would otherwise give it OMP_NUM_THREADS=1
silently) and sets torch's threads to that count, and for ``num_gpus`` (default 0.25: four cells share a
GPU) when the cluster has GPUs and the device is not ``cpu``. No intra-cell progress: a cell reports when
it finishes.

Overhead (bench/sweep_bench.py on the shared 2-core box; Ray's daemons use ~2-3% of one core idle and
~2% during a sweep, so the cost was elsewhere):

- No ``runtime_env``. Any ``runtime_env`` (job or task level, even ``env_vars`` only) makes Ray start
  fresh workers for the cells (~1-2 s each) in place of the ones ``ray.init`` pre-started (seen: the
  pre-started pids killed or left idle). The variables the cells need are set instead in the driver's
  environment before an embedded ``ray.init`` (its raylet and workers inherit it) and again by each task
  before torch is imported (:func:`_prepare`), which also reaches a cluster's workers. A cluster join keeps
  its job ``runtime_env`` for OMP_WAIT_POLICY (remote workers inherit nothing from this process).
- Each worker imports torch and the plug-ins once (workbench/sweep/preload.py, as the local pool's fork
  server does) before its first cell, so a cell's own time is the same work on both backends. Tasks run on
  the same worker processes cell after cell and sweep after sweep (the runner's per-process model cache
  loads each model once per worker), so an actor pool would add nothing but lose ``ray.cancel(force=True)``.
- An embedded instance turns off Ray's metrics collection and task-event reporting (``_system_config``):
  nothing reads them without a dashboard. Their idle CPU saving was within noise (2.6-3.0% of one core
  for all of Ray's processes, before and after).
"""

from __future__ import annotations

import os

from workbench.core.errors import Cancelled, ConfigError
from workbench.sweep import worker
from workbench.sweep.base import Executor, _one_line

DEFAULT_GPU_SHARE = 0.25
_ENV_PASSED = ("OMP_WAIT_POLICY", "WORKBENCH_USER_MODELS", "WORKBENCH_USER_WEIGHTS", "TORCH_FORCE_WEIGHTS_ONLY_LOAD")
#: Ray's own settings for an instance started here (RayConfig keys; not allowed when joining a cluster)
EMBEDDED_SYSTEM_CONFIG = {"enable_metrics_collection": False, "task_events_report_interval_ms": 0}


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray executor needs Ray, which is not installed",
                          "pip install 'cnn-workbench[ray]' (or use --executor local)") from None
    return ray


def worker_env() -> dict:
    """The variables a cell's worker must see, from this process (None: unset there, so unset in the worker)."""
    env = {k: os.environ.get(k) for k in _ENV_PASSED}
    env["OMP_WAIT_POLICY"] = env["OMP_WAIT_POLICY"] or "PASSIVE"
    return env


def ensure_ray(address: str = "", num_cpus: int | None = None) -> tuple[object, bool]:
    """Ray, initialised once per process; returns (ray, started_here)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    if address:
        env = {k: v for k, v in worker_env().items() if v is not None}
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    else:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the raylet and its workers inherit it
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 _system_config=dict(EMBEDDED_SYSTEM_CONFIG))
    return ray, True


def _prepare(env: dict, threads: int) -> None:
    """In the worker, before torch is imported there: the driver's variables, then torch + plug-ins once."""
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    import workbench.sweep.preload  # noqa: F401 - imports torch, the plug-ins and the cards once per process

    worker.set_threads(threads)
    worker.limit_blas(threads)


def _ray_cell(payload: dict, env: dict | None = None) -> dict:
    """A cell inside a Ray worker process (module-level: Ray pickles it by reference)."""
    _prepare(env if env is not None else worker_env(), int(payload["threads"]))
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
        # no runtime_env here: it would give the cells workers of their own (see the module doc)
        return {"num_cpus": self.threads, "num_gpus": self.gpus_per_task, "max_retries": 0}

    def map(self, payloads: list[dict], cancel, progress=None):
        ray, _ = ensure_ray(self.address, self.workers * self.threads)
        if not payloads:
            return
        task = ray.remote(_ray_cell).options(**self._options(ray, payloads[0]["device"]))
        env = worker_env()
        refs = {task.remote(p, env): p["key"] for p in payloads}
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
