"""Learning-stop monitor cost: training-step time with and without the monitor's hooks, on the same
model copy and the same batch, steps alternating so machine-load drift hits both alike.

``bench_learning_stop()`` returns, per trainable card and per monitored-layer set, the median step
times (ms), the overhead ratio (with / without; the issue's aim is <= 1.05) and the layer count.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402

from analyzers.learning_stop.monitor import measure_overhead, resolve_layers  # noqa: E402
from analyzers.learning_stop.train import optimizer_factory  # noqa: E402
from workbench.core.cards import get_card  # noqa: E402
from workbench.runtime import pick_device  # noqa: E402

CARDS = ("digits_vgg.sk", "digits_resnet.sk", "mnist1d_cnn.default")
LAYER_SETS = ("auto", "conv_linear")
AIM = 1.05
BATCH = 64


def bench_card(card_id: str, device: str, pairs: int) -> dict:
    """Overhead of monitoring each layer set of one card, fresh seeded weights, SGD as in the paper."""
    card = get_card(card_id)
    x, y = card.extra["training_data"]("train")
    xb, yb = torch.from_numpy(x[:BATCH]).to(device), torch.from_numpy(y[:BATCH]).to(device)
    torch.manual_seed(0)
    model = card.build().to(device)
    make_opt = optimizer_factory("sgd", 0.1, 0.9, 5e-4)
    out = {}
    for layers in LAYER_SETS:
        names = resolve_layers(model, layers, card.input_shape, card.layers_of_interest)
        r = measure_overhead(model, make_opt, xb, yb, names, pairs)
        ratio = 1.0 + r["overhead_pct"] / 100.0
        out[layers] = {"layers": len(names), "step_ms_without": round(1e3 * r["without_s"], 3),
                       "step_ms_with": round(1e3 * r["with_s"], 3), "overhead_ratio": round(ratio, 4),
                       "meets_aim": bool(ratio <= AIM)}
    return out


def bench_learning_stop(device: str = "auto", pairs: int = 30) -> dict:
    """Monitor overhead for every trainable card whose builder is available (no weights needed)."""
    dev = pick_device(device)
    result = {"device": dev, "batch": BATCH, "pairs": pairs, "aim_ratio": AIM, "cards": {}}
    for card_id in CARDS:
        result["cards"][card_id] = bench_card(card_id, dev, pairs)
    ratios = [v["overhead_ratio"] for c in result["cards"].values() for v in c.values()]
    result["worst_ratio"] = max(ratios)
    result["default_layers_meet_aim"] = all(c["auto"]["meets_aim"] for c in result["cards"].values())
    return result


if __name__ == "__main__":
    torch.set_num_threads(2)
    json.dump(bench_learning_stop(*sys.argv[1:2]), sys.stdout, indent=2)
    print()
