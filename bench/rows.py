"""The rows of issue 21's table, each measured side by side with its peer (``bench.timing.ab``: interleaved,
warm-ups, CPU time, min/median/max). Every row returns ``ratio`` (ours / peer, CPU-time medians), ``goal``
(what the issue asks, as text), ``goal_ratio`` + ``goal_op`` (the number ``met`` compares ``ratio`` with)
and ``met``. Sizes are small enough for the whole of `make bench` to finish in 15 minutes on 2 cores."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from bench.timing import ab

ROUNDS = 3


def verdict(row: dict, goal: str, op: str, value: float) -> dict:
    """Attach the goal and whether the measured ratio meets it ("<=": ours/peer at most value)."""
    r = row["ratio"]
    row.update(goal=goal, goal_op=op, goal_ratio=value, met=bool(r <= value if op == "<=" else r >= value))
    return row


def _handle_batch(model_id: str, data: str, n: int, device: str):
    from workbench.runtime import load_model, make_batch

    handle = load_model(model_id, device)
    batch = make_batch(handle.card, data, device)
    reps = -(-n // batch.x.shape[0])
    x = batch.x.repeat(reps, *([1] * (batch.x.dim() - 1)))[:n]
    disp = np.concatenate([batch.display] * reps)[:n]
    return handle, batch.__class__(x, disp, (batch.ids * reps)[:n], (batch.labels * reps)[:n], data)


def _analyzer(name: str, handle, batch, config: dict):
    """The analyzer's own run (no runner: no data decoding, no provenance) on a prepared batch."""
    from workbench.core.analyzer import get_analyzer
    from workbench.core.config import from_dict
    from workbench.runtime import RunContext

    cls = get_analyzer(name)
    cfg = from_dict(cls.Config, config)
    return lambda: cls().run(handle, batch, cfg, RunContext(device=handle.device, batch_size=batch.x.shape[0]))


# ---- LRP ---------------------------------------------------------------------------------------

def lrp_vs_zennit(device: str) -> dict:
    from analyzers._shared.lrp import input_bounds, plan_canonization
    from bench.lrp_bench import _zennit_direct

    handle, batch = _handle_batch("resnet18.untrained", "skimage:chelsea", 8, device)
    module, x = handle.module, batch.x
    with torch.no_grad():
        target = module(x).argmax(1)
    canon, bounds = plan_canonization(module).canonizers, input_bounds(handle.card, x)
    ours = _analyzer("lrp", handle, batch, {"sanity_check": False})

    def gradient():
        xr = x.detach().clone().requires_grad_(True)
        torch.autograd.grad(module(xr).gather(1, target[:, None]).sum(), xr)

    row = ab(ours, lambda: _zennit_direct(module, canon, bounds, x, target), ROUNDS)
    grad = ab(ours, gradient, ROUNDS)
    row.update(model="resnet18.untrained", batch=8, peer="zennit EpsilonPlusFlat + canonizers, direct",
               ours_over_gradient=grad["ratio"], gradient_goal="<= 2.0", gradient_met=grad["ratio"] <= 2.0,
               note="sanity_check=false (the randomization check is a second explanation)")
    return verdict(row, "<= 1.0x zennit", "<=", 1.0)


# ---- Grad-CAM ----------------------------------------------------------------------------------

def _gradcam_by_hand(module, layer, x, target):
    """Selvaraju et al. in a dozen lines of autograd: one forward with a hook, one backward."""
    store = {}
    h = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        out = module(x)
    finally:
        h.remove()
    (g,) = torch.autograd.grad(out.gather(1, target[:, None]).sum(), store["a"])
    cam = torch.relu((g.mean((2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True))
    return torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)


def gradcam_vs_hand(device: str) -> dict:
    handle, batch = _handle_batch("resnet18.untrained", "skimage:chelsea", 8, device)
    module, x = handle.module, batch.x
    with torch.no_grad():
        target = module(x).argmax(1)
    ours = _analyzer("attribution", handle, batch, {"method": "grad_cam", "gradcam_layer": "layer4",
                                                    "sanity_check": False})
    row = ab(ours, lambda: _gradcam_by_hand(module, module.layer4, x, target), ROUNDS)
    row.update(model="resnet18.untrained", layer="layer4", batch=8, peer="hand-rolled autograd Grad-CAM")
    return verdict(row, "<= 1.05x", "<=", 1.05)


# ---- receptive field ---------------------------------------------------------------------------

def rf_theory(device: str) -> dict:
    import torchvision

    from analyzers.receptive_field import graph

    module = torchvision.models.resnet50(weights=None).eval()
    shape = (3, 224, 224)
    try:
        import torchlens

        peer, peer_name = (lambda: torchlens.log_forward_pass(module, torch.zeros(1, *shape))), "TorchLens"
    except ImportError:
        from bench.naive_rf import naive_rf

        peer, peer_name = (lambda: naive_rf(module, shape)), "naive forward-hook tracer (bench/naive_rf.py)"
    cold = lambda: graph._analyze(module, shape, torch.float32, torch.device("cpu"))  # noqa: E731 - no cache
    row = ab(cold, peer, 5)
    ms = row["ours_cpu_s"]["median"] * 1000  # CPU time, as every ratio: wall time follows the box's load
    box = graph.analyze(module, shape).find("layer4").box
    cached = ab(lambda: graph.analyze(module, shape), peer, 3)
    row.update(model="torchvision resnet50", peer=peer_name, ours_cpu_ms=round(ms, 1), layer4_rf=box.r[0],
               ours_wall_ms=round(row["ours_wall_s"]["median"] * 1000, 1),
               cached_ratio=cached["ratio"], cached_ms=round(cached["ours_wall_s"]["median"] * 1000, 3))
    goal = "<= 50 ms (trace + shapes + recurrence, uncached), >= 20x TorchLens"
    if peer_name == "TorchLens":
        return {**verdict(row, goal, "<=", 0.05), "met": bool(row["ratio"] <= 0.05 and ms <= 50)}
    return {**verdict(row, goal + " (TorchLens not installed: the ms goal decides)", "<=", 1.0), "met": ms <= 50}


def erf_chunked(device: str, n: int = 50) -> dict:
    from analyzers.receptive_field.erf import erf_map
    from analyzers.receptive_field.graph import analyze, truncated
    from bench.rf_bench import one_image_loop
    from workbench.runtime import RunContext, load_model

    module = load_model("resnet18.untrained", device).module
    an = analyze(module, (3, 224, 224))
    row_ = an.find("layer4")
    plain = truncated(an.gm, row_.node)
    x = torch.randn(n, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    maps, chunks = {}, []

    def ours():
        ctx = RunContext(device=device, batch_size=n)
        maps["ours"] = erf_map(plain, x, row_.box.dims, "replknet", ctx)[0]
        chunks.append(ctx.batch_size)

    def one_at_a_time():
        maps["peer"] = one_image_loop(plain, x, row_.box.dims)

    row = ab(ours, one_at_a_time, 2)
    row.update(model="resnet18.untrained", layer="layer4", images=n, chunks_chosen=chunks,
               peer="one image per forward + backward pass (RepLKNet's loop, the model as it is)",
               max_rel_map_difference=float(np.abs(maps["ours"] - maps["peer"]).max() / np.abs(maps["peer"]).max()))
    return verdict(row, ">= 1.8x faster (ratio <= 0.556), chunk chosen automatically", "<=", 1 / 1.8)


# ---- LinearScope -------------------------------------------------------------------------------

def linear_scope_rows(device: str, rows: int = 256) -> dict:
    from analyzers.linear_scope.products import Products
    from analyzers.linear_scope.replay import trace
    from bench.linear_scope_bench import _loop_rows, _model, compression

    module, x, which = _model(device)
    replay = trace(module, x)
    prod = Products(replay)
    index = torch.randperm(prod.n_out, generator=torch.Generator().manual_seed(0))[:rows].to(device)
    out = {}
    row = ab(lambda: out.__setitem__("ours", prod.rows(index)),
             lambda: out.__setitem__("peer", _loop_rows(replay, index)), 2)
    row.update(model=which, rows=rows, peer="a loop of autograd.grad with the graph retained",
               max_abs_diff=float((out["ours"] - out["peer"]).abs().max()), **compression(replay, index))
    return verdict(row, ">= 5x the loop (ratio <= 0.2)", "<=", 0.2)


# ---- Integrated Gradients ------------------------------------------------------------------------

def ig_vs_captum(device: str) -> dict:
    from captum.attr import IntegratedGradients

    out = {}
    for n in (1, 16):
        handle, batch = _handle_batch("digits_vgg.sk", "digits:test:0-15", n, device)
        module, x = handle.module, batch.x
        ours = _analyzer("attribution", handle, batch, {"method": "integrated_gradients", "n_steps": 64,
                                                        "ig_max_steps": 64, "sanity_check": False})

        def captum(x=x, module=module):
            xr = x.clone().requires_grad_(True)
            with torch.no_grad():
                t = module(xr).argmax(1)
            IntegratedGradients(module).attribute(xr, torch.zeros_like(xr), target=t, n_steps=64,
                                                  internal_batch_size=64 * x.shape[0])
        # one call at batch 1 is ~25 ms: 8 calls per timed sample, so clock and load jitter do not decide the ratio
        reps = max(1, 8 // n)
        out[f"batch_{n}"] = ab(lambda f=ours, k=reps: [f() for _ in range(k)],
                               lambda f=captum, k=reps: [f() for _ in range(k)], ROUNDS)
        out[f"batch_{n}"]["calls_per_sample"] = reps
    row = dict(out["batch_16"])
    row.update(ratio=max(o["ratio"] for o in out.values()), per_batch=out, model="digits_vgg.sk", steps=64,
               peer="captum IntegratedGradients, all steps of the batch in one internal batch")
    return verdict(row, "<= 1.1x at every batch", "<=", 1.1)


# ---- CLI cold start --------------------------------------------------------------------------------

def _child(cmd: list[str]) -> tuple[float, float]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=300,
                   env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def cli_cold_start(device: str) -> dict:
    wb = [sys.executable, "-c", "import sys; from workbench.cli import main; sys.argv[0] = 'workbench'; "
                                "sys.exit(main())"]
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {"import torch": [sys.executable, "-c", "import torch"], "--help": [*wb, "--help"],
                "zoo list": [*wb, "zoo", "list"],
                "run attribution (digits)": [*wb, "run", "attribution", "--model", "digits_vgg.sk", "--data",
                                             "digits:0", "--set", "sanity_check=false", "--out"]}
        times: dict = {k: [] for k in cmds}
        for r in range(ROUNDS):  # interleaved
            for k, c in cmds.items():
                times[k].append(_child(c + [f"{tmp}/run{r}"] if c[-1] == "--out" else c))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    floor_wall, floor_cpu = med["import torch"]
    row = {k: {"wall_s": [round(w, 3) for w, _ in v], "cpu_s": [round(c, 3) for _, c in v]} for k, v in times.items()}
    run_cpu = med["run attribution (digits)"][1]
    row.update(ratio=round(run_cpu / floor_cpu, 3), run_minus_torch_cpu_s=round(run_cpu - floor_cpu, 3),
               help_cpu_s=round(med["--help"][1], 3), zoo_list_cpu_s=round(med["zoo list"][1], 3),
               torch_import_cpu_s=round(floor_cpu, 3), torch_import_wall_s=round(floor_wall, 3),
               peer="python -c 'import torch' (the floor)")
    limit = (floor_cpu + 1.0) / floor_cpu
    row = verdict(row, "run <= import torch + 1 s; --help and zoo list below import torch", "<=", round(limit, 3))
    row["met"] = bool(row["met"] and med["--help"][1] < floor_cpu and med["zoo list"][1] < floor_cpu)
    return row
