"""`make bench`: every row of issue 21's table measured side by side in one run, written to
``bench/results.json`` with its ratio, goal and verdict; then compared with the committed
``bench/baseline.json``: a ratio more than 30 % worse than the baseline's prints a WARNING (never a failure:
timings on a shared machine are not tests).

Rows (``bench/rows.py``; ratio = ours / peer of CPU-time medians, interleaved A/B after warm-ups):
LRP vs zennit, Grad-CAM vs hand-rolled autograd, theoretical RF of ResNet-50 vs TorchLens (or a naive
forward-hook tracer), ERF over 50 images chunked vs one at a time, LinearScope rows vs an autograd loop,
IG vs captum, CLI cold start vs ``import torch``, IG over a data set vs a plain captum loop
(``bench/dataset_bench.py``) and, when present, the sweep executors (``bench/sweep_bench.py``). Then a
coverage pass: one available card per (kind, task) through every analyzer that supports that kind and
task, with the analyzer's smoke config (classes are needed only where the analyzer declares them).
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

from bench import rows  # noqa: E402
from workbench.runtime import pick_device  # noqa: E402

ROWS = {"lrp_vs_zennit": rows.lrp_vs_zennit, "gradcam_vs_hand": rows.gradcam_vs_hand,
        "rf_theory_resnet50": rows.rf_theory, "erf_50_images": rows.erf_chunked,
        "linear_scope_rows": rows.linear_scope_rows, "ig_vs_captum": rows.ig_vs_captum,
        "cli_cold_start": rows.cli_cold_start}
REGRESSION = 1.3  # a ratio 30 % worse than the baseline's is reported
BUDGET_S = 13 * 60  # the coverage pass is skipped past this (the whole run must stay under 15 minutes)


def dataset_row(device: str) -> dict:
    from bench.dataset_bench import bench_dataset_run

    out = bench_dataset_run(device, rounds=2)
    out["ratio"] = out.get("ratio")  # captum loop time / ours: samples per second, ours over captum's
    return rows.verdict(out, ">= 1.0x a plain captum loop's samples/s, batched", ">=", 1.0)


def sweep_row(device: str) -> dict | None:
    if not (Path(__file__).parent / "sweep_bench.py").is_file():
        return None
    from bench.sweep_bench import bench_sweep_goals

    return bench_sweep_goals(with_ray=True)  # 12 cells of >= 5 s and 12 of ~0.4 s: sequential vs local vs Ray


def quality_row(device: str) -> dict:
    from bench.quality_bench import bench_quality

    return bench_quality(rounds=1)


def coverage(device: str, deadline: float) -> dict:
    """One card per (kind, task), smallest first, through each analyzer that supports it (smoke config)."""
    from workbench.core.analyzer import list_analyzers
    from workbench.core.cards import list_cards
    from workbench.runtime import RunSpec, run

    picked: dict = {}
    for card in sorted(list_cards(), key=lambda c: c.summary().get("params") or 0):
        if card.status(card).get("available"):
            picked.setdefault((card.kind, card.task), card)
    out = {}
    for (kind, task), card in sorted(picked.items()):
        for cls in list_analyzers():
            if kind not in cls.supports or task not in cls.tasks or not cls.needs_model or (
                    cls.architectures and card.architecture not in cls.architectures):
                continue
            key = f"{cls.name} on {card.id}"
            if time.monotonic() > deadline:
                out[key] = {"skipped": "time budget"}
                continue
            t = time.perf_counter()
            try:
                run(RunSpec(cls.name, card.id, "", dict(cls.smoke_config), device=device))
                out[key] = {"wall_s": round(time.perf_counter() - t, 2)}
            except Exception as e:  # noqa: BLE001 - one failure is recorded, the rest still run
                out[key] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    return out


def regressions(results: dict, baseline: dict) -> list[str]:
    """One line per row whose ratio is more than 30 % worse than the baseline's (direction from goal_op)."""
    lines = []
    for name, row in results.get("rows", {}).items():
        old = baseline.get("rows", {}).get(name, {})
        new_r, old_r = row.get("ratio"), old.get("ratio")
        if not isinstance(new_r, (int, float)) or not isinstance(old_r, (int, float)) or old_r <= 0:
            continue
        worse = new_r > old_r * REGRESSION if row.get("goal_op", "<=") == "<=" else new_r * REGRESSION < old_r
        if worse:
            lines.append(f"WARNING: {name} ratio {new_r} vs baseline {old_r} (more than 30% worse; "
                         f"goal {row.get('goal')})")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results.json")
    ap.add_argument("--baseline", default="bench/baseline.json")
    ap.add_argument("--write-baseline", action="store_true", help="also write this run as the baseline")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", default="", help="comma-separated rows (default all; e.g. rf_theory_resnet50)")
    ap.add_argument("--no-coverage", action="store_true")
    args = ap.parse_args()
    t0 = time.monotonic()
    device = pick_device(args.device)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    results = {"device": device, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
               "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
               "threads": torch.get_num_threads(), "load_avg_before": [round(v, 2) for v in os.getloadavg()],
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": {}}
    wanted = set(filter(None, args.only.split(",")))
    todo = {**ROWS, "dataset_ig_vs_captum_loop": dataset_row, "sweep": sweep_row, "quality_panel": quality_row}
    for name, fn in todo.items():
        if wanted and name not in wanted:
            continue
        print(f"bench {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            row = fn(device)
        except Exception as e:  # noqa: BLE001 - one failing row is recorded, the others still run
            row = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        if row is not None:
            row["bench_wall_s"] = round(time.perf_counter() - t, 2)
            results["rows"][name] = row
            print(f"  {name}: ratio {row.get('ratio')} goal {row.get('goal')} met {row.get('met')} "
                  f"({row['bench_wall_s']} s){' ' + row['error'] if 'error' in row else ''}", file=sys.stderr)
    if not args.no_coverage and not wanted:
        print("bench coverage ...", file=sys.stderr, flush=True)
        results["coverage"] = coverage(device, t0 + BUDGET_S)
    results["total_wall_s"] = round(time.monotonic() - t0, 1)
    results["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out} ({results['total_wall_s']} s)", file=sys.stderr)
    base = Path(args.baseline)
    if base.is_file():
        for line in regressions(results, json.loads(base.read_text())):
            print(line)
    else:
        print(f"no baseline at {base}: nothing to compare", file=sys.stderr)
    if args.write_baseline:
        base.write_text(json.dumps(results, indent=2))
        print(f"wrote {base}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
