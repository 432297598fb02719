"""`make bench`: speed ratios measured side by side in one run, written to JSON.

Per image model: median forward time for a batch; per attribution method, attribution time /
forward time on the same batch; and the attribution analyzer's time (through the runner) over
calling captum directly on the same inputs. Other analyzers add their own sections.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from analyzers.attribution.analyzer import AttributionConfig, Setup, _attribute, _gradcam_layer  # noqa: E402
from bench.timing import median_time  # noqa: E402
from workbench.core.cards import list_cards  # noqa: E402
from workbench.runtime import RunSpec, load_model, make_batch, pick_device, run  # noqa: E402

SMALL = {"batch": 16, "data": "digits:test:16", "steps": 32, "methods": ("integrated_gradients", "saliency",
         "input_x_gradient", "grad_cam", "occlusion")}
LARGE = {"batch": 4, "data": "skimage:chelsea", "steps": 16, "methods": ("integrated_gradients", "saliency",
         "input_x_gradient", "grad_cam")}
HEAVY = {"vgg16.untrained", "resnet50.untrained"}  # forward + two cheap methods only


def bench_model(card, device: str) -> dict:
    prof = SMALL if card.input_shape[-1] <= 64 else LARGE
    handle = load_model(card.id, device)
    batch = make_batch(card, prof["data"], device)
    x = batch.x.repeat(max(1, prof["batch"] // batch.x.shape[0]), 1, 1, 1)[: prof["batch"]]
    module = handle.module
    with torch.no_grad():
        target = module(x).argmax(1)
    fwd = median_time(lambda: module(x).sum().item())
    cfg = AttributionConfig(n_steps=prof["steps"])
    _, layer = _gradcam_layer(module, card, "")
    methods = ("saliency", "grad_cam") if card.id in HEAVY else prof["methods"]
    out = {"batch": int(x.shape[0]), "input": list(x.shape[1:]), "forward_median_s": round(fwd, 5),
           "methods": {}}
    side = x.shape[-1]
    for m in methods:
        setup = Setup(x, target, torch.zeros_like(x), cfg, max(2, side // 8), max(1, side // 16))
        t = median_time(lambda m=m, setup=setup: _attribute(m, module, layer, setup), repeat=3)
        out["methods"][m] = {"time_s": round(t, 4), "over_forward": round(t / fwd, 2)}
    out["analyzer_over_captum"] = analyzer_vs_captum(card, device, prof)
    return out


def analyzer_vs_captum(card, device: str, prof: dict) -> dict:
    """The whole analyzer run (one method, no sanity check) over the bare captum call, same inputs."""
    from captum.attr import IntegratedGradients

    module = load_model(card.id, device).module
    batch = make_batch(card, prof["data"], device)
    steps = prof["steps"]
    spec = RunSpec("attribution", card.id, prof["data"], {"method": "integrated_gradients", "n_steps": steps,
                                                          "sanity_check": False}, device=device)

    def captum_direct():
        x = batch.x.clone().requires_grad_(True)
        with torch.no_grad():
            t = module(x).argmax(1)
        IntegratedGradients(module).attribute(x, torch.zeros_like(x), target=t, n_steps=steps,
                                              internal_batch_size=max(8, steps // 2))

    ours = median_time(lambda: run(spec), repeat=3)
    base = median_time(captum_direct, repeat=3)
    return {"ours_s": round(ours, 4), "captum_s": round(base, 4), "ratio": round(ours / base, 3)}


def analyzer_benches(only: str = "") -> list[tuple[str, object]]:
    """``bench_<analyzer>()`` of every registered analyzer that ships one in ``bench/*_bench.py``."""
    import importlib

    from workbench.core.analyzer import list_analyzers

    names = {a.name for a in list_analyzers()}
    out = []
    for path in sorted(Path(__file__).parent.glob("*_bench.py")):
        module = importlib.import_module(f"bench.{path.stem}")
        out += [(n[len("bench_"):], getattr(module, n)) for n in dir(module)
                if n.startswith("bench_") and n[len("bench_"):] in names]
    wanted = set(filter(None, only.split(",")))
    return [(n, f) for n, f in out if not wanted or n in wanted]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results.json")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--models", default="", help="comma-separated ids; default every available image model")
    ap.add_argument("--only", default="", help="comma-separated analyzer benches (e.g. receptive_field); "
                                               "default all; 'none' skips them")
    args = ap.parse_args()
    device = pick_device(args.device)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    wanted = set(filter(None, args.models.split(",")))
    results = {"device": device, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
               "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "attribution": {}}
    for card in list_cards():
        if card.kind != "image2d" or (wanted and card.id not in wanted) or not card.status(card)["available"]:
            continue
        print(f"bench {card.id} ...", file=sys.stderr, flush=True)
        results["attribution"][card.id] = bench_model(card, device)
    for name, fn in analyzer_benches(args.only):
        print(f"bench {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            results[name] = fn()
        except Exception as e:  # noqa: BLE001 - one failing bench is recorded, the others still run
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        results[name]["bench_wall_s"] = round(time.perf_counter() - t, 2)
    if not args.only or "dataset_run" in args.only.split(","):  # IG over digits:test vs a plain captum loop
        from bench.dataset_bench import bench_dataset_run

        print("bench dataset_run ...", file=sys.stderr, flush=True)
        try:
            results["dataset_run"] = bench_dataset_run(device)
        except Exception as e:  # noqa: BLE001 - recorded like the analyzer benches
            results["dataset_run"] = {"error": f"{type(e).__name__}: {e}"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
